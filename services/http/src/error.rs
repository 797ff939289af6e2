//! The one JSON error every route answers with:
//! `{"error": "<code>", "message": "<what to fix>", "field"?: "<input>", ...}`.
//!
//! - `error` is a stable [`ErrorCode`]; the same condition has the same code on
//!   every route (the table is [`ErrorCode::ALL`], written out in `docs/api.md`,
//!   whose test compares the two);
//! - `message` is an English sentence for the person reading it;
//! - `field` names the offending input when there is one (a body path such as
//!   `records[3].timestamp`, a query parameter, a path segment);
//! - a few errors add members a client acts on (`state` of a conflict,
//!   `rejected` records), and those that a retry can fix carry `Retry-After`.
//!
//! Each capability keeps its own `thiserror` enum for its domain and converts it
//! into [`ApiError`] once (`impl From<XError> for ApiError`); handlers return
//! `Result<_, ApiError>` and use `?`. Extractor failures (JSON bodies, paths,
//! query strings) are mapped by [`crate::body::extractor_errors`], so they
//! answer the same shape.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Map, Value};

/// Every error code the API answers with, and its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A field, query parameter or path segment is wrong; `field` names it.
    InvalidRequest,
    /// The body is not JSON (or not the protocol's encoding).
    InvalidJson,
    /// The body is empty where one is needed.
    EmptyBody,
    /// The body could not be read or decompressed.
    UnreadableBody,
    /// Every record of an ingest body was rejected; each is listed in `rejected`.
    NoValidRecords,
    /// No key, or a key that is not known.
    Unauthorized,
    /// The key lacks the scope the route needs.
    Forbidden,
    /// The thing named in the path does not exist (or no such route).
    NotFound,
    /// The route exists, but not for this method.
    MethodNotAllowed,
    /// The body did not arrive within the read deadline.
    BodyTimeout,
    /// The thing is in a state that does not allow this (`state` says which), or
    /// it exists already.
    Conflict,
    /// The `expected_version` sent is stale (`current_version` says the new one).
    VersionConflict,
    /// The body is larger than the route's limit.
    PayloadTooLarge,
    /// The body holds more records than one request may.
    TooManyRecords,
    /// The body holds more values (samples, data points) than one request may.
    TooManyValues,
    /// The body decodes or encodes to more bytes than its size allows
    /// (`max_decode_amplification`, `max_encode_amplification`).
    AmplificationLimit,
    /// The body's rows can never fit the write queue; split it.
    LargerThanQueue,
    /// The Content-Type is not one the route reads.
    UnsupportedContentType,
    /// The Content-Encoding is not one the route reads.
    UnsupportedEncoding,
    /// ClickHouse refused these rows (and only these); resending will not help.
    StorageRefused,
    /// The key is over its request or byte rate.
    RateLimited,
    /// A bug: the request reached a panic or an impossible state.
    InternalError,
    /// ClickHouse cannot be reached or failed the query; retry later.
    StorageUnavailable,
    /// The write queue is full; retry later.
    QueueFull,
    /// This key holds its whole share of the write queue; retry later.
    KeyQueueShareFull,
    /// The service reads as many bodies at once as it may; retry shortly.
    ServerBusy,
    /// The rows were sent but not confirmed stored in time; a retry is safe.
    NotConfirmed,
    /// The service is stopping.
    ShuttingDown,
    /// This replica does not run the alert evaluator.
    NotEvaluator,
    /// The query ran past its deadline; narrow it.
    QueryTooSlow,
}

