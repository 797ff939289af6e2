//! The JSON ingest API and its reads, and the mounting of every ingest route.
//!
//! - `POST /v1/events`: business events (scope `ingest`);
//! - `POST /v1/metrics`: technical metric points (scope `ingest`);
//! - `GET /v1/events/summary`: what arrived, per event name (scope `read`);
//! - `GET /v1/metrics/quantile`: a percentile of a histogram metric (scope `read`);
//! - mounted from their modules: Prometheus remote write ([`crate::remote_write`]),
//!   Segment ([`crate::segment`]), OTLP/HTTP ([`crate::otlp`]) and
//!   `POST /v1/reconcile` ([`crate::reconcile`], scope `admin`).
//!
//! ```text
//! key, scope -> body (gzip, size limit) -> IngestState::admit (byte rate)
//!   -> records::encode_body with event::encode | metric::encode
//!   -> IngestState::store -> 202
//! ```
//!
//! Answers: 202 `{"accepted": n, "rejected": [{"index", "field", "reason"}]}` once the
//! accepted records are stored; 400 for a body that is not JSON, or when every
//! record is rejected (`no_valid_records`, with `accepted` and `rejected`);
//! 401/403/429 from the key checks; 413 over a request-wide limit; 415 for a
//! content type or encoding we do not read; 503 with `Retry-After` when the
//! records could not be confirmed stored. Errors are [`IngestError`]s, answered
//! through their one conversion into [`ApiError`].

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use hypercare_http::auth::{Caller, Scope};
use hypercare_http::body::read_body;
use hypercare_http::error::{ApiError, ErrorBody};
use hypercare_http::openapi::{BodyChecks, KeyChecks, StoreChecks};

use crate::budget::Budget;
use crate::error::IngestError;
use crate::records::{Framing, Rejection, Value, encode_body};
use crate::state::{IngestState, Table};
use crate::{event, metric};
use crate::{quantile, summary};

/// Mounts every ingest route (the state is mounted by [`crate::Ingest`]).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/events", web::post().to(post_events))
        .route("/v1/metrics", web::post().to(post_metrics))
        .route("/v1/events/summary", web::get().to(get_summary))
        .route(
            "/v1/prometheus/write",
            web::post().to(crate::remote_write::post_write),
        )
        .route(
            "/v1/segment/v1/{call}",
            web::post().to(crate::segment::post_call),
        )
        .route("/v1/metrics/quantile", web::get().to(get_quantile));
    crate::otlp::configure(cfg);
    crate::reconcile::routes::configure(cfg);
}

#[derive(Debug, Serialize)]
struct Accepted<'a> {
    accepted: usize,
    rejected: &'a [Rejection],
}

#[derive(Debug, Clone, Copy)]
enum Signal {
    Events,
    Metrics,
}

impl Signal {
    fn label(self) -> &'static str {
        match self {
            Signal::Events => "event",
            Signal::Metrics => "metric",
        }
    }

    fn table(self) -> Table {
        match self {
            Signal::Events => Table::Events,
            Signal::Metrics => Table::MetricPoints,
        }
    }
}

/// Business events: one JSON object, an array, or NDJSON; gzip accepted.
#[utoipa::path(post, path = "/v1/events", tag = "ingest", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    request_body(description = "One event, an array of events, or NDJSON (one per line)",
        content((crate::schema::EventsBody = "application/json"), (String = "application/x-ndjson"))),
    responses(
        (status = 202, description = "The accepted records are stored; bad ones are listed", body = crate::schema::AcceptedBody),
        (status = 400, description = "Not JSON, or no record is valid (`no_valid_records`, all listed)", body = crate::schema::IngestRefusal),
        KeyChecks, BodyChecks, crate::schema::WriteChecks,
    ))]
#[tracing::instrument(name = "ingest.events", skip_all, fields(key = %caller.name()))]
async fn post_events(
    req: HttpRequest,
    payload: web::Payload,
    caller: Caller,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    Ok(ingest(req, payload, caller, state, Signal::Events).await?)
}

/// Metric points: `gauge`, `counter`, `histogram` (explicit buckets).
#[utoipa::path(post, path = "/v1/metrics", tag = "ingest", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    request_body(description = "One point, an array of points, or NDJSON (one per line)",
        content((crate::schema::MetricsBody = "application/json"), (String = "application/x-ndjson"))),
    responses(
        (status = 202, description = "The accepted points are stored; bad ones are listed", body = crate::schema::AcceptedBody),
        (status = 400, description = "Not JSON, or no point is valid (`no_valid_records`, all listed)", body = crate::schema::IngestRefusal),
        KeyChecks, BodyChecks, crate::schema::WriteChecks,
    ))]
