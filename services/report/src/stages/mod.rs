//! Rollout stage gates of a launch: `GET /v1/launches/{id}/stages`, and
//! [`gates`], which the report calls.
//!
//! ```text
//! LaunchRow.stages (JSON) -> windows()      each stage's [from, to) in whole intervals
//!   per stage, over the SAME window for both sides (the launch's release | any other):
//!   store::counters   -> traffic()  -> error ratio per interval
//!   store::histograms -> latency()  -> p50 / p95 / p99 per interval
//!     (none: store::classic -> classic_latency(), the `_bucket{le}` family)
//!   store::conversions (each ratio KPI) -> conversion() -> the KPI per interval
//!   -> gate::stage_gate (the judge, Holm across the stage's metrics)
//!   -> pass | fail | not_enough_data, every metric's judgement
//! ```
//!
//! Contract: a release is read from the first label of
//! `[report.stages] release_labels` a series has (its own labels, then its
//! resource attributes), and from the `release` column of events; series and
//! events without one take no side. An interval counts for a side only when
//! the side had at least `min_count` requests (or denominator events) in it:
//! a ratio of 1 error in 2 requests is noise, and a stage with almost no
//! traffic has too few such intervals to judge (`not_enough_data`). Only whole
//! intervals that have passed count, as only whole hours count for the KPIs.
//!
//! Everything here but [`gates`] is pure; the SQL is in [`store`].

pub mod routes;
pub mod store;

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone};
use chrono_tz::Tz;
use hypercare_http::ApiError;
use hypercare_http::error::ErrorCode;
use hypercare_kpis::KpiError;
use hypercare_kpis::calendar::day_start;
use hypercare_kpis::definition::{Aggregation, Direction as KpiDirection};
use hypercare_kpis::launch::{LaunchRow, Stage};
use hypercare_kpis::{KpiState, sql::MAX_EXECUTION_SECS};
use serde::{Deserialize, Serialize};

use crate::ReportState;
use crate::gate::{GateMetric, GateVerdict, stage_gate};
use crate::judge::{Direction, JudgeSettings, Method, Verdict, median};

/// The `[report.stages]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StageSettings {
    /// The length of one value of a metric, in seconds.
    pub interval_secs: u64,
    /// A stage longer than this many intervals is cut in longer ones (a
    /// multiple of `interval_secs`), so that a read stays bounded.
    pub max_intervals: u64,
    /// Fewer intervals than this on either side: `not_enough_data`.
    pub min_intervals: usize,
    /// Fewer requests (or denominator events) in an interval: the interval
    /// does not count for that side.
    pub min_count: u64,
    /// The labels (then resource attributes) that name a series' release, the first found.
    pub release_labels: Vec<String>,
    /// The request counter.
    pub requests_metric: String,
    /// The label of the counter that tells errors from the rest.
    pub error_label: String,
    /// The values of `error_label` that are errors (a regular expression of the whole value).
    pub error_values: String,
    /// The request duration histogram.
    pub duration_metric: String,
    /// The latency quantiles compared, each a fraction.
    pub quantiles: Vec<f64>,
    /// The smallest relative change of the error ratio worth a verdict.
    pub error_ratio_min_effect: f64,
    /// The smallest relative change of a latency quantile worth a verdict.
    pub latency_min_effect: f64,
    /// The smallest relative change of a conversion KPI worth a verdict.
    pub conversion_min_effect: f64,
}

impl Default for StageSettings {
    fn default() -> Self {
        Self {
            interval_secs: 300,
            max_intervals: 2000,
            min_intervals: 6,
            min_count: 20,
            release_labels: vec!["release".into(), "version".into(), "service.version".into()],
            requests_metric: "http_requests_total".into(),
            error_label: "status".into(),
            error_values: "5..".into(),
            duration_metric: "http_request_duration_seconds".into(),
            quantiles: vec![0.5, 0.95, 0.99],
            error_ratio_min_effect: 0.10,
            latency_min_effect: 0.10,
            conversion_min_effect: 0.05,
        }
    }
}

impl StageSettings {
    /// The first setting out of its range: `(field, reason)`, the field as
    /// `[report]` names it (`stages.interval_secs`).
    /// The first setting out of its range: `(field, reason)`.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        if !(10..=86_400).contains(&self.interval_secs) {
            return Err((
                "stages.interval_secs",
                "must be between 10 and 86400 seconds",
            ));
        }
        if !(10..=20_000).contains(&self.max_intervals) {
            return Err(("stages.max_intervals", "must be between 10 and 20000"));
        }
        if self.min_intervals < 2 {
            return Err(("stages.min_intervals", "must be at least 2"));
        }
        if self.release_labels.is_empty() || self.release_labels.iter().any(|l| l.is_empty()) {
            return Err((
                "stages.release_labels",
                "must name at least one label, none empty",
            ));
        }
        if self.requests_metric.is_empty() || self.duration_metric.is_empty() {
            return Err(("stages.requests_metric", "metric names must not be empty"));
        }
        if self.error_label.is_empty() || self.error_values.is_empty() {
            return Err((
                "stages.error_label",
                "the error label and its values must not be empty",
            ));
        }
        if self.quantiles.len() > 10 || self.quantiles.iter().any(|q| !(*q > 0.0 && *q < 1.0)) {
            return Err((
                "stages.quantiles",
                "must be at most 10 fractions between 0 and 1, e.g. 0.95",
            ));
        }
        for (field, effect) in [
            ("stages.error_ratio_min_effect", self.error_ratio_min_effect),
            ("stages.latency_min_effect", self.latency_min_effect),
            ("stages.conversion_min_effect", self.conversion_min_effect),
        ] {
            if !(0.0..10.0).contains(&effect) {
                return Err((field, "must be a fraction such as 0.1 (10 %)"));
            }
        }
        Ok(())
    }
}

