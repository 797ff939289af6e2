//! A KPI compiled to ClickHouse SQL, per time bucket, exact under retries.
//!
//! Every value from a definition or a request is a bound parameter (`?`); the
//! statement's text comes only from this file. Counts use `uniqExact(event_id)`
//! and sums, averages and percentiles first fold copies of an event by id, so a
//! retried batch never changes a number, merged by ClickHouse or not. Queries run
//! with a time and memory limit.

use hypercare_storage::ReadOnly;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use clickhouse::Client;

use crate::definition::{Aggregation, Filter, Grain, Kpi, Operand, PropertyMatch, round_to};
use crate::rollup;

/// `[from, to)` in epoch seconds.
type Range = (u64, u64);

/// Limits every KPI query runs under.
pub const MAX_EXECUTION_SECS: &str = "10";
pub const MAX_MEMORY_BYTES: &str = "4000000000";

#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Str(String),
    U64(u64),
    F64(f64),
}

/// SQL with its parameters in order.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    pub text: String,
    pub binds: Vec<Bind>,
}

impl Sql {
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    pub(crate) fn bind(&mut self, text: &str, value: Bind) -> &mut Self {
        self.text.push_str(text);
        self.binds.push(value);
        self
    }

    pub(crate) fn append(&mut self, other: Sql) -> &mut Self {
        self.text.push_str(&other.text);
        self.binds.extend(other.binds);
        self
    }

