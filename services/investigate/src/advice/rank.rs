//! The release-window ranking, pure: traffic per 15-minute slot of the week
//! (one row per past week, slots in the launch's local time) -> the quietest
//! windows of a given length, with their expected traffic and its spread.
//!
//! A window's traffic in a week is the sum of its slots; over the weeks it has
//! a mean (the expected traffic), a sample standard deviation and a 10th-90th
//! percentile range (rank 1 + q (n - 1), Hypercare's one percentile rule).
//! Windows are ranked by mean, then spread, then start; the top ones do not
//! overlap (otherwise the second best would be the best shifted by 15
//! minutes). Weeks with no traffic at all are left out: the service was not
//! sending yet, and their zeros would make every window look quiet.

use chrono::{DateTime, Datelike, Timelike};
use chrono_tz::Tz;

pub const SLOT_SECS: u64 = 900;
pub const SLOTS_PER_DAY: usize = 96;
pub const SLOTS_PER_WEEK: usize = 7 * SLOTS_PER_DAY;
pub const WEEK_SECS: u64 = 7 * 86_400;

/// One candidate window and its traffic over the weeks.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// First slot of the week (0 = Monday 00:00 local).
    pub start_slot: usize,
    pub mean: f64,
    pub stddev: f64,
    pub p10: f64,
    pub p90: f64,
    /// The window's traffic in each week used, oldest first.
    pub per_week: Vec<f64>,
}

/// The slot of the week (local time of `tz`) that a UTC time falls in.
pub fn slot_of(unix_secs: u64, tz: Tz) -> usize {
    let utc =
        DateTime::from_timestamp(i64::try_from(unix_secs).unwrap_or(0), 0).unwrap_or_default();
    let local = utc.with_timezone(&tz);
    local.weekday().num_days_from_monday() as usize * SLOTS_PER_DAY
        + (local.hour() as usize * 60 + local.minute() as usize) / 15
}

