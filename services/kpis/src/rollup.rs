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

use std::collections::BTreeMap;

use clickhouse::Client;
use hypercare_storage::late::ROLLUP_DELAY_SECS;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::definition::{Aggregation, Filter, Kpi};
use crate::query::{Bind, Sql, bind_all, filter_sql};

/// The `[kpis]` rollup settings.
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

/// What a KPI measures, as a key: a changed filter or aggregation gets new
/// rollups; a changed target or title keeps them.
pub fn measure_key(kpi: &Kpi) -> String {
    #[derive(Serialize)]
    struct Measure<'a> {
        aggregation: Aggregation,
        filter: &'a Filter,
        numerator: &'a Option<Filter>,
        denominator: &'a Option<Filter>,
        property: &'a Option<String>,
        /// `sum` and `avg` store sums of whole units of this many digits.
        #[serde(skip_serializing_if = "Option::is_none")]
        units: Option<u8>,
    }
    let text = serde_json::to_string(&Measure {
        aggregation: kpi.aggregation,
        filter: &kpi.filter,
        numerator: &kpi.numerator,
        denominator: &kpi.denominator,
        property: &kpi.property,
        units: crate::query::units(kpi),
    })
    .unwrap_or_default();
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

/// The pieces of `kpi` per UTC hour over `ranges` (epoch seconds, `[from, to)`),
/// columns `hour, events, denominator, value_sum, value_count, users, values`.
/// Hours without matching events give no row.
pub fn pieces_sql(kpi: &Kpi, ranges: &[(u64, u64)]) -> Sql {
    pieces_sql_from(kpi, ranges, EventsTable::All)
}

/// Where raw events are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventsTable {
    /// `events`, sorted by (event, day, event_id).
    All,
    /// `events_recent`: the last [`RECENT_DAYS`] days, sorted by hour.
    Recent,
}

/// Days of `events_recent` kept (UTC days, today included).
pub const RECENT_DAYS: u64 = 3;

impl EventsTable {
    /// `events_recent` for ranges from the start of yesterday (UTC) on: a day of
    /// margin before its oldest day is dropped.
    pub fn for_range(from: u64, now: u64) -> Self {
        if from >= (now / 86_400).saturating_sub(1) * 86_400 {
            EventsTable::Recent
        } else {
            EventsTable::All
        }
    }

    fn name(self) -> &'static str {
        match self {
            EventsTable::All => "events",
            EventsTable::Recent => "events_recent",
        }
    }
}

/// The condition that `timestamp` is in one of `ranges`, written so that `table`
/// is read by its sorting key.
pub(crate) fn time_condition(ranges: &[(u64, u64)], table: EventsTable) -> Sql {
    let mut sql = Sql::default();
    sql.push("(0");
    for (from, to) in ranges {
        // ClickHouse 18.16 does not derive key ranges of toDate(timestamp) or
        // toStartOfHour(timestamp) from a range of timestamp: the bounds on
        // the sorting key's own expression are written out.
        sql.bind(" OR (timestamp >= toDateTime(?)", Bind::U64(*from))
            .bind(" AND timestamp < toDateTime(?)", Bind::U64(*to));
        match table {
            EventsTable::All => sql
                .bind(
                    " AND toDate(timestamp) >= toDate(toDateTime(?))",
                    Bind::U64(*from),
                )
                .bind(
                    " AND toDate(timestamp) <= toDate(toDateTime(?)))",
                    Bind::U64(to.saturating_sub(1)),
                ),
            EventsTable::Recent => sql
                .bind(
                    " AND toStartOfHour(timestamp) >= toStartOfHour(toDateTime(?))",
                    Bind::U64(*from),
                )
                .bind(
                    " AND toStartOfHour(timestamp) <= toStartOfHour(toDateTime(?)))",
                    Bind::U64(to.saturating_sub(1)),
                ),
        };
    }
    sql.push(")");
    sql
}

/// `event_id, ts, v`: one row per matching event with a value (`value`, or the
/// KPI's numeric property) in `ranges`, copies of an event (retried batches)
/// folded into one, so that sums, averages and percentiles count it once. The
/// first copy received is the event: a copy sent later under the same id by
/// another key does not change it (migration 0500).
pub(crate) fn event_values_sql(kpi: &Kpi, ranges: &[(u64, u64)], table: EventsTable) -> Sql {
    let mut sql = Sql::default();
    let from_table = format!(" FROM {} WHERE ", table.name());
    match &kpi.property {
        None => {
            // `value` is Nullable: events without one are left out, and the
            // column made plain so that aggregates are plain Float64.
            sql.push("SELECT event_id, argMin(timestamp, received_at) AS ts, argMin(assumeNotNull(value), received_at) AS v")
                .push(&from_table)
                .append(time_condition(ranges, table))
                .push(" AND isNotNull(value) AND ")
                .append(filter_sql(&kpi.filter));
        }
        Some(property) => {
            sql.bind(
                "SELECT event_id, argMin(timestamp, received_at) AS ts, argMin(prop_num_values[indexOf(prop_num_keys, ?)], received_at) AS v",
                Bind::Str(property.clone()),
            )
            .push(&from_table)
            .append(time_condition(ranges, table))
            .push(" AND ")
            .append(filter_sql(&kpi.filter))
            .bind(" AND has(prop_num_keys, ?)", Bind::Str(property.clone()));
        }
    }
    sql.push(" GROUP BY event_id");
    sql
}