#[tracing::instrument(name = "ingest.metrics", skip_all, fields(key = %caller.name()))]
async fn post_metrics(
    req: HttpRequest,
    payload: web::Payload,
    caller: Caller,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    Ok(ingest(req, payload, caller, state, Signal::Metrics).await?)
}

async fn ingest(
    req: HttpRequest,
    payload: web::Payload,
    caller: Caller,
    state: web::Data<IngestState>,
    signal: Signal,
) -> Result<HttpResponse, IngestError> {
    caller.authorize(Scope::Ingest)?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let framing = Framing::from_content_type(content_type).ok_or_else(|| {
        IngestError::UnsupportedContentType {
            found: content_type.unwrap_or("").to_owned(),
            expected: "application/json or application/x-ndjson",
        }
    })?;
    let limit = state.limits.body(state.limits.max_body_bytes);
    let body = read_body(&req, payload, limit).await?;
    let admission = state.admit(&req, &caller, body.len())?;
    let table = signal.table();
    let budget = Budget::for_request(
        admission.limits(),
        body.len(),
        state.writer(table).max_request_bytes(),
    );
    let ctx = admission.context();
    let encode = match signal {
        Signal::Events => event::encode,
        Signal::Metrics => metric::encode,
    };
    let batch = encode_body(&body, framing, &budget, |record: &Value, out| {
        encode(record, &ctx, out)
    })?;
    drop(body);
    let stored = state
        .store(&admission, &ctx, table, signal.label(), batch)
        .await?;
    Ok(HttpResponse::Accepted().json(Accepted {
        accepted: stored.accepted,
        rejected: &stored.rejected,
    }))
}

/// `GET /v1/metrics/quantile?name=&q=&from=&to=&label.<key>=<value>...`
#[utoipa::path(get, path = "/v1/metrics/quantile", tag = "ingest", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(
        ("name" = String, Query, description = "The histogram metric"),
        ("q" = Option<f64>, Query, description = "The quantile, 0..1; default 0.95"),
        ("from" = Option<String>, Query, format = DateTime, description = "RFC 3339; default an hour ago"),
        ("to" = Option<String>, Query, format = DateTime, description = "RFC 3339; default now"),
    ),
    description = "A percentile of a histogram metric over its series; `label.<key>=<value>` parameters pick series. A name with no histogram series is read as a classic Prometheus family (`<name>_bucket{le}`), as `histogram_quantile(q, sum by (le) (rate(<name>_bucket[to - from])))` at `to`; an OTLP metric may be named by its Prometheus name. 400 `invalid_request` names `q`, `from`, `to`, `name` (mixed bounds, too many series) or `from` (too many points of a classic family in the window).",
    responses(
        (status = 200, description = "The estimate", body = crate::quantile::Quantile),
        (status = 400, description = "A parameter is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        KeyChecks,
        StoreChecks,
    ))]
#[tracing::instrument(name = "ingest.quantile", skip_all, fields(key = %caller.name()))]
async fn get_quantile(
    caller: Caller,
    query: web::Query<Vec<(String, String)>>,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    let query = QuantileQuery::parse(query.into_inner(), state.now_ms() / 1000)?;
    let request = quantile::Request {
        name: &query.name,
        q: query.q,
        from: query.from,
        to: query.to,
        labels: &query.labels,
    };
    let error = match quantile::quantile(&state.store, &request).await {
        Ok(answer) => return Ok(HttpResponse::Ok().json(answer)),
        Err(quantile::QuantileError::Query(e)) => IngestError::Query(e),
        Err(
            e @ (quantile::QuantileError::MixedBounds(..) | quantile::QuantileError::TooManySeries),
        ) => IngestError::BadQuery {
            field: "name",
            reason: e.to_string(),
        },
        Err(e @ quantile::QuantileError::TooManyPoints) => IngestError::BadQuery {
            field: "from",
            reason: e.to_string(),
        },
    };
    Err(error.into())
}

/// The parameters of a quantile read.
#[derive(Debug, PartialEq)]
struct QuantileQuery {
    name: String,
    q: f64,
    from: i64,
    to: i64,
    labels: Vec<(String, String)>,
}

