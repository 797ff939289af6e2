//! The console's pages. Each one reads through the same domain functions as
//! its API route, as the signed-in key, and renders HTML.

pub mod alerts;
pub mod board;
pub mod capacity;
pub mod figures;
pub mod home;
pub mod kpi;
pub mod launch_days;
pub mod report;
pub mod sign_in;
pub mod tickets;
pub mod zone;

use actix_web::HttpResponse;
use actix_web::http::header;
use maud::Markup;

/// Content Security Policy: only this origin's scripts and styles (no inline
/// script), no framing, forms posting only here.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

/// An HTML answer with the console's security headers.
pub fn html(status: actix_web::http::StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(markup.into_string())
}

pub fn ok(markup: Markup) -> HttpResponse {
    html(actix_web::http::StatusCode::OK, markup)
}
