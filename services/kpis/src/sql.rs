//! Every SQL statement of the KPI engine, and [`catalog`], which lists them with
//! example parameters for the compatibility test (ClickHouse 18.16 and 26.x).
//!
//! Text only: this module builds statements and runs none. Every value from a
//! definition or a request is a bound parameter (`?`); the statement's text
//! comes only from this file. Counts use `uniqExact(event_id)` and sums,
//! averages and percentiles first fold copies of an event by id, so a retried
//! batch never changes a number, merged by ClickHouse or not.
//!
//! Who runs what: [`crate::query`] the bucket reads, [`crate::rollup`] the
//! pieces and their bookkeeping, [`crate::repository`] the definitions and
//! [`crate::launch`] the launches.

use std::collections::BTreeSet;

use hypercare_storage::catalog::Statement;

use crate::definition::{Aggregation, Filter, Grain, Kpi, Op, Operand, PropertyMatch};

/// `[from, to)` in epoch seconds.
pub type Range = (u64, u64);

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

    /// A query of this statement on `client`, its parameters bound.
    pub fn query(&self, client: &clickhouse::Client) -> clickhouse::query::Query {
        let mut query = client.query(&self.text);
        for bind in &self.binds {
            query = match bind {
                Bind::Str(s) => query.bind(s.as_str()),
                Bind::U64(n) => query.bind(*n),
                Bind::F64(x) => query.bind(*x),
            };
        }
        query
    }
}

// --- Definitions and launches ---------------------------------------------

/// The current version of every KPI.
pub const LATEST_DEFINITIONS: &str = "SELECT kpi_id, version, definition, source, at_ms, actor \
     FROM kpi_definitions WHERE (kpi_id, version) IN \
     (SELECT kpi_id, max(version) FROM kpi_definitions GROUP BY kpi_id) ORDER BY kpi_id";

/// Every version of one KPI, oldest first. Binds: the KPI id.
pub const DEFINITION_HISTORY: &str = "SELECT kpi_id, version, definition, source, at_ms, actor \
     FROM kpi_definitions WHERE kpi_id = ? ORDER BY version";

/// Every launch, newest first (the first is the current one).
pub const LAUNCHES: &str = "SELECT launch_id, name, release, d0, d0_secs, tz, window_days, \
     baseline_days, stages, created_ms, actor FROM launches ORDER BY created_ms DESC";

/// The current launch: the one declared last.
pub const CURRENT_LAUNCH: &str = "SELECT launch_id, name, release, d0, d0_secs, tz, \
     window_days, baseline_days, stages, created_ms, actor FROM launches \
     ORDER BY created_ms DESC LIMIT 1";

/// One launch. Binds: its id.
pub const LAUNCH_BY_ID: &str = "SELECT launch_id, name, release, d0, d0_secs, tz, \
     window_days, baseline_days, stages, created_ms, actor FROM launches \
     WHERE launch_id = ? LIMIT 1";

