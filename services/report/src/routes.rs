//! `GET /v1/launches/{id}/judgement?day=N` (scope `read`): the statistical
//! judge's verdict on every KPI for day D+N of a launch (today by default).

use actix_web::{HttpResponse, web};
use hypercare_http::ApiError;
use hypercare_http::auth::{Caller, Scope};
use hypercare_http::error::ErrorBody;
use hypercare_http::openapi::{KeyChecks, QueryChecks};
use hypercare_kpis::KpiState;
use serde::Deserialize;

use crate::ReportState;
use crate::verdicts::{self, DayJudgement};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/launches/{id}/judgement", web::get().to(judgement));
    cfg.route(
        "/v1/launches/{id}/stages",
        web::get().to(crate::stages::routes::stages),
    );
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JudgementQuery {
    /// N of D+N (negative for a baseline day); today's by default.
    day: Option<i64>,
}

/// The judge's verdict on every KPI for one day of a launch: its whole hours
/// against the same hours of the baseline days (Mann-Whitney U, Hodges-Lehmann
/// shift, Holm across KPIs; docs/report.md).
#[utoipa::path(get, path = "/v1/launches/{id}/judgement", operation_id = "launch_judgement", tag = "report",
    security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Launch id, or `current`"), JudgementQuery),
    responses(
        (status = 200, description = "Every KPI's verdict", body = DayJudgement),
        (status = 400, description = "A bad `day` (`invalid_request`)", body = ErrorBody),
        (status = 404, description = "No such launch (`not_found`)", body = ErrorBody),
        KeyChecks,
        QueryChecks,
    ))]
async fn judgement(
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<JudgementQuery>,
    kpis: web::Data<KpiState>,
    report: web::Data<ReportState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    let launch = kpis.launch(&id).await?;
    let tz = launch.tz().map_err(hypercare_kpis::KpiError::from)?;
    let today = (hypercare_kpis::calendar::local_date(kpis.now_secs(), tz) - launch.window(tz).d0)
        .num_days();
    let day = query.day.unwrap_or(today);
    if !(-400..=400).contains(&day) {
        return Err(ApiError::invalid("day", "must be between -400 and 400"));
    }
    let answer = verdicts::judge_day(&kpis, &launch, day, report.rules()).await?;
    Ok(HttpResponse::Ok().json(answer))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(judgement, crate::stages::routes::stages),
    components(schemas(DayJudgement, crate::stages::Stages)),
    tags((name = "report", description = "The daily stabilization report: the statistical judge of KPIs"))
)]
pub struct ApiDoc;
