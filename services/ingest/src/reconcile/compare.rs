//! The comparison, inside ClickHouse: the uploaded ids go into a table of
//! their own (`reconcile_<unix seconds>_<random>`, Memory engine, dropped at
//! the end of the request, and by the sweep if the request was cut), then two
//! anti-joins:
//!
//! ```text
//! ids table (event, id, day) ──NOT IN (event, id) of events──> missing, per (event, source day)
//! events of those event names in the day range ──NOT IN ids table──> extra, per (event, day)
//! ```
//!
//! `missing` looks for each id among all the events of its name, whatever the
//! day (an event stored on another day than the source says is not lost);
//! `extra` reads only the days in range. Copies of an event (retries, another
//! key's copy) count once: ids are grouped. Only `IN` / `NOT IN` with
//! subqueries, `groupArray(N)`, `indexOf` and `Memory` tables are used: all in
//! ClickHouse 18.16 and 26.x (the catalog runs each statement on both).

use std::time::Duration;

use chrono::NaiveDate;
use hypercare_storage::catalog::Statement;
use serde::{Deserialize, Serialize};

use super::input::{Options, Rows, day_of, days_since_epoch};

/// Tables older than this are left over from a cut request: the sweep drops them.
pub const LEFTOVER_AFTER: Duration = Duration::from_secs(3600);

const TABLE_PREFIX: &str = "reconcile_";

/// The answer of `POST /v1/reconcile`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reconciliation {
    /// Distinct ids uploaded (within the day range).
    pub source_ids: u64,
    /// How many uploaded ids Hypercare does not hold, and the first ones.
    pub missing: Listed,
    /// How many ids Hypercare holds (same events, same days) that the upload
    /// does not, and the first ones.
    pub extra: Listed,
    /// Per event and day; `day` is null for uploaded ids given without a day.
    pub by_event_day: Vec<DayCount>,
}

#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Listed {
    pub total: u64,
    /// The first `limit` of them, sorted by event, day and id.
    pub ids: Vec<ListedId>,
}

#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct ListedId {
    pub event: String,
    pub day: Option<String>,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DayCount {
    pub event: String,
    pub day: Option<String>,
    pub missing: u64,
    pub extra: u64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct GroupRow {
    event: String,
    day: u16,
    n: u64,
    ids: Vec<String>,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct CountRow {
    n: u64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct NameRow {
    name: String,
}

/// A name for a request's id table; `now` in epoch seconds dates it for the sweep.
pub fn table_name(now: i64) -> String {
    format!(
        "{TABLE_PREFIX}{}_{}",
        now.max(0),
        uuid::Uuid::new_v4().simple()
    )
}

fn create_sql(table: &str) -> String {
    format!("CREATE TABLE {table} (event String, id String, day Date) ENGINE = Memory")
}

fn drop_sql(table: &str) -> String {
    format!("DROP TABLE IF EXISTS {table}")
}

/// The id of an event, as the upload spells it: the event id, or a string property.
fn id_expr(options: &Options) -> &'static str {
    if options.id_property.is_some() {
        "prop_str_values[indexOf(prop_str_keys, ?)]"
    } else {
        "toString(event_id)"
    }
}

fn property_filter(options: &Options) -> &'static str {
    if options.id_property.is_some() {
        " AND has(prop_str_keys, ?)"
    } else {
        ""
    }
}

/// Missing: per (event, source day), the count and up to `limit` ids. Binds:
/// [property, property], from-day, to-day.
fn missing_sql(table: &str, options: &Options, limit: usize) -> String {
    format!(
        "SELECT event, toUInt16(day) AS day, count() AS n, groupArray({limit})(id) AS ids \
         FROM (SELECT event, id, min(day) AS day FROM {table} GROUP BY event, id) \
         WHERE (event, id) NOT IN (SELECT event, {id} FROM events \
             WHERE event IN (SELECT DISTINCT event FROM {table}){has}) \
         GROUP BY event, day ORDER BY event, day",
        id = id_expr(options),
        has = property_filter(options),
    )
}

/// Extra: per (event, day of the event), the count and up to `limit` ids.
/// Binds: [property], from (epoch s), to (epoch s), [property].
fn extra_sql(table: &str, options: &Options, limit: usize) -> String {
    format!(
        "SELECT event, toUInt16(day) AS day, count() AS n, groupArray({limit})(id) AS ids \
         FROM (SELECT event, {id} AS id, min(toDate(timestamp)) AS day FROM events \
             WHERE event IN (SELECT DISTINCT event FROM {table}) \
             AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?){has} \
             GROUP BY event, id) \
         WHERE (event, id) NOT IN (SELECT event, id FROM {table}) \
         GROUP BY event, day ORDER BY event, day",
        id = id_expr(options),
        has = property_filter(options),
    )
}

fn source_count_sql(table: &str) -> String {
    format!("SELECT count() AS n FROM (SELECT event, id FROM {table} GROUP BY event, id)")
}

/// Where the comparison runs, and its bounds.
#[derive(Clone)]
pub struct Comparer {
    /// A client of Hypercare's database that may create tables (the
    /// statements carry no request text: names are ours, values are bound).
    pub client: clickhouse::Client,
    /// ClickHouse stops each statement after this (504 `query_too_slow`).
    pub deadline: Duration,
}

/// Why a comparison failed.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(
        "the comparison took longer than {secs} s (ingest.reconcile.query_timeout_secs): upload fewer ids, or one event or a shorter day range at a time"
    )]
    TooSlow { secs: u64 },
    #[error("the ClickHouse query failed: {0}; retry later")]
    Query(#[source] clickhouse::error::Error),
}

