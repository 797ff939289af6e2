//! Error budgets and burn rates, as pure functions of what [`crate::sli`] read.
//!
//! ```text
//! points per (series, age bucket) ─ increases ─ per bucket, summed over series
//!   ─ Counts per window (bad, total) ─ Measurement
//! Measurement + Slo ─ status  ─ SloStatus (SLI, budget consumed / remaining, burn rates)
//!                   ─ samples ─ the Sample of one burn-rate rule (holds: both windows ≥ factor)
//! ```
//!
//! Definitions (the SRE workbook's, ch. 5): the SLI over a window is the share
//! of good events; the error budget is 1 - objective; the burn rate over a
//! window is (1 - SLI) / (1 - objective), so 1x spends exactly the budget in
//! the SLO's window; budget consumed is the burn rate over the SLO's window,
//! remaining is 1 - consumed (negative once overspent).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::sample::Sample;
use crate::slo::{BURN_WINDOWS, BurnWindow, Slo, SloAlert};

/// One row of a bucketed read: a series' points within one age bucket (age 0
/// ends at the read's time). Counters have one value; histograms one per bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub series: u64,
    pub age: u32,
    pub delta: bool,
    pub first: Vec<f64>,
    pub last: Vec<f64>,
    /// Sum of the bucket's points (delta temporality).
    pub sum: Vec<f64>,
}

/// The increase in each age bucket `0..n`, added over series, each entry
/// `width` long (a series of another width is left out: mixed histogram
/// bounds cannot be added). `points` are sorted by series, then oldest first;
/// a bucket aged `n` or more only gives the value before the range.
///
/// Per series: delta points add up; a cumulative point's increase is its
/// bucket's last value minus the last value before it, or the last value
/// alone after a reset (a value went down); a series without any value
/// before counts from its first point.
pub fn increases(points: &[Point], n: usize, width: usize) -> Vec<Vec<f64>> {
    let mut out = vec![vec![0.0; width]; n];
    let mut previous: Option<(u64, &[f64])> = None;
    for point in points {
        if point.last.len() != width {
            continue;
        }
        let before = match previous {
            Some((series, values)) if series == point.series => Some(values),
            _ => None,
        };
        let increase: Vec<f64> = if point.delta {
            point.sum.clone()
        } else {
            match before {
                Some(b) if b.len() == width && b.iter().zip(&point.last).all(|(b, l)| b <= l) => {
                    point.last.iter().zip(b).map(|(l, b)| l - b).collect()
                }
                Some(_) => point.last.clone(),
                None => point
                    .last
                    .iter()
                    .zip(&point.first)
                    .map(|(l, f)| (l - f).max(0.0))
                    .collect(),
            }
        };
        if let Some(bucket) = out.get_mut(point.age as usize) {
            for (total, add) in bucket.iter_mut().zip(increase) {
                *total += add;
            }
        }
        previous = Some((point.series, &point.last));
    }
    out
}

/// Sum of the first `buckets` entries (the youngest) of per-bucket values.
pub fn sum_young(per_bucket: &[f64], buckets: usize) -> f64 {
    per_bucket.iter().take(buckets).sum()
}

/// Bad and total events (or hours) over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Counts {
    pub bad: f64,
    pub total: f64,
}

impl Counts {
    /// The share of bad events; None without any event (no data is not 0 %).
    pub fn bad_fraction(&self) -> Option<f64> {
        (self.total > 0.0).then(|| (self.bad / self.total).clamp(0.0, 1.0))
    }
}

/// What one SLO measured at one time: its window, and each alert window by length in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measurement {
    pub window: Counts,
    pub alert_windows: BTreeMap<u64, Counts>,
}

impl Measurement {
    pub fn over(&self, secs: u64) -> Counts {
        self.alert_windows.get(&secs).copied().unwrap_or_default()
    }
}

/// (1 - SLI) / (1 - objective); None without data.
pub fn burn_rate(counts: Counts, budget: f64) -> Option<f64> {
    counts
        .bad_fraction()
        .filter(|_| budget > 0.0)
        .map(|bad| bad / budget)
}

/// Whether a multi-window alert holds: at least `factor` over both windows.
/// Rates are ratios of measured counts: 72 bad in 1000 at a 0.5 % budget is
/// 14.4 written down but 14.399999999999999 in binary, so "at least" allows
/// a relative 1e-9.
pub fn holds(long: Option<f64>, short: Option<f64>, factor: f64) -> bool {
    let at_least = |rate: Option<f64>| rate.is_some_and(|r| r >= factor * (1.0 - 1e-9));
    at_least(long) && at_least(short)
}

/// One alert window of an SLO's status.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BurnRateStatus {
    /// The long window (`1h`, `6h`, `1d`, `3d`).
    pub window: String,
    pub short_window: String,
    /// The factor both burn rates must reach.
    pub factor: f64,
    /// The tier of its alert.
    pub tier: String,
    /// Burn rate over the long window (null without requests).
    pub burn_rate: Option<f64>,
    pub short_burn_rate: Option<f64>,
    /// Both at least `factor`: its alert fires (or is about to, at the next evaluation).
    pub burning: bool,
}

