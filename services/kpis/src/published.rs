//! Published KPI values: what the API answers, kept in ClickHouse for Grafana.
//!
//! ```text
//! every pass (the rollup worker's period)
//!   current launch (the last declared, as the board)
//!   ├─ each day D-B..min(today, D+N): KpiState::board_on(day)  -> rows grain `day`
//!   └─ each KPI, each hour from D-B to now: query::run(hour)   -> rows grain `hour`
//!   -> the rows that differ from the previous pass's (all of them after a start)
//!   -> INSERT INTO kpi_published (ReplacingMergeTree by published_ms; readers use FINAL)
//! ```
//!
//! Dashboards never compute a KPI (dedup by `event_id`, late events, ratios,
//! pace): they read these rows, so a panel shows the numbers `GET /v1/kpis?date=`
//! and `GET /v1/kpis/{id}/series?grain=hour` answer, at the time of the last
//! pass. A day row is exactly the board's entry for that day (today at pace);
//! an hour row is exactly the series' point (counts 0 and ratios null in an
//! empty hour, status against the whole-day levels as the series judges it).
//! Rows of a past launch stay as they were last published.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::board::BoardEntry;
use crate::calendar::day_start;
use crate::definition::{Direction, Grain, Kpi, Status};
use crate::error::KpiError;
use crate::launch::{self, LaunchRow};
use crate::pace::Window;
use crate::state::KpiState;

/// The table the dashboards read (migration 0105).
pub const TABLE: &str = "kpi_published";

/// One row of `kpi_published` (see the migration for the meaning of each column).
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct PublishedRow {
    pub grain: String,
    pub launch_id: String,
    pub release: String,
    pub kpi_id: String,
    pub title: String,
    pub unit: String,
    pub direction: String,
    pub bucket: u32,
    pub date: String,
    pub day_index: i16,
    pub baseline_day: u8,
    pub complete: u8,
    pub comparison: String,
    pub value: Option<f64>,
    pub target: f64,
    pub warning: f64,
    pub critical: f64,
    pub pace_target: f64,
    pub pace_warning: f64,
    pub pace_critical: f64,
    pub status: String,
    pub baseline: Option<f64>,
    pub delta_vs_baseline_pct: Option<f64>,
    pub published_ms: u64,
}

fn status_name(status: Status) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::HigherIsBetter => "higher_is_better",
        Direction::LowerIsBetter => "lower_is_better",
    }
}

