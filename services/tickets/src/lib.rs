//! Feedback tickets for support: intake with templates, priority from an impact x
//! urgency matrix, SLA clocks, a checked state machine, the full history of every
//! change, similar-ticket suggestions and daily statistics.
//!
//! ```text
//! POST /v1/tickets                      create (scope support)
//! GET  /v1/tickets?state=&priority=&...  find (support or read)
//! GET  /v1/tickets/{id}                  one ticket, its SLA and its history
//! POST /v1/tickets/{id}/transition       move (409 `conflict` with the allowed moves)
//! POST /v1/tickets/{id}/assign | /comments | /priority
//! GET  /v1/tickets/stats?from=&to=&tz=   per day: opened, resolved, closed, backlog, breaches
//! ```
//!
//! Where each rule lives:
//!
//! ```text
//! routes (parse, authorize, map)  ->  service (lock, read, check version, append; clock)
//!                                       |-> intake    new ticket: fields, template
//!                                       |-> priority  impact x urgency matrix, override
//!                                       |-> lifecycle transition / assign / comment / regrade
//!                                       |-> sla       the two clocks;  stats: per day
//!                                       '-> store     SQL (every statement in its catalog)
//! request: the text of a request (API or console form) -> domain values
//! view: what the API shows;  error: TicketError -> ApiError (once)
//! ```
//!
//! Storage is append-only (`ticket_events`, one row per change holding the whole
//! ticket after it). Changes carry the version they expect; the service
//! serializes the changes of one ticket, so two agents at once get one success
//! and one 409. This holds within one process: with several replicas, route
//! ticket changes to one of them (sticky by ticket id).

use std::sync::Arc;

use actix_web::web;
use hypercare_runtime::{Capability, Context, Mount};

pub mod cli;
pub mod config;
pub mod error;
pub mod intake;
pub mod lifecycle;
pub mod model;
pub mod priority;
pub mod request;
pub mod routes;
pub mod service;
pub mod similar;
pub mod sla;
pub mod stats;
pub mod store;
pub mod view;

pub use config::TicketSettings;
pub use error::TicketError;
pub use routes::{configure, describe_settings};
pub use service::TicketService;

/// The tickets capability: its service (shared by the routes) and the gauge
/// refresher on the application's tasks.
pub struct Tickets {
    service: web::Data<TicketService>,
}

impl Tickets {
    pub fn service(&self) -> Arc<TicketService> {
        self.service.clone().into_inner()
    }
}

impl Mount for Tickets {
    fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.service.clone());
        configure(cfg);
    }
}

impl Capability for Tickets {
    type Settings = TicketSettings;
    type Error = prometheus::Error;

    /// `settings` were validated with the rest of the configuration.
    async fn build(settings: TicketSettings, ctx: &Context) -> Result<Self, Self::Error> {
        let every = settings.metrics_refresh();
        let service = web::Data::new(TicketService::new(
            settings,
            ctx.store.client.clone(),
            ctx.clock.clone(),
            &ctx.registry,
        )?);
        // Fill the gauges at once rather than one period after start; a
        // ClickHouse that is down now is retried by the refresher.
        refresh(&service).await;
        let refreshed = service.clone();
        ctx.tasks.every("ticket_gauges", every, move || {
            let service = refreshed.clone();
            async move { refresh(&service).await }
        });
        Ok(Self { service })
    }
}

async fn refresh(service: &TicketService) {
    if let Err(error) = service.refresh_gauges().await {
        tracing::warn!(%error, "Could not refresh the ticket gauges.");
    }
}
