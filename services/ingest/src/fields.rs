//! Field checks shared by events and metric points: known fields, names, strings,
//! flat maps and times. Each check names the field and the reason when it fails.

use std::borrow::Cow;

use chrono::DateTime;

use crate::config::Limits;
use crate::records::{Rejection, Value};

/// The fields of a record matched against the `N` names a record kind knows;
/// null counts as absent. A field not among `names` rejects the record.
pub fn known_fields<'v, 'a, const N: usize>(
    record: &'v Value<'a>,
    names: [&str; N],
    kind: &str,
) -> Result<[Option<&'v Value<'a>>; N], Rejection> {
    let Value::Object(fields) = record else {
        return Err(Rejection::invalid_type("record", "a JSON object", record));
    };
    let mut slots = [None; N];
    for (key, value) in fields {
        match names.iter().position(|name| name == key) {
            Some(i) => slots[i] = (!matches!(value, Value::Null)).then_some(value),
            None => {
                return Err(Rejection::new(
                    key.as_ref(),
                    "unknown_field",
                    format!(
                        "is not a field of {kind}; the fields are: {}",
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(slots)
}

/// A name (event, metric, property or label key): not empty, no control
/// characters, at most `max_name_length` characters.
pub fn name<'v>(field: &str, value: &'v Value, limits: &Limits) -> Result<&'v str, Rejection> {
    let Value::Str(s) = value else {
        return Err(Rejection::invalid_type(field, "a string", value));
    };
    check_name(field, s, limits)?;
    Ok(s)
}

pub fn check_name(field: &str, s: &str, limits: &Limits) -> Result<(), Rejection> {
    if s.trim().is_empty() {
        return Err(Rejection::new(field, "invalid_value", "must not be empty"));
    }
    if s.chars().any(char::is_control) {
        return Err(Rejection::new(
            field,
            "invalid_value",
            "must not contain control characters",
        ));
    }
    check_length(field, s, limits.max_name_length)
}

pub fn check_length(field: &str, s: &str, max: usize) -> Result<(), Rejection> {
    // Bytes bound characters from above, so counting is needed only past the limit.
    if s.len() > max && s.chars().count() > max {
        return Err(Rejection::new(
            field,
            "too_long",
            format!("is longer than the limit of {max} characters"),
        ));
    }
    Ok(())
}

/// A string value up to `max_value_length` characters.
pub fn string<'v>(field: &str, value: &'v Value, limits: &Limits) -> Result<&'v str, Rejection> {
    let Value::Str(s) = value else {
        return Err(Rejection::invalid_type(field, "a string", value));
    };
    check_length(field, s, limits.max_value_length)?;
    Ok(s)
}

/// An identifier that clients send as a string or a number (`user_id: 42`).
pub fn identifier<'v>(
    field: &str,
    value: &'v Value,
    limits: &Limits,
) -> Result<Cow<'v, str>, Rejection> {
    match value {
        Value::Str(s) => {
            check_length(field, s, limits.max_value_length)?;
            Ok(Cow::Borrowed(s.as_ref()))
        }
        Value::Int(n) => Ok(Cow::Owned(n.to_string())),
        Value::UInt(n) => Ok(Cow::Owned(n.to_string())),
        other => Err(Rejection::invalid_type(
            field,
            "a string or an integer",
            other,
        )),
    }
}

/// A finite number.
pub fn number(field: &str, value: &Value) -> Result<f64, Rejection> {
    value
        .as_f64()
        .filter(|v| v.is_finite())
        .ok_or_else(|| Rejection::invalid_type(field, "a number", value))
}

/// A scalar in a flat map (event properties, metric labels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'v> {
    Str(&'v str),
    Num(f64),
    Bool(bool),
}

/// A flat JSON object of strings, numbers and bools; null entries are dropped.
pub fn flat_map<'v>(
    field: &str,
    value: &'v Value,
    limits: &Limits,
) -> Result<Vec<(&'v str, Scalar<'v>)>, Rejection> {
    let Value::Object(entries) = value else {
        return Err(Rejection::invalid_type(field, "an object", value));
    };
    if entries.len() > limits.max_properties {
        return Err(Rejection::new(
            field,
            "too_many",
            format!(
                "has {} entries; the limit is {}",
                entries.len(),
                limits.max_properties
            ),
        ));
    }
    let mut out = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        // The field path is built only for a rejection: most maps are valid, and
        // formatting it for every entry was a sixth of the parse cost.
        let named = |mut rejection: Rejection| {
            rejection.field = format!("{field}.{key}");
            rejection
        };
        check_name("", key, limits).map_err(named)?;
        let scalar = match value {
            Value::Null => continue,
            Value::Str(s) => {
                check_length("", s, limits.max_value_length).map_err(named)?;
                Scalar::Str(s)
            }
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Int(_) | Value::UInt(_) | Value::Float(_) => {
                Scalar::Num(number("", value).map_err(named)?)
            }
            other => {
                return Err(named(Rejection::invalid_type(
                    "",
                    "a string, number or bool (maps are flat)",
                    other,
                )));
            }
        };
        out.push((key.as_ref(), scalar));
    }
    Ok(out)
}