fn local_date(secs: u64, tz: Tz) -> NaiveDate {
    tz.timestamp_opt(secs as i64, 0)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// The days a pass publishes: the baseline days and D0.. up to today (never
/// a day to come, which has no answer yet), at most up to the window's last day.
pub fn days_to_publish(window: &Window, today: NaiveDate) -> Vec<NaiveDate> {
    let mut days = window.baseline_dates();
    days.extend(
        window
            .d0
            .iter_days()
            .take_while(|d| *d <= window.last && *d <= today),
    );
    days.retain(|d| *d <= today);
    days
}

/// The row of a board entry (`GET /v1/kpis?date=` for that day), as is.
pub fn day_row(
    launch: &LaunchRow,
    window: &Window,
    tz: Tz,
    today: NaiveDate,
    kpi: &Kpi,
    entry: &BoardEntry,
    date: NaiveDate,
) -> PublishedRow {
    let day_index = (date - window.d0).num_days();
    let (pace_target, pace_warning, pace_critical) = match entry.pace {
        Some(p) => (p.target, p.warning, p.critical),
        None => (entry.target, entry.warning, entry.critical),
    };
    PublishedRow {
        grain: "day".into(),
        launch_id: launch.launch_id.clone(),
        release: launch.release.clone(),
        kpi_id: entry.id.clone(),
        title: entry.title.clone(),
        unit: entry.unit.clone(),
        direction: direction_name(kpi.direction).into(),
        bucket: u32::try_from(day_start(date, tz)).unwrap_or(u32::MAX),
        date: date.to_string(),
        day_index: i16::try_from(day_index).unwrap_or(i16::MAX),
        baseline_day: u8::from(day_index < 0),
        complete: u8::from(date < today),
        comparison: entry.comparison.clone(),
        value: entry.value,
        target: entry.target,
        warning: entry.warning,
        critical: entry.critical,
        pace_target,
        pace_warning,
        pace_critical,
        status: status_name(entry.status),
        baseline: entry.baseline,
        delta_vs_baseline_pct: entry.delta_vs_baseline_pct,
        published_ms: 0,
    }
}

/// The rows of a KPI's hourly series over `[from, to)`, as
/// `GET /v1/kpis/{id}/series?grain=hour` answers them from `values` (the
/// answer of [`query::run`]): an empty hour is 0 for counts and sums, null
/// otherwise; the status is against the KPI's levels.
#[allow(clippy::too_many_arguments)]
pub fn hour_rows(
    launch: &LaunchRow,
    window: &Window,
    tz: Tz,
    now: u64,
    kpi: &Kpi,
    values: &[(u64, Option<f64>)],
) -> Vec<PublishedRow> {
    values
        .iter()
        .map(|&(start, value)| {
            let date = local_date(start, tz);
            let day_index = (date - window.d0).num_days();
            PublishedRow {
                grain: "hour".into(),
                launch_id: launch.launch_id.clone(),
                release: launch.release.clone(),
                kpi_id: kpi.id.clone(),
                title: kpi.title.clone(),
                unit: kpi.unit.clone(),
                direction: direction_name(kpi.direction).into(),
                bucket: u32::try_from(start).unwrap_or(u32::MAX),
                date: date.to_string(),
                day_index: i16::try_from(day_index).unwrap_or(i16::MAX),
                baseline_day: u8::from(day_index < 0),
                complete: u8::from(start + 3600 <= now),
                comparison: String::new(),
                value,
                target: kpi.target,
                warning: kpi.warning,
                critical: kpi.critical,
                pace_target: kpi.target,
                pace_warning: kpi.warning,
                pace_critical: kpi.critical,
                status: status_name(kpi.status(value)),
                baseline: None,
                delta_vs_baseline_pct: None,
                published_ms: 0,
            }
        })
        .collect()
}

/// The rows of one pass for the current launch (none without a launch).
pub async fn rows(state: &KpiState) -> Result<Vec<PublishedRow>, KpiError> {
    // The current launch, as the board chooses it: the one declared last.
    let Some(current) = launch::current(&state.store).await? else {
        return Ok(Vec::new());
    };
    let tz = current.tz()?;
    let window = current.window(tz);
    let launch = current;
    let now = state.now_secs();
    let today = local_date(now, tz);
    let days = days_to_publish(&window, today);
    let definitions: std::collections::BTreeMap<String, Kpi> = state
        .definitions()
        .all()
        .await
        .into_iter()
        .map(|kpi| (kpi.id.clone(), kpi))
        .collect();
    let mut out = Vec::new();
    for date in &days {
        let board = state.board_on(Some(*date), false).await?;
        // The launch changed during the pass: the next pass publishes the new one.
        if board.launch.as_deref() != Some(launch.launch_id.as_str()) {
            return Ok(Vec::new());
        }
        for entry in &board.kpis {
            if let Some(kpi) = definitions.get(&entry.id) {
                out.push(day_row(&launch, &window, tz, today, kpi, entry, *date));
            }
        }
    }
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return Ok(out);
    };
    let from = day_start(*first, tz);
    let to = now.min(day_start(last.succ_opt().unwrap_or(*last), tz));
    if from < to {
        for kpi in definitions.values() {
            let values = state.values(kpi, Grain::Hour, tz, from, to).await?;
            out.extend(hour_rows(&launch, &window, tz, now, kpi, &values));
        }
    }
    Ok(out)
}

