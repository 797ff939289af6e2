//! The launch and KPI routes in the OpenAPI document (`GET /v1/openapi.json`).
//!
//! The handlers carry their own `#[utoipa::path]` and their answers are typed
//! (the board in [`crate::board`], series in [`crate::state`], launches and
//! days in [`crate::launch`], definitions in [`crate::repository`]).

use utoipa::OpenApi;

use hypercare_http::openapi::SecuritySchemes;

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
