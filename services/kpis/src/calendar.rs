//! Local days and hours of a time zone, as pure functions of epoch seconds:
//! where a day starts, which buckets cover a range, and whether a zone's local
//! hours are UTC hours (so that hourly rollups add up to its days).

use chrono::{NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;

use crate::definition::Grain;

/// The start (epoch seconds) of local day `date` in `tz`.
pub fn day_start(date: NaiveDate, tz: Tz) -> u64 {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    let start = tz
        .from_local_datetime(&midnight)
        .earliest()
        .unwrap_or_else(|| tz.from_utc_datetime(&midnight));
    u64::try_from(start.timestamp()).unwrap_or(0)
}

/// The local date in `tz` of `secs` (epoch seconds).
pub fn local_date(secs: u64, tz: Tz) -> NaiveDate {
    tz.timestamp_opt(secs as i64, 0)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// Every bucket start in `[from, to)`, so that series have no holes.
pub fn buckets(grain: Grain, tz: Tz, from: u64, to: u64) -> Vec<u64> {
    let mut out = Vec::new();
    match grain {
        Grain::Day => {
            let mut date = local_date(from, tz);
            loop {
                let start = day_start(date, tz);
                if start >= to {
                    break;
                }
                out.push(start);
                match date.succ_opt() {
                    Some(next) => date = next,
                    None => break,
                }
            }
        }
        Grain::Hour => {
            // Local hours are whole hours apart in absolute time; the first one
            // starts at the local hour boundary at or before `from`.
            let offset = tz
                .timestamp_opt(from as i64, 0)
                .single()
                .map(|t| i64::from(t.offset().fix().local_minus_utc()))
                .unwrap_or(0);
            let local = from as i64 + offset;
            let mut start = (local - local.rem_euclid(3600) - offset).max(0) as u64;
            while start < to {
                out.push(start);
                start += 3600;
            }
        }
    }
    out
}

/// The start of the bucket of `grain` in `tz` that holds `at`.
pub fn bucket_of(grain: Grain, tz: Tz, at: u64) -> u64 {
    match grain {
        Grain::Hour => buckets(Grain::Hour, tz, at, at + 1)
            .first()
            .copied()
            .unwrap_or(at),
        Grain::Day => day_start(local_date(at, tz), tz),
    }
}

/// Whether local hours in `tz` are UTC hours over `[from, to)`, so that hourly
/// rollups add up to its local hours and days.
pub fn whole_hour_offsets(tz: Tz, from: u64, to: u64) -> bool {
    let offset_ok = |secs: u64| {
        tz.timestamp_opt(secs as i64, 0)
            .single()
            .is_some_and(|t| t.offset().fix().local_minus_utc() % 3600 == 0)
    };
    offset_ok(from) && offset_ok(to.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_buckets_follow_the_local_hour_and_days_the_local_midnight() {
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        // 2026-11-22T00:00:00Z is 05:30 in Kolkata: local hours start at :30 UTC,
        // the first one at 05:00 local (23:30Z) holding `from`.
        let hours = buckets(Grain::Hour, kolkata, 1_795_305_600, 1_795_305_600 + 7200);
        assert_eq!(hours, vec![1_795_303_800, 1_795_307_400, 1_795_311_000]);
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let days = buckets(Grain::Day, paris, 1_795_302_000, 1_795_302_000 + 2 * 86_400);
        assert_eq!(days, vec![1_795_302_000, 1_795_388_400]);
        assert_eq!(
            bucket_of(Grain::Day, paris, 1_795_302_000 + 5000),
            1_795_302_000
        );
        assert_eq!(
            bucket_of(Grain::Hour, kolkata, 1_795_305_600),
            1_795_303_800
        );
    }

    #[test]
    fn only_zones_of_whole_hour_offsets_use_rollups() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        assert!(whole_hour_offsets(paris, 1_795_302_000, 1_795_388_400));
        assert!(!whole_hour_offsets(kolkata, 1_795_302_000, 1_795_388_400));
    }
}
