//! `GET /v1/capacity/headroom?service=&window_minutes=&replicas=&forecast_peak_rps=`
//! (scope `read`): 200 with the headroom and scaling plan; 400 naming the field;
//! 404 `no_baseline` when no load test run of the service is recorded; 503 when
//! ClickHouse cannot answer.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use serde::Deserialize;

use hypercare_http::auth::{AuthError, Caller, Scope};
use hypercare_http::error::ErrorBody;
use hypercare_http::openapi::{KeyChecks, SecuritySchemes, StoreChecks};

use crate::CapacitySettings;

pub struct CapacityState {
    pub settings: CapacitySettings,
    pub store: clickhouse::Client,
}

/// The capacity routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(get_headroom), modifiers(&SecuritySchemes),
    tags((name = "capacity", description = "Headroom against the load test baseline")))]
pub struct ApiDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/capacity/headroom", web::get().to(get_headroom));
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct HeadroomQuery {
    /// The `service` label of its metrics (required).
    service: Option<String>,
    /// The window the live peak is taken over; default `capacity.window_minutes`.
    window_minutes: Option<u32>,
    /// Replicas running now; default the baseline's.
    replicas: Option<u32>,
    /// The peak to plan for; default the live peak.
    forecast_peak_rps: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("query parameter `{field}` {reason}")]
    BadQuery { field: &'static str, reason: String },
    #[error(
        "no load test baseline is recorded for service `{0}`: run `hypercare loadtest run ... --service {0}` first"
    )]
    NoBaseline(String),
    #[error("the ClickHouse query failed: {0}; retry later")]
    Query(#[from] clickhouse::error::Error),
}

impl ResponseError for CapacityError {
    fn status_code(&self) -> StatusCode {
        match self {
            CapacityError::Auth(e) => e.status_code(),
            CapacityError::BadQuery { .. } => StatusCode::BAD_REQUEST,
            CapacityError::NoBaseline(_) => StatusCode::NOT_FOUND,
            CapacityError::Query(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (code, field) = match self {
            CapacityError::Auth(e) => return e.error_response(),
            CapacityError::BadQuery { field, .. } => ("invalid_query", Some((*field).to_owned())),
            CapacityError::NoBaseline(_) => ("no_baseline", None),
            CapacityError::Query(_) => ("query_failed", None),
        };
        HttpResponse::build(self.status_code()).json(ErrorBody {
            error: code.to_owned(),
            message: self.to_string(),
            field,
        })
    }
}

/// Live peak against the load test baseline, with a scaling plan.
#[utoipa::path(get, path = "/v1/capacity/headroom", tag = "capacity", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(HeadroomQuery),
    responses(
        (status = 200, description = "Headroom and scaling plan", body = crate::headroom::Headroom),
        (status = 400, description = "A parameter is missing or wrong (`invalid_query`, `field` names it)", body = ErrorBody),
        (status = 404, description = "No load test baseline for this service (`no_baseline`)", body = ErrorBody),
        KeyChecks,
        StoreChecks,
    ))]
#[tracing::instrument(name = "capacity.headroom", skip_all, fields(key = %caller.name()))]
async fn get_headroom(
    caller: Caller,
    query: web::Query<HeadroomQuery>,
    state: web::Data<CapacityState>,
) -> Result<HttpResponse, CapacityError> {
    caller.authorize(Scope::Read)?;
    let query = query.into_inner();
    let service = query
        .service
        .filter(|s| !s.is_empty())
        .ok_or(CapacityError::BadQuery {
            field: "service",
            reason: "is required (the service label of its metrics)".into(),
        })?;
    let window = query
        .window_minutes
        .unwrap_or(state.settings.window_minutes);
    if window == 0 || window > 14 * 24 * 60 {
        return Err(CapacityError::BadQuery {
            field: "window_minutes",
            reason: "must be between 1 and 20160 (14 days)".into(),
        });
    }
    if query.replicas == Some(0) {
        return Err(CapacityError::BadQuery {
            field: "replicas",
            reason: "must be at least 1".into(),
        });
    }
    if let Some(f) = query.forecast_peak_rps
        && !(f.is_finite() && f >= 0.0)
    {
        return Err(CapacityError::BadQuery {
            field: "forecast_peak_rps",
            reason: "must be a rate of 0 or more".into(),
        });
    }
    let answer = crate::headroom::current(
        &state.store,
        &state.settings,
        &service,
        window,
        query.replicas,
        query.forecast_peak_rps,
    )
    .await?
    .ok_or_else(|| CapacityError::NoBaseline(service.clone()))?;
    Ok(HttpResponse::Ok().json(answer))
}
