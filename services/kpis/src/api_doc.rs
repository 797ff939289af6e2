//! The launch and KPI routes in the OpenAPI document (`GET /v1/openapi.json`).
//!
//! The handlers carry their own `#[utoipa::path]`. The handlers that build their
//! answer with `serde_json::json!` are described by the schemas here: keep them
//! in step with `routes.rs` (the schemathesis run in the end-to-end tests checks
//! every answer against them).

#![allow(dead_code)] // The types only describe JSON the handlers write.

use std::collections::BTreeMap;

use utoipa::{OpenApi, ToSchema};

use hypercare_http::openapi::SecuritySchemes;

use crate::definition::{Grain, Kpi, Status};

/// `GET /v1/kpis/{id}`: the current definition and every version.
#[derive(ToSchema)]
pub struct KpiDefinitions {
    pub id: String,
    pub version: u32,
    pub definition: Kpi,
    pub history: Vec<KpiVersion>,
}

#[derive(ToSchema)]
pub struct KpiVersion {
    pub version: u32,
    /// `file` or `api`.
    pub source: String,
    pub actor: String,
    pub at: String,
    pub definition: Kpi,
}

/// `PUT /v1/kpis/{id}`: the version now current.
#[derive(ToSchema)]
pub struct KpiSaved {
    pub id: String,
    pub version: u32,
}

/// `GET /v1/kpis/{id}/series`.
#[derive(ToSchema)]
pub struct KpiSeries {
    pub id: String,
    pub grain: Grain,
    pub tz: String,
    pub target: f64,
    pub points: Vec<SeriesPoint>,
}

#[derive(ToSchema)]
pub struct SeriesPoint {
    /// The bucket's start, RFC 3339 in the series' time zone.
    pub start: Option<String>,
    pub value: Option<f64>,
    pub status: Status,
}

/// A launch as the API shows it.
#[derive(ToSchema)]
pub struct Launch {
    pub id: String,
    pub name: String,
    pub release: String,
    pub d0: String,
    pub tz: String,
    pub window_days: u16,
    pub baseline_days: u16,
    #[schema(value_type = Vec<Object>)]
    pub stages: Vec<serde_json::Value>,
}

/// `GET /v1/launches/{id}/days`.
#[derive(ToSchema)]
pub struct LaunchDays {
    pub launch: Launch,
    pub days: Vec<LaunchDay>,
}

#[derive(ToSchema)]
pub struct LaunchDay {
    /// `D-7` .. `D-1` for baseline days, then `D+0`, `D+1`, ...
    pub day: String,
    pub date: String,
    /// A baseline day (before D0), which the comparisons are made of.
    pub baseline: bool,
    /// The local day has ended; today is judged at pace, as on the board.
    pub complete: bool,
    pub kpis: BTreeMap<String, KpiDayValue>,
}

#[derive(ToSchema)]
pub struct KpiDayValue {
    pub value: Option<f64>,
    pub status: Status,
}

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::routes::board,
        crate::routes::show,
        crate::routes::put,
        crate::routes::series,
        crate::routes::create_launch,
        crate::routes::list_launches,
        crate::routes::show_launch,
        crate::routes::days,
    ),
    modifiers(&SecuritySchemes),
    tags((name = "kpis", description = "Launches and KPIs: board, definitions, series, D+N days"))
)]
pub struct ApiDoc;
