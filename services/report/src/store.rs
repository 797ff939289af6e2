//! The reports kept in ClickHouse (`daily_reports`, migration 0600): a day's
//! report is stored once the day is over and read back from then on.

use clickhouse::Client;
use hypercare_storage::ReadOnly;
use hypercare_storage::catalog::Statement;
use serde::{Deserialize, Serialize};

use crate::document::{DailyReport, SCHEMA_VERSION};

#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize)]
pub struct ReportRow {
    pub launch_id: String,
    pub day: i32,
    pub date: String,
    pub call: String,
    pub schema: u32,
    pub made_ms: u64,
    pub body: String,
}

/// The newest stored report of a day (argMax: merges may not have run).
pub const STORED_SQL: &str = "SELECT argMax(body, made_ms) AS latest_body FROM daily_reports \
     WHERE launch_id = ? AND day = ? AND schema = ? GROUP BY launch_id, day";

/// The day's stored report, if any of the current shape.
pub async fn stored(
    client: &Client,
    launch_id: &str,
    day: i64,
) -> clickhouse::error::Result<Option<DailyReport>> {
    let Ok(day) = i32::try_from(day) else {
        return Ok(None);
    };
    let body: Option<String> = client
        .query(STORED_SQL)
        .bind(launch_id)
        .bind(day)
        .bind(SCHEMA_VERSION)
        .read_only()
        .fetch_optional()
        .await?;
    // A body this version cannot read is made again rather than served wrong.
    Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
}

pub async fn save(
    client: &Client,
    report: &DailyReport,
    made_ms: u64,
) -> clickhouse::error::Result<()> {
    let row = ReportRow {
        launch_id: report.launch.id.clone(),
        day: i32::try_from(report.day).unwrap_or(i32::MAX),
        date: report.date.clone(),
        call: report.call.call.as_str().to_owned(),
        schema: SCHEMA_VERSION,
        made_ms,
        body: serde_json::to_string(report).unwrap_or_default(),
    };
    let mut insert = client.insert::<ReportRow>("daily_reports").await?;
    insert.write(&row).await?;
    insert.end().await
}

/// The read queries, with example parameters, for the compatibility test.
pub fn catalog() -> Vec<Statement> {
    vec![Statement {
        origin: "report: a stored daily report".into(),
        sql: STORED_SQL
            .replacen('?', "'launch'", 1)
            .replacen('?', "3", 1)
            .replacen('?', "1", 1),
    }]
}
