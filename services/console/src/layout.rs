//! The page shell every console page shares: landmarks, a skip link, the
//! navigation the key's scopes allow, the signed-in key and sign-out.

use hypercare_http::auth::Scope;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::assets;
use crate::session::Viewer;

/// A part of the console, with the scope its pages need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
}

impl Section {
    /// The sections in the navigation, in order.
    pub const NAV: &'static [Section] = &[Section::Home];

    pub fn title(self) -> &'static str {
        match self {
            Section::Home => "Overview",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Section::Home => "/",
        }
    }

    /// The scope a key needs to see the section.
    pub fn scope(self) -> Option<Scope> {
        match self {
            Section::Home => None,
        }
    }
}

fn head(title: &str, csrf: Option<&str>) -> Markup {
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

/// A page for a signed-in viewer.
pub fn page(title: &str, viewer: &Viewer, active: Section, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, Some(&viewer.csrf)))
            body {
                a.skip href="#content" { "Skip to content" }
                header.top {
                    a.brand href="/" { "Hypercare" }
                    nav.main aria-label="Main" {
                        ul {
                            @for section in Section::NAV {
                                @if section.scope().is_none_or(|s| viewer.can(s)) {
                                    li {
                                        a href=(section.path())
                                          aria-current=[(*section == active).then_some("page")] {
                                            (section.title())
                                        }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        span { "Signed in as " strong { (viewer.key_name()) } }
                        form method="post" action="/sign-out" {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #content tabindex="-1" {
                    h1 { (title) }
                    (content)
                }
            }
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
