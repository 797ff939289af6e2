//! `GET /v1/capacity/headroom?service=&window_minutes=&replicas=&forecast_peak_rps=`
//! (scope `read`): 200 with the headroom and scaling plan; 400
//! `invalid_request` naming the field; 404 `not_found` when no load test run
//! of the service is recorded; 503 `storage_unavailable` when ClickHouse
//! cannot answer.
//!
//! The handler checks the key, checks the parameters
//! ([`crate::headroom::HeadroomRequest::check`]), asks
//! [`CapacityState::headroom`] (which the console's page calls too), and
//! answers JSON.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::headroom::HeadroomRequest;
pub use crate::state::{CapacityError, CapacityState};
use hypercare_http::auth::{Caller, Scope};
use hypercare_http::error::{ApiError, ErrorBody};
use hypercare_http::openapi::{KeyChecks, SecuritySchemes, StoreChecks};

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

/// Live peak against the load test baseline, with a scaling plan.
#[utoipa::path(get, path = "/v1/capacity/headroom", tag = "capacity", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(HeadroomQuery),
    responses(
        (status = 200, description = "Headroom and scaling plan", body = crate::headroom::Headroom),
        (status = 400, description = "A parameter is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        (status = 404, description = "No load test baseline for this service (`not_found`)", body = ErrorBody),
        KeyChecks,
        StoreChecks,
    ))]
#[tracing::instrument(name = "capacity.headroom", skip_all, fields(key = %caller.name()))]
async fn get_headroom(
    caller: Caller,
    query: web::Query<HeadroomQuery>,
    state: web::Data<CapacityState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    let HeadroomQuery {
        service,
        window_minutes,
        replicas,
        forecast_peak_rps,
    } = query.into_inner();
    let request = HeadroomRequest {
        service,
        window_minutes,
        replicas,
        forecast_peak_rps,
    }
    .check(&state.settings)
    .map_err(CapacityError::from)?;
    Ok(HttpResponse::Ok().json(state.headroom(&request).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headroom;
    use hypercare_http::error::ErrorCode;

    #[test]
    fn each_error_has_its_code() {
        let invalid = headroom::Invalid {
            field: "replicas",
            reason: "must be at least 1",
        };
        let error = ApiError::from(CapacityError::from(invalid));
        assert_eq!(
            (error.code(), error.field()),
            (ErrorCode::InvalidRequest, Some("replicas"))
        );
        let error = ApiError::from(CapacityError::NoBaseline("checkout".into()));
        assert_eq!(error.code(), ErrorCode::NotFound);
        assert!(error.message().contains("--service checkout"));
        let down = clickhouse::error::Error::Custom("connection refused".into());
        let error = ApiError::from(CapacityError::Store(down));
        assert_eq!(error.code(), ErrorCode::StorageUnavailable);
    }
}