impl CompareError {
    fn from_clickhouse(deadline: Duration) -> impl Fn(clickhouse::error::Error) -> Self {
        move |error| {
            // ClickHouse's "timeout exceeded" (code 159) is the statement's own deadline.
            if error.to_string().contains("Code: 159") {
                CompareError::TooSlow {
                    secs: deadline.as_secs(),
                }
            } else {
                CompareError::Query(error)
            }
        }
    }
}

impl Comparer {
    fn query(&self, sql: &str) -> clickhouse::query::Query {
        self.client
            .query(sql)
            .with_setting("max_execution_time", self.deadline.as_secs().to_string())
    }

    /// Loads `rows` into a table of this request, compares, and drops the
    /// table whatever the outcome.
    pub async fn reconcile(
        &self,
        now: i64,
        options: &Options,
        rows: Rows,
        limit: usize,
    ) -> Result<Reconciliation, CompareError> {
        let table = table_name(now);
        let error = CompareError::from_clickhouse(self.deadline);
        self.query(&create_sql(&table))
            .execute()
            .await
            .map_err(&error)?;
        let outcome = self.load_and_compare(&table, options, rows, limit).await;
        if let Err(e) = self.query(&drop_sql(&table)).execute().await {
            tracing::warn!(table, error = %e, "Could not drop a reconciliation table; the sweep will.");
        }
        outcome.map_err(error)
    }

    async fn load_and_compare(
        &self,
        table: &str,
        options: &Options,
        rows: Rows,
        limit: usize,
    ) -> clickhouse::error::Result<Reconciliation> {
        let timeout = Some(self.deadline);
        let mut insert = self
            .client
            .insert_formatted_with(format!(
                "INSERT INTO {table} (event, id, day) FORMAT RowBinary"
            ))
            .with_timeouts(timeout, timeout);
        for chunk in rows.chunks {
            insert.send(chunk).await?;
        }
        insert.end().await?;

        let (from, to) = seconds_range(options);
        let property = options.id_property.clone().unwrap_or_default();
        let mut missing = self.query(&missing_sql(table, options, limit));
        if options.id_property.is_some() {
            missing = missing.bind(&property).bind(&property);
        }
        let missing: Vec<GroupRow> = missing.fetch_all().await?;
        let mut extra = self.query(&extra_sql(table, options, limit));
        if options.id_property.is_some() {
            extra = extra.bind(&property);
        }
        extra = extra.bind(from).bind(to);
        if options.id_property.is_some() {
            extra = extra.bind(&property);
        }
        let extra: Vec<GroupRow> = extra.fetch_all().await?;
        let source: CountRow = self.query(&source_count_sql(table)).fetch_one().await?;
        Ok(answer(source.n, missing, extra, limit))
    }

