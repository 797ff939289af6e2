//! `GET /v1/logs?request_id=&user_id=&service=&severity=&q=&from=&to=&limit=&cursor=`
//! (scope `read`): stored OTLP log lines in time order.
//!
//! Data flow: the query string -> [`filter::LogParams::check`] (400
//! `invalid_request` naming the field) -> [`store::search`] (one statement,
//! `limit + 1` rows, deadline) -> [`LogPage`] with `next_cursor` when more
//! lines match. 503 `storage_unavailable` when ClickHouse cannot answer.
//!
//! `request_id` matches the attributes `request_id`, `request.id`,
//! `http.request.id`; `user_id` matches `user_id`, `user.id`, `enduser.id`;
//! `severity` keeps that level and above; `q` is a case-insensitive text of the
//! body. Without `from`, the day before `to` (default now) is read.

pub mod cli;
pub mod filter;
pub mod store;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use hypercare_http::auth::{Caller, Scope};
use hypercare_http::error::{ApiError, ErrorBody};
use hypercare_http::openapi::{KeyChecks, StoreChecks};

use crate::{InvestigateError, InvestigateState};
use filter::{LogParams, rfc3339_ns};
use store::LogLine;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/logs", web::get().to(get_logs));
}

/// One page of log lines.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogPage {
    /// The window read (RFC 3339, UTC).
    pub from: String,
    pub to: String,
    pub lines: Vec<LogLine>,
    /// Pass it as `cursor` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl InvestigateState {
    /// The lines the parameters select now.
    pub async fn logs(&self, params: LogParams) -> Result<LogPage, InvestigateError> {
        let filter = params.check(self.clock.now_ms() / 1000)?;
        let mut lines = store::search(&self.store, &filter).await?;
        let more = lines.len() > filter.limit as usize;
        lines.truncate(filter.limit as usize);
        Ok(LogPage {
            from: rfc3339_ns(filter.from_ns),
            to: rfc3339_ns(filter.to_ns),
            next_cursor: more
                .then(|| lines.last().map(|l| l.cursor().encode()))
                .flatten(),
            lines,
        })
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct LogsQuery {
    /// Lines of one request (attribute `request_id`, `request.id` or `http.request.id`).
    request_id: Option<String>,
    /// Lines naming a user (attribute `user_id`, `user.id` or `enduser.id`).
    user_id: Option<String>,
    /// The resource's `service.name`.
    service: Option<String>,
    /// This level and above: trace, debug, info, warn, error, fatal.
    severity: Option<String>,
    /// Text the body contains, any case.
    q: Option<String>,
    /// RFC 3339; default one day before `to`. The window is at most 7 days.
    from: Option<String>,
    /// RFC 3339; default now.
    to: Option<String>,
    /// Lines per page, 1..=1000; default 100.
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Stored log lines, filtered, in time order.
#[utoipa::path(get, path = "/v1/logs", tag = "investigate", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(LogsQuery),
    responses(
        (status = 200, description = "A page of log lines", body = LogPage),
        (status = 400, description = "A parameter is wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        KeyChecks,
        StoreChecks,
    ))]
#[tracing::instrument(name = "investigate.logs", skip_all, fields(key = %caller.name()))]
pub(crate) async fn get_logs(
    caller: Caller,
    query: web::Query<LogsQuery>,
    state: web::Data<InvestigateState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    let LogsQuery {
        request_id,
        user_id,
        service,
        severity,
        q,
        from,
        to,
        limit,
        cursor,
    } = query.into_inner();
    let params = LogParams {
        request_id,
        user_id,
        service,
        severity,
        q,
        from,
        to,
        limit,
        cursor,
    };
    Ok(HttpResponse::Ok().json(state.logs(params).await?))
}
