//! API keys, scopes and per-key rate limits.
//!
//! Keys are declared in the configuration (`[[auth.keys]]`) with a name, the key
//! itself (or its SHA-256, so that the file need not hold the secret), scopes and an
//! optional rate limit. Only SHA-256 digests are kept in memory; a request's key is
//! hashed and looked up, so comparing keys takes the same time whatever they share.
//!
//! A caller presents its key in the form its ecosystem's clients send it
//! (see REFERENCE.md, "API-key conventions"):
//! `Authorization: Bearer <key>`, `Authorization: Basic base64(<key>:)` (Segment
//! libraries, Prometheus `basic_auth`), or `X-API-Key: <key>`. Routes whose
//! clients may put the key in the body instead (Segment's `writeKey`) take an
//! [`OptionalCaller`] and fall back to [`Caller::from_body_key`].
//!
//! Order of checks: unknown or missing key 401, missing scope 403, over the key's
//! rate limit 429 with `Retry-After`. Only authorized requests use up the limit.
//! Ingest routes also take the bytes of each body from the key's byte rate
//! ([`Caller::take_bytes`]), so that one key sending few large bodies cannot take
//! the whole machine either.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use base64::Engine;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorCode};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Send events and metrics.
    Ingest,
    /// Read KPIs, alerts, reports and summaries.
    Read,
    /// Create and work feedback tickets (support agents).
    Support,
    /// Everything, including changing definitions.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Support => "support",
            Scope::Admin => "admin",
        }
    }
}

/// The `[auth]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub keys: Vec<ApiKeySettings>,
    /// The rate limit of keys that do not set their own.
    pub default_rate_limit: RateLimitSettings,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            default_rate_limit: RateLimitSettings {
                requests_per_second: 1000,
                burst: 2000,
                bytes_per_second: default_bytes_per_second(),
                burst_bytes: default_burst_bytes(),
            },
        }
    }
}

/// One `[[auth.keys]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySettings {
    /// Who holds the key, e.g. `checkout-backend`; shows in logs and metrics.
    pub name: String,
    /// The key itself. Prefer `key_sha256` in files that others can read.
    pub key: Option<SecretString>,
    /// Hex SHA-256 of the key (`printf %s "$KEY" | sha256sum`).
    pub key_sha256: Option<String>,
    pub scopes: Vec<Scope>,
    pub rate_limit: Option<RateLimitSettings>,
}

/// Two token buckets: requests (`requests_per_second` refill, `burst`
/// capacity) and body bytes after decompression (`bytes_per_second`,
/// `burst_bytes`, which must hold the largest body).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub requests_per_second: u32,
    pub burst: u32,
    #[serde(default = "default_bytes_per_second")]
    pub bytes_per_second: u32,
    #[serde(default = "default_burst_bytes")]
    pub burst_bytes: u32,
}

fn default_bytes_per_second() -> u32 {
    64 * 1024 * 1024
}

fn default_burst_bytes() -> u32 {
    128 * 1024 * 1024
}

/// A known key, without its secret.
pub struct ApiKey {
    pub name: String,
    scopes: Vec<Scope>,
    limit: RateLimitSettings,
    limiter: DefaultDirectRateLimiter,
    byte_limiter: DefaultDirectRateLimiter,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&scope)
    }
}

/// An `[auth]` setting that cannot be used: where it is and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {reason}")]
pub struct KeySettingsError {
    pub at: String,
    pub reason: String,
}

impl KeySettingsError {
    fn new(at: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            at: at.into(),
            reason: reason.into(),
        }
    }
}

/// All keys, by the SHA-256 of the secret.
#[derive(Debug, Default)]
pub struct ApiKeys {
    by_digest: HashMap<[u8; 32], Arc<ApiKey>>,
}

