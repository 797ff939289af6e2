//! Percentiles of a histogram metric over a time window, whichever protocol its
//! points came by: `/v1/metrics`, OTLP (explicit or exponential buckets, delta or
//! cumulative) or Prometheus remote write all land in the same bucket model.
//!
//! For each series the window's distribution is: with delta temporality, the sum
//! of its points in the window; with cumulative temporality, its last point in
//! the window minus its last point before the window (looked for up to
//! [`LOOKBACK_SECS`] back; with none, or after a reset, the last point alone).
//! Copies of a point (retried batches) are folded before anything is summed.
//! Series are then added bucket by bucket, and the quantile is interpolated
//! linearly inside its bucket by Hypercare's one percentile rule (docs/kpis.md):
//! rank 1 + q (n - 1), the rank KPIs interpolate exact values at, with a
//! bucket's observations taken as spread evenly up to its upper bound.
//!
//! A name with no native histogram series is then read as a classic Prometheus
//! histogram family ([`crate::classic`]): `x` or `x_bucket` reads the
//! `x_bucket{le}` counter series of `[from, to]` (`to` itself included, as a
//! Prometheus range is) and answers what `histogram_quantile(q, sum by (le)
//! (rate(x_bucket[to - from])))` answers at `to`, PromQL's rank and
//! extrapolation included, so a team's dashboards and Hypercare agree.

use crate::classic;
use hypercare_storage::ReadOnly;
use hypercare_storage::catalog::Statement;
use serde::{Deserialize, Serialize};

/// How far before the window a cumulative series' previous point is looked for.
pub const LOOKBACK_SECS: i64 = 24 * 3600;

/// Binds, in order: `from` (three times), lookback start, `to`, name (twice:
/// itself and as the Prometheus name of OTLP metrics, see `metric_names`); then one
/// `AND label_values[indexOf(label_keys, ?)] = ?` pair per label filter goes
/// where `{labels}` is.
const SERIES_SQL: &str = "SELECT series_id, \
     toUInt8(any(temporality) = 'delta') AS delta, any(hist_bounds) AS bounds, \
     sumForEachIf(hist_counts, timestamp >= toDateTime(?)) AS window_sum, \
     argMaxIf(hist_counts, (timestamp, timestamp_ms), timestamp >= toDateTime(?)) AS last, \
     argMaxIf(hist_counts, (timestamp, timestamp_ms), timestamp < toDateTime(?)) AS before \
     FROM ( \
       SELECT series_id, timestamp, timestamp_ms, any(temporality) AS temporality, \
         any(hist_bounds) AS hist_bounds, any(hist_counts) AS hist_counts \
       FROM metric_points \
       WHERE kind = 'histogram' AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?) \
         AND name IN (SELECT ? UNION ALL SELECT name FROM metric_names WHERE prom_name = ?) {labels} \
       GROUP BY series_id, timestamp, timestamp_ms \
     ) \
     GROUP BY series_id HAVING notEmpty(last) \
     ORDER BY series_id LIMIT 10001";

/// Binds, in order: `from`, `to` (twice), the `_bucket` name (twice); label filters go
/// where `{labels}` is. Counts the raw rows before any is read.
const CLASSIC_COUNT_SQL: &str = "SELECT toUInt64(count()) AS points, \
     toUInt64(uniqExact(series_id)) AS series FROM metric_points \
     WHERE timestamp >= toDateTime(?) \
       AND (timestamp < toDateTime(?) OR (timestamp = toDateTime(?) AND timestamp_ms = 0)) \
       AND name IN (SELECT ? UNION ALL SELECT name FROM metric_names WHERE prom_name = ?) {labels}";

/// A classic family's `_bucket` series in the window, one row per series with
/// its points (copies folded), its `le` and its other labels (keys then values).
/// Binds as [`CLASSIC_COUNT_SQL`].
const CLASSIC_SQL: &str = "SELECT series_id, any(le) AS le, any(rest) AS groups, \
     groupArray(t) AS times, groupArray(value) AS values FROM ( \
       SELECT series_id, timestamp, timestamp_ms, \
         toInt64(toUInt32(timestamp)) * 1000 + timestamp_ms AS t, \
         any(label_values[indexOf(label_keys, 'le')]) AS le, \
         any(arrayConcat(arrayFilter(k -> k != 'le', label_keys), \
           arrayFilter((v, k) -> k != 'le', label_values, label_keys))) AS rest, \
         any(value) AS value \
       FROM metric_points \
       WHERE timestamp >= toDateTime(?) \
         AND (timestamp < toDateTime(?) OR (timestamp = toDateTime(?) AND timestamp_ms = 0)) \
         AND name IN (SELECT ? UNION ALL SELECT name FROM metric_names WHERE prom_name = ?) {labels} \
       GROUP BY series_id, timestamp, timestamp_ms \
     ) GROUP BY series_id ORDER BY series_id";

