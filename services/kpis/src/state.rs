//! [`KpiState`]: what the routes and the alert evaluator ask of the KPI engine.
//!
//! Each answer reads the definitions ([`crate::repository`]) and the current
//! launch ([`crate::launch`]), takes "now" from the one clock, asks
//! [`crate::query::run`] for the values it needs (the KPIs side by side:
//! ClickHouse answers them in parallel) and hands them to the pure rules:
//! [`crate::pace`] picks the day and its comparison, [`crate::board`] judges
//! each KPI, [`crate::launch::days`] lays out the D+N days.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use hypercare_runtime::SharedClock;
use serde::Serialize;

use crate::board::{self, Board};
use crate::calendar::{bucket_of, local_date};
use crate::definition::{Grain, Kpi, Status};
use crate::error::KpiError;
use crate::launch::{self, LaunchDays, LaunchRow, NewLaunch};
use crate::pace::{self, Comparison};
use crate::query::{self, BucketCache, days_with_data, empty_is_zero};
use crate::repository::{DefinitionRow, Definitions, Source};

pub struct KpiState {
    pub store: clickhouse::Client,
    cache: BucketCache,
    definitions: Arc<Definitions>,
    /// "Now" of the answers.
    clock: SharedClock,
}

/// A KPI per bucket, gaps filled.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = KpiSeries)]
pub struct Series {
    pub id: String,
    pub grain: Grain,
    pub tz: String,
    pub target: f64,
    pub points: Vec<SeriesPoint>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SeriesPoint {
    /// The bucket's start, RFC 3339 in the series' time zone.
    pub start: Option<String>,
    pub value: Option<f64>,
    pub status: Status,
}

/// What a series covers: `[from, to)` in epoch seconds, per `grain` (default
/// the KPI's), in `tz` (default the current launch's, else UTC).
#[derive(Debug, Clone, Copy)]
pub struct SeriesRange {
    pub from: u64,
    pub to: u64,
    pub grain: Option<Grain>,
    pub tz: Option<Tz>,
}

impl KpiState {
    /// Loads the stored definitions and records the file's that are new or
    /// changed as new versions (source `file`).
    pub async fn load(
        store: clickhouse::Client,
        from_file: Vec<Kpi>,
        clock: SharedClock,
    ) -> clickhouse::error::Result<Self> {
        let definitions = Definitions::load(store.clone(), clock.clone(), from_file).await?;
        Ok(Self {
            store,
            cache: BucketCache::default(),
            definitions: Arc::new(definitions),
            clock,
        })
    }

    /// The definitions (the rollup worker reads them).
    pub fn definitions(&self) -> Arc<Definitions> {
        self.definitions.clone()
    }

    /// Now, in epoch seconds, by the one clock.
    pub fn now_secs(&self) -> u64 {
        self.clock.now_ms() / 1000
    }

    /// The current launch's time zone, UTC without a launch.
    async fn current_tz(&self) -> Result<(Option<LaunchRow>, Tz), KpiError> {
        let launch = launch::current(&self.store).await?;
        let tz = match &launch {
            Some(l) => l.tz()?,
            None => chrono_tz::UTC,
        };
        Ok((launch, tz))
    }

    async fn kpi(&self, id: &str) -> Result<Kpi, KpiError> {
        self.definitions
            .get(id)
            .await
            .ok_or_else(|| KpiError::NotFound(format!("KPI `{id}`")))
    }

    /// The value of each local day of `ranges` (`(date, [from, to))`, in order):
    /// a day without any event at all (`with_data`) has none, whatever the KPI.
    async fn daily(
        &self,
        kpi: &Kpi,
        tz: Tz,
        ranges: &[(NaiveDate, (u64, u64))],
        with_data: &BTreeSet<u64>,
    ) -> Result<BTreeMap<NaiveDate, Option<f64>>, KpiError> {
        let spans: Vec<(u64, u64)> = ranges.iter().map(|(_, r)| *r).collect();
        let values =
            query::run(&self.store, &self.cache, kpi, Grain::Day, tz.name(), &spans).await?;
        Ok(ranges
            .iter()
            .map(|(date, (from, _))| {
                let value = match values.get(from) {
                    _ if !with_data.contains(from) => None,
                    Some(v) => *v,
                    None if empty_is_zero(kpi.aggregation) => Some(0.0),
                    None => None,
                };
                (*date, value)
            })
            .collect())
    }

    /// The board by default: today at pace, the window's last day once it has ended.
    pub async fn board(&self) -> Result<Board, KpiError> {
        self.board_on(None, false).await
    }

    /// Today at pace whatever the window, for the alert evaluator (which looks
    /// at [`Board::in_window`] itself).
    pub async fn board_now(&self) -> Result<Board, KpiError> {
        self.board_on(None, true).await
    }

