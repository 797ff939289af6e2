//! The ingest HTTP API.
//!
//! - `POST /v1/events`: business events (scope `ingest`);
//! - `POST /v1/metrics`: technical metric points (scope `ingest`);
//! - `GET /v1/events/summary`: what arrived, per event name (scope `read`);
//! - `POST /v1/prometheus/write`: Prometheus remote write ([`crate::remote_write`]);
//! - `POST /v1/segment/v1/{call}`: Segment's tracking API ([`crate::segment`]).
//!
//! Answers: 202 `{"accepted": n, "rejected": [{"index", "field", "reason"}]}` once the
//! accepted records are stored; 400 for a body that is not JSON, or when every
//! record is rejected; 401/403/429 from the key checks; 413 over a request-wide
//! limit; 415 for a content type or encoding we do not read; 503 with
//! `Retry-After` when the records could not be confirmed stored.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::{Deserialize, Serialize};

use hypercare_http::auth::{AuthError, Caller, Scope};
use hypercare_http::body::{BodyError, read_body};
use hypercare_http::error::ErrorBody;
use hypercare_http::openapi::{BodyChecks, KeyChecks, StoreChecks};

use crate::budget::{Budget, EncodedLimit, OverBudget};
use crate::config::Limits;
use crate::event::RequestContext;
use crate::metrics::IngestMetrics;
use crate::records::{BodyRefused, EncodedBatch, Framing, Rejection, Value, encode_body};
use crate::writer::{WriteError, Writer};
use crate::{event, metric};
use crate::{quantile, summary};

/// What the ingest routes share; one per application.
pub struct IngestState {
    pub limits: Limits,
    pub events: Writer,
    pub metrics: Writer,
    pub logs: Writer,
    pub store: clickhouse::Client,
    pub counters: IngestMetrics,
}

/// Mounts the ingest routes.
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
}

/// Business events: one JSON object, an array, or NDJSON; gzip accepted.
#[utoipa::path(post, path = "/v1/events", tag = "ingest", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    request_body(description = "One event, an array of events, or NDJSON (one per line)",
        content((crate::api_doc::EventsBody = "application/json"), (String = "application/x-ndjson"))),
    responses(
        (status = 202, description = "The accepted records are stored; bad ones are listed", body = crate::api_doc::AcceptedBody),
        (status = 400, description = "Not JSON, or no record is valid (`no_valid_records`, all listed)", body = crate::api_doc::IngestRefusal),
        KeyChecks, BodyChecks,
        (status = 503, description = "Queue full or rows not confirmed stored: retry after `Retry-After`", body = ErrorBody),
    ))]
#[tracing::instrument(name = "ingest.events", skip_all, fields(key = %caller.name()))]
async fn post_events(
    req: HttpRequest,
    payload: web::Payload,
    caller: Caller,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, IngestError> {
    ingest(req, payload, caller, state, Signal::Events).await
}

/// Metric points: `gauge`, `counter`, `histogram` (explicit buckets).
#[utoipa::path(post, path = "/v1/metrics", tag = "ingest", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    request_body(description = "One point, an array of points, or NDJSON (one per line)",
        content((crate::api_doc::MetricsBody = "application/json"), (String = "application/x-ndjson"))),
    responses(
        (status = 202, description = "The accepted points are stored; bad ones are listed", body = crate::api_doc::AcceptedBody),
        (status = 400, description = "Not JSON, or no point is valid (`no_valid_records`, all listed)", body = crate::api_doc::IngestRefusal),
        KeyChecks, BodyChecks,
        (status = 503, description = "Queue full or rows not confirmed stored: retry after `Retry-After`", body = ErrorBody),
    ))]