/// Points one classic-histogram answer may read (about 16 bytes each): counted
/// first, refused above ([`QuantileError::TooManyPoints`]).
pub const MAX_POINTS: u64 = 1_000_000;

#[derive(Debug, clickhouse::Row, Deserialize)]
struct ClassicCount {
    points: u64,
    series: u64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct ClassicRow {
    #[allow(dead_code)]
    series_id: u64,
    le: String,
    groups: Vec<String>,
    times: Vec<i64>,
    values: Vec<f64>,
}

/// Series one answer may add up; more is refused ([`QuantileError::TooManySeries`])
/// rather than answered from an arbitrary part of them.
pub const MAX_SERIES: usize = 10_000;

const LABEL_FILTER: &str = " AND label_values[indexOf(label_keys, ?)] = ?";

#[derive(Debug, clickhouse::Row, Deserialize)]
struct SeriesRow {
    #[allow(dead_code)]
    series_id: u64,
    delta: u8,
    bounds: Vec<f64>,
    window_sum: Vec<u64>,
    last: Vec<u64>,
    before: Vec<u64>,
}

/// The answer of `GET /v1/metrics/quantile`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Quantile {
    pub name: String,
    /// `histogram` (native: `/v1/metrics`, OTLP) or `classic_histogram` (the
    /// `_bucket{le}` series of a Prometheus family).
    pub kind: &'static str,
    pub q: f64,
    pub from: String,
    pub to: String,
    /// The estimate; `null` when no observation fell in the window.
    pub value: Option<f64>,
    /// Observations in the window, over all series.
    pub count: u64,
    /// Series added up (a classic family: label sets without `le`).
    pub series: usize,
    /// Finite upper bounds.
    pub bounds: Vec<f64>,
    /// Per bucket, over all series; one more than `bounds`. A classic family's
    /// are the increases seen between each series' first and last point (the
    /// estimate itself uses PromQL's extrapolation of them).
    pub counts: Vec<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum QuantileError {
    #[error("the ClickHouse query failed: {0}")]
    Query(#[from] clickhouse::error::Error),
    #[error(
        "the series of this metric have different bucket bounds ({0:?} and {1:?}); filter by labels to pick series that share them"
    )]
    MixedBounds(Vec<f64>, Vec<f64>),
    #[error(
        "more than {MAX_SERIES} series match: narrow the request with label.<key>=<value> filters"
    )]
    TooManySeries,
    #[error(
        "more than {MAX_POINTS} points of this classic histogram fall in the window: narrow `from`..`to` or filter by labels"
    )]
    TooManyPoints,
}

pub struct Request<'a> {
    pub name: &'a str,
    pub q: f64,
    pub from: i64,
    pub to: i64,
    pub labels: &'a [(String, String)],
}

pub async fn quantile(
    client: &clickhouse::Client,
    request: &Request<'_>,
) -> Result<Quantile, QuantileError> {
    let filters = LABEL_FILTER.repeat(request.labels.len());
    let sql = SERIES_SQL.replace("{labels}", &filters);
    let mut query = client
        .query(&sql)
        .bind(request.from)
        .bind(request.from)
        .bind(request.from)
        .bind((request.from - LOOKBACK_SECS).max(0))
        .bind(request.to)
        .bind(request.name)
        .bind(request.name);
    for (key, value) in request.labels {
        query = query.bind(key.as_str()).bind(value.as_str());
    }
    let rows: Vec<SeriesRow> = query.read_only().fetch_all().await?;
    if rows.len() > MAX_SERIES {
        return Err(QuantileError::TooManySeries);
    }

    let mut bounds: Option<Vec<f64>> = None;
    let mut counts: Vec<u64> = Vec::new();
    for row in &rows {
        let window = window_counts(row);
        match &bounds {
            None => {
                bounds = Some(row.bounds.clone());
                counts = window;
            }
            Some(b) if *b == row.bounds && counts.len() == window.len() => {
                for (total, n) in counts.iter_mut().zip(window) {
                    *total += n;
                }
            }
            Some(b) => return Err(QuantileError::MixedBounds(b.clone(), row.bounds.clone())),
        }
    }
    let Some(bounds) = bounds else {
        return classic_quantile(client, request).await;
    };
    Ok(Quantile {
        name: request.name.to_owned(),
        kind: "histogram",
        q: request.q,
        from: crate::summary::rfc3339(request.from),
        to: crate::summary::rfc3339(request.to),
        value: estimate(&bounds, &counts, request.q),
        count: counts.iter().sum(),
        series: rows.len(),
        bounds,
        counts,
    })
}

