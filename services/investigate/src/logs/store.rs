//! The one read of stored logs: [`search`] runs a [`LogFilter`] inside
//! ClickHouse (`logs FINAL`, so an exporter's retried records count once) in
//! time order, `limit + 1` rows at most (the extra one says another page
//! exists), under [`DEADLINE_SECS`].
//!
//! The statement is built from fixed fragments only; every value the client
//! sent is a bound parameter.

use std::collections::BTreeMap;

use hypercare_storage::ReadOnly;
use hypercare_storage::catalog::Statement;
use serde::{Deserialize, Serialize};

use super::filter::{Cursor, Kind, LogFilter, REQUEST_ATTRIBUTES, USER_ATTRIBUTES, rfc3339_ns};

/// A search that runs longer is stopped by ClickHouse (503 to the client).
pub const DEADLINE_SECS: &str = "15";

#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
struct Row {
    log_id: u64,
    ts_ns: u64,
    service: String,
    severity_number: u8,
    severity_text: String,
    body: String,
    event_name: String,
    trace_id: String,
    span_id: String,
    attribute_keys: Vec<String>,
    attribute_values: Vec<String>,
}

/// One stored log line as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct LogLine {
    /// The record's hash (`log_id`), in decimal.
    pub id: String,
    /// RFC 3339, UTC, to the millisecond.
    pub time: String,
    #[serde(skip)]
    pub ns: u64,
    pub service: String,
    /// The record's severity text, else the OpenTelemetry name of its number.
    pub severity: String,
    pub severity_number: u8,
    pub body: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub event_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub trace_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub span_id: String,
    pub attributes: BTreeMap<String, String>,
}

impl LogLine {
    /// Its place in the time order (for the next page's cursor).
    pub fn cursor(&self) -> Cursor {
        Cursor {
            ns: self.ns,
            kind: Kind::Log,
            id: self.id.clone(),
        }
    }
}

fn severity_name(number: u8) -> &'static str {
    match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => "",
    }
}

impl From<Row> for LogLine {
    fn from(row: Row) -> Self {
        let severity = if row.severity_text.is_empty() {
            severity_name(row.severity_number).to_owned()
        } else {
            row.severity_text
        };
        Self {
            id: row.log_id.to_string(),
            time: rfc3339_ns(row.ts_ns),
            ns: row.ts_ns,
            service: row.service,
            severity,
            severity_number: row.severity_number,
            body: row.body,
            event_name: row.event_name,
            trace_id: row.trace_id,
            span_id: row.span_id,
            attributes: row
                .attribute_keys
                .into_iter()
                .zip(row.attribute_values)
                .collect(),
        }
    }
}

/// A bound value of the statement.
#[derive(Debug, Clone, PartialEq)]
enum Bind {
    U64(u64),
    Text(String),
}

/// The statement of `filter` and its values, in order.
fn statement(filter: &LogFilter) -> (String, Vec<Bind>) {
    let mut sql = String::from(
        "SELECT log_id, toUInt64(timestamp) * 1000000000 + timestamp_ns AS ts_ns, service, \
         severity_number, severity_text, body, event_name, trace_id, span_id, \
         attribute_keys, attribute_values FROM logs FINAL \
         WHERE timestamp >= toDateTime(?) AND timestamp <= toDateTime(?) \
         AND ts_ns >= ? AND ts_ns < ?",
    );
    let mut binds = vec![
        Bind::U64(filter.from_ns / 1_000_000_000),
        Bind::U64(filter.to_ns / 1_000_000_000),
        Bind::U64(filter.from_ns),
        Bind::U64(filter.to_ns),
    ];
    if let Some(service) = &filter.service {
        sql.push_str(" AND service = ?");
        binds.push(Bind::Text(service.clone()));
    }
    if let Some(min) = filter.min_severity {
        sql.push_str(" AND severity_number >= ?");
        binds.push(Bind::U64(u64::from(min)));
    }
    if let Some(q) = &filter.q {
        sql.push_str(" AND positionCaseInsensitiveUTF8(body, ?) > 0");
        binds.push(Bind::Text(q.clone()));
    }
    for (names, value) in &filter.attributes {
        // The names are ours (constants), never the client's.
        let names: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
        sql.push_str(&format!(
            " AND arrayExists((k, v) -> has([{}], k) AND v = ?, attribute_keys, attribute_values)",
            names.join(", ")
        ));
        binds.push(Bind::Text(value.clone()));
    }
    // Strictly after the cursor: later, or at its nanosecond and after it in
    // (kind, id) order. Logs come after events of the same nanosecond.
    if let Some(after) = &filter.after {
        let first_id = match after.kind {
            Kind::Event => Some(0),
            Kind::Log => after
                .id
                .parse::<u64>()
                .ok()
                .and_then(|id| id.checked_add(1)),
        };
        sql.push_str(" AND (ts_ns > ? OR (ts_ns = ? AND log_id >= ?))");
        binds.push(Bind::U64(after.ns));
        // No id after u64::MAX: no line of that nanosecond is left.
        binds.push(Bind::U64(if first_id.is_some() { after.ns } else { 0 }));
        binds.push(Bind::U64(first_id.unwrap_or(u64::MAX)));
    }
    sql.push_str(" ORDER BY ts_ns, log_id LIMIT ?");
    binds.push(Bind::U64(u64::from(filter.limit) + 1));
    (sql, binds)
}

