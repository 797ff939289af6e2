//! Reading a request body: gzip/deflate decoding, a size limit and a read
//! deadline that answer in JSON.
//!
//! ```text
//! payload chunks (as sent) --(timeout over the whole read)-->
//!   identity: appended while the total stays <= limit
//!   gzip / deflate: inflated in steps of at most 32 KiB; the limit is checked
//!   after each step, so a small compressed chunk cannot expand past it
//! ```
//!
//! Nothing is allocated from `Content-Length`: a client may declare any size
//! and send nothing; the buffer grows with the bytes actually received.
//!
//! Bodies being read are also bounded all together ([`BodiesInFlight`], in the
//! app data): many slow senders, each under the per-request limit, could
//! otherwise hold the memory of the machine between them. A read that would
//! pass the total answers 503 `server_busy` with `Retry-After`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ApiError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than the limit of {limit} bytes (after decompression)")]
    TooLarge { limit: usize },
    #[error("Content-Encoding `{0}` is not supported: send the body plain or gzip")]
    UnsupportedEncoding(String),
    #[error("the body could not be read or decompressed: {0}")]
    Unreadable(String),
    #[error("the body was not received within {secs} s (body_read_timeout)")]
    Timeout { secs: f64 },
    #[error(
        "the service is reading {capacity} bytes of request bodies at once (server.max_bodies_in_flight_bytes); retry shortly"
    )]
    Busy { capacity: usize },
}

impl From<&BodyError> for ApiError {
    fn from(error: &BodyError) -> Self {
        let code = match error {
            BodyError::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            BodyError::UnsupportedEncoding(_) => ErrorCode::UnsupportedEncoding,
            BodyError::Unreadable(_) => ErrorCode::UnreadableBody,
            BodyError::Timeout { .. } => ErrorCode::BodyTimeout,
            BodyError::Busy { .. } => ErrorCode::ServerBusy,
        };
        ApiError::new(code, error.to_string())
    }
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        ApiError::from(&error)
    }
}

/// The extractor's own answer ([`JsonBody`] fails before its handler runs).
impl ResponseError for BodyError {
    fn status_code(&self) -> StatusCode {
        ApiError::from(self).status_code()
    }

    fn error_response(&self) -> HttpResponse {
        ApiError::from(self).error_response()
    }
}

/// How much of a body a route reads, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit {
    /// Decoded bytes at most.
    pub max_bytes: usize,
    /// The whole body must arrive within this time (slow senders hold a worker
    /// and a buffer otherwise).
    pub read_timeout: Duration,
}

/// The bytes of request bodies being read at once, over every request: put it
/// in the app data (`web::Data<BodiesInFlight>`); without it reads are bounded
/// per request only.
#[derive(Debug, Clone)]
pub struct BodiesInFlight {
    bytes: Arc<Semaphore>,
    capacity: usize,
}

impl BodiesInFlight {
    pub fn new(capacity: usize) -> Self {
        Self {
            bytes: Arc::new(Semaphore::new(capacity.min(Semaphore::MAX_PERMITS))),
            capacity,
        }
    }

    /// Bytes that bodies being read hold now.
    pub fn held(&self) -> usize {
        self.capacity
            .min(Semaphore::MAX_PERMITS)
            .saturating_sub(self.bytes.available_permits())
    }
}

/// One read's share of [`BodiesInFlight`], grown with its buffer and given
/// back when the read ends (the body then belongs to the handler, whose own
/// limits apply).
struct Held {
    budget: Option<BodiesInFlight>,
    permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
}

impl Held {
    fn grow_to(&mut self, bytes: usize) -> Result<(), BodyError> {
        let Some(budget) = &self.budget else {
            return Ok(());
        };
        if bytes <= self.bytes {
            return Ok(());
        }
        let more = u32::try_from(bytes - self.bytes).unwrap_or(u32::MAX);
        let permit = budget
            .bytes
            .clone()
            .try_acquire_many_owned(more)
            .map_err(|_| BodyError::Busy {
                capacity: budget.capacity,
            })?;
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        self.bytes = bytes;
        Ok(())
    }
}

/// How the body is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Identity,
    Gzip,
    Deflate,
}

