//! Tiered alerts for the SRE during the stabilization window.
//!
//! ```text
//! alert-rules/*.yaml ─ check::load ┐   (slos: ─ slo_rules::alert_rules: burn-rate rules)
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
//! POST   /v1/alerts/backtest             replay rules over a past window; nothing sent (read)
//! GET    /v1/alerts/history?date=&tz=    time to ack / resolve, MTTA / MTTR per tier (read)
//! GET    /v1/alerts/review?from=&to= per rule: firings, noise, flaps, time to ack, suggestions (read)
//! GET    /v1/alerts/notifications        webhook deliveries, failed ones included (read)
//! GET    /v1/slos                        every SLO: SLI, error budget left, burn rates (read)
//! GET    /v1/silences, /v1/silences/{id} (read)
//! POST   /v1/silences                    matchers, startsAt, endsAt|duration, createdBy, comment (admin)
//! DELETE /v1/silences/{id}               expire (admin)
//! ```
//!
//! See docs/alerts.md for the rule format, the tier policies and the semantics.

pub mod backtest;
pub mod burn;
pub mod check;
pub mod cli;
pub mod config;
pub mod duration;
pub mod engine;
pub mod error;
pub mod evaluate;
pub mod matcher;
pub mod notify;
pub mod plan;
pub mod review;
pub mod rollback;
pub mod routes;
pub mod rule;
pub mod sample;
pub mod schema;
pub mod silence;
pub mod sli;
pub mod slo;
pub mod slo_rules;
pub mod state;
pub mod stats;
pub mod store;
pub mod tier;
pub mod view;

/// The OpenAPI document of the alert routes, and the schemas it uses.
pub mod api_doc {
    pub use crate::routes::ApiDoc;
    pub use crate::schema::*;
}

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::web;
use hypercare_runtime::{Capability, Context, Mount};

pub use config::AlertSettings;
pub use error::AlertError;
pub use routes::{AlertState, configure};

/// Every read statement, for the compatibility test.
pub fn catalog() -> Vec<hypercare_storage::catalog::Statement> {
    let mut statements = evaluate::catalog();
    statements.extend(store::catalog());
    statements
}

/// What the alerts are built from: the `[alerts]` section, and what the
/// evaluator reads from other capabilities.
pub struct AlertsSettings {
    pub alerts: AlertSettings,
    /// KPI rules read the board and past values through it.
    pub kpis: Arc<hypercare_kpis::KpiState>,
    /// Capacity rules compare live peaks with the load test baselines.
    pub capacity: hypercare_capacity::CapacitySettings,
}

/// Why the alerts could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("alert settings: {0}")]
    Config(#[from] config::ConfigError),
    #[error("loading the alert rules: {0}")]
    Rules(#[from] check::RuleError),
}

/// The alert capability: the API on every replica, the evaluator (on
/// `ctx.tasks`) on the one with `[alerts] evaluate = true`.
pub struct Alerts {
    state: web::Data<AlertState>,
}

impl Alerts {
    pub fn state(&self) -> &web::Data<AlertState> {
        &self.state
    }
}

impl Mount for Alerts {
    fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.state.clone());
        configure(cfg);
    }
}

impl Capability for Alerts {
    type Settings = AlertsSettings;
    type Error = BuildError;

    /// Loads the rules (settings were validated when loaded) and, on the
    /// evaluating replica, starts the evaluator; its webhook deliveries run on
    /// `ctx.tasks` as well, so shutdown stops their retries and waits for them.
    async fn build(settings: AlertsSettings, ctx: &Context) -> Result<Self, BuildError> {
        let AlertsSettings {
            alerts: config,
            kpis,
            capacity,
        } = settings;
        let inhibitions = config.inhibitions()?;
        let paths: Vec<PathBuf> = config
            .rules
            .iter()
            .filter(|p| {
                let exists = p.exists();
                if !exists {
                    tracing::warn!(path = %p.display(), "No alert rules at this path (alerts.rules); it is skipped.");
                }
                exists
            })
            .cloned()
            .collect();
        let rules = check::load(&paths, None)?;
        tracing::info!(
            rules = rules.len(),
            evaluate = config.evaluate,
            "Alert rules loaded."
        );
        let slos = slo_rules::slos_of(&rules);
        let engine = if config.evaluate {
            let engine = Arc::new(engine::Engine::with_settings(
                &config,
                rules,
                // Evaluation reads whole windows of metrics: background deadlines.
                ctx.store.background.clone(),
                ctx.clock.clone(),
                ctx.tasks.clone(),
                kpis.clone(),
                capacity,
            )?);
            let running = engine.clone();
            ctx.tasks
                .spawn("alert_evaluator", move |cancel| running.run(cancel));
            Some(engine)
        } else {
            None
        };
        Ok(Alerts {
            state: web::Data::new(AlertState {
                store: ctx.store.client.clone(),
                engine,
                settings: config,
                inhibitions,
                clock: ctx.clock.clone(),
                slos,
                kpis,
            }),
        })
    }
}
