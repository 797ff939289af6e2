//! The schemas of the ingest bodies and answers in the OpenAPI document, and
//! the answer sets the ingest routes share.
//!
//! The decoders read bodies field by field (there is no Rust type to derive
//! their schemas from): keep these in step with `event.rs`, `metric.rs` and
//! docs/ingest.md. The schemathesis run in the end-to-end tests sends what these
//! schemas allow and checks every answer against them.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::openapi::header::Header;
use utoipa::openapi::{Content, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, PartialSchema, ToSchema};

use hypercare_http::ErrorBody;

/// A string or an integer (ids), or for times an RFC 3339 string or epoch milliseconds.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum TextOrInteger {
    Text(String),
    Integer(i64),
}

/// One business event (docs/ingest.md, `POST /v1/events`). Any other field
/// rejects the record (`unknown_field`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    /// The event's name, 1..200 characters, no control characters.
    #[schema(min_length = 1, max_length = 200)]
    pub event: String,
    /// The idempotency key (UUID); generated when absent.
    pub event_id: Option<String>,
    /// When it happened: RFC 3339, or epoch milliseconds; default the time of receipt.
    pub timestamp: Option<TextOrInteger>,
    /// The client's clock when it sent the request (corrects clock skew).
    pub sent_at: Option<TextOrInteger>,
    pub source: Option<String>,
    pub release: Option<String>,
    /// A string or an integer.
    pub user_id: Option<TextOrInteger>,
    /// A string or an integer.
    pub session_id: Option<TextOrInteger>,
    pub value: Option<f64>,
    /// A flat object of strings, numbers and bools, up to 100 entries.
    #[schema(value_type = Option<Object>)]
    pub properties: Option<BTreeMap<String, serde_json::Value>>,
}

/// One metric point (docs/ingest.md, `POST /v1/metrics`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricPointInput {
    /// A letter, `_` or `:` first, then letters, digits, `_ : . / -`.
    pub name: String,
    /// `gauge`, `counter` or `histogram`.
    #[schema(pattern = "^(gauge|counter|histogram)$")]
    pub kind: String,
    /// A flat object; numbers and bools are stored as text.
    #[schema(value_type = Option<Object>)]
    pub labels: Option<BTreeMap<String, serde_json::Value>>,
    /// RFC 3339, or epoch milliseconds; default the time of receipt.
    pub timestamp: Option<TextOrInteger>,
    /// Gauge and counter.
    pub value: Option<f64>,
    /// Histogram: increasing bucket bounds.
    pub bounds: Option<Vec<f64>>,
    /// Histogram: per-bucket counts, one more than `bounds`.
    pub counts: Option<Vec<u64>>,
    pub sum: Option<f64>,
    pub count: Option<u64>,
}

/// `POST /v1/events` takes one event or an array of them (or NDJSON).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum EventsBody {
    One(Box<EventInput>),
    Many(Vec<EventInput>),
}

/// `POST /v1/metrics` takes one point or an array of them (or NDJSON).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum MetricsBody {
    One(Box<MetricPointInput>),
    Many(Vec<MetricPointInput>),
}

/// The 202 answer: what was stored, and each record that was not.
#[derive(Serialize, ToSchema)]
pub struct AcceptedBody {
    pub accepted: u64,
    pub rejected: Vec<crate::records::Rejection>,
}

/// A 400 answer of the ingest routes: the error body, and when no record is
/// valid (`no_valid_records`) the rejected records with their reasons.
#[derive(Serialize, ToSchema)]
pub struct IngestRefusal {
    pub error: String,
    pub message: String,
    pub field: Option<String>,
    pub accepted: Option<u64>,
    pub rejected: Option<Vec<crate::records::Rejection>>,
}

/// Segment's answer to a call or a batch.
#[derive(Serialize, ToSchema)]
pub struct SegmentSuccess {
    pub success: bool,
    pub accepted: u64,
    pub rejected: Vec<crate::records::Rejection>,
}

