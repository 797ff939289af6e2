//! Launches and KPIs: the product owner's view of D0..D+14.
//!
//! ```text
//! POST /v1/launches                     declare a launch (admin); the last one is current
//! GET  /v1/launches, /v1/launches/{id}   (read)
//! GET  /v1/launches/{id}/days            each D+N day x each KPI: value and status
//! GET  /v1/kpis                          the board: today vs target and baseline, trend
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
pub mod definition;
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
}

impl KpiSettings {
    pub fn load(&self) -> Result<Vec<definition::Kpi>, String> {
        match &self.file {
            None => Ok(Vec::new()),
            Some(path) => definition::load_file(path).map_err(|e| format!("kpis.file {e}")),
        }
    }
}
