//! Business events: the JSON shape clients send, its checks, and its row in the
//! `events` table.
//!
//! ```json
//! {"event": "order_placed", "event_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
//!  "timestamp": "2026-11-22T09:30:00Z", "sent_at": "2026-11-22T09:30:02Z",
//!  "source": "checkout", "release": "2.4.0", "user_id": "u-42", "session_id": "s-7",
//!  "value": 59.90, "properties": {"plan": "pro", "items": 3, "first_order": true}}
//! ```
//!
//! Only `event` is required. `event_id` is the idempotency key (generated when
//! absent, in which case a retry cannot be recognised); `timestamp` defaults to the
//! time of receipt and is corrected for clock skew when `sent_at` is given.

use bytes::BytesMut;
use hypercare_storage::late::LateHours;
use hypercare_storage::rowbinary::RowBinaryExt;
use uuid::Uuid;

use crate::config::Limits;
use crate::fields::{self, Scalar};
use crate::records::{Rejection, Value};

/// The `events` columns in the order [`encode`] writes them.
pub const INSERT_SQL: &str = "INSERT INTO events (event_id, event, timestamp, timestamp_ms, \
    received_at, source, release, user_id, session_id, value, prop_str_keys, prop_str_values, \
    prop_num_keys, prop_num_values, prop_bool_keys, prop_bool_values, api_key) FORMAT RowBinary";

pub const TABLE: &str = "events";

const FIELDS: [&str; 10] = [
    "event",
    "event_id",
    "timestamp",
    "sent_at",
    "source",
    "release",
    "user_id",
    "session_id",
    "value",
    "properties",
];

/// What every event of one request shares.
#[derive(Debug)]
pub struct RequestContext<'a> {
    pub limits: &'a Limits,
    /// When the request arrived, in epoch milliseconds.
    pub received_ms: i64,
    /// Name of the API key that sent it (kept with each row for audit).
    pub api_key: &'a str,
    /// Hours of accepted events that arrived late for the KPI rollups.
    pub late_hours: LateHours,
}

/// Checks one event and appends its row to `out`, or says why it is rejected
/// (leaving `out` as it was).
pub fn encode(record: &Value, ctx: &RequestContext, out: &mut BytesMut) -> Result<(), Rejection> {
    let [
        event,
        event_id,
        timestamp,
        sent_at,
        source,
        release,
        user_id,
        session_id,
        value,
        properties,
    ] = fields::known_fields(record, FIELDS, "an event")?;
    let limits = ctx.limits;
    let event = fields::name(
        "event",
        event.ok_or_else(|| Rejection::missing("event"))?,
        limits,
    )?;
    let event_id = match event_id {
        Some(Value::Str(s)) => Uuid::parse_str(s).map_err(|_| {
            Rejection::new(
                "event_id",
                "invalid_value",
                "must be a UUID such as 1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            )
        })?,
        Some(other) => return Err(Rejection::invalid_type("event_id", "a UUID string", other)),
        None => Uuid::new_v4(),
    };
    let time_ms = fields::event_time(timestamp, sent_at, ctx.received_ms, limits)?;
    let source = source.map_or(Ok(""), |v| fields::string("source", v, limits))?;
    let release = release.map_or(Ok(""), |v| fields::string("release", v, limits))?;
    let user_id = user_id
        .map(|v| fields::identifier("user_id", v, limits))
        .transpose()?;
    let session_id = session_id
        .map(|v| fields::identifier("session_id", v, limits))
        .transpose()?;
    let value = value.map(|v| fields::number("value", v)).transpose()?;
    let properties = match properties {
        Some(p) => fields::flat_map("properties", p, limits)?,
        None => Vec::new(),
    };

    let (seconds, millis) = fields::split_ms(time_ms);
    let (received_seconds, _) = fields::split_ms(ctx.received_ms);
    out.put_rb_uuid(&event_id);
    out.put_rb_str(event);
    out.put_rb_datetime(seconds);
    out.extend_from_slice(&millis.to_le_bytes());
    out.put_rb_datetime(received_seconds);
    out.put_rb_str(source);
    out.put_rb_str(release);
    out.put_rb_str(user_id.as_deref().unwrap_or(""));
    out.put_rb_str(session_id.as_deref().unwrap_or(""));
    out.put_rb_nullable_f64(value);
    write_properties(&properties, out);
    out.put_rb_str(ctx.api_key);
    ctx.late_hours.note(time_ms, ctx.received_ms);
    Ok(())
}

/// Properties go into one key/value array pair per type, so that a number stays a
/// number for KPI percentiles and a bool stays a bool.
fn write_properties(properties: &[(&str, Scalar)], out: &mut BytesMut) {
    let strings = || {
        properties.iter().filter_map(|(k, v)| match v {
            Scalar::Str(s) => Some((*k, *s)),
            _ => None,
        })
    };
    let numbers = || {
        properties.iter().filter_map(|(k, v)| match v {
            Scalar::Num(n) => Some((*k, *n)),
            _ => None,
        })
    };
    let bools = || {
        properties.iter().filter_map(|(k, v)| match v {
            Scalar::Bool(b) => Some((*k, u8::from(*b))),
            _ => None,
        })
    };
    let n_str = strings().count();
    let n_num = numbers().count();
    let n_bool = bools().count();
    out.put_rb_str_array(ExactLen(strings().map(|(k, _)| k), n_str));
    out.put_rb_str_array(ExactLen(strings().map(|(_, v)| v), n_str));
    out.put_rb_str_array(ExactLen(numbers().map(|(k, _)| k), n_num));
    out.put_rb_f64_array(ExactLen(numbers().map(|(_, v)| v), n_num));
    out.put_rb_str_array(ExactLen(bools().map(|(k, _)| k), n_bool));
    out.put_rb_u8_array(ExactLen(bools().map(|(_, v)| v), n_bool));
}

/// An iterator whose length is known in advance (filters lose that knowledge).
struct ExactLen<I>(I, usize);

impl<I: Iterator> Iterator for ExactLen<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        self.0.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.1, Some(self.1))
    }
}

