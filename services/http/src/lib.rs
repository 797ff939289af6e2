//! What every Hypercare HTTP API shares.
//!
//! - [`auth`]: API keys from the configuration, their scopes and per-key rate limits,
//!   and the [`auth::Caller`] extractor that handlers start with;
//! - [`error`]: the one API error ([`ApiError`]) and its table of codes, which every
//!   4xx/5xx answers with;
//! - [`observe`]: the request middleware (request id, one log line, HTTP metrics);
//! - [`body`]: reading a request body with a size limit and gzip decoding;
//! - [`health`]: liveness and readiness from per-component reports;
//! - [`openapi`]: the OpenAPI parts every route's documentation shares.

pub mod auth;
pub mod body;
pub mod error;
pub mod health;
pub mod observe;
pub mod openapi;
pub mod terminal;

pub use error::{ApiError, ErrorBody, ErrorCode, error_response, parse_json};