/// Why the stage gates could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Kpi(#[from] KpiError),
    #[error("launch `{launch}` has stages that cannot be read: {reason}")]
    BadStages { launch: String, reason: String },
    #[error(
        "the stage query took longer than {MAX_EXECUTION_SECS} s and was stopped; raise report.stages.interval_secs"
    )]
    TooSlow,
    #[error(
        "`{metric}` has more than {} series x intervals in one stage; raise report.stages.interval_secs or lower max_intervals",
        store::MAX_ROWS
    )]
    TooManyRows { metric: String },
    #[error("the ClickHouse query failed: {0}; retry later")]
    Store(clickhouse::error::Error),
}

impl From<clickhouse::error::Error> for StageError {
    fn from(error: clickhouse::error::Error) -> Self {
        // ClickHouse's "timeout exceeded" (code 159) is the query's own deadline.
        if error.to_string().contains("Code: 159") {
            StageError::TooSlow
        } else {
            StageError::Store(error)
        }
    }
}

impl From<StageError> for ApiError {
    fn from(error: StageError) -> Self {
        match error {
            StageError::Kpi(e) => e.into(),
            StageError::BadStages { .. } => {
                ApiError::new(ErrorCode::InternalError, error.to_string())
            }
            StageError::TooSlow | StageError::TooManyRows { .. } => {
                ApiError::new(ErrorCode::QueryTooSlow, error.to_string())
            }
            StageError::Store(e) => {
                tracing::warn!(error = %e, "A stage gate query failed.");
                ApiError::storage(e)
            }
        }
    }
}

// --- Windows ----------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    /// It starts later: nothing to judge yet.
    ToCome,
    /// It started and the next has not: judged up to now.
    UnderWay,
    /// The next stage started (or the launch window ended).
    Over,
}

/// A stage's window, cut in whole intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct StageWindow {
    pub name: String,
    pub percent: f64,
    pub starts_at: String,
    /// `[from, to)` in epoch seconds, to at most now.
    pub from: u64,
    pub to: u64,
    pub state: StageState,
    /// The length of one interval (a multiple of `interval_secs`).
    pub step: u64,
    /// Whole intervals in `[from, to)`.
    pub intervals: u64,
}

/// The stages as stored with the launch (JSON; empty text: none).
pub fn parse_stages(launch: &LaunchRow) -> Result<Vec<Stage>, StageError> {
    if launch.stages.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(&launch.stages).map_err(|e| StageError::BadStages {
        launch: launch.launch_id.clone(),
        reason: e.to_string(),
    })
}

/// Each stage's window, in the order of their start: from its `starts_at` to
/// the next stage's, the last one to the end of the launch window; all cut
/// at `now`. A stage runs until the next starts, whatever its percent.
pub fn windows(
    stages: &[Stage],
    now: u64,
    window_end: u64,
    settings: &StageSettings,
) -> Result<Vec<StageWindow>, String> {
    let mut starts: Vec<(u64, &Stage)> = Vec::with_capacity(stages.len());
    for stage in stages {
        let at = DateTime::parse_from_rfc3339(&stage.starts_at)
            .map_err(|e| format!("stage `{}`: starts_at: {e}", stage.name))?;
        starts.push((at.timestamp().max(0) as u64, stage));
    }
    starts.sort_by_key(|(at, _)| *at);
    let mut out = Vec::with_capacity(starts.len());
    for (i, (from, stage)) in starts.iter().enumerate() {
        let end = match starts.get(i + 1) {
            Some((next, _)) => *next,
            None => window_end.max(*from),
        };
        let state = if now < *from {
            StageState::ToCome
        } else if now < end {
            StageState::UnderWay
        } else {
            StageState::Over
        };
        let to = end.min(now).max(*from);
        let (step, intervals) = intervals_of(to - from, settings);
        out.push(StageWindow {
            name: stage.name.clone(),
            percent: stage.percent,
            starts_at: stage.starts_at.clone(),
            from: *from,
            to,
            state,
            step,
            intervals,
        });
    }
    Ok(out)
}

/// The interval that cuts `span` seconds into at most `max_intervals` whole
/// ones (a multiple of `interval_secs`), and how many whole ones there are.
pub fn intervals_of(span: u64, settings: &StageSettings) -> (u64, u64) {
    let base = settings.interval_secs.max(1);
    let needed = span.div_ceil(settings.max_intervals.max(1));
    let step = needed.div_ceil(base).max(1) * base;
    (step, span / step)
}

