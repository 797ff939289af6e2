//! Reading a KPI's values per time bucket, exact under retries: the runner
//! behind every answer (board, series, D+N days, alert conditions).
//!
//! Data flow: [`run`] asks [`crate::rollup::trusted_hours`] which hours have a
//! rollup it may use, serves the buckets made only of such hours from the
//! [`BucketCache`] when it can, and runs one statement of [`crate::sql`] for
//! the rest (stored rollups for trusted hours, `events` or `events_recent` for
//! the others). [`value_of`] finishes every value, so that every answer is the
//! same number. Queries run with a time and memory limit; one past its time is
//! [`QueryError::TooSlow`].

use hypercare_storage::ReadOnly;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono_tz::Tz;
use clickhouse::Client;

use crate::calendar::{buckets, whole_hour_offsets};
use crate::definition::{Aggregation, Grain, Kpi, round_to};
use crate::rollup;
use crate::sql::{self, MAX_EXECUTION_SECS, MAX_MEMORY_BYTES, Range, Sql};

/// One bucket's `a` and `b` (see [`sql::compile`]).
#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct BucketRow {
    bucket: u32,
    a: f64,
    b: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(
        "the KPI query took longer than {MAX_EXECUTION_SECS} s and was stopped; narrow the time range or the KPI's filter"
    )]
    TooSlow,
    #[error("the KPI query failed in ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
}

impl QueryError {
    /// ClickHouse's "timeout exceeded" (code 159) is the query's own deadline.
    fn from_clickhouse(error: clickhouse::error::Error) -> Self {
        if error.to_string().contains("Code: 159") {
            QueryError::TooSlow
        } else {
            QueryError::ClickHouse(error)
        }
    }
}

/// Values of buckets made only of trusted rollup hours. Such a value changes
/// only when one of its hours is computed again, so the key holds the newest
/// computation time of its hours; a late event makes an hour untrusted, and
/// the bucket is computed afresh.
#[derive(Default)]
pub struct BucketCache(std::sync::Mutex<HashMap<CacheKey, Option<f64>>>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    kpi: String,
    tz: String,
    from: u64,
    to: u64,
    computed_ms: u64,
}

/// Far more than a board and its series need; the cache is dropped when full.
const CACHE_ENTRIES: usize = 200_000;

impl BucketCache {
    fn get(&self, key: &CacheKey) -> Option<Option<f64>> {
        self.0.lock().ok()?.get(key).copied()
    }

    fn put(&self, key: CacheKey, value: Option<f64>) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= CACHE_ENTRIES {
                map.clear();
            }
            map.insert(key, value);
        }
    }
}

/// The KPI's value per bucket start (epoch seconds) over `ranges` (`[from, to)`,
/// sorted, disjoint): a bucket holds the parts of the ranges inside it, so a
/// set of day prefixes (each day up to the same time) gives each day's value up
/// to that time. Buckets without data are absent.
pub async fn run(
    client: &Client,
    cache: &BucketCache,
    kpi: &Kpi,
    grain: Grain,
    tz: &str,
    ranges: &[Range],
) -> Result<BTreeMap<u64, Option<f64>>, QueryError> {
    let ranges: Vec<Range> = ranges.iter().copied().filter(|(f, t)| f < t).collect();
    let (Some(&(from, _)), Some(&(_, to))) = (ranges.first(), ranges.last()) else {
        return Ok(BTreeMap::new());
    };
    let zone: Tz = tz.parse().unwrap_or(chrono_tz::UTC);
    if !whole_hour_offsets(zone, from, to) {
        return fetch(client, kpi, &sql::compile(kpi, grain, tz, &ranges)).await;
    }
    let measure = kpi.measure_key();
    let trusted = rollup::trusted_hours(
        client,
        &measure,
        from.div_ceil(3600) * 3600,
        to / 3600 * 3600,
    )
    .await?;
    let identity = format!("{measure}/{:?}/{}/{:?}", kpi.p, kpi.scale, kpi.decimals());
    let mut out = BTreeMap::new();
    let mut todo: Vec<(u64, u64)> = Vec::new();
    let mut cacheable: BTreeMap<u64, CacheKey> = BTreeMap::new();
    // A bucket made of several pieces (not the case of day prefixes) is not cached.
    let mut pieces: BTreeMap<u64, usize> = BTreeMap::new();
    let mut parts: Vec<(u64, u64, u64)> = Vec::new();
    for &(from, to) in &ranges {
        let starts = buckets(grain, zone, from, to);
        for (i, &start) in starts.iter().enumerate() {
            let (lo, hi) = (
                start.max(from),
                starts.get(i + 1).copied().unwrap_or(to).min(to),
            );
            *pieces.entry(start).or_default() += 1;
            parts.push((start, lo, hi));
        }
    }
    for (start, lo, hi) in parts {
        let hours: Vec<u64> = (lo..hi).step_by(3600).collect();
        let whole = lo % 3600 == 0 && hi % 3600 == 0 && !hours.is_empty();
        let computed = hours
            .iter()
            .map(|h| trusted.get(h).copied())
            .collect::<Option<Vec<u64>>>();
        if let (true, Some(computed), Some(1)) = (whole, computed, pieces.get(&start)) {
            let key = CacheKey {
                kpi: identity.clone(),
                tz: tz.to_owned(),
                from: lo,
                to: hi,
                computed_ms: computed.into_iter().max().unwrap_or(0),
            };
            if let Some(value) = cache.get(&key) {
                out.insert(start, value);
                continue;
            }
            cacheable.insert(start, key);
        }
        match todo.last_mut() {
            Some((_, end)) if *end == lo => *end = hi,
            _ => todo.push((lo, hi)),
        }
    }
    if !todo.is_empty() {
        let trusted: BTreeSet<u64> = trusted.keys().copied().collect();
        let computed = fetch(
            client,
            kpi,
            &sql::compile_with_rollups(kpi, grain, tz, &todo, &trusted, rollup::storage_now()),
        )
        .await?;
        for (bucket, value) in computed {
            if let Some(key) = cacheable.remove(&bucket) {
                cache.put(key, value);
            }
            out.insert(bucket, value);
        }
    }
    Ok(out)
}

