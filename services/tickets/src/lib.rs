//! Feedback tickets for support: intake with templates, priority from an impact x
//! urgency matrix, SLA clocks, a checked state machine, the full history of every
//! change, similar-ticket suggestions and daily statistics.
//!
//! ```text
//! POST /v1/tickets                      create (scope support)
//! GET  /v1/tickets?state=&priority=&...  find (support or read)
//! GET  /v1/tickets/{id}                  one ticket, its SLA and its history
//! POST /v1/tickets/{id}/transition       move (409 with the allowed moves)
//! POST /v1/tickets/{id}/assign | /comments | /priority
//! GET  /v1/tickets/stats?from=&to=&tz=   per day: opened, resolved, closed, backlog, breaches
//! ```
//!
//! Storage is append-only (`ticket_events`, one row per change holding the whole
//! ticket after it). Changes carry the version they expect; the service
//! serializes the changes of one ticket, so two agents at once get one success
//! and one 409. This holds within one process: with several replicas, route
//! ticket changes to one of them (sticky by ticket id).

pub mod cli;
pub mod clock;
pub mod config;
pub mod model;
pub mod routes;
pub mod similar;
pub mod sla;
pub mod stats;
pub mod store;

pub use config::TicketSettings;
pub use routes::{TicketsState, configure, describe_settings};