/// The version of a publication: wall-clock milliseconds, strictly increasing
/// within the process, so that a pass always replaces the one before it even
/// when two passes fall in the same millisecond (the answers' clock is not
/// used: a manual clock in tests does not move between passes).
fn next_version() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let wall = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    let mut previous = LAST.load(Ordering::Relaxed);
    loop {
        let next = wall.max(previous + 1);
        match LAST.compare_exchange(previous, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(actual) => previous = actual,
        }
    }
}

/// A row's identity in `kpi_published` (the table's sorting key).
type Key = (String, String, String, u32);

fn key(row: &PublishedRow) -> Key {
    (
        row.grain.clone(),
        row.launch_id.clone(),
        row.kpi_id.clone(),
        row.bucket,
    )
}

/// The rows of a pass that differ from what the previous pass wrote: past
/// days and hours rarely change (a late event, a changed target), so a pass
/// writes a few rows instead of every hour of the window again.
pub fn changed(written: &HashMap<Key, PublishedRow>, rows: &[PublishedRow]) -> Vec<PublishedRow> {
    rows.iter()
        .filter(|row| written.get(&key(row)) != Some(*row))
        .cloned()
        .collect()
}

/// Publishes the KPI values, remembering what it wrote (the process's memory:
/// after a restart, the first pass writes every row again).
#[derive(Default)]
pub struct Publisher {
    written: tokio::sync::Mutex<HashMap<Key, PublishedRow>>,
}

impl Publisher {
    /// One pass: computes the rows and writes those that changed with
    /// `writer`; answers how many it wrote.
    pub async fn publish(
        &self,
        state: &KpiState,
        writer: &clickhouse::Client,
    ) -> Result<usize, KpiError> {
        let rows = rows(state).await?;
        let mut written = self.written.lock().await;
        let mut fresh = changed(&written, &rows);
        if !fresh.is_empty() {
            let version = next_version();
            let mut insert = writer.insert::<PublishedRow>(TABLE).await?;
            for row in &mut fresh {
                row.published_ms = version;
                insert.write(row).await?;
            }
            insert.end().await?;
        }
        // Only this pass's rows: a past launch's are forgotten, not rewritten.
        *written = rows.into_iter().map(|row| (key(&row), row)).collect();
        Ok(fresh.len())
    }
}

