//! OTLP/HTTP: metrics and logs from any OpenTelemetry SDK or Collector.
//!
//! Base URL for exporters: `http://<host>:<port>/v1/otlp` (set
//! `OTEL_EXPORTER_OTLP_ENDPOINT` to it; the exporter appends `/v1/metrics` and
//! `/v1/logs`). Bodies are `application/x-protobuf` or `application/json`, plain
//! or gzip. Answers follow the OTLP spec: 200 with an empty response, or with
//! `partialSuccess` (rejected count and the first reasons) when some points are
//! refused — the good ones are stored; 400 for a body that cannot be decoded;
//! 401/403; 413; 415; 429 and 503 with `Retry-After` (the only codes exporters
//! retry). Error bodies are a `google.rpc.Status`, in the request's encoding.
//! Traces are not stored: `/v1/otlp/v1/traces` answers 404.

pub mod json;
pub mod logs;
pub mod metrics;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;

use hypercare_http::auth::{AuthError, Caller, Scope};
use hypercare_http::body::{BodyError, read_body};

use crate::budget::{Budget, OverBudget};
use crate::event::RequestContext;
use crate::routes::IngestState;
use crate::writer::WriteError;
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
    fn of(req: &HttpRequest) -> Result<Self, Failure> {
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
            _ => Err(Failure {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                message: format!(
                    "Content-Type `{content_type}` is not OTLP/HTTP: send application/x-protobuf or application/json"
                ),
                retry_after: None,
                // Nothing to mirror: answer in JSON, which any client can read.
                encoding: Encoding::Json,
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

/// An OTLP error answer.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
    encoding: Encoding,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>, encoding: Encoding) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
            encoding,
        }
    }

    fn from_auth(error: AuthError, encoding: Encoding) -> Self {
        let status = actix_web::ResponseError::status_code(&error);
        let retry_after = match &error {
            AuthError::RateLimited {
                retry_after_secs, ..
            }
            | AuthError::ByteRateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        Self {
            status,
            message: error.to_string(),
            retry_after,
            encoding,
        }
    }

    fn from_body(error: BodyError, encoding: Encoding) -> Self {
        Self::new(
            actix_web::ResponseError::status_code(&error),
            error.to_string(),
            encoding,
        )
    }

    fn from_write(error: WriteError, encoding: Encoding) -> Self {
        if error.is_retryable() {
            Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: error.to_string(),
                retry_after: Some(1),
                encoding,
            }
        } else {
            Self::new(StatusCode::BAD_REQUEST, error.to_string(), encoding)
        }
    }

    /// The gRPC code matching the HTTP status, as the spec's table pairs them.
    fn grpc_code(&self) -> i32 {
        match self.status {
            StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => 3,
            StatusCode::UNAUTHORIZED => 16,
            StatusCode::FORBIDDEN => 7,
            StatusCode::TOO_MANY_REQUESTS => 8,
            StatusCode::SERVICE_UNAVAILABLE => 14,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => 3,
            _ => 2,
        }
    }

    fn response(self) -> HttpResponse {
        let status = Status {
            code: self.grpc_code(),
            message: self.message,
        };
        let mut response = HttpResponse::build(self.status);
        response.content_type(self.encoding.content_type());
        if let Some(secs) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        if matches!(self.status, StatusCode::UNAUTHORIZED) {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        match self.encoding {
            Encoding::Protobuf => response.body(status.encode_to_vec()),
            Encoding::Json => response.json(serde_json::json!({
                "code": status.code,
                "message": status.message,
            })),
        }
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
    fn encode(request: &Self::Request, ctx: &RequestContext, max_bytes: usize) -> Encoded;
    fn writer(state: &IngestState) -> &crate::writer::Writer;
    /// The export response, with `partialSuccess` when something was rejected.
    fn response(rejected: i64, message: String, encoding: Encoding) -> Vec<u8>;
}

struct Metrics;
struct Logs;

impl Signal for Metrics {
    type Request = ExportMetricsServiceRequest;
    const LABEL: &'static str = "otlp_metric";
    const KIND: crate::wire::Kind = crate::wire::Kind::MetricsRequest;

    fn from_json(body: &[u8]) -> Result<Self::Request, json::JsonError> {
        json::metrics_request(body)
    }

    fn encode(request: &Self::Request, ctx: &RequestContext, max_bytes: usize) -> Encoded {
        metrics::encode(request, ctx, max_bytes)
    }

    fn writer(state: &IngestState) -> &crate::writer::Writer {
        &state.metrics
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

    fn from_json(body: &[u8]) -> Result<Self::Request, json::JsonError> {
        json::logs_request(body)
    }

    fn encode(request: &Self::Request, ctx: &RequestContext, max_bytes: usize) -> Encoded {
        logs::encode(request, ctx, max_bytes)
    }

    fn writer(state: &IngestState) -> &crate::writer::Writer {
        &state.logs
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
    responses(
        (status = 200, description = "Stored; `partialSuccess` counts what was refused",
            content((crate::api_doc::OtlpExportResponse = "application/json"), (hypercare_http::openapi::Binary = "application/x-protobuf"))),
        (status = 400, description = "The body cannot be decoded", content((crate::api_doc::OtlpStatus = "application/json"), (hypercare_http::openapi::Binary = "application/x-protobuf"))),
        (status = 401, description = "No key or an unknown one", content((crate::api_doc::OtlpStatus = "application/json"), (hypercare_http::openapi::Binary = "application/x-protobuf"))),
        (status = 403, description = "The key lacks the `ingest` scope", content((crate::api_doc::OtlpStatus = "application/json"), (hypercare_http::openapi::Binary = "application/x-protobuf"))),
        (status = 413, description = "Over the body or record limit", content((crate::api_doc::OtlpStatus = "application/json"), (hypercare_http::openapi::Binary = "application/x-protobuf"))),
        (status = 415, description = "Neither protobuf nor JSON", content((crate::api_doc::OtlpStatus = "application/json"), (hypercare_http::openapi::Binary = "application/x-protobuf"))),
        (status = 429, description = "Over the key's rate limit: retry after `Retry-After`", content((crate::api_doc::OtlpStatus = "application/json"), (hypercare_http::openapi::Binary = "application/x-protobuf"))),
        (status = 503, description = "Queue full or not confirmed stored: retry after `Retry-After`", content((crate::api_doc::OtlpStatus = "application/json"), (hypercare_http::openapi::Binary = "application/x-protobuf"))),
    ))]
#[tracing::instrument(name = "ingest.otlp.metrics", skip_all)]
async fn post_metrics(
    req: HttpRequest,
    payload: web::Payload,
    caller: Result<Caller, AuthError>,
    state: web::Data<IngestState>,
) -> HttpResponse {
    export::<Metrics>(req, payload, caller, state)
        .await
        .unwrap_or_else(Failure::response)
}

/// OTLP/HTTP logs (an `ExportLogsServiceRequest`), protobuf or JSON, plain or gzip.
/// Answers are in the request's encoding; error bodies are a `google.rpc.Status`.
#[utoipa::path(post, path = "/v1/otlp/v1/logs", operation_id = "post_otlp_logs", tag = "ingest", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    request_body(description = "An OTLP `ExportLogsServiceRequest`",
        content((hypercare_http::openapi::Binary = "application/x-protobuf"), (Object = "application/json"))),
    responses(
        (status = 200, description = "Stored; `partialSuccess` counts what was refused",
            content((crate::api_doc::OtlpExportResponse = "application/json"), (hypercare_http::openapi::Binary = "application/x-protobuf"))),
        (status = 400, description = "The body cannot be decoded", content((crate::api_doc::OtlpStatus = "application/json"), (hypercare_http::openapi::Binary = "application/x-protobuf"))),
        (status = 401, description = "No key or an unknown one", content((crate::api_doc::OtlpStatus = "application/json"), (hypercare_http::openapi::Binary = "application/x-protobuf"))),
        (status = 403, description = "The key lacks the `ingest` scope", content((crate::api_doc::OtlpStatus = "application/json"), (hypercare_http::openapi::Binary = "application/x-protobuf"))),
        (status = 413, description = "Over the body or record limit", content((crate::api_doc::OtlpStatus = "application/json"), (hypercare_http::openapi::Binary = "application/x-protobuf"))),
        (status = 415, description = "Neither protobuf nor JSON", content((crate::api_doc::OtlpStatus = "application/json"), (hypercare_http::openapi::Binary = "application/x-protobuf"))),
        (status = 429, description = "Over the key's rate limit: retry after `Retry-After`", content((crate::api_doc::OtlpStatus = "application/json"), (hypercare_http::openapi::Binary = "application/x-protobuf"))),
        (status = 503, description = "Queue full or not confirmed stored: retry after `Retry-After`", content((crate::api_doc::OtlpStatus = "application/json"), (hypercare_http::openapi::Binary = "application/x-protobuf"))),
    ))]