// --- Events ----------------------------------------------------------------

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
    /// margin before its oldest day is dropped. `now` is ClickHouse's time (the
    /// copy is fed by its `now()`), see [`crate::rollup::storage_now`].
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
            if op == Op::In {
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

/// The condition that `timestamp` is in one of `ranges`, written so that `table`
/// is read by its sorting key.
pub fn time_condition(ranges: &[Range], table: EventsTable) -> Sql {
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
pub(crate) fn event_values_sql(kpi: &Kpi, ranges: &[Range], table: EventsTable) -> Sql {
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

/// A ratio's two columns, `cast(distinct numerator events) AS names.0,
/// cast(distinct denominator events) AS names.1`, and the condition on the
/// events they read (the KPI's filter, and either side): the one place the
/// ratio is written, for the raw queries and the rollup pieces alike.
pub fn ratio_sql(kpi: &Kpi, cast: &str, names: (&str, &str)) -> (Sql, Sql) {
    let numerator = filter_sql(kpi.numerator.as_ref().unwrap_or(&Filter::default()));
    let denominator = filter_sql(kpi.denominator.as_ref().unwrap_or(&Filter::default()));
    let mut columns = Sql::default();
    columns
        .push(&format!("{cast}(uniqExactIf(event_id, "))
        .append(numerator.clone())
        .push(&format!(")) AS {}, {cast}(uniqExactIf(event_id, ", names.0))
        .append(denominator.clone())
        .push(&format!(")) AS {}", names.1));
    let mut condition = filter_sql(&kpi.filter);
    condition
        .push(" AND (")
        .append(numerator)
        .push(" OR ")
        .append(denominator)
        .push(")");
    (columns, condition)
}

fn bucket_fn(grain: Grain) -> &'static str {
    match grain {
        Grain::Hour => "toStartOfHour",
        Grain::Day => "toStartOfDay",
    }
}

/// `SELECT bucket, a, b ... GROUP BY bucket` over `ranges` (`[from, to)` in
/// epoch seconds), from `events` only: `a` is the value (the numerator for a
/// ratio, the sum of units for `sum` and `avg`), `b` the ratio's denominator or
/// the number of values.
pub fn compile(kpi: &Kpi, grain: Grain, tz: &str, ranges: &[Range]) -> Sql {
    let bucket = bucket_fn(grain);
    let mut sql = Sql::default();
    let all = EventsTable::All;
    match kpi.aggregation {
        Aggregation::Count | Aggregation::UniqueUsers | Aggregation::Ratio => {
            sql.bind(
                &format!("SELECT toUInt32({bucket}(timestamp, ?)) AS bucket, "),
                Bind::Str(tz.to_owned()),
            );
            let condition = match kpi.aggregation {
                Aggregation::Count => {
                    sql.push("toFloat64(uniqExact(event_id)) AS a, toFloat64(0) AS b");
                    filter_sql(&kpi.filter)
                }
                Aggregation::UniqueUsers => {
                    sql.push(
                        "toFloat64(uniqExactIf(user_id, user_id != '')) AS a, toFloat64(0) AS b",
                    );
                    filter_sql(&kpi.filter)
                }
                _ => {
                    let (columns, condition) = ratio_sql(kpi, "toFloat64", ("a", "b"));
                    sql.append(columns);
                    condition
                }
            };
            sql.push(" FROM events WHERE ")
                .append(time_condition(ranges, all))
                .push(" AND ")
                .append(condition);
            sql.push(" GROUP BY bucket ORDER BY bucket");
        }
        Aggregation::Sum | Aggregation::Avg => {
            let units = units_sql(kpi.units().unwrap_or(2));
            sql.bind(
                &format!("SELECT toUInt32({bucket}(ts, ?)) AS bucket, "),
                Bind::Str(tz.to_owned()),
            )
            .push(&format!(
                "toFloat64(sum({units})) AS a, toFloat64(count()) AS b FROM ("
            ));
            sql.append(event_values_sql(kpi, ranges, all))
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
            .append(event_values_sql(kpi, ranges, all))
            .push(") GROUP BY bucket) ORDER BY bucket");
        }
    }
    sql
}

/// `SELECT bucket, a, b` like [`compile`] over `ranges` (`[from, to)` pairs, in
/// order), from the rollups of the hours in `trusted` and from the events for
/// the rest: recent hours (the usual case: today's last hours) from
/// `events_recent`, sorted by hour, older ones (late events) from `events`.
/// `now` is ClickHouse's time (see [`EventsTable::for_range`]).
pub fn compile_with_rollups(
    kpi: &Kpi,
    grain: Grain,
    tz: &str,
    ranges: &[Range],
    trusted: &BTreeSet<u64>,
    now: u64,
) -> Sql {
    let bucket = bucket_fn(grain);
    let (a, b) = match kpi.aggregation {
        Aggregation::Count => ("sum(events)", "0"),
        Aggregation::UniqueUsers => ("uniqExactArray(users)", "0"),
        Aggregation::Ratio => ("sum(events)", "sum(denominator)"),
        // Sums of whole units: the runner divides, for raw and rolled-up hours alike.
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
    let mut raw: Vec<Range> = Vec::new();
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
        sql.append(stored_sql(&kpi.measure_key(), &hour_ranges(stored)));
        if !raw.is_empty() {
            sql.push(" UNION ALL ");
        }
    }
    let (recent, old): (Vec<Range>, Vec<Range>) = raw
        .iter()
        .partition(|(from, _)| EventsTable::for_range(*from, now) == EventsTable::Recent);
    for (i, (ranges, table)) in [(old, EventsTable::All), (recent, EventsTable::Recent)]
        .into_iter()
        .filter(|(r, _)| !r.is_empty())
        .enumerate()
    {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        sql.append(pieces_sql_from(kpi, &ranges, table));
    }
    sql.push(") GROUP BY bucket");
    if percentile {
        sql.push(")");
    }
    sql.push(" ORDER BY bucket");
    sql
}

/// The parts of `[from, to)` outside the hours `covered` (sorted hour starts).
fn uncovered(from: u64, to: u64, covered: &[u64]) -> Vec<Range> {
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

/// `hours` (sorted hour starts) as `[from, to)` ranges of consecutive hours.
pub fn hour_ranges(hours: impl IntoIterator<Item = u64>) -> Vec<Range> {
    let mut out: Vec<Range> = Vec::new();
    for hour in hours {
        match out.last_mut() {
            Some((_, to)) if *to == hour => *to += 3600,
            _ => out.push((hour, hour + 3600)),
        }
    }
    out
}

/// `SELECT day` for each `(day, range)` with an event in the range; each day
/// stops at its first event.
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
        .append(time_condition(&[*range], EventsTable::All))
        .push(" LIMIT 1)");
    }
    sql
}

// --- Rollups -----------------------------------------------------------------

/// The pieces of `kpi` per UTC hour over `ranges` (epoch seconds, `[from, to)`),
/// columns `hour, events, denominator, value_sum, value_count, users, values`.
/// Hours without matching events give no row.
pub fn pieces_sql(kpi: &Kpi, ranges: &[Range]) -> Sql {
    pieces_sql_from(kpi, ranges, EventsTable::All)
}

/// [`pieces_sql`] from a given events table.
pub fn pieces_sql_from(kpi: &Kpi, ranges: &[Range], table: EventsTable) -> Sql {
    let mut sql = Sql::default();
    let from_table = format!(" FROM {} WHERE ", table.name());
    const NO_VALUES: &str = "toFloat64(0) AS value_sum, toUInt64(0) AS value_count, ";
    match kpi.aggregation {
        Aggregation::Count | Aggregation::UniqueUsers | Aggregation::Ratio => {
            sql.push("SELECT toUInt32(toStartOfHour(timestamp)) AS hour, ");
            let condition = match kpi.aggregation {
                Aggregation::Count => {
                    sql.push(
                        "toUInt64(uniqExact(event_id)) AS events, toUInt64(0) AS denominator, ",
                    )
                    .push(NO_VALUES)
                    .push("emptyArrayString() AS users, ");
                    filter_sql(&kpi.filter)
                }
                Aggregation::UniqueUsers => {
                    // `events` is not read for unique users: a plain count will do.
                    sql.push("toUInt64(count()) AS events, toUInt64(0) AS denominator, ")
                        .push(NO_VALUES)
                        .push("groupUniqArrayIf(user_id, user_id != '') AS users, ");
                    filter_sql(&kpi.filter)
                }
                _ => {
                    let (columns, condition) =
                        ratio_sql(kpi, "toUInt64", ("events", "denominator"));
                    sql.append(columns)
                        .push(", ")
                        .push(NO_VALUES)
                        .push("emptyArrayString() AS users, ");
                    condition
                }
            };
            sql.push("emptyArrayFloat64() AS values")
                .push(&from_table)
                .append(time_condition(ranges, table))
                .push(" AND ")
                .append(condition);
        }
        Aggregation::Sum | Aggregation::Avg | Aggregation::Percentile => {
            let sum = match kpi.units() {
                Some(decimals) => units_sql(decimals),
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

/// The stored pieces of `measure` over `ranges`, same columns as [`pieces_sql`]
/// (the newest computation of each hour).
pub fn stored_sql(measure: &str, ranges: &[Range]) -> Sql {
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

/// When each hour of a measure was last computed. Binds: measure, from, to.
pub const COMPUTED_SQL: &str = "SELECT toUInt32(hour), max(computed_ms) FROM kpi_rollups \
     WHERE measure = ? AND hour >= toDateTime(?) AND hour < toDateTime(?) GROUP BY hour";

/// When each hour was last marked late. Binds: from, to.
pub const MARKS_SQL: &str = "SELECT toUInt32(hour), max(marked_ms) FROM event_hours_late \
     WHERE hour >= toDateTime(?) AND hour < toDateTime(?) GROUP BY hour";

/// The days (partitions) `events_recent` holds.
pub const RECENT_PARTITIONS_SQL: &str = "SELECT DISTINCT partition FROM system.parts \
     WHERE database = currentDatabase() AND table = 'events_recent' AND active";

/// Drops one day of `events_recent` (a `toYYYYMMDD` number, never a bound
/// value: ClickHouse takes no parameter there).
pub fn drop_recent_day_sql(day: u32) -> String {
    format!("ALTER TABLE events_recent DROP PARTITION {day}")
}

/// The KPI engine's statements with example parameters, for the compatibility test.
pub fn catalog() -> Vec<Statement> {
    let kpis = crate::definition::parse(include_str!("../../../config/kpis.example.yaml"))
        .unwrap_or_default();
    let mut statements: Vec<Statement> = kpis
        .iter()
        .flat_map(|kpi| {
            [Grain::Day, Grain::Hour].map(|grain| Statement {
                origin: format!("kpis: {} per {grain:?}", kpi.id),
                sql: compile(
                    kpi,
                    grain,
                    "Europe/Paris",
                    &[
                        (1_795_000_000, 1_795_030_000),
                        (1_795_086_400, 1_795_400_000),
                    ],
                )
                .inline(),
            })
        })
        .collect();
    // Rollup-backed queries: stored hours in the middle, events around them,
    // the last range recent enough to be read from `events_recent`.
    let trusted: BTreeSet<u64> = (1_795_100_400..1_795_200_000).step_by(3600).collect();
    for kpi in &kpis {
        for grain in [Grain::Day, Grain::Hour] {
            statements.push(Statement {
                origin: format!("kpis: {} per {grain:?} with rollups", kpi.id),
                sql: compile_with_rollups(
                    kpi,
                    grain,
                    "Europe/Paris",
                    &[
                        (1_795_000_000, 1_795_200_000),
                        (1_795_300_000, 1_795_400_000),
                    ],
                    &trusted,
                    1_795_350_000,
                )
                .inline(),
            });
        }
        statements.push(Statement {
            origin: format!("kpis: {} rollup pieces", kpi.id),
            sql: pieces_sql(kpi, &[(1_795_000_000, 1_795_086_400)]).inline(),
        });
        statements.push(Statement {
            origin: format!("kpis: {} recent pieces", kpi.id),
            sql: pieces_sql_from(kpi, &[(1_795_000_000, 1_795_003_600)], EventsTable::Recent)
                .inline(),
        });
    }
    let text = |text: &str, binds: Vec<Bind>| {
        Sql {
            text: text.to_owned(),
            binds,
        }
        .inline()
    };
    let (from, to) = (Bind::U64(1_795_000_000), Bind::U64(1_795_400_000));
    statements.extend([
        Statement {
            origin: "kpis: rollup hours computed".into(),
            sql: text(
                COMPUTED_SQL,
                vec![Bind::Str("0123abcd".into()), from.clone(), to.clone()],
            ),
        },
        Statement {
            origin: "kpis: late hours".into(),
            sql: text(MARKS_SQL, vec![from, to]),
        },
        Statement {
            origin: "kpis: events_recent days".into(),
            sql: RECENT_PARTITIONS_SQL.into(),
        },
        Statement {
            origin: "ingest: mark late hours".into(),
            sql: hypercare_storage::late::MARK_SQL
                .replacen('?', "[1795000000, 1795003600]", 1)
                .replacen('?', "1795400000000", 1),
        },
        Statement {
            origin: "kpis: days with data".into(),
            sql: days_with_data_sql(&[
                (1_795_000_000, (1_795_000_000, 1_795_086_400)),
                (1_795_086_400, (1_795_086_400, 1_795_120_000)),
            ])
            .inline(),
        },
        Statement {
            origin: "kpis: latest definitions".into(),
            sql: LATEST_DEFINITIONS.into(),
        },
        Statement {
            origin: "kpis: a definition's history".into(),
            sql: text(DEFINITION_HISTORY, vec![Bind::Str("orders".into())]),
        },
        Statement {
            origin: "kpis: launches".into(),
            sql: LAUNCHES.into(),
        },
        Statement {
            origin: "kpis: current launch".into(),
            sql: CURRENT_LAUNCH.into(),
        },
        Statement {
            origin: "kpis: launch by id".into(),
            sql: text(LAUNCH_BY_ID, vec![Bind::Str("current".into())]),
        },
    ]);
    statements
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::parse;

    fn one(text: &str) -> Kpi {
        parse(text).unwrap().remove(0)
    }

    #[test]
    fn definitions_become_bound_parameters_not_sql() {
        let kpi = one(
            "kpis:\n  - {id: a, title: A, aggregation: count, filter: {event: \"x'; DROP TABLE events; --\", properties: {plan: pro}}, direction: higher_is_better, target: 1, warning: 1, critical: 1}\n",
        );
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
        let kpi = one(r#"kpis:
  - id: a
    title: A
    aggregation: count
    filter: {properties: {plan: pro, amount: {">=": 100, "<": 500}, first: true, tier: {in: [1, 2]}, country: {"!=": FR}}}
    direction: higher_is_better
    target: 1
    warning: 1
    critical: 1
"#);
        let sql = compile(&kpi, Grain::Day, "UTC", &[(1, 2)]);
        let inline = sql.inline();
        for want in [
            "prop_num_values[indexOf(prop_num_keys, 'amount')] >= 100",
            "prop_num_values[indexOf(prop_num_keys, 'amount')] < 500",
            "prop_bool_values[indexOf(prop_bool_keys, 'first')] = 1",
            "prop_num_values[indexOf(prop_num_keys, 'tier')] IN (1, 2)",
            "prop_str_values[indexOf(prop_str_keys, 'country')] != 'FR'",
            "has(prop_str_keys, 'plan')",
        ] {
            assert!(inline.contains(want), "{want}: {inline}");
        }
        assert_eq!(sql.text.matches('?').count(), sql.binds.len());
    }

    #[test]
    fn the_ratio_reads_the_same_events_raw_and_in_rollup_pieces() {
        let kpi = one(
            "kpis:\n  - {id: r, title: R, aggregation: ratio, filter: {source: web}, numerator: {event: paid}, denominator: {event: [paid, failed]}, direction: higher_is_better, target: 1, warning: 1, critical: 1}\n",
        );
        let raw = compile(&kpi, Grain::Day, "UTC", &[(0, 3600)]).inline();
        let pieces = pieces_sql(&kpi, &[(0, 3600)]).inline();
        let condition = "AND (1 AND source = 'web') AND ((1 AND event IN ('paid')) OR (1 AND event IN ('paid', 'failed')))";
        assert!(raw.contains(condition), "{raw}");
        assert!(pieces.contains(condition), "{pieces}");
        assert!(raw.contains("toFloat64(uniqExactIf(event_id, (1 AND event IN ('paid')))) AS a, toFloat64(uniqExactIf(event_id, (1 AND event IN ('paid', 'failed')))) AS b"), "{raw}");
        assert!(pieces.contains("toUInt64(uniqExactIf(event_id, (1 AND event IN ('paid')))) AS events, toUInt64(uniqExactIf(event_id, (1 AND event IN ('paid', 'failed')))) AS denominator, toFloat64(0) AS value_sum"), "{pieces}");
    }

    #[test]
    fn rollup_queries_read_stored_hours_and_events_around_them() {
        let kpi = one(
            "kpis:\n  - {id: a, title: A, aggregation: count, direction: higher_is_better, target: 1, warning: 1, critical: 1}\n",
        );
        let trusted: BTreeSet<u64> = [7200, 10_800].into();
        let now = 10 * 86_400;
        let sql = compile_with_rollups(&kpi, Grain::Day, "UTC", &[(0, 18_000)], &trusted, now);
        // Hours 2..4 from the rollups, the rest (old) from `events`.
        assert!(sql.text.contains("FROM kpi_rollups FINAL"), "{}", sql.text);
        assert!(sql.binds.contains(&Bind::U64(7200)) && sql.binds.contains(&Bind::U64(14_400)));
        assert!(sql.text.contains(" FROM events WHERE "), "{}", sql.text);
        assert!(!sql.text.contains("events_recent"), "{}", sql.text);
        // Today's hours come from the hour-sorted copy.
        let sql = compile_with_rollups(
            &kpi,
            Grain::Hour,
            "UTC",
            &[(now, now + 3600)],
            &BTreeSet::new(),
            now + 7200,
        );
        assert!(sql.text.contains("FROM events_recent"), "{}", sql.text);
        assert_eq!(sql.text.matches('?').count(), sql.binds.len());
    }

    #[test]
    fn consecutive_hours_make_one_range_and_gaps_are_read_raw() {
        assert_eq!(
            hour_ranges([0, 3600, 7200, 14_400]),
            vec![(0, 10_800), (14_400, 18_000)]
        );
        assert!(hour_ranges([]).is_empty());
        assert_eq!(
            uncovered(0, 18_000, &[3600, 7200]),
            vec![(0, 3600), (10_800, 18_000)]
        );
    }

    #[test]
    fn every_catalog_statement_has_its_parameters_written_in() {
        let catalog = catalog();
        assert!(catalog.len() > 20);
        for statement in catalog {
            assert!(!statement.sql.contains('?'), "{}", statement.origin);
        }
    }
}
