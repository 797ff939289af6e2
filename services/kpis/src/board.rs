//! The board's maths, as pure rules: from one KPI's values on the board's day,
//! the day before and the baseline days (each up to the same local time at
//! pace, see [`crate::pace`]), its entry: value, baseline, delta, trend, the
//! levels at pace and the status.
//!
//! Data flow: [`crate::state::KpiState::board_on`] picks the day and reads the
//! values; [`entry`] judges each KPI; the routes and the alert evaluator read
//! the [`Board`].

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::definition::{Direction, Kpi, Status, round_to};
use crate::pace::{self, Comparison};

/// The board: every KPI on one day against its target and the launch baseline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Board {
    pub launch: Option<String>,
    pub tz: String,
    pub date: String,
    /// `complete_day` or `pace_to_HH:MM` (see [`BoardEntry::comparison`]).
    pub comparison: String,
    /// Whether now is inside the current launch's window (D0..D+N); `None`
    /// without a launch. KPI alert conditions hold only inside it.
    pub in_window: Option<bool>,
    /// The window's first and last days.
    pub window: Option<(String, String)>,
    pub kpis: Vec<BoardEntry>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BoardEntry {
    pub id: String,
    pub title: String,
    pub unit: String,
    pub owner: String,
    pub date: String,
    /// `complete_day`, or `pace_to_HH:MM`: the day up to that local time
    /// against the other days up to the same time.
    pub comparison: String,
    /// The day so far (at pace), or the whole day.
    pub value: Option<f64>,
    pub target: f64,
    pub warning: f64,
    pub critical: f64,
    /// Against the levels, scaled to the share of the day for counts and sums
    /// at pace; `no_data` when no event at all arrived that day.
    pub status: Status,
    /// The mean of the baseline days that have data, compared like for like
    /// (up to the same time at pace).
    pub baseline: Option<f64>,
    /// (value - baseline) / baseline, in percent.
    pub delta_vs_baseline_pct: Option<f64>,
    /// Against the day before, like for like.
    pub trend: Trend,
    /// Whether the trend is good news given the KPI's direction.
    pub trend_is_good: Option<bool>,
    /// At pace, for counts and sums: the levels the status was judged against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pace: Option<PaceLevels>,
}

/// A KPI now, for the alert evaluator.
pub type KpiNow = BoardEntry;

/// A count or a sum at pace: the share of a day's volume that the baseline
/// had reached by this time, and the day's levels scaled by it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PaceLevels {
    pub share_of_day: f64,
    pub target: f64,
    pub warning: f64,
    pub critical: f64,
}

/// The value against the day before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    Up,
    Down,
    Flat,
    /// One of the two days has no value.
    Unknown,
}

/// The board's day and what it is compared with.
#[derive(Debug, Clone)]
pub struct Day {
    pub date: NaiveDate,
    /// The day before `date` (equal to it only at the calendar's start).
    pub yesterday: NaiveDate,
    /// The baseline days before `date`.
    pub baseline_dates: Vec<NaiveDate>,
    pub comparison: Comparison,
    /// The share of `date`'s hours passed at the pace's time (1 for a whole day).
    pub elapsed: f64,
}

/// One KPI's values: per day up to the board's time (`at_pace`), and, at pace
/// for counts and sums, the whole baseline days (`whole`), which give the
/// share of a day's volume reached by that time.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub at_pace: &'a BTreeMap<NaiveDate, Option<f64>>,
    pub whole: Option<&'a BTreeMap<NaiveDate, Option<f64>>>,
}

/// The board's entry of `kpi` on `day`.
pub fn entry(kpi: &Kpi, day: &Day, observed: Observed<'_>) -> BoardEntry {
    let on = |date: NaiveDate| observed.at_pace.get(&date).copied().flatten();
    let value = on(day.date);
    let previous = on(day.yesterday).filter(|_| day.yesterday < day.date);
    let baseline = baseline(kpi, day.baseline_dates.iter().map(|d| on(*d)));
    let pace = match day.comparison {
        Comparison::Pace(_) if kpi.accumulates() => {
            let whole_mean = observed.whole.and_then(|whole| {
                pace::mean(
                    day.baseline_dates
                        .iter()
                        .map(|d| whole.get(d).copied().flatten()),
                )
            });
            let share = pace::share_of_day(
                baseline.filter(|_| observed.whole.is_some()),
                whole_mean,
                day.elapsed,
            );
            Some(pace_levels(kpi, share))
        }
        _ => None,
    };
    let (trend, trend_is_good) = trend(kpi.direction, value, previous);
    BoardEntry {
        id: kpi.id.clone(),
        title: kpi.title.clone(),
        unit: kpi.unit.clone(),
        owner: kpi.owner.clone(),
        date: day.date.to_string(),
        comparison: day.comparison.label(),
        value,
        target: kpi.target,
        warning: kpi.warning,
        critical: kpi.critical,
        status: kpi.status_at_share(value, pace.map_or(1.0, |p| p.share_of_day)),
        baseline,
        delta_vs_baseline_pct: delta_pct(value, baseline),
        trend,
        trend_is_good,
        pace,
    }
}

/// The mean of the baseline days that have a value, at the KPI's precision.
pub fn baseline(kpi: &Kpi, days: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    pace::mean(days).map(|b| round_to(b, kpi.decimals()))
}

/// (value - baseline) / baseline in percent, to 2 decimals; none against a
/// baseline of 0 or without one of the two.
pub fn delta_pct(value: Option<f64>, baseline: Option<f64>) -> Option<f64> {
    match (value, baseline) {
        (Some(v), Some(b)) if b != 0.0 => Some(round_to((v - b) / b * 100.0, 2)),
        _ => None,
    }
}