/// Reads the whole body, decoding `Content-Encoding: gzip` (or `deflate`), up to
/// `limit.max_bytes` decoded bytes and within `limit.read_timeout`.
pub async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: BodyLimit,
) -> Result<Bytes, BodyError> {
    read_decoded(req, payload.into_inner(), limit).await
}

async fn read_decoded(
    req: &HttpRequest,
    payload: actix_web::dev::Payload,
    limit: BodyLimit,
) -> Result<Bytes, BodyError> {
    let headers = req.headers();
    let coding = match headers.get(header::CONTENT_ENCODING) {
        None => Coding::Identity,
        Some(encoding) => {
            let encoding = encoding.to_str().unwrap_or("").trim().to_ascii_lowercase();
            match encoding.as_str() {
                "" | "identity" => Coding::Identity,
                "gzip" | "x-gzip" => Coding::Gzip,
                "deflate" => Coding::Deflate,
                _ => return Err(BodyError::UnsupportedEncoding(encoding)),
            }
        }
    };
    let held = in_flight(req);
    with_deadline(
        limit,
        collect(headers, payload, coding, limit.max_bytes, held),
    )
    .await
}

fn in_flight(req: &HttpRequest) -> Held {
    Held {
        budget: req
            .app_data::<web::Data<BodiesInFlight>>()
            .map(|budget| budget.get_ref().clone()),
        permit: None,
        bytes: 0,
    }
}

/// The body of a small JSON request (tickets, KPI definitions, launches), up to
/// [`JsonBody::LIMIT`] bytes after gzip decoding. Unlike `web::Bytes`, whose
/// errors are plain text, it answers over the limit with the JSON error body
/// (413 `payload_too_large`), and checks `Content-Length` before reading.
#[derive(Debug)]
pub struct JsonBody(pub Bytes);

impl JsonBody {
    /// As much as `web::Bytes` took by default.
    pub const LIMIT: usize = 256 * 1024;

    const READ: BodyLimit = BodyLimit {
        max_bytes: Self::LIMIT,
        read_timeout: Duration::from_secs(30),
    };
}

impl std::ops::Deref for JsonBody {
    type Target = Bytes;

    fn deref(&self) -> &Bytes {
        &self.0
    }
}

impl actix_web::FromRequest for JsonBody {
    type Error = BodyError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, BodyError>>;

    fn from_request(
        req: &actix_web::HttpRequest,
        payload: &mut actix_web::dev::Payload,
    ) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move { read_decoded(&req, payload, Self::READ).await.map(JsonBody) })
    }
}

/// Reads the whole body as sent, without decoding any `Content-Encoding`, up to
/// `limit` bytes: for protocols whose encoding is part of the protocol and is
/// decoded by the route (Prometheus remote write's snappy).
pub async fn read_body_as_sent(
    req: &HttpRequest,
    payload: web::Payload,
    limit: BodyLimit,
) -> Result<Bytes, BodyError> {
    with_deadline(
        limit,
        collect(
            req.headers(),
            payload,
            Coding::Identity,
            limit.max_bytes,
            in_flight(req),
        ),
    )
    .await
}

async fn with_deadline(
    limit: BodyLimit,
    read: impl Future<Output = Result<Bytes, BodyError>>,
) -> Result<Bytes, BodyError> {
    tokio::time::timeout(limit.read_timeout, read)
        .await
        .unwrap_or(Err(BodyError::Timeout {
            secs: limit.read_timeout.as_secs_f64(),
        }))
}

async fn collect<S, E>(
    headers: &HeaderMap,
    mut stream: S,
    coding: Coding,
    limit: usize,
    mut held: Held,
) -> Result<Bytes, BodyError>
where
    S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    // A declared length over the limit is refused before reading; for a
    // compressed body it is a lower bound of the decoded size only roughly, so
    // only plain bodies are refused on it.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if coding == Coding::Identity && declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut decoder = Decoder::new(coding, limit);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Unreadable(e.to_string()))?;
        decoder.push(&chunk)?;
        held.grow_to(decoder.sink().out.capacity())?;
    }
    decoder.finish()
}

