//! The parameters of a log search, checked: [`LogParams::check`] turns what the
//! client sent into a [`LogFilter`] (every bound known before ClickHouse is
//! asked) or names the bad field. Times, the page cursor and the window rules
//! are shared with the timeline ([`parse_time`], [`Cursor`], [`window`]).

use chrono::{DateTime, SecondsFormat};

use crate::InvestigateError;

/// Lines of one answer at most, and without `limit`.
pub const MAX_LIMIT: u32 = 1000;
pub const DEFAULT_LIMIT: u32 = 100;
/// The widest window one request may read: a scan of a week of logs is the
/// most a support question needs and what the deadline allows.
pub const MAX_SPAN_SECS: u64 = 7 * 86_400;
/// The window when `from` is missing: the day before `to`.
pub const DEFAULT_SPAN_SECS: u64 = 86_400;
/// Longest text of `q`, `request_id`, `user_id`, `service`.
pub const MAX_TEXT: usize = 256;

/// Log attributes that carry a user's id (the first is ours, the others the
/// OpenTelemetry names).
pub const USER_ATTRIBUTES: [&str; 3] = ["user_id", "user.id", "enduser.id"];
/// Log attributes that carry a request's id (Hypercare's own logs and
/// middlewares name it `request_id`; `http.request.id` is the semantic name).
pub const REQUEST_ATTRIBUTES: [&str; 3] = ["request_id", "request.id", "http.request.id"];

/// OpenTelemetry severity names and the first number of each range.
pub const SEVERITIES: [(&str, u8); 6] = [
    ("trace", 1),
    ("debug", 5),
    ("info", 9),
    ("warn", 13),
    ("error", 17),
    ("fatal", 21),
];

/// What the client sent to `GET /v1/logs` (every member optional).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogParams {
    pub request_id: Option<String>,
    pub user_id: Option<String>,
    pub service: Option<String>,
    pub severity: Option<String>,
    pub q: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// A checked search: every member bounded.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFilter {
    /// Window in nanoseconds since the epoch, `from` included, `to` excluded.
    pub from_ns: u64,
    pub to_ns: u64,
    pub service: Option<String>,
    /// The lowest severity number kept.
    pub min_severity: Option<u8>,
    /// Text the body contains (case-insensitive).
    pub q: Option<String>,
    /// (attribute names, value): one of the names must hold the value.
    pub attributes: Vec<(&'static [&'static str], String)>,
    /// Lines strictly after this place of the order.
    pub after: Option<Cursor>,
    pub limit: u32,
}

/// A place in the time order of timeline items and log lines: time, kind
/// (events before logs at the same nanosecond), id. Sent to clients as
/// `<ns>.<e|l>.<id>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub ns: u64,
    pub kind: Kind,
    pub id: String,
}

/// What a timeline item or cursor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Event,
    Log,
}

impl Cursor {
    pub fn parse(text: &str) -> Result<Self, InvestigateError> {
        let bad = || {
            InvestigateError::invalid(
                "cursor",
                "is not a cursor of this API (send back `next_cursor` as it was)",
            )
        };
        let mut parts = text.splitn(3, '.');
        let ns = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let kind = match parts.next() {
            Some("e") => Kind::Event,
            Some("l") => Kind::Log,
            _ => return Err(bad()),
        };
        let id = parts.next().filter(|id| id.len() <= 64).ok_or_else(bad)?;
        if kind == Kind::Log && id.parse::<u64>().is_err() {
            return Err(bad());
        }
        Ok(Self {
            ns,
            kind,
            id: id.to_owned(),
        })
    }

    pub fn encode(&self) -> String {
        let kind = match self.kind {
            Kind::Event => "e",
            Kind::Log => "l",
        };
        format!("{}.{kind}.{}", self.ns, self.id)
    }
}

