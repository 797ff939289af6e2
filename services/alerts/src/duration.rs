//! Durations written exactly as Prometheus writes them (`model.ParseDuration`):
//! integers with a unit, largest unit first, each unit at most once, no spaces:
//! `1h30m`, `90s`, `5m`, `1d`, `1w`, `1y`, `250ms`, or `0`. A year is 365 days,
//! a week 7 days. Anything else (`5minutes`, `1.5m`, `5 m`, `-1m`, `m`) is refused,
//! so a rule file that promtool accepts means the same here, and one Hypercare
//! accepts means the same in Prometheus.
//!
//! Used by rule files, the `[alerts]` configuration and the silence API, through
//! `#[serde(with = "crate::duration")]` (and `crate::duration::option`).

use std::time::Duration;

/// Units in the only order Prometheus accepts them, with their length in ms.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// What a refused duration is told, after the text itself.
pub const SYNTAX: &str = "is not a duration: use integers with units ms, s, m, h, d, w, y, \
     largest first, e.g. 90s, 5m, 1h30m, 1d";

/// A refused duration; the message is the reason, without the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DurationError {
    #[error("`{0}` {SYNTAX}")]
    Syntax(String),
    #[error("`{0}` is too long a duration")]
    TooLong(String),
}

/// Parses a Prometheus duration.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let refuse = || Err(DurationError::Syntax(text.to_owned()));
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return refuse();
    }
    let bytes = text.as_bytes();
    let mut at = 0;
    // Index into UNITS of the last unit read: the next must come after it.
    let mut next_unit = 0;
    let mut total: u64 = 0;
    while at < bytes.len() {
        let digits = bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return refuse();
        }
        let Ok(number) = text[at..at + digits].parse::<u64>() else {
            return refuse();
        };
        at += digits;
        let letters = bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let unit = &text[at..at + letters];
        let Some(index) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return refuse();
        };
        if index < next_unit {
            return refuse();
        }
        next_unit = index + 1;
        at += letters;
        let Some(sum) = number
            .checked_mul(UNITS[index].1)
            .and_then(|ms| total.checked_add(ms))
        else {
            return Err(DurationError::TooLong(text.to_owned()));
        };
        total = sum;
    }
    Ok(Duration::from_millis(total))
}

/// The shortest Prometheus spelling of `duration` (milliseconds and up).
pub fn format(duration: Duration) -> String {
    let mut ms = duration.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in UNITS {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text: String = serde::Deserialize::deserialize(d)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// For `Option<Duration>` fields.
pub mod option {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = serde::Deserialize::deserialize(d)?;
        text.map(|t| super::parse(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_durations_parse() {
        let s = Duration::from_secs;
        for (text, want) in [
            ("1h30m", s(5400)),
            ("90s", s(90)),
            ("5m", s(300)),
            ("1d", s(86_400)),
            ("1w", s(7 * 86_400)),
            ("1y", s(365 * 86_400)),
            ("250ms", Duration::from_millis(250)),
            ("1m30s500ms", Duration::from_millis(90_500)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("2w3d", s(17 * 86_400)),
        ] {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        for text in [
            "",
            "5minutes",
            "1.5m",
            "5",
            "m",
            "5 m",
            " 5m",
            "-1m",
            "+1m",
            "1m1h",
            "1m1m",
            "1s1ms1s",
            "1M",
            "1H",
            "5mins",
            "1hour",
            "1e3s",
            "1_000s",
            "99999999999999999999y",
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(&format!("`{text}`")), "{text}: {error}");
        }
        assert!(parse("5minutes").unwrap_err().to_string().contains("1h30m"));
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["1h30m", "90ms", "1y2w3d4h5m6s7ms", "0s", "15s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
    }
}
