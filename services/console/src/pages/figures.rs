//! How the product owner's pages (board, launch days, KPI) show KPI figures,
//! as pure rules: a value with its unit at the KPI's precision, a status in
//! words and a symbol (never by colour alone), the trend and the delta in
//! words, D+N and the rollout stage of a launch, local times with their zone
//! named, the sparkline of a tile and the baseline band of a chart.
//!
//! The numbers come from `hypercare_kpis` (the same answers as the API); this
//! module only decides how they read.

use chrono::{DateTime, NaiveDate, TimeZone, Timelike};
use chrono_tz::Tz;
use hypercare_kpis::board::Trend;
use hypercare_kpis::calendar::{day_start, local_date};
use hypercare_kpis::definition::Invalid;
use hypercare_kpis::definition::{Aggregation, Grain, Kpi, Status};
use hypercare_kpis::launch::{Stage, day_label};
use hypercare_kpis::pace::Window;
use maud::{Markup, html};

/// `value` at the KPI's precision. A declared precision, and money (sums and
/// averages), shows every digit ("20.00"); the six default digits of counts,
/// rates and latencies only as far as they carry something ("50", "42.5").
pub fn number(value: f64, kpi: &Kpi) -> String {
    let decimals = usize::from(kpi.decimals());
    let text = format!("{value:.decimals$}");
    let fixed =
        kpi.decimals.is_some() || matches!(kpi.aggregation, Aggregation::Sum | Aggregation::Avg);
    let text = if fixed || !text.contains('.') {
        text
    } else {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    };
    // A value rounded to zero from below reads "0", not "-0".
    if text
        .trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        text.trim_start_matches('-').to_owned()
    } else {
        text
    }
}

/// A derived figure (a baseline mean) at the KPI's declared precision, or at
/// most two decimals: the mean of seven days carries no sixth decimal.
pub fn approx_with_unit(value: f64, kpi: &Kpi) -> String {
    if kpi.decimals.is_some() {
        return with_unit(Some(value), kpi);
    }
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if kpi.unit.is_empty() {
        text.to_owned()
    } else {
        format!("{text} {}", kpi.unit)
    }
}

/// `value` with the KPI's unit, or "no data".
pub fn with_unit(value: Option<f64>, kpi: &Kpi) -> String {
    match value {
        None => "no data".to_owned(),
        Some(v) if kpi.unit.is_empty() => number(v, kpi),
        Some(v) => format!("{} {}", number(v, kpi), kpi.unit),
    }
}

/// The CSS class of a status (`.status.ok`, `.tile.critical`...): the API's word.
pub fn status_class(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Warning => "warning",
        Status::Critical => "critical",
        Status::NoData => "no_data",
    }
}

/// A status in words, for people.
pub fn status_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "OK",
        Status::Warning => "Warning",
        Status::Critical => "Critical",
        Status::NoData => "No data",
    }
}

/// A status as a symbol, beside its word where space is short.
pub fn status_symbol(status: Status) -> &'static str {
    match status {
        Status::Ok => "✓",
        Status::Warning => "!",
        Status::Critical => "✕",
        Status::NoData => "–",
    }
}

/// The trend against the day before, and whether that is good news.
pub fn trend_text(trend: Trend, good: Option<bool>) -> String {
    let (arrow, word) = match trend {
        Trend::Up => ("↑", "up on yesterday"),
        Trend::Down => ("↓", "down on yesterday"),
        Trend::Flat => ("→", "flat on yesterday"),
        Trend::Unknown => return "no trend: yesterday or today has no value".to_owned(),
    };
    let judgement = match good {
        Some(true) => " (good)",
        Some(false) => " (bad)",
        None => "",
    };
    format!("{arrow} {word}{judgement}")
}

/// The delta against the baseline, in percent with its sign.
pub fn delta_text(delta_pct: Option<f64>) -> String {
    match delta_pct {
        Some(d) => format!("{d:+.2} % vs baseline"),
        None => "no baseline to compare with".to_owned(),
    }
}

/// `HH:MM` of a board compared at pace (`pace_to_HH:MM`), none for a whole day.
pub fn pace_time(comparison: &str) -> Option<&str> {
    comparison.strip_prefix("pace_to_")
}

/// `today` as a day of the launch whose D0 is `d0`: `D-2`, `D+0`, `D+4`.
pub fn day_of_launch(d0: NaiveDate, today: NaiveDate) -> String {
    day_label((today - d0).num_days())
}