    /// The statement with its parameters written in, for the compatibility test.
    pub fn inline(&self) -> String {
        let mut text = self.text.clone();
        for bind in &self.binds {
            let literal = match bind {
                Bind::Str(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
                Bind::U64(n) => n.to_string(),
                Bind::F64(x) => x.to_string(),
            };
            text = text.replacen('?', &literal, 1);
        }
        text
    }
}

pub(crate) fn filter_sql(filter: &Filter) -> Sql {
    let mut sql = Sql::default();
    sql.push("(1");
    if let Some(events) = &filter.event {
        let names = events.names();
        sql.push(" AND event IN (");
        for (i, name) in names.iter().enumerate() {
            sql.bind(
                if i == 0 { "?" } else { ", ?" },
                Bind::Str((*name).to_owned()),
            );
        }
        sql.push(")");
    }
    if let Some(source) = &filter.source {
        sql.bind(" AND source = ?", Bind::Str(source.clone()));
    }
    if let Some(release) = &filter.release {
        sql.bind(" AND release = ?", Bind::Str(release.clone()));
    }
    for (key, value) in &filter.properties {
        // Definitions are checked before they are stored; one that no longer
        // parses matches nothing rather than everything.
        let Ok(PropertyMatch::All(conditions)) = PropertyMatch::parse(value) else {
            sql.push(" AND 0");
            continue;
        };
        for (op, operand) in conditions {
            let (keys, values) = match &operand {
                Operand::Str(_) | Operand::Strs(_) => ("prop_str_keys", "prop_str_values"),
                Operand::Num(_) | Operand::Nums(_) => ("prop_num_keys", "prop_num_values"),
                Operand::Bool(_) | Operand::Bools(_) => ("prop_bool_keys", "prop_bool_values"),
            };
            // An event without the property matches no condition on it, `!=` included.
            sql.bind(&format!(" AND has({keys}, ?)"), Bind::Str(key.clone()))
                .bind(
                    &format!(" AND {values}[indexOf({keys}, ?)] {} ", op.sql()),
                    Bind::Str(key.clone()),
                );
            let list: Vec<Bind> = match operand {
                Operand::Str(s) => vec![Bind::Str(s)],
                Operand::Num(x) => vec![Bind::F64(x)],
                Operand::Bool(b) => vec![Bind::U64(u64::from(b))],
                Operand::Strs(v) => v.into_iter().map(Bind::Str).collect(),
                Operand::Nums(v) => v.into_iter().map(Bind::F64).collect(),
                Operand::Bools(v) => v.into_iter().map(|b| Bind::U64(u64::from(b))).collect(),
            };
            if op == crate::definition::Op::In {
                sql.push("(");
                for (i, bind) in list.into_iter().enumerate() {
                    sql.bind(if i == 0 { "?" } else { ", ?" }, bind);
                }
                sql.push(")");
            } else {
                for bind in list {
                    sql.bind("?", bind);
                }
            }
        }
    }
    sql.push(")");
    sql
}

/// Digits of the whole units that `sum` and `avg` add values in (see
/// [`Kpi::decimals`]); `None` for the other aggregations.
pub(crate) fn units(kpi: &Kpi) -> Option<u8> {
    match kpi.aggregation {
        Aggregation::Sum | Aggregation::Avg => Some(kpi.decimals()),
        _ => None,
    }
}

/// `v` in whole units of `decimals` digits, rounded half up: each value is taken
/// at the KPI's precision, so sums of units are exact integers in Float64 (up
/// to 2^53) whatever the order of addition, with rollups or without.
pub(crate) fn units_sql(decimals: u8) -> String {
    format!("floor(v * {} + 0.5)", 10u64.pow(u32::from(decimals)))
}

/// The percentile rule ([`crate::definition::percentile`]) over `sorted`, a
/// sorted Array(Float64) column: h = (n - 1) p, interpolated between the
/// elements at ⌊h⌋ and ⌊h⌋ + 1 (1-based in SQL). Written with arrays rather
/// than `quantileExactInclusive`, which ClickHouse 18.16 lacks.
pub fn percentile_sql(p: f64, sorted: &str) -> String {
    let h = format!("(greatest(toFloat64(length({sorted})) - 1, 0) * {p})");
    let low = format!("(toUInt64(floor({h})) + 1)");
    format!(
        "if(empty({sorted}), nan, arrayElement({sorted}, {low}) + ({h} - floor({h})) * \
         (arrayElement({sorted}, least({low} + 1, length({sorted}))) - arrayElement({sorted}, {low})))"
    )
}

/// `SELECT bucket, a, b ... GROUP BY bucket` over `ranges` (`[from, to)` in
/// epoch seconds), from `events` only: `a` is the value (the numerator for a
/// ratio, the sum of units for `sum` and `avg`), `b` the ratio's denominator or
/// the number of values.
pub fn compile(kpi: &Kpi, grain: Grain, tz: &str, ranges: &[Range]) -> Sql {
    let bucket = match grain {
        Grain::Hour => "toStartOfHour",
        Grain::Day => "toStartOfDay",
    };
    let mut sql = Sql::default();
    let all = rollup::EventsTable::All;
    match kpi.aggregation {
        Aggregation::Count | Aggregation::UniqueUsers | Aggregation::Ratio => {
            sql.bind(
                &format!("SELECT toUInt32({bucket}(timestamp, ?)) AS bucket, "),
                Bind::Str(tz.to_owned()),
            );
            let mut condition = filter_sql(&kpi.filter);
            match kpi.aggregation {
                Aggregation::Count => {
                    sql.push("toFloat64(uniqExact(event_id)) AS a, toFloat64(0) AS b");
                }
                Aggregation::UniqueUsers => {
                    sql.push(
                        "toFloat64(uniqExactIf(user_id, user_id != '')) AS a, toFloat64(0) AS b",
                    );
                }
                _ => {
                    let numerator =
                        filter_sql(kpi.numerator.as_ref().unwrap_or(&Filter::default()));
                    let denominator =
                        filter_sql(kpi.denominator.as_ref().unwrap_or(&Filter::default()));
                    sql.push("toFloat64(uniqExactIf(event_id, ")
                        .append(numerator.clone())
                        .push(")) AS a, toFloat64(uniqExactIf(event_id, ")
                        .append(denominator.clone())
                        .push(")) AS b");
                    condition
                        .push(" AND (")
                        .append(numerator)
                        .push(" OR ")
                        .append(denominator)
                        .push(")");
                }
            }
            sql.push(" FROM events WHERE ")
                .append(rollup::time_condition(ranges, all))
                .push(" AND ")
                .append(condition);
            sql.push(" GROUP BY bucket ORDER BY bucket");
        }
        Aggregation::Sum | Aggregation::Avg => {
            let units = units_sql(units(kpi).unwrap_or(2));
            sql.bind(
                &format!("SELECT toUInt32({bucket}(ts, ?)) AS bucket, "),
                Bind::Str(tz.to_owned()),
            )
            .push(&format!(
                "toFloat64(sum({units})) AS a, toFloat64(count()) AS b FROM ("
            ));
            sql.append(rollup::event_values_sql(kpi, ranges, all))
                .push(") GROUP BY bucket ORDER BY bucket");
        }
        Aggregation::Percentile => {
            sql.push(&format!(
                "SELECT bucket, toFloat64({}) AS a, b FROM (",
                percentile_sql(kpi.p.unwrap_or(0.5), "s")
            ))
            .bind(
                &format!("SELECT toUInt32({bucket}(ts, ?)) AS bucket, "),
                Bind::Str(tz.to_owned()),
            )
            .push("arraySort(groupArray(v)) AS s, toFloat64(count()) AS b FROM (")
            .append(rollup::event_values_sql(kpi, ranges, all))
            .push(") GROUP BY bucket) ORDER BY bucket");
        }
    }
    sql
}

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

/// `SELECT bucket, a, b` like [`compile`] over `ranges` (`[from, to)` pairs, in
/// order), from the rollups of the hours in `trusted` and from `events` for the rest.
pub fn compile_with_rollups(
    kpi: &Kpi,
    grain: Grain,
    tz: &str,
    ranges: &[(u64, u64)],
    trusted: &BTreeSet<u64>,
) -> Sql {
    let bucket = match grain {
        Grain::Hour => "toStartOfHour",
        Grain::Day => "toStartOfDay",
    };
    let (a, b) = match kpi.aggregation {
        Aggregation::Count => ("sum(events)", "0"),
        Aggregation::UniqueUsers => ("uniqExactArray(users)", "0"),
        Aggregation::Ratio => ("sum(events)", "sum(denominator)"),
        // Sums of whole units: [`fetch`] divides, for raw and rolled-up hours alike.
        Aggregation::Sum | Aggregation::Avg => ("sum(value_sum)", "sum(value_count)"),
        Aggregation::Percentile => ("arraySort(groupArrayArray(values))", "sum(value_count)"),
    };
    let percentile = kpi.aggregation == Aggregation::Percentile;
    let mut sql = Sql::default();
    if percentile {
        sql.push(&format!(
            "SELECT bucket, toFloat64({}) AS a, b FROM (",
            percentile_sql(kpi.p.unwrap_or(0.5), "s")
        ));
    }
    sql.bind(
        &format!(
            "SELECT toUInt32({bucket}(toDateTime(hour), ?)) AS bucket, {} AS {}, toFloat64({b}) AS b FROM (",
            if percentile { a.to_owned() } else { format!("toFloat64({a})") },
            if percentile { "s" } else { "a" },
        ),
        Bind::Str(tz.to_owned()),
    );
    let mut stored: Vec<u64> = Vec::new();
    let mut raw: Vec<(u64, u64)> = Vec::new();
    for &(from, to) in ranges {
        let inside: Vec<u64> = trusted
            .range(from..to)
            .copied()
            .filter(|h| h + 3600 <= to)
            .collect();
        raw.extend(uncovered(from, to, &inside));
        stored.extend(inside);
    }
    if !stored.is_empty() {
        sql.append(rollup::stored_sql(
            &rollup::measure_key(kpi),
            &rollup::ranges(stored),
        ));
        if !raw.is_empty() {
            sql.push(" UNION ALL ");
        }
    }
    // Recent hours (the usual case: today's last hours) come from
    // `events_recent`, which is sorted by hour; older ones (late events) from
    // `events`. The wall clock, not the KPI clock: the copy is fed by ClickHouse's `now()`.
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    let (recent, old): (Vec<Range>, Vec<Range>) = raw.iter().partition(|(from, _)| {
        rollup::EventsTable::for_range(*from, now) == rollup::EventsTable::Recent
    });
    for (i, (ranges, table)) in [
        (old, rollup::EventsTable::All),
        (recent, rollup::EventsTable::Recent),
    ]
    .into_iter()
    .filter(|(r, _)| !r.is_empty())
    .enumerate()
    {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        sql.append(rollup::pieces_sql_from(kpi, &ranges, table));
    }
    sql.push(") GROUP BY bucket");
    if percentile {
        sql.push(")");
    }
    sql.push(" ORDER BY bucket");
    sql
}

/// The parts of `[from, to)` outside the hours `covered` (sorted hour starts).
fn uncovered(from: u64, to: u64, covered: &[u64]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut cursor = from;
    for &hour in covered {
        if cursor < hour {
            out.push((cursor, hour));
        }
        cursor = cursor.max(hour + 3600);
    }
    if cursor < to {
        out.push((cursor, to));
    }
    out
}

/// Whether local hours in `tz` are UTC hours over `[from, to)`, so that hourly
/// rollups add up to its local hours and days.
fn whole_hour_offsets(tz: Tz, from: u64, to: u64) -> bool {
    use chrono::Offset;
    let offset_ok = |secs: u64| {
        tz.timestamp_opt(secs as i64, 0)
            .single()
            .is_some_and(|t| t.offset().fix().local_minus_utc() % 3600 == 0)
    };
    offset_ok(from) && offset_ok(to.saturating_sub(1))
}

pub fn bind_all(mut query: clickhouse::query::Query, binds: &[Bind]) -> clickhouse::query::Query {
    for bind in binds {
        query = match bind {
            Bind::Str(s) => query.bind(s.as_str()),
            Bind::U64(n) => query.bind(*n),
            Bind::F64(x) => query.bind(*x),
        };
    }
    query
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
        return fetch(client, kpi, &compile(kpi, grain, tz, &ranges)).await;
    }
    let measure = rollup::measure_key(kpi);
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
            &compile_with_rollups(kpi, grain, tz, &todo, &trusted),
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
    let sql = days_with_data_sql(days);
    let query = bind_all(client.query(&sql.text), &sql.binds)
        .with_setting("max_execution_time", MAX_EXECUTION_SECS);
    let found: Vec<u32> = query.read_only().fetch_all().await.map_err(|e| {
        if e.to_string().contains("Code: 159") {
            QueryError::TooSlow
        } else {
            QueryError::ClickHouse(e)
        }
    })?;
    Ok(found.into_iter().map(u64::from).collect())
}