/// An SLO and its error budget now (`GET /v1/slos`, the daily report).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SloStatus {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `availability`, `latency` or `kpi_floor`.
    pub sli: String,
    /// Percent.
    pub objective: f64,
    /// The SLO's window (`28d`).
    pub window: String,
    /// The share of good events (hours, for a KPI floor) over the window; null without any.
    pub sli_value: Option<f64>,
    /// Events (hours) over the window: bad and total.
    pub bad: f64,
    pub total: f64,
    /// 1 - objective, as a fraction.
    pub error_budget: f64,
    /// Share of the budget spent over the window (above 1 when overspent).
    pub budget_consumed: Option<f64>,
    /// 1 - consumed: negative once the budget is overspent.
    pub budget_remaining: Option<f64>,
    pub burn_rates: Vec<BurnRateStatus>,
    /// Why the SLO could not be measured (a selector matching too many series, an unknown KPI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn window_tier(slo: &Slo, window: &BurnWindow) -> String {
    slo.tier(window).as_str().to_owned()
}

/// The status of `slo` from what was measured.
pub fn status(slo: &Slo, measured: &Measurement) -> SloStatus {
    let budget = slo.budget();
    let consumed = burn_rate(measured.window, budget);
    SloStatus {
        name: slo.name.clone(),
        description: slo.description.clone(),
        sli: slo.sli.kind().to_owned(),
        objective: slo.objective,
        window: days(slo.window),
        sli_value: measured.window.bad_fraction().map(|bad| 1.0 - bad),
        bad: measured.window.bad,
        total: measured.window.total,
        error_budget: budget,
        budget_consumed: consumed,
        budget_remaining: consumed.map(|c| 1.0 - c),
        burn_rates: BURN_WINDOWS
            .iter()
            .map(|w| {
                let long = burn_rate(measured.over(w.long.as_secs()), budget);
                let short = burn_rate(measured.over(w.short.as_secs()), budget);
                BurnRateStatus {
                    window: crate::duration::format(w.long),
                    short_window: crate::duration::format(w.short),
                    factor: w.factor,
                    tier: window_tier(slo, w),
                    burn_rate: long,
                    short_burn_rate: short,
                    burning: holds(long, short, w.factor),
                }
            })
            .collect(),
        error: None,
    }
}

/// A status without numbers, for an SLO that could not be measured.
pub fn unmeasured(slo: &Slo, error: String) -> SloStatus {
    let mut status = status(slo, &Measurement::default());
    status.error = Some(error);
    status
}

/// An SLO's window as it is said: `28d`, not `4w`.
pub fn days(window: std::time::Duration) -> String {
    let secs = window.as_secs();
    if secs.is_multiple_of(86_400) {
        format!("{}d", secs / 86_400)
    } else {
        crate::duration::format(window)
    }
}

fn rate_text(rate: Option<f64>) -> String {
    rate.map_or_else(|| "no data".to_owned(), |r| format!("{r:.2}x"))
}