/// The rollout stage under way at `now` (epoch seconds): the one that started
/// last; none before the first.
pub fn current_stage(stages: &[Stage], now: u64) -> Option<&Stage> {
    stages
        .iter()
        .filter_map(|s| {
            let starts = DateTime::parse_from_rfc3339(&s.starts_at).ok()?.timestamp();
            (starts <= now as i64).then_some((starts, s))
        })
        .max_by_key(|(starts, _)| *starts)
        .map(|(_, s)| s)
}

/// A time in `tz`, with the zone named: `Fri 20 Nov 2026, 10:30 Europe/Paris`.
pub fn local_time(secs: u64, tz: Tz) -> String {
    match tz.timestamp_opt(secs as i64, 0).single() {
        Some(t) => format!("{} {}", t.format("%a %-d %b %Y, %H:%M"), tz.name()),
        None => format!("{secs} (epoch seconds)"),
    }
}

/// A local day, for tables: `Fri 20 Nov`.
pub fn short_date(date: NaiveDate) -> String {
    date.format("%a %-d %b").to_string()
}

/// Whether a KPI's daily levels (target, warning, critical) can be drawn on a
/// chart of `grain`: an hour of a count or a sum is not judged against a day's.
pub fn levels_apply(kpi: &Kpi, grain: Grain) -> bool {
    grain == Grain::Day || !kpi.accumulates()
}

const DAY: u64 = 86_400;

/// What a KPI page charts: `[from, to)` in epoch seconds, per `grain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartRange {
    pub from: u64,
    pub to: u64,
    pub grain: Grain,
}

/// The range of a KPI page at `now`: a `date` is that local day of `tz` up to
/// now (per hour unless asked); without one, the launch's baseline days (or
/// D0) up to now, or the last 14 days without a launch (per day unless asked).
pub fn chart_range(
    date: Option<NaiveDate>,
    grain: Option<Grain>,
    window: Option<&Window>,
    tz: Tz,
    now: u64,
) -> Result<ChartRange, Invalid> {
    let (from, to, grain) = match date {
        Some(date) => {
            let end = day_start(date.succ_opt().unwrap_or(date), tz);
            (
                day_start(date, tz),
                end.min(now),
                grain.unwrap_or(Grain::Hour),
            )
        }
        None => {
            let from = match window {
                Some(w) => day_start(w.baseline.map_or(w.d0, |b| b.0), tz),
                None => now.saturating_sub(14 * DAY),
            };
            (from, now, grain.unwrap_or(Grain::Day))
        }
    };
    if from >= to {
        return Err(Invalid::new(
            "date",
            format!("is after today ({} in {})", local_date(now, tz), tz.name()),
        ));
    }
    if to - from > 400 * DAY {
        return Err(Invalid::new("date", "the range is longer than 400 days"));
    }
    Ok(ChartRange { from, to, grain })
}

/// The vertical marks of a chart over `[from, to)`: D0 and each rollout
/// stage's start, one label per instant (D0 and a first stage at the same
/// time read `D0 · canary 1%`).
pub fn chart_marks(d0: u64, stages: &[Stage], from: u64, to: u64) -> Vec<(u64, String)> {
    let mut marks: std::collections::BTreeMap<u64, Vec<String>> = Default::default();
    marks.entry(d0).or_default().push("D0".to_owned());
    for stage in stages {
        if let Ok(at) = DateTime::parse_from_rfc3339(&stage.starts_at) {
            marks
                .entry(at.timestamp().max(0) as u64)
                .or_default()
                .push(stage.name.clone());
        }
    }
    marks
        .into_iter()
        .filter(|(at, _)| *at >= from && *at < to)
        .map(|(at, labels)| (at, labels.join(" · ")))
        .collect()
}

const SPARK_WIDTH: f64 = 120.0;
const SPARK_HEIGHT: f64 = 36.0;
const SPARK_PAD: f64 = 3.0;

/// The SVG path of `values` (evenly spaced, left to right) on a `lo..hi`
/// scale in a box of `SPARK_WIDTH` x `SPARK_HEIGHT`; a day without a value
/// breaks the line rather than being drawn as zero.
pub fn spark_path(values: &[Option<f64>], lo: f64, hi: f64) -> String {
    let span = (hi - lo).max(f64::EPSILON);
    let step = SPARK_WIDTH / (values.len().max(2) - 1) as f64;
    let mut path = String::new();
    let mut pen_down = false;
    for (i, value) in values.iter().enumerate() {
        let Some(v) = value else {
            pen_down = false;
            continue;
        };
        let x = i as f64 * step;
        let y = SPARK_PAD + (hi - v) / span * (SPARK_HEIGHT - 2.0 * SPARK_PAD);
        if !path.is_empty() {
            path.push(' ');
        }
        path.push_str(&format!(
            "{}{x:.1} {y:.1}",
            if pen_down { "L" } else { "M" }
        ));
        pen_down = true;
    }
    path
}