    /// The board on `asked` (default: see [`pace::reference`]); `today` forces
    /// today whatever the window.
    pub async fn board_on(&self, asked: Option<NaiveDate>, today: bool) -> Result<Board, KpiError> {
        let (launch, tz) = self.current_tz().await?;
        self.board_with(launch, tz, asked, today).await
    }

    /// The board of `launch` (current or not) on `date`: the daily report's
    /// KPI figures, at pace up to the last whole hour while `date` is today.
    pub async fn board_of(&self, launch: &LaunchRow, date: NaiveDate) -> Result<Board, KpiError> {
        let tz = launch.tz()?;
        self.board_with(Some(launch.clone()), tz, Some(date), false)
            .await
    }

    async fn board_with(
        &self,
        launch: Option<LaunchRow>,
        tz: Tz,
        asked: Option<NaiveDate>,
        today: bool,
    ) -> Result<Board, KpiError> {
        let window = launch.as_ref().map(|l| l.window(tz));
        let now = self.now_secs();
        let reference = pace::reference(now, tz, window.as_ref().filter(|_| !today), asked)
            .map_err(|e| KpiError::invalid("date", e.to_string()))?;
        let date = reference.date;
        let cut = match reference.comparison {
            Comparison::Pace(time) => Some(time),
            Comparison::CompleteDay => None,
        };
        let yesterday = date.pred_opt().unwrap_or(date);
        let baseline_dates: Vec<NaiveDate> = window
            .map(|w| w.baseline_dates())
            .unwrap_or_default()
            .into_iter()
            .filter(|d| *d < date)
            .collect();
        // Each day up to the same local time (whole days when complete).
        let mut dates: Vec<NaiveDate> = baseline_dates.clone();
        dates.extend([yesterday, date]);
        dates.sort();
        dates.dedup();
        let prefixes: Vec<(NaiveDate, (u64, u64))> = dates
            .iter()
            .map(|d| (*d, pace::day_range(*d, tz, cut)))
            .collect();
        let whole: Vec<(NaiveDate, (u64, u64))> = baseline_dates
            .iter()
            .map(|d| (*d, pace::day_range(*d, tz, None)))
            .collect();
        // Whether a day has any event: the board's day so far, the others whole.
        let data_days: Vec<(u64, (u64, u64))> = dates
            .iter()
            .map(|d| {
                let range = pace::day_range(*d, tz, (*d == date).then_some(cut).flatten());
                (range.0, range)
            })
            .collect();
        let with_data = days_with_data(&self.store, &data_days).await?;
        let (day_from, day_to) = pace::day_range(date, tz, None);
        let elapsed = (pace::day_range(date, tz, cut).1 - day_from) as f64
            / (day_to - day_from).max(1) as f64;

        let definitions = self.definitions.all().await;
        let all_values = futures_util::future::join_all(definitions.iter().map(|kpi| {
            let (prefixes, whole, with_data) = (&prefixes, &whole, &with_data);
            async move {
                let at_pace = self.daily(kpi, tz, prefixes, with_data).await?;
                // Whole baseline days, for the share of the day that scales the
                // levels of counts and sums at pace (cached once rolled up).
                let full = if cut.is_some() && kpi.accumulates() && !whole.is_empty() {
                    Some(self.daily(kpi, tz, whole, with_data).await?)
                } else {
                    None
                };
                Ok::<_, KpiError>((at_pace, full))
            }
        }))
        .await;
        let day = board::Day {
            date,
            yesterday,
            baseline_dates,
            comparison: reference.comparison,
            elapsed,
        };
        let mut entries = Vec::new();
        for (kpi, values) in definitions.iter().zip(all_values) {
            let (at_pace, whole) = values?;
            let observed = board::Observed {
                at_pace: &at_pace,
                whole: whole.as_ref(),
            };
            entries.push(board::entry(kpi, &day, observed));
        }
        let today_local = local_date(now, tz);
        Ok(Board {
            launch: launch.as_ref().map(|l| l.launch_id.clone()),
            tz: tz.name().to_owned(),
            date: date.to_string(),
            comparison: reference.comparison.label(),
            in_window: window.map(|w| w.contains(today_local)),
            window: window.map(|w| (w.d0.to_string(), w.last.to_string())),
            kpis: entries,
        })
    }

    /// The value of KPI `id` over its bucket (hour or day, in the current
    /// launch's time zone) holding `at` (epoch seconds), up to `at`: the same
    /// part of the bucket as the board's value now, for `change_pct` rules.
    pub async fn value_at(&self, id: &str, at: u64) -> Result<Option<f64>, KpiError> {
        let Some(kpi) = self.definitions.get(id).await else {
            return Ok(None);
        };
        let (_, tz) = self.current_tz().await?;
        let start = bucket_of(kpi.grain, tz, at);
        let values = query::run(
            &self.store,
            &self.cache,
            &kpi,
            kpi.grain,
            tz.name(),
            &[(start, at.max(start + 1))],
        )
        .await?;
        Ok(match values.get(&start) {
            Some(v) => *v,
            None if empty_is_zero(kpi.aggregation) => Some(0.0),
            None => None,
        })
    }