/// A sink that refuses to grow past `limit`.
struct Bounded {
    out: Vec<u8>,
    limit: usize,
    over: bool,
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.limit {
            self.over = true;
            return Err(std::io::Error::other("over the body limit"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Decodes a body chunk by chunk into a bounded buffer. flate2's write-side
/// decoders inflate into a 32 KiB buffer and hand it to the sink before
/// inflating more, so a refusal stops inflation within 32 KiB of the limit.
enum Decoder {
    Identity(Bounded),
    Gzip(Box<flate2::write::GzDecoder<Bounded>>),
    Deflate(Box<flate2::write::ZlibDecoder<Bounded>>),
}

impl Decoder {
    fn new(coding: Coding, limit: usize) -> Self {
        let sink = Bounded {
            out: Vec::new(),
            limit,
            over: false,
        };
        match coding {
            Coding::Identity => Decoder::Identity(sink),
            Coding::Gzip => Decoder::Gzip(Box::new(flate2::write::GzDecoder::new(sink))),
            Coding::Deflate => Decoder::Deflate(Box::new(flate2::write::ZlibDecoder::new(sink))),
        }
    }

    fn limit(&self) -> usize {
        self.sink().limit
    }

    fn sink(&self) -> &Bounded {
        match self {
            Decoder::Identity(sink) => sink,
            Decoder::Gzip(d) => d.get_ref(),
            Decoder::Deflate(d) => d.get_ref(),
        }
    }

    fn error(&self, e: std::io::Error) -> BodyError {
        if self.sink().over {
            BodyError::TooLarge {
                limit: self.limit(),
            }
        } else {
            BodyError::Unreadable(e.to_string())
        }
    }

    fn push(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        let result = match self {
            Decoder::Identity(sink) => sink.write_all(chunk),
            Decoder::Gzip(d) => d.write_all(chunk),
            Decoder::Deflate(d) => d.write_all(chunk),
        };
        result.map_err(|e| self.error(e))
    }

    fn finish(self) -> Result<Bytes, BodyError> {
        let limit = self.limit();
        let result = match self {
            Decoder::Identity(sink) => Ok(sink),
            Decoder::Gzip(d) => d.finish(),
            Decoder::Deflate(d) => d.finish(),
        };
        match result {
            Ok(sink) => Ok(Bytes::from(sink.out)),
            Err(e) if e.to_string().contains("over the body limit") => {
                Err(BodyError::TooLarge { limit })
            }
            Err(e) => Err(BodyError::Unreadable(e.to_string())),
        }
    }
}

/// Registers the JSON answers of actix's own extractors (`web::Json`,
/// `web::Path`, `web::Query`), so that their failures answer like the rest.
pub fn extractor_errors(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|err, _| {
        let error = ApiError::new(ErrorCode::InvalidRequest, format!("the query string {err}"));
        actix_web::error::InternalError::from_response(err, error.error_response()).into()
    }))
    .app_data(web::PathConfig::default().error_handler(|err, _| {
        let error = ApiError::new(ErrorCode::InvalidRequest, format!("the path {err}"));
        actix_web::error::InternalError::from_response(err, error.error_response()).into()
    }))
    .app_data(
        web::JsonConfig::default()
            .limit(JsonBody::LIMIT)
            .error_handler(|err, _| {
                let error = match &err {
                    actix_web::error::JsonPayloadError::Overflow { limit }
                    | actix_web::error::JsonPayloadError::OverflowKnownLength { limit, .. } => {
                        ApiError::new(
                            ErrorCode::PayloadTooLarge,
                            format!("the body is larger than the limit of {limit} bytes"),
                        )
                    }
                    actix_web::error::JsonPayloadError::ContentType => ApiError::new(
                        ErrorCode::UnsupportedContentType,
                        "send the body as application/json",
                    ),
                    actix_web::error::JsonPayloadError::Deserialize(e) if e.is_data() => {
                        ApiError::new(
                            ErrorCode::InvalidRequest,
                            format!("the body is not valid: {e}"),
                        )
                    }
                    other => ApiError::new(
                        ErrorCode::InvalidJson,
                        format!("the body is not valid JSON: {other}"),
                    ),
                };
                actix_web::error::InternalError::from_response(err, error.error_response()).into()
            }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode(coding: Coding, body: &[u8], limit: usize) -> Result<Bytes, BodyError> {
        let mut d = Decoder::new(coding, limit);
        for chunk in body.chunks(16 * 1024) {
            d.push(chunk)?;
        }
        d.finish()
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit_while_inflating() {
        // 64 MiB of zeros is about 64 KiB of gzip: one input chunk inflates to
        // megabytes, and must be refused before that is held.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        let mut d = Decoder::new(Coding::Gzip, 1 << 20);
        let mut refused = false;
        for chunk in bomb.chunks(16 * 1024) {
            if let Err(e) = d.push(chunk) {
                assert!(matches!(e, BodyError::TooLarge { limit } if limit == 1 << 20));
                refused = true;
                break;
            }
            assert!(d.sink().out.len() <= 1 << 20);
        }
        assert!(refused);
        assert!(
            d.sink().out.capacity() <= 2 << 20,
            "{}",
            d.sink().out.capacity()
        );
    }

    #[test]
    fn gzip_within_the_limit_and_plain_bodies_read_whole() {
        let data = b"{\"event\":\"a\"}".repeat(1000);
        assert_eq!(decode(Coding::Gzip, &gzip(&data), 1 << 20).unwrap(), data);
        assert_eq!(decode(Coding::Identity, &data, 1 << 20).unwrap(), data);
        assert!(matches!(
            decode(Coding::Identity, &data, 100),
            Err(BodyError::TooLarge { limit: 100 })
        ));
        let truncated = gzip(&data);
        assert!(matches!(
            decode(Coding::Gzip, &truncated[..truncated.len() - 10], 1 << 20),
            Err(BodyError::Unreadable(_))
        ));
    }

    #[test]
    fn reads_together_cannot_hold_more_than_the_in_flight_budget() {
        let budget = BodiesInFlight::new(100);
        let read = || Held {
            budget: Some(budget.clone()),
            permit: None,
            bytes: 0,
        };
        let mut slow = read();
        slow.grow_to(60).unwrap();
        let mut other = read();
        other.grow_to(30).unwrap();
        assert_eq!(budget.held(), 90);
        let busy = other.grow_to(50).unwrap_err();
        assert!(matches!(busy, BodyError::Busy { capacity: 100 }), "{busy}");
        assert_eq!(
            busy.error_response().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert!(
            busy.error_response()
                .headers()
                .contains_key(header::RETRY_AFTER)
        );
        drop(slow);
        assert_eq!(budget.held(), 30, "a finished read gives its bytes back");
        other.grow_to(90).unwrap();
    }

    #[actix_web::test]
    async fn extractor_failures_answer_the_same_json_shape() {
        use actix_web::{App, test};
        #[derive(serde::Deserialize)]
        struct Page {
            #[allow(dead_code)]
            limit: u32,
        }
        #[derive(serde::Deserialize)]
        struct Silence {
            #[allow(dead_code)]
            minutes: u32,
        }
        async fn list(_: web::Query<Page>) -> HttpResponse {
            HttpResponse::Ok().finish()
        }
        async fn one(_: web::Path<u32>) -> HttpResponse {
            HttpResponse::Ok().finish()
        }
        async fn create(_: web::Json<Silence>) -> HttpResponse {
            HttpResponse::Ok().finish()
        }
        let app = test::init_service(
            App::new()
                .configure(extractor_errors)
                .route("/list", web::get().to(list))
                .route("/one/{n}", web::get().to(one))
                .route("/create", web::post().to(create)),
        )
        .await;
        let cases = [
            (
                test::TestRequest::get().uri("/list?limit=many"),
                "invalid_request",
            ),
            (test::TestRequest::get().uri("/one/x"), "invalid_request"),
            (
                test::TestRequest::post()
                    .uri("/create")
                    .insert_header(("content-type", "application/json"))
                    .set_payload(r#"{"minutes": "ten"}"#),
                "invalid_request",
            ),
            (
                test::TestRequest::post()
                    .uri("/create")
                    .insert_header(("content-type", "application/json"))
                    .set_payload("{"),
                "invalid_json",
            ),
        ];
        for (request, code) in cases {
            let response = test::call_service(&app, request.to_request()).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            let body: serde_json::Value = test::read_body_json(response).await;
            assert_eq!(body["error"], code, "{body}");
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
}
