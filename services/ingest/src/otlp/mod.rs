//! OTLP/HTTP: metrics and logs from any OpenTelemetry SDK or Collector.
//!
//! Base URL for exporters: `http://<host>:<port>/v1/otlp` (set
//! `OTEL_EXPORTER_OTLP_ENDPOINT` to it; the exporter appends `/v1/metrics` and
//! `/v1/logs`). Bodies are `application/x-protobuf` or `application/json`, plain
//! or gzip. Answers follow the OTLP spec: 200 with an empty response, or with
//! `partialSuccess` (rejected count and the first reasons) when some points are
//! refused — the good ones are stored; 400 for a body that cannot be decoded;
//! 401/403; 413; 415; 422 for points ClickHouse refuses; 429 and 503 with
//! `Retry-After` (the only codes exporters retry). Error bodies are a
//! `google.rpc.Status`, in the request's encoding, carrying the status, headers
//! and message of the crate's one error conversion ([`crate::error`]).
//! Traces are not stored: `/v1/otlp/v1/traces` answers 404.
//!
//! ```text
//! key, scope -> body -> IngestState::admit (byte rate)
//!   -> size the messages (wire::shape | json::shape) against the budget, then decode
//!   -> metrics::encode | logs::encode -> IngestState::write -> 200 (+ partialSuccess)
//! ```

pub mod json;
pub mod logs;
pub mod metrics;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;

use hypercare_http::ApiError;
use hypercare_http::auth::{AuthError, Caller, Scope};
use hypercare_http::body::read_body;

use crate::budget::{Budget, OverBudget};
use crate::error::IngestError;
use crate::event::RequestContext;
use crate::state::{IngestState, Table};
use metrics::Encoded;

/// How many times `max_decode_amplification` an OTLP/JSON body may expand.
pub const JSON_DECODE_ALLOWANCE: usize = 4;

/// Mounts the OTLP routes under `/v1/otlp`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/otlp/v1/metrics", web::post().to(post_metrics))
        .route("/v1/otlp/v1/logs", web::post().to(post_logs));
}

/// The two encodings OTLP/HTTP allows; the answer uses the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn of(req: &HttpRequest) -> Result<Self, IngestError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
            "application/json" => Ok(Encoding::Json),
            _ => Err(IngestError::UnsupportedContentType {
                found: content_type.to_owned(),
                expected: "application/x-protobuf or application/json (OTLP/HTTP)",
            }),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// `google.rpc.Status`, the body of every OTLP error answer.
#[derive(Clone, PartialEq, prost::Message)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The answer to a failed export: the status and headers (`Retry-After`,
/// `WWW-Authenticate`) of the error's one conversion into [`ApiError`], with its
/// message as a `google.rpc.Status` in `encoding`, which is all that OTLP
/// exporters read.
fn failure(error: IngestError, encoding: Encoding) -> HttpResponse {
    let error = ApiError::from(error);
    let template = error.error_response();
    let status = Status {
        code: grpc_code(template.status()),
        message: error.message().to_owned(),
    };
    let mut response = HttpResponse::build(template.status());
    for (name, value) in template.headers() {
        if name != header::CONTENT_TYPE {
            response.append_header((name.clone(), value.clone()));
        }
    }
    response.content_type(encoding.content_type());
    match encoding {
        Encoding::Protobuf => response.body(status.encode_to_vec()),
        Encoding::Json => response.json(serde_json::json!({
            "code": status.code,
            "message": status.message,
        })),
    }
}

/// The gRPC code matching the HTTP status, as the spec's table pairs them.
fn grpc_code(status: StatusCode) -> i32 {
    match status {
        StatusCode::BAD_REQUEST
        | StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::UNSUPPORTED_MEDIA_TYPE
        | StatusCode::UNPROCESSABLE_ENTITY => 3,
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::FORBIDDEN => 7,
        StatusCode::TOO_MANY_REQUESTS => 8,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        _ => 2,
    }
}

/// What the two signals differ in.
trait Signal {
    type Request: Message + Default;
    /// The metric label of accepted and rejected counts.
    const LABEL: &'static str;
    /// The request's message, for the walk that sizes it before decoding.
    const KIND: crate::wire::Kind;
    fn from_json(body: &[u8]) -> Result<Self::Request, json::JsonError>;
    /// Where the rows go.
    const TABLE: Table;
    fn encode(request: &Self::Request, ctx: &RequestContext, max_bytes: usize) -> Encoded;
    /// The export response, with `partialSuccess` when something was rejected.
    fn response(rejected: i64, message: String, encoding: Encoding) -> Vec<u8>;
}