impl ApiKeys {
    /// Builds the key set, or says which entry is wrong and why.
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, KeySettingsError> {
        let mut by_digest = HashMap::new();
        for (i, entry) in settings.keys.iter().enumerate() {
            let at = format!("auth.keys[{i}] (name `{}`)", entry.name);
            if entry.name.trim().is_empty() {
                return Err(KeySettingsError::new(
                    format!("auth.keys[{i}].name"),
                    "must not be empty",
                ));
            }
            let digest = match (&entry.key, &entry.key_sha256) {
                (Some(key), None) => {
                    let key = key.expose_secret();
                    if key.len() < 16 {
                        return Err(KeySettingsError::new(
                            format!("{at}.key"),
                            "must be at least 16 characters",
                        ));
                    }
                    digest(key)
                }
                (None, Some(hex_digest)) => {
                    let bytes = hex::decode(hex_digest.trim())
                        .ok()
                        .filter(|b| b.len() == 32);
                    let Some(bytes) = bytes else {
                        return Err(KeySettingsError::new(
                            format!("{at}.key_sha256"),
                            "must be 64 hex digits",
                        ));
                    };
                    let mut out = [0u8; 32];
                    out.copy_from_slice(&bytes);
                    out
                }
                _ => {
                    return Err(KeySettingsError::new(
                        at,
                        "set exactly one of `key` and `key_sha256`",
                    ));
                }
            };
            if entry.scopes.is_empty() {
                return Err(KeySettingsError::new(
                    format!("{at}.scopes"),
                    "give at least one of ingest, read, admin",
                ));
            }
            let limit = entry.rate_limit.unwrap_or(settings.default_rate_limit);
            let quota = quota(limit)
                .map_err(|reason| KeySettingsError::new(format!("{at}.rate_limit"), reason))?;
            let byte_quota = byte_quota(limit)
                .map_err(|reason| KeySettingsError::new(format!("{at}.rate_limit"), reason))?;
            let key = ApiKey {
                name: entry.name.clone(),
                scopes: entry.scopes.clone(),
                limit,
                limiter: RateLimiter::direct(quota),
                byte_limiter: RateLimiter::direct(byte_quota),
            };
            if by_digest.insert(digest, Arc::new(key)).is_some() {
                return Err(KeySettingsError::new(at, "the same key is declared twice"));
            }
        }
        quota(settings.default_rate_limit)
            .and_then(|_| byte_quota(settings.default_rate_limit))
            .map_err(|reason| KeySettingsError::new("auth.default_rate_limit", reason))?;
        Ok(Self { by_digest })
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The key whose secret is `presented`, if any (the console's sign-in).
    pub fn find(&self, presented: &str) -> Option<Arc<ApiKey>> {
        self.by_digest.get(&digest(presented)).cloned()
    }

    /// Identifies the caller of `req`, or says why not.
    pub fn authenticate(&self, req: &HttpRequest) -> Result<Arc<ApiKey>, AuthError> {
        let presented = presented_key(req).ok_or(AuthError::Missing)?;
        self.find(&presented).ok_or(AuthError::Unknown)
    }
}

fn quota(limit: RateLimitSettings) -> Result<Quota, &'static str> {
    let rate = NonZeroU32::new(limit.requests_per_second)
        .ok_or("requests_per_second must be at least 1")?;
    let burst = NonZeroU32::new(limit.burst).ok_or("burst must be at least 1")?;
    Ok(Quota::per_second(rate).allow_burst(burst))
}

fn byte_quota(limit: RateLimitSettings) -> Result<Quota, &'static str> {
    let rate =
        NonZeroU32::new(limit.bytes_per_second).ok_or("bytes_per_second must be at least 1")?;
    let burst = NonZeroU32::new(limit.burst_bytes).ok_or("burst_bytes must be at least 1")?;
    Ok(Quota::per_second(rate).allow_burst(burst))
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn presented_key(req: &HttpRequest) -> Option<String> {
    let headers = req.headers();
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, rest) = value.trim().split_once(' ')?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(rest.to_owned());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            // Segment sends `<key>:`; Prometheus basic_auth may put the key in either half.
            let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
            let key = if user.is_empty() { password } else { user };
            return Some(key.to_owned());
        }
        return None;
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

/// The authenticated caller of a request; handlers take it as an argument and then
/// call [`Caller::authorize`] with the scope the route needs.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<ApiKey>);