/// `SELECT day` for each `(day, range)` with an event in the range.
pub fn days_with_data_sql(days: &[(u64, Range)]) -> Sql {
    let mut sql = Sql::default();
    for (i, (day, range)) in days.iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        sql.bind(
            "SELECT toUInt32(?) AS day FROM (SELECT 1 FROM events WHERE ",
            Bind::U64(*day),
        )
        .append(rollup::time_condition(&[*range], rollup::EventsTable::All))
        .push(" LIMIT 1)");
    }
    sql
}

async fn fetch(
    client: &Client,
    kpi: &Kpi,
    sql: &Sql,
) -> Result<BTreeMap<u64, Option<f64>>, QueryError> {
    let query = bind_all(client.query(&sql.text), &sql.binds)
        .with_setting("max_execution_time", MAX_EXECUTION_SECS)
        .with_setting("max_memory_usage", MAX_MEMORY_BYTES);
    let rows: Vec<BucketRow> = query.read_only().fetch_all().await.map_err(|e| {
        if e.to_string().contains("Code: 159") {
            QueryError::TooSlow
        } else {
            QueryError::ClickHouse(e)
        }
    })?;
    Ok(rows
        .into_iter()
        .map(|row| (u64::from(row.bucket), value_of(kpi, row.a, row.b)))
        .collect())
}

