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
//! "Now" is the application's one clock (`hypercare_runtime::Context::clock`).
//! The alert rules on headroom read [`headroom::current`] (see there).

pub mod headroom;
pub mod routes;
pub mod runs;
pub mod state;

use actix_web::web;
use hypercare_runtime::{Capability, Context, Mount};
use serde::Deserialize;

pub use routes::configure;
pub use state::{CapacityError, CapacityState};

/// The capacity capability: its state and its route (no background work).
pub struct Capacity {
    state: web::Data<CapacityState>,
}

impl Capacity {
    /// The daily report reads each day's peak and headroom through it.
    pub fn state(&self) -> &web::Data<CapacityState> {
        &self.state
    }
}

impl Mount for Capacity {
    fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.state.clone());
        routes::configure(cfg);
    }
}

impl Capability for Capacity {
    type Settings = CapacitySettings;
    type Error = std::convert::Infallible;

    /// The settings are checked with the others, before anything connects
    /// ([`CapacitySettings::validate`]).
    async fn build(settings: CapacitySettings, ctx: &Context) -> Result<Self, Self::Error> {
        Ok(Self {
            state: web::Data::new(CapacityState {
                settings,
                store: ctx.store.client.clone(),
                clock: ctx.clock.clone(),
            }),
        })
    }
}

/// A `[capacity]` option out of its range; the message names it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error("capacity.request_counter and capacity.service_label must not be empty")]
    EmptyName,
    #[error("capacity.window_minutes: must be at least 1")]
    NoWindow,
    #[error("capacity.target_utilisation: {0} is not in (0, 1]")]
    Utilisation(f64),
    #[error("capacity.warning_headroom_percent: must be in 0..100")]
    WarningHeadroom,
}

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
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.request_counter.is_empty() || self.service_label.is_empty() {
            return Err(SettingsError::EmptyName);
        }
        if self.window_minutes == 0 {
            return Err(SettingsError::NoWindow);
        }
        if !(self.target_utilisation > 0.0 && self.target_utilisation <= 1.0) {
            return Err(SettingsError::Utilisation(self.target_utilisation));
        }
        if !(0.0..=100.0).contains(&self.warning_headroom_percent) {
            return Err(SettingsError::WarningHeadroom);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_out_of_range_are_named() {
        assert_eq!(CapacitySettings::default().validate(), Ok(()));
        let settings = CapacitySettings {
            target_utilisation: 1.5,
            ..CapacitySettings::default()
        };
        assert_eq!(
            settings.validate().unwrap_err().to_string(),
            "capacity.target_utilisation: 1.5 is not in (0, 1]"
        );
        let settings = CapacitySettings {
            window_minutes: 0,
            ..CapacitySettings::default()
        };
        assert_eq!(settings.validate(), Err(SettingsError::NoWindow));
    }
}
