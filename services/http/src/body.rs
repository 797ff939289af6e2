//! Reading a request body: gzip decoding and a size limit that answers in JSON.
//!
//! The limit applies to the decoded bytes, so a small gzip body cannot expand
//! past it.

use actix_web::dev::Decompress;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpResponse, ResponseError, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::error::error_response;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than the limit of {limit} bytes (after decompression)")]
    TooLarge { limit: usize },
    #[error("Content-Encoding `{0}` is not supported: send the body plain or gzip")]
    UnsupportedEncoding(String),
    #[error("the body could not be read or decompressed: {0}")]
    Unreadable(String),
}

impl ResponseError for BodyError {
    fn status_code(&self) -> StatusCode {
        match self {
            BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyError::Unreadable(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            BodyError::TooLarge { .. } => "payload_too_large",
            BodyError::UnsupportedEncoding(_) => "unsupported_encoding",
            BodyError::Unreadable(_) => "unreadable_body",
        };
        error_response(self.status_code(), code, self.to_string())
    }
}

/// Reads the whole body, decoding `Content-Encoding: gzip`, up to `limit` bytes.
pub async fn read_body(
    headers: &HeaderMap,
    payload: web::Payload,
    limit: usize,
) -> Result<Bytes, BodyError> {
    read_decoded(headers, payload.into_inner(), limit).await
}

async fn read_decoded(
    headers: &HeaderMap,
    payload: actix_web::dev::Payload,
    limit: usize,
) -> Result<Bytes, BodyError> {
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING) {
        let encoding = encoding.to_str().unwrap_or("").trim().to_ascii_lowercase();
        if !matches!(
            encoding.as_str(),
            "" | "identity" | "gzip" | "x-gzip" | "deflate"
        ) {
            return Err(BodyError::UnsupportedEncoding(encoding));
        }
    }
    let stream = Decompress::from_headers(payload, headers);
    collect(headers, stream, limit).await
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
        let headers = req.headers().clone();
        let payload = payload.take();
        Box::pin(async move {
            read_decoded(&headers, payload, Self::LIMIT)
                .await
                .map(JsonBody)
        })
    }
}

/// Reads the whole body as sent, without decoding any `Content-Encoding`, up to
/// `limit` bytes: for protocols whose encoding is part of the protocol and is
/// decoded by the route (Prometheus remote write's snappy).
pub async fn read_body_as_sent(
    headers: &HeaderMap,
    payload: web::Payload,
    limit: usize,
) -> Result<Bytes, BodyError> {
    collect(headers, payload, limit).await
}

async fn collect<S, E>(headers: &HeaderMap, mut stream: S, limit: usize) -> Result<Bytes, BodyError>
where
    S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Unreadable(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
