//! `GET /v1/reports/deliveries?since=&limit=` (scope `read`): the delivery
//! attempts of the daily report, newest first.

use actix_web::{HttpResponse, web};
use hypercare_http::ApiError;
use hypercare_http::auth::{Caller, Scope};
use hypercare_http::error::ErrorBody;
use hypercare_http::openapi::{KeyChecks, QueryChecks};
use serde::{Deserialize, Serialize};

use crate::ReportState;
use crate::delivery::store::{self, AttemptRow};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/reports/deliveries", web::get().to(deliveries));
}

/// The most rows one answer holds.
pub const MAX_LIMIT: u64 = 1000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// RFC 3339; attempts at or after it. Default: all.
    #[param(format = DateTime)]
    since: Option<String>,
    /// 1 to 1000; default 100. (Read as text so that a bad value is
    /// refused naming `limit`.)
    #[param(value_type = Option<u64>)]
    limit: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ReportDeliveries)]
pub struct Deliveries {
    pub deliveries: Vec<AttemptRow>,
}

/// `since` and `limit` checked: (ms since the epoch, rows).
pub fn parse_query(since: Option<&str>, limit: Option<&str>) -> Result<(u64, u64), ApiError> {
    let since_ms = match since {
        None => 0,
        Some(text) => {
            let at = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| {
                ApiError::invalid(
                    "since",
                    "must be an RFC 3339 time, e.g. 2026-11-18T08:30:00+01:00",
                )
            })?;
            u64::try_from(at.timestamp_millis())
                .map_err(|_| ApiError::invalid("since", "must be after 1970"))?
        }
    };
    let limit = match limit {
        None => 100,
        Some(text) => text.parse::<u64>().unwrap_or(0),
    };
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    Ok((since_ms, limit))
}

/// The daily report's delivery attempts, newest first: every webhook POST and
/// folder write, with `retrying`, `delivered` or `failed` (docs/report.md,
/// "Delivery"). Webhook URLs are shown without their secret path.
#[utoipa::path(get, path = "/v1/reports/deliveries", operation_id = "report_deliveries", tag = "report",
    security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(DeliveriesQuery),
    responses(
        (status = 200, description = "The attempts, newest first", body = Deliveries),
        (status = 400, description = "A bad `since` or `limit`, or an unknown parameter (`invalid_request`, `field` names it)", body = ErrorBody),
        KeyChecks,
        QueryChecks,
    ))]
pub async fn deliveries(
    caller: Caller,
    query: web::Query<DeliveriesQuery>,
    report: web::Data<ReportState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    let (since_ms, limit) = parse_query(query.since.as_deref(), query.limit.as_deref())?;
    let rows = store::attempts(&report.store, since_ms, limit)
        .await
        .map_err(ApiError::storage)?;
    Ok(HttpResponse::Ok().json(Deliveries { deliveries: rows }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_and_limit_are_checked_by_field() {
        assert_eq!(parse_query(None, None).unwrap(), (0, 100));
        assert_eq!(
            parse_query(Some("1970-01-01T00:00:01Z"), Some("5")).unwrap(),
            (1000, 5)
        );
        let field = |e: ApiError| e.field().unwrap_or_default().to_owned();
        assert_eq!(
            field(parse_query(Some("yesterday"), None).unwrap_err()),
            "since"
        );
        assert_eq!(
            field(parse_query(Some("1960-01-01T00:00:00Z"), None).unwrap_err()),
            "since"
        );
        assert_eq!(field(parse_query(None, Some("0")).unwrap_err()), "limit");
        for bad in ["1001", "-1", "ten", ""] {
            assert_eq!(field(parse_query(None, Some(bad)).unwrap_err()), "limit");
        }
    }
}
