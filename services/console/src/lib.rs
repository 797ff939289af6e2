//! The web console, served by `hypercare serve` at `/` beside the API (`/v1`).
//!
//! Server-rendered HTML (maud), with a little progressive JavaScript (htmx for
//! live refresh and in-place actions, uPlot for charts), all compiled into the
//! binary ([`assets`]). A person signs in with an API key and gets a session
//! cookie ([`session`]); every page then reads through the same domain
//! functions as the API, as that key, so scopes and rate limits are the API's.
//!
//! - [`session`]: sign-in sessions, the cookie, CSRF and same-site checks;
//! - [`shell`]: the head every page shares, and the pages for someone not
//!   signed in;
//! - [`layout`]: the signed-in page: navigation, who is signed in;
//! - [`pages`]: one module per page;
//! - [`error`]: what a page answers when it cannot (HTML, or a redirect to sign in).

pub mod assets;
pub mod error;
pub mod layout;
pub mod pages;
pub mod session;
pub mod shell;

use actix_web::web;
use hypercare_runtime::{Capability, Context, Mount};

pub use session::ConsoleSettings;

/// The console, mounted at `/`.
pub struct Console {
    sessions: web::Data<session::Sessions>,
    enabled: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleBuildError {}

impl Capability for Console {
    type Settings = ConsoleSettings;
    type Error = ConsoleBuildError;

    async fn build(settings: ConsoleSettings, ctx: &Context) -> Result<Self, ConsoleBuildError> {
        let enabled = settings.enabled;
        Ok(Console {
            sessions: web::Data::new(session::Sessions::new(settings, ctx.clock.clone())),
            enabled,
        })
    }
}

impl Mount for Console {
    fn configure(&self, cfg: &mut web::ServiceConfig) {
        if !self.enabled {
            return;
        }
        cfg.app_data(self.sessions.clone())
            .route("/", web::get().to(pages::board::show))
            .route("/board/tiles", web::get().to(pages::board::tiles))
            .route(
                "/launches/{id}/days",
                web::get().to(pages::launch_days::show),
            )
            .route("/kpis/{id}", web::get().to(pages::kpi::show))
            .route("/launches/{id}/report", web::get().to(pages::report::show))
            .route("/sign-in", web::get().to(pages::sign_in::show))
            .route("/sign-in", web::post().to(pages::sign_in::submit))
            .route("/sign-out", web::post().to(pages::sign_in::sign_out))
            .route("/assets/{name}", web::get().to(assets::serve))
            .route("/alerts", web::get().to(pages::alerts::show))
            .route("/alerts/silences", web::post().to(pages::alerts::silence))
            .route(
                "/alerts/silences/{id}/expire",
                web::post().to(pages::alerts::expire),
            )
            .route("/alerts/{id}/ack", web::post().to(pages::alerts::ack))
            .route(
                "/alerts/{id}/resolve",
                web::post().to(pages::alerts::resolve),
            )
            .route("/capacity", web::get().to(pages::capacity::show))
            .configure(pages::tickets::configure);
    }
}
