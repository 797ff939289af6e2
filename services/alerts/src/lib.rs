//! Tiered alerts for the SRE during the stabilization window.
//!
//! ```text
//! alert-rules/*.yaml ─ rule::load ─┐
//!                                  ▼
//!   engine (one replica): evaluate every `interval` ─ pending → firing → resolved
//!        │   KPIs (hypercare-kpis), metric_points, events          │ alert_events
//!        ▼                                                          ▼ (history)
//!   notify: group by tier + group_by, group wait / interval / repeat,
//!   inhibition, silences, escalation, P3 digest ─ Alertmanager webhook v4
//!   (retries; each attempt in alert_notifications)
//! ```
//!
//! Routes:
//!
//! ```text
//! GET    /v1/alerts                      open alerts + rollback recommendation (read)
//! GET    /v1/alerts/{id}                 one alert with its changes (read)
//! POST   /v1/alerts/{id}/ack             acknowledge: stops repeats and escalation (admin)
//! POST   /v1/alerts/{id}/resolve         resolve by hand (admin)
//! GET    /v1/alerts/history?date=&tz=    time to ack / resolve, MTTA / MTTR per tier (read)
//! GET    /v1/alerts/notifications        webhook deliveries, failed ones included (read)
//! GET    /v1/silences, /v1/silences/{id} (read)
//! POST   /v1/silences                    matchers, startsAt, endsAt|duration, createdBy, comment (admin)
//! DELETE /v1/silences/{id}               expire (admin)
//! ```
//!
//! See docs/alerts.md for the rule format, the tier policies and the semantics.

pub mod api_doc;
pub mod check;
pub mod cli;
pub mod config;
pub mod duration;
pub mod engine;
pub mod evaluate;
pub mod matcher;
pub mod notify;
pub mod routes;
pub mod rule;
pub mod store;

pub use config::AlertSettings;
pub use routes::{AlertState, configure};

pub(crate) fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

/// Every read statement, for the compatibility test.
pub fn catalog() -> Vec<hypercare_storage::catalog::Statement> {
    let mut statements = evaluate::catalog();
    statements.extend(store::catalog());
    statements
}