// --- Per-interval values ------------------------------------------------------

/// Which release a series or an event is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The launch's release.
    New,
    /// Any other.
    Old,
}

fn side_of(release: &str, new_release: &str) -> Option<Side> {
    match release {
        "" => None,
        r if r == new_release => Some(Side::New),
        _ => Some(Side::Old),
    }
}

fn index(side: Side) -> usize {
    match side {
        Side::New => 0,
        Side::Old => 1,
    }
}

/// One counter series over one interval (`slot` -1: the hour before the
/// stage, whose last point starts the first interval).
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Deserialize)]
pub struct CounterSlot {
    pub series_id: u64,
    pub slot: i64,
    pub release: String,
    pub error: u8,
    pub delta: u8,
    pub total: f64,
    pub first: f64,
    pub last: f64,
}

/// Requests and errors of one side per interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Traffic {
    pub requests: Vec<f64>,
    pub errors: Vec<f64>,
}

/// Each side's requests and errors per interval, from `rows` sorted by series
/// then slot: a series' increase in an interval is the alerts' counter rule
/// ([`hypercare_alerts::evaluate::counter_increase`]) with the series' last
/// point of an earlier interval as "before".
pub fn traffic(rows: &[CounterSlot], new_release: &str, intervals: usize) -> [Traffic; 2] {
    let mut sides = [Traffic::default(), Traffic::default()];
    for side in &mut sides {
        side.requests = vec![0.0; intervals];
        side.errors = vec![0.0; intervals];
    }
    let mut before: Option<(u64, f64)> = None;
    for row in rows {
        let previous = before
            .filter(|(series, _)| *series == row.series_id)
            .map(|(_, last)| last);
        before = Some((row.series_id, row.last));
        let Some(side) = side_of(&row.release, new_release) else {
            continue;
        };
        let Ok(slot) = usize::try_from(row.slot) else {
            continue;
        };
        if slot >= intervals {
            continue;
        }
        let increase = hypercare_alerts::evaluate::counter_increase(
            row.delta == 1,
            row.total,
            row.first,
            row.last,
            previous,
        );
        let traffic = &mut sides[index(side)];
        traffic.requests[slot] += increase;
        if row.error == 1 {
            traffic.errors[slot] += increase;
        }
    }
    sides
}

/// The error ratio of each interval with at least `min_count` requests.
pub fn error_ratios(traffic: &Traffic, min_count: u64) -> Vec<f64> {
    traffic
        .requests
        .iter()
        .zip(&traffic.errors)
        .filter(|(requests, _)| **requests >= min_count as f64 && **requests > 0.0)
        .map(|(requests, errors)| errors / requests)
        .collect()
}

/// One histogram series over one interval (`slot` -1 as for counters).
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Deserialize)]
pub struct HistogramSlot {
    pub series_id: u64,
    pub slot: i64,
    pub release: String,
    pub delta: u8,
    pub bounds: Vec<f64>,
    pub total: Vec<u64>,
    pub first: Vec<u64>,
    pub last: Vec<u64>,
}

/// A histogram's bounds and its counts per bucket.
type Buckets = (Vec<f64>, Vec<u64>);

/// Each side's quantiles per interval with at least `min_count` observations:
/// `[side][quantile]`, the values in interval order. A series' bucket counts
/// in an interval are [`hypercare_ingest::quantile::bucket_counts_in_window`]
/// with its last point of an earlier interval as "before" (its first point
/// in the interval when it has none, as for counters); series of a side add
/// up when their bounds are the same (others are left out of that interval).
pub fn latency(
    rows: &[HistogramSlot],
    new_release: &str,
    intervals: usize,
    quantiles: &[f64],
    min_count: u64,
) -> [Vec<Vec<f64>>; 2] {
    let mut buckets: [Vec<Option<Buckets>>; 2] = [vec![None; intervals], vec![None; intervals]];
    let mut before: Option<(u64, &[u64])> = None;
    for row in rows {
        let previous = before
            .filter(|(series, _)| *series == row.series_id)
            .map(|(_, last)| last);
        before = Some((row.series_id, &row.last));
        let Some(side) = side_of(&row.release, new_release) else {
            continue;
        };
        let Ok(slot) = usize::try_from(row.slot) else {
            continue;
        };
        if slot >= intervals || row.last.len() != row.bounds.len() + 1 {
            continue;
        }
        let counts = hypercare_ingest::quantile::bucket_counts_in_window(
            row.delta == 1,
            &row.total,
            &row.last,
            previous.unwrap_or(&row.first),
        );
        match &mut buckets[index(side)][slot] {
            entry @ None => *entry = Some((row.bounds.clone(), counts)),
            Some((bounds, sum)) if *bounds == row.bounds && sum.len() == counts.len() => {
                for (s, c) in sum.iter_mut().zip(counts) {
                    *s += c;
                }
            }
            Some(_) => {}
        }
    }
    buckets.map(|side| {
        quantiles
            .iter()
            .map(|q| {
                side.iter()
                    .flatten()
                    .filter(|(_, counts)| counts.iter().sum::<u64>() >= min_count.max(1))
                    .filter_map(|(bounds, counts)| {
                        hypercare_ingest::quantile::estimate(bounds, counts, *q)
                    })
                    .collect()
            })
            .collect()
    })
}