/// The classic family of `request.name` (see the module docs); an answer with
/// no series and a `null` value when there is none either.
async fn classic_quantile(
    client: &clickhouse::Client,
    request: &Request<'_>,
) -> Result<Quantile, QuantileError> {
    let name = classic::bucket_name(request.name);
    let filters = LABEL_FILTER.repeat(request.labels.len());
    let bind = |sql: &str| {
        let mut query = client
            .query(&sql.replace("{labels}", &filters))
            .bind(request.from)
            .bind(request.to)
            .bind(request.to)
            .bind(name.as_str())
            .bind(name.as_str());
        for (key, value) in request.labels {
            query = query.bind(key.as_str()).bind(value.as_str());
        }
        query
    };
    let size: ClassicCount = bind(CLASSIC_COUNT_SQL).read_only().fetch_one().await?;
    if size.series > MAX_SERIES as u64 {
        return Err(QuantileError::TooManySeries);
    }
    if size.points > MAX_POINTS {
        return Err(QuantileError::TooManyPoints);
    }
    let rows: Vec<ClassicRow> = bind(CLASSIC_SQL).read_only().fetch_all().await?;
    let groups: std::collections::BTreeSet<&Vec<String>> = rows
        .iter()
        .filter(|r| classic::parse_le(&r.le).is_some())
        .map(|r| &r.groups)
        .collect();
    let series = groups.len();
    let family: Vec<classic::BucketSeries> = rows
        .iter()
        .map(|r| classic::BucketSeries {
            // `sum by (le)`: one group for the whole answer.
            group: Vec::new(),
            le: r.le.clone(),
            points: r
                .times
                .iter()
                .copied()
                .zip(r.values.iter().copied())
                .collect(),
        })
        .collect();
    let answer =
        classic::family_quantiles(family, request.q, request.from * 1000, request.to * 1000)
            .remove(&Vec::new())
            .unwrap_or_default();
    let bounds: Vec<f64> = answer
        .bounds
        .iter()
        .copied()
        .filter(|b| b.is_finite())
        .collect();
    // Cumulative observed increases to per-bucket counts.
    let mut counts = Vec::with_capacity(answer.observed.len());
    let mut below = 0.0_f64;
    for &cumulative in &answer.observed {
        counts.push((cumulative - below).max(0.0).round() as u64);
        below = below.max(cumulative);
    }
    if answer.bounds.last().is_some_and(|b| b.is_finite()) {
        counts.push(0);
    }
    Ok(Quantile {
        name: request.name.to_owned(),
        // A name nothing was sent under answers as before, an empty histogram.
        kind: if series == 0 {
            "histogram"
        } else {
            "classic_histogram"
        },
        q: request.q,
        from: crate::summary::rfc3339(request.from),
        to: crate::summary::rfc3339(request.to),
        value: answer.value.filter(|v| v.is_finite()),
        count: counts.iter().sum(),
        series,
        bounds,
        counts,
    })
}

fn window_counts(row: &SeriesRow) -> Vec<u64> {
    bucket_counts_in_window(row.delta == 1, &row.window_sum, &row.last, &row.before)
}

/// A histogram series' bucket counts over a window: with delta temporality the
/// sum of its points in the window (`window_sum`); with cumulative temporality
/// its last point in the window minus its last point before (`before`), or the
/// last point alone when there is none before or the process restarted.
pub fn bucket_counts_in_window(
    delta: bool,
    window_sum: &[u64],
    last: &[u64],
    before: &[u64],
) -> Vec<u64> {
    if delta {
        return window_sum.to_vec();
    }
    let comparable = before.len() == last.len() && before.iter().zip(last).all(|(b, l)| b <= l);
    if comparable {
        last.iter().zip(before).map(|(l, b)| l - b).collect()
    } else {
        last.to_vec()
    }
}