impl<I: Iterator> ExactSizeIterator for ExactLen<I> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str) -> Result<BytesMut, Rejection> {
        let limits = Limits::default();
        let ctx = RequestContext {
            limits: &limits,
            received_ms: 1_795_341_600_000,
            api_key: "test",
            late_hours: Default::default(),
        };
        let value: Value = serde_json::from_str(json).unwrap();
        let mut out = BytesMut::new();
        encode(&value, &ctx, &mut out).map(|()| out)
    }

    #[test]
    fn a_minimal_event_is_accepted() {
        assert!(check(r#"{"event":"signup"}"#).is_ok());
    }

    #[test]
    fn each_bad_field_is_named_with_its_reason() {
        let cases = [
            (r#"{}"#, "event", "missing"),
            (r#"{"event":""}"#, "event", "invalid_value"),
            (r#"{"event":5}"#, "event", "invalid_type"),
            (
                r#"{"event":"a","event_id":"nope"}"#,
                "event_id",
                "invalid_value",
            ),
            (
                r#"{"event":"a","timestamp":"yesterday"}"#,
                "timestamp",
                "invalid_value",
            ),
            (r#"{"event":"a","sent_at":true}"#, "sent_at", "invalid_type"),
            (r#"{"event":"a","value":"12"}"#, "value", "invalid_type"),
            (r#"{"event":"a","user_id":[1]}"#, "user_id", "invalid_type"),
            (
                r#"{"event":"a","properties":[]}"#,
                "properties",
                "invalid_type",
            ),
            (
                r#"{"event":"a","properties":{"x":[1]}}"#,
                "properties.x",
                "invalid_type",
            ),
            (r#"{"event":"a","colour":"red"}"#, "colour", "unknown_field"),
        ];
        for (json, field, code) in cases {
            let err = check(json).unwrap_err();
            assert_eq!(
                (err.field.as_str(), err.code),
                (field, code),
                "{json}: {}",
                err.reason
            );
        }
    }

    #[test]
    fn a_long_event_name_is_refused_at_the_limit() {
        let at_limit = format!(r#"{{"event":"{}"}}"#, "é".repeat(200));
        assert!(check(&at_limit).is_ok());
        let over = format!(r#"{{"event":"{}"}}"#, "é".repeat(201));
        assert_eq!(check(&over).unwrap_err().code, "too_long");
    }
}