/// The lines `filter` selects, in time order, `limit + 1` at most.
pub async fn search(
    store: &clickhouse::Client,
    filter: &LogFilter,
) -> clickhouse::error::Result<Vec<LogLine>> {
    let (sql, binds) = statement(filter);
    let mut query = store.query(&sql);
    for bind in binds {
        query = match bind {
            Bind::U64(n) => query.bind(n),
            Bind::Text(text) => query.bind(text),
        };
    }
    let rows: Vec<Row> = query
        .read_only()
        .with_setting("max_execution_time", DEADLINE_SECS)
        .fetch_all()
        .await?;
    Ok(rows.into_iter().map(LogLine::from).collect())
}

fn inline(filter: &LogFilter) -> String {
    let (mut sql, binds) = statement(filter);
    for bind in binds {
        let value = match bind {
            Bind::U64(n) => n.to_string(),
            Bind::Text(text) => format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'")),
        };
        sql = sql.replacen('?', &value, 1);
    }
    sql
}

/// The log searches, with every filter and without.
pub fn catalog() -> Vec<Statement> {
    let plain = LogFilter {
        from_ns: 1_795_300_000_000_000_000,
        to_ns: 1_795_400_000_000_000_000,
        service: None,
        min_severity: None,
        q: None,
        attributes: vec![],
        after: None,
        limit: 100,
    };
    let every = LogFilter {
        service: Some("checkout".into()),
        min_severity: Some(13),
        q: Some("timeout".into()),
        attributes: vec![
            (&REQUEST_ATTRIBUTES[..], "r-1".into()),
            (&USER_ATTRIBUTES[..], "u-1".into()),
        ],
        after: Some(Cursor {
            ns: 1_795_300_000_000_000_000,
            kind: Kind::Log,
            id: "42".into(),
        }),
        ..plain.clone()
    };
    vec![
        Statement {
            origin: "investigate: logs in a window".into(),
            sql: inline(&plain),
        },
        Statement {
            origin: "investigate: logs by request, user, service, severity, text, after a cursor"
                .into(),
            sql: inline(&every),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_values_are_bound_never_written_into_the_statement() {
        let filter = LogFilter {
            from_ns: 1_000_000_000,
            to_ns: 2_000_000_000,
            service: Some("x' OR 1=1 --".into()),
            min_severity: None,
            q: Some("?".into()),
            attributes: vec![(&USER_ATTRIBUTES[..], "u'1".into())],
            after: None,
            limit: 10,
        };
        let (sql, binds) = statement(&filter);
        assert!(!sql.contains("OR 1=1"));
        assert_eq!(sql.matches('?').count(), binds.len());
        assert_eq!(binds.last(), Some(&Bind::U64(11)));
    }

    #[test]
    fn a_cursor_after_the_last_possible_id_keeps_only_later_lines() {
        let filter = LogFilter {
            from_ns: 0,
            to_ns: 10,
            service: None,
            min_severity: None,
            q: None,
            attributes: vec![],
            after: Some(Cursor {
                ns: 5,
                kind: Kind::Log,
                id: u64::MAX.to_string(),
            }),
            limit: 1,
        };
        let (_, binds) = statement(&filter);
        assert_eq!(
            binds[4..7],
            [Bind::U64(5), Bind::U64(0), Bind::U64(u64::MAX)]
        );
    }
}