impl Caller {
    /// Checks the scope, then takes one request from the key's rate limit.
    pub fn authorize(&self, scope: Scope) -> Result<(), AuthError> {
        if !self.0.has_scope(scope) {
            return Err(AuthError::MissingScope {
                key: self.0.name.clone(),
                scope,
            });
        }
        if let Err(not_until) = self.0.limiter.check() {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(AuthError::RateLimited {
                key: self.0.name.clone(),
                limit: self.0.limit,
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        Ok(())
    }

    /// Takes a body of `bytes` (after decompression) from the key's byte rate.
    pub fn take_bytes(&self, bytes: usize) -> Result<(), AuthError> {
        let limit = self.0.limit;
        let over = |retry_after_secs: u64| AuthError::ByteRateLimited {
            key: self.0.name.clone(),
            limit,
            retry_after_secs,
        };
        let Some(n) = u32::try_from(bytes).ok().and_then(NonZeroU32::new) else {
            return match bytes {
                0 => Ok(()),
                _ => Err(over(1)),
            };
        };
        match self.0.byte_limiter.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(over(wait.as_secs_f64().ceil().max(1.0) as u64))
            }
            // Larger than the whole bucket: configuration keeps it above the body
            // limit, so only a misconfigured key lands here; waiting will not help.
            Err(_) => Err(over(60)),
        }
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }
}

impl Caller {
    /// The caller identified by a key found in the request body (Segment's
    /// `writeKey`), for requests that carry no key in their headers.
    pub fn from_body_key(req: &HttpRequest, key: &str) -> Result<Self, AuthError> {
        let keys = req
            .app_data::<web::Data<ApiKeys>>()
            .ok_or(AuthError::Unknown)?;
        keys.find(key.trim()).map(Caller).ok_or(AuthError::Unknown)
    }
}

/// The caller when the request's headers carry a key, `None` when they carry
/// none. A key in the headers that is not known is still refused (401).
#[derive(Debug, Clone)]
pub struct OptionalCaller(pub Option<Caller>);

impl FromRequest for OptionalCaller {
    type Error = AuthError;
    type Future = std::future::Ready<Result<Self, AuthError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match req.app_data::<web::Data<ApiKeys>>() {
            Some(keys) => match keys.authenticate(req) {
                Ok(key) => Ok(OptionalCaller(Some(Caller(key)))),
                Err(AuthError::Missing) => Ok(OptionalCaller(None)),
                Err(e) => Err(e),
            },
            None => Err(AuthError::Unknown),
        };
        std::future::ready(result)
    }
}

impl FromRequest for Caller {
    type Error = AuthError;
    type Future = std::future::Ready<Result<Self, AuthError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match req.app_data::<web::Data<ApiKeys>>() {
            Some(keys) => keys.authenticate(req).map(Caller),
            None => Err(AuthError::Unknown),
        };
        std::future::ready(result)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no API key: send `Authorization: Bearer <key>`")]
    Missing,
    #[error("the API key is not known")]
    Unknown,
    #[error("API key `{key}` lacks the `{}` scope this route needs", scope.as_str())]
    MissingScope { key: String, scope: Scope },
    #[error("API key `{key}` is over its rate limit of {} requests/s (burst {}); retry after {retry_after_secs}s", limit.requests_per_second, limit.burst)]
    RateLimited {
        key: String,
        limit: RateLimitSettings,
        retry_after_secs: u64,
    },
    #[error("API key `{key}` is over its byte rate of {} bytes/s (burst {} bytes); retry after {retry_after_secs}s", limit.bytes_per_second, limit.burst_bytes)]
    ByteRateLimited {
        key: String,
        limit: RateLimitSettings,
        retry_after_secs: u64,
    },
}

