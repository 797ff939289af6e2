//! What arrived, per event name: the read side of ingest, and the model for
//! every read of `events`: count with `uniqExact(event_id)`, so that a retried
//! batch (same event ids) never makes a number grow, merged or not.

use hypercare_storage::ReadOnly;
use hypercare_storage::catalog::Statement;
use serde::{Deserialize, Serialize};

/// `from` and `to` are bound as epoch seconds.
pub const EVENT_SUMMARY_SQL: &str = "SELECT event, uniqExact(event_id) AS events, \
     uniqExactIf(user_id, user_id != '') AS users, \
     toUInt32(min(timestamp)) AS first_seen, toUInt32(max(timestamp)) AS last_seen \
     FROM events \
     WHERE timestamp >= toDateTime(?) AND timestamp < toDateTime(?) \
     GROUP BY event ORDER BY events DESC, event LIMIT 1000";

#[derive(Debug, clickhouse::Row, Deserialize)]
struct SummaryRow {
    event: String,
    events: u64,
    users: u64,
    first_seen: u32,
    last_seen: u32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventCount {
    pub event: String,
    /// Distinct events (by event id).
    pub events: u64,
    /// Distinct non-empty user ids.
    pub users: u64,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = EventSummary)]
pub struct Summary {
    pub from: String,
    pub to: String,
    pub events: Vec<EventCount>,
}

pub async fn event_summary(
    client: &clickhouse::Client,
    from: i64,
    to: i64,
) -> clickhouse::error::Result<Vec<EventCount>> {
    let rows: Vec<SummaryRow> = client
        .query(EVENT_SUMMARY_SQL)
        .bind(from.max(0))
        .bind(to.max(0))
        .read_only()
        .fetch_all()
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| EventCount {
            event: row.event,
            events: row.events,
            users: row.users,
            first_seen: rfc3339(i64::from(row.first_seen)),
            last_seen: rfc3339(i64::from(row.last_seen)),
        })
        .collect())
}

pub fn rfc3339(unix_seconds: i64) -> String {
    chrono::DateTime::from_timestamp(unix_seconds, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The read queries of ingest, with example parameters, for the engine
/// compatibility test.
pub fn catalog() -> Vec<Statement> {
    vec![Statement {
        origin: "ingest: event summary".into(),
        sql: EVENT_SUMMARY_SQL
            .replacen('?', "1795300000", 1)
            .replacen('?', "1795400000", 1),
    }]
}