/// A bucket's answer from its `a` and `b` (see [`compile`]): the only place a
/// value is finished, so that every answer (series, days, board, alerts) is
/// the same number, rounded to the KPI's precision.
pub fn value_of(kpi: &Kpi, a: f64, b: f64) -> Option<f64> {
    let unit = units(kpi).map_or(1.0, |d| 10f64.powi(i32::from(d)));
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
pub fn empty_is_zero(aggregation: Aggregation) -> bool {
    matches!(
        aggregation,
        Aggregation::Count | Aggregation::UniqueUsers | Aggregation::Sum
    )
}

/// The start (epoch seconds) of local day `date` in `tz`.
pub fn day_start(date: NaiveDate, tz: Tz) -> u64 {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    let start = tz
        .from_local_datetime(&midnight)
        .earliest()
        .unwrap_or_else(|| tz.from_utc_datetime(&midnight));
    u64::try_from(start.timestamp()).unwrap_or(0)
}

/// Every bucket start in `[from, to)`, so that series have no holes.
pub fn buckets(grain: Grain, tz: Tz, from: u64, to: u64) -> Vec<u64> {
    let mut out = Vec::new();
    match grain {
        Grain::Day => {
            let local = |secs: u64| {
                tz.timestamp_opt(secs as i64, 0)
                    .single()
                    .map(|t| t.date_naive())
                    .unwrap_or_default()
            };
            let mut date = local(from);
            loop {
                let start = day_start(date, tz);
                if start >= to {
                    break;
                }
                out.push(start);
                match date.succ_opt() {
                    Some(next) => date = next,
                    None => break,
                }
            }
        }
        Grain::Hour => {
            // Local hours are whole hours apart in absolute time; the first one
            // starts at the local hour boundary at or before `from`.
            let offset = tz
                .timestamp_opt(from as i64, 0)
                .single()
                .map(|t| {
                    use chrono::Offset;
                    i64::from(t.offset().fix().local_minus_utc())
                })
                .unwrap_or(0);
            let local = from as i64 + offset;
            let mut start = (local - local.rem_euclid(3600) - offset).max(0) as u64;
            while start < to {
                out.push(start);
                start += 3600;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::parse;

    #[test]
    fn definitions_become_bound_parameters_not_sql() {
        let text = "kpis:\n  - {id: a, title: A, aggregation: count, filter: {event: \"x'; DROP TABLE events; --\", properties: {plan: pro}}, direction: higher_is_better, target: 1, warning: 1, critical: 1}\n";
        let kpi = parse(text).unwrap().remove(0);
        let sql = compile(&kpi, Grain::Day, "Europe/Paris", &[(1, 2)]);
        assert!(!sql.text.contains("DROP"), "{}", sql.text);
        assert!(
            sql.binds
                .contains(&Bind::Str("x'; DROP TABLE events; --".into()))
        );
        assert_eq!(sql.text.matches('?').count(), sql.binds.len());
    }

    #[test]
    fn numbers_booleans_and_comparisons_read_their_own_property_columns() {
        let text = r#"kpis:
  - id: a
    title: A
    aggregation: count
    filter: {properties: {plan: pro, amount: {">=": 100, "<": 500}, first: true, tier: {in: [1, 2]}, country: {"!=": FR}}}
    direction: higher_is_better
    target: 1
    warning: 1
    critical: 1
"#;
        let kpi = parse(text).unwrap().remove(0);
        let sql = compile(&kpi, Grain::Day, "UTC", &[(1, 2)]);
        let inline = sql.inline();
        assert!(
            inline.contains("prop_num_values[indexOf(prop_num_keys, 'amount')] >= 100"),
            "{inline}"
        );
        assert!(
            inline.contains("prop_num_values[indexOf(prop_num_keys, 'amount')] < 500"),
            "{inline}"
        );
        assert!(
            inline.contains("prop_bool_values[indexOf(prop_bool_keys, 'first')] = 1"),
            "{inline}"
        );
        assert!(
            inline.contains("prop_num_values[indexOf(prop_num_keys, 'tier')] IN (1, 2)"),
            "{inline}"
        );
        assert!(
            inline.contains("prop_str_values[indexOf(prop_str_keys, 'country')] != 'FR'"),
            "{inline}"
        );
        assert!(inline.contains("has(prop_str_keys, 'plan')"), "{inline}");
        assert_eq!(sql.text.matches('?').count(), sql.binds.len());
    }

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
    fn hour_buckets_follow_the_local_hour_and_days_the_local_midnight() {
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        // 2026-11-22T00:00:00Z is 05:30 in Kolkata: local hours start at :30 UTC,
        // the first one at 05:00 local (23:30Z) holding `from`.
        let hours = buckets(Grain::Hour, kolkata, 1_795_305_600, 1_795_305_600 + 7200);
        assert_eq!(hours, vec![1_795_303_800, 1_795_307_400, 1_795_311_000]);
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let days = buckets(Grain::Day, paris, 1_795_302_000, 1_795_302_000 + 2 * 86_400);
        assert_eq!(days, vec![1_795_302_000, 1_795_388_400]);
    }
}
