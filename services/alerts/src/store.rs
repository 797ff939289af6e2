//! Alerts, silences and deliveries in ClickHouse: the row types, and every
//! statement that reads or writes them (each read is in [`catalog`], which the
//! compatibility test runs on ClickHouse 18.16 and on the modern engine).
//!
//! `alert_events` and `silences` are append-only: a change is a new version of
//! the row, and a read takes the highest version of each id.

use hypercare_storage::ReadOnly;
use std::collections::BTreeMap;

use clickhouse::Client;

use crate::matcher::Selector;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where an alert is in its life. Stored as the text of [`AlertStatus::as_str`];
/// "acknowledged" is not a status but a firing alert whose ack holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertStatus {
    /// The condition holds, for less than the rule's `for`.
    Pending,
    Firing,
    Resolved,
}

impl AlertStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Pending => "pending",
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            AlertStatus::Pending,
            AlertStatus::Firing,
            AlertStatus::Resolved,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Pending or firing: the evaluator still watches it.
    pub fn is_open(self) -> bool {
        self != AlertStatus::Resolved
    }
}

impl std::fmt::Display for AlertStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// As text, both in the `state String` column and in JSON.
impl Serialize for AlertStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AlertStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        AlertStatus::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown alert state `{text}` (expected pending, firing or resolved)"
            ))
        })
    }
}