/// Linear interpolation inside the bucket holding rank 1 + q (n - 1): the
/// percentile rule of exact values (numpy's `linear`, `hypercare_kpis`'s
/// `percentile`) applied to a bucket's observations taken as evenly spread, the
/// k-th of c at lower + (upper - lower) k / c. So observations at the bounds of
/// one-wide buckets (1..20 ms) give the exact answer (p95 = 19.05 ms), where
/// `histogram_quantile`'s rank q n gives 19. The first bucket starts at 0 when
/// its bound is positive; a rank in the last (+Inf) bucket answers the last
/// finite bound, as `histogram_quantile` does.
pub fn estimate(bounds: &[f64], counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 || counts.len() != bounds.len() + 1 {
        return None;
    }
    let rank = 1.0 + q.clamp(0.0, 1.0) * (total - 1) as f64;
    let mut seen = 0u64;
    for (i, &count) in counts.iter().enumerate() {
        if count > 0 && (seen + count) as f64 >= rank {
            if i == bounds.len() {
                return bounds.last().copied();
            }
            let upper = bounds[i];
            let lower = if i == 0 {
                if upper > 0.0 { 0.0 } else { upper }
            } else {
                bounds[i - 1]
            };
            let within = (rank - seen as f64) / count as f64;
            return Some(lower + (upper - lower) * within.clamp(0.0, 1.0));
        }
        seen += count;
    }
    bounds.last().copied()
}

/// The query with example parameters, for the engine compatibility test.
pub fn catalog() -> Vec<Statement> {
    let sql = SERIES_SQL
        .replace("{labels}", LABEL_FILTER)
        .replacen('?', "1795300000", 3)
        .replacen('?', "1795200000", 1)
        .replacen('?', "1795400000", 1)
        .replacen('?', "'latency'", 2)
        .replacen('?', "'service'", 1)
        .replacen('?', "'checkout'", 1);
    let classic = |sql: &str| {
        sql.replace("{labels}", LABEL_FILTER)
            .replacen('?', "1795300000", 1)
            .replacen('?', "1795400000", 2)
            .replacen('?', "'latency_bucket'", 2)
            .replacen('?', "'service'", 1)
            .replacen('?', "'checkout'", 1)
    };
    vec![
        Statement {
            origin: "ingest: histogram quantile".into(),
            sql,
        },
        Statement {
            origin: "ingest: classic histogram size".into(),
            sql: classic(CLASSIC_COUNT_SQL),
        },
        Statement {
            origin: "ingest: classic histogram buckets".into(),
            sql: classic(CLASSIC_SQL),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_inside_the_bucket_at_the_rank_of_the_percentile_rule() {
        // 101 observations: 50 in (0,1], 51 in (1,2]. Rank 1 + q 100.
        let bounds = [1.0, 2.0];
        let counts = [50, 51, 0];
        // Rank 51: the first of (1, 2]'s 51 observations.
        assert_eq!(estimate(&bounds, &counts, 0.5), Some(1.0 + 1.0 / 51.0));
        // Rank 26: the 26th of (0, 1]'s 50.
        assert_eq!(estimate(&bounds, &counts, 0.25), Some(26.0 / 50.0));
        assert_eq!(estimate(&bounds, &counts, 1.0), Some(2.0));
        // Above the last bound: the last finite bound.
        assert_eq!(estimate(&bounds, &[0, 0, 10], 0.9), Some(2.0));
        assert_eq!(estimate(&bounds, &[0, 0, 0], 0.9), None);
    }

    #[test]
    fn one_observation_per_unit_bucket_gives_the_exact_percentile() {
        // 1..20 ms, each at the upper bound of its own bucket: p95 = 19.05 as
        // exact values give (h = 19 x 0.95 = 18.05 between 19 and 20).
        let bounds: Vec<f64> = (1..=20).map(f64::from).collect();
        let mut counts = vec![1u64; 20];
        counts.push(0);
        let p95 = estimate(&bounds, &counts, 0.95).unwrap();
        assert!((p95 - 19.05).abs() < 1e-9, "{p95}");
        let p50 = estimate(&bounds, &counts, 0.5).unwrap();
        assert!((p50 - 10.5).abs() < 1e-9, "{p50}");
    }
}