/// Milliseconds since the epoch of the earliest time we accept (2000-01-01):
/// earlier times are nearly always seconds sent where milliseconds are expected,
/// or a zero clock.
const EARLIEST_MS: i64 = 946_684_800_000;
/// ClickHouse `DateTime` ends in 2106.
const LATEST_MS: i64 = 4_294_967_295_000;

/// A point in time: an RFC 3339 string, or an integer of epoch milliseconds.
pub fn time_ms(field: &str, value: &Value) -> Result<i64, Rejection> {
    let ms = match value {
        Value::Str(s) => DateTime::parse_from_rfc3339(s)
            .map_err(|e| {
                Rejection::new(
                    field,
                    "invalid_value",
                    format!("is not an RFC 3339 time such as 2026-11-22T09:30:00Z ({e})"),
                )
            })?
            .timestamp_millis(),
        Value::Int(_) | Value::UInt(_) | Value::Float(_) => {
            let n = number(field, value)?;
            if n.fract() != 0.0 {
                return Err(Rejection::new(
                    field,
                    "invalid_value",
                    "epoch milliseconds must be an integer",
                ));
            }
            n as i64
        }
        other => {
            return Err(Rejection::invalid_type(
                field,
                "an RFC 3339 string or epoch milliseconds",
                other,
            ));
        }
    };
    check_range(field, ms)
}

/// Epoch milliseconds between 2000-01-01 and the end of ClickHouse `DateTime`.
fn check_range(field: &str, ms: i64) -> Result<i64, Rejection> {
    if ms < EARLIEST_MS {
        let hint = if (1_000_000_000..100_000_000_000).contains(&ms) {
            format!("; {ms} looks like epoch seconds: send milliseconds ({ms}000)")
        } else {
            String::new()
        };
        return Err(Rejection::new(
            field,
            "out_of_range",
            format!("is before 2000-01-01{hint}"),
        ));
    }
    if ms > LATEST_MS {
        return Err(Rejection::new(field, "out_of_range", "is after 2106-02-07"));
    }
    Ok(ms)
}

/// A point's time given as epoch milliseconds by a binary protocol (Prometheus
/// remote write): the same range and future checks as a JSON timestamp.
pub fn epoch_ms_time(
    field: &str,
    ms: i64,
    received_ms: i64,
    limits: &Limits,
) -> Result<i64, Rejection> {
    check_range(field, ms)?;
    check_future(field, ms, received_ms, limits)?;
    check_age(field, ms, received_ms, limits)
}

/// A time given in nanoseconds since the epoch (OTLP), as milliseconds, checked
/// like any other record time; 0 (unset) means the receive time.
pub fn unix_nanos_ms(
    field: &str,
    nanos: u64,
    received_ms: i64,
    limits: &Limits,
) -> Result<i64, Rejection> {
    if nanos == 0 {
        return Ok(received_ms);
    }
    let ms = i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX);
    epoch_ms_time(field, ms, received_ms, limits)
}

/// Refuses a time more than `max_age_days` before the receive time (unless 0):
/// old data is a backfill, which an admin asks for explicitly, and one request
/// with times spread over years makes ClickHouse refuse the whole insert it
/// shares with other clients (too many partitions).
pub fn check_age(
    field: &str,
    ms: i64,
    received_ms: i64,
    limits: &Limits,
) -> Result<i64, Rejection> {
    if limits.max_age_days == 0 {
        return Ok(ms);
    }
    let days = i64::try_from(limits.max_age_days).unwrap_or(i64::MAX);
    let earliest = received_ms.saturating_sub(days.saturating_mul(86_400_000));
    if ms < earliest {
        return Err(Rejection::new(
            field,
            "too_old",
            format!(
                "is more than {} days before this server's clock (max_age_days); to backfill, send with an admin key and the header {}: true",
                limits.max_age_days, BACKFILL_HEADER
            ),
        ));
    }
    Ok(ms)
}