/// The value against the day before, and whether that is good news.
pub fn trend(
    direction: Direction,
    value: Option<f64>,
    previous: Option<f64>,
) -> (Trend, Option<bool>) {
    match (value, previous) {
        (Some(v), Some(y)) if (v - y).abs() < 1e-9 => (Trend::Flat, None),
        (Some(v), Some(y)) => {
            let up = v > y;
            let good = match direction {
                Direction::HigherIsBetter => up,
                Direction::LowerIsBetter => !up,
            };
            (if up { Trend::Up } else { Trend::Down }, Some(good))
        }
        _ => (Trend::Unknown, None),
    }
}

/// The day's levels scaled to `share` of a day's volume, at the KPI's precision.
pub fn pace_levels(kpi: &Kpi, share: f64) -> PaceLevels {
    let round = |x: f64| round_to(x, kpi.decimals());
    let (target, (warning, critical)) = kpi.levels_at_share(share);
    PaceLevels {
        share_of_day: round_to(share, 4),
        target: round(target),
        warning: round(warning),
        critical: round(critical),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::{Aggregation, parse};
    use chrono::NaiveTime;

    fn leads() -> Kpi {
        parse("kpis:\n  - {id: leads, title: Leads, aggregation: count, direction: higher_is_better, target: 100, warning: 90, critical: 70}\n")
            .unwrap()
            .remove(0)
    }

    fn date(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn day(comparison: Comparison) -> Day {
        Day {
            date: date(20),
            yesterday: date(19),
            baseline_dates: (9..=15).map(date).collect(),
            comparison,
            elapsed: 10.0 / 24.0,
        }
    }

    #[test]
    fn a_morning_count_is_judged_against_levels_scaled_by_the_baseline_share() {
        // Baseline days: 25 leads by 10:00 out of 100 in the day.
        let at_pace: BTreeMap<NaiveDate, Option<f64>> = (9..=15)
            .map(|d| (date(d), Some(25.0)))
            .chain([(date(19), Some(30.0)), (date(20), Some(30.0))])
            .collect();
        let whole: BTreeMap<NaiveDate, Option<f64>> =
            (9..=15).map(|d| (date(d), Some(100.0))).collect();
        let ten = Comparison::Pace(NaiveTime::from_hms_opt(10, 0, 0).unwrap());
        let e = entry(
            &leads(),
            &day(ten),
            Observed {
                at_pace: &at_pace,
                whole: Some(&whole),
            },
        );
        assert_eq!(e.value, Some(30.0));
        assert_eq!(e.baseline, Some(25.0));
        assert_eq!(e.delta_vs_baseline_pct, Some(20.0));
        assert_eq!((e.trend, e.trend_is_good), (Trend::Flat, None));
        let pace = e.pace.unwrap();
        assert_eq!(pace.share_of_day, 0.25);
        assert_eq!((pace.target, pace.critical), (25.0, 17.5));
        // 30 is critical against the whole day's 70, on target at pace.
        assert_eq!(e.status, Status::Ok);
        assert_eq!(e.comparison, "pace_to_10:00");
    }

    #[test]
    fn without_whole_baseline_days_the_share_is_the_hours_passed() {
        let at_pace: BTreeMap<NaiveDate, Option<f64>> = [(date(20), Some(30.0))].into();
        let ten = Comparison::Pace(NaiveTime::from_hms_opt(10, 0, 0).unwrap());
        let e = entry(
            &leads(),
            &day(ten),
            Observed {
                at_pace: &at_pace,
                whole: None,
            },
        );
        assert_eq!(e.pace.unwrap().share_of_day, round_to(10.0 / 24.0, 4));
        assert_eq!(e.baseline, None);
        assert_eq!(e.trend, Trend::Unknown);
    }

    #[test]
    fn a_complete_day_and_a_rate_are_judged_against_the_whole_day_levels() {
        let at_pace: BTreeMap<NaiveDate, Option<f64>> =
            [(date(19), Some(80.0)), (date(20), Some(60.0))].into();
        let e = entry(
            &leads(),
            &day(Comparison::CompleteDay),
            Observed {
                at_pace: &at_pace,
                whole: None,
            },
        );
        assert_eq!(e.pace, None);
        assert_eq!(e.status, Status::Critical);
        assert_eq!((e.trend, e.trend_is_good), (Trend::Down, Some(false)));
        let mut rate = leads();
        rate.aggregation = Aggregation::Ratio;
        let ten = Comparison::Pace(NaiveTime::from_hms_opt(10, 0, 0).unwrap());
        let e = entry(
            &rate,
            &day(ten),
            Observed {
                at_pace: &at_pace,
                whole: None,
            },
        );
        assert_eq!(e.pace, None, "rates hold at any hour");
    }

    #[test]
    fn delta_trend_and_baseline_follow_their_rules() {
        assert_eq!(delta_pct(Some(50.0), Some(40.0)), Some(25.0));
        assert_eq!(delta_pct(Some(50.0), Some(0.0)), None);
        assert_eq!(delta_pct(None, Some(3.0)), None);
        assert_eq!(
            trend(Direction::LowerIsBetter, Some(3.0), Some(5.0)),
            (Trend::Down, Some(true))
        );
        assert_eq!(
            trend(Direction::HigherIsBetter, Some(3.0), None),
            (Trend::Unknown, None)
        );
        assert_eq!(baseline(&leads(), [Some(1.0), None, Some(2.0)]), Some(1.5));
        assert_eq!(baseline(&leads(), [None, None]), None);
    }
}
