//! `GET /v1/launches/{id}/exit[?format=json|md|html]` (scope `read`; `id` may
//! be `current`): the exit criteria as of the launch's last whole day, as JSON,
//! or the exit report as Markdown or HTML (`format` or the `Accept` header).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use hypercare_http::ApiError;
use hypercare_http::auth::{Caller, Scope};
use hypercare_http::error::ErrorBody;
use hypercare_http::openapi::{KeyChecks, QueryChecks};
use serde::Deserialize;

use super::{ExitReport, render};
use crate::ReportState;
use crate::render::Format;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/launches/{id}/exit", web::get().to(exit));
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExitQuery {
    /// `json`, `md` or `html`; else the `Accept` header decides (JSON by default).
    format: Option<Format>,
}

/// The exit criteria for the handover to normal operations, evaluated as of
/// the launch's last whole day (the window's last day once it is over): no
/// P0/P1 alert in the last days, every KPI ok, no open P0/P1 ticket, SLA
/// breaches under a limit, capacity headroom (`[report.exit]`,
/// docs/report.md). Each criterion is `met`, `not_met` or `no_data` with its
/// evidence; `ready` is true only when all are met.
#[utoipa::path(get, path = "/v1/launches/{id}/exit", operation_id = "launch_exit", tag = "report",
    security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Launch id, or `current`"), ExitQuery),
    responses(
        (status = 200, description = "The criteria as JSON, or the exit report as Markdown or HTML",
            content((ExitReport = "application/json"), (String = "text/markdown"), (String = "text/html"))),
        (status = 400, description = "An unknown parameter or a bad `format` (`invalid_request`)", body = ErrorBody),
        (status = 404, description = "No such launch (`not_found`)", body = ErrorBody),
        KeyChecks,
        QueryChecks,
    ))]
async fn exit(
    caller: Caller,
    request: HttpRequest,
    id: web::Path<String>,
    query: web::Query<ExitQuery>,
    report: web::Data<ReportState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    let launch = report.kpis().launch(&id).await?;
    let answer = report.exit(&launch).await?;
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let (media, body) = match Format::negotiate(query.format, accept) {
        Format::Json => (
            "application/json",
            serde_json::to_string(&answer).unwrap_or_default(),
        ),
        Format::Md => ("text/markdown; charset=utf-8", render::markdown(&answer)),
        Format::Html => ("text/html; charset=utf-8", render::html(&answer)),
    };
    Ok(HttpResponse::Ok()
        .content_type(media)
        .insert_header((header::VARY, "Accept"))
        .body(body))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(exit),
    components(schemas(ExitReport, super::Criterion, super::Outcome))
)]
pub struct ExitApiDoc;

/// Adds the exit route to the report's API document.
pub struct WithExit;

impl utoipa::Modify for WithExit {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::OpenApi as _;
        openapi.merge(ExitApiDoc::openapi());
    }
}