/// The start of each local day in `days` (`[from, to)` ranges, one per day)
/// that holds at least one event of any kind: a day without any is `no_data`,
/// whatever its KPIs would say (no events at all is a pipeline matter, not a
/// business one). One statement; each day stops at its first event.
pub async fn days_with_data(
    client: &Client,
    days: &[(u64, Range)],
) -> Result<BTreeSet<u64>, QueryError> {
    if days.is_empty() {
        return Ok(BTreeSet::new());
    }
    let query = sql::days_with_data_sql(days)
        .query(client)
        .with_setting("max_execution_time", MAX_EXECUTION_SECS);
    let found: Vec<u32> = query
        .read_only()
        .fetch_all()
        .await
        .map_err(QueryError::from_clickhouse)?;
    Ok(found.into_iter().map(u64::from).collect())
}

async fn fetch(
    client: &Client,
    kpi: &Kpi,
    sql: &Sql,
) -> Result<BTreeMap<u64, Option<f64>>, QueryError> {
    let query = sql
        .query(client)
        .with_setting("max_execution_time", MAX_EXECUTION_SECS)
        .with_setting("max_memory_usage", MAX_MEMORY_BYTES);
    let rows: Vec<BucketRow> = query
        .read_only()
        .fetch_all()
        .await
        .map_err(QueryError::from_clickhouse)?;
    Ok(rows
        .into_iter()
        .map(|row| (u64::from(row.bucket), value_of(kpi, row.a, row.b)))
        .collect())
}

/// A bucket's answer from its `a` and `b` (see [`compile`]): the only place a
/// value is finished, so that every answer (series, days, board, alerts) is
/// the same number, rounded to the KPI's precision.
pub fn value_of(kpi: &Kpi, a: f64, b: f64) -> Option<f64> {
    let unit = kpi.units().map_or(1.0, |d| 10f64.powi(i32::from(d)));
    let value = match kpi.aggregation {
        Aggregation::Ratio if b == 0.0 => None,
        Aggregation::Ratio => Some(a / b * kpi.scale),
        Aggregation::Avg | Aggregation::Percentile if b == 0.0 => None,
        Aggregation::Avg => Some(a / b / unit * kpi.scale),
        Aggregation::Sum => Some(a / unit * kpi.scale),
        _ if a.is_nan() => None,
        _ => Some(a * kpi.scale),
    };
    value
        .filter(|v| v.is_finite())
        .map(|v| round_to(v, kpi.decimals()))
}

/// Whether an empty bucket means 0 (counts and sums) or "no data" (averages,
/// percentiles, ratios of nothing).
/// Every `grain` bucket of `[from, to)` in `tz` with its value from `values`:
/// an empty bucket is 0 for counts and sums ([`empty_is_zero`]) and `None`
/// otherwise. The series route and the published values both answer this.
pub fn fill_gaps(
    kpi: &Kpi,
    grain: Grain,
    tz: chrono_tz::Tz,
    from: u64,
    to: u64,
    values: &BTreeMap<u64, Option<f64>>,
) -> Vec<(u64, Option<f64>)> {
    buckets(grain, tz, from, to)
        .into_iter()
        .map(|start| {
            let value = match values.get(&start) {
                Some(v) => *v,
                None if empty_is_zero(kpi.aggregation) => Some(0.0),
                None => None,
            };
            (start, value)
        })
        .collect()
}

pub fn empty_is_zero(aggregation: Aggregation) -> bool {
    matches!(
        aggregation,
        Aggregation::Count | Aggregation::UniqueUsers | Aggregation::Sum
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::parse;

    #[test]
    fn sums_are_finished_in_whole_units_and_rounded_to_the_precision() {
        let text = "kpis:\n  - {id: a, title: A, aggregation: sum, direction: higher_is_better, target: 1, warning: 1, critical: 1}\n";
        let mut kpi = parse(text).unwrap().remove(0);
        // 7054610 cents, however they were added.
        assert_eq!(value_of(&kpi, 7_054_610.0, 3.0), Some(70546.1));
        kpi.aggregation = Aggregation::Avg;
        assert_eq!(value_of(&kpi, 1000.0, 3.0), Some(3.33));
        assert_eq!(value_of(&kpi, 0.0, 0.0), None);
        kpi.decimals = Some(0);
        kpi.aggregation = Aggregation::Sum;
        assert_eq!(value_of(&kpi, 7.0, 1.0), Some(7.0));
    }

    #[test]
    fn an_empty_bucket_is_zero_only_for_counts_and_sums() {
        assert!(empty_is_zero(Aggregation::Count));
        assert!(empty_is_zero(Aggregation::Sum));
        assert!(!empty_is_zero(Aggregation::Avg));
        assert!(!empty_is_zero(Aggregation::Ratio));
        assert!(!empty_is_zero(Aggregation::Percentile));
    }
}