/// The sample of one burn-rate rule: its value is the long window's burn rate;
/// none without traffic over the long window (no data is never a trigger).
/// Annotations say both rates and the budget left.
pub fn sample(alert: &SloAlert, measured: &Measurement) -> Option<Sample> {
    let budget = alert.slo.budget();
    let w = &alert.window;
    let long = burn_rate(measured.over(w.long.as_secs()), budget)?;
    let short = burn_rate(measured.over(w.short.as_secs()), budget);
    let remaining = burn_rate(measured.window, budget).map(|c| 1.0 - c);
    let long_name = crate::duration::format(w.long);
    let short_name = crate::duration::format(w.short);
    let remaining_text =
        remaining.map_or_else(|| "unknown".to_owned(), |r| format!("{:.1} %", r * 100.0));
    let annotations = BTreeMap::from([
        (
            "summary".to_owned(),
            format!(
                "SLO {}: error budget burning at {long:.2}x over {long_name} and {} over {short_name} (threshold {}x); {remaining_text} of the {} budget left",
                alert.slo.name,
                rate_text(short),
                w.factor,
                days(alert.slo.window),
            ),
        ),
        ("burn_rate".to_owned(), format!("{long:.4}")),
        ("short_burn_rate".to_owned(), rate_text(short)),
        ("budget_remaining".to_owned(), remaining_text),
        ("objective".to_owned(), format!("{} %", alert.slo.objective)),
    ]);
    Some(Sample {
        labels: BTreeMap::new(),
        value: long,
        holds: holds(Some(long), short, w.factor),
        annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Source;
    use crate::slo_rules::alert_rules;

    fn counter(series: u64, age: u32, first: f64, last: f64) -> Point {
        Point {
            series,
            age,
            delta: false,
            first: vec![first],
            last: vec![last],
            sum: vec![last],
        }
    }

    #[test]
    fn increases_follow_resets_gaps_and_series() {
        // Series 1: baseline 100 (age 4), then 110 (age 2, a gap at 3),
        // a restart at age 1 (5), 8 at age 0. Series 2 starts at age 1.
        let points = [
            counter(1, 4, 90.0, 100.0),
            counter(1, 2, 104.0, 110.0),
            counter(1, 1, 5.0, 5.0),
            counter(1, 0, 6.0, 8.0),
            counter(2, 1, 10.0, 12.0),
            counter(2, 0, 12.0, 20.0),
        ];
        let per_bucket: Vec<f64> = increases(&points, 4, 1).into_iter().map(|v| v[0]).collect();
        assert_eq!(per_bucket, [3.0 + 8.0, 5.0 + 2.0, 10.0, 0.0]);
        assert_eq!(sum_young(&per_bucket, 2), 18.0);
        let delta = Point {
            delta: true,
            sum: vec![7.0],
            ..counter(3, 0, 1.0, 2.0)
        };
        assert_eq!(increases(&[delta], 1, 1), [[7.0]]);
    }

    fn alert(window: usize) -> SloAlert {
        let slo: Slo = serde_norway::from_str(
            "name: api\nobjective: 99.5\nsli: {availability: {errors: e, total: t}}\n",
        )
        .unwrap();
        match &alert_rules(slo, "g")[window].condition.source {
            Source::Slo(a) => a.clone(),
            _ => unreachable!(),
        }
    }

    fn measured(long: (u64, f64), short: (u64, f64), per_thousand_window: f64) -> Measurement {
        Measurement {
            window: Counts {
                bad: per_thousand_window,
                total: 1000.0,
            },
            alert_windows: BTreeMap::from([
                (
                    long.0,
                    Counts {
                        bad: long.1,
                        total: 1000.0,
                    },
                ),
                (
                    short.0,
                    Counts {
                        bad: short.1,
                        total: 1000.0,
                    },
                ),
            ]),
        }
    }

    #[test]
    fn fast_burn_fires_at_exactly_14_4x_over_both_windows_only() {
        let fast = alert(0);
        // 0.5 % budget: 14.4x is 7.2 % bad, 72 in 1000.
        let at = sample(&fast, &measured((3600, 72.0), (300, 72.0), 1.0)).unwrap();
        assert!(at.holds, "{at:?}");
        assert!((at.value - 14.4).abs() < 1e-9);
        let below = sample(&fast, &measured((3600, 71.5), (300, 72.0), 1.0)).unwrap();
        assert!(!below.holds, "14.3x over 1h: {below:?}");
        let recovered = sample(&fast, &measured((3600, 80.0), (300, 71.5), 1.0)).unwrap();
        assert!(
            !recovered.holds,
            "the short window recovered: {recovered:?}"
        );
        assert!(sample(&fast, &Measurement::default()).is_none());
        assert!(
            at.annotations["summary"].contains("14.40x over 1h"),
            "{:?}",
            at.annotations
        );
        assert_eq!(at.annotations["budget_remaining"], "80.0 %");
    }

    #[test]
    fn each_row_of_the_table_uses_its_windows_and_factor() {
        for (i, (long, short, factor)) in [
            (3600, 300, 14.4),
            (21_600, 1800, 6.0),
            (86_400, 7200, 3.0),
            (259_200, 21_600, 1.0),
        ]
        .into_iter()
        .enumerate()
        {
            let a = alert(i);
            let bad = factor * 5.0;
            assert!(
                sample(&a, &measured((long, bad), (short, bad), 0.0))
                    .unwrap()
                    .holds
            );
            assert!(
                !sample(&a, &measured((long, bad * 0.99), (short, bad), 0.0))
                    .unwrap()
                    .holds
            );
            // Another row's windows burning do not make this one fire.
            assert!(
                !sample(&a, &measured((long + 1, bad), (short + 1, bad), 0.0))
                    .is_some_and(|s| s.holds)
            );
        }
    }

    #[test]
    fn status_spends_the_budget_and_goes_negative() {
        let a = alert(0);
        // 2 bad in 1000 at 0.5 %: 40 % of the budget spent, 60 % left.
        let s = status(&a.slo, &measured((3600, 72.0), (300, 72.0), 2.0));
        assert!((s.budget_consumed.unwrap() - 0.4).abs() < 1e-12);
        assert!((s.budget_remaining.unwrap() - 0.6).abs() < 1e-12);
        assert!((s.sli_value.unwrap() - 0.998).abs() < 1e-12);
        assert!(s.burn_rates[0].burning && !s.burn_rates[1].burning);
        let over = status(&a.slo, &measured((3600, 0.0), (300, 0.0), 10.0));
        assert!((over.budget_remaining.unwrap() + 1.0).abs() < 1e-12);
        let none = status(&a.slo, &Measurement::default());
        assert_eq!((none.sli_value, none.budget_remaining), (None, None));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["burn_rates"][0]["tier"], "P1");
        assert_eq!(json["window"], "28d");
    }
}
