//! `GET /v1/launches/{id}/stages` (scope `read`): every rollout stage of a
//! launch with its window and its gate, the new release against the others.

use actix_web::{HttpResponse, web};
use hypercare_http::ApiError;
use hypercare_http::auth::{Caller, Scope};
use hypercare_http::error::ErrorBody;
use hypercare_http::openapi::{KeyChecks, QueryChecks};
use hypercare_kpis::KpiState;
use serde::Deserialize;

use super::{Stages, gates};
use crate::ReportState;

/// The route takes no parameter; one sent is refused rather than ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagesQuery {}

/// Every rollout stage of a launch, judged as of now: the launch's release
/// against every other release over the stage's window, interval by interval
/// (error ratio, latency quantiles, ratio KPIs; docs/report.md). A launch
/// without stages answers an empty list.
#[utoipa::path(get, path = "/v1/launches/{id}/stages", operation_id = "launch_stages", tag = "report",
    security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Launch id, or `current`")),
    responses(
        (status = 200, description = "Every stage's verdict", body = Stages),
        (status = 400, description = "A query parameter (`invalid_request`): the route takes none", body = ErrorBody),
        (status = 404, description = "No such launch (`not_found`)", body = ErrorBody),
        (status = 500, description = "The launch's stored stages cannot be read (`internal_error`)", body = ErrorBody),
        KeyChecks,
        QueryChecks,
    ))]
pub async fn stages(
    caller: Caller,
    id: web::Path<String>,
    _query: web::Query<StagesQuery>,
    kpis: web::Data<KpiState>,
    report: web::Data<ReportState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    let launch = kpis.launch(&id).await?;
    let answer = gates(&kpis, &launch, &report, kpis.now_secs()).await?;
    Ok(HttpResponse::Ok().json(answer))
}
