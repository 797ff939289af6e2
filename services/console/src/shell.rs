//! The HTML every console page starts from: the head (assets, CSRF token,
//! htmx settings) and the page for someone not signed in (sign-in, errors).

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::assets;

pub fn head(title: &str, csrf: Option<&str>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            // htmx would add a <style> element, which the CSP forbids.
            meta name="htmx-config" content=r#"{"includeIndicatorStyles":false}"#;
            @if let Some(csrf) = csrf {
                meta name="csrf-token" content=(csrf);
            }
            title { (title) " · Hypercare" }
            link rel="stylesheet" href=(assets::url("console.css"));
            link rel="stylesheet" href=(assets::url("uPlot.min.css"));
            script src=(assets::url("htmx.min.js")) defer {}
            script src=(assets::url("uPlot.iife.min.js")) defer {}
            script src=(assets::url("console.js")) defer {}
        }
    }
}

/// A page for someone not signed in (sign-in, errors before sign-in).
pub fn bare_page(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, None))
            body {
                header.top { a.brand href="/" { "Hypercare" } }
                main #content tabindex="-1" { (content) }
            }
        }
    }
}

/// An error a person can read, with a way back.
pub fn error_page(title: &str, message: &str) -> Markup {
    bare_page(
        title,
        html! {
            div.card.sign-in {
                h1 { (title) }
                p { (message) }
                p { a href="/" { "Back to the console" } }
            }
        },
    )
}

/// Inline JSON for a page script, safe inside `<script>` (no `</script>`).
pub fn json_script(value: &serde_json::Value) -> PreEscaped<String> {
    PreEscaped(value.to_string().replace('<', "\\u003c"))
}
