//! A rule's condition, evaluated now: one [`Sample`] per series (per value of the
//! `by` labels, per source, or one for a KPI), with whether the condition holds.
//!
//! Metric semantics, the same whichever protocol the points came by:
//! - counters: the increase over the window is, per series, the last point in the
//!   window minus the last point before it (a restart: the last point alone; no
//!   point before: last minus first in the window); delta-temporality points are
//!   summed. `rate` divides the increase by the window. Series add up per group.
//! - gauges: `last` adds each series' last point per group (like `sum by`);
//!   `avg`, `max`, `min` run over every point of the group in the window.
//! - histograms (`fn: quantile`): bucket counts over the window, added per group,
//!   interpolated as `histogram_quantile` does. A metric with no native
//!   histogram series is read as a classic Prometheus family (`x_bucket{le}`
//!   counters, see `hypercare_ingest::classic`): `histogram_quantile(q, sum by
//!   (le, <by>) (rate(x_bucket[window])))`, PromQL's arithmetic, over the window
//!   `[now - window, now + 1 s)`.
//!
//! Every value from a rule is a bound parameter.

use clickhouse::Client;
use serde::Deserialize;
use std::collections::BTreeMap;

use hypercare_ingest::classic;
use hypercare_ingest::quantile::{bucket_counts_in_window, estimate};
use hypercare_kpis::routes::{Board, KpiNow};

use crate::matcher::{Selector, label_expr, matcher_sql};
use crate::rule::{
    Compare, KpiLevel, MetricFn, MetricSource, Rule, SilenceSource, Source, Threshold,
};

pub use crate::sample::Sample;

/// Points of `selector` in `[lookback, to)`, copies folded, with the group labels.
fn points_sql(
    selector: &Selector,
    by: &[String],
    value: &str,
    sql: &mut String,
    binds: &mut Vec<String>,
) {
    sql.push_str("SELECT series_id, timestamp, timestamp_ms, any(temporality) AS temporality, ");
    sql.push_str(value);
    sql.push_str(", any([''");
    for label in by {
        sql.push_str(", ");
        label_expr(label, sql, binds);
    }
    sql.push_str("]) AS groups FROM metric_points WHERE timestamp >= toDateTime(?) AND timestamp < toDateTime(?) \
        AND name IN (SELECT ? UNION ALL SELECT name FROM metric_names WHERE prom_name = ?)");
    binds.push("{lookback}".into());
    binds.push("{to}".into());
    // The name itself, and the OTLP metrics it is the Prometheus name of.
    binds.push(selector.metric.clone());
    binds.push(selector.metric.clone());
    for m in &selector.matchers {
        matcher_sql(m, sql, binds);
    }
    sql.push_str(" GROUP BY series_id, timestamp, timestamp_ms");
}

/// Per series over the window: scalars for counters and gauges.
fn scalar_sql(selector: &Selector, by: &[String]) -> (String, Vec<String>) {
    let mut sql = String::from(
        "SELECT series_id, any(groups) AS groups, toUInt8(any(temporality) = 'delta') AS delta, \
         sumIf(value, timestamp >= toDateTime(?)) AS window_sum, \
         argMaxIf(value, (timestamp, timestamp_ms), timestamp >= toDateTime(?)) AS last, \
         argMinIf(value, (timestamp, timestamp_ms), timestamp >= toDateTime(?)) AS first, \
         argMaxIf(value, (timestamp, timestamp_ms), timestamp < toDateTime(?)) AS before, \
         toUInt64(countIf(timestamp < toDateTime(?))) AS n_before, \
         toUInt64(countIf(timestamp >= toDateTime(?))) AS n_window, \
         maxIf(value, timestamp >= toDateTime(?)) AS max, \
         minIf(value, timestamp >= toDateTime(?)) AS min, \
         avgIf(value, timestamp >= toDateTime(?)) AS avg FROM (",
    );
    let mut binds: Vec<String> = std::iter::repeat_n("{from}".to_owned(), 9).collect();
    points_sql(selector, by, "any(value) AS value", &mut sql, &mut binds);
    sql.push_str(") GROUP BY series_id HAVING n_window > 0 ORDER BY series_id LIMIT ");
    sql.push_str(SERIES_READ_LIMIT);
    (sql, binds)
}