impl From<&AuthError> for ApiError {
    fn from(error: &AuthError) -> Self {
        let message = error.to_string();
        match error {
            AuthError::Missing | AuthError::Unknown => {
                ApiError::new(ErrorCode::Unauthorized, message)
            }
            AuthError::MissingScope { .. } => ApiError::new(ErrorCode::Forbidden, message),
            AuthError::RateLimited {
                retry_after_secs, ..
            }
            | AuthError::ByteRateLimited {
                retry_after_secs, ..
            } => ApiError::new(ErrorCode::RateLimited, message).with_retry_after(*retry_after_secs),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        ApiError::from(&error)
    }
}

/// The extractor's own answer (a route that fails before its handler runs).
impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        ApiError::from(self).status_code()
    }

    fn error_response(&self) -> HttpResponse {
        ApiError::from(self).error_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn keys(entries: Vec<ApiKeySettings>) -> Result<ApiKeys, KeySettingsError> {
        ApiKeys::from_settings(&AuthSettings {
            keys: entries,
            ..AuthSettings::default()
        })
    }

    fn entry(name: &str, key: &str, scopes: Vec<Scope>) -> ApiKeySettings {
        ApiKeySettings {
            name: name.into(),
            key: Some(SecretString::from(key.to_owned())),
            key_sha256: None,
            scopes,
            rate_limit: None,
        }
    }

    #[test]
    fn a_key_is_found_from_bearer_basic_and_x_api_key() {
        let keys = keys(vec![entry("ci", "0123456789abcdef", vec![Scope::Ingest])]).unwrap();
        let basic = base64::engine::general_purpose::STANDARD.encode("0123456789abcdef:");
        for (name, value) in [
            ("authorization", "Bearer 0123456789abcdef".to_owned()),
            ("authorization", format!("Basic {basic}")),
            ("x-api-key", "0123456789abcdef".to_owned()),
        ] {
            let req = TestRequest::default()
                .insert_header((name, value))
                .to_http_request();
            assert_eq!(keys.authenticate(&req).unwrap().name, "ci");
        }
    }

    #[test]
    fn a_key_from_the_body_is_found_and_an_absent_header_is_not_an_error() {
        let keys = web::Data::new(
            keys(vec![entry("web", "0123456789abcdef", vec![Scope::Ingest])]).unwrap(),
        );
        let req = TestRequest::default()
            .app_data(keys.clone())
            .to_http_request();
        let optional = OptionalCaller::extract(&req).into_inner().unwrap();
        assert!(optional.0.is_none());
        assert_eq!(
            Caller::from_body_key(&req, "0123456789abcdef")
                .unwrap()
                .name(),
            "web"
        );
        assert!(matches!(
            Caller::from_body_key(&req, "wrong-key-0123456"),
            Err(AuthError::Unknown)
        ));
        let bad_header = TestRequest::default()
            .app_data(keys)
            .insert_header(("authorization", "Bearer nope-nope-nope-nope"))
            .to_http_request();
        assert!(OptionalCaller::extract(&bad_header).into_inner().is_err());
    }

    #[test]
    fn a_key_given_by_its_digest_matches_the_key() {
        let keys = keys(vec![ApiKeySettings {
            key: None,
            key_sha256: Some(hex::encode(Sha256::digest(b"0123456789abcdef"))),
            ..entry("ci", "", vec![Scope::Read])
        }])
        .unwrap();
        let req = TestRequest::default()
            .insert_header(("authorization", "Bearer 0123456789abcdef"))
            .to_http_request();
        assert!(keys.authenticate(&req).is_ok());
    }

    #[test]
    fn bad_key_entries_are_refused_with_the_field_named() {
        let err = keys(vec![entry("short", "abc", vec![Scope::Ingest])]).unwrap_err();
        assert_eq!(err.at, "auth.keys[0] (name `short`).key");
        assert_eq!(err.reason, "must be at least 16 characters");
        let err = keys(vec![entry("none", "0123456789abcdef", vec![])]).unwrap_err();
        assert_eq!(err.at, "auth.keys[0] (name `none`).scopes");
    }

    #[test]
    fn admin_implies_every_scope() {
        let keys = keys(vec![entry("root", "0123456789abcdef", vec![Scope::Admin])]).unwrap();
        let key = keys.find("0123456789abcdef").unwrap();
        assert!(key.has_scope(Scope::Ingest) && key.has_scope(Scope::Read));
        assert!(key.has_scope(Scope::Support));
    }

    #[test]
    fn a_support_key_works_tickets_and_nothing_else() {
        let agents = keys(vec![entry(
            "agent",
            "0123456789abcdef",
            vec![Scope::Support],
        )])
        .unwrap();
        let agent = agents.find("0123456789abcdef").unwrap();
        assert!(agent.has_scope(Scope::Support));
        assert!(!agent.has_scope(Scope::Ingest) && !agent.has_scope(Scope::Admin));
    }

    #[test]
    fn bodies_are_taken_from_the_key_s_byte_rate() {
        let mut entry = entry("bulk", "0123456789abcdef", vec![Scope::Ingest]);
        entry.rate_limit = Some(RateLimitSettings {
            requests_per_second: 1000,
            burst: 1000,
            bytes_per_second: 1000,
            burst_bytes: 5000,
        });
        let keys = keys(vec![entry]).unwrap();
        let caller = Caller(keys.find("0123456789abcdef").unwrap());
        assert!(caller.take_bytes(3000).is_ok());
        assert!(caller.take_bytes(2000).is_ok());
        let over = caller.take_bytes(3000).unwrap_err();
        assert!(matches!(over, AuthError::ByteRateLimited { .. }), "{over}");
        assert_eq!(over.status_code(), StatusCode::TOO_MANY_REQUESTS);
        assert!(over.to_string().contains("1000 bytes/s"), "{over}");
        assert!(caller.take_bytes(0).is_ok());
    }
}
