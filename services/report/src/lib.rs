//! The daily stabilization report and its go / hold / roll back call.
//!
//! ```text
//! GET /v1/launches/{id}/report?day=N[&format=json|md|html]   the report of D+N (scope read)
//!   ?from=N&to=M: one line per day (range.rs)
//!   make.rs: reads the KPIs (board + judge), alerts, tickets, capacity, stages
//!   assemble.rs: the sections and the policy's inputs (pure)
//!   policy.rs: the call;  store.rs: kept once the day is over
//!   render/: Markdown and HTML from the stored JSON (document.rs)
//! GET /v1/launches/{id}/judgement?day=N                      the judge's verdicts alone
//! GET /v1/launches/{id}/stages                               every rollout stage's gate
//!   stages::gates: per stage, the release against the others -> gate.rs
//! ```
//!
//! - [`judge`]: whether a KPI moved since the baseline, as Kayenta judges a
//!   canary: a Mann-Whitney U test per KPI on hourly values, an effect size, a
//!   minimum meaningful effect, and Holm's correction across KPIs;
//! - [`gate`]: a rollout stage's pass / fail, the new release against the old
//!   one over the same window, metric by metric;
//! - [`policy`]: the go / hold / roll back call, from rules written in YAML
//!   (`config/decision-policy.yaml`), every rule reported with its inputs.

pub mod assemble;
pub mod cli;
pub mod delivery;
pub mod document;
pub mod error;
pub mod exit;
pub mod gate;
pub mod judge;
pub mod make;
pub mod policy;
pub mod range;
pub mod render;
pub mod routes;
pub mod stages;
pub mod store;
pub mod verdicts;

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::web;
use hypercare_alerts::AlertState;
use hypercare_capacity::CapacityState;
use hypercare_kpis::KpiState;
use hypercare_runtime::{Capability, Context, Mount, SharedClock};
use hypercare_tickets::service::TicketService;
use serde::Deserialize;

use crate::policy::Policy;

pub use routes::configure;

/// Every read query of the report, for the compatibility test.
pub fn catalog() -> Vec<hypercare_storage::catalog::Statement> {
    let mut statements = store::catalog();
    statements.extend(stages::store::catalog());
    statements.extend(delivery::store::catalog());
    statements
}

/// The `[report]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReportSettings {
    /// The family-wise false alarm rate of the KPI verdicts of one day.
    pub alpha: f64,
    /// Fewer whole hours than this on either side: `not_enough_data`.
    pub min_hours: usize,
    /// The smallest relative change (of the baseline's median) worth a verdict.
    pub min_effect: f64,
    /// The decision policy (YAML); empty: the shipped one,
    /// `config/decision-policy.yaml`.
    pub policy: Option<PathBuf>,
    /// `[report.stages]`: the rollout stage gates.
    pub stages: stages::StageSettings,
    /// `[report.exit]`: the exit criteria of the handover.
    pub exit: exit::ExitSettings,
    /// Scheduled delivery of the report to webhooks and a folder.
    pub delivery: delivery::DeliverySettings,
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            min_hours: 6,
            min_effect: 0.05,
            policy: None,
            stages: stages::StageSettings::default(),
            exit: exit::ExitSettings::default(),
            delivery: delivery::DeliverySettings::default(),
        }
    }
}

/// A `[report]` setting out of its range.
#[derive(Debug, thiserror::Error)]
#[error("report.{field}: {reason}")]
pub struct ReportSettingsError {
    pub field: &'static str,
    pub reason: String,
}

impl ReportSettings {
    pub fn validate(&self) -> Result<(), ReportSettingsError> {
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(ReportSettingsError {
                field: "alpha",
                reason: "must be between 0 and 1, e.g. 0.05".into(),
            });
        }
        if self.min_hours < 2 {
            return Err(ReportSettingsError {
                field: "min_hours",
                reason: "must be at least 2".into(),
            });
        }
        if !(0.0..10.0).contains(&self.min_effect) {
            return Err(ReportSettingsError {
                field: "min_effect",
                reason: "must be a fraction such as 0.05 (5 %)".into(),
            });
        }
        self.load_policy()?;
        if let Err((field, reason)) = self.stages.check() {
            return Err(ReportSettingsError {
                field,
                reason: reason.into(),
            });
        }
        self.exit.validate().map_err(|e| ReportSettingsError {
            field: e.field,
            reason: e.reason.into(),
        })?;
        self.delivery.validate()?;
        Ok(())
    }

    /// The decision policy: the configured file, or the shipped one.
    pub fn load_policy(&self) -> Result<Policy, ReportSettingsError> {
        let Some(path) = &self.policy else {
            return Ok(Policy::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| ReportSettingsError {
            field: "policy",
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        Policy::parse(&text).map_err(|e| ReportSettingsError {
            field: "policy",
            reason: format!("{}: {e}", path.display()),
        })
    }
}

/// What the report reads: its settings and the other capabilities' states.
pub struct ReportState {
    settings: ReportSettings,
    policy: Policy,
    kpis: Arc<KpiState>,
    alerts: web::Data<AlertState>,
    tickets: Arc<TicketService>,
    capacity: web::Data<CapacityState>,
    store: clickhouse::Client,
    clock: SharedClock,
}

impl ReportState {
    pub fn rules(&self) -> verdicts::Rules {
        verdicts::Rules {
            judge: judge::JudgeSettings {
                alpha: self.settings.alpha,
                min_values: self.settings.min_hours,
            },
            min_effect: self.settings.min_effect,
        }
    }

    pub fn kpis(&self) -> &KpiState {
        &self.kpis
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

/// What building the report needs: its settings and the capabilities it reads.
pub struct ReportInputs {
    pub report: ReportSettings,
    pub kpis: Arc<KpiState>,
    pub alerts: web::Data<AlertState>,
    pub tickets: Arc<TicketService>,
    pub capacity: web::Data<CapacityState>,
}

/// The report capability: the daily report, the judge, the call.
pub struct Report {
    state: web::Data<ReportState>,
}

impl Report {
    pub fn state(&self) -> &web::Data<ReportState> {
        &self.state
    }
}

impl Mount for Report {
    fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.state.clone());
        routes::configure(cfg);
    }
}

impl Capability for Report {
    type Settings = ReportInputs;
    type Error = ReportSettingsError;

    /// `settings` were validated with the rest of the configuration.
    async fn build(inputs: ReportInputs, ctx: &Context) -> Result<Self, ReportSettingsError> {
        let policy = inputs.report.load_policy()?;
        let delivery = inputs.report.delivery.clone();
        let report = Report {
            state: web::Data::new(ReportState {
                settings: inputs.report,
                policy,
                kpis: inputs.kpis,
                alerts: inputs.alerts,
                tickets: inputs.tickets,
                capacity: inputs.capacity,
                store: ctx.store.client.clone(),
                clock: ctx.clock.clone(),
            }),
        };
        delivery::task::start(delivery, report.state.clone(), ctx);
        Ok(report)
    }
}