/// One `<duration_metric>_bucket` counter series (a classic Prometheus
/// histogram's bucket) over one interval (`slot` -1 as for counters).
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Deserialize)]
pub struct ClassicSlot {
    pub series_id: u64,
    pub slot: i64,
    pub release: String,
    /// The series' `le` label as sent (`0.25`, `+Inf`, ...).
    pub le: String,
    pub delta: u8,
    pub total: f64,
    pub first: f64,
    pub last: f64,
}

/// Each side's quantiles per interval from a classic histogram family, as
/// [`latency`] answers them from native histograms: a bucket series' increase
/// in an interval is the stage's counter rule (as in [`traffic`]: resets
/// added back, no extrapolation, the last point of an earlier interval as
/// "before"); a side's buckets add up per `le` and the quantile is PromQL's
/// `bucketQuantile` ([`hypercare_ingest::classic::bucket_quantile`], rank
/// q x count, the rule `/v1/metrics/quantile` uses for classic families). An
/// interval counts when its `+Inf` bucket grew by at least `min_count`; `le`
/// values that are not numbers are left out, as PromQL does.
pub fn classic_latency(
    rows: &[ClassicSlot],
    new_release: &str,
    intervals: usize,
    quantiles: &[f64],
    min_count: u64,
) -> [Vec<Vec<f64>>; 2] {
    use hypercare_ingest::classic::{bucket_quantile, parse_le};
    // Per side, per interval: (upper bound, increase), one entry per bound.
    let mut buckets: [Vec<Vec<(f64, f64)>>; 2] =
        [vec![Vec::new(); intervals], vec![Vec::new(); intervals]];
    let mut before: Option<(u64, f64)> = None;
    for row in rows {
        let previous = before
            .filter(|(series, _)| *series == row.series_id)
            .map(|(_, last)| last);
        before = Some((row.series_id, row.last));
        let (Some(side), Some(upper)) = (side_of(&row.release, new_release), parse_le(&row.le))
        else {
            continue;
        };
        let Ok(slot) = usize::try_from(row.slot) else {
            continue;
        };
        if slot >= intervals {
            continue;
        }
        let increase = hypercare_alerts::evaluate::counter_increase(
            row.delta == 1,
            row.total,
            row.first,
            row.last,
            previous,
        );
        let interval = &mut buckets[index(side)][slot];
        match interval.iter_mut().find(|(bound, _)| *bound == upper) {
            Some((_, sum)) => *sum += increase,
            None => interval.push((upper, increase)),
        }
    }
    buckets.map(|side| {
        quantiles
            .iter()
            .map(|q| {
                side.iter()
                    .filter(|interval| {
                        interval
                            .iter()
                            .any(|(b, n)| *b == f64::INFINITY && *n >= min_count.max(1) as f64)
                    })
                    .map(|interval| bucket_quantile(*q, interval))
                    .filter(|v| v.is_finite())
                    .collect()
            })
            .collect()
    })
}

/// One release's numerator and denominator events of a ratio KPI in one interval.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Deserialize)]
pub struct ConversionSlot {
    pub slot: i64,
    pub release: String,
    pub a: f64,
    pub b: f64,
}

/// Each side's KPI value (`numerator / denominator x scale`) per interval with
/// at least `min_count` denominator events.
pub fn conversion(
    rows: &[ConversionSlot],
    new_release: &str,
    intervals: usize,
    scale: f64,
    min_count: u64,
) -> [Vec<f64>; 2] {
    let mut sums = [vec![(0.0, 0.0); intervals], vec![(0.0, 0.0); intervals]];
    for row in rows {
        let (Some(side), Ok(slot)) = (
            side_of(&row.release, new_release),
            usize::try_from(row.slot),
        ) else {
            continue;
        };
        if let Some((a, b)) = sums[index(side)].get_mut(slot) {
            *a += row.a;
            *b += row.b;
        }
    }
    sums.map(|side| {
        side.into_iter()
            .filter(|(_, b)| *b >= min_count as f64 && *b > 0.0)
            .map(|(a, b)| a / b * scale)
            .collect()
    })
}

// --- The gate ---------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    ErrorRatio,
    Latency,
    Conversion,
}

/// A metric's values per interval on each side, ready for the judge.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub name: String,
    pub kind: MetricKind,
    pub direction: Direction,
    pub min_effect: f64,
    pub new_release: Vec<f64>,
    pub old_release: Vec<f64>,
}

/// One side of a metric: how many intervals counted and their median.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SideValues {
    pub intervals: usize,
    pub median: Option<f64>,
}

impl SideValues {
    fn of(values: &[f64]) -> Self {
        Self {
            intervals: values.len(),
            median: median(&mut values.to_vec()),
        }
    }
}

