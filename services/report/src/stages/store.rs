//! The SQL of the stage gates, and [`catalog`], which lists it with example
//! parameters for the compatibility test (ClickHouse 18.16 and 26.x).
//!
//! Each read answers per series (or per release) per interval of a stage:
//! `slot` is the interval's index from the stage's start, -1 for the hour
//! before it (whose last point is where a cumulative counter's first interval
//! starts). Copies of a point (retried batches) are folded by (series, time)
//! before anything is added, as the alerts do. Every value from a request or
//! a setting is a bound parameter; reads run `readonly` under the KPI reads'
//! time and memory limits, and stop at [`MAX_ROWS`] rows (checked before the
//! rows are judged).

use clickhouse::Client;
use hypercare_kpis::definition::Kpi;
use hypercare_kpis::sql::{
    Bind, EventsTable, MAX_EXECUTION_SECS, MAX_MEMORY_BYTES, Sql, ratio_sql, time_condition,
};
use hypercare_storage::ReadOnly;
use hypercare_storage::catalog::Statement;

use super::{ClassicSlot, ConversionSlot, CounterSlot, HistogramSlot, StageError, StageSettings};

/// Rows one read of a stage may answer (series x intervals).
pub const MAX_ROWS: usize = 200_000;

/// How far before a stage the last point of a cumulative series is looked for.
const LOOKBACK_SECS: u64 = 3600;

/// A stage's intervals: `intervals` of `step` seconds from `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: u64,
    pub step: u64,
    pub intervals: u64,
}

impl Span {
    fn to(self) -> u64 {
        self.from + self.step * self.intervals
    }
}

fn push(sql: &mut Sql, text: &str) {
    sql.text.push_str(text);
}

fn bind(sql: &mut Sql, text: &str, value: Bind) {
    sql.text.push_str(text);
    sql.binds.push(value);
}

fn append(sql: &mut Sql, other: Sql) {
    sql.text.push_str(&other.text);
    sql.binds.extend(other.binds);
}

/// A label's value: the first of `names` a point has among its labels, then
/// among its resource attributes; '' when it has none.
fn label_sql(sql: &mut Sql, names: &[String]) {
    push(sql, "multiIf(");
    for name in names {
        for (keys, values) in [
            ("label_keys", "label_values"),
            ("resource_keys", "resource_values"),
        ] {
            bind(sql, &format!("has({keys}, ?), "), Bind::Str(name.clone()));
            bind(
                sql,
                &format!("{values}[indexOf({keys}, ?)], "),
                Bind::Str(name.clone()),
            );
        }
    }
    push(sql, "'')");
}

/// The interval of `timestamp`: -1 before the stage, else its index.
fn slot_sql(sql: &mut Sql, span: Span) {
    bind(
        sql,
        "if(timestamp < toDateTime(?), toInt64(-1), ",
        Bind::U64(span.from),
    );
    bind(
        sql,
        "intDiv(toInt64(toUInt32(timestamp)) - toInt64(?), ",
        Bind::U64(span.from),
    );
    bind(sql, "toInt64(?))) AS slot", Bind::U64(span.step));
}

/// Points of metric `name` of `kind` in the lookback and the stage, one per
/// (series, time), with the series' release as `rel` (series without one are
/// left out) and `columns`.
fn points_sql(
    sql: &mut Sql,
    settings: &StageSettings,
    name: &str,
    kind: &str,
    span: Span,
    columns: impl FnOnce(&mut Sql),
) {
    push(
        sql,
        "SELECT series_id, timestamp, timestamp_ms, any(temporality) AS temporality, ",
    );
    columns(sql);
    push(sql, ", any(");
    label_sql(sql, &settings.release_labels);
    push(sql, ") AS rel");
    bind(
        sql,
        " FROM metric_points WHERE name = ?",
        Bind::Str(name.into()),
    );
    push(sql, &format!(" AND kind = '{kind}'"));
    bind(
        sql,
        " AND timestamp >= toDateTime(?)",
        Bind::U64(span.from.saturating_sub(LOOKBACK_SECS)),
    );
    bind(sql, " AND timestamp < toDateTime(?)", Bind::U64(span.to()));
    push(
        sql,
        " GROUP BY series_id, timestamp, timestamp_ms HAVING rel != ''",
    );
}

