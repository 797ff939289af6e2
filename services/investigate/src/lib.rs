//! Investigation tools for support and the SRE during hypercare.
//!
//! ```text
//! GET /v1/users/{user_id}/timeline?from=&to=   (read)  events + logs naming the user, in time order
//!   <- events (user_id column, copies folded)  + logs (attribute user_id / user.id / enduser.id)
//! GET /v1/logs?request_id=&user_id=&service=&severity=&q=&from=&to=   (read)  stored OTLP logs
//!   <- logs FINAL, filtered inside ClickHouse, bounded by span, limit and deadline
//! GET /v1/advice/release-window?weeks=&length=   (read)  the quietest windows of the week
//!   <- events per 15 minutes (+ the request counter's increase) -> per weekday and time of day
//!      in the current launch's zone -> ranked by expected traffic, then spread
//! ```
//!
//! Each module owns its parameters check (pure, with the field named), its
//! SQL (listed in [`catalog`] for the compatibility test) and its handler;
//! [`timeline`] reads logs through [`logs`]. "Now" is the application's clock.

pub mod advice;
pub mod logs;
pub mod timeline;

use actix_web::web;
use hypercare_http::error::ApiError;
use hypercare_http::openapi::SecuritySchemes;
use hypercare_runtime::{Capability, Context, Mount, SharedClock};
use hypercare_storage::catalog::Statement;

/// What the investigation routes share: the store and the clock.
pub struct InvestigateState {
    pub store: clickhouse::Client,
    pub clock: SharedClock,
}

/// The investigation capability (no settings, no background work).
pub struct Investigate {
    state: web::Data<InvestigateState>,
}

impl Mount for Investigate {
    fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.state.clone());
        configure(cfg);
    }
}

impl Capability for Investigate {
    type Settings = ();
    type Error = std::convert::Infallible;

    async fn build(_settings: (), ctx: &Context) -> Result<Self, Self::Error> {
        Ok(Self {
            state: web::Data::new(InvestigateState {
                store: ctx.store.client.clone(),
                clock: ctx.clock.clone(),
            }),
        })
    }
}

/// Every route of the capability (the OpenAPI test compares them with [`ApiDoc`]).
pub fn configure(cfg: &mut web::ServiceConfig) {
    timeline::configure(cfg);
    logs::configure(cfg);
    advice::configure(cfg);
}

/// The investigation routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(timeline::get_timeline, logs::get_logs, advice::get_release_window),
    modifiers(&SecuritySchemes),
    tags((name = "investigate", description = "Timelines, log search and release-window advice"))
)]
pub struct ApiDoc;

/// The read queries of the capability, with example parameters.
pub fn catalog() -> Vec<Statement> {
    let mut statements = logs::store::catalog();
    statements.extend(timeline::store::catalog());
    statements.extend(advice::store::catalog());
    statements
}

/// The one error of the capability's domain.
#[derive(Debug, thiserror::Error)]
pub enum InvestigateError {
    /// A parameter out of its range: `field` names it.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// Nothing to advise from: no events nor requests in the weeks read.
    #[error("no traffic is stored in the past {0} weeks: nothing to advise from")]
    NoTraffic(u32),
    #[error("the ClickHouse query failed: {0}; retry later")]
    Store(#[from] clickhouse::error::Error),
}

impl InvestigateError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl From<InvestigateError> for ApiError {
    fn from(error: InvestigateError) -> Self {
        match error {
            InvestigateError::Invalid { field, reason } => ApiError::invalid(field, reason),
            no_traffic @ InvestigateError::NoTraffic(_) => {
                ApiError::not_found(no_traffic.to_string())
            }
            InvestigateError::Store(e) => ApiError::storage(e),
        }
    }
}