struct Metrics;
struct Logs;

impl Signal for Metrics {
    type Request = ExportMetricsServiceRequest;
    const LABEL: &'static str = "otlp_metric";
    const KIND: crate::wire::Kind = crate::wire::Kind::MetricsRequest;
    const TABLE: Table = Table::MetricPoints;

    fn from_json(body: &[u8]) -> Result<Self::Request, json::JsonError> {
        json::metrics_request(body)
    }

    fn encode(request: &Self::Request, ctx: &RequestContext, max_bytes: usize) -> Encoded {
        metrics::encode(request, ctx, max_bytes)
    }

    fn response(rejected: i64, message: String, encoding: Encoding) -> Vec<u8> {
        match encoding {
            Encoding::Protobuf => ExportMetricsServiceResponse {
                partial_success: (rejected > 0 || !message.is_empty()).then_some({
                    ExportMetricsPartialSuccess {
                        rejected_data_points: rejected,
                        error_message: message,
                    }
                }),
            }
            .encode_to_vec(),
            Encoding::Json => partial_success_json("rejectedDataPoints", rejected, message),
        }
    }
}

impl Signal for Logs {
    type Request = ExportLogsServiceRequest;
    const LABEL: &'static str = "otlp_log";
    const KIND: crate::wire::Kind = crate::wire::Kind::LogsRequest;
    const TABLE: Table = Table::Logs;

    fn from_json(body: &[u8]) -> Result<Self::Request, json::JsonError> {
        json::logs_request(body)
    }

    fn encode(request: &Self::Request, ctx: &RequestContext, max_bytes: usize) -> Encoded {
        logs::encode(request, ctx, max_bytes)
    }

    fn response(rejected: i64, message: String, encoding: Encoding) -> Vec<u8> {
        match encoding {
            Encoding::Protobuf => ExportLogsServiceResponse {
                partial_success: (rejected > 0 || !message.is_empty()).then_some({
                    ExportLogsPartialSuccess {
                        rejected_log_records: rejected,
                        error_message: message,
                    }
                }),
            }
            .encode_to_vec(),
            Encoding::Json => partial_success_json("rejectedLogRecords", rejected, message),
        }
    }
}

fn partial_success_json(count_key: &str, rejected: i64, message: String) -> Vec<u8> {
    let body = if rejected > 0 || !message.is_empty() {
        // 64-bit integers are decimal strings in OTLP/JSON.
        serde_json::json!({"partialSuccess": {count_key: rejected.to_string(), "errorMessage": message}})
    } else {
        serde_json::json!({})
    };
    body.to_string().into_bytes()
}

/// OTLP/HTTP metrics (an `ExportMetricsServiceRequest`), protobuf or JSON, plain or gzip.
/// Answers are in the request's encoding; error bodies are a `google.rpc.Status`.
#[utoipa::path(post, path = "/v1/otlp/v1/metrics", operation_id = "post_otlp_metrics", tag = "ingest", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    request_body(description = "An OTLP `ExportMetricsServiceRequest`",
        content((hypercare_http::openapi::Binary = "application/x-protobuf"), (Object = "application/json"))),
    responses(crate::schema::OtlpAnswers))]
#[tracing::instrument(name = "ingest.otlp.metrics", skip_all)]
async fn post_metrics(
    req: HttpRequest,
    payload: web::Payload,
    caller: Result<Caller, AuthError>,
    state: web::Data<IngestState>,
) -> HttpResponse {
    answer::<Metrics>(req, payload, caller, state).await
}

/// OTLP/HTTP logs (an `ExportLogsServiceRequest`), protobuf or JSON, plain or gzip.
/// Answers are in the request's encoding; error bodies are a `google.rpc.Status`.
#[utoipa::path(post, path = "/v1/otlp/v1/logs", operation_id = "post_otlp_logs", tag = "ingest", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    request_body(description = "An OTLP `ExportLogsServiceRequest`",
        content((hypercare_http::openapi::Binary = "application/x-protobuf"), (Object = "application/json"))),
    responses(crate::schema::OtlpAnswers))]