/// An RFC 3339 time in nanoseconds since the epoch; `field` names it when it
/// is not one.
pub fn parse_time(field: &'static str, text: &str) -> Result<u64, InvestigateError> {
    let time = DateTime::parse_from_rfc3339(text).map_err(|e| {
        InvestigateError::invalid(
            field,
            format!("is not an RFC 3339 time such as 2026-11-20T10:00:00Z ({e})"),
        )
    })?;
    time.timestamp_nanos_opt()
        .and_then(|ns| u64::try_from(ns).ok())
        .ok_or_else(|| InvestigateError::invalid(field, "is not between 1970 and 2262"))
}

/// A whole number parameter sent as text, so that a bad one is named.
pub fn number(field: &'static str, text: Option<&str>) -> Result<Option<u32>, InvestigateError> {
    text.map(|t| {
        t.parse()
            .map_err(|_| InvestigateError::invalid(field, "is not a whole number"))
    })
    .transpose()
}

/// RFC 3339 in UTC of a time in nanoseconds, to the millisecond.
pub fn rfc3339_ns(ns: u64) -> String {
    let secs = i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX);
    let nanos = (ns % 1_000_000_000) as u32;
    DateTime::from_timestamp(secs, nanos)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The checked window `[from, to)` in nanoseconds: `to` defaults to `now`,
/// `from` to `default_span` seconds before `to` (`None`: `from` is required);
/// at most [`MAX_SPAN_SECS`] wide.
pub fn window(
    from: Option<&str>,
    to: Option<&str>,
    now_secs: u64,
    default_span: Option<u64>,
) -> Result<(u64, u64), InvestigateError> {
    const NS: u64 = 1_000_000_000;
    let to = match to {
        Some(text) => parse_time("to", text)?,
        None => now_secs.saturating_mul(NS),
    };
    let from = match (from, default_span) {
        (Some(text), _) => parse_time("from", text)?,
        (None, Some(span)) => to.saturating_sub(span * NS),
        (None, None) => return Err(InvestigateError::invalid("from", "is required")),
    };
    if from >= to {
        return Err(InvestigateError::invalid("to", "must be after `from`"));
    }
    if to - from > MAX_SPAN_SECS * NS {
        return Err(InvestigateError::invalid(
            "from",
            format!(
                "the window is at most {} days: narrow `from`/`to`",
                MAX_SPAN_SECS / 86_400
            ),
        ));
    }
    Ok((from, to))
}

/// A page size: default and maximum checked.
pub fn limit(limit: Option<u32>, default: u32) -> Result<u32, InvestigateError> {
    match limit.unwrap_or(default) {
        0 => Err(InvestigateError::invalid("limit", "must be at least 1")),
        n if n > MAX_LIMIT => Err(InvestigateError::invalid(
            "limit",
            format!("is at most {MAX_LIMIT}: page with `cursor`"),
        )),
        n => Ok(n),
    }
}

