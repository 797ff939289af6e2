//! The daily stabilization report (issue 16, under way).
//!
//! ```text
//! GET /v1/launches/{id}/judgement?day=N   every KPI's verdict for D+N (scope read)
//!   KpiState::values (the series' hours) -> verdicts.rs (whole hours of D+N
//!   against the same hours of each baseline day) -> judge.rs
//! GET /v1/launches/{id}/stages            every rollout stage's gate (scope read)
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

pub mod gate;
pub mod judge;
pub mod policy;
pub mod routes;
pub mod stages;
pub mod verdicts;

use actix_web::web;
use hypercare_runtime::{Capability, Context, Mount};
use serde::Deserialize;

pub use routes::configure;

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
    /// `[report.stages]`: the rollout stage gates.
    pub stages: stages::StageSettings,
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            min_hours: 6,
            min_effect: 0.05,
            stages: stages::StageSettings::default(),
        }
    }
}

/// A `[report]` setting out of its range.
#[derive(Debug, thiserror::Error)]
#[error("report.{field}: {reason}")]
pub struct ReportSettingsError {
    pub field: &'static str,
    pub reason: &'static str,
}

impl ReportSettings {
    pub fn validate(&self) -> Result<(), ReportSettingsError> {
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(ReportSettingsError {
                field: "alpha",
                reason: "must be between 0 and 1, e.g. 0.05",
            });
        }
        if self.min_hours < 2 {
            return Err(ReportSettingsError {
                field: "min_hours",
                reason: "must be at least 2",
            });
        }
        if !(0.0..10.0).contains(&self.min_effect) {
            return Err(ReportSettingsError {
                field: "min_effect",
                reason: "must be a fraction such as 0.05 (5 %)",
            });
        }
        if let Err((field, reason)) = self.stages.check() {
            return Err(ReportSettingsError { field, reason });
        }
        Ok(())
    }
}

/// What the report's routes read.
pub struct ReportState {
    settings: ReportSettings,
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
}

/// The report capability (so far: the judge's verdicts on a launch day).
pub struct Report {
    state: web::Data<ReportState>,
}

impl Mount for Report {
    fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.state.clone());
        routes::configure(cfg);
    }
}

impl Capability for Report {
    type Settings = ReportSettings;
    type Error = ReportSettingsError;

    /// `settings` were validated with the rest of the configuration.
    async fn build(settings: ReportSettings, _ctx: &Context) -> Result<Self, ReportSettingsError> {
        Ok(Report {
            state: web::Data::new(ReportState { settings }),
        })
    }
}
