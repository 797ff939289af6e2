//! Capacity headroom during the launch.
//!
//! ```text
//! GET /v1/capacity/headroom?service=checkout   (scope read)
//!   live peak   <- metric_points: the service's request counter, per-minute rate, max over the window
//!   capacity    <- loadtest_runs: the latest recorded baseline of the service (max sustainable rate / replicas)
//!   -> headroom % (warning under 30 %) and replicas needed for the forecast peak at 70 % utilisation
//! ```
//!
//! Baselines come from `loadtest run --record-to` (see `loadtest/`); the peak comes
//! from technical metrics ingested through `POST /v1/metrics` (counters are
//! cumulative totals, so a rate is the difference of two points over their time).

pub mod headroom;
pub mod routes;

use serde::Deserialize;

pub use routes::{CapacityState, configure};

/// The `[capacity]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CapacitySettings {
    /// Counter metric of requests served, cumulative, with a service label.
    /// Default `http_requests_total`.
    pub request_counter: String,
    /// The label of that counter naming the service. Default `service`.
    pub service_label: String,
    /// How far back the live peak is looked for, in minutes. Default 60.
    pub window_minutes: u32,
    /// Utilisation the scaling plan runs a replica at: 0.7 leaves 30 % spare. Default 0.7.
    pub target_utilisation: f64,
    /// Headroom below which the answer carries `warning: true`, in percent. Default 30.
    pub warning_headroom_percent: f64,
}

impl Default for CapacitySettings {
    fn default() -> Self {
        Self {
            request_counter: "http_requests_total".into(),
            service_label: "service".into(),
            window_minutes: 60,
            target_utilisation: 0.7,
            warning_headroom_percent: 30.0,
        }
    }
}

impl CapacitySettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.request_counter.is_empty() || self.service_label.is_empty() {
            return Err(
                "capacity.request_counter and capacity.service_label must not be empty".into(),
            );
        }
        if self.window_minutes == 0 {
            return Err("capacity.window_minutes: must be at least 1".into());
        }
        if !(self.target_utilisation > 0.0 && self.target_utilisation <= 1.0) {
            return Err(format!(
                "capacity.target_utilisation: {} is not in (0, 1]",
                self.target_utilisation
            ));
        }
        if !(0.0..=100.0).contains(&self.warning_headroom_percent) {
            return Err("capacity.warning_headroom_percent: must be in 0..100".into());
        }
        Ok(())
    }
}