/// Traffic per (week, slot) from counts per 15-minute bucket (start, UTC
/// seconds) of the `weeks` weeks from `start`. A local hour that a clock
/// change repeats adds into its slot; one it skips stays empty.
pub fn matrix(buckets: &[(u64, f64)], start: u64, weeks: usize, tz: Tz) -> Vec<Vec<f64>> {
    let mut traffic = vec![vec![0.0; SLOTS_PER_WEEK]; weeks];
    for &(bucket, count) in buckets {
        let Some(offset) = bucket.checked_sub(start) else {
            continue;
        };
        let week = (offset / WEEK_SECS) as usize;
        if week < weeks && count.is_finite() {
            traffic[week][slot_of(bucket, tz)] += count;
        }
    }
    traffic
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = q * (sorted.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
}

/// Circular distance between two slots of the week.
fn apart(a: usize, b: usize) -> usize {
    let d = a.abs_diff(b);
    d.min(SLOTS_PER_WEEK - d)
}

/// The `top` quietest windows of `slots` slots, not overlapping; empty when no
/// week has traffic.
pub fn quietest(traffic: &[Vec<f64>], slots: usize, top: usize) -> Vec<Ranked> {
    let weeks: Vec<&Vec<f64>> = traffic
        .iter()
        .filter(|week| week.len() == SLOTS_PER_WEEK && week.iter().any(|v| *v > 0.0))
        .collect();
    if weeks.is_empty() || slots == 0 || slots > SLOTS_PER_WEEK {
        return Vec::new();
    }
    let n = weeks.len() as f64;
    let mut candidates: Vec<Ranked> = (0..SLOTS_PER_WEEK)
        .map(|start| {
            let per_week: Vec<f64> = weeks
                .iter()
                .map(|week| (0..slots).map(|j| week[(start + j) % SLOTS_PER_WEEK]).sum())
                .collect();
            let mean = per_week.iter().sum::<f64>() / n;
            let stddev = if per_week.len() > 1 {
                (per_week.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
            } else {
                0.0
            };
            let mut sorted = per_week.clone();
            sorted.sort_by(f64::total_cmp);
            Ranked {
                start_slot: start,
                mean,
                stddev,
                p10: percentile(&sorted, 0.1),
                p90: percentile(&sorted, 0.9),
                per_week,
            }
        })
        .collect();
    candidates.sort_by(|a, b| {
        a.mean
            .total_cmp(&b.mean)
            .then(a.stddev.total_cmp(&b.stddev))
            .then(a.start_slot.cmp(&b.start_slot))
    });
    let mut chosen: Vec<Ranked> = Vec::new();
    for candidate in candidates {
        if chosen.len() == top {
            break;
        }
        if chosen
            .iter()
            .all(|c| apart(c.start_slot, candidate.start_slot) >= slots)
        {
            chosen.push(candidate);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four weeks of 10 per slot, with Tuesday 03:00-04:00 at 1 per slot and
    /// Sunday 05:00-06:00 at 2 per slot, every week.
    fn seeded() -> Vec<Vec<f64>> {
        let tuesday_3 = SLOTS_PER_DAY + 12;
        let sunday_5 = 6 * SLOTS_PER_DAY + 20;
        (0..4)
            .map(|w| {
                let mut week = vec![10.0; SLOTS_PER_WEEK];
                for j in 0..4 {
                    week[tuesday_3 + j] = 1.0 + f64::from(w % 2);
                    week[sunday_5 + j] = 2.0;
                }
                week
            })
            .collect()
    }

    #[test]
    fn the_quietest_hour_comes_first_then_the_next_without_overlap() {
        let ranked = quietest(&seeded(), 4, 3);
        assert_eq!(ranked.len(), 3);
        assert_eq!(ranked[0].start_slot, SLOTS_PER_DAY + 12);
        assert_eq!(ranked[0].per_week, vec![4.0, 8.0, 4.0, 8.0]);
        assert!((ranked[0].mean - 6.0).abs() < 1e-9);
        // Sample deviation of 4, 8, 4, 8: sqrt(16 / 3).
        assert!((ranked[0].stddev - (16.0f64 / 3.0).sqrt()).abs() < 1e-9);
        assert!((ranked[0].p10 - 4.0).abs() < 1e-9 && (ranked[0].p90 - 8.0).abs() < 1e-9);
        assert_eq!(ranked[1].start_slot, 6 * SLOTS_PER_DAY + 20);
        assert!((ranked[1].mean - 8.0).abs() < 1e-9);
        // The third does not overlap the first two (it straddles one of their edges).
        for window in &ranked[..2] {
            assert!(apart(window.start_slot, ranked[2].start_slot) >= 4);
        }
    }

    #[test]
    fn weeks_without_traffic_are_left_out_and_the_week_wraps() {
        let mut traffic = seeded();
        traffic.insert(0, vec![0.0; SLOTS_PER_WEEK]);
        assert_eq!(quietest(&traffic, 4, 1)[0].per_week.len(), 4);
        assert!(quietest(&[vec![0.0; SLOTS_PER_WEEK]], 4, 3).is_empty());
        // Sunday 23:30 to Monday 00:30 is quiet: the window wraps the week.
        let mut week = vec![10.0; SLOTS_PER_WEEK];
        for slot in [SLOTS_PER_WEEK - 2, SLOTS_PER_WEEK - 1, 0, 1] {
            week[slot] = 0.0;
        }
        assert_eq!(quietest(&[week], 4, 1)[0].start_slot, SLOTS_PER_WEEK - 2);
    }

    #[test]
    fn slots_are_local_times_of_the_zone() {
        // 2026-11-17 is a Tuesday; 02:00 UTC is 03:00 in Paris (winter time).
        let at = 1_794_880_800;
        assert_eq!(slot_of(at, chrono_tz::UTC), SLOTS_PER_DAY + 8);
        assert_eq!(slot_of(at, chrono_tz::Europe::Paris), SLOTS_PER_DAY + 12);
        let traffic = matrix(&[(at, 3.0), (at - 1, 9.0)], at, 2, chrono_tz::UTC);
        assert_eq!(traffic[0][SLOTS_PER_DAY + 8], 3.0);
        assert_eq!(
            traffic[0].iter().sum::<f64>() + traffic[1].iter().sum::<f64>(),
            3.0
        );
    }
}
