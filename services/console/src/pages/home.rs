//! The landing page: where each of the three users starts.

use actix_web::HttpResponse;
use hypercare_http::auth::Scope;
use maud::html;

use crate::layout::{self, Section};
use crate::session::Viewer;

pub async fn show(viewer: Viewer) -> HttpResponse {
    let scopes: Vec<&str> = [Scope::Read, Scope::Support, Scope::Admin, Scope::Ingest]
        .into_iter()
        .filter(|s| viewer.can(*s))
        .map(Scope::as_str)
        .collect();
    super::ok(layout::page(
        "Overview",
        &viewer,
        Section::Home,
        html! {
            p { "Your key " strong { (viewer.key_name()) } " has the scopes " (scopes.join(", ")) "." }
        },
    ))
}
