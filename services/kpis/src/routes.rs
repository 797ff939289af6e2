//! The launches and KPI HTTP API (see the crate documentation): each handler
//! checks the key's scope, parses its input (the error names the field), calls
//! [`KpiState`] and answers JSON. Errors convert once ([`crate::error`]).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate};
use serde::Deserialize;

use hypercare_http::auth::{Caller, Scope};
use hypercare_http::body::JsonBody;
use hypercare_http::error::{ApiError, ErrorBody, parse_json};
use hypercare_http::openapi::{BodyChecks, KeyChecks, QueryChecks};

use crate::definition::{Grain, Kpi};
use crate::launch::{NewLaunch, parse_tz};
use crate::state::{KpiState, SeriesRange};

/// For the alerts crate, which imports them from here: they live in [`crate::board`].
pub use crate::board::{Board, BoardEntry, KpiNow, PaceLevels};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/kpis", web::get().to(board))
        .route("/v1/kpis/{id}", web::get().to(show))
        .route("/v1/kpis/{id}", web::put().to(put))
        .route("/v1/kpis/{id}/series", web::get().to(series))
        .route("/v1/launches", web::post().to(create_launch))
        .route("/v1/launches", web::get().to(list_launches))
        .route("/v1/launches/{id}", web::get().to(show_launch))
        .route("/v1/launches/{id}/days", web::get().to(days));
}

fn rfc3339(field: &str, text: &str) -> Result<u64, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp().max(0) as u64)
        .map_err(|e| ApiError::invalid(field, format!("is not an RFC 3339 time ({e})")))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct BoardQuery {
    /// A local day (`YYYY-MM-DD`) instead of the default one.
    date: Option<String>,
}

/// The KPI board: every KPI on one day (today by default; the window's last day
/// once it has ended) against its target and the launch baseline (scope `read`).
#[utoipa::path(get, path = "/v1/kpis", operation_id = "kpi_board", tag = "kpis", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(BoardQuery),
    responses(
        (status = 200, description = "The board", body = Board),
        (status = 400, description = "A bad `date` (`invalid_request`, `field` names it)", body = ErrorBody),
        KeyChecks,
        QueryChecks,
    ))]
async fn board(
    caller: Caller,
    query: web::Query<BoardQuery>,
    state: web::Data<KpiState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    let asked =
        match &query.date {
            Some(text) => Some(NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| {
                ApiError::invalid("date", format!("is not a YYYY-MM-DD date ({e})"))
            })?),
            None => None,
        };
    Ok(HttpResponse::Ok().json(state.board_on(asked, false).await?))
}

/// A KPI definition and its versions (scope `read`).
#[utoipa::path(get, path = "/v1/kpis/{id}", operation_id = "show_kpi", tag = "kpis", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The KPI id")),
    responses(
        (status = 200, description = "The definition and its history", body = crate::repository::KpiDefinitions),
        (status = 404, description = "No such KPI (`not_found`)", body = ErrorBody),
        KeyChecks,
        QueryChecks,
    ))]
async fn show(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<KpiState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    let rows = state.history(&path).await?;
    Ok(HttpResponse::Ok().json(crate::repository::KpiDefinitions::from_rows(&rows)))
}

/// Stores a KPI definition as a new version (scope `admin`); `id` defaults to the path's.
#[utoipa::path(put, path = "/v1/kpis/{id}", operation_id = "put_kpi", tag = "kpis", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The KPI id")),
    request_body(content((Kpi = "application/json"))),
    responses(
        (status = 200, description = "The version now current", body = crate::repository::KpiSaved),
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it), or the body is not JSON (`invalid_json`)", body = ErrorBody),
        KeyChecks, BodyChecks,
        QueryChecks,
    ))]