/// [`pieces_sql`] from a given events table.
pub fn pieces_sql_from(kpi: &Kpi, ranges: &[(u64, u64)], table: EventsTable) -> Sql {
    let mut sql = Sql::default();
    let from_table = format!(" FROM {} WHERE ", table.name());
    const NO_VALUES: &str = "toFloat64(0) AS value_sum, toUInt64(0) AS value_count, ";
    match kpi.aggregation {
        Aggregation::Count | Aggregation::UniqueUsers | Aggregation::Ratio => {
            sql.push("SELECT toUInt32(toStartOfHour(timestamp)) AS hour, ");
            let mut condition = filter_sql(&kpi.filter);
            match kpi.aggregation {
                Aggregation::Count => {
                    sql.push(
                        "toUInt64(uniqExact(event_id)) AS events, toUInt64(0) AS denominator, ",
                    )
                    .push(NO_VALUES)
                    .push("emptyArrayString() AS users, ");
                }
                Aggregation::UniqueUsers => {
                    // `events` is not read for unique users: a plain count will do.
                    sql.push("toUInt64(count()) AS events, toUInt64(0) AS denominator, ")
                        .push(NO_VALUES)
                        .push("groupUniqArrayIf(user_id, user_id != '') AS users, ");
                }
                _ => {
                    let numerator =
                        filter_sql(kpi.numerator.as_ref().unwrap_or(&Filter::default()));
                    let denominator =
                        filter_sql(kpi.denominator.as_ref().unwrap_or(&Filter::default()));
                    sql.push("toUInt64(uniqExactIf(event_id, ")
                        .append(numerator.clone())
                        .push(")) AS events, toUInt64(uniqExactIf(event_id, ")
                        .append(denominator.clone())
                        .push(")) AS denominator, ")
                        .push(NO_VALUES)
                        .push("emptyArrayString() AS users, ");
                    condition
                        .push(" AND (")
                        .append(numerator)
                        .push(" OR ")
                        .append(denominator)
                        .push(")");
                }
            }
            sql.push("emptyArrayFloat64() AS values")
                .push(&from_table)
                .append(time_condition(ranges, table))
                .push(" AND ")
                .append(condition);
        }
        Aggregation::Sum | Aggregation::Avg | Aggregation::Percentile => {
            let sum = match crate::query::units(kpi) {
                Some(decimals) => crate::query::units_sql(decimals),
                None => "v".to_owned(),
            };
            sql.push(&format!(
                "SELECT toUInt32(toStartOfHour(ts)) AS hour, toUInt64(count()) AS events, \
                 toUInt64(0) AS denominator, toFloat64(sum({sum})) AS value_sum, \
                 toUInt64(count()) AS value_count, emptyArrayString() AS users, ",
            ));
            sql.push(if kpi.aggregation == Aggregation::Percentile {
                "groupArray(v) AS values FROM ("
            } else {
                "emptyArrayFloat64() AS values FROM ("
            });
            sql.append(event_values_sql(kpi, ranges, table)).push(")");
        }
    }
    sql.push(" GROUP BY hour");
    sql
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
        .query(COMPUTED_SQL)
        .bind(measure)
        .bind(from)
        .bind(to)
        .fetch_all()
        .await?;
    if computed.is_empty() {
        return Ok(BTreeMap::new());
    }
    let marks: BTreeMap<u32, u64> = client
        .query(MARKS_SQL)
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

pub const COMPUTED_SQL: &str = "SELECT toUInt32(hour), max(computed_ms) FROM kpi_rollups \
     WHERE measure = ? AND hour >= toDateTime(?) AND hour < toDateTime(?) GROUP BY hour";
pub const MARKS_SQL: &str = "SELECT toUInt32(hour), max(marked_ms) FROM event_hours_late \
     WHERE hour >= toDateTime(?) AND hour < toDateTime(?) GROUP BY hour";

/// `hours` (sorted hour starts) as `[from, to)` ranges of consecutive hours.
pub fn ranges(hours: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for hour in hours {
        match out.last_mut() {
            Some((_, to)) if *to == hour => *to += 3600,
            _ => out.push((hour, hour + 3600)),
        }
    }
    out
}

/// The stored pieces of `measure` over `ranges`, same columns as [`pieces_sql`]
/// (the newest computation of each hour).
pub fn stored_sql(measure: &str, ranges: &[(u64, u64)]) -> Sql {
    let mut sql = Sql::default();
    sql.push(
        "SELECT toUInt32(hour) AS hour, events, denominator, value_sum, value_count, users, values \
         FROM kpi_rollups FINAL WHERE ",
    )
    .bind("measure = ? AND (0", Bind::Str(measure.to_owned()));
    for (from, to) in ranges {
        sql.bind(" OR (hour >= toDateTime(?)", Bind::U64(*from))
            .bind(" AND hour < toDateTime(?))", Bind::U64(*to));
    }
    sql.push(")");
    sql
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

fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

/// Computes and stores the rollups of `kpi` for `hours` (UTC hour starts), empty
/// hours included (so that they are not computed again).
pub async fn compute(client: &Client, kpi: &Kpi, hours: &[u64]) -> anyhow::Result<usize> {
    if hours.is_empty() {
        return Ok(0);
    }
    // The computation's time is taken before reading, so that an event marked
    // late while it runs makes the result untrusted.
    let computed_ms = now_ms();
    let measure = measure_key(kpi);
    let table = EventsTable::for_range(hours[0], computed_ms / 1000);
    let sql = pieces_sql_from(kpi, &ranges(hours.iter().copied()), table);
    let pieces: BTreeMap<u64, PieceRow> = bind_all(client.query(&sql.text), &sql.binds)
        .with_setting("max_execution_time", "300")
        .fetch_all::<PieceRow>()
        .await?
        .into_iter()
        .map(|row| (u64::from(row.hour), row))
        .collect();
    let mut insert = client.insert::<RollupRow>("kpi_rollups").await?;
    let mut pieces = pieces;
    for &hour in hours {
        let row = match pieces.remove(&hour) {
            Some(p) => RollupRow {
                measure: measure.clone(),
                hour: hour as u32,
                computed_ms,
                events: p.events,
                denominator: p.denominator,
                value_sum: p.value_sum,
                value_count: p.value_count,
                users: p.users,
                values: p.values,
            },
            None => RollupRow {
                measure: measure.clone(),
                hour: hour as u32,
                computed_ms,
                events: 0,
                denominator: 0,
                value_sum: 0.0,
                value_count: 0,
                users: Vec::new(),
                values: Vec::new(),
            },
        };
        insert.write(&row).await?;
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
    let trusted = trusted_hours(client, &measure_key(kpi), from, to).await?;
    Ok((from..to)
        .step_by(3600)
        .filter(|hour| !trusted.contains_key(hour))
        .collect())
}

/// One pass: brings every KPI's rollups up to date over the last `days` days,
/// one UTC day per statement. Returns the number of hours computed.
pub async fn catch_up(client: &Client, kpis: &[Kpi], days: u64) -> anyhow::Result<usize> {
    let now = now_ms() / 1000;
    let to = (now.saturating_sub(ROLLUP_DELAY_SECS as u64)) / 3600 * 3600;
    let from = (now / 86_400).saturating_sub(days) * 86_400;
    drop_old_recent_days(client, now).await?;
    let mut computed = 0;
    for kpi in kpis {
        let stale = stale_hours(client, kpi, from, to).await?;
        for day in stale.chunk_by(|a, b| a / 86_400 == b / 86_400) {
            computed += compute(client, kpi, day).await?;
        }
    }
    Ok(computed)
}

pub const RECENT_PARTITIONS_SQL: &str = "SELECT DISTINCT partition FROM system.parts \
     WHERE database = currentDatabase() AND table = 'events_recent' AND active";

/// Drops the days of `events_recent` older than [`RECENT_DAYS`].
async fn drop_old_recent_days(client: &Client, now: u64) -> clickhouse::error::Result<()> {
    let oldest_kept = chrono::DateTime::from_timestamp(
        ((now / 86_400).saturating_sub(RECENT_DAYS - 1) * 86_400) as i64,
        0,
    )
    .unwrap_or_default()
    .format("%Y%m%d")
    .to_string()
    .parse::<u32>()
    .unwrap_or(0);
    let partitions: Vec<String> = client.query(RECENT_PARTITIONS_SQL).fetch_all().await?;
    for partition in partitions {
        // Partitions are toYYYYMMDD numbers; anything else is left alone.
        if let Ok(day) = partition.trim_matches('\'').parse::<u32>()
            && day < oldest_kept
        {
            client
                .query(&format!("ALTER TABLE events_recent DROP PARTITION {day}"))
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
    fn consecutive_hours_make_one_range() {
        assert_eq!(
            ranges([0, 3600, 7200, 14_400]),
            vec![(0, 10_800), (14_400, 18_000)]
        );
        assert!(ranges([]).is_empty());
    }

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
}