impl QuantileQuery {
    /// Reads `name`, `q` (default 0.95), `from` and `to` (default the hour
    /// before `now`, in epoch seconds) and `label.<key>` parameters.
    fn parse(pairs: Vec<(String, String)>, now: i64) -> Result<Self, IngestError> {
        let mut name = None;
        let mut q = 0.95;
        let (mut from, mut to) = (now - 3600, now + 1);
        let mut labels = Vec::new();
        for (key, value) in pairs {
            match key.as_str() {
                "name" => name = Some(value),
                "q" => {
                    q = value
                        .parse::<f64>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .ok_or(IngestError::BadQuery {
                            field: "q",
                            reason: format!("`{value}` is not a number between 0 and 1"),
                        })?;
                }
                "from" => from = parse_time("from", &value)?,
                "to" => to = parse_time("to", &value)?,
                other => match other.strip_prefix("label.") {
                    Some(label) if !label.is_empty() => labels.push((label.to_owned(), value)),
                    _ => {
                        return Err(IngestError::BadQuery {
                            field: "query",
                            reason: format!(
                                "`{other}` is not a parameter: use name, q, from, to and label.<key>"
                            ),
                        });
                    }
                },
            }
        }
        let name = name.ok_or(IngestError::BadQuery {
            field: "name",
            reason: "is required".into(),
        })?;
        check_range(from, to)?;
        Ok(Self {
            name,
            q,
            from,
            to,
            labels,
        })
    }
}

fn check_range(from: i64, to: i64) -> Result<(), IngestError> {
    if from >= to {
        return Err(IngestError::BadQuery {
            field: "from",
            reason: "must be before `to`".into(),
        });
    }
    Ok(())
}

fn parse_time(field: &'static str, text: &str) -> Result<i64, IngestError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|e| IngestError::BadQuery {
            field,
            reason: format!("is not an RFC 3339 time ({e})"),
        })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SummaryQuery {
    from: Option<String>,
    to: Option<String>,
}

/// Distinct events and users per event name in a time range (default the last 24 h).
#[utoipa::path(get, path = "/v1/events/summary", tag = "ingest", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(
        ("from" = Option<String>, Query, format = DateTime, description = "RFC 3339; default 24 h ago"),
        ("to" = Option<String>, Query, format = DateTime, description = "RFC 3339; default now"),
    ),
    responses(
        (status = 200, description = "Per event name", body = crate::summary::Summary),
        (status = 400, description = "A parameter is wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        KeyChecks,
        StoreChecks,
    ))]
#[tracing::instrument(name = "ingest.summary", skip_all, fields(key = %caller.name()))]
async fn get_summary(
    caller: Caller,
    query: web::Query<SummaryQuery>,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    let now = state.now_ms() / 1000;
    let parse = |field: &'static str, value: &Option<String>, default: i64| match value {
        None => Ok(default),
        Some(text) => parse_time(field, text),
    };
    let from = parse("from", &query.from, now - 24 * 3600)?;
    let to = parse("to", &query.to, now + 1)?;
    check_range(from, to)?;
    let rows = summary::event_summary(&state.store, from, to)
        .await
        .map_err(IngestError::Query)?;
    Ok(HttpResponse::Ok().json(summary::Summary {
        from: summary::rfc3339(from),
        to: summary::rfc3339(to),
        events: rows,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_341_600;

    fn parse(pairs: &[(&str, &str)]) -> Result<QuantileQuery, IngestError> {
        let pairs = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        QuantileQuery::parse(pairs, NOW)
    }

    fn field_of(error: IngestError) -> &'static str {
        match error {
            IngestError::BadQuery { field, .. } => field,
            other => panic!("not a bad query: {other}"),
        }
    }

    #[test]
    fn a_quantile_query_defaults_to_p95_over_the_last_hour_and_keeps_labels() {
        let query = parse(&[("name", "latency"), ("label.route", "/pay")]).unwrap();
        assert_eq!(
            query,
            QuantileQuery {
                name: "latency".into(),
                q: 0.95,
                from: NOW - 3600,
                to: NOW + 1,
                labels: vec![("route".into(), "/pay".into())],
            }
        );
    }

    #[test]
    fn each_bad_quantile_parameter_is_named() {
        assert_eq!(field_of(parse(&[("q", "0.5")]).unwrap_err()), "name");
        assert_eq!(
            field_of(parse(&[("name", "m"), ("q", "2")]).unwrap_err()),
            "q"
        );
        assert_eq!(
            field_of(parse(&[("name", "m"), ("from", "monday")]).unwrap_err()),
            "from"
        );
        assert_eq!(
            field_of(parse(&[("name", "m"), ("label.", "x")]).unwrap_err()),
            "query"
        );
        let backwards = [
            ("name", "m"),
            ("from", "2026-11-21T10:00:00Z"),
            ("to", "2026-11-21T09:00:00Z"),
        ];
        assert_eq!(field_of(parse(&backwards).unwrap_err()), "from");
    }
}