/// A sparkline of `values` with the target as a dashed line, drawn with SVG
/// presentation attributes only (the CSP forbids inline styles). `label`
/// names what it shows for screen readers; none without any value.
pub fn sparkline(values: &[Option<f64>], target: f64, label: &str) -> Option<Markup> {
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    if known.is_empty() {
        return None;
    }
    let lo = known.iter().copied().fold(target, f64::min);
    let hi = known.iter().copied().fold(target, f64::max);
    let line = spark_path(values, lo, hi);
    let target_line = spark_path(&[Some(target), Some(target)], lo, hi);
    Some(html! {
        svg.spark viewBox=(format!("0 0 {SPARK_WIDTH} {SPARK_HEIGHT}")) preserveAspectRatio="none"
            role="img" aria-label=(label) xmlns="http://www.w3.org/2000/svg" {
            path d=(target_line) fill="none" stroke="#545d68" stroke-width="1"
                stroke-dasharray="4 3" vector-effect="non-scaling-stroke" {}
            path d=(line) fill="none" stroke="currentColor" stroke-width="2"
                vector-effect="non-scaling-stroke" {}
        }
    })
}

/// The baseline band of a chart: for each point, the lowest and highest
/// value of the baseline days at the same place (any baseline day for a
/// chart per day; the same local hour for a chart per hour).
pub fn baseline_band(
    points: &[u64],
    baseline: &[(u64, Option<f64>)],
    grain: Grain,
    tz: Tz,
) -> Vec<(Option<f64>, Option<f64>)> {
    let slot = |secs: u64| match grain {
        Grain::Day => 0,
        Grain::Hour => tz
            .timestamp_opt(secs as i64, 0)
            .single()
            .map_or(0, |t| t.hour()),
    };
    let mut ranges: std::collections::BTreeMap<u32, (f64, f64)> = Default::default();
    for (at, value) in baseline {
        if let Some(v) = value {
            let range = ranges.entry(slot(*at)).or_insert((*v, *v));
            range.0 = range.0.min(*v);
            range.1 = range.1.max(*v);
        }
    }
    points
        .iter()
        .map(|at| match ranges.get(&slot(*at)) {
            Some((lo, hi)) => (Some(*lo), Some(*hi)),
            None => (None, None),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypercare_kpis::definition::parse;

    fn kpi(extra: &str) -> Kpi {
        parse(&format!("kpis:\n  - {{id: k, title: K, direction: higher_is_better, target: 10, warning: 8, critical: 5, {extra}}}\n"))
            .unwrap()
            .remove(0)
    }

    #[test]
    fn values_show_the_kpis_precision_and_unit() {
        let count = kpi("aggregation: count");
        assert_eq!(number(50.0, &count), "50");
        assert_eq!(
            with_unit(Some(42.5), &kpi("aggregation: count, unit: '%'")),
            "42.5 %"
        );
        let money = kpi("aggregation: sum, unit: EUR");
        assert_eq!(with_unit(Some(20.0), &money), "20.00 EUR");
        let declared = kpi("aggregation: unique_users, decimals: 1");
        assert_eq!(number(33.333_333, &declared), "33.3");
        assert_eq!(number(-0.000_000_1, &count), "0");
        assert_eq!(with_unit(None, &money), "no data");
    }

    #[test]
    fn statuses_trends_and_deltas_read_in_words() {
        assert_eq!(
            (status_word(Status::NoData), status_class(Status::NoData)),
            ("No data", "no_data")
        );
        assert_eq!(
            trend_text(Trend::Down, Some(false)),
            "↓ down on yesterday (bad)"
        );
        assert_eq!(trend_text(Trend::Flat, None), "→ flat on yesterday");
        assert_eq!(delta_text(Some(20.0)), "+20.00 % vs baseline");
        assert_eq!(delta_text(Some(-3.456)), "-3.46 % vs baseline");
        assert_eq!(pace_time("pace_to_10:00"), Some("10:00"));
        assert_eq!(pace_time("complete_day"), None);
    }

    #[test]
    fn the_day_of_the_launch_and_its_stage_follow_the_clock() {
        let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
        assert_eq!(day_of_launch(d(16), d(20)), "D+4");
        assert_eq!(day_of_launch(d(16), d(14)), "D-2");
        let stages: Vec<Stage> = serde_json::from_value(serde_json::json!([
            {"name": "canary 1%", "percent": 1, "starts_at": "2026-11-16T09:00:00+01:00"},
            {"name": "100%", "percent": 100, "starts_at": "2026-11-17T09:00:00+01:00"}
        ]))
        .unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp() as u64;
        assert!(current_stage(&stages, at("2026-11-16T08:59:59+01:00")).is_none());
        assert_eq!(
            current_stage(&stages, at("2026-11-16T09:00:00+01:00")).map(|s| s.name.as_str()),
            Some("canary 1%")
        );
        assert_eq!(
            current_stage(&stages, at("2026-11-20T10:30:00+01:00")).map(|s| s.name.as_str()),
            Some("100%")
        );
        let paris: Tz = "Europe/Paris".parse().unwrap();
        assert_eq!(
            local_time(at("2026-11-20T10:30:00+01:00"), paris),
            "Fri 20 Nov 2026, 10:30 Europe/Paris"
        );
    }

    #[test]
    fn a_day_is_charted_per_hour_up_to_now_and_a_launch_from_its_baseline() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
        let at = |day, h| {
            paris
                .with_ymd_and_hms(2026, 11, day, h, 0, 0)
                .unwrap()
                .timestamp() as u64
        };
        let now = at(20, 10) + 1800;
        let today = chart_range(Some(d(20)), None, None, paris, now).unwrap();
        assert_eq!(
            today,
            ChartRange {
                from: at(20, 0),
                to: now,
                grain: Grain::Hour
            }
        );
        let before = chart_range(Some(d(19)), Some(Grain::Day), None, paris, now).unwrap();
        assert_eq!(
            (before.from, before.to, before.grain),
            (at(19, 0), at(20, 0), Grain::Day)
        );
        assert_eq!(
            chart_range(Some(d(21)), None, None, paris, now)
                .unwrap_err()
                .field,
            "date"
        );
        let window = Window::new(d(16), 14, 7);
        let launch = chart_range(None, None, Some(&window), paris, now).unwrap();
        assert_eq!((launch.from, launch.grain), (at(9, 0), Grain::Day));
        let none = chart_range(None, None, None, paris, now).unwrap();
        assert_eq!(none.to - none.from, 14 * DAY);

        let stages: Vec<Stage> = serde_json::from_value(serde_json::json!([
            {"name": "canary 1%", "percent": 1, "starts_at": "2026-11-16T09:00:00+01:00"},
            {"name": "everyone", "percent": 100, "starts_at": "2026-11-17T09:00:00+01:00"}
        ]))
        .unwrap();
        let marks = chart_marks(at(16, 9), &stages, at(9, 0), now);
        assert_eq!(
            marks,
            [
                (at(16, 9), "D0 · canary 1%".to_owned()),
                (at(17, 9), "everyone".to_owned())
            ]
        );
        assert!(chart_marks(at(16, 9), &stages, at(20, 0), now).is_empty());
    }

    #[test]
    fn a_sparkline_breaks_on_days_without_data_and_spans_the_target() {
        let path = spark_path(&[Some(0.0), Some(10.0), None, Some(5.0)], 0.0, 10.0);
        assert_eq!(path, "M0.0 33.0 L40.0 3.0 M120.0 18.0");
        assert_eq!(spark_path(&[None, None], 0.0, 1.0), "");
        let svg = sparkline(&[Some(1.0), Some(2.0)], 10.0, "Orders")
            .unwrap()
            .into_string();
        assert!(svg.contains("aria-label=\"Orders\"") && svg.contains("stroke-dasharray"));
        assert!(
            !svg.contains("style"),
            "no inline style: the CSP forbids it"
        );
        assert!(sparkline(&[None], 10.0, "Orders").is_none());
    }

    #[test]
    fn the_band_spans_the_baseline_days_by_day_or_by_local_hour() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let at = |d: u32, h: u32| {
            paris
                .with_ymd_and_hms(2026, 11, d, h, 0, 0)
                .unwrap()
                .timestamp() as u64
        };
        let baseline = [
            (at(9, 0), Some(3.0)),
            (at(9, 1), Some(7.0)),
            (at(10, 0), Some(5.0)),
            (at(10, 1), None),
        ];
        assert_eq!(
            baseline_band(&[at(20, 0)], &baseline, Grain::Day, paris),
            [(Some(3.0), Some(7.0))]
        );
        assert_eq!(
            baseline_band(
                &[at(20, 0), at(20, 1), at(20, 2)],
                &baseline,
                Grain::Hour,
                paris
            ),
            [(Some(3.0), Some(5.0)), (Some(7.0), Some(7.0)), (None, None)]
        );
        let count = kpi("aggregation: count");
        assert!(levels_apply(&count, Grain::Day) && !levels_apply(&count, Grain::Hour));
        assert!(levels_apply(&kpi("aggregation: avg"), Grain::Hour));
    }
}
