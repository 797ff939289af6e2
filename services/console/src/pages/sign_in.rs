//! Sign in with an API key; sign out.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use hypercare_http::auth::ApiKeys;
use maud::{Markup, html};
use serde::Deserialize;

use crate::error::ConsoleError;
use crate::session::{self, Sessions, Viewer};
use crate::shell;

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

fn form(next: &str, problem: Option<&str>) -> Markup {
    shell::bare_page(
        "Sign in",
        html! {
            div.card.sign-in {
                h1 { "Sign in to Hypercare" }
                p.muted {
                    "Use an API key. On a first local run, the development key is in "
                    code { "~/.local/share/hypercare/dev-api-key" } "."
                }
                form.stack method="post" action="/sign-in" {
                    input type="hidden" name="next" value=(next);
                    div {
                        label for="key" { "API key" }
                        input #key type="password" name="key" autocomplete="current-password"
                            required aria-describedby=[problem.map(|_| "key-error")]
                            aria-invalid=[problem.map(|_| "true")];
                        @if let Some(problem) = problem {
                            p.field-error #key-error role="alert" { (problem) }
                        }
                    }
                    div { button type="submit" { "Sign in" } }
                }
            }
        },
    )
}

pub async fn show(query: web::Query<NextQuery>) -> HttpResponse {
    let next = session::local_path(query.next.as_deref().unwrap_or("/"));
    super::ok(form(next, None))
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    key: String,
    #[serde(default)]
    next: String,
}

pub async fn submit(
    req: HttpRequest,
    keys: web::Data<ApiKeys>,
    sessions: web::Data<Sessions>,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, ConsoleError> {
    session::same_site(&req)?;
    let next = session::local_path(&form.next).to_owned();
    let Some(key) = keys.find(form.key.trim()) else {
        return Ok(super::html(
            StatusCode::UNAUTHORIZED,
            self::form(
                &next,
                Some("This key is not known. Check it and try again (keys are case-sensitive)."),
            ),
        ));
    };
    tracing::info!(key = %key.name, "Signed in to the console.");
    let opened = sessions.open(key);
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, next))
        .insert_header((header::SET_COOKIE, sessions.cookie(&req, &opened.id)))
        .finish())
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    req: HttpRequest,
    viewer: Viewer,
    sessions: web::Data<Sessions>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    session::same_site(&req)?;
    viewer.check_csrf(&form.csrf)?;
    sessions.close(viewer.session_id());
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/sign-in"))
        .insert_header((header::SET_COOKIE, sessions.expired_cookie(&req)))
        .finish())
}