#[tracing::instrument(name = "ingest.otlp.logs", skip_all)]
async fn post_logs(
    req: HttpRequest,
    payload: web::Payload,
    caller: Result<Caller, AuthError>,
    state: web::Data<IngestState>,
) -> HttpResponse {
    export::<Logs>(req, payload, caller, state)
        .await
        .unwrap_or_else(Failure::response)
}

async fn export<S: Signal>(
    req: HttpRequest,
    payload: web::Payload,
    caller: Result<Caller, AuthError>,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, Failure> {
    let received_ms = chrono::Utc::now().timestamp_millis();
    let encoding = Encoding::of(&req)?;
    let caller = caller.map_err(|e| Failure::from_auth(e, encoding))?;
    caller
        .authorize(Scope::Ingest)
        .map_err(|e| Failure::from_auth(e, encoding))?;
    let limits = crate::routes::request_limits(&req, &caller, &state.limits)
        .map_err(|e| Failure::from_auth(e, encoding))?;
    let body = read_body(&req, payload, limits.body(limits.max_body_bytes))
        .await
        .map_err(|e| Failure::from_body(e, encoding))?;
    caller
        .take_bytes(body.len())
        .map_err(|e| Failure::from_auth(e, encoding))?;
    let budget = Budget::for_request(&limits, body.len(), S::writer(&state).max_request_bytes());
    let over = |e: OverBudget| Failure::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string(), encoding);
    // Sized before anything is decoded: what decoding allocates grows with the
    // number of messages, not with the bytes of the body.
    let shape = match encoding {
        Encoding::Protobuf => crate::wire::shape(&body, S::KIND).map_err(|e| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not a valid protobuf export request: {e}"),
                encoding,
            )
        })?,
        Encoding::Json => json::shape(&body).map_err(|e| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not a valid OTLP/JSON export request: {e}"),
                encoding,
            )
        })?,
    };
    budget.check_records(shape.records).map_err(over)?;
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
    crate::budget::check_decoded(&decode_limits, shape.decoded_bytes, body.len()).map_err(over)?;
    let request = match encoding {
        Encoding::Protobuf => S::Request::decode(body.as_ref()).map_err(|e| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not a valid protobuf export request: {e}"),
                encoding,
            )
        })?,
        Encoding::Json => S::from_json(&body).map_err(|e| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not a valid OTLP/JSON export request: {e}"),
                encoding,
            )
        })?,
    };
    drop(body);
    let ctx = RequestContext {
        limits: &limits,
        received_ms,
        api_key: caller.name(),
        late_hours: Default::default(),
    };
    let encoded = S::encode(&request, &ctx, budget.max_encoded_bytes);
    drop(request);
    if encoded.over {
        return Err(over(
            budget
                .check_encoded(encoded.data.len())
                .expect_err("the encoder stops only over the budget"),
        ));
    }
    state.counters.count(
        S::LABEL,
        encoded.rows,
        encoded.rejected_codes.iter().copied(),
    );
    if encoded.rows > limits.max_records_per_request {
        return Err(over(OverBudget::Records {
            limit: limits.max_records_per_request,
        }));
    }
    S::writer(&state)
        .write(caller.name(), encoded.rows, encoded.data.freeze())
        .await
        .map_err(|e| Failure::from_write(e, encoding))?;
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