/// The request header with which an `admin` key lifts `max_age_days`.
pub const BACKFILL_HEADER: &str = "X-Hypercare-Backfill";

fn check_future(field: &str, ms: i64, received_ms: i64, limits: &Limits) -> Result<i64, Rejection> {
    let latest = received_ms + (limits.max_future_secs as i64) * 1000;
    if ms > latest {
        return Err(Rejection::new(
            field,
            "out_of_range",
            format!(
                "is more than {}s in the future of this server's clock",
                limits.max_future_secs
            ),
        ));
    }
    Ok(ms)
}

/// The time a record happened, in epoch milliseconds.
///
/// With `sent_at` (the client's clock when it sent the request) the client's clock
/// skew is removed as Segment and PostHog do: `received − (sent_at − timestamp)`.
/// Without a timestamp the record happened when it was received.
pub fn event_time(
    timestamp: Option<&Value>,
    sent_at: Option<&Value>,
    received_ms: i64,
    limits: &Limits,
) -> Result<i64, Rejection> {
    let client_time = timestamp.map(|v| time_ms("timestamp", v)).transpose()?;
    let sent = sent_at.map(|v| time_ms("sent_at", v)).transpose()?;
    let ms = match (client_time, sent) {
        (Some(t), Some(sent)) => received_ms - (sent - t),
        (Some(t), None) => t,
        (None, _) => received_ms,
    };
    check_future("timestamp", ms, received_ms, limits)?;
    if ms < EARLIEST_MS {
        return Err(Rejection::new(
            "timestamp",
            "out_of_range",
            "is before 2000-01-01 once corrected by sent_at",
        ));
    }
    check_age("timestamp", ms, received_ms, limits)
}

/// Splits epoch milliseconds into the `DateTime` seconds and the millisecond part.
pub fn split_ms(ms: i64) -> (u32, u16) {
    let seconds = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    (
        u32::try_from(seconds).unwrap_or(0),
        u16::try_from(millis).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(json: &str) -> Value<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn times_are_rfc3339_or_epoch_milliseconds() {
        assert_eq!(
            time_ms("t", &v(r#""2026-11-22T10:00:00.250Z""#)).unwrap(),
            1_795_341_600_250
        );
        assert_eq!(
            time_ms("t", &v(r#""2026-11-22T11:00:00.250+01:00""#)).unwrap(),
            1_795_341_600_250
        );
        assert_eq!(
            time_ms("t", &v("1795341600250")).unwrap(),
            1_795_341_600_250
        );
    }

    #[test]
    fn epoch_seconds_are_refused_with_a_hint() {
        let err = time_ms("timestamp", &v("1795341600")).unwrap_err();
        assert_eq!(err.field, "timestamp");
        assert!(
            err.reason.contains("looks like epoch seconds"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn sent_at_removes_the_client_clock_skew() {
        let limits = Limits::default();
        let received = 1_795_341_600_000;
        // The client's clock is 1 hour ahead: it says the event happened at 11:00:00
        // and that it sent it at 11:00:05; the server received it at 10:00:05.
        let ts = v(r#""2026-11-22T11:00:00Z""#);
        let sent = v(r#""2026-11-22T11:00:05Z""#);
        let got = event_time(Some(&ts), Some(&sent), received + 5_000, &limits).unwrap();
        assert_eq!(got, received);
    }

    #[test]
    fn far_future_times_are_refused() {
        let limits = Limits::default();
        let received = 1_795_341_600_000;
        let ts = v("1795514400000"); // two days later
        let err = event_time(Some(&ts), None, received, &limits).unwrap_err();
        assert_eq!(err.code, "out_of_range");
    }

    #[test]
    fn flat_maps_refuse_nested_values_naming_the_key() {
        let limits = Limits::default();
        let err = flat_map("properties", &v(r#"{"a":1,"b":{"c":2}}"#), &limits).unwrap_err();
        assert_eq!(err.field, "properties.b");
        let props = v(r#"{"a":1,"b":"x","c":true,"d":null}"#);
        let ok = flat_map("properties", &props, &limits).unwrap();
        assert_eq!(
            ok,
            vec![
                ("a", Scalar::Num(1.0)),
                ("b", Scalar::Str("x")),
                ("c", Scalar::Bool(true))
            ]
        );
    }

    #[test]
    fn unknown_fields_are_named() {
        let err = known_fields(
            &v(r#"{"event":"a","propertes":{}}"#),
            ["event", "properties"],
            "an event",
        )
        .unwrap_err();
        assert_eq!(err.field, "propertes");
        assert_eq!(err.code, "unknown_field");
    }
}