/// Publishes every `period` on `tasks` (the rollup worker's period) until shutdown;
/// a pass that has started finishes its insert.
pub fn start(
    tasks: &hypercare_runtime::Tasks,
    state: Arc<KpiState>,
    period: Duration,
    writer: clickhouse::Client,
) {
    let publisher = Arc::new(Publisher::default());
    tasks.every("kpi_publisher", period, move || {
        let (state, writer, publisher) = (state.clone(), writer.clone(), publisher.clone());
        async move {
            let started = std::time::Instant::now();
            match publisher.publish(&state, &writer).await {
                Ok(0) => {}
                Ok(rows) => tracing::info!(
                    rows,
                    seconds = started.elapsed().as_secs_f64(),
                    "KPI values published."
                ),
                Err(error) => tracing::warn!(
                    %error,
                    "Could not publish the KPI values; retrying on the next pass."
                ),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::fill_gaps;
    use std::collections::BTreeMap;

    fn launch() -> LaunchRow {
        LaunchRow {
            launch_id: "l1".into(),
            name: "checkout".into(),
            release: "2.4.0".into(),
            d0: "2026-11-16T09:00:00+01:00".into(),
            // 2026-11-16T08:00:00Z, 09:00 in Paris.
            d0_secs: 1_794_816_000,
            tz: "Europe/Paris".into(),
            window_days: 14,
            baseline_days: 7,
            stages: "[]".into(),
            created_ms: 0,
            actor: "test".into(),
        }
    }

    fn kpi(yaml: &str) -> Kpi {
        crate::definition::parse(yaml).unwrap().remove(0)
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_pass_writes_only_the_rows_that_changed_since_the_last_one() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        let launch = launch();
        let window = launch.window(tz);
        let counts = kpi(
            "kpis:\n  - id: orders\n    title: Orders\n    owner: po@example.com\n    aggregation: count\n    filter: { event: order_placed }\n    direction: higher_is_better\n    target: 100\n    warning: 80\n    critical: 50\n",
        );
        let from = 1_794_780_000;
        let filled = |values| fill_gaps(&counts, Grain::Hour, tz, from, from + 7200, &values);
        let before = hour_rows(
            &launch,
            &window,
            tz,
            from + 7200,
            &counts,
            &filled(BTreeMap::from([(from, Some(3.0))])),
        );
        let written: HashMap<Key, PublishedRow> =
            before.iter().map(|r| (key(r), r.clone())).collect();
        assert!(changed(&written, &before).is_empty());
        // A late event changes the first hour; the second stays.
        let after = hour_rows(
            &launch,
            &window,
            tz,
            from + 7200,
            &counts,
            &filled(BTreeMap::from([(from, Some(4.0))])),
        );
        let fresh = changed(&written, &after);
        assert_eq!(fresh.len(), 1);
        assert_eq!((fresh[0].bucket, fresh[0].value), (from as u32, Some(4.0)));
        // Everything is new to a publisher that wrote nothing yet.
        assert_eq!(changed(&HashMap::new(), &after).len(), 2);
    }

    #[test]
    fn a_pass_publishes_the_baseline_and_the_days_up_to_today_never_later() {
        let window = Window::new(date("2026-11-16"), 14, 7);
        let days = days_to_publish(&window, date("2026-11-18"));
        assert_eq!(days.first(), Some(&date("2026-11-09")));
        assert_eq!(days.last(), Some(&date("2026-11-18")));
        assert_eq!(days.len(), 10);
        // After the window: up to its last day only.
        let days = days_to_publish(&window, date("2026-12-20"));
        assert_eq!(days.last(), Some(&date("2026-11-30")));
        assert_eq!(days.len(), 22);
        // Before the baseline starts: nothing.
        assert!(days_to_publish(&window, date("2026-11-01")).is_empty());
    }

    #[test]
    fn hour_rows_fill_empty_hours_as_the_series_does_and_number_the_days() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        let launch = launch();
        let window = launch.window(tz);
        let counts = kpi(
            "kpis:\n  - id: orders\n    title: Orders\n    owner: po@example.com\n    aggregation: count\n    filter: { event: order_placed }\n    target: 100\n    direction: higher_is_better\n    warning: 80\n    critical: 50\n",
        );
        let rates = kpi(
            "kpis:\n  - id: pay\n    title: Pay\n    owner: po@example.com\n    aggregation: ratio\n    numerator: { event: ok }\n    denominator: { event: [ok, ko] }\n    target: 0.99\n    direction: higher_is_better\n    warning: 0.98\n    critical: 0.97\n",
        );
        // 2026-11-15T22:00Z .. 2026-11-16T01:00Z: 23:00 on D-1, then D0 00:00 and 01:00 in Paris.
        let from = 1_794_780_000;
        let to = from + 3 * 3600;
        let values = BTreeMap::from([(from + 3600, Some(120.0))]);
        let now = from + 2 * 3600 + 60;
        let rows = hour_rows(
            &launch,
            &window,
            tz,
            now,
            &counts,
            &fill_gaps(&counts, Grain::Hour, tz, from, to, &values),
        );
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].value, Some(0.0));
        assert_eq!(rows[0].status, "critical");
        assert_eq!((rows[0].day_index, rows[0].baseline_day), (-1, 1));
        assert_eq!(rows[1].value, Some(120.0));
        assert_eq!(rows[1].status, "ok");
        assert_eq!(
            (rows[1].date.as_str(), rows[1].day_index),
            ("2026-11-16", 0)
        );
        // The hour under way is not complete.
        assert_eq!((rows[1].complete, rows[2].complete), (1, 0));
        let rows = hour_rows(
            &launch,
            &window,
            tz,
            now,
            &rates,
            &fill_gaps(&rates, Grain::Hour, tz, from, to, &values),
        );
        assert_eq!(rows[0].value, None);
        assert_eq!(rows[0].status, "no_data");
    }
}
