//! Signing in to the console: an API key is exchanged once for a session
//! cookie, and every page and action is then done as that key (its scopes and
//! its rate limit, exactly as the API would).
//!
//! - The cookie (`hypercare_session`) is `HttpOnly`, `SameSite=Strict`, `Path=/`,
//!   has the session's lifetime, and is `Secure` when the request came over TLS
//!   (directly or through a proxy's `X-Forwarded-Proto`), or always/never as
//!   configured.
//! - Sessions live in this process's memory, bounded in number
//!   (`console.max_sessions`; the oldest go first) and in time
//!   (`console.session_ttl_minutes`). Only a digest of the session id is kept.
//!   Behind several replicas, route a browser to one replica (sticky sessions),
//!   or it signs in again.
//! - Every action (`POST`) carries the session's CSRF token in a form field
//!   (`csrf`) or the `X-CSRF-Token` header (htmx), and is refused when the
//!   browser says it comes from another site (`Sec-Fetch-Site`, `Origin`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use hypercare_http::auth::{ApiKey, Caller, Scope};
use hypercare_runtime::SharedClock;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::ConsoleError;

pub const COOKIE: &str = "hypercare_session";

/// When the session cookie is marked `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecureCookie {
    /// When the request came over TLS (or a proxy says it did).
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    /// Serve the console at `/`.
    pub enabled: bool,
    /// How long a sign-in lasts.
    pub session_ttl_minutes: u64,
    /// Sessions kept at most; beyond, the oldest are signed out.
    pub max_sessions: usize,
    pub secure_cookie: SecureCookie,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            session_ttl_minutes: 12 * 60,
            max_sessions: 10_000,
            secure_cookie: SecureCookie::Auto,
        }
    }
}

struct Session {
    key: Arc<ApiKey>,
    csrf: String,
    expires_at_ms: u64,
}

/// The signed-in browsers.
pub struct Sessions {
    by_digest: Mutex<HashMap<[u8; 32], Session>>,
    settings: ConsoleSettings,
    clock: SharedClock,
}

