//! The JSON error body: `{"error": "<code>", "message": "<what to fix>", "field": ...}`.
//!
//! `error` is a stable machine-readable code; `message` is an English sentence for
//! the person reading it; `field` names the offending input when there is one.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `invalid_query`.
    pub error: &'static str,
    /// What to fix, for the person reading it.
    pub message: String,
    /// The offending input, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A response with the JSON error body.
pub fn error_response(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody {
        error: code,
        message: message.into(),
        field: None,
    })
}
