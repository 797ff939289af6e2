//! Alerts, silences and deliveries in ClickHouse.

use hypercare_storage::ReadOnly;
use std::collections::BTreeMap;

use clickhouse::Client;
use serde::{Deserialize, Serialize};

use crate::matcher::Matcher;
use crate::notify::DeliveryRow;

#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize, PartialEq)]
pub struct AlertRow {
    pub alert_id: String,
    pub version: u32,
    pub fingerprint: String,
    pub rule: String,
    pub tier: String,
    pub state: String,
    pub label_keys: Vec<String>,
    pub label_values: Vec<String>,
    pub annotation_keys: Vec<String>,
    pub annotation_values: Vec<String>,
    pub value: f64,
    pub rollback: u8,
    pub started_ms: u64,
    pub fired_ms: u64,
    pub acked_ms: u64,
    pub acked_by: String,
    pub resolved_ms: u64,
    pub resolved_by: String,
    pub escalation_level: u8,
    pub change: String,
    pub at_ms: u64,
}

impl AlertRow {
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.label_keys
            .iter()
            .cloned()
            .zip(self.label_values.iter().cloned())
            .collect()
    }

    pub fn annotations(&self) -> BTreeMap<String, String> {
        self.annotation_keys
            .iter()
            .cloned()
            .zip(self.annotation_values.iter().cloned())
            .collect()
    }
}

pub const ALERT_COLUMNS: &str = "alert_id, version, fingerprint, rule, tier, state, label_keys, \
     label_values, annotation_keys, annotation_values, value, rollback, started_ms, fired_ms, \
     acked_ms, acked_by, resolved_ms, resolved_by, escalation_level, change, at_ms";

/// The latest version of every alert that is not resolved.
pub const OPEN_ALERTS_SQL: &str = "SELECT alert_id, version, fingerprint, rule, tier, state, \
     label_keys, label_values, annotation_keys, annotation_values, value, rollback, started_ms, \
     fired_ms, acked_ms, acked_by, resolved_ms, resolved_by, escalation_level, change, at_ms \
     FROM alert_events WHERE (alert_id, version) IN \
     (SELECT alert_id, max(version) FROM alert_events GROUP BY alert_id) \
     AND state != 'resolved' ORDER BY started_ms";

/// The latest version of every alert that started or was open in `[from, to)` (ms).
pub const HISTORY_SQL: &str = "SELECT alert_id, version, fingerprint, rule, tier, state, \
     label_keys, label_values, annotation_keys, annotation_values, value, rollback, started_ms, \
     fired_ms, acked_ms, acked_by, resolved_ms, resolved_by, escalation_level, change, at_ms \
     FROM alert_events WHERE (alert_id, version) IN \
     (SELECT alert_id, max(version) FROM alert_events GROUP BY alert_id) \
     AND fired_ms > 0 AND fired_ms < ? AND (resolved_ms = 0 OR resolved_ms >= ?) \
     ORDER BY fired_ms";

pub async fn append(client: &Client, rows: &[AlertRow]) -> clickhouse::error::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = client.insert::<AlertRow>("alert_events").await?;
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await
}

pub async fn open_alerts(client: &Client) -> clickhouse::error::Result<Vec<AlertRow>> {
    client.query(OPEN_ALERTS_SQL).read_only().fetch_all().await
}

pub async fn history(
    client: &Client,
    from_ms: u64,
    to_ms: u64,
) -> clickhouse::error::Result<Vec<AlertRow>> {
    client
        .query(HISTORY_SQL)
        .bind(to_ms)
        .bind(from_ms)
        .read_only()
        .fetch_all()
        .await
}

#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize)]
pub struct SilenceRow {
    pub silence_id: String,
    pub version: u32,
    pub matchers: String,
    pub starts_ms: u64,
    pub ends_ms: u64,
    pub created_by: String,
    pub comment: String,
    pub at_ms: u64,
}

/// A silence with its matchers parsed.
#[derive(Debug, Clone, Serialize)]
pub struct Silence {
    pub id: String,
    pub version: u32,
    pub matchers: Vec<Matcher>,
    pub starts_ms: u64,
    pub ends_ms: u64,
    pub created_by: String,
    pub comment: String,
}

impl Silence {
    pub fn from_row(row: SilenceRow) -> Option<Self> {
        let matchers: Vec<Matcher> = serde_json::from_str(&row.matchers).ok()?;
        let matchers = matchers
            .into_iter()
            .map(Matcher::compiled)
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        Some(Self {
            id: row.silence_id,
            version: row.version,
            matchers,
            starts_ms: row.starts_ms,
            ends_ms: row.ends_ms,
            created_by: row.created_by,
            comment: row.comment,
        })
    }

    /// `pending`, `active` or `expired`, as in Alertmanager.
    pub fn state(&self, now_ms: u64) -> &'static str {
        if now_ms < self.starts_ms {
            "pending"
        } else if now_ms < self.ends_ms {
            "active"
        } else {
            "expired"
        }
    }

    pub fn mutes(&self, labels: &BTreeMap<String, String>, now_ms: u64) -> bool {
        self.state(now_ms) == "active" && crate::matcher::all_match(&self.matchers, labels)
    }
}

pub const SILENCES_SQL: &str = "SELECT silence_id, version, matchers, starts_ms, ends_ms, \
     created_by, comment, at_ms FROM silences WHERE (silence_id, version) IN \
     (SELECT silence_id, max(version) FROM silences GROUP BY silence_id) ORDER BY starts_ms";

pub async fn silences(client: &Client) -> clickhouse::error::Result<Vec<Silence>> {
    let rows: Vec<SilenceRow> = client.query(SILENCES_SQL).read_only().fetch_all().await?;
    Ok(rows.into_iter().filter_map(Silence::from_row).collect())
}

pub async fn save_silence(client: &Client, row: &SilenceRow) -> clickhouse::error::Result<()> {
    let mut insert = client.insert::<SilenceRow>("silences").await?;
    insert.write(row).await?;
    insert.end().await
}

pub async fn record_delivery(client: &Client, row: &DeliveryRow) -> clickhouse::error::Result<()> {
    let mut insert = client.insert::<DeliveryRow>("alert_notifications").await?;
    insert.write(row).await?;
    insert.end().await
}

pub const DELIVERIES_SQL: &str = "SELECT at_ms, group_key, receiver, url, reason, status, attempt, \
     http_status, error, alert_ids FROM alert_notifications WHERE at_ms >= ? ORDER BY at_ms DESC LIMIT ?";

pub async fn deliveries(
    client: &Client,
    since_ms: u64,
    limit: u64,
) -> clickhouse::error::Result<Vec<DeliveryRow>> {
    client
        .query(DELIVERIES_SQL)
        .bind(since_ms)
        .bind(limit)
        .read_only()
        .fetch_all()
        .await
}

pub fn catalog() -> Vec<hypercare_storage::catalog::Statement> {
    use hypercare_storage::catalog::Statement;
    vec![
        Statement {
            origin: "alerts: open alerts".into(),
            sql: OPEN_ALERTS_SQL.into(),
        },
        Statement {
            origin: "alerts: history".into(),
            sql: HISTORY_SQL
                .replacen('?', "1795400000000", 1)
                .replacen('?', "1795000000000", 1),
        },
        Statement {
            origin: "alerts: silences".into(),
            sql: SILENCES_SQL.into(),
        },
        Statement {
            origin: "alerts: deliveries".into(),
            sql: DELIVERIES_SQL
                .replacen('?', "1795000000000", 1)
                .replacen('?', "100", 1),
        },
    ]
}