#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize, PartialEq)]
pub struct AlertRow {
    pub alert_id: String,
    pub version: u32,
    pub fingerprint: String,
    pub rule: String,
    pub tier: String,
    pub state: AlertStatus,
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

/// Every version of one alert, oldest first.
pub const ONE_ALERT_SQL: &str = "SELECT alert_id, version, fingerprint, rule, tier, state, label_keys, \
     label_values, annotation_keys, annotation_values, value, rollback, started_ms, fired_ms, \
     acked_ms, acked_by, resolved_ms, resolved_by, escalation_level, change, at_ms \
     FROM alert_events WHERE alert_id = ? ORDER BY version";

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

pub async fn alert_versions(
    client: &Client,
    alert_id: &str,
) -> clickhouse::error::Result<Vec<AlertRow>> {
    client
        .query(ONE_ALERT_SQL)
        .bind(alert_id)
        .read_only()
        .fetch_all()
        .await
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

pub const SILENCES_SQL: &str = "SELECT silence_id, version, matchers, starts_ms, ends_ms, \
     created_by, comment, at_ms FROM silences WHERE (silence_id, version) IN \
     (SELECT silence_id, max(version) FROM silences GROUP BY silence_id) ORDER BY starts_ms";

/// The latest version of every silence (`silence::Silence::from_rows` reads them).
pub async fn silences(client: &Client) -> clickhouse::error::Result<Vec<SilenceRow>> {
    client.query(SILENCES_SQL).read_only().fetch_all().await
}

pub async fn save_silence(client: &Client, row: &SilenceRow) -> clickhouse::error::Result<()> {
    let mut insert = client.insert::<SilenceRow>("silences").await?;
    insert.write(row).await?;
    insert.end().await
}

/// One delivery attempt's record (`alert_notifications`).
#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryRow {
    pub at_ms: u64,
    pub group_key: String,
    pub receiver: String,
    /// The receiver's URL without its secret part (`config::redact_url`).
    pub url: String,
    /// `notify`, `repeat`, `resolved`, `escalation`, `digest`, `ack_expired`.
    pub reason: String,
    /// `delivered`, `failed`, or `abandoned` (shutdown came before a retry).
    pub status: String,
    pub attempt: u32,
    pub http_status: u16,
    pub error: String,
    pub alert_ids: Vec<String>,
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

/// SLI reads: a metric's points per (series, age bucket), where age bucket k
/// holds the points of `(at - (k + 1) step, at]`; `{value}` is the counter or
/// histogram columns, `{matchers}` the selector's label matchers. Copies of a
/// point are folded first. The caller asks for one row more than it accepts.
const SLO_POINTS_SQL: &str = "SELECT series_id, bucket, toUInt8(any(temporality) = 'delta') AS delta, \
     {value} FROM (SELECT series_id, timestamp, timestamp_ms, any(temporality) AS temporality, \
     {inner}, toUInt32(intDiv(toUInt32(?) - toUInt32(timestamp), ?)) AS bucket \
     FROM metric_points WHERE timestamp > toDateTime(?) AND timestamp <= toDateTime(?) AND name = ?{matchers} \
     GROUP BY series_id, timestamp, timestamp_ms) \
     GROUP BY series_id, bucket ORDER BY series_id, bucket DESC LIMIT ?";

const SLO_COUNTER_VALUE: &str = "argMin(value, (timestamp, timestamp_ms)) AS first, \
     argMax(value, (timestamp, timestamp_ms)) AS last, sum(value) AS total";
const SLO_COUNTER_INNER: &str = "any(value) AS value";
const SLO_HISTOGRAM_VALUE: &str = "any(hist_bounds) AS bounds, \
     argMin(hist_counts, (timestamp, timestamp_ms)) AS first, \
     argMax(hist_counts, (timestamp, timestamp_ms)) AS last, sumForEach(hist_counts) AS total";
const SLO_HISTOGRAM_INNER: &str =
    "any(hist_bounds) AS hist_bounds, any(hist_counts) AS hist_counts";
/// A classic histogram's `_bucket` counters: the counter columns and the
/// series' `le` label.
const SLO_CLASSIC_VALUE: &str = "argMin(value, (timestamp, timestamp_ms)) AS first, \
     argMax(value, (timestamp, timestamp_ms)) AS last, sum(value) AS total, any(bucket_le) AS le";
const SLO_CLASSIC_INNER: &str = "any(value) AS value, \
     any(if(has(label_keys, 'le'), label_values[indexOf(label_keys, 'le')], '')) AS bucket_le";

/// What an SLI read reads of each point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SloForm {
    /// A counter's value.
    Counter,
    /// A native histogram's bounds and counts.
    Histogram,
    /// A classic histogram's `_bucket` counter value and its `le` label.
    Classic,
}

/// Rows one SLI read may return (series x buckets): a selector matching more
/// is an error the SLO's status names, not a partial SLI.
pub const SLO_MAX_ROWS: u64 = 2_000_000;

/// A read of an SLI metric: `buckets` age buckets of `step` seconds ending at `at`.
#[derive(Debug, Clone, Copy)]
pub struct BucketRead {
    pub at: u64,
    pub step: u64,
    pub buckets: u64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
pub struct CounterBucketRow {
    pub series_id: u64,
    pub bucket: u32,
    pub delta: u8,
    pub first: f64,
    pub last: f64,
    pub total: f64,
}

#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
pub struct ClassicBucketRow {
    pub series_id: u64,
    pub bucket: u32,
    pub delta: u8,
    pub first: f64,
    pub last: f64,
    pub total: f64,
    /// The series' `le` label as sent ('' without one).
    pub le: String,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
pub struct HistogramBucketRow {
    pub series_id: u64,
    pub bucket: u32,
    pub delta: u8,
    pub bounds: Vec<f64>,
    pub first: Vec<u64>,
    pub last: Vec<u64>,
    pub total: Vec<u64>,
}

fn slo_points_sql(selector: &Selector, form: SloForm) -> (String, Vec<String>) {
    let mut matchers = String::new();
    let mut binds = Vec::new();
    for m in &selector.matchers {
        crate::matcher::matcher_sql(m, &mut matchers, &mut binds);
    }
    let (value, inner) = match form {
        SloForm::Counter => (SLO_COUNTER_VALUE, SLO_COUNTER_INNER),
        SloForm::Histogram => (SLO_HISTOGRAM_VALUE, SLO_HISTOGRAM_INNER),
        SloForm::Classic => (SLO_CLASSIC_VALUE, SLO_CLASSIC_INNER),
    };
    let sql = SLO_POINTS_SQL
        .replace("{value}", value)
        .replace("{inner}", inner)
        .replace("{matchers}", &matchers);
    (sql, binds)
}

fn slo_query(
    client: &Client,
    selector: &Selector,
    form: SloForm,
    read: BucketRead,
) -> clickhouse::query::Query {
    let (sql, binds) = slo_points_sql(selector, form);
    let from = read.at.saturating_sub(read.step * read.buckets);
    let mut query = client
        .query(&sql)
        .bind(read.at)
        .bind(read.step)
        .bind(from)
        .bind(read.at)
        .bind(selector.metric.as_str());
    for b in &binds {
        query = query.bind(b.as_str());
    }
    query
        .bind(SLO_MAX_ROWS + 1)
        .read_only()
        .with_setting("max_execution_time", "20")
}

/// A counter selector's points per (series, age bucket).
pub async fn counter_buckets(
    client: &Client,
    selector: &Selector,
    read: BucketRead,
) -> clickhouse::error::Result<Vec<CounterBucketRow>> {
    slo_query(client, selector, SloForm::Counter, read)
        .fetch_all()
        .await
}

/// A histogram selector's points per (series, age bucket).
pub async fn histogram_buckets(
    client: &Client,
    selector: &Selector,
    read: BucketRead,
) -> clickhouse::error::Result<Vec<HistogramBucketRow>> {
    slo_query(client, selector, SloForm::Histogram, read)
        .fetch_all()
        .await
}

/// A classic histogram's `_bucket` series (the selector names the `_bucket`
/// metric) per (series, age bucket), with each series' `le`.
pub async fn classic_buckets(
    client: &Client,
    selector: &Selector,
    read: BucketRead,
) -> clickhouse::error::Result<Vec<ClassicBucketRow>> {
    slo_query(client, selector, SloForm::Classic, read)
        .fetch_all()
        .await
}

pub fn catalog() -> Vec<hypercare_storage::catalog::Statement> {
    use hypercare_storage::catalog::Statement;
    vec![
        Statement {
            origin: "alerts: one alert's versions".into(),
            sql: ONE_ALERT_SQL.replacen('?', "'0123abcd18f00000000'", 1),
        },
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
            origin: "alerts: SLI counters per age bucket".into(),
            sql: slo_catalog_sql(SloForm::Counter),
        },
        Statement {
            origin: "alerts: SLI histograms per age bucket".into(),
            sql: slo_catalog_sql(SloForm::Histogram),
        },
        Statement {
            origin: "alerts: SLI classic histogram buckets per age bucket".into(),
            sql: slo_catalog_sql(SloForm::Classic),
        },
        Statement {
            origin: "alerts: deliveries".into(),
            sql: DELIVERIES_SQL
                .replacen('?', "1795000000000", 1)
                .replacen('?', "100", 1),
        },
    ]
}

/// An SLI read with example values (a regex matcher included).
fn slo_catalog_sql(form: SloForm) -> String {
    let selector = Selector::parse(r#"http_requests_total{service="checkout", status=~"5.."}"#)
        .unwrap_or_else(|_| Selector {
            metric: "x".into(),
            matchers: vec![],
        });
    let (sql, binds) = slo_points_sql(&selector, form);
    let mut parts = sql.split('?');
    let mut text = parts.next().unwrap_or_default().to_owned();
    let fixed = [
        "1795000000",
        "60",
        "1794740800",
        "1795000000",
        "'http_requests_total'",
    ];
    let literals = fixed
        .iter()
        .map(|s| (*s).to_owned())
        .chain(
            binds
                .iter()
                .map(|b| format!("'{}'", b.replace('\\', "\\\\").replace('\'', "\\'"))),
        )
        .chain(["2000001".to_owned()]);
    for (part, literal) in parts.zip(literals) {
        text.push_str(&literal);
        text.push_str(part);
    }
    text
}