/// A new session: the cookie value and its CSRF token.
pub struct Opened {
    pub id: String,
    pub csrf: String,
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

fn token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Sessions {
    pub fn new(settings: ConsoleSettings, clock: SharedClock) -> Self {
        Self {
            by_digest: Mutex::new(HashMap::new()),
            settings,
            clock,
        }
    }

    pub fn settings(&self) -> &ConsoleSettings {
        &self.settings
    }

    fn ttl_ms(&self) -> u64 {
        self.settings.session_ttl_minutes.saturating_mul(60_000)
    }

    /// Signs `key` in.
    pub fn open(&self, key: Arc<ApiKey>) -> Opened {
        let now = self.clock.now_ms();
        let opened = Opened {
            id: token(),
            csrf: token(),
        };
        let mut sessions = self.by_digest.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| s.expires_at_ms > now);
        while sessions.len() >= self.settings.max_sessions.max(1) {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires_at_ms)
                .map(|(d, _)| *d);
            match oldest {
                Some(d) => sessions.remove(&d),
                None => break,
            };
        }
        sessions.insert(
            digest(&opened.id),
            Session {
                key,
                csrf: opened.csrf.clone(),
                expires_at_ms: now.saturating_add(self.ttl_ms()),
            },
        );
        opened
    }

    /// The key and CSRF token of a live session.
    fn find(&self, id: &str) -> Option<(Arc<ApiKey>, String)> {
        let now = self.clock.now_ms();
        let mut sessions = self.by_digest.lock().unwrap_or_else(|e| e.into_inner());
        let d = digest(id);
        match sessions.get(&d) {
            Some(s) if s.expires_at_ms > now => Some((s.key.clone(), s.csrf.clone())),
            Some(_) => {
                sessions.remove(&d);
                None
            }
            None => None,
        }
    }

    pub fn close(&self, id: &str) {
        let mut sessions = self.by_digest.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(&digest(id));
    }

    /// The `Set-Cookie` value that signs a browser in.
    pub fn cookie(&self, req: &HttpRequest, id: &str) -> String {
        format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            self.settings.session_ttl_minutes.saturating_mul(60),
            if self.secure(req) { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that signs a browser out.
    pub fn expired_cookie(&self, req: &HttpRequest) -> String {
        format!(
            "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if self.secure(req) { "; Secure" } else { "" }
        )
    }

    fn secure(&self, req: &HttpRequest) -> bool {
        match self.settings.secure_cookie {
            SecureCookie::Always => true,
            SecureCookie::Never => false,
            SecureCookie::Auto => req.connection_info().scheme() == "https",
        }
    }
}

/// The signed-in person: their key (as a [`Caller`], so scopes and rate
/// limits apply as on the API) and the session's CSRF token for forms.
pub struct Viewer {
    pub caller: Caller,
    pub csrf: String,
    session_id: String,
}

impl Viewer {
    pub fn can(&self, scope: Scope) -> bool {
        self.caller.0.has_scope(scope)
    }

    pub fn key_name(&self) -> &str {
        &self.caller.0.name
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The key may do `scope`: a readable refusal without it, then one request
    /// taken from the key's rate limit, as the API would.
    pub fn require(&self, scope: Scope) -> Result<(), ConsoleError> {
        if !self.can(scope) {
            return Err(ConsoleError::denied(self.key_name(), scope));
        }
        self.caller
            .authorize(scope)
            .map_err(hypercare_http::ApiError::from)?;
        Ok(())
    }

    /// Checks an action's CSRF token (constant time).
    pub fn check_csrf(&self, presented: &str) -> Result<(), ConsoleError> {
        let same = presented.len() == self.csrf.len()
            && presented
                .bytes()
                .zip(self.csrf.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same {
            Ok(())
        } else {
            Err(ConsoleError::Forged)
        }
    }
}

impl FromRequest for Viewer {
    type Error = ConsoleError;
    type Future = std::future::Ready<Result<Self, ConsoleError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(viewer(req))
    }
}

fn viewer(req: &HttpRequest) -> Result<Viewer, ConsoleError> {
    let sign_in = || ConsoleError::SignIn {
        next: req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into()),
    };
    let sessions = req.app_data::<web::Data<Sessions>>().ok_or_else(sign_in)?;
    let Some(id) = session_cookie(req) else {
        return Err(sign_in());
    };
    let (key, csrf) = sessions.find(&id).ok_or_else(sign_in)?;
    Ok(Viewer {
        caller: Caller(key),
        csrf,
        session_id: id,
    })
}

/// The session id from the `Cookie` header(s). (actix's cookie feature is off
/// to keep builds small; one name=value pair is all this needs.)
fn session_cookie(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

/// Refuses an action the browser says comes from another site. Browsers send
/// `Sec-Fetch-Site` (and `Origin` on POSTs); a request without either (curl)
/// still needs the session cookie and the CSRF token.
pub fn same_site(req: &HttpRequest) -> Result<(), ConsoleError> {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Err(ConsoleError::Forged);
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = req.connection_info().host().to_owned();
        let origin_host = origin.split("://").nth(1).unwrap_or("");
        if origin != "null" && origin_host != host {
            return Err(ConsoleError::Forged);
        }
    }
    Ok(())
}

/// A local path to go back to after signing in; anything else (another site,
/// `//host`, a scheme) becomes `/`.
pub fn local_path(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.contains(['\r', '\n']);
    if local { next } else { "/" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypercare_http::auth::{ApiKeys, AuthSettings};
    use hypercare_runtime::ManualClock;

    fn key() -> Arc<ApiKey> {
        let settings: AuthSettings = serde_json::from_value(serde_json::json!({
            "keys": [{"name": "po", "key": "po-key-0123456789abcdef", "scopes": ["read"]}]
        }))
        .unwrap();
        ApiKeys::from_settings(&settings)
            .unwrap()
            .find("po-key-0123456789abcdef")
            .unwrap()
    }

    #[test]
    fn a_session_lasts_its_ttl_and_sign_out_ends_it() {
        let clock = ManualClock::starting_at(1_000_000);
        let sessions = Sessions::new(
            ConsoleSettings {
                session_ttl_minutes: 60,
                ..ConsoleSettings::default()
            },
            clock.clone(),
        );
        let opened = sessions.open(key());
        assert_eq!(sessions.find(&opened.id).unwrap().1, opened.csrf);
        clock.advance_minutes(59);
        assert!(sessions.find(&opened.id).is_some());
        clock.advance_minutes(1);
        assert!(sessions.find(&opened.id).is_none(), "expired");
        let again = sessions.open(key());
        sessions.close(&again.id);
        assert!(sessions.find(&again.id).is_none(), "signed out");
        assert!(sessions.find("not-a-session").is_none());
    }

    #[test]
    fn beyond_the_maximum_the_oldest_session_goes() {
        let clock = ManualClock::starting_at(0);
        let sessions = Sessions::new(
            ConsoleSettings {
                max_sessions: 2,
                ..ConsoleSettings::default()
            },
            clock.clone(),
        );
        let first = sessions.open(key());
        clock.advance_minutes(1);
        let second = sessions.open(key());
        clock.advance_minutes(1);
        let third = sessions.open(key());
        assert!(sessions.find(&first.id).is_none());
        assert!(sessions.find(&second.id).is_some() && sessions.find(&third.id).is_some());
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path("/alerts?tier=P0"), "/alerts?tier=P0");
        for hostile in [
            "https://evil.example",
            "//evil.example",
            "/\\evil",
            "alerts",
            "/a\r\nSet-Cookie: x",
        ] {
            assert_eq!(local_path(hostile), "/", "{hostile}");
        }
    }
}