/// The judge's answer on one metric of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MetricGate {
    /// `error_ratio`, `latency_p95`, ... or the KPI's id.
    pub metric: String,
    pub kind: MetricKind,
    #[schema(value_type = String, example = "lower_is_better")]
    pub direction: Direction,
    pub min_effect: f64,
    /// `better`, `worse`, `no_change` or `not_enough_data`.
    #[schema(value_type = String, example = "worse")]
    pub verdict: Verdict,
    pub p: Option<f64>,
    /// p after Holm's correction across the stage's metrics.
    pub p_adjusted: Option<f64>,
    pub u: Option<f64>,
    #[schema(value_type = Option<String>)]
    pub method: Option<Method>,
    /// Hodges-Lehmann shift, new release - old, in the metric's unit.
    pub shift: Option<f64>,
    /// The shift relative to the old release's median.
    pub relative_shift: Option<f64>,
    pub new_release: SideValues,
    pub old_release: SideValues,
}

/// One stage, its window and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StageGate {
    pub name: String,
    pub percent: f64,
    /// As declared.
    pub starts_at: String,
    /// The window judged, `[from, to)`, RFC 3339 in the launch's time zone.
    pub from: String,
    pub to: String,
    pub state: StageState,
    /// The length of one value, in seconds.
    pub interval_secs: u64,
    /// Whole intervals in the window.
    pub intervals: u64,
    /// The other releases seen in the window (the old side).
    pub compared_with: Vec<String>,
    /// `pass`, `fail` or `not_enough_data`.
    #[schema(value_type = String, example = "fail")]
    pub verdict: GateVerdict,
    /// The metrics judged significantly worse (the reasons of a `fail`).
    pub failed: Vec<String>,
    pub metrics: Vec<MetricGate>,
    /// Metrics left out: no series (or, for a KPI, no event) of any release
    /// in the window, e.g. a service that exports no duration histogram. The
    /// error ratio is never left out: without requests the stage has
    /// `not_enough_data`.
    pub unmeasured: Vec<String>,
}

/// Every stage of a launch.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Stages {
    pub launch: String,
    /// The new release, compared with every other one.
    pub release: String,
    pub tz: String,
    /// The family-wise false alarm rate of a stage's verdicts.
    pub alpha: f64,
    pub stages: Vec<StageGate>,
}

fn rfc3339(secs: u64, tz: Tz) -> String {
    tz.timestamp_opt(secs as i64, 0)
        .single()
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

/// A stage's verdict from its metrics' values (pure).
pub fn judge_stage(
    window: &StageWindow,
    measured: &[Measured],
    compared_with: Vec<String>,
    judge: JudgeSettings,
    tz: Tz,
) -> StageGate {
    let metrics: Vec<GateMetric<'_>> = measured
        .iter()
        .map(|m| GateMetric {
            name: &m.name,
            direction: m.direction,
            min_effect: m.min_effect,
            new_release: &m.new_release,
            old_release: &m.old_release,
        })
        .collect();
    let gate = stage_gate(&metrics, judge);
    let metrics: Vec<MetricGate> = measured
        .iter()
        .zip(gate.metrics)
        .map(|(m, j)| MetricGate {
            metric: m.name.clone(),
            kind: m.kind,
            direction: m.direction,
            min_effect: m.min_effect,
            verdict: j.verdict,
            p: j.p,
            p_adjusted: j.p_adjusted,
            u: j.u,
            method: j.method,
            shift: j.shift,
            relative_shift: j.relative_shift,
            new_release: SideValues::of(&m.new_release),
            old_release: SideValues::of(&m.old_release),
        })
        .collect();
    StageGate {
        name: window.name.clone(),
        percent: window.percent,
        starts_at: window.starts_at.clone(),
        from: rfc3339(window.from, tz),
        to: rfc3339(window.to, tz),
        state: window.state,
        interval_secs: window.step,
        intervals: window.intervals,
        compared_with,
        verdict: gate.verdict,
        failed: metrics
            .iter()
            .filter(|m| m.verdict == Verdict::Worse)
            .map(|m| m.metric.clone())
            .collect(),
        metrics,
        unmeasured: Vec::new(),
    }
}

/// The old releases' names, at most a few, in order.
fn old_releases<'a>(names: impl Iterator<Item = &'a str>, new_release: &str) -> Vec<String> {
    let set: BTreeSet<&str> = names
        .filter(|r| !r.is_empty() && *r != new_release)
        .collect();
    set.into_iter().take(20).map(str::to_owned).collect()
}

fn quantile_name(q: f64) -> String {
    // 0.999 x 100 is 99.89999999999999 in binary: a millionth is enough.
    format!("latency_p{}", (q * 100e6).round() / 1e6)
}

