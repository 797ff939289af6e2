//! KPI rollups: each KPI's pieces per closed UTC hour, so that a board or a
//! 14-day series reads a few hundred rows instead of millions of events.
//!
//! A *piece* is what an hour contributes to any bucket of whole hours: distinct
//! matching events (and the ratio's denominator), the sum and count of the values,
//! the hour's distinct users, and its values (for percentiles). Buckets combine
//! pieces exactly: counts and sums add, users and values are unioned.
//!
//! Exact answers under retries and late events:
//! - pieces fold copies of an event (same `event_id`) before summing, like the
//!   raw queries do, so retried batches never count twice;
//! - the worker sums an hour only [`ROLLUP_DELAY_SECS`] after it ends, and an event
//!   arriving later marks its hour late (`hypercare_storage::late`); a query
//!   uses an hour's rollup only if it was computed after the hour's last mark, and
//!   reads every other hour (recent ones, late ones) from `events` directly. The
//!   worker recomputes late hours on its next pass.
//!
//! Hours are UTC hours, so rollups serve time zones whose offset is whole hours
//! (nearly all); for others (Asia/Kolkata, ...) queries read `events` only.
//!
//! Several replicas may each run the worker: the computation is idempotent and
//! the newest computation of an hour wins.
//!
//! Data flow: the worker ([`spawn_worker`], on the capability's tasks) reads
//! the current definitions from [`crate::repository`] every
//! `interval_secs`, finds each KPI's stale hours ([`stale_hours`]) and, one UTC
//! day per statement, reads their pieces and inserts them into `kpi_rollups`
//! ([`compute`]). On shutdown it stops between two such inserts, never in one.
//!
//! Its time is ClickHouse's ([`storage_now`]), not the answers' clock: late
//! marks are stamped with the wall clock by `hypercare_storage::late` and
//! `events_recent` is fed by ClickHouse's `now()`, so a rollup's
//! `computed_ms` and the choice of table must be on that same clock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use clickhouse::Client;
use hypercare_runtime::{Cancellation, Clock, SystemClock, Tasks};
use hypercare_storage::late::ROLLUP_DELAY_SECS;
use serde::{Deserialize, Serialize};

use crate::definition::Kpi;
use crate::repository::Definitions;
use crate::sql::{self, EventsTable, Range};

/// The `[kpis.rollups]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RollupSettings {
    /// Whether this replica computes rollups (queries use them either way).
    pub enabled: bool,
    /// Seconds between two passes of the worker.
    pub interval_secs: u64,
    /// How many days back the worker keeps rollups (cover the baseline window).
    pub days: u64,
}

impl Default for RollupSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 30,
            days: 35,
        }
    }
}

/// Now, in milliseconds, on ClickHouse's clock (see the module documentation):
/// the time of rollup computations and of the `events_recent` choice.
pub fn storage_now_ms() -> u64 {
    SystemClock.now_ms()
}

/// [`storage_now_ms`] in seconds.
pub fn storage_now() -> u64 {
    storage_now_ms() / 1000
}

/// What a KPI measures, as a key (see [`Kpi::measure_key`]).
pub fn measure_key(kpi: &Kpi) -> String {
    kpi.measure_key()
}

/// Each hour of `[from, to)` whose stored rollup can be trusted (computed after
/// the hour's last late mark), with the time of that computation.
pub async fn trusted_hours(
    client: &Client,
    measure: &str,
    from: u64,
    to: u64,
) -> clickhouse::error::Result<BTreeMap<u64, u64>> {
    let computed: Vec<(u32, u64)> = client
        .query(sql::COMPUTED_SQL)
        .bind(measure)
        .bind(from)
        .bind(to)
        .fetch_all()
        .await?;
    if computed.is_empty() {
        return Ok(BTreeMap::new());
    }
    let marks: BTreeMap<u32, u64> = client
        .query(sql::MARKS_SQL)
        .bind(from)
        .bind(to)
        .fetch_all::<(u32, u64)>()
        .await?
        .into_iter()
        .collect();
    Ok(computed
        .into_iter()
        .filter(|(hour, computed_ms)| marks.get(hour).is_none_or(|m| computed_ms > m))
        .map(|(hour, computed_ms)| (u64::from(hour), computed_ms))
        .collect())
}