#[tracing::instrument(name = "ingest.otlp.logs", skip_all)]
async fn post_logs(
    req: HttpRequest,
    payload: web::Payload,
    caller: Result<Caller, AuthError>,
    state: web::Data<IngestState>,
) -> HttpResponse {
    answer::<Logs>(req, payload, caller, state).await
}

/// Exports in the request's encoding, or answers why not in it (in JSON, which
/// any client reads, when the encoding is not one OTLP uses).
async fn answer<S: Signal>(
    req: HttpRequest,
    payload: web::Payload,
    caller: Result<Caller, AuthError>,
    state: web::Data<IngestState>,
) -> HttpResponse {
    let encoding = match Encoding::of(&req) {
        Ok(encoding) => encoding,
        Err(error) => return failure(error, Encoding::Json),
    };
    export::<S>(req, payload, caller, state, encoding)
        .await
        .unwrap_or_else(|error| failure(error, encoding))
}

async fn export<S: Signal>(
    req: HttpRequest,
    payload: web::Payload,
    caller: Result<Caller, AuthError>,
    state: web::Data<IngestState>,
    encoding: Encoding,
) -> Result<HttpResponse, IngestError> {
    let caller = caller?;
    caller.authorize(Scope::Ingest)?;
    let limit = state.limits.body(state.limits.max_body_bytes);
    let body = read_body(&req, payload, limit).await?;
    let admission = state.admit(&req, &caller, body.len())?;
    let limits = admission.limits();
    let budget = Budget::for_request(
        limits,
        body.len(),
        state.writer(S::TABLE).max_request_bytes(),
    );
    let undecodable = |what: &'static str| {
        move |e: &dyn std::fmt::Display| IngestError::Undecodable {
            what,
            reason: e.to_string(),
        }
    };
    let protobuf = undecodable("protobuf export request");
    let json = undecodable("OTLP/JSON export request");
    // Sized before anything is decoded: what decoding allocates grows with the
    // number of messages, not with the bytes of the body.
    let shape = match encoding {
        Encoding::Protobuf => crate::wire::shape(&body, S::KIND).map_err(|e| protobuf(&e))?,
        Encoding::Json => json::shape(&body).map_err(|e| json(&e))?,
    };
    budget.check_records(shape.records)?;
    // OTLP/JSON is parsed into a JSON tree first, where a small object costs
    // a 640-byte B-tree node: legitimate bodies expand about 50 times, so JSON
    // gets four times the protobuf allowance.
    let decode_limits = match encoding {
        Encoding::Protobuf => limits.clone(),
        Encoding::Json => crate::config::Limits {
            max_decode_amplification: limits
                .max_decode_amplification
                .saturating_mul(JSON_DECODE_ALLOWANCE),
            ..limits.clone()
        },
    };
    crate::budget::check_decoded(&decode_limits, shape.decoded_bytes, body.len())?;
    let request = match encoding {
        Encoding::Protobuf => S::Request::decode(body.as_ref()).map_err(|e| protobuf(&e))?,
        Encoding::Json => S::from_json(&body).map_err(|e| json(&e))?,
    };
    drop(body);
    let ctx = admission.context();
    let encoded = S::encode(&request, &ctx, budget.max_encoded_bytes);
    drop(request);
    if encoded.over {
        return Err(budget.over_encoded(encoded.data.len()).into());
    }
    state.counters.count(
        S::LABEL,
        encoded.rows,
        encoded.rejected_codes.iter().copied(),
    );
    if encoded.rows > limits.max_records_per_request {
        return Err(OverBudget::Records {
            limit: limits.max_records_per_request,
        }
        .into());
    }
    // OTLP answers a request with no valid point like any other: 200 with
    // `partialSuccess`, so the rows (if any) go straight to the writer.
    state
        .write(&admission, &ctx, S::TABLE, encoded.rows, encoded.data)
        .await?;
    let message = encoded
        .rejected
        .iter()
        .map(|r| format!("{}: {}", r.field, r.reason))
        .collect::<Vec<_>>()
        .join("; ");
    let body = S::response(encoded.rejected_points as i64, message, encoding);
    Ok(HttpResponse::Ok()
        .content_type(encoding.content_type())
        .body(body))
}
