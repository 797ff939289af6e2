//! What every ingest route shares, and the two steps every one of them takes
//! whatever its protocol:
//!
//! ```text
//! body read -> IngestState::admit: the request's limits (an admin's backfill
//!              lifts the age limit), its bytes taken from the key's byte rate
//!           -> (the protocol decodes and encodes rows with Admission::context)
//!           -> IngestState::store: count accepted and rejected records, refuse the
//!              request when no record is valid, write the rows and wait until
//!              ClickHouse has them, then mark the late hours of the events
//! ```
//!
//! `store` only takes an [`Admission`], which only `admit` makes: no route can
//! write rows it has not charged to the key.

use actix_web::HttpRequest;
use bytes::BytesMut;

use hypercare_http::auth::{AuthError, Caller, Scope};
use hypercare_runtime::SharedClock;

use crate::config::Limits;
use crate::error::IngestError;
use crate::event::RequestContext;
use crate::metrics::IngestMetrics;
use crate::records::{EncodedBatch, Rejection};
use crate::writer::Writer;

/// What the ingest routes share; one per application.
pub struct IngestState {
    pub limits: Limits,
    pub events: Writer,
    pub metrics: Writer,
    pub logs: Writer,
    pub store: clickhouse::Client,
    pub counters: IngestMetrics,
    /// "Now" for received times and default read ranges.
    pub clock: SharedClock,
}

/// The tables ingest writes, each with its writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Events,
    MetricPoints,
    Logs,
}

/// A request allowed in: who sent it, the limits that apply to it, when it
/// arrived; its body's bytes are taken from the key's byte rate.
#[derive(Debug)]
pub struct Admission {
    caller: Caller,
    limits: Limits,
    received_ms: i64,
}

impl Admission {
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// What the encoders read, with no late hours noted yet.
    pub fn context(&self) -> RequestContext<'_> {
        RequestContext {
            limits: &self.limits,
            received_ms: self.received_ms,
            api_key: self.caller.name(),
            late_hours: Default::default(),
        }
    }
}

/// What a stored request answers: the rows stored and the records left out.
#[derive(Debug)]
pub struct Stored {
    pub accepted: usize,
    pub rejected: Vec<Rejection>,
}

impl IngestState {
    pub fn writer(&self, table: Table) -> &Writer {
        match table {
            Table::Events => &self.events,
            Table::MetricPoints => &self.metrics,
            Table::Logs => &self.logs,
        }
    }

    /// "Now", in epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        i64::try_from(self.clock.now_ms()).unwrap_or(i64::MAX)
    }

    /// Admits `caller`'s request, whose body is `body_bytes` once decoded: the
    /// limits that apply (without the age limit when an `admin` key asks for a
    /// backfill with the backfill header; any other key asking gets 403 rather
    /// than a silent no), then the bytes taken from the key's byte rate (429).
    pub fn admit(
        &self,
        req: &HttpRequest,
        caller: &Caller,
        body_bytes: usize,
    ) -> Result<Admission, IngestError> {
        let received_ms = self.now_ms();
        let limits = request_limits(req, caller, &self.limits)?;
        caller.take_bytes(body_bytes)?;
        Ok(Admission {
            caller: caller.clone(),
            limits,
            received_ms,
        })
    }

    /// Stores what a request's records encoded to (see the module's data flow):
    /// counted under `signal` in the ingest metrics; refused when records were
    /// sent and none is valid.
    pub async fn store(
        &self,
        admission: &Admission,
        ctx: &RequestContext<'_>,
        table: Table,
        signal: &'static str,
        batch: EncodedBatch,
    ) -> Result<Stored, IngestError> {
        self.counters.record(signal, &batch);
        let EncodedBatch {
            rows,
            data,
            rejected,
        } = batch;
        if rows == 0 && !rejected.is_empty() {
            return Err(IngestError::NothingValid(rejected));
        }
        self.write(admission, ctx, table, rows, data).await?;
        Ok(Stored {
            accepted: rows,
            rejected,
        })
    }

    /// Writes `rows` and waits until ClickHouse has them, then marks the hours of
    /// late events (see [`hypercare_storage::late`]) so that KPI answers include
    /// them at once. For a protocol that counts its records itself and answers
    /// a request with no valid record like any other (OTLP).
    pub async fn write(
        &self,
        admission: &Admission,
        ctx: &RequestContext<'_>,
        table: Table,
        rows: usize,
        data: BytesMut,
    ) -> Result<(), IngestError> {
        self.writer(table)
            .write(admission.caller.name(), rows, data.freeze())
            .await?;
        let hours = ctx.late_hours.take();
        hypercare_storage::late::mark(&self.store, &hours)
            .await
            .map_err(IngestError::LateMark)
    }
}

/// The limits of a request: the configured ones, or without the age limit for
/// an `admin` key's backfill.
fn request_limits(
    req: &HttpRequest,
    caller: &Caller,
    limits: &Limits,
) -> Result<Limits, AuthError> {
    let asked = req
        .headers()
        .get(crate::fields::BACKFILL_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !asked {
        return Ok(limits.clone());
    }
    if !caller.0.has_scope(Scope::Admin) {
        return Err(AuthError::MissingScope {
            key: caller.name().to_owned(),
            scope: Scope::Admin,
        });
    }
    Ok(limits.for_backfill())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use hypercare_http::auth::{ApiKeys, AuthSettings};

    const INGEST: &str = "ingest-key-0123456789abcdef";
    const ADMIN: &str = "admin-key-0123456789abcdef";

    fn keys() -> ApiKeys {
        let key = |name: &str, key: &str, scope: &str| {
            serde_json::from_value(serde_json::json!({"name": name, "key": key, "scopes": [scope]}))
                .unwrap()
        };
        ApiKeys::from_settings(&AuthSettings {
            keys: vec![
                key("ingest", INGEST, "ingest"),
                key("admin", ADMIN, "admin"),
            ],
            ..AuthSettings::default()
        })
        .unwrap()
    }

    fn request(key: &str, backfill: Option<&str>) -> HttpRequest {
        let mut request =
            TestRequest::default().insert_header(("authorization", format!("Bearer {key}")));
        if let Some(value) = backfill {
            request = request.insert_header((crate::fields::BACKFILL_HEADER, value));
        }
        request.to_http_request()
    }

    #[test]
    fn only_an_admin_asking_for_a_backfill_lifts_the_age_limit() {
        let keys = keys();
        let limits = Limits::default();
        let limits_of = |key: &str, backfill: Option<&str>| {
            let req = request(key, backfill);
            let caller = Caller(keys.authenticate(&req).unwrap());
            request_limits(&req, &caller, &limits).map(|l| l.max_age_days)
        };

        assert_eq!(limits_of(ADMIN, None).unwrap(), limits.max_age_days);
        assert_eq!(limits_of(ADMIN, Some(" TRUE ")).unwrap(), 0);
        assert_eq!(limits_of(ADMIN, Some("no")).unwrap(), limits.max_age_days);
        assert_eq!(limits_of(INGEST, None).unwrap(), limits.max_age_days);
        assert!(matches!(
            limits_of(INGEST, Some("true")),
            Err(AuthError::MissingScope {
                scope: Scope::Admin,
                ..
            })
        ));
    }
}