/// A free text parameter: not empty, bounded, no control character.
pub fn text(
    field: &'static str,
    value: Option<String>,
) -> Result<Option<String>, InvestigateError> {
    let Some(value) = value else {
        return Ok(None);
    };
    if value.is_empty() {
        return Err(InvestigateError::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_TEXT {
        return Err(InvestigateError::invalid(
            field,
            format!("is longer than {MAX_TEXT} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(InvestigateError::invalid(
            field,
            "must not hold control characters",
        ));
    }
    Ok(Some(value))
}

impl LogParams {
    pub fn check(self, now_secs: u64) -> Result<LogFilter, InvestigateError> {
        let (from, to) = window(
            self.from.as_deref(),
            self.to.as_deref(),
            now_secs,
            Some(DEFAULT_SPAN_SECS),
        )?;
        let min_severity = match self.severity.as_deref() {
            None => None,
            Some(name) => Some(
                SEVERITIES
                    .iter()
                    .find(|(known, _)| known.eq_ignore_ascii_case(name))
                    .map(|(_, number)| *number)
                    .ok_or_else(|| {
                        InvestigateError::invalid(
                            "severity",
                            "is one of trace, debug, info, warn, error, fatal",
                        )
                    })?,
            ),
        };
        let mut attributes = Vec::new();
        if let Some(id) = text("request_id", self.request_id)? {
            attributes.push((&REQUEST_ATTRIBUTES[..], id));
        }
        if let Some(id) = text("user_id", self.user_id)? {
            attributes.push((&USER_ATTRIBUTES[..], id));
        }
        Ok(LogFilter {
            from_ns: from,
            to_ns: to,
            service: text("service", self.service)?,
            min_severity,
            q: text("q", self.q)?,
            attributes,
            after: self.cursor.as_deref().map(Cursor::parse).transpose()?,
            limit: limit(number("limit", self.limit.as_deref())?, DEFAULT_LIMIT)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_341_600; // 2026-11-22T10:00:00Z

    fn field(result: Result<LogFilter, InvestigateError>) -> &'static str {
        match result.unwrap_err() {
            InvestigateError::Invalid { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn defaults_are_the_last_day_and_a_hundred_lines() {
        let filter = LogParams::default().check(NOW).unwrap();
        assert_eq!(filter.to_ns, NOW * 1_000_000_000);
        assert_eq!(filter.from_ns, (NOW - 86_400) * 1_000_000_000);
        assert_eq!(filter.limit, 100);
        assert_eq!(filter.attributes, vec![]);
        let filter = LogParams {
            request_id: Some("r-1".into()),
            severity: Some("WARN".into()),
            ..LogParams::default()
        }
        .check(NOW)
        .unwrap();
        assert_eq!(filter.min_severity, Some(13));
        assert_eq!(
            filter.attributes,
            vec![(&REQUEST_ATTRIBUTES[..], "r-1".into())]
        );
    }

    #[test]
    fn each_bad_parameter_is_named() {
        let cases = [
            (
                LogParams {
                    from: Some("yesterday".into()),
                    ..Default::default()
                },
                "from",
            ),
            (
                LogParams {
                    to: Some("2026-13-01T00:00:00Z".into()),
                    ..Default::default()
                },
                "to",
            ),
            (
                LogParams {
                    from: Some("2026-11-20T10:00:00Z".into()),
                    to: Some("2026-11-20T09:00:00Z".into()),
                    ..Default::default()
                },
                "to",
            ),
            (
                LogParams {
                    from: Some("2026-11-01T00:00:00Z".into()),
                    to: Some("2026-11-20T00:00:00Z".into()),
                    ..Default::default()
                },
                "from",
            ),
            (
                LogParams {
                    severity: Some("loud".into()),
                    ..Default::default()
                },
                "severity",
            ),
            (
                LogParams {
                    limit: Some("0".into()),
                    ..Default::default()
                },
                "limit",
            ),
            (
                LogParams {
                    limit: Some("-1".into()),
                    ..Default::default()
                },
                "limit",
            ),
            (
                LogParams {
                    limit: Some((MAX_LIMIT + 1).to_string()),
                    ..Default::default()
                },
                "limit",
            ),
            (
                LogParams {
                    q: Some("x".repeat(MAX_TEXT + 1)),
                    ..Default::default()
                },
                "q",
            ),
            (
                LogParams {
                    request_id: Some(String::new()),
                    ..Default::default()
                },
                "request_id",
            ),
            (
                LogParams {
                    user_id: Some("a\u{0}b".into()),
                    ..Default::default()
                },
                "user_id",
            ),
            (
                LogParams {
                    cursor: Some("12.x.3".into()),
                    ..Default::default()
                },
                "cursor",
            ),
            (
                LogParams {
                    cursor: Some("12.l.abc".into()),
                    ..Default::default()
                },
                "cursor",
            ),
        ];
        for (params, expected) in cases {
            assert_eq!(field(params.clone().check(NOW)), expected, "{params:?}");
        }
    }

    #[test]
    fn a_cursor_reads_back_what_it_wrote_and_orders_events_first() {
        let cursor = Cursor {
            ns: 5,
            kind: Kind::Log,
            id: "42".into(),
        };
        assert_eq!(Cursor::parse(&cursor.encode()).unwrap(), cursor);
        let event = Cursor {
            ns: 5,
            kind: Kind::Event,
            id: "ffff".into(),
        };
        assert!(event < cursor);
        assert_eq!(
            rfc3339_ns(1_795_341_600_250_000_000),
            "2026-11-22T10:00:00.250Z"
        );
    }
}
