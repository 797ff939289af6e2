//! Why an ingest request (any protocol) or read was not served, and the one
//! conversion of that into the API's error ([`hypercare_http::ApiError`]).
//!
//! Every route of the crate fails with an [`IngestError`]. The JSON routes and
//! remote write answer `ApiError`'s JSON body; OTLP writes the same status,
//! headers and message as a `google.rpc.Status` (see `otlp`), since its
//! exporters read nothing else. Codes and statuses come from
//! [`hypercare_http::ErrorCode`]; what a retry can fix (a full queue, rows not
//! confirmed, ClickHouse down, a key over its rate) carries `Retry-After`, and
//! what it cannot (bad input, over a request-wide limit, rows ClickHouse refuses)
//! is a 4xx without it, which Prometheus and OTLP exporters do not retry.

use hypercare_http::auth::AuthError;
use hypercare_http::body::BodyError;
use hypercare_http::{ApiError, ErrorCode};

use crate::budget::{EncodedLimit, OverBudget};
use crate::records::{BodyRefused, Rejection};
use crate::writer::WriteError;

/// Seconds a client waits before retrying a write: the queue drains and the
/// writer retries ClickHouse within about that.
const WRITE_RETRY_AFTER_SECS: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Body(#[from] BodyError),
    /// A JSON body that is empty, not JSON, or over the request's budget.
    #[error(transparent)]
    Refused(#[from] BodyRefused),
    /// Over a request-wide limit found while decoding a protocol's body.
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
    #[error("Content-Type `{found}` is not read here: send {expected}")]
    UnsupportedContentType {
        found: String,
        expected: &'static str,
    },
    #[error("Content-Encoding `{found}` is not read here: send {expected}")]
    UnsupportedEncoding {
        found: String,
        expected: &'static str,
    },
    /// The body is not in the protocol's encoding (protobuf, OTLP/JSON).
    #[error("the body is not a valid {what}: {reason}")]
    Undecodable { what: &'static str, reason: String },
    #[error("no record is valid; each one is listed in `rejected` with the reason")]
    NothingValid(Vec<Rejection>),
    /// Some records were refused and the others stored: a protocol (remote
    /// write) that answers such a request with an error rather than a 2xx.
    #[error("{}", describe_refusals(*.stored, *.refused, .rejected))]
    SomeRefused {
        stored: usize,
        /// Values (samples) refused, which may be more than `rejected` lists.
        refused: usize,
        rejected: Vec<Rejection>,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("query parameter `{field}` {reason}")]
    BadQuery { field: &'static str, reason: String },
    #[error("the ClickHouse query failed: {0}; retry later")]
    Query(#[source] clickhouse::error::Error),
    #[error(
        "the events are stored, but marking their late hours for the KPI rollups failed ({0}); retry the same batch (it will not be counted twice)"
    )]
    LateMark(#[source] clickhouse::error::Error),
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        let message = error.to_string();
        match error {
            IngestError::Auth(e) => e.into(),
            IngestError::Body(e) => e.into(),
            IngestError::Refused(BodyRefused::OverBudget(over)) | IngestError::OverBudget(over) => {
                ApiError::new(over_budget_code(&over), message)
            }
            IngestError::Refused(BodyRefused::Empty) => {
                ApiError::new(ErrorCode::EmptyBody, message)
            }
            IngestError::Refused(BodyRefused::Syntax(_)) | IngestError::Undecodable { .. } => {
                ApiError::new(ErrorCode::InvalidJson, message)
            }
            IngestError::UnsupportedContentType { .. } => {
                ApiError::new(ErrorCode::UnsupportedContentType, message)
            }
            IngestError::UnsupportedEncoding { .. } => {
                ApiError::new(ErrorCode::UnsupportedEncoding, message)
            }
            IngestError::NothingValid(rejected) => {
                ApiError::new(ErrorCode::NoValidRecords, message)
                    .with("accepted", 0)
                    .with("rejected", rejected)
            }
            IngestError::SomeRefused {
                stored, rejected, ..
            } => ApiError::new(ErrorCode::InvalidRequest, message)
                .with("accepted", stored)
                .with("rejected", rejected),
            IngestError::Write(e) => {
                let code = match e {
                    WriteError::QueueFull { .. } => ErrorCode::QueueFull,
                    WriteError::KeyShareFull { .. } => ErrorCode::KeyQueueShareFull,
                    WriteError::NotConfirmed { .. } => ErrorCode::NotConfirmed,
                    WriteError::Unavailable { .. } => ErrorCode::StorageUnavailable,
                    WriteError::ShuttingDown => ErrorCode::ShuttingDown,
                    // ClickHouse refused these rows (and only these: see the writer).
                    WriteError::Refused { .. } => ErrorCode::StorageRefused,
                };
                let error = ApiError::new(code, message);
                if e.is_retryable() {
                    error.with_retry_after(WRITE_RETRY_AFTER_SECS)
                } else {
                    error
                }
            }
            IngestError::BadQuery { field, reason } => ApiError::invalid(field, reason),
            IngestError::Query(e) => ApiError::storage(e),
            IngestError::LateMark(_) => ApiError::new(ErrorCode::StorageUnavailable, message)
                .with_retry_after(WRITE_RETRY_AFTER_SECS),
        }
    }
}

/// The code of a request refused over its budget.
pub fn over_budget_code(over: &OverBudget) -> ErrorCode {
    match over {
        OverBudget::Records { .. } | OverBudget::Calls { .. } => ErrorCode::TooManyRecords,
        OverBudget::Values { .. } => ErrorCode::TooManyValues,
        OverBudget::Encoded(e) => match e.limit {
            EncodedLimit::Amplification { .. } => ErrorCode::AmplificationLimit,
            EncodedLimit::Queue { .. } => ErrorCode::LargerThanQueue,
        },
        OverBudget::Decoded { .. } => ErrorCode::AmplificationLimit,
    }
}

/// How many samples were stored and refused, and the first reasons.
fn describe_refusals(stored: usize, refused: usize, rejected: &[Rejection]) -> String {
    const SHOWN: usize = 10;
    let mut text = format!(
        "{refused} samples were refused and {stored} stored; the request must not be retried. Reasons:"
    );
    for r in rejected.iter().take(SHOWN) {
        text.push_str(&format!(
            "\n  timeseries[{}] {}: {}",
            r.index, r.field, r.reason
        ));
    }
    if rejected.len() > SHOWN {
        text.push_str(&format!("\n  ... and {} more", rejected.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;
    use actix_web::http::{StatusCode, header};

    fn answer(error: IngestError) -> (StatusCode, Option<String>, serde_json::Value) {
        let api = ApiError::from(error);
        let response = api.error_response();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        (response.status(), retry, api.body())
    }

    #[test]
    fn retryable_write_failures_are_503_with_retry_after_and_refused_rows_are_not() {
        let (status, retry, body) = answer(IngestError::Write(WriteError::QueueFull {
            table: "events",
            capacity: 10,
        }));
        assert_eq!(
            (status, retry.as_deref()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("1"))
        );
        assert_eq!(body["error"], "queue_full");
        let (status, retry, body) = answer(IngestError::Write(WriteError::Refused {
            table: "events",
            message: "Code: 117".into(),
        }));
        assert_eq!((status, retry), (StatusCode::UNPROCESSABLE_ENTITY, None));
        assert_eq!(body["error"], "storage_refused");
    }

    #[test]
    fn nothing_valid_lists_the_rejections_and_bad_queries_name_the_field() {
        let rejected = vec![Rejection::missing("event")];
        let (status, _, body) = answer(IngestError::NothingValid(rejected));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "no_valid_records");
        assert_eq!(body["accepted"], 0);
        assert_eq!(body["rejected"][0]["field"], "event");
        let (status, _, body) = answer(IngestError::BadQuery {
            field: "q",
            reason: "is not a number".into(),
        });
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            (body["error"].as_str(), body["field"].as_str()),
            (Some("invalid_request"), Some("q"))
        );
    }

    #[test]
    fn over_budget_codes_name_the_limit() {
        let (status, retry, body) =
            answer(IngestError::OverBudget(OverBudget::Values { limit: 3 }));
        assert_eq!((status, retry), (StatusCode::PAYLOAD_TOO_LARGE, None));
        assert_eq!(body["error"], "too_many_values");
        assert_eq!(
            over_budget_code(&OverBudget::Calls { limit: 1 }),
            ErrorCode::TooManyRecords
        );
    }
}