fn limit(sql: &mut Sql) {
    push(
        sql,
        &format!(
            ") GROUP BY series_id, slot ORDER BY series_id, slot LIMIT {}",
            MAX_ROWS + 1
        ),
    );
}

/// The request counter per series per interval, with whether the series is
/// one of errors.
pub fn counters_sql(settings: &StageSettings, span: Span) -> Sql {
    let mut sql = Sql::default();
    push(&mut sql, "SELECT series_id, ");
    slot_sql(&mut sql, span);
    bind(
        &mut sql,
        ", any(rel) AS release, toUInt8(match(any(st), ?)) AS error, \
         toUInt8(any(temporality) = 'delta') AS delta, sum(value) AS total, \
         argMin(value, (timestamp, timestamp_ms)) AS first, \
         argMax(value, (timestamp, timestamp_ms)) AS last FROM (",
        // A plain group: the whole value, and no `?` in the catalog's SQL.
        Bind::Str(format!("^({})$", settings.error_values)),
    );
    let error_label = [settings.error_label.clone()];
    points_sql(
        &mut sql,
        settings,
        &settings.requests_metric,
        "counter",
        span,
        |sql| {
            push(sql, "any(value) AS value, any(");
            label_sql(sql, &error_label);
            push(sql, ") AS st");
        },
    );
    limit(&mut sql);
    sql
}

/// The duration histogram per series per interval.
pub fn histograms_sql(settings: &StageSettings, span: Span) -> Sql {
    let mut sql = Sql::default();
    push(&mut sql, "SELECT series_id, ");
    slot_sql(&mut sql, span);
    push(
        &mut sql,
        ", any(rel) AS release, toUInt8(any(temporality) = 'delta') AS delta, \
         any(hist_bounds) AS bounds, sumForEach(hist_counts) AS total, \
         argMin(hist_counts, (timestamp, timestamp_ms)) AS first, \
         argMax(hist_counts, (timestamp, timestamp_ms)) AS last FROM (",
    );
    points_sql(
        &mut sql,
        settings,
        &settings.duration_metric,
        "histogram",
        span,
        |sql| {
            push(
                sql,
                "any(hist_bounds) AS hist_bounds, any(hist_counts) AS hist_counts",
            )
        },
    );
    limit(&mut sql);
    sql
}

/// The duration metric's classic family (`<duration_metric>_bucket` counters
/// with an `le` label, as Prometheus remote-writes a histogram) per bucket
/// series per interval.
pub fn classic_sql(settings: &StageSettings, span: Span) -> Sql {
    let mut sql = Sql::default();
    push(&mut sql, "SELECT series_id, ");
    slot_sql(&mut sql, span);
    push(
        &mut sql,
        ", any(rel) AS release, any(bucket_le) AS le, \
         toUInt8(any(temporality) = 'delta') AS delta, sum(value) AS total, \
         argMin(value, (timestamp, timestamp_ms)) AS first, \
         argMax(value, (timestamp, timestamp_ms)) AS last FROM (",
    );
    let le = ["le".to_owned()];
    points_sql(
        &mut sql,
        settings,
        &hypercare_ingest::classic::bucket_name(&settings.duration_metric),
        "counter",
        span,
        |sql| {
            push(sql, "any(value) AS value, any(");
            label_sql(sql, &le);
            push(sql, ") AS bucket_le");
        },
    );
    limit(&mut sql);
    sql
}

/// A ratio KPI's numerator and denominator events per release per interval
/// (events without a release left out), the KPI's own rule of counting
/// ([`hypercare_kpis::sql::ratio_sql`]: distinct events, retries once).
pub fn conversions_sql(kpi: &Kpi, span: Span) -> Sql {
    let mut sql = Sql::default();
    bind(
        &mut sql,
        "SELECT intDiv(toInt64(toUInt32(timestamp)) - toInt64(?), ",
        Bind::U64(span.from),
    );
    bind(
        &mut sql,
        "toInt64(?)) AS slot, release, ",
        Bind::U64(span.step),
    );
    let (columns, condition) = ratio_sql(kpi, "toFloat64", ("a", "b"));
    append(&mut sql, columns);
    push(&mut sql, " FROM events WHERE ");
    append(
        &mut sql,
        time_condition(&[(span.from, span.to())], EventsTable::All),
    );
    push(&mut sql, " AND release != '' AND ");
    append(&mut sql, condition);
    push(
        &mut sql,
        &format!(
            " GROUP BY slot, release ORDER BY slot, release LIMIT {}",
            MAX_ROWS + 1
        ),
    );
    sql
}