    /// `kpi` per `grain` bucket of `[from, to)` in `tz`, every bucket present
    /// ([`query::fill_gaps`]).
    pub async fn values(
        &self,
        kpi: &Kpi,
        grain: Grain,
        tz: Tz,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, Option<f64>)>, KpiError> {
        let values = query::run(
            &self.store,
            &self.cache,
            kpi,
            grain,
            tz.name(),
            &[(from, to)],
        )
        .await?;
        Ok(query::fill_gaps(kpi, grain, tz, from, to, &values))
    }

    /// KPI `id` per bucket over `range`, gaps filled.
    pub async fn series(&self, id: &str, range: SeriesRange) -> Result<Series, KpiError> {
        let kpi = self.kpi(id).await?;
        let SeriesRange { from, to, .. } = range;
        let tz = match range.tz {
            Some(tz) => tz,
            None => self.current_tz().await?.1,
        };
        let grain = range.grain.unwrap_or(kpi.grain);
        let points = self
            .values(&kpi, grain, tz, from, to)
            .await?
            .into_iter()
            .map(|(start, value)| SeriesPoint {
                start: tz
                    .timestamp_opt(start as i64, 0)
                    .single()
                    .map(|t| t.to_rfc3339()),
                value,
                status: kpi.status(value),
            })
            .collect();
        Ok(Series {
            id: kpi.id,
            grain,
            tz: tz.name().to_owned(),
            target: kpi.target,
            points,
        })
    }

    /// Every version of KPI `id`, oldest first; not found when it has none.
    pub async fn history(&self, id: &str) -> Result<Vec<DefinitionRow>, KpiError> {
        let rows = self.definitions.history(id).await?;
        if rows.is_empty() {
            return Err(KpiError::NotFound(format!("KPI `{id}`")));
        }
        Ok(rows)
    }

    /// Checks `kpi` and stores it as a new version (unless unchanged); answers
    /// the version now current.
    pub async fn define(&self, kpi: Kpi, actor: &str) -> Result<u32, KpiError> {
        kpi.validate()?;
        Ok(self.definitions.save(kpi, Source::Api, actor).await?)
    }

    /// Checks and records a launch, declared now by `actor`.
    pub async fn declare_launch(&self, new: NewLaunch, actor: &str) -> Result<LaunchRow, KpiError> {
        let row = new.validate(uuid::Uuid::new_v4().to_string(), self.clock.now_ms(), actor)?;
        launch::insert(&self.store, &row).await?;
        Ok(row)
    }

    /// Every launch, newest first.
    pub async fn launches(&self) -> Result<Vec<LaunchRow>, KpiError> {
        Ok(launch::list(&self.store).await?)
    }

    /// The launch `id` (or `current`).
    pub async fn launch(&self, id: &str) -> Result<LaunchRow, KpiError> {
        launch::find(&self.store, id)
            .await?
            .ok_or_else(|| KpiError::NotFound(format!("launch `{id}`")))
    }

    /// The baseline days and each D+N day of launch `id` with every KPI's
    /// value and status; today as the board judges it (at pace) when the
    /// launch is the current one; days to come have no data.
    pub async fn days(&self, id: &str) -> Result<LaunchDays, KpiError> {
        let launch = self.launch(id).await?;
        let tz = launch.tz()?;
        let window = launch.window(tz);
        let today = local_date(self.now_secs(), tz);
        let dates = launch::dates(&window);
        let ranges: Vec<(NaiveDate, (u64, u64))> = dates
            .iter()
            .map(|d| (*d, pace::day_range(*d, tz, None)))
            .collect();
        let past: Vec<(u64, (u64, u64))> = ranges
            .iter()
            .filter(|(d, _)| *d <= today)
            .map(|(_, r)| (r.0, *r))
            .collect();
        let with_data = days_with_data(&self.store, &past).await?;
        let definitions = self.definitions.all().await;
        let all_values = futures_util::future::join_all(
            definitions
                .iter()
                .map(|kpi| self.daily(kpi, tz, &ranges, &with_data)),
        )
        .await;
        let mut per_kpi = BTreeMap::new();
        for (kpi, values) in definitions.into_iter().zip(all_values) {
            per_kpi.insert(kpi.id.clone(), (kpi, values?));
        }
        // Today is judged as the board judges it, like for like; only when this
        // launch is the current one (the board reads the current launch).
        let current = launch::current(&self.store).await?;
        let today_board = match current {
            Some(c) if c.launch_id == launch.launch_id && dates.contains(&today) => {
                Some(self.board_on(Some(today), false).await?)
            }
            _ => None,
        };
        Ok(LaunchDays {
            launch: launch.view(),
            days: launch::days(&window, today, &per_kpi, today_board.as_ref()),
        })
    }
}
