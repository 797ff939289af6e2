//! Like-for-like comparisons, as pure rules: which day the board shows, what it
//! is compared with, and how a day that is not over is judged.
//!
//! - A launch has a window (D0..D+N) and baseline days (D-B..D-1), local days
//!   in its time zone ([`Window`]).
//! - The board shows today while the window runs (and before it), the window's
//!   last day once it has ended, or the day asked for ([`reference`]).
//! - A complete day is compared with complete baseline days (`complete_day`).
//!   Today is compared *at pace* (`pace_to_HH:00`): today up to the last whole
//!   local hour against each baseline day up to the same local time.
//! - Counts and sums grow through the day, so on a day that is not over their
//!   thresholds (agreed per whole day) are scaled by the share of a day's
//!   volume the baseline had reached by that time ([`share_of_day`]), never
//!   compared as whole-day levels.

use chrono::{NaiveDate, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;

use crate::calendar::day_start;

/// A launch's days, in its time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub d0: NaiveDate,
    /// D+N, the window's last day.
    pub last: NaiveDate,
    /// D-B..D-1; `None` without baseline days.
    pub baseline: Option<(NaiveDate, NaiveDate)>,
}

impl Window {
    pub fn new(d0: NaiveDate, window_days: u16, baseline_days: u16) -> Self {
        Self {
            d0,
            last: d0 + chrono::Days::new(u64::from(window_days)),
            baseline: (baseline_days > 0).then(|| {
                (
                    d0 - chrono::Days::new(u64::from(baseline_days)),
                    d0.pred_opt().unwrap_or(d0),
                )
            }),
        }
    }

    pub fn contains(&self, date: NaiveDate) -> bool {
        date >= self.d0 && date <= self.last
    }

    pub fn baseline_dates(&self) -> Vec<NaiveDate> {
        match self.baseline {
            Some((first, last)) => first.iter_days().take_while(|d| *d <= last).collect(),
            None => Vec::new(),
        }
    }
}

/// How the board's day is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// The day is over: whole days against whole days.
    CompleteDay,
    /// Today up to this local time, against the other days up to the same time.
    Pace(NaiveTime),
}

impl Comparison {
    /// `complete_day` or `pace_to_HH:MM`, as the answers say it.
    pub fn label(&self) -> String {
        match self {
            Comparison::CompleteDay => "complete_day".to_owned(),
            Comparison::Pace(t) => format!("pace_to_{:02}:{:02}", t.hour(), t.minute()),
        }
    }
}

/// The board's day and comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference {
    pub date: NaiveDate,
    pub comparison: Comparison,
}

/// A day asked for that has not come yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{date} is after today ({today}) in {tz}")]
pub struct AfterToday {
    pub date: NaiveDate,
    pub today: NaiveDate,
    pub tz: Tz,
}

/// Which day the board shows at `now` (epoch seconds): `asked` if given (not
/// after today), else today, or the window's last day once the window has ended.
pub fn reference(
    now: u64,
    tz: Tz,
    window: Option<&Window>,
    asked: Option<NaiveDate>,
) -> Result<Reference, AfterToday> {
    let local = tz
        .timestamp_opt(now as i64, 0)
        .single()
        .map(|t| t.naive_local())
        .unwrap_or_default();
    let today = local.date();
    let date = match (asked, window) {
        (Some(date), _) if date > today => {
            return Err(AfterToday { date, today, tz });
        }
        (Some(date), _) => date,
        (None, Some(w)) if today > w.last => w.last,
        (None, _) => today,
    };
    // Pace is measured at the last whole local hour: every day's part is then
    // made of whole hours, which the rollups serve and the bucket cache keeps
    // for the hour; a part hour of each past day would be read from `events`
    // (sorted by day) on every call, ten times the board's cost.
    let comparison = if date == today {
        Comparison::Pace(NaiveTime::from_hms_opt(local.time().hour(), 0, 0).unwrap_or_default())
    } else {
        Comparison::CompleteDay
    };
    Ok(Reference { date, comparison })
}

/// `[from, to)` of `date` up to the local time `cut` (the whole day when `cut` is
/// `None`). A cut that falls in a daylight-saving gap moves to the next valid time.
pub fn day_range(date: NaiveDate, tz: Tz, cut: Option<NaiveTime>) -> (u64, u64) {
    let start = day_start(date, tz);
    let end = day_start(date.succ_opt().unwrap_or(date), tz);
    let Some(cut) = cut else {
        return (start, end);
    };
    let at = date.and_time(cut);
    let to = tz
        .from_local_datetime(&at)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(at + chrono::Duration::hours(1)))
                .earliest()
        })
        .map_or(end, |t| u64::try_from(t.timestamp()).unwrap_or(end));
    (start, to.clamp(start, end))
}

