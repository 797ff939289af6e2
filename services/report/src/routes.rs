//! The report's routes (scope `read`; `id` may be `current`; `day` is N of
//! D+N, today's by default):
//! - `GET /v1/launches/{id}/report?day=N&format=json|md|html`: the daily report
//!   (`format` or the `Accept` header; JSON by default);
//! - `GET /v1/launches/{id}/judgement?day=N`: the judge's verdict on every KPI.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use hypercare_http::ApiError;
use hypercare_http::auth::{Caller, Scope};
use hypercare_http::error::ErrorBody;
use hypercare_http::openapi::{KeyChecks, QueryChecks};
use hypercare_kpis::KpiState;
use serde::Deserialize;

use crate::ReportState;
use crate::document::DailyReport;
use crate::exit::routes::WithExit;
use crate::make::Freshness;
pub use crate::render::Format;
use crate::verdicts::{self, DayJudgement};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/launches/{id}/judgement", web::get().to(judgement))
        .route("/v1/launches/{id}/report", web::get().to(report))
        .route(
            "/v1/launches/{id}/stages",
            web::get().to(crate::stages::routes::stages),
        );
    crate::exit::routes::configure(cfg);
    crate::delivery::routes::configure(cfg);
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// N of D+N (negative for a baseline day); today's by default.
    day: Option<i64>,
    /// `json`, `md` or `html`; else the `Accept` header decides (JSON by default).
    format: Option<Format>,
    /// `true`: make the report again from what the tables hold now (and keep
    /// that one), instead of the one kept when the day ended.
    #[serde(default)]
    refresh: bool,
    /// First day of a range (with `to`, instead of `day`): one line per day.
    from: Option<i64>,
    /// Last day of a range, at most 45 days after `from` and not after today.
    to: Option<i64>,
}

/// The daily stabilization report of D+N: the call and its reasons first,
/// then KPIs with the judge's verdicts, alerts, tickets, capacity, rollout and
/// what changed since the day before (docs/report.md). A day that is over is
/// made once and kept: it reads the same tomorrow.
#[utoipa::path(get, path = "/v1/launches/{id}/report", operation_id = "launch_report", tag = "report",
    security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Launch id, or `current`"), ReportQuery),
    responses(
        (status = 200, description = "The report of `day` (a `DailyReport`), or one line per day of `from`..`to` (a `RangeReport`), as JSON, Markdown or HTML",
            content((DailyReport = "application/json"), (String = "text/markdown"), (String = "text/html"))),
        (status = 400, description = "A bad `day` or `format`, or a day not started (`invalid_request`)", body = ErrorBody),
        (status = 404, description = "No such launch (`not_found`)", body = ErrorBody),
        KeyChecks,
        QueryChecks,
    ))]
async fn report(
    caller: Caller,
    request: HttpRequest,
    id: web::Path<String>,
    query: web::Query<ReportQuery>,
    report: web::Data<ReportState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    let launch = report.kpis().launch(&id).await?;
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let format = Format::negotiate(query.format, accept);
    let (media, body) = match (query.from, query.to) {
        (None, None) => {
            let day = day_or_today(report.kpis(), &launch, query.day)?;
            let freshness = if query.refresh {
                Freshness::Remake
            } else {
                Freshness::Stored
            };
            format.write(&report.report(&launch, day, freshness).await?)
        }
        (Some(from), Some(to)) => {
            let (from, to) = checked_range(report.kpis(), &launch, &query, from, to)?;
            let range = crate::range::summarize(&report.range(&launch, from, to).await?);
            match format {
                Format::Json => (
                    "application/json",
                    serde_json::to_string(&range).unwrap_or_default(),
                ),
                Format::Md => (
                    "text/markdown; charset=utf-8",
                    crate::range::markdown(&range),
                ),
                Format::Html => ("text/html; charset=utf-8", crate::range::html(&range)),
            }
        }
        (None, Some(_)) => return Err(ApiError::invalid("from", "is needed with `to`")),
        (Some(_), None) => return Err(ApiError::invalid("to", "is needed with `from`")),
    };
    let mut answer = HttpResponse::Ok();
    answer
        .content_type(media)
        .insert_header((header::VARY, "Accept"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if media.starts_with("text/html") {
        answer.insert_header((header::CONTENT_SECURITY_POLICY, crate::render::html::CSP));
    }
    Ok(answer.body(body))
}

/// A range's days, checked: not with `day` or `refresh`, in order, at most
/// [`crate::range::MAX_DAYS`] long, and not past today.
fn checked_range(
    kpis: &KpiState,
    launch: &hypercare_kpis::launch::LaunchRow,
    query: &ReportQuery,
    from: i64,
    to: i64,
) -> Result<(i64, i64), ApiError> {
    if query.day.is_some() {
        return Err(ApiError::invalid("day", "cannot be combined with from/to"));
    }
    if query.refresh {
        return Err(ApiError::invalid(
            "refresh",
            "applies to one day (`day`), not to a range",
        ));
    }
    let from = day_or_today(kpis, launch, Some(from))
        .map_err(|_| ApiError::invalid("from", "must be between -400 and 400"))?;
    let to = day_or_today(kpis, launch, Some(to))
        .map_err(|_| ApiError::invalid("to", "must be between -400 and 400"))?;
    let today = day_or_today(kpis, launch, None)?;
    if to < from {
        return Err(ApiError::invalid("to", "must not be before `from`"));
    }
    if to - from >= crate::range::MAX_DAYS {
        return Err(ApiError::invalid(
            "to",
            format!("a range holds at most {} days", crate::range::MAX_DAYS),
        ));
    }
    if to > today {
        return Err(ApiError::invalid(
            "to",
            format!("D{to:+} has not started yet (today is D{today:+})"),
        ));
    }
    Ok((from, to))
}

/// `day`, checked, or today's N in the launch's zone.
fn day_or_today(
    kpis: &KpiState,
    launch: &hypercare_kpis::launch::LaunchRow,
    day: Option<i64>,
) -> Result<i64, ApiError> {
    let tz = launch.tz().map_err(hypercare_kpis::KpiError::from)?;
    let today = (hypercare_kpis::calendar::local_date(kpis.now_secs(), tz) - launch.window(tz).d0)
        .num_days();
    let day = day.unwrap_or(today);
    if !(-400..=400).contains(&day) {
        return Err(ApiError::invalid("day", "must be between -400 and 400"));
    }
    Ok(day)
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
    report: web::Data<ReportState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    let kpis = report.kpis();
    let launch = kpis.launch(&id).await?;
    let day = day_or_today(kpis, &launch, query.day)?;
    let answer = verdicts::judge_day(kpis, &launch, day, report.rules()).await?;
    Ok(HttpResponse::Ok().json(answer))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(report, judgement, crate::stages::routes::stages, crate::delivery::routes::deliveries),
    modifiers(&WithExit),
    components(schemas(DailyReport, crate::range::RangeReport, DayJudgement, Format, crate::stages::Stages, crate::delivery::routes::Deliveries, crate::delivery::store::AttemptRow)),
    tags((name = "report", description = "The daily stabilization report, its go / hold / roll back call, the statistical judge of KPIs, the rollout stage gates, the exit criteria and the report's scheduled delivery"))
)]
pub struct ApiDoc;
