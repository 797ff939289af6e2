//! The traffic the advice is made from, per 15-minute bucket (UTC start):
//! [`events_per_bucket`] (events received, copies of an id counted once with
//! `uniq`, bounded memory over weeks of ids) and [`requests_per_bucket`] (the
//! increase of the request counter, summed over its series; a cumulative
//! series' increase is the difference of its last values of two buckets in a
//! row, a drop is a restart, and delta points are summed).

use std::collections::BTreeMap;

use hypercare_storage::ReadOnly;
use hypercare_storage::catalog::Statement;
use serde::Deserialize;

use super::rank::SLOT_SECS;

/// Stopped by ClickHouse past this (503 to the client): weeks of events.
pub const DEADLINE_SECS: &str = "30";

/// The counter whose increase is the request traffic (as `capacity.request_counter`).
pub const REQUEST_COUNTER: &str = "http_requests_total";

/// Binds: from and to (seconds).
pub const EVENTS_PER_BUCKET_SQL: &str = "SELECT toUInt32(intDiv(toUInt32(timestamp), 900) * 900) AS bucket, \
     toFloat64(uniq(event_id)) AS n FROM events \
     WHERE timestamp >= toDateTime(?) AND timestamp < toDateTime(?) \
     GROUP BY bucket ORDER BY bucket";

/// Binds: metric name, from and to (seconds).
pub const COUNTER_PER_BUCKET_SQL: &str = "SELECT series_id, \
     toUInt32(intDiv(toUInt32(timestamp), 900) * 900) AS bucket, \
     argMax(value, toUInt64(timestamp) * 1000 + timestamp_ms) AS last, \
     sum(value) AS total, max(temporality = 'delta') AS delta \
     FROM metric_points WHERE name = ? AND kind = 'counter' \
     AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?) \
     GROUP BY series_id, bucket ORDER BY series_id, bucket";

#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
struct EventBucket {
    bucket: u32,
    n: f64,
}

#[derive(Debug, Clone, PartialEq, clickhouse::Row, Deserialize)]
pub struct CounterBucket {
    pub series_id: u64,
    pub bucket: u32,
    pub last: f64,
    pub total: f64,
    pub delta: u8,
}

pub async fn events_per_bucket(
    store: &clickhouse::Client,
    from: u64,
    to: u64,
) -> clickhouse::error::Result<Vec<(u64, f64)>> {
    let rows: Vec<EventBucket> = store
        .query(EVENTS_PER_BUCKET_SQL)
        .bind(from)
        .bind(to)
        .read_only()
        .with_setting("max_execution_time", DEADLINE_SECS)
        .fetch_all()
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (u64::from(r.bucket), r.n))
        .collect())
}

/// Requests per bucket of `[from, to)`; the bucket before `from` is read too,
/// so that the first bucket's increase is known.
pub async fn requests_per_bucket(
    store: &clickhouse::Client,
    from: u64,
    to: u64,
) -> clickhouse::error::Result<Vec<(u64, f64)>> {
    let rows: Vec<CounterBucket> = store
        .query(COUNTER_PER_BUCKET_SQL)
        .bind(REQUEST_COUNTER)
        .bind(from.saturating_sub(SLOT_SECS))
        .bind(to)
        .read_only()
        .with_setting("max_execution_time", DEADLINE_SECS)
        .fetch_all()
        .await?;
    Ok(increases(&rows)
        .into_iter()
        .filter(|(bucket, _)| *bucket >= from)
        .collect())
}

/// The summed increase per bucket of counter series (rows ordered by series,
/// bucket). A cumulative series' first bucket has no increase known.
pub fn increases(rows: &[CounterBucket]) -> Vec<(u64, f64)> {
    let mut sums: BTreeMap<u64, f64> = BTreeMap::new();
    let mut previous: Option<&CounterBucket> = None;
    for row in rows {
        let bucket = u64::from(row.bucket);
        if row.delta != 0 {
            *sums.entry(bucket).or_default() += row.total.max(0.0);
        } else if let Some(before) = previous.filter(|p| p.series_id == row.series_id) {
            let increase = if row.last >= before.last {
                row.last - before.last
            } else {
                row.last
            };
            *sums.entry(bucket).or_default() += increase;
        }
        previous = Some(row);
    }
    sums.into_iter().collect()
}

pub fn catalog() -> Vec<Statement> {
    let events = EVENTS_PER_BUCKET_SQL
        .replacen('?', "1795300000", 1)
        .replacen('?', "1795400000", 1);
    let counter = COUNTER_PER_BUCKET_SQL
        .replacen('?', "'http_requests_total'", 1)
        .replacen('?', "1795300000", 1)
        .replacen('?', "1795400000", 1);
    vec![
        Statement {
            origin: "investigate: events per 15 minutes".into(),
            sql: events,
        },
        Statement {
            origin: "investigate: request counter per series and 15 minutes".into(),
            sql: counter,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(series_id: u64, bucket: u32, last: f64, delta: u8) -> CounterBucket {
        CounterBucket {
            series_id,
            bucket,
            last,
            total: last,
            delta,
        }
    }

    #[test]
    fn increases_sum_series_and_survive_a_restart() {
        let rows = [
            row(1, 0, 100.0, 0),
            row(1, 900, 160.0, 0),
            row(1, 1800, 20.0, 0), // restarted: counted 20 since
            row(2, 900, 5.0, 0),   // first bucket of series 2: unknown
            row(2, 1800, 15.0, 0),
            row(3, 1800, 7.0, 1), // delta: summed as is
        ];
        assert_eq!(
            increases(&rows),
            vec![(900, 60.0), (1800, 20.0 + 10.0 + 7.0)]
        );
    }
}