impl ErrorCode {
    /// Every code, in the order of `docs/api.md`'s table.
    pub const ALL: [ErrorCode; 30] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidJson,
        ErrorCode::EmptyBody,
        ErrorCode::UnreadableBody,
        ErrorCode::NoValidRecords,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::BodyTimeout,
        ErrorCode::Conflict,
        ErrorCode::VersionConflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::TooManyRecords,
        ErrorCode::TooManyValues,
        ErrorCode::AmplificationLimit,
        ErrorCode::LargerThanQueue,
        ErrorCode::UnsupportedContentType,
        ErrorCode::UnsupportedEncoding,
        ErrorCode::StorageRefused,
        ErrorCode::RateLimited,
        ErrorCode::InternalError,
        ErrorCode::StorageUnavailable,
        ErrorCode::QueueFull,
        ErrorCode::KeyQueueShareFull,
        ErrorCode::ServerBusy,
        ErrorCode::NotConfirmed,
        ErrorCode::ShuttingDown,
        ErrorCode::NotEvaluator,
        ErrorCode::QueryTooSlow,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::EmptyBody => "empty_body",
            ErrorCode::UnreadableBody => "unreadable_body",
            ErrorCode::NoValidRecords => "no_valid_records",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::BodyTimeout => "body_timeout",
            ErrorCode::Conflict => "conflict",
            ErrorCode::VersionConflict => "version_conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::TooManyRecords => "too_many_records",
            ErrorCode::TooManyValues => "too_many_values",
            ErrorCode::AmplificationLimit => "amplification_limit",
            ErrorCode::LargerThanQueue => "larger_than_queue",
            ErrorCode::UnsupportedContentType => "unsupported_content_type",
            ErrorCode::UnsupportedEncoding => "unsupported_encoding",
            ErrorCode::StorageRefused => "storage_refused",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::InternalError => "internal_error",
            ErrorCode::StorageUnavailable => "storage_unavailable",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::KeyQueueShareFull => "key_queue_share_full",
            ErrorCode::ServerBusy => "server_busy",
            ErrorCode::NotConfirmed => "not_confirmed",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::NotEvaluator => "not_evaluator",
            ErrorCode::QueryTooSlow => "query_too_slow",
        }
    }

    pub const fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest
            | ErrorCode::InvalidJson
            | ErrorCode::EmptyBody
            | ErrorCode::UnreadableBody
            | ErrorCode::NoValidRecords => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::Conflict | ErrorCode::VersionConflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge
            | ErrorCode::TooManyRecords
            | ErrorCode::TooManyValues
            | ErrorCode::AmplificationLimit
            | ErrorCode::LargerThanQueue => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedContentType | ErrorCode::UnsupportedEncoding => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ErrorCode::StorageRefused => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::StorageUnavailable
            | ErrorCode::QueueFull
            | ErrorCode::KeyQueueShareFull
            | ErrorCode::ServerBusy
            | ErrorCode::NotConfirmed
            | ErrorCode::ShuttingDown
            | ErrorCode::NotEvaluator => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::QueryTooSlow => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The `Retry-After` seconds a retry of the same request should wait, for
    /// the conditions that pass by themselves.
    pub const fn default_retry_after_secs(self) -> Option<u64> {
        match self {
            ErrorCode::StorageUnavailable
            | ErrorCode::QueueFull
            | ErrorCode::KeyQueueShareFull
            | ErrorCode::NotConfirmed
            | ErrorCode::ShuttingDown => Some(5),
            ErrorCode::ServerBusy => Some(1),
            _ => None,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error answer of every route.
#[derive(Debug, Clone)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    field: Option<String>,
    retry_after_secs: Option<u64>,
    /// Members beside `error`, `message` and `field` (e.g. a conflict's `state`).
    extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            retry_after_secs: code.default_retry_after_secs(),
            extra: Map::new(),
        }
    }

    /// Bad input: `field` is wrong for `reason` (the message reads "`field` reason").
    pub fn invalid(field: impl Into<String>, reason: impl fmt::Display) -> Self {
        let field = field.into();
        Self::new(ErrorCode::InvalidRequest, format!("`{field}` {reason}")).with_field(field)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// ClickHouse could not answer: the reason goes to the log with the request
    /// id, the client gets 503 and `Retry-After`.
    pub fn storage(error: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::StorageUnavailable,
            format!("the ClickHouse query failed: {error}; retry later"),
        )
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// Adds a member to the body, e.g. `("state", "resolved")`.
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        if let Ok(value) = serde_json::to_value(value) {
            self.extra.insert(key.to_owned(), value);
        }
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The JSON body, as sent.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("error".into(), self.code.as_str().into());
        body.insert("message".into(), self.message.clone().into());
        if let Some(field) = &self.field {
            body.insert("field".into(), field.clone().into());
        }
        for (key, value) in &self.extra {
            body.entry(key.clone()).or_insert_with(|| value.clone());
        }
        Value::Object(body)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        if self.code == ErrorCode::Unauthorized {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        response.json(self.body())
    }
}

/// The documented shape of the body (for the OpenAPI document); the extra
/// members of some errors are described on their routes.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable code (see `docs/api.md`), e.g. `invalid_request`.
    pub error: String,
    /// What to fix, for the person reading it.
    pub message: String,
    /// The offending input, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Parses a JSON body into `T`; a failure names the path of the offending
/// member (`rules[2].for`) as `field`.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorCode::EmptyBody,
            "the body is empty: send a JSON object",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = parsed.map_err(json_error)?;
    deserializer.end().map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body is not one JSON value: {e}"),
        )
    })?;
    Ok(value)
}

/// Reads an already parsed JSON value as `T` (a body read leniently first);
/// a failure names the offending member as [`parse_json`] does.
pub fn from_json_value<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(json_error)
}

