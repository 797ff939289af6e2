//! [`CapacityState`]: what the headroom route and the console's capacity page
//! ask of the capacity capability, as domain calls (no HTTP in here), and its
//! one error type with its one conversion into the API's error answer.
//!
//! "Now" is the application's clock; the reads and the arithmetic are in
//! [`crate::headroom`] (live headroom, scaling plan) and [`crate::runs`]
//! (recorded load test runs). Callers check the key's `read` scope first.

use hypercare_http::error::ApiError;
use hypercare_runtime::SharedClock;

use crate::CapacitySettings;
use crate::headroom::{self, Checked, Headroom};
use crate::runs::{self, Run};

pub struct CapacityState {
    pub settings: CapacitySettings,
    pub store: clickhouse::Client,
    /// "Now" of the live peak's window.
    pub clock: SharedClock,
}

#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    #[error(transparent)]
    Invalid(#[from] headroom::Invalid),
    #[error(
        "no load test baseline is recorded for service `{0}`: run `hypercare loadtest run ... --service {0}` first"
    )]
    NoBaseline(String),
    #[error("the ClickHouse query failed: {0}; retry later")]
    Store(#[from] clickhouse::error::Error),
}

impl From<CapacityError> for ApiError {
    fn from(error: CapacityError) -> Self {
        match error {
            CapacityError::Invalid(invalid) => ApiError::invalid(invalid.field, invalid.reason),
            no_baseline @ CapacityError::NoBaseline(_) => {
                ApiError::not_found(no_baseline.to_string())
            }
            CapacityError::Store(e) => ApiError::storage(e),
        }
    }
}

impl CapacityState {
    /// The checked request's headroom and scaling plan now.
    pub async fn headroom(&self, request: &Checked) -> Result<Headroom, CapacityError> {
        self.headroom_at(request, self.clock.now_ms() / 1000).await
    }

    async fn headroom_at(&self, request: &Checked, at: u64) -> Result<Headroom, CapacityError> {
        headroom::current_at(&self.store, &self.settings, request, at)
            .await?
            .ok_or_else(|| CapacityError::NoBaseline(request.service.clone()))
    }

    /// Headroom and plan now of every service that has a baseline, with the
    /// configured window and the baseline's replicas.
    pub async fn headroom_of_every_service(&self) -> Result<Vec<Headroom>, CapacityError> {
        self.headroom_of_every_service_at(self.clock.now_ms() / 1000, self.settings.window_minutes)
            .await
    }

    /// The same over the `window_minutes` before `at` (epoch seconds): the
    /// daily report asks for a whole day's peak.
    pub async fn headroom_of_every_service_at(
        &self,
        at: u64,
        window_minutes: u32,
    ) -> Result<Vec<Headroom>, CapacityError> {
        let mut answers = Vec::new();
        for service in headroom::services_with_baseline(&self.store).await? {
            let request = Checked {
                service,
                window_minutes,
                replicas: None,
                forecast_peak_rps: None,
            };
            match self.headroom_at(&request, at).await {
                Ok(answer) => answers.push(answer),
                // Its baseline went between the two reads: nothing to show.
                Err(CapacityError::NoBaseline(_)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(answers)
    }

    /// The `limit` latest recorded load test runs with their steps.
    pub async fn runs(&self, limit: u32) -> Result<Vec<Run>, CapacityError> {
        Ok(runs::recent(&self.store, limit).await?)
    }
}