/// Per series over the window: histogram bucket counts.
fn histogram_sql(selector: &Selector, by: &[String]) -> (String, Vec<String>) {
    let mut sql = String::from(
        "SELECT series_id, any(groups) AS groups, toUInt8(any(temporality) = 'delta') AS delta, \
         any(hist_bounds) AS bounds, \
         sumForEachIf(hist_counts, timestamp >= toDateTime(?)) AS window_sum, \
         argMaxIf(hist_counts, (timestamp, timestamp_ms), timestamp >= toDateTime(?)) AS last, \
         argMaxIf(hist_counts, (timestamp, timestamp_ms), timestamp < toDateTime(?)) AS before FROM (",
    );
    let mut binds: Vec<String> = std::iter::repeat_n("{from}".to_owned(), 3).collect();
    points_sql(
        selector,
        by,
        "any(hist_bounds) AS hist_bounds, any(hist_counts) AS hist_counts",
        &mut sql,
        &mut binds,
    );
    sql.push_str(") GROUP BY series_id HAVING notEmpty(last) ORDER BY series_id LIMIT ");
    sql.push_str(SERIES_READ_LIMIT);
    (sql, binds)
}

/// Per `_bucket` series of a classic family: its `le`, groups and points in
/// the window (copies folded). `count` is true for the statement that counts
/// those points first, so that no read is larger than [`MAX_CLASSIC_POINTS`].
fn classic_sql(selector: &Selector, by: &[String], count: bool) -> (String, Vec<String>) {
    let bucket = Selector {
        metric: classic::bucket_name(&selector.metric),
        matchers: selector.matchers.clone(),
    };
    let mut sql = String::from(if count {
        "SELECT toUInt64(count()) AS n FROM ("
    } else {
        "SELECT series_id, any(le) AS le, any(groups) AS groups, \
         groupArray(t) AS times, groupArray(value) AS values FROM ("
    });
    let mut binds = Vec::new();
    points_sql(
        &bucket,
        by,
        "toInt64(toUInt32(timestamp)) * 1000 + timestamp_ms AS t, \
         any(label_values[indexOf(label_keys, 'le')]) AS le, any(value) AS value",
        &mut sql,
        &mut binds,
    );
    sql.push_str(") WHERE timestamp >= toDateTime(?)");
    binds.push("{from}".into());
    if !count {
        sql.push_str(" GROUP BY series_id ORDER BY series_id LIMIT ");
        sql.push_str(SERIES_READ_LIMIT);
    }
    (sql, binds)
}

/// Points one classic-histogram condition may read (about 16 bytes each).
pub const MAX_CLASSIC_POINTS: u64 = 1_000_000;

#[derive(Debug, clickhouse::Row, Deserialize)]
struct ClassicRow {
    #[allow(dead_code)]
    series_id: u64,
    le: String,
    groups: Vec<String>,
    times: Vec<i64>,
    values: Vec<f64>,
}