    /// Drops id tables left by requests that were cut (client gone, shutdown)
    /// before their own drop ran.
    pub async fn sweep(&self, now: i64) -> clickhouse::error::Result<usize> {
        let names: Vec<NameRow> = self
            .query(LEFTOVER_SQL)
            .bind(format!("{TABLE_PREFIX}%"))
            .fetch_all()
            .await?;
        let cutoff = now - LEFTOVER_AFTER.as_secs() as i64;
        let mut dropped = 0;
        for NameRow { name } in names {
            let created = name
                .strip_prefix(TABLE_PREFIX)
                .and_then(|rest| rest.split('_').next())
                .and_then(|secs| secs.parse::<i64>().ok());
            // Only names we make (digits and hex) reach the SQL text.
            let ours = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if ours && created.is_some_and(|t| t < cutoff) {
                self.query(&drop_sql(&name)).execute().await?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }
}

const LEFTOVER_SQL: &str = "SELECT name FROM system.tables \
     WHERE database = currentDatabase() AND name LIKE ?";

/// Epoch seconds of the first second of `from` and of the day after `to`.
fn seconds_range(options: &Options) -> (u32, u32) {
    let start = |day: NaiveDate| u32::from(days_since_epoch(day)) * 86_400;
    let from = options.from.map_or(0, start);
    let to = options
        .to
        .map_or(u32::MAX, |day| start(day).saturating_add(86_400));
    (from, to)
}

/// Gathers both sides' groups into the answer (pure).
fn answer(
    source_ids: u64,
    missing: Vec<GroupRow>,
    extra: Vec<GroupRow>,
    limit: usize,
) -> Reconciliation {
    let day_text = |days: u16| day_of(days).map(|d| d.to_string());
    let listed = |groups: &[GroupRow]| {
        let mut ids: Vec<ListedId> = groups
            .iter()
            .flat_map(|g| {
                g.ids.iter().map(|id| ListedId {
                    event: g.event.clone(),
                    day: day_text(g.day),
                    id: id.clone(),
                })
            })
            .collect();
        ids.sort();
        ids.truncate(limit);
        Listed {
            total: groups.iter().map(|g| g.n).sum(),
            ids,
        }
    };
    let mut by_event_day: Vec<DayCount> = Vec::new();
    for (group, is_missing) in missing
        .iter()
        .map(|g| (g, true))
        .chain(extra.iter().map(|g| (g, false)))
    {
        let day = day_text(group.day);
        let row = match by_event_day
            .iter_mut()
            .find(|r| r.event == group.event && r.day == day)
        {
            Some(row) => row,
            None => {
                by_event_day.push(DayCount {
                    event: group.event.clone(),
                    day: day.clone(),
                    missing: 0,
                    extra: 0,
                });
                by_event_day.last_mut().expect("just pushed")
            }
        };
        if is_missing {
            row.missing += group.n;
        } else {
            row.extra += group.n;
        }
    }
    by_event_day.sort_by(|a, b| (&a.event, &a.day).cmp(&(&b.event, &b.day)));
    Reconciliation {
        source_ids,
        missing: listed(&missing),
        extra: listed(&extra),
        by_event_day,
    }
}

/// The statements of a reconciliation with example parameters, in the order
/// they run, for the engine compatibility test.
pub fn catalog() -> Vec<Statement> {
    let table = "reconcile_1795300000_example";
    let by_event = Options {
        event: Some("lead".into()),
        ..Options::default()
    };
    let by_property = Options {
        id_property: Some("lead_id".into()),
        ..by_event.clone()
    };
    let statement = |what: &str, sql: String| Statement {
        origin: format!("ingest: reconcile {what}"),
        sql,
    };
    let bind = |sql: String, values: &[&str]| {
        values
            .iter()
            .fold(sql, |sql, value| sql.replacen('?', value, 1))
    };
    vec![
        statement("create", create_sql(table)),
        statement(
            "load",
            format!(
                "INSERT INTO {table} (event, id, day) VALUES ('lead', '1b4e28ba-2fa1-11d2-883f-0016d3cca427', toDate('2026-11-20'))"
            ),
        ),
        statement("missing by event id", missing_sql(table, &by_event, 100)),
        statement(
            "missing by property",
            bind(
                missing_sql(table, &by_property, 100),
                &["'lead_id'", "'lead_id'"],
            ),
        ),
        statement(
            "extra by event id",
            bind(
                extra_sql(table, &by_event, 100),
                &["1795300000", "1795400000"],
            ),
        ),
        statement(
            "extra by property",
            bind(
                extra_sql(table, &by_property, 100),
                &["'lead_id'", "1795300000", "1795400000", "'lead_id'"],
            ),
        ),
        statement("source count", source_count_sql(table)),
        statement("leftovers", bind(LEFTOVER_SQL.into(), &["'reconcile\\_%'"])),
        statement("drop", drop_sql(table)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(event: &str, day: u16, n: u64, ids: &[&str]) -> GroupRow {
        GroupRow {
            event: event.into(),
            day,
            n,
            ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn the_answer_lists_the_first_ids_and_counts_per_event_and_day() {
        let day = days_since_epoch(NaiveDate::from_ymd_opt(2026, 11, 20).unwrap());
        let missing = vec![
            group("lead", 0, 3, &["c", "a"]),
            group("lead", day, 1, &["b"]),
        ];
        let extra = vec![group("lead", day, 2, &["x", "y"])];
        let answer = answer(10, missing, extra, 2);
        assert_eq!(answer.missing.total, 4);
        // Sorted by event, day (ids without a day first), then id.
        assert_eq!(
            answer
                .missing
                .ids
                .iter()
                .map(|i| i.id.as_str())
                .collect::<Vec<_>>(),
            ["a", "c"],
        );
        assert_eq!(answer.extra.total, 2);
        assert_eq!(
            answer.by_event_day,
            [
                DayCount {
                    event: "lead".into(),
                    day: None,
                    missing: 3,
                    extra: 0
                },
                DayCount {
                    event: "lead".into(),
                    day: Some("2026-11-20".into()),
                    missing: 1,
                    extra: 2
                },
            ]
        );
    }

    #[test]
    fn a_day_range_covers_whole_utc_days() {
        let options = Options::new(None, None, Some("2026-11-20"), Some("2026-11-21")).unwrap();
        assert_eq!(seconds_range(&options), (1_795_132_800, 1_795_305_600));
        assert_eq!(seconds_range(&Options::default()), (0, u32::MAX));
    }

    #[test]
    fn table_names_are_dated_and_safe_in_sql() {
        let name = table_name(1_795_300_000);
        assert!(name.starts_with("reconcile_1795300000_"));
        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    }
}