#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize)]
pub struct RollupRow {
    pub measure: String,
    pub hour: u32,
    pub computed_ms: u64,
    pub events: u64,
    pub denominator: u64,
    pub value_sum: f64,
    pub value_count: u64,
    pub users: Vec<String>,
    pub values: Vec<f64>,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct PieceRow {
    hour: u32,
    events: u64,
    denominator: u64,
    value_sum: f64,
    value_count: u64,
    users: Vec<String>,
    values: Vec<f64>,
}

impl RollupRow {
    /// The row of `hour`: its pieces, or an empty hour (stored too, so that it
    /// is not computed again).
    fn of(measure: &str, hour: u64, computed_ms: u64, piece: Option<PieceRow>) -> Self {
        let piece = piece.unwrap_or(PieceRow {
            hour: hour as u32,
            events: 0,
            denominator: 0,
            value_sum: 0.0,
            value_count: 0,
            users: Vec::new(),
            values: Vec::new(),
        });
        RollupRow {
            measure: measure.to_owned(),
            hour: hour as u32,
            computed_ms,
            events: piece.events,
            denominator: piece.denominator,
            value_sum: piece.value_sum,
            value_count: piece.value_count,
            users: piece.users,
            values: piece.values,
        }
    }
}

/// Computes and stores the rollups of `kpi` for `hours` (UTC hour starts), empty
/// hours included (so that they are not computed again): one read, one insert.
pub async fn compute(
    client: &Client,
    kpi: &Kpi,
    hours: &[u64],
) -> clickhouse::error::Result<usize> {
    if hours.is_empty() {
        return Ok(0);
    }
    // The computation's time is taken before reading, so that an event marked
    // late while it runs makes the result untrusted.
    let computed_ms = storage_now_ms();
    let measure = kpi.measure_key();
    let table = EventsTable::for_range(hours[0], computed_ms / 1000);
    let ranges: Vec<Range> = sql::hour_ranges(hours.iter().copied());
    let mut pieces: BTreeMap<u64, PieceRow> = sql::pieces_sql_from(kpi, &ranges, table)
        .query(client)
        .with_setting("max_execution_time", "300")
        .fetch_all::<PieceRow>()
        .await?
        .into_iter()
        .map(|row| (u64::from(row.hour), row))
        .collect();
    let mut insert = client.insert::<RollupRow>("kpi_rollups").await?;
    for &hour in hours {
        insert
            .write(&RollupRow::of(
                &measure,
                hour,
                computed_ms,
                pieces.remove(&hour),
            ))
            .await?;
    }
    insert.end().await?;
    Ok(hours.len())
}

/// The hours of `[from, to)` that `kpi` has no trusted rollup for.
pub async fn stale_hours(
    client: &Client,
    kpi: &Kpi,
    from: u64,
    to: u64,
) -> clickhouse::error::Result<Vec<u64>> {
    let trusted = trusted_hours(client, &kpi.measure_key(), from, to).await?;
    Ok((from..to)
        .step_by(3600)
        .filter(|hour| !trusted.contains_key(hour))
        .collect())
}

/// One pass: brings every KPI's rollups up to date over the last `days` days,
/// one UTC day per statement. Returns the number of hours computed.
pub async fn catch_up(
    client: &Client,
    kpis: &[Kpi],
    days: u64,
) -> clickhouse::error::Result<usize> {
    catch_up_until(client, kpis, days, &Cancellation::new()).await
}

/// [`catch_up`] that stops early, between two days' inserts, once `stop` fires.
pub async fn catch_up_until(
    client: &Client,
    kpis: &[Kpi],
    days: u64,
    stop: &Cancellation,
) -> clickhouse::error::Result<usize> {
    let now = storage_now();
    let to = (now.saturating_sub(ROLLUP_DELAY_SECS as u64)) / 3600 * 3600;
    let from = (now / 86_400).saturating_sub(days) * 86_400;
    drop_old_recent_days(client, now).await?;
    let mut computed = 0;
    for kpi in kpis {
        let stale = stale_hours(client, kpi, from, to).await?;
        for day in stale.chunk_by(|a, b| a / 86_400 == b / 86_400) {
            if stop.is_cancelled() {
                return Ok(computed);
            }
            computed += compute(client, kpi, day).await?;
        }
    }
    Ok(computed)
}

/// Keeps the rollups of the current definitions up to date: a pass now, then
/// one `interval_secs` after each pass ends, until shutdown. `store` runs the
/// rollup statements: a client with the deadlines of background work, longer
/// than an API request's.
pub fn spawn_worker(
    tasks: &Tasks,
    definitions: Arc<Definitions>,
    settings: RollupSettings,
    store: Client,
) {
    tasks.spawn("kpi_rollups", move |cancel| async move {
        let every = Duration::from_secs(settings.interval_secs.max(1));
        while !cancel.is_cancelled() {
            let kpis = definitions.all().await;
            let started = std::time::Instant::now();
            match catch_up_until(&store, &kpis, settings.days, &cancel).await {
                Ok(0) => {}
                Ok(hours) => tracing::info!(
                    hours,
                    seconds = started.elapsed().as_secs_f64(),
                    "KPI rollups brought up to date."
                ),
                Err(error) => tracing::warn!(
                    %error,
                    "Could not compute KPI rollups; retrying on the next pass."
                ),
            }
            tokio::select! {
                () = cancel.cancelled() => {}
                () = tokio::time::sleep(every) => {}
            }
        }
    });
}

/// Drops the days of `events_recent` older than [`sql::RECENT_DAYS`].
async fn drop_old_recent_days(client: &Client, now: u64) -> clickhouse::error::Result<()> {
    let oldest_kept = chrono::DateTime::from_timestamp(
        ((now / 86_400).saturating_sub(sql::RECENT_DAYS - 1) * 86_400) as i64,
        0,
    )
    .unwrap_or_default()
    .format("%Y%m%d")
    .to_string()
    .parse::<u32>()
    .unwrap_or(0);
    let partitions: Vec<String> = client.query(sql::RECENT_PARTITIONS_SQL).fetch_all().await?;
    for partition in partitions {
        // Partitions are toYYYYMMDD numbers; anything else is left alone.
        if let Ok(day) = partition.trim_matches('\'').parse::<u32>()
            && day < oldest_kept
        {
            client
                .query(&sql::drop_recent_day_sql(day))
                .execute()
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::parse;

    #[test]
    fn the_measure_changes_with_the_filter_not_with_the_target() {
        let text = |event: &str, target: u32| {
            format!(
                "kpis:\n  - {{id: a, title: A, aggregation: count, filter: {{event: {event}}}, direction: higher_is_better, target: {target}, warning: 1, critical: 1}}\n"
            )
        };
        let a = parse(&text("x", 5)).unwrap().remove(0);
        let b = parse(&text("x", 9)).unwrap().remove(0);
        let c = parse(&text("y", 5)).unwrap().remove(0);
        assert_eq!(measure_key(&a), measure_key(&b));
        assert_ne!(measure_key(&a), measure_key(&c));
    }

    #[test]
    fn an_hour_without_events_is_stored_empty() {
        let row = RollupRow::of("m", 7200, 5, None);
        assert_eq!((row.hour, row.events, row.computed_ms), (7200, 0, 5));
        assert!(row.users.is_empty() && row.values.is_empty());
    }
}