/// The share of a whole day's volume reached by the time of the pace: the
/// baseline up to that time over the whole baseline days; without a usable
/// baseline, the share of the day's hours that have passed.
pub fn share_of_day(
    baseline_pace: Option<f64>,
    baseline_full: Option<f64>,
    elapsed_fraction: f64,
) -> f64 {
    match (baseline_pace, baseline_full) {
        (Some(pace), Some(full)) if full > 0.0 && pace >= 0.0 => (pace / full).clamp(0.0, 1.0),
        _ => elapsed_fraction.clamp(0.0, 1.0),
    }
}

/// The mean of the days that have a value, `None` when none has.
pub fn mean(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    let known: Vec<f64> = values.into_iter().flatten().collect();
    (!known.is_empty()).then(|| known.iter().sum::<f64>() / known.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn madrid() -> Tz {
        "Europe/Madrid".parse().unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn the_morning_board_compares_at_pace_with_the_time_of_day() {
        let now = day_start(date(2026, 11, 20), madrid()) + 10 * 3600 + 30 * 60;
        let window = Window::new(date(2026, 11, 16), 14, 7);
        let r = reference(now, madrid(), Some(&window), None).unwrap();
        assert_eq!(r.date, date(2026, 11, 20));
        // The last whole hour: every day's part is whole rolled-up hours.
        assert_eq!(r.comparison.label(), "pace_to_10:00");
        // A baseline day up to 10:30 local.
        let (from, to) = day_range(
            date(2026, 11, 10),
            madrid(),
            Some(NaiveTime::from_hms_opt(10, 30, 0).unwrap()),
        );
        assert_eq!(to - from, 10 * 3600 + 30 * 60);
    }

    #[test]
    fn after_the_window_the_board_shows_its_last_complete_day() {
        let window = Window::new(date(2026, 11, 16), 14, 7);
        let now = day_start(date(2026, 12, 14), madrid()) + 9 * 3600;
        let r = reference(now, madrid(), Some(&window), None).unwrap();
        assert_eq!(r.date, date(2026, 11, 30));
        assert_eq!(r.comparison, Comparison::CompleteDay);
        // On the window's last day itself, it is today at pace.
        let now = day_start(date(2026, 11, 30), madrid()) + 9 * 3600;
        let r = reference(now, madrid(), Some(&window), None).unwrap();
        assert_eq!(r.comparison.label(), "pace_to_09:00");
        // A past day asked for is complete; a future one is refused.
        let asked = reference(now, madrid(), Some(&window), Some(date(2026, 11, 20))).unwrap();
        assert_eq!(asked.comparison, Comparison::CompleteDay);
        assert!(reference(now, madrid(), Some(&window), Some(date(2026, 12, 1))).is_err());
    }

    #[test]
    fn the_window_and_baseline_days_are_local_days() {
        let window = Window::new(date(2026, 11, 16), 14, 7);
        assert_eq!(window.last, date(2026, 11, 30));
        let baseline = window.baseline_dates();
        assert_eq!(baseline.len(), 7);
        assert_eq!(baseline[0], date(2026, 11, 9));
        assert_eq!(baseline[6], date(2026, 11, 15));
        assert!(
            Window::new(date(2026, 11, 16), 14, 0)
                .baseline_dates()
                .is_empty()
        );
    }

    #[test]
    fn a_pace_cut_in_a_daylight_saving_gap_moves_to_the_next_valid_time() {
        // 2026-03-29 in Madrid: 02:00..03:00 does not exist; the day has 23 hours.
        let day = date(2026, 3, 29);
        let (from, to) = day_range(
            day,
            madrid(),
            Some(NaiveTime::from_hms_opt(2, 30, 0).unwrap()),
        );
        assert_eq!(to - from, 2 * 3600 + 30 * 60);
        let (from, to) = day_range(day, madrid(), None);
        assert_eq!(to - from, 23 * 3600);
    }

    #[test]
    fn the_share_of_day_comes_from_the_baseline_else_from_the_clock() {
        assert_eq!(share_of_day(Some(25.0), Some(100.0), 0.5), 0.25);
        assert_eq!(share_of_day(None, Some(100.0), 0.5), 0.5);
        assert_eq!(share_of_day(Some(0.0), Some(0.0), 0.4), 0.4);
        assert_eq!(share_of_day(Some(120.0), Some(100.0), 0.4), 1.0);
        assert_eq!(mean([Some(1.0), None, Some(3.0)]), Some(2.0));
        assert_eq!(mean([None, None]), None);
    }
}