async fn fetch<T>(client: &Client, sql: &Sql, what: &str) -> Result<Vec<T>, StageError>
where
    T: clickhouse::RowOwned + clickhouse::RowRead,
{
    let rows: Vec<T> = sql
        .query(client)
        .with_setting("max_execution_time", MAX_EXECUTION_SECS)
        .with_setting("max_memory_usage", MAX_MEMORY_BYTES)
        .read_only()
        .fetch_all()
        .await?;
    if rows.len() > MAX_ROWS {
        return Err(StageError::TooManyRows {
            metric: what.to_owned(),
        });
    }
    Ok(rows)
}

/// [`counters_sql`], run.
pub async fn counters(
    client: &Client,
    settings: &StageSettings,
    span: Span,
) -> Result<Vec<CounterSlot>, StageError> {
    fetch(
        client,
        &counters_sql(settings, span),
        &settings.requests_metric,
    )
    .await
}

/// [`histograms_sql`], run.
pub async fn histograms(
    client: &Client,
    settings: &StageSettings,
    span: Span,
) -> Result<Vec<HistogramSlot>, StageError> {
    fetch(
        client,
        &histograms_sql(settings, span),
        &settings.duration_metric,
    )
    .await
}

/// [`classic_sql`], run.
pub async fn classic(
    client: &Client,
    settings: &StageSettings,
    span: Span,
) -> Result<Vec<ClassicSlot>, StageError> {
    let sql = classic_sql(settings, span);
    fetch(client, &sql, &settings.duration_metric).await
}

/// [`conversions_sql`], run.
pub async fn conversions(
    client: &Client,
    kpi: &Kpi,
    span: Span,
) -> Result<Vec<ConversionSlot>, StageError> {
    fetch(client, &conversions_sql(kpi, span), &kpi.id).await
}

/// Every statement with example parameters, for the compatibility test.
pub fn catalog() -> Vec<Statement> {
    let settings = StageSettings::default();
    let span = Span {
        from: 1_795_251_600,
        step: 300,
        intervals: 24,
    };
    let mut statements = vec![
        Statement {
            origin: "report: stage gate request counter".into(),
            sql: counters_sql(&settings, span).inline(),
        },
        Statement {
            origin: "report: stage gate duration histogram".into(),
            sql: histograms_sql(&settings, span).inline(),
        },
        Statement {
            origin: "report: stage gate classic duration histogram".into(),
            sql: classic_sql(&settings, span).inline(),
        },
    ];
    let kpis =
        hypercare_kpis::definition::parse(include_str!("../../../../config/kpis.example.yaml"))
            .unwrap_or_default();
    for kpi in kpis
        .iter()
        .filter(|k| k.aggregation == hypercare_kpis::definition::Aggregation::Ratio)
    {
        statements.push(Statement {
            origin: format!("report: stage gate conversion {}", kpi.id),
            sql: conversions_sql(kpi, span).inline(),
        });
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_bound() {
        for statement in catalog() {
            assert!(!statement.sql.contains('?'), "{}", statement.sql);
        }
        let sql = counters_sql(
            &StageSettings::default(),
            Span {
                from: 1000,
                step: 60,
                intervals: 2,
            },
        );
        assert_eq!(sql.text.matches('?').count(), sql.binds.len());
        assert!(sql.inline().contains("name = 'http_requests_total'"));
        assert!(sql.inline().contains("match(any(st), '^(5..)$')"));
    }

    #[test]
    fn the_catalog_has_a_conversion_query_per_ratio_kpi() {
        let catalog = catalog();
        assert!(catalog.len() >= 3, "{catalog:?}");
        assert!(catalog.iter().any(|s| s.origin.contains("conversion")));
    }
}