async fn put(
    caller: Caller,
    path: web::Path<String>,
    body: JsonBody,
    state: web::Data<KpiState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Admin)?;
    let mut value: serde_json::Value = parse_json(&body)?;
    if let Some(map) = value.as_object_mut() {
        map.entry("id").or_insert_with(|| path.as_str().into());
    }
    let kpi: Kpi = hypercare_http::error::from_json_value(value)?;
    if kpi.id != *path {
        return Err(ApiError::invalid(
            "id",
            format!("`{}` differs from the path's `{path}`", kpi.id),
        ));
    }
    let version = state.define(kpi, caller.name()).await?;
    Ok(HttpResponse::Ok().json(crate::repository::KpiSaved {
        id: path.into_inner(),
        version,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SeriesQuery {
    /// RFC 3339; default 14 days before `to`.
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339; default now.
    #[param(format = DateTime)]
    to: Option<String>,
    /// `hour` or `day`; default the KPI's grain.
    grain: Option<Grain>,
    /// Time zone of the buckets; default the current launch's, else UTC.
    tz: Option<String>,
}

/// A KPI per hour or day with gaps filled (scope `read`).
#[utoipa::path(get, path = "/v1/kpis/{id}/series", operation_id = "kpi_series", tag = "kpis", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The KPI id"), SeriesQuery),
    responses(
        (status = 200, description = "One point per bucket", body = crate::state::Series),
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        (status = 404, description = "No such KPI (`not_found`)", body = ErrorBody),
        KeyChecks,
        QueryChecks,
    ))]
async fn series(
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<SeriesQuery>,
    state: web::Data<KpiState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    let to = match &query.to {
        Some(t) => rfc3339("to", t)?,
        None => state.now_secs(),
    };
    let from = match &query.from {
        Some(t) => rfc3339("from", t)?,
        None => to.saturating_sub(14 * 86_400),
    };
    if from >= to || to - from > 400 * 86_400 {
        return Err(ApiError::invalid(
            "from",
            "must be before `to`, at most 400 days earlier",
        ));
    }
    let tz = match &query.tz {
        Some(name) => Some(parse_tz("tz", name).map_err(crate::error::KpiError::from)?),
        None => None,
    };
    let range = SeriesRange {
        from,
        to,
        grain: query.grain,
        tz,
    };
    Ok(HttpResponse::Ok().json(state.series(&path, range).await?))
}

/// Records a launch: D0, time zone, window, baseline, stages (scope `admin`).
#[utoipa::path(post, path = "/v1/launches", tag = "kpis", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    request_body(content((NewLaunch = "application/json"))),
    responses(
        (status = 201, description = "The launch", body = crate::launch::Launch),
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it), or the body is not JSON (`invalid_json`)", body = ErrorBody),
        KeyChecks, BodyChecks,
        QueryChecks,
    ))]
async fn create_launch(
    caller: Caller,
    body: JsonBody,
    state: web::Data<KpiState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Admin)?;
    let input: NewLaunch = parse_json(&body)?;
    let row = state.declare_launch(input, caller.name()).await?;
    Ok(HttpResponse::Created().json(row.view()))
}

/// Every launch, newest first (scope `read`).
#[utoipa::path(get, path = "/v1/launches", tag = "kpis", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The launches", body = Vec<crate::launch::Launch>),
        KeyChecks,
        QueryChecks,
    ))]
async fn list_launches(
    caller: Caller,
    state: web::Data<KpiState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    let launches: Vec<_> = state.launches().await?.iter().map(|l| l.view()).collect();
    Ok(HttpResponse::Ok().json(launches))
}

/// One launch (scope `read`).
#[utoipa::path(get, path = "/v1/launches/{id}", tag = "kpis", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The launch id, or `current`")),
    responses(
        (status = 200, description = "The launch", body = crate::launch::Launch),
        (status = 404, description = "No such launch (`not_found`)", body = ErrorBody),
        KeyChecks,
        QueryChecks,
    ))]
async fn show_launch(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<KpiState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    Ok(HttpResponse::Ok().json(state.launch(&path).await?.view()))
}

/// The baseline days D-B..D-1 (marked `baseline`) and each day D0..D+N of a
/// launch, with every KPI's value and status that day. Today is the board's
/// (at pace, `complete: false`); days to come have no data.
#[utoipa::path(get, path = "/v1/launches/{id}/days", operation_id = "launch_days", tag = "kpis", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The launch id, or `current`")),
    responses(
        (status = 200, description = "One entry per day", body = crate::launch::LaunchDays),
        (status = 404, description = "No such launch (`not_found`)", body = ErrorBody),
        KeyChecks,
        QueryChecks,
    ))]
async fn days(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<KpiState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    Ok(HttpResponse::Ok().json(state.days(&path).await?))
}
