//! The delivery attempts (`report_deliveries`, migration 0601): written at
//! every attempt, read by the scheduler ("delivered to this target yet?") and
//! by `GET /v1/reports/deliveries`.

use std::collections::BTreeSet;

use clickhouse::Client;
use hypercare_storage::ReadOnly;
use hypercare_storage::catalog::Statement;
use serde::{Deserialize, Serialize};

/// One attempt.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptRow {
    /// When the attempt ended (ms since the epoch).
    pub at_ms: u64,
    pub launch_id: String,
    /// N of the D+N report delivered.
    pub day: i32,
    /// A digest of the full target (the URL is a secret): the same webhook
    /// has the same id across restarts.
    pub target_id: String,
    /// The webhook URL without its secret path, or the folder.
    pub target: String,
    /// `json`, `slack`, `teams` or `folder`.
    pub format: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// `retrying` (another attempt follows), `delivered` or `failed` (final).
    pub status: String,
    /// The receiver's answer; 0 without one (network error, folder).
    pub http_status: u16,
    pub error: String,
}

pub async fn record(client: &Client, row: &AttemptRow) -> clickhouse::error::Result<()> {
    let mut insert = client.insert::<AttemptRow>("report_deliveries").await?;
    insert.write(row).await?;
    insert.end().await
}

/// The targets that have a final attempt (delivered or failed) for a day.
pub const FINISHED_SQL: &str = "SELECT DISTINCT target_id FROM report_deliveries \
     WHERE launch_id = ? AND day = ? AND status IN ('delivered', 'failed')";

pub async fn finished(
    client: &Client,
    launch_id: &str,
    day: i32,
) -> clickhouse::error::Result<BTreeSet<String>> {
    let ids: Vec<String> = client
        .query(FINISHED_SQL)
        .bind(launch_id)
        .bind(day)
        .read_only()
        .fetch_all()
        .await?;
    Ok(ids.into_iter().collect())
}

/// The attempts since a time, newest first.
pub const ATTEMPTS_SQL: &str = "SELECT at_ms, launch_id, day, target_id, target, format, attempt, \
     status, http_status, error FROM report_deliveries WHERE at_ms >= ? \
     ORDER BY at_ms DESC, attempt DESC LIMIT ?";

pub async fn attempts(
    client: &Client,
    since_ms: u64,
    limit: u64,
) -> clickhouse::error::Result<Vec<AttemptRow>> {
    client
        .query(ATTEMPTS_SQL)
        .bind(since_ms)
        .bind(limit)
        .read_only()
        .fetch_all()
        .await
}

/// The read queries, with example parameters, for the compatibility test.
pub fn catalog() -> Vec<Statement> {
    vec![
        Statement {
            origin: "report: targets a day's report reached".into(),
            sql: FINISHED_SQL
                .replacen('?', "'launch'", 1)
                .replacen('?', "3", 1),
        },
        Statement {
            origin: "report: delivery attempts".into(),
            sql: ATTEMPTS_SQL
                .replacen('?', "1795000000000", 1)
                .replacen('?', "100", 1),
        },
    ]
}