/// Every stage of `launch` judged as of now: the domain function behind
/// `GET /v1/launches/{id}/stages`, for the report too.
pub async fn gates(
    kpis: &KpiState,
    launch: &LaunchRow,
    report: &ReportState,
    now: u64,
) -> Result<Stages, StageError> {
    let settings = &report.settings.stages;
    let tz = launch.tz().map_err(KpiError::from)?;
    let window = launch.window(tz);
    let window_end = day_start(window.last + chrono::Days::new(1), tz);
    let stages = windows(&parse_stages(launch)?, now, window_end, settings).map_err(|reason| {
        StageError::BadStages {
            launch: launch.launch_id.clone(),
            reason,
        }
    })?;
    let judge = JudgeSettings {
        alpha: report.settings.alpha,
        min_values: settings.min_intervals,
    };
    let ratio_kpis: Vec<_> = kpis
        .definitions()
        .all()
        .await
        .into_iter()
        .filter(|k| k.aggregation == Aggregation::Ratio)
        .collect();
    let new = launch.release.as_str();
    let mut out = Vec::with_capacity(stages.len());
    for stage in &stages {
        let n = stage.intervals as usize;
        let span = store::Span {
            from: stage.from,
            step: stage.step,
            intervals: stage.intervals,
        };
        let mut measured = Vec::new();
        let mut unmeasured = Vec::new();
        if n == 0 {
            out.push(judge_stage(stage, &measured, Vec::new(), judge, tz));
            continue;
        }
        let counters = store::counters(&kpis.store, settings, span).await?;
        let [new_traffic, old_traffic] = traffic(&counters, new, n);
        measured.push(Measured {
            name: "error_ratio".into(),
            kind: MetricKind::ErrorRatio,
            direction: Direction::LowerIsBetter,
            min_effect: settings.error_ratio_min_effect,
            new_release: error_ratios(&new_traffic, settings.min_count),
            old_release: error_ratios(&old_traffic, settings.min_count),
        });
        let histograms = store::histograms(&kpis.store, settings, span).await?;
        // No native histogram: the classic family a Prometheus sends.
        let classic = if histograms.is_empty() {
            store::classic(&kpis.store, settings, span).await?
        } else {
            Vec::new()
        };
        let [new_q, old_q] = if histograms.is_empty() {
            classic_latency(&classic, new, n, &settings.quantiles, settings.min_count)
        } else {
            latency(&histograms, new, n, &settings.quantiles, settings.min_count)
        };
        for ((q, new_values), old_values) in settings.quantiles.iter().zip(new_q).zip(old_q) {
            if histograms.is_empty() && classic.is_empty() {
                unmeasured.push(quantile_name(*q));
                continue;
            }
            measured.push(Measured {
                name: quantile_name(*q),
                kind: MetricKind::Latency,
                direction: Direction::LowerIsBetter,
                min_effect: settings.latency_min_effect,
                new_release: new_values,
                old_release: old_values,
            });
        }
        let mut seen: BTreeSet<String> = BTreeSet::new();
        seen.extend(counters.iter().map(|r| r.release.clone()));
        seen.extend(histograms.iter().map(|r| r.release.clone()));
        seen.extend(classic.iter().map(|r| r.release.clone()));
        for kpi in &ratio_kpis {
            let rows = store::conversions(&kpis.store, kpi, span).await?;
            let [new_values, old_values] = conversion(&rows, new, n, kpi.scale, settings.min_count);
            seen.extend(rows.iter().map(|r| r.release.clone()));
            if rows.is_empty() {
                unmeasured.push(kpi.id.clone());
                continue;
            }
            measured.push(Measured {
                name: kpi.id.clone(),
                kind: MetricKind::Conversion,
                direction: match kpi.direction {
                    KpiDirection::HigherIsBetter => Direction::HigherIsBetter,
                    KpiDirection::LowerIsBetter => Direction::LowerIsBetter,
                },
                min_effect: settings.conversion_min_effect,
                new_release: new_values,
                old_release: old_values,
            });
        }
        let compared = old_releases(seen.iter().map(String::as_str), new);
        let mut gate = judge_stage(stage, &measured, compared, judge, tz);
        gate.unmeasured = unmeasured;
        out.push(gate);
    }
    Ok(Stages {
        launch: launch.launch_id.clone(),
        release: launch.release.clone(),
        tz: tz.name().to_owned(),
        alpha: judge.alpha,
        stages: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(name: &str, percent: f64, at: &str) -> Stage {
        Stage {
            name: name.into(),
            percent,
            starts_at: at.into(),
        }
    }

    const T0: u64 = 1_795_251_600; // 2026-11-21T09:00:00Z

    #[test]
    fn a_stage_runs_until_the_next_starts_and_the_last_until_now() {
        let stages = [
            stage("ten", 10.0, "2026-11-21T11:00:00Z"),
            stage("canary", 1.0, "2026-11-21T10:00:00+01:00"),
            stage("all", 100.0, "2026-11-21T15:00:00Z"),
        ];
        let settings = StageSettings::default();
        let now = T0 + 3 * 3600 + 1000; // 12:16:40Z
        let w = windows(&stages, now, T0 + 86_400, &settings).unwrap();
        let names: Vec<&str> = w.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["canary", "ten", "all"]);
        assert_eq!(
            (w[0].from, w[0].to, w[0].state),
            (T0, T0 + 7200, StageState::Over)
        );
        assert_eq!(w[0].intervals, 24);
        assert_eq!(
            (w[1].from, w[1].to, w[1].state),
            (T0 + 7200, now, StageState::UnderWay)
        );
        // 76 min 40 s: 15 whole intervals of 5 min, the one under way left out.
        assert_eq!((w[1].step, w[1].intervals), (300, 15));
        assert_eq!(
            (w[2].to, w[2].intervals, w[2].state),
            (w[2].from, 0, StageState::ToCome)
        );
        // Once the launch window ends, the last stage ends with it.
        let w = windows(&stages, T0 + 10 * 86_400, T0 + 86_400, &settings).unwrap();
        assert_eq!((w[2].to, w[2].state), (T0 + 86_400, StageState::Over));
        assert!(windows(&[stage("x", 1.0, "yesterday")], now, now, &settings).is_err());
    }

    #[test]
    fn a_long_stage_is_cut_in_longer_intervals() {
        let settings = StageSettings::default();
        assert_eq!(intervals_of(3600, &settings), (300, 12));
        assert_eq!(intervals_of(299, &settings), (300, 0));
        // 14 days at 5 min would be 4032 intervals: 15 min, 1344 of them.
        assert_eq!(intervals_of(14 * 86_400, &settings), (900, 1344));
        let (step, n) = intervals_of(14 * 86_400, &settings);
        assert!(n <= settings.max_intervals && step % 300 == 0);
    }

    fn counter(
        series: u64,
        slot: i64,
        release: &str,
        error: bool,
        first: f64,
        last: f64,
    ) -> CounterSlot {
        CounterSlot {
            series_id: series,
            slot,
            release: release.into(),
            error: u8::from(error),
            delta: 0,
            total: 0.0,
            first,
            last,
        }
    }

    #[test]
    fn counters_give_each_interval_its_increase_per_side() {
        let rows = [
            // Series 1, new release, all requests: lookback, then 3 intervals.
            counter(1, -1, "2.5", false, 90.0, 100.0),
            counter(1, 0, "2.5", false, 110.0, 200.0),
            counter(1, 1, "2.5", false, 210.0, 300.0),
            // A restart in interval 2: the last point alone.
            counter(1, 2, "2.5", false, 5.0, 40.0),
            // Series 2, new release, errors: no lookback (last - first).
            counter(2, 0, "2.5", true, 0.0, 3.0),
            counter(2, 2, "2.5", true, 4.0, 9.0),
            // Series 3, old release; series 4 has no release.
            counter(3, 0, "2.4", false, 1000.0, 2000.0),
            counter(3, 1, "2.4", false, 2100.0, 3000.0),
            counter(4, 0, "", false, 0.0, 1e9),
        ];
        let [new, old] = traffic(&rows, "2.5", 3);
        assert_eq!(new.requests, vec![103.0, 100.0, 46.0]);
        assert_eq!(new.errors, vec![3.0, 0.0, 6.0]);
        assert_eq!(old.requests, vec![1000.0, 1000.0, 0.0]);
        let ratios = error_ratios(&new, 50);
        assert_eq!(ratios, vec![3.0 / 103.0, 0.0]);
        assert_eq!(error_ratios(&old, 50), vec![0.0, 0.0]);
    }

    #[test]
    fn delta_counters_add_their_points() {
        let mut row = counter(1, 0, "2.5", false, 4.0, 6.0);
        row.delta = 1;
        row.total = 10.0;
        let [new, _] = traffic(&[row], "2.5", 1);
        assert_eq!(new.requests, vec![10.0]);
    }

    #[test]
    fn classic_buckets_give_each_interval_promqls_quantiles() {
        let b = |series, slot, release: &str, le: &str, first: f64, last: f64| ClassicSlot {
            series_id: series,
            slot,
            release: release.into(),
            le: le.into(),
            delta: 0,
            total: 0.0,
            first,
            last,
        };
        let rows = [
            // New release, one series per bucket: before the stage, then
            // interval 0 (100 observations: 50 <= 1, 90 <= 2) and interval 1
            // where the counters restart (40 observations, all <= 1).
            b(1, -1, "2.5", "1", 0.0, 10.0),
            b(1, 0, "2.5", "1", 12.0, 60.0),
            b(1, 1, "2.5", "1", 5.0, 40.0),
            b(2, -1, "2.5", "2", 0.0, 10.0),
            b(2, 0, "2.5", "2", 20.0, 100.0),
            b(2, 1, "2.5", "2", 5.0, 40.0),
            b(3, -1, "2.5", "+Inf", 0.0, 10.0),
            b(3, 0, "2.5", "+Inf", 30.0, 110.0),
            b(3, 1, "2.5", "+Inf", 5.0, 40.0),
            // Old release: interval 0 only 10 observations (under min_count),
            // and an `le` that is not a number, left out.
            b(4, 0, "2.4", "1", 0.0, 10.0),
            b(5, 0, "2.4", "+Inf", 0.0, 10.0),
            b(6, 0, "2.4", "fast", 0.0, 1000.0),
            // No release: no side.
            b(7, 0, "", "+Inf", 0.0, 1000.0),
        ];
        let [new, old] = classic_latency(&rows, "2.5", 2, &[0.5, 0.7, 0.95], 20);
        // Interval 0: rank 50 is the top of (0, 1]; rank 70 is 20 of the 40 in
        // (1, 2]; rank 95 is in +Inf: the highest finite bound. Interval 1:
        // every rank in (0, 1].
        assert_eq!(new, vec![vec![1.0, 0.5], vec![1.5, 0.7], vec![2.0, 0.95]]);
        assert_eq!(old, vec![Vec::<f64>::new(); 3]);
    }

    #[test]
    fn histograms_give_each_interval_its_quantiles() {
        let bounds = vec![0.1, 0.2, 0.4];
        let h = |series, slot, release: &str, first: Vec<u64>, last: Vec<u64>| HistogramSlot {
            series_id: series,
            slot,
            release: release.into(),
            delta: 0,
            bounds: bounds.clone(),
            total: Vec::new(),
            first,
            last,
        };
        let rows = [
            h(1, -1, "2.5", vec![0; 4], vec![10, 0, 0, 0]),
            // 100 fast observations in interval 0, 100 slow ones in 1.
            h(1, 0, "2.5", vec![20, 0, 0, 0], vec![110, 0, 0, 0]),
            h(1, 1, "2.5", vec![110, 10, 0, 0], vec![110, 0, 100, 0]),
            h(2, 0, "2.4", vec![0; 4], vec![0, 100, 0, 0]),
            // Too few observations: left out.
            h(2, 1, "2.4", vec![0, 100, 0, 0], vec![0, 105, 0, 0]),
        ];
        let [new, old] = latency(&rows, "2.5", 2, &[0.5], 20);
        assert_eq!(new[0].len(), 2);
        assert!(new[0][0] <= 0.1 && new[0][1] > 0.2, "{new:?}");
        assert_eq!(old[0].len(), 1);
        assert!(old[0][0] > 0.1 && old[0][0] <= 0.2);
    }

    #[test]
    fn conversions_are_computed_per_side_from_the_summed_events() {
        let row = |slot, release: &str, a, b| ConversionSlot {
            slot,
            release: release.into(),
            a,
            b,
        };
        let rows = [
            row(0, "2.5", 9.0, 30.0),
            row(0, "2.4", 40.0, 100.0),
            row(0, "2.3", 10.0, 100.0),
            row(1, "2.5", 1.0, 2.0),
            row(1, "", 1.0, 100.0),
        ];
        let [new, old] = conversion(&rows, "2.5", 2, 100.0, 20);
        assert_eq!(new, vec![30.0]);
        assert_eq!(old, vec![25.0]);
    }

    fn window() -> StageWindow {
        StageWindow {
            name: "canary".into(),
            percent: 1.0,
            starts_at: "2026-11-21T09:00:00Z".into(),
            from: T0,
            to: T0 + 3600,
            state: StageState::Over,
            step: 300,
            intervals: 12,
        }
    }

    #[test]
    fn a_stage_fails_naming_the_metric_that_is_worse() {
        let old: Vec<f64> = (0..12).map(|i| 0.005 + f64::from(i) * 0.0001).collect();
        let worse: Vec<f64> = old.iter().map(|x| x * 6.0).collect();
        let measured = [
            Measured {
                name: "error_ratio".into(),
                kind: MetricKind::ErrorRatio,
                direction: Direction::LowerIsBetter,
                min_effect: 0.1,
                new_release: worse,
                old_release: old.clone(),
            },
            Measured {
                name: "latency_p95".into(),
                kind: MetricKind::Latency,
                direction: Direction::LowerIsBetter,
                min_effect: 0.1,
                new_release: old.clone(),
                old_release: old.clone(),
            },
        ];
        let gate = judge_stage(
            &window(),
            &measured,
            vec!["2.4".into()],
            JudgeSettings::default(),
            chrono_tz::Europe::Paris,
        );
        assert_eq!(gate.verdict, GateVerdict::Fail);
        assert_eq!(gate.failed, vec!["error_ratio"]);
        assert_eq!(gate.from, "2026-11-21T10:00:00+01:00");
        assert_eq!(gate.metrics[0].new_release.intervals, 12);
        assert!(gate.metrics[0].relative_shift.unwrap() > 1.0);
        assert_eq!(gate.metrics[1].verdict, Verdict::NoChange);
    }

    #[test]
    fn quantiles_are_named_by_their_percent() {
        assert_eq!(quantile_name(0.95), "latency_p95");
        assert_eq!(quantile_name(0.5), "latency_p50");
        assert_eq!(quantile_name(0.999), "latency_p99.9");
    }

    #[test]
    fn the_defaults_are_in_range_and_bad_ones_are_named() {
        assert_eq!(StageSettings::default().check(), Ok(()));
        let bad = StageSettings {
            quantiles: vec![95.0],
            ..StageSettings::default()
        };
        assert_eq!(bad.check().unwrap_err().0, "stages.quantiles");
        let bad = StageSettings {
            interval_secs: 0,
            ..StageSettings::default()
        };
        assert_eq!(bad.check().unwrap_err().0, "stages.interval_secs");
    }
}