#[tracing::instrument(name = "ingest.metrics", skip_all, fields(key = %caller.name()))]
async fn post_metrics(
    req: HttpRequest,
    payload: web::Payload,
    caller: Caller,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, IngestError> {
    ingest(req, payload, caller, state, Signal::Metrics).await
}

async fn ingest(
    req: HttpRequest,
    payload: web::Payload,
    caller: Caller,
    state: web::Data<IngestState>,
    signal: Signal,
) -> Result<HttpResponse, IngestError> {
    let received_ms = chrono::Utc::now().timestamp_millis();
    caller.authorize(Scope::Ingest)?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let framing = Framing::from_content_type(content_type).ok_or_else(|| {
        IngestError::UnsupportedContentType(content_type.unwrap_or("").to_owned())
    })?;
    let limits = request_limits(&req, &caller, &state.limits)?;
    let body = read_body(&req, payload, limits.body(limits.max_body_bytes)).await?;
    caller.take_bytes(body.len())?;

    let writer = match signal {
        Signal::Events => &state.events,
        Signal::Metrics => &state.metrics,
    };
    let budget = Budget::for_request(&limits, body.len(), writer.max_request_bytes());
    let ctx = RequestContext {
        limits: &limits,
        received_ms,
        api_key: caller.name(),
        late_hours: Default::default(),
    };
    let encode = match signal {
        Signal::Events => event::encode,
        Signal::Metrics => metric::encode,
    };
    let batch = encode_body(&body, framing, &budget, |record: &Value, out| {
        encode(record, &ctx, out)
    })?;
    drop(body);
    state.counters.record(signal.label(), &batch);
    let EncodedBatch {
        rows,
        data,
        rejected,
    } = batch;
    if rows == 0 && !rejected.is_empty() {
        return Err(IngestError::NothingValid(rejected));
    }
    writer.write(caller.name(), rows, data.freeze()).await?;
    mark_late_hours(&state.store, &ctx).await?;
    Ok(HttpResponse::Accepted().json(Accepted {
        accepted: rows,
        rejected: &rejected,
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
    description = "A percentile of a histogram metric over its series; `label.<key>=<value>` parameters pick series.",
    responses(
        (status = 200, description = "The estimate", body = crate::quantile::Quantile),
        (status = 400, description = "A parameter is missing or wrong (`invalid_query`, `field` names it)", body = ErrorBody),
        KeyChecks,
        StoreChecks,
    ))]
#[tracing::instrument(name = "ingest.quantile", skip_all, fields(key = %caller.name()))]
async fn get_quantile(
    caller: Caller,
    query: web::Query<Vec<(String, String)>>,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, IngestError> {
    caller.authorize(Scope::Read)?;
    let now = chrono::Utc::now().timestamp();
    let mut name = None;
    let mut q = 0.95;
    let (mut from, mut to) = (now - 3600, now + 1);
    let mut labels = Vec::new();
    for (key, value) in query.into_inner() {
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
    if from >= to {
        return Err(IngestError::BadQuery {
            field: "from",
            reason: "must be before `to`".into(),
        });
    }
    let request = quantile::Request {
        name: &name,
        q,
        from,
        to,
        labels: &labels,
    };
    match quantile::quantile(&state.store, &request).await {
        Ok(answer) => Ok(HttpResponse::Ok().json(answer)),
        Err(quantile::QuantileError::Query(e)) => Err(IngestError::Query(e)),
        Err(
            e @ (quantile::QuantileError::MixedBounds(..) | quantile::QuantileError::TooManySeries),
        ) => Err(IngestError::BadQuery {
            field: "name",
            reason: e.to_string(),
        }),
    }
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
        (status = 400, description = "A parameter is wrong (`invalid_query`, `field` names it)", body = ErrorBody),
        KeyChecks,
        StoreChecks,
    ))]
#[tracing::instrument(name = "ingest.summary", skip_all, fields(key = %caller.name()))]
async fn get_summary(
    caller: Caller,
    query: web::Query<SummaryQuery>,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, IngestError> {
    caller.authorize(Scope::Read)?;
    let now = chrono::Utc::now().timestamp();
    let parse = |field: &'static str, value: &Option<String>, default: i64| match value {
        None => Ok(default),
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp())
            .map_err(|e| IngestError::BadQuery {
                field,
                reason: format!("is not an RFC 3339 time ({e})"),
            }),
    };
    let from = parse("from", &query.from, now - 24 * 3600)?;
    let to = parse("to", &query.to, now + 1)?;
    if from >= to {
        return Err(IngestError::BadQuery {
            field: "from",
            reason: "must be before `to`".into(),
        });
    }
    let rows = summary::event_summary(&state.store, from, to)
        .await
        .map_err(IngestError::Query)?;
    Ok(HttpResponse::Ok().json(summary::Summary {
        from: summary::rfc3339(from),
        to: summary::rfc3339(to),
        events: rows,
    }))
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Refused(#[from] BodyRefused),
    #[error("Content-Type `{0}` is not read here: send application/json or application/x-ndjson")]
    UnsupportedContentType(String),
    #[error("no record is valid; each one is listed in `rejected` with the reason")]
    NothingValid(Vec<Rejection>),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("query parameter `{field}` {reason}")]
    BadQuery { field: &'static str, reason: String },
    #[error("the ClickHouse query failed: {0}; retry later")]
    Query(#[source] clickhouse::error::Error),
    #[error(
        "the events are stored, but marking their late hours for the KPI rollups failed ({0}); retry the same batch (it will not be counted twice)"
    )]
    LateMark(String),
}

impl ResponseError for IngestError {
    fn status_code(&self) -> StatusCode {
        match self {
            IngestError::Auth(e) => e.status_code(),
            IngestError::Body(e) => e.status_code(),
            IngestError::Refused(BodyRefused::OverBudget(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::Refused(_)
            | IngestError::NothingValid(_)
            | IngestError::BadQuery { .. } => StatusCode::BAD_REQUEST,
            IngestError::UnsupportedContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::Write(e) if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::Query(_) | IngestError::LateMark(_) => StatusCode::SERVICE_UNAVAILABLE,
            // ClickHouse refused these rows (and only these: see the writer).
            IngestError::Write(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            IngestError::Auth(e) => return e.error_response(),
            IngestError::Body(e) => return e.error_response(),
            IngestError::NothingValid(rejected) => {
                #[derive(Serialize)]
                struct NothingValid<'a> {
                    error: &'static str,
                    message: String,
                    accepted: usize,
                    rejected: &'a [Rejection],
                }
                return HttpResponse::BadRequest().json(NothingValid {
                    error: "no_valid_records",
                    message: self.to_string(),
                    accepted: 0,
                    rejected,
                });
            }
            IngestError::Refused(BodyRefused::OverBudget(over)) => over_budget_code(over),
            IngestError::Refused(BodyRefused::Empty) => "empty_body",
            IngestError::Refused(BodyRefused::Syntax(_)) => "invalid_json",
            IngestError::UnsupportedContentType(_) => "unsupported_content_type",
            IngestError::Write(WriteError::QueueFull { .. }) => "queue_full",
            IngestError::Write(WriteError::KeyShareFull { .. }) => "key_queue_share_full",
            IngestError::Write(WriteError::NotConfirmed { .. }) => "not_confirmed",
            IngestError::Write(WriteError::Unavailable { .. }) => "clickhouse_unavailable",
            IngestError::Write(WriteError::ShuttingDown) => "shutting_down",
            IngestError::Write(WriteError::Refused { .. }) => "storage_refused",
            IngestError::BadQuery { .. } => "invalid_query",
            IngestError::Query(_) => "query_failed",
            IngestError::LateMark(_) => "late_mark_failed",
        };
        let field = match self {
            IngestError::BadQuery { field, .. } => Some((*field).to_owned()),
            _ => None,
        };
        let mut response = HttpResponse::build(self.status_code());
        if self.status_code() == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        response.json(ErrorBody {
            error: code.to_owned(),
            message: self.to_string(),
            field,
        })
    }
}

/// The stable code of a request refused over its budget.
pub(crate) fn over_budget_code(over: &OverBudget) -> &'static str {
    match over {
        OverBudget::Records { .. } | OverBudget::Calls { .. } => "too_many_records",
        OverBudget::Values { .. } => "too_many_values",
        OverBudget::Encoded(e) => match e.limit {
            EncodedLimit::Amplification { .. } => "amplification_limit",
            EncodedLimit::Queue { .. } => "larger_than_queue",
        },
        OverBudget::Decoded { .. } => "amplification_limit",
    }
}

/// The limits of this request: the configured ones, or without the age limit
/// when an `admin` key asks for a backfill with the backfill header. Any other
/// key asking for it gets 403 rather than a silent no.
pub(crate) fn request_limits(
    req: &HttpRequest,
    caller: &Caller,
    limits: &Limits,
) -> Result<Limits, AuthError> {
    let asked = req
        .headers()
        .get(crate::fields::BACKFILL_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !asked {
        return Ok(limits.clone());
    }
    if !caller.0.has_scope(Scope::Admin) {
        return Err(AuthError::MissingScope {
            key: caller.name().to_owned(),
            scope: Scope::Admin,
        });
    }
    Ok(limits.for_backfill())
}

/// Marks the hours of late events once they are stored (see
/// [`hypercare_storage::late`]), so that KPI answers include them at once.
pub(crate) async fn mark_late_hours(
    store: &clickhouse::Client,
    ctx: &RequestContext<'_>,
) -> Result<(), IngestError> {
    let hours = ctx.late_hours.take();
    hypercare_storage::late::mark(store, &hours)
        .await
        .map_err(|e| IngestError::LateMark(e.to_string()))
}
