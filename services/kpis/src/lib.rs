//! Launches and KPIs: the product owner's view of D0..D+14.
//!
//! ```text
//! POST /v1/launches                     declare a launch (admin); the last one is current
//! GET  /v1/launches, /v1/launches/{id}   (read)
//! GET  /v1/launches/{id}/days            baseline days D-N..D-1 and each D+N day x each KPI
//! GET  /v1/kpis?date=                    the board: a day vs target and baseline, like for
//!                                        like (today so far against the same hours of the
//!                                        baseline days); after the window, its last day
//! GET  /v1/kpis/{id}                     definition and its history of versions
//! PUT  /v1/kpis/{id}                     define or change a KPI (admin)
//! GET  /v1/kpis/{id}/series?from=&to=&grain=&tz=   values per hour or day, gaps filled
//! ```
//!
//! Data flow, and where each rule lives:
//!
//! ```text
//! kpis.file, PUT /v1/kpis ─► definition (checks) ─► repository (kpi_definitions, versions)
//! POST /v1/launches ───────► launch (checks) ──────► launches
//! events ─► rollup worker (ctx.tasks) ─► kpi_rollups
//! routes ─► state::KpiState ─► query::run ─► sql (statements) ─► ClickHouse
//!                         └──► pace (which day, like for like), board (value, baseline,
//!                              delta, trend, status), launch::days (D+N days)
//! ```
//!
//! Values are computed from `events`, exactly, through hourly rollups where they
//! are up to date (see [`query`] and [`rollup`]); days are cut in the launch's
//! time zone. "Now" of every answer is the application's one clock
//! (`hypercare_runtime::Context::clock`); the rollup worker follows ClickHouse's
//! (see [`rollup`]). The alert evaluator reads [`KpiState::board_now`] and
//! [`KpiState::value_at`] through [`Kpis::state`].

pub mod api_doc;
pub mod board;
pub mod calendar;
pub mod cli;
pub mod definition;
pub mod error;
pub mod launch;
pub mod pace;
pub mod published;
pub mod query;
pub mod repository;
pub mod rollup;
pub mod routes;
pub mod sql;
pub mod state;

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::web;
use hypercare_runtime::{Capability, Context, Mount};
use serde::Deserialize;

pub use board::{Board, BoardEntry, KpiNow};
pub use error::KpiError;
pub use routes::configure;
pub use state::KpiState;

/// The `[kpis]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KpiSettings {
    /// A YAML file of KPI definitions (see `config/kpis.example.yaml`), checked
    /// at start-up: an error names the file, the KPI and the field. Unset: KPIs
    /// come from the API only.
    pub file: Option<PathBuf>,
    /// `[kpis.rollups]`: hourly pre-aggregates that make boards fast on large volumes.
    pub rollups: rollup::RollupSettings,
}

impl KpiSettings {
    /// The definitions of `file` (none without one), checked.
    pub fn load(&self) -> Result<Vec<definition::Kpi>, definition::FileError> {
        match &self.file {
            None => Ok(Vec::new()),
            Some(path) => definition::load_file(path),
        }
    }
}

/// Why the KPI capability could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("kpis.file {0}")]
    File(#[from] definition::FileError),
    #[error("loading the KPI definitions: {0}")]
    Store(#[from] clickhouse::error::Error),
}

/// The KPI capability: its state, its routes and the rollup worker.
pub struct Kpis {
    state: web::Data<KpiState>,
}

impl Kpis {
    /// The engine, for the capabilities that read KPIs (the alert rules).
    pub fn state(&self) -> Arc<KpiState> {
        self.state.clone().into_inner()
    }
}

impl Mount for Kpis {
    fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.state.clone());
        routes::configure(cfg);
    }
}

impl Capability for Kpis {
    type Settings = KpiSettings;
    type Error = BuildError;

    /// Loads the definitions (recording the file's new ones) and, when
    /// `rollups.enabled`, starts the rollup worker and the publisher of the
    /// values dashboards read on `ctx.tasks`.
    async fn build(settings: KpiSettings, ctx: &Context) -> Result<Self, BuildError> {
        let from_file = settings.load()?;
        let state = web::Data::new(
            KpiState::load(ctx.store.client.clone(), from_file, ctx.clock.clone()).await?,
        );
        if settings.rollups.enabled {
            let period = std::time::Duration::from_secs(settings.rollups.interval_secs.max(1));
            // Background deadlines: a day of rollups takes longer than a request.
            rollup::spawn_worker(
                &ctx.tasks,
                state.definitions(),
                settings.rollups,
                ctx.store.background.clone(),
            );
            // The values dashboards read, on the rollups' cadence.
            published::start(
                &ctx.tasks,
                state.clone().into_inner(),
                period,
                ctx.store.background.clone(),
            );
        }
        Ok(Self { state })
    }
}
