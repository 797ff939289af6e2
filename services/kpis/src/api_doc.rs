//! The launch and KPI routes in the OpenAPI document (`GET /v1/openapi.json`).
//!
//! The handlers carry their own `#[utoipa::path]` and their answers are typed
//! (the board in [`crate::board`], series in [`crate::state`], launches and
//! days in [`crate::launch`]); the definitions' answers are here.

use utoipa::{OpenApi, ToSchema};

use hypercare_http::openapi::SecuritySchemes;
use serde::Serialize;

use crate::definition::Kpi;
use crate::repository::DefinitionRow;

/// `GET /v1/kpis/{id}`: the current definition and every version.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiDefinitions {
    pub id: String,
    pub version: u32,
    #[schema(value_type = Kpi)]
    pub definition: serde_json::Value,
    pub history: Vec<KpiVersion>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KpiVersion {
    pub version: u32,
    /// `file` or `api`.
    pub source: String,
    pub actor: String,
    pub at: String,
    #[schema(value_type = Kpi)]
    pub definition: serde_json::Value,
}

impl KpiDefinitions {
    /// From the stored versions, oldest first (at least one).
    pub fn from_rows(rows: &[DefinitionRow]) -> Self {
        let parse = |text: &str| serde_json::from_str(text).unwrap_or_default();
        let last = rows.last();
        Self {
            id: last.map(|r| r.kpi_id.clone()).unwrap_or_default(),
            version: last.map_or(0, |r| r.version),
            definition: last.map(|r| parse(&r.definition)).unwrap_or_default(),
            history: rows
                .iter()
                .map(|r| KpiVersion {
                    version: r.version,
                    source: r.source.clone(),
                    actor: r.actor.clone(),
                    at: chrono::DateTime::from_timestamp_millis(r.at_ms as i64)
                        .unwrap_or_default()
                        .to_rfc3339(),
                    definition: parse(&r.definition),
                })
                .collect(),
        }
    }
}

/// `PUT /v1/kpis/{id}`: the version now current.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiSaved {
    pub id: String,
    pub version: u32,
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