/// A Segment call (`track`, `identify`, ...) or a `batch` of them: see docs/segment.md.
/// The key may come in `writeKey` instead of the headers.
#[derive(Serialize, ToSchema)]
pub struct SegmentBody {
    #[serde(rename = "writeKey")]
    pub write_key: Option<String>,
    pub event: Option<String>,
    #[serde(rename = "userId")]
    pub user_id: Option<String>,
    #[serde(rename = "anonymousId")]
    pub anonymous_id: Option<String>,
    #[serde(rename = "messageId")]
    pub message_id: Option<String>,
    pub timestamp: Option<String>,
    #[serde(rename = "sentAt")]
    pub sent_at: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub properties: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub traits: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub context: Option<serde_json::Value>,
    /// For `batch`: the calls, each with its `type`.
    #[schema(value_type = Option<Vec<Object>>)]
    pub batch: Option<Vec<serde_json::Value>>,
}

/// `google.rpc.Status` in JSON, the body of an OTLP error answer to a JSON request
/// (protobuf requests get it in protobuf).
#[derive(Serialize, ToSchema)]
pub struct OtlpStatus {
    pub code: i32,
    pub message: String,
}

/// The OTLP export answer in JSON: empty, or `partialSuccess` with the count
/// rejected (`rejectedDataPoints` or `rejectedLogRecords`, a decimal string)
/// and the first reasons.
#[derive(Serialize, ToSchema)]
pub struct OtlpExportResponse {
    #[serde(rename = "partialSuccess")]
    #[schema(value_type = Option<Object>)]
    pub partial_success: Option<serde_json::Value>,
}

/// What a route that writes rows answers when they are not stored.
#[derive(IntoResponses)]
pub enum WriteChecks {
    /// ClickHouse refused these rows, and only these (`storage_refused`): resending
    /// will not help.
    #[response(status = 422)]
    Refused(#[to_schema] ErrorBody),
    /// The queue is full (`queue_full`, `key_queue_share_full`), the rows were not
    /// confirmed stored (`not_confirmed`), ClickHouse is down (`storage_unavailable`)
    /// or the service is stopping (`shutting_down`): retry after `Retry-After`.
    #[response(status = 503, headers(("Retry-After" = u64, description = "seconds to wait")))]
    Unavailable(#[to_schema] ErrorBody),
}

/// Every answer of the two OTLP/HTTP routes, in the request's encoding: the
/// export response, or a `google.rpc.Status` whose code pairs with the HTTP
/// status as the OTLP specification's table does.
pub struct OtlpAnswers;

impl IntoResponses for OtlpAnswers {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        const ANSWERS: [(u16, &str, bool); 9] = [
            (
                200,
                "Stored; `partialSuccess` counts what was refused",
                false,
            ),
            (400, "The body cannot be decoded", false),
            (401, "No key or an unknown one", false),
            (403, "The key lacks the `ingest` scope", false),
            (413, "Over the body or record limit", false),
            (415, "Neither protobuf nor JSON", false),
            (422, "ClickHouse refused the points: do not retry", false),
            (
                429,
                "Over the key's rate limit: retry after `Retry-After`",
                true,
            ),
            (
                503,
                "Queue full or not confirmed stored: retry after `Retry-After`",
                true,
            ),
        ];
        ANSWERS
            .iter()
            .map(|&(status, description, retry)| {
                let json = if status == 200 {
                    OtlpExportResponse::schema()
                } else {
                    OtlpStatus::schema()
                };
                let mut response = ResponseBuilder::new()
                    .description(description)
                    .content("application/json", Content::new(Some(json)))
                    .content(
                        "application/x-protobuf",
                        Content::new(Some(hypercare_http::openapi::Binary::schema())),
                    );
                if retry {
                    response = response.header(
                        "Retry-After",
                        Header::builder()
                            .schema(u64::schema())
                            .description(Some("seconds to wait"))
                            .build(),
                    );
                }
                (status.to_string(), RefOr::T(response.build()))
            })
            .collect()
    }
}