/// A classic family's quantile per group (see the module docs).
async fn classic_values(
    client: &Client,
    source: &MetricSource,
    selector: &Selector,
    select: &str,
    (from, now, lookback): (u64, u64, u64),
) -> anyhow::Result<BTreeMap<BTreeMap<String, String>, f64>> {
    let (sql, binds) = classic_sql(selector, &source.by, true);
    let points: u64 = bind_times(&sql, &binds, client, from, now + 1, lookback)
        .fetch_one()
        .await?;
    if points > MAX_CLASSIC_POINTS {
        anyhow::bail!(
            "`{select}` reads more than {MAX_CLASSIC_POINTS} points of a classic histogram: shorten the window or narrow it with label matchers"
        );
    }
    let (sql, binds) = classic_sql(selector, &source.by, false);
    let rows: Vec<ClassicRow> = bind_times(&sql, &binds, client, from, now + 1, lookback)
        .fetch_all()
        .await?;
    check_series_count(rows.len(), select)?;
    let family = rows
        .into_iter()
        .map(|r| classic::BucketSeries {
            group: r.groups,
            le: r.le,
            points: r.times.into_iter().zip(r.values).collect(),
        })
        .collect();
    let q = source.quantile.unwrap_or(0.5);
    let (start_ms, end_ms) = (from as i64 * 1000, (now as i64 + 1) * 1000);
    Ok(classic::family_quantiles(family, q, start_ms, end_ms)
        .into_iter()
        .filter_map(|(groups, buckets)| {
            let value = buckets.value.filter(|v| v.is_finite())?;
            Some((group_labels(&source.by, &groups), value))
        })
        .collect())
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct ScalarRow {
    #[allow(dead_code)]
    series_id: u64,
    groups: Vec<String>,
    delta: u8,
    window_sum: f64,
    last: f64,
    first: f64,
    before: f64,
    n_before: u64,
    #[allow(dead_code)]
    n_window: u64,
    max: f64,
    min: f64,
    avg: f64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct HistogramRow {
    #[allow(dead_code)]
    series_id: u64,
    groups: Vec<String>,
    delta: u8,
    bounds: Vec<f64>,
    window_sum: Vec<u64>,
    last: Vec<u64>,
    before: Vec<u64>,
}

fn bind_times(
    sql: &str,
    binds: &[String],
    client: &Client,
    from: u64,
    to: u64,
    lookback: u64,
) -> clickhouse::query::Query {
    let mut query = client.query(sql);
    for b in binds {
        query = match b.as_str() {
            "{from}" => query.bind(from),
            "{to}" => query.bind(to),
            "{lookback}" => query.bind(lookback),
            other => query.bind(other),
        };
    }
    query.with_setting("max_execution_time", "20")
}

/// Series one metric condition may cover. Reads ask for one more, so that a
/// selector matching more is an evaluation error (the rule says so) rather than
/// a value silently computed from an arbitrary part of the series: otherwise
/// junk series sent under a rule's metric name could push real ones out.
pub const MAX_SERIES: usize = 10_000;
const SERIES_READ_LIMIT: &str = "10001";

fn check_series_count(rows: usize, select: &str) -> anyhow::Result<()> {
    if rows > MAX_SERIES {
        anyhow::bail!(
            "`{select}` matches more than {MAX_SERIES} series: narrow it with label matchers"
        );
    }
    Ok(())
}

fn group_labels(by: &[String], groups: &[String]) -> BTreeMap<String, String> {
    by.iter()
        .zip(groups.iter().skip(1))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A counter series' increase over a window: with delta temporality the sum of
/// its points in the window; cumulative, its last point in the window minus its
/// last point `before` the window, the last point alone when the process
/// restarted (it went down), and last minus first when nothing came before.
pub fn counter_increase(
    delta: bool,
    window_sum: f64,
    first: f64,
    last: f64,
    before: Option<f64>,
) -> f64 {
    match before {
        _ if delta => window_sum,
        Some(before) if last >= before => last - before,
        Some(_) => last,
        None => (last - first).max(0.0),
    }
}

/// A metric's value per group at `now` (epoch seconds).
pub async fn metric_values(
    client: &Client,
    source: &MetricSource,
    select: &str,
    now: u64,
) -> anyhow::Result<BTreeMap<BTreeMap<String, String>, f64>> {
    let selector = Selector::parse(select)?;
    let window = source.window.as_secs().max(1);
    let from = now.saturating_sub(window);
    // Cumulative counters need their last point before the window.
    let lookback = from.saturating_sub(window.clamp(300, 3600));
    let mut out: BTreeMap<BTreeMap<String, String>, f64> = BTreeMap::new();
    if source.function == MetricFn::Quantile {
        let (sql, binds) = histogram_sql(&selector, &source.by);
        let rows: Vec<HistogramRow> = bind_times(&sql, &binds, client, from, now + 1, lookback)
            .fetch_all()
            .await?;
        check_series_count(rows.len(), select)?;
        if rows.is_empty() {
            let times = (from, now, lookback);
            return classic_values(client, source, &selector, select, times).await;
        }
        let mut per_group: BTreeMap<BTreeMap<String, String>, (Vec<f64>, Vec<u64>)> =
            BTreeMap::new();
        for row in rows {
            let counts =
                bucket_counts_in_window(row.delta == 1, &row.window_sum, &row.last, &row.before);
            let entry = per_group
                .entry(group_labels(&source.by, &row.groups))
                .or_insert_with(|| (row.bounds.clone(), vec![0; counts.len()]));
            if entry.0 == row.bounds && entry.1.len() == counts.len() {
                for (total, n) in entry.1.iter_mut().zip(counts) {
                    *total += n;
                }
            }
        }
        let q = source.quantile.unwrap_or(0.5);
        for (labels, (bounds, counts)) in per_group {
            if let Some(v) = estimate(&bounds, &counts, q) {
                out.insert(labels, v);
            }
        }
        return Ok(out);
    }
    let (sql, binds) = scalar_sql(&selector, &source.by);
    let rows: Vec<ScalarRow> = bind_times(&sql, &binds, client, from, now + 1, lookback)
        .fetch_all()
        .await?;
    check_series_count(rows.len(), select)?;
    let mut groups: BTreeMap<BTreeMap<String, String>, Vec<ScalarRow>> = BTreeMap::new();
    for row in rows {
        groups
            .entry(group_labels(&source.by, &row.groups))
            .or_default()
            .push(row);
    }
    for (labels, rows) in groups {
        let increase = |r: &ScalarRow| {
            let before = (r.n_before > 0).then_some(r.before);
            counter_increase(r.delta == 1, r.window_sum, r.first, r.last, before)
        };
        let value = match source.function {
            MetricFn::Increase => rows.iter().map(increase).sum(),
            MetricFn::Rate => rows.iter().map(increase).sum::<f64>() / window as f64,
            MetricFn::Last => rows.iter().map(|r| r.last).sum(),
            MetricFn::Max => rows.iter().map(|r| r.max).fold(f64::MIN, f64::max),
            MetricFn::Min => rows.iter().map(|r| r.min).fold(f64::MAX, f64::min),
            // The mean of the series' means: series scraped alike weigh alike.
            MetricFn::Avg => rows.iter().map(|r| r.avg).sum::<f64>() / rows.len() as f64,
            MetricFn::Quantile => unreachable!("handled above"),
        };
        out.insert(labels, value);
    }
    Ok(out)
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct SourceRow {
    source: String,
    recent: u64,
}

const SILENCE_SQL: &str = "SELECT {source} AS source, toUInt64(countIf(timestamp >= toDateTime(?))) AS recent \
     FROM events WHERE timestamp >= toDateTime(?) AND timestamp < toDateTime(?) \
     AND toDate(timestamp) >= toDate(toDateTime(?)) {event} GROUP BY source HAVING count() > 0";

/// Events per source in the window (0 for a source seen in the lookback only).
pub async fn silence_values(
    client: &Client,
    source: &SilenceSource,
    now: u64,
) -> anyhow::Result<BTreeMap<BTreeMap<String, String>, f64>> {
    let from = now.saturating_sub(source.window.as_secs());
    let lookback = now.saturating_sub(source.lookback.as_secs());
    let sql = SILENCE_SQL
        .replace("{source}", if source.per_source { "source" } else { "''" })
        .replace(
            "{event}",
            if source.event.is_some() {
                "AND event = ?"
            } else {
                ""
            },
        );
    let mut query = client
        .query(&sql)
        .bind(from)
        .bind(lookback)
        .bind(now + 1)
        .bind(lookback);
    if let Some(event) = &source.event {
        query = query.bind(event.as_str());
    }
    let rows: Vec<SourceRow> = query.fetch_all().await?;
    let mut out = BTreeMap::new();
    if !source.per_source {
        // Only what was flowing can fall silent: without any event in the
        // lookback (a fresh install, an event not launched yet) nothing holds.
        if !rows.is_empty() {
            out.insert(
                BTreeMap::new(),
                rows.iter().map(|r| r.recent).sum::<u64>() as f64,
            );
        }
        return Ok(out);
    }
    for row in rows {
        out.insert(
            BTreeMap::from([("source".to_owned(), row.source)]),
            row.recent as f64,
        );
    }
    Ok(out)
}

/// A KPI condition, compared like for like (see `hypercare_kpis::pace`):
/// - only inside the current launch's window, unless the rule says
///   `outside_window: true`;
/// - a day without any event gives no sample (`no_data` is never a trigger);
/// - `baseline_pct` compares today so far with the baseline days up to the same
///   time (the board's baseline);
/// - `value` on a count or a sum, while the day is not over, compares with the
///   threshold scaled to the share of a day's volume reached by now (the
///   board's pace levels), never with a whole day's level.
async fn kpi_sample(
    kpis: &hypercare_kpis::KpiState,
    board: &Board,
    rule: &Rule,
    id: &str,
    now: u64,
) -> anyhow::Result<Option<Sample>> {
    let c = &rule.condition;
    let holds = |value: f64, levels: Option<&KpiNow>| {
        let level = |t: Threshold| match (t, levels) {
            (Threshold::Value(v), _) => Some(v),
            (Threshold::Level(KpiLevel::Target), Some(k)) => Some(k.target),
            (Threshold::Level(KpiLevel::Warning), Some(k)) => Some(k.warning),
            (Threshold::Level(KpiLevel::Critical), Some(k)) => Some(k.critical),
            _ => None,
        };
        match (c.above.and_then(level), c.below.and_then(level)) {
            (Some(t), _) => value > t,
            (_, Some(t)) => value < t,
            _ => false,
        }
    };
    let change = |now: f64, then: f64| (then != 0.0).then(|| (now - then) / then.abs() * 100.0);
    if board.in_window == Some(false) && !c.outside_window {
        return Ok(None);
    }
    let Some(current) = board.kpis.iter().find(|k| k.id == id) else {
        return Ok(None);
    };
    let Some(value) = current.value else {
        return Ok(None);
    };
    let (compared, levels) = match c.compare {
        Compare::Value => match current.pace {
            // At pace: the value against scaled levels, or a number scaled alike.
            Some(pace) => {
                let scaled = KpiNow {
                    target: pace.target,
                    warning: pace.warning,
                    critical: pace.critical,
                    ..current.clone()
                };
                let share = pace.share_of_day;
                let unscaled = |t: Option<Threshold>| match t {
                    Some(Threshold::Value(v)) => Some(Threshold::Value(v * share)),
                    other => other,
                };
                let mut scaled_rule = c.clone();
                scaled_rule.above = unscaled(c.above);
                scaled_rule.below = unscaled(c.below);
                let holds_scaled = match (scaled_rule.above, scaled_rule.below) {
                    (Some(Threshold::Value(t)), _) => value > t,
                    (_, Some(Threshold::Value(t))) => value < t,
                    _ => holds(value, Some(&scaled)),
                };
                return Ok(Some(Sample {
                    labels: BTreeMap::from([("kpi".to_owned(), id.to_owned())]),
                    value,
                    holds: holds_scaled,
                    annotations: BTreeMap::new(),
                }));
            }
            None => (Some(value), Some(current)),
        },
        Compare::BaselinePct => (
            current.baseline.and_then(|b| change(value, b)),
            Some(current),
        ),
        Compare::ChangePct => {
            let over = c.change_over.map_or(0, |d| d.as_secs());
            (
                kpis.value_at(id, now.saturating_sub(over))
                    .await?
                    .and_then(|then| change(value, then)),
                Some(current),
            )
        }
    };
    Ok(compared.map(|v| Sample {
        labels: BTreeMap::from([("kpi".to_owned(), id.to_owned())]),
        value: v,
        holds: holds(v, levels),
        annotations: BTreeMap::new(),
    }))
}

/// Evaluates `rule` at `now`.
pub async fn evaluate(
    client: &Client,
    kpis: &hypercare_kpis::KpiState,
    capacity: &hypercare_capacity::CapacitySettings,
    board: Option<&Board>,
    rule: &Rule,
    now: u64,
) -> anyhow::Result<Vec<Sample>> {
    let c = &rule.condition;
    let metric = match &c.source {
        Source::Metric(metric) => metric,
        Source::Kpi(id) => {
            let Some(board) = board else {
                anyhow::bail!("the KPI board could not be read");
            };
            return Ok(kpi_sample(kpis, board, rule, id, now)
                .await?
                .into_iter()
                .collect());
        }
        Source::Silence(silence) => {
            return Ok(silence_values(client, silence, now)
                .await?
                .into_iter()
                .map(|(labels, value)| Sample {
                    labels,
                    value,
                    holds: value == 0.0,
                    annotations: BTreeMap::new(),
                })
                .collect());
        }
        Source::Slo(alert) => {
            let measured = crate::sli::measure(client, kpis, &alert.slo, now).await?;
            return Ok(crate::burn::sample(alert, &measured).into_iter().collect());
        }
        Source::Capacity(source) => {
            let window = (source.window.as_secs() / 60) as u32;
            let mut samples = Vec::new();
            for service in hypercare_capacity::headroom::services_with_baseline(client).await? {
                let Some(headroom) = hypercare_capacity::headroom::current(
                    client, capacity, &service, window, None, None,
                )
                .await?
                else {
                    continue;
                };
                let value = headroom.headroom_percent;
                samples.push(Sample {
                    labels: BTreeMap::from([("service".to_owned(), service)]),
                    value,
                    holds: match (c.above, c.below) {
                        (Some(Threshold::Value(t)), _) => value > t,
                        (_, Some(Threshold::Value(t))) => value < t,
                        _ => false,
                    },
                    annotations: BTreeMap::new(),
                });
            }
            return Ok(samples);
        }
    };
    let holds = |value: f64, levels: Option<&KpiNow>| {
        let level = |t: Threshold| match (t, levels) {
            (Threshold::Value(v), _) => Some(v),
            (Threshold::Level(KpiLevel::Target), Some(k)) => Some(k.target),
            (Threshold::Level(KpiLevel::Warning), Some(k)) => Some(k.warning),
            (Threshold::Level(KpiLevel::Critical), Some(k)) => Some(k.critical),
            _ => None,
        };
        match (c.above.and_then(level), c.below.and_then(level)) {
            (Some(t), _) => value > t,
            (_, Some(t)) => value < t,
            _ => false,
        }
    };
    let change = |now: f64, then: f64| (then != 0.0).then(|| (now - then) / then.abs() * 100.0);
    let at = |t: u64| {
        let metric = metric.clone();
        async move {
            let values = metric_values(client, &metric, &metric.select, t).await?;
            match &metric.over {
                None => anyhow::Ok(values),
                Some(over) => {
                    let totals = metric_values(client, &metric, over, t).await?;
                    // A ratio of nothing is no data, not 0 % errors.
                    Ok(totals
                        .into_iter()
                        .filter(|(_, total)| *total > 0.0)
                        .map(|(labels, total)| {
                            let part = values.get(&labels).copied().unwrap_or(0.0);
                            (labels, part / total)
                        })
                        .collect())
                }
            }
        }
    };
    let now_values = at(now).await?;
    let values = match c.compare {
        Compare::ChangePct => {
            let then = at(now.saturating_sub(c.change_over.map_or(0, |d| d.as_secs()))).await?;
            now_values
                .into_iter()
                .filter_map(|(labels, v)| {
                    let before = then.get(&labels).copied()?;
                    change(v, before).map(|c| (labels, c))
                })
                .collect()
        }
        _ => now_values,
    };
    Ok(values
        .into_iter()
        .map(|(labels, value)| Sample {
            holds: holds(value, None),
            labels,
            value,
            annotations: BTreeMap::new(),
        })
        .collect())
}

/// Every statement with example values, for the compatibility test.
pub fn catalog() -> Vec<hypercare_storage::catalog::Statement> {
    let selector = Selector::parse(r#"http_requests_total{status=~"5..", route!="/health"}"#)
        .unwrap_or_else(|_| Selector {
            metric: "x".into(),
            matchers: vec![],
        });
    let by = vec!["service".to_owned()];
    // Placeholders are replaced from the template's parts, so that a `?` inside a
    // bound value (a regex) is not taken for the next placeholder.
    let inline = |(sql, binds): (String, Vec<String>)| {
        let mut parts = sql.split('?');
        let mut text = parts.next().unwrap_or_default().to_owned();
        for (part, b) in parts.zip(binds) {
            let literal = match b.as_str() {
                "{from}" => "1795000000".to_owned(),
                "{to}" => "1795000300".to_owned(),
                "{lookback}" => "1794999000".to_owned(),
                other => format!("'{}'", other.replace('\\', "\\\\").replace('\'', "\\'")),
            };
            text.push_str(&literal);
            text.push_str(part);
        }
        text
    };
    let silence = SILENCE_SQL
        .replace("{source}", "source")
        .replace("{event}", "AND event = 'x'")
        .replacen('?', "1795000000", 1)
        .replacen('?', "1794900000", 1)
        .replacen('?', "1795000300", 1)
        .replacen('?', "1794900000", 1);
    vec![
        hypercare_storage::catalog::Statement {
            origin: "alerts: metric (counters, gauges)".into(),
            sql: inline(scalar_sql(&selector, &by)),
        },
        hypercare_storage::catalog::Statement {
            origin: "alerts: metric (histograms)".into(),
            sql: inline(histogram_sql(&selector, &by)),
        },
        hypercare_storage::catalog::Statement {
            origin: "alerts: metric (classic histogram size)".into(),
            sql: inline(classic_sql(&selector, &by, true)),
        },
        hypercare_storage::catalog::Statement {
            origin: "alerts: metric (classic histograms)".into(),
            sql: inline(classic_sql(&selector, &by, false)),
        },
        hypercare_storage::catalog::Statement {
            origin: "alerts: ingest silence".into(),
            sql: silence,
        },
    ]
}
