//! The ingest routes in the OpenAPI document (`GET /v1/openapi.json`).
//!
//! The handlers carry their own `#[utoipa::path]` beside them, with the schemas
//! of [`crate::schema`]; this module gathers them.

use utoipa::OpenApi;

use hypercare_http::openapi::SecuritySchemes;

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::routes::post_events,
        crate::routes::post_metrics,
        crate::routes::get_summary,
        crate::routes::get_quantile,
        crate::remote_write::post_write,
        crate::segment::post_call,
        crate::otlp::post_metrics,
        crate::otlp::post_logs,
        crate::reconcile::routes::post_reconcile,
    ),
    modifiers(&SecuritySchemes),
    tags((name = "ingest", description = "Events and metrics in: JSON, OTLP, Prometheus remote write, Segment"))
)]
pub struct ApiDoc;
