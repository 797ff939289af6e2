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
//! Definitions come from a YAML file (`[kpis] file`, checked at start-up) and the
//! API; every version is kept in `kpi_definitions`. Values are computed from
//! `events`, exactly, through hourly rollups where they are up to date (see
//! [`query`] and [`rollup`]); days are cut in the launch's time zone.

pub mod api_doc;
pub mod cli;
pub mod clock;
pub mod definition;
pub mod pace;
pub mod published;
pub mod query;
pub mod rollup;
pub mod routes;

use std::path::PathBuf;

use serde::Deserialize;

pub use routes::{KpiState, configure};

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
    /// Tests set a manual clock here ("now" of the board, days and series);
    /// the service uses the system clock.
    #[serde(skip)]
    pub clock: Option<clock::SharedClock>,
}

impl KpiSettings {
    pub fn load(&self) -> Result<Vec<definition::Kpi>, String> {
        match &self.file {
            None => Ok(Vec::new()),
            Some(path) => definition::load_file(path).map_err(|e| format!("kpis.file {e}")),
        }
    }
}