fn json_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    match inner.classify() {
        serde_json::error::Category::Data => {
            let reason = strip_position(&inner.to_string());
            // A missing member is named by serde only in its message, under the
            // path where it was looked for (an unknown one is in the path).
            let missing = reason
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next());
            let at = |name: &str| match path.as_str() {
                "." | "" => name.to_owned(),
                parent => format!("{parent}.{name}"),
            };
            match (missing, path.as_str()) {
                (Some(name), _) => ApiError::invalid(at(name), "is missing"),
                (None, _) if reason.starts_with("unknown field `") => {
                    ApiError::invalid(path, unknown_member(&reason))
                }
                (None, "." | "") => ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("the body is not valid: {reason}"),
                ),
                (None, _) => ApiError::invalid(path, reason),
            }
        }
        _ => ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body is not valid JSON: {inner}"),
        ),
    }
}

/// "unknown field `x`, expected one of `a`, `b`" -> "is not known; expected
/// one of `a`, `b`".
fn unknown_member(reason: &str) -> String {
    match reason.split_once(", ") {
        Some((_, rest)) => format!("is not known; {rest}"),
        None => "is not known".to_owned(),
    }
}

/// serde_json ends a data error with " at line 1 column 42", which the field
/// path already says better.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// A response with the JSON error body, for the few places that answer
/// without an error value (the fallback route, the panic guard).
pub fn error_response(code: ErrorCode, message: impl Into<String>) -> HttpResponse {
    ApiError::new(code, message).error_response()
}

/// The answer when no route took the request: the application's default
/// service. Resources inherit it, so a known path asked with another method
/// lands here too, with its pattern matched: that is a 405, not a 404. A
/// resource with a default service of its own uses this one as well.
pub async fn no_route(req: actix_web::HttpRequest) -> HttpResponse {
    if let Some(pattern) = req.match_pattern() {
        return error_response(
            ErrorCode::MethodNotAllowed,
            format!("{pattern} does not take {}", req.method()),
        );
    }
    error_response(
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_each_maps_to_an_error_status() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert!(
                code.status().is_client_error() || code.status().is_server_error(),
                "{code}"
            );
        }
    }

    #[test]
    fn a_bad_member_is_named_by_its_path() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Rule {
            name: String,
            tier: u8,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            rules: Vec<Rule>,
        }
        let error =
            parse_json::<Body>(br#"{"rules":[{"name":"a","tier":1},{"name":"b","tier":"x"}]}"#)
                .unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
        assert_eq!(error.field(), Some("rules[1].tier"));
        assert!(!error.message().contains("line 1"), "{}", error.message());

        let error = parse_json::<Body>(br#"{"rules":[{"name":"a"}]}"#).unwrap_err();
        assert_eq!(error.field(), Some("rules[0].tier"));
        assert_eq!(error.message(), "`rules[0].tier` is missing");
        let error = parse_json::<Body>(b"{}").unwrap_err();
        assert_eq!(error.field(), Some("rules"));
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Strict {
            title: String,
        }
        let error = parse_json::<Strict>(br#"{"title":"a","severity":1}"#).unwrap_err();
        assert_eq!(error.field(), Some("severity"));
        assert!(
            error.message().contains("is not known; expected"),
            "{}",
            error.message()
        );

        let error = parse_json::<Body>(b"{not json").unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidJson);
        let error = parse_json::<Body>(b"  ").unwrap_err();
        assert_eq!(error.code(), ErrorCode::EmptyBody);
        let error = parse_json::<Body>(br#"{"rules":[]} {}"#).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidJson);
    }

    #[test]
    fn the_body_carries_field_extra_members_and_retry_after() {
        let error = ApiError::invalid("window", "must be a duration such as 10m").with("hint", 3);
        assert_eq!(
            error.body(),
            serde_json::json!({"error": "invalid_request", "message": "`window` must be a duration such as 10m", "field": "window", "hint": 3})
        );
        let response = ApiError::storage("connection refused").error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "5");
        let response = ApiError::new(ErrorCode::Unauthorized, "no key").error_response();
        assert_eq!(
            response.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            "Bearer"
        );
    }
}

#[cfg(test)]
mod documented {
    use super::ErrorCode;

    /// `docs/api.md` lists every code with its status, and nothing else.
    #[test]
    fn docs_api_md_lists_exactly_the_codes_and_their_statuses() {
        let page = include_str!("../../../docs/api.md");
        let table = page
            .split("## Error codes")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("docs/api.md has an `## Error codes` section");
        let documented: Vec<(String, u16)> = table
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                Some((code.to_owned(), cells.get(2)?.parse().ok()?))
            })
            .collect();
        let expected: Vec<(String, u16)> = ErrorCode::ALL
            .iter()
            .map(|c| (c.as_str().to_owned(), c.status().as_u16()))
            .collect();
        assert_eq!(documented, expected);
    }
}
