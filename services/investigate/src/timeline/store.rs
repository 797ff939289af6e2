//! A user's events in a window: [`events`] reads `events` (copies of an id
//! folded, the first received is the event, as everywhere), in time order
//! after a cursor, `limit + 1` rows at most, under the logs' deadline.

use hypercare_storage::ReadOnly;
use hypercare_storage::catalog::Statement;
use serde::{Deserialize, Serialize};

use crate::logs::filter::{Cursor, Kind, rfc3339_ns};
use crate::logs::store::DEADLINE_SECS;

/// Binds: user id, from and to (seconds), from and to (ns), cursor ns, tie ns,
/// tie id, limit.
pub const USER_EVENTS_SQL: &str = "SELECT id, ts_ns, name, src, rel, session, v, \
     sk, sv, nk, nv, bk, bv FROM ( \
     SELECT toString(event_id) AS id, \
     argMin(toUInt64(timestamp) * 1000000000 + toUInt64(timestamp_ms) * 1000000, received_at) AS ts_ns, \
     argMin(event, received_at) AS name, argMin(source, received_at) AS src, \
     argMin(release, received_at) AS rel, argMin(session_id, received_at) AS session, \
     argMin(ifNull(value, nan), received_at) AS v, \
     argMin(prop_str_keys, received_at) AS sk, argMin(prop_str_values, received_at) AS sv, \
     argMin(prop_num_keys, received_at) AS nk, argMin(prop_num_values, received_at) AS nv, \
     argMin(prop_bool_keys, received_at) AS bk, argMin(prop_bool_values, received_at) AS bv \
     FROM events WHERE user_id = ? AND timestamp >= toDateTime(?) AND timestamp <= toDateTime(?) \
     GROUP BY event_id) \
     WHERE ts_ns >= ? AND ts_ns < ? AND (ts_ns > ? OR (ts_ns = ? AND id > ?)) \
     ORDER BY ts_ns, id LIMIT ?";

#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
struct Row {
    id: String,
    ts_ns: u64,
    name: String,
    src: String,
    rel: String,
    session: String,
    v: f64,
    sk: Vec<String>,
    sv: Vec<String>,
    nk: Vec<String>,
    nv: Vec<f64>,
    bk: Vec<String>,
    bv: Vec<u8>,
}

/// One event of a timeline.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct EventItem {
    /// The event's `event_id`.
    pub id: String,
    /// RFC 3339, UTC, to the millisecond.
    pub time: String,
    #[serde(skip)]
    pub ns: u64,
    pub event: String,
    pub source: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub release: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub session_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[schema(value_type = Object)]
    pub properties: serde_json::Map<String, serde_json::Value>,
}

impl EventItem {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            ns: self.ns,
            kind: Kind::Event,
            id: self.id.clone(),
        }
    }
}

impl From<Row> for EventItem {
    fn from(row: Row) -> Self {
        let mut properties = serde_json::Map::new();
        for (k, v) in row.sk.into_iter().zip(row.sv) {
            properties.insert(k, v.into());
        }
        for (k, v) in row.nk.into_iter().zip(row.nv) {
            properties.insert(k, v.into());
        }
        for (k, v) in row.bk.into_iter().zip(row.bv) {
            properties.insert(k, (v != 0).into());
        }
        Self {
            time: rfc3339_ns(row.ts_ns),
            ns: row.ts_ns,
            id: row.id,
            event: row.name,
            source: row.src,
            release: row.rel,
            session_id: row.session,
            value: row.v.is_finite().then_some(row.v),
            properties,
        }
    }
}

/// What to read: the user, the window in nanoseconds, the place after which.
#[derive(Debug, Clone, PartialEq)]
pub struct EventsRequest<'a> {
    pub user_id: &'a str,
    pub from_ns: u64,
    pub to_ns: u64,
    pub after: Option<&'a Cursor>,
    pub limit: u32,
}

/// The cursor's three binds: strictly after it in (ns, kind, id) order. Events
/// come before logs of the same nanosecond, so after a log none of its
/// nanosecond is left (tie ns 0 matches no row).
fn after_binds(after: Option<&Cursor>, from_ns: u64) -> (u64, u64, String) {
    match after {
        // Everything from `from` on.
        None => (from_ns.saturating_sub(1), 0, String::new()),
        Some(c) if c.kind == Kind::Event => (c.ns, c.ns, c.id.clone()),
        Some(c) => (c.ns, 0, String::new()),
    }
}

pub async fn events(
    store: &clickhouse::Client,
    request: &EventsRequest<'_>,
) -> clickhouse::error::Result<Vec<EventItem>> {
    let (after_ns, tie_ns, tie_id) = after_binds(request.after, request.from_ns);
    let rows: Vec<Row> = store
        .query(USER_EVENTS_SQL)
        .bind(request.user_id)
        .bind(request.from_ns / 1_000_000_000)
        .bind(request.to_ns / 1_000_000_000)
        .bind(request.from_ns)
        .bind(request.to_ns)
        .bind(after_ns)
        .bind(tie_ns)
        .bind(tie_id)
        .bind(u64::from(request.limit) + 1)
        .read_only()
        .with_setting("max_execution_time", DEADLINE_SECS)
        .fetch_all()
        .await?;
    Ok(rows.into_iter().map(EventItem::from).collect())
}

pub fn catalog() -> Vec<Statement> {
    let mut sql = USER_EVENTS_SQL.to_owned();
    for value in [
        "'u-1'",
        "1795300000",
        "1795400000",
        "1795300000000000000",
        "1795400000000000000",
        "1795300000000000000",
        "1795300000000000000",
        "'00000000-0000-4000-a000-000000000001'",
        "201",
    ] {
        sql = sql.replacen('?', value, 1);
    }
    vec![Statement {
        origin: "investigate: a user's events after a cursor".into(),
        sql,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_log_no_event_of_its_nanosecond_is_left() {
        let log = Cursor {
            ns: 7,
            kind: Kind::Log,
            id: "3".into(),
        };
        assert_eq!(after_binds(Some(&log), 1), (7, 0, String::new()));
        let event = Cursor {
            ns: 7,
            kind: Kind::Event,
            id: "abc".into(),
        };
        assert_eq!(after_binds(Some(&event), 1), (7, 7, "abc".into()));
        assert_eq!(USER_EVENTS_SQL.matches('?').count(), 9);
    }
}
