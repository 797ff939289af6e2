//! An SLO's SLI read at one time: bad and total events over its window and
//! over every alert window, as a [`Measurement`] (the math is in [`crate::burn`]).
//!
//! ```text
//! availability: errors and total counters ┐ store::counter_buckets  ┐
//! latency: the histogram                  ┤ store::histogram_buckets├ burn::increases
//!   (none: its classic family x_bucket{le} ┤ store::classic_buckets  │  per le: +Inf, threshold)
//!   (1-minute buckets over 3 d for the alert windows,               │ ─ Counts per window
//!    1-hour buckets over the SLO's window)                          ┘
//! kpi_floor: the KPI per hour (KpiState::series) ─ whole hours below the floor
//! ```
//!
//! Windows end at the read's time: alert windows to the minute, the SLO's
//! window to the hour (its oldest hour may start up to a minute early or
//! late). A KPI floor counts whole hours only: an alert window shorter than
//! an hour reads the last whole hour.

use std::collections::BTreeMap;

use clickhouse::Client;
use hypercare_kpis::KpiState;
use hypercare_kpis::definition::Grain;
use hypercare_kpis::state::SeriesRange;

use crate::burn::{self, Counts, Measurement, Point};
use crate::matcher::Selector;
use crate::slo::{BURN_WINDOWS, LONGEST_ALERT_WINDOW, Sli, Slo};
use crate::store::{self, BucketRead, ClassicBucketRow, SLO_MAX_ROWS};

/// Why an SLI could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SliError {
    #[error("ClickHouse: {0}")]
    Store(#[from] clickhouse::error::Error),
    #[error("KPI: {0}")]
    Kpi(#[from] hypercare_kpis::KpiError),
    #[error(
        "`{0}` matches too many series x buckets (over {SLO_MAX_ROWS} rows): narrow it with label matchers"
    )]
    TooMany(String),
    #[error("`{0}` is not a selector: {1}")]
    Selector(String, String),
    #[error(
        "`{0}` has no `le=\"+Inf\"` bucket, so its number of requests is unknown: send the whole histogram"
    )]
    NoInfBucket(String),
    #[error(
        "the threshold {threshold} is not a bucket bound of `{histogram}` (bounds: {bounds:?})"
    )]
    Threshold {
        histogram: String,
        threshold: f64,
        bounds: Vec<f64>,
    },
}

impl SliError {
    /// ClickHouse could not answer: the caller answers 503, not a status per SLO.
    pub fn is_storage(&self) -> bool {
        matches!(
            self,
            SliError::Store(_) | SliError::Kpi(hypercare_kpis::KpiError::Store(_))
        )
    }
}

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;

/// Every window a status or an alert asks for, in seconds.
fn alert_windows() -> Vec<u64> {
    let mut windows: Vec<u64> = BURN_WINDOWS
        .iter()
        .flat_map(|w| [w.long.as_secs(), w.short.as_secs()])
        .collect();
    windows.sort_unstable();
    windows.dedup();
    windows
}

fn selector(text: &str) -> Result<Selector, SliError> {
    Selector::parse(text).map_err(|e| SliError::Selector(text.to_owned(), e.to_string()))
}

/// The reads behind one measurement: minutes over the alert windows, hours
/// over the SLO's window; each reads one bucket more, the value before.
fn reads(slo: &Slo, at: u64) -> [(BucketRead, usize); 2] {
    let minutes = (LONGEST_ALERT_WINDOW.as_secs() / MINUTE) as usize;
    let hours = slo.window.as_secs().div_ceil(HOUR) as usize;
    [
        (
            BucketRead {
                at,
                step: MINUTE,
                buckets: minutes as u64 + 1,
            },
            minutes,
        ),
        (
            BucketRead {
                at,
                step: HOUR,
                buckets: hours as u64 + 1,
            },
            hours,
        ),
    ]
}

/// Bad and total per bucket, from both reads of an SLI.
type PerBucket = (Vec<f64>, Vec<f64>);

fn measurement(slo: &Slo, minutes: &PerBucket, hours: &PerBucket) -> Measurement {
    let counts = |per: &PerBucket, buckets: usize| Counts {
        bad: burn::sum_young(&per.0, buckets),
        total: burn::sum_young(&per.1, buckets),
    };
    Measurement {
        window: counts(hours, slo.window.as_secs().div_ceil(HOUR) as usize),
        alert_windows: alert_windows()
            .into_iter()
            .map(|w| (w, counts(minutes, (w / MINUTE) as usize)))
            .collect(),
    }
}

async fn counter(
    client: &Client,
    text: &str,
    read: BucketRead,
    n: usize,
) -> Result<Vec<f64>, SliError> {
    let selector = selector(text)?;
    let rows = store::counter_buckets(client, &selector, read).await?;
    if rows.len() as u64 > SLO_MAX_ROWS {
        return Err(SliError::TooMany(text.to_owned()));
    }
    let points: Vec<Point> = rows
        .into_iter()
        .map(|r| Point {
            series: r.series_id,
            age: r.bucket,
            delta: r.delta == 1,
            first: vec![r.first],
            last: vec![r.last],
            sum: vec![r.total],
        })
        .collect();
    Ok(burn::increases(&points, n, 1)
        .into_iter()
        .map(|v| v[0])
        .collect())
}

/// Requests slower than `threshold` and all requests, per bucket. Series
/// are added per set of bounds; the threshold must be a bound of each.
async fn latency(
    client: &Client,
    text: &str,
    threshold: f64,
    read: BucketRead,
    n: usize,
) -> Result<PerBucket, SliError> {
    let selector = selector(text)?;
    let rows = store::histogram_buckets(client, &selector, read).await?;
    if rows.len() as u64 > SLO_MAX_ROWS {
        return Err(SliError::TooMany(text.to_owned()));
    }
    if rows.is_empty() {
        // No native histogram: the classic family a Prometheus sends.
        let family = crate::matcher::Selector {
            metric: hypercare_ingest::classic::bucket_name(&selector.metric),
            matchers: selector.matchers.clone(),
        };
        let rows = store::classic_buckets(client, &family, read).await?;
        if rows.len() as u64 > SLO_MAX_ROWS {
            return Err(SliError::TooMany(text.to_owned()));
        }
        return classic_latency(&rows, &family.metric, threshold, n);
    }
    let mut by_bounds: BTreeMap<Vec<u64>, (Vec<f64>, Vec<Point>)> = BTreeMap::new();
    for r in rows {
        let key: Vec<u64> = r.bounds.iter().map(|b| b.to_bits()).collect();
        let as_f64 = |v: &[u64]| v.iter().map(|&c| c as f64).collect::<Vec<f64>>();
        let entry = by_bounds
            .entry(key)
            .or_insert_with(|| (r.bounds.clone(), Vec::new()));
        entry.1.push(Point {
            series: r.series_id,
            age: r.bucket,
            delta: r.delta == 1,
            first: as_f64(&r.first),
            last: as_f64(&r.last),
            sum: as_f64(&r.total),
        });
    }
    let mut bad = vec![0.0; n];
    let mut total = vec![0.0; n];
    for (bounds, points) in by_bounds.into_values() {
        // Observations at most `threshold` are good: the buckets up to its bound.
        let Some(good_buckets) = bounds
            .iter()
            .position(|b| (b - threshold).abs() <= 1e-9 * threshold.abs())
            .map(|i| i + 1)
        else {
            return Err(SliError::Threshold {
                histogram: text.to_owned(),
                threshold,
                bounds,
            });
        };
        for (i, counts) in burn::increases(&points, n, bounds.len() + 1)
            .into_iter()
            .enumerate()
        {
            let all: f64 = counts.iter().sum();
            let good: f64 = counts.iter().take(good_buckets).sum();
            bad[i] += all - good;
            total[i] += all;
        }
    }
    Ok((bad, total))
}

/// Requests slower than `threshold` and all requests, per bucket, from a
/// classic family's `_bucket` series (`rows` sorted by series, then oldest
/// first): all is the increase of the `le="+Inf"` buckets, the good ones the
/// increase of the buckets whose `le` is `threshold`, each series' increase
/// the SLI's counter rule ([`burn::increases`]). `le` values that are not
/// numbers are left out, as PromQL does; no rows: nothing counted.
pub fn classic_latency(
    rows: &[ClassicBucketRow],
    name: &str,
    threshold: f64,
    n: usize,
) -> Result<PerBucket, SliError> {
    let mut by_le: Vec<(f64, Vec<Point>)> = Vec::new();
    for r in rows {
        let Some(le) = hypercare_ingest::classic::parse_le(&r.le) else {
            continue;
        };
        let point = Point {
            series: r.series_id,
            age: r.bucket,
            delta: r.delta == 1,
            first: vec![r.first],
            last: vec![r.last],
            sum: vec![r.total],
        };
        match by_le.iter_mut().find(|(bound, _)| *bound == le) {
            Some((_, points)) => points.push(point),
            None => by_le.push((le, vec![point])),
        }
    }
    if by_le.is_empty() {
        return Ok((vec![0.0; n], vec![0.0; n]));
    }
    let increase = |points: &[Point]| -> Vec<f64> {
        burn::increases(points, n, 1)
            .into_iter()
            .map(|v| v[0])
            .collect()
    };
    let Some((_, all)) = by_le.iter().find(|(le, _)| *le == f64::INFINITY) else {
        return Err(SliError::NoInfBucket(name.to_owned()));
    };
    let Some((_, good)) = by_le
        .iter()
        .find(|(le, _)| (le - threshold).abs() <= 1e-9 * threshold.abs())
    else {
        let mut bounds: Vec<f64> = by_le
            .iter()
            .map(|(le, _)| *le)
            .filter(|le| le.is_finite())
            .collect();
        bounds.sort_by(f64::total_cmp);
        return Err(SliError::Threshold {
            histogram: name.to_owned(),
            threshold,
            bounds,
        });
    };
    let (all, good) = (increase(all), increase(good));
    // A scrape that is not atomic can show a bucket above +Inf: never below 0 bad.
    let bad = all
        .iter()
        .zip(&good)
        .map(|(a, g)| (a - g).max(0.0))
        .collect();
    Ok((bad, all))
}

/// `kpi` per hour (the launch's time zone) over the longest window, counted by
/// [`floor_measurement`].
async fn kpi_floor(
    kpis: &KpiState,
    slo: &Slo,
    kpi: &str,
    floor: f64,
    at: u64,
) -> Result<Measurement, SliError> {
    let longest = slo.window.as_secs().max(LONGEST_ALERT_WINDOW.as_secs());
    let from = (at.saturating_sub(longest + HOUR) / HOUR) * HOUR;
    let series = kpis
        .series(
            kpi,
            SeriesRange {
                from,
                to: at,
                grain: Some(Grain::Hour),
                tz: None,
            },
        )
        .await?;
    let hours: Vec<(u64, Option<f64>)> = series
        .points
        .iter()
        .filter_map(|p| {
            let start = chrono::DateTime::parse_from_rfc3339(p.start.as_deref()?).ok()?;
            Some((u64::try_from(start.timestamp()).ok()?, p.value))
        })
        .collect();
    Ok(floor_measurement(slo, &hours, floor, at))
}

/// From hourly values (start, value): the whole hours ending within each
/// window (at least the last whole hour), those below `floor` bad; hours
/// without a value are not counted.
pub fn floor_measurement(
    slo: &Slo,
    hours: &[(u64, Option<f64>)],
    floor: f64,
    at: u64,
) -> Measurement {
    let counts = |window: u64| {
        let since = at.saturating_sub(window.max(HOUR));
        let mut counts = Counts::default();
        for (start, value) in hours {
            let end = start + HOUR;
            if let Some(v) = value
                && end <= at
                && end > since
            {
                counts.total += 1.0;
                if *v < floor {
                    counts.bad += 1.0;
                }
            }
        }
        counts
    };
    Measurement {
        window: counts(slo.window.as_secs()),
        alert_windows: alert_windows()
            .into_iter()
            .map(|w| (w, counts(w)))
            .collect(),
    }
}

/// Measures `slo` at `at` (epoch seconds).
pub async fn measure(
    client: &Client,
    kpis: &KpiState,
    slo: &Slo,
    at: u64,
) -> Result<Measurement, SliError> {
    let [(minutes, n_minutes), (hours, n_hours)] = reads(slo, at);
    match &slo.sli {
        // The reads of one SLI run at once: a status waits for the slowest, not their sum.
        Sli::Availability { errors, total } => {
            let (e_minutes, t_minutes, e_hours, t_hours) = tokio::try_join!(
                counter(client, errors, minutes, n_minutes),
                counter(client, total, minutes, n_minutes),
                counter(client, errors, hours, n_hours),
                counter(client, total, hours, n_hours),
            )?;
            Ok(measurement(
                slo,
                &(e_minutes, t_minutes),
                &(e_hours, t_hours),
            ))
        }
        Sli::Latency {
            histogram,
            threshold,
        } => {
            let (minutes, hours) = tokio::try_join!(
                latency(client, histogram, *threshold, minutes, n_minutes),
                latency(client, histogram, *threshold, hours, n_hours),
            )?;
            Ok(measurement(slo, &minutes, &hours))
        }
        Sli::KpiFloor { kpi, floor } => kpi_floor(kpis, slo, kpi, *floor, at).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kpi_floor_counts_whole_hours_below_it() {
        let slo: Slo = serde_norway::from_str(
            "name: leads\nobjective: 90\nwindow: 1d\nsli: {kpi_floor: {kpi: leads, floor: 10}}\n",
        )
        .unwrap();
        let at = 100 * HOUR + 1800;
        // Hours 90..=99 are whole; 100 is not over yet; 95 and 99 are below, 97 has no value.
        let hours: Vec<(u64, Option<f64>)> = (90..=100)
            .map(|h| {
                let value = match h {
                    95 | 99 | 100 => Some(3.0),
                    97 => None,
                    _ => Some(12.0),
                };
                (h * HOUR, value)
            })
            .collect();
        let m = floor_measurement(&slo, &hours, 10.0, at);
        assert_eq!(
            m.window,
            Counts {
                bad: 2.0,
                total: 9.0
            }
        );
        // 5 minutes reads the last whole hour (99, below the floor).
        assert_eq!(
            m.over(300),
            Counts {
                bad: 1.0,
                total: 1.0
            }
        );
        assert_eq!(
            m.over(6 * HOUR),
            Counts {
                bad: 2.0,
                total: 5.0
            }
        );
    }

    #[test]
    fn a_classic_family_counts_requests_over_the_threshold() {
        let row = |series, bucket, le: &str, first: f64, last: f64| ClassicBucketRow {
            series_id: series,
            bucket,
            delta: 0,
            first,
            last,
            total: 0.0,
            le: le.into(),
        };
        // Two instances; age 2 is the value before the range. Instance 2
        // restarts in age 0.
        let rows = [
            row(1, 2, "0.25", 0.0, 100.0),
            row(1, 1, "0.25", 100.0, 190.0),
            row(1, 0, "0.25", 190.0, 280.0),
            row(2, 2, "0.5", 0.0, 0.0),
            row(3, 2, "+Inf", 0.0, 100.0),
            row(3, 1, "+Inf", 100.0, 200.0),
            row(3, 0, "+Inf", 200.0, 300.0),
            row(4, 2, "0.25", 0.0, 50.0),
            row(4, 1, "0.25", 50.0, 60.0),
            row(4, 0, "0.25", 2.0, 5.0),
            row(5, 2, "+Inf", 0.0, 50.0),
            row(5, 1, "+Inf", 50.0, 70.0),
            row(5, 0, "+Inf", 2.0, 10.0),
            row(6, 0, "fast", 0.0, 1e6),
        ];
        let (bad, all) = classic_latency(&rows, "d_bucket", 0.25, 2).unwrap();
        // Age 0: 100 + 10 requests, 90 + 5 fast; age 1: 100 + 20, 90 + 10.
        assert_eq!(all, vec![110.0, 120.0]);
        assert_eq!(bad, vec![15.0, 20.0]);

        let problem = classic_latency(&rows, "d_bucket", 0.3, 2).unwrap_err();
        assert!(problem.to_string().contains("[0.25, 0.5]"), "{problem}");
        let no_inf: Vec<_> = rows.iter().filter(|r| r.le != "+Inf").cloned().collect();
        assert!(matches!(
            classic_latency(&no_inf, "d_bucket", 0.25, 2),
            Err(SliError::NoInfBucket(_))
        ));
        assert_eq!(
            classic_latency(&[], "d_bucket", 0.25, 2).unwrap(),
            (vec![0.0; 2], vec![0.0; 2])
        );
    }

    #[test]
    fn windows_sum_the_youngest_buckets() {
        let slo: Slo = serde_norway::from_str(
            "name: api\nobjective: 99\nwindow: 2d\nsli: {availability: {errors: e, total: t}}\n",
        )
        .unwrap();
        let minutes = (vec![1.0; 4320], vec![10.0; 4320]);
        let hours = (vec![60.0; 48], vec![600.0; 48]);
        let m = measurement(&slo, &minutes, &hours);
        assert_eq!(
            m.over(300),
            Counts {
                bad: 5.0,
                total: 50.0
            }
        );
        assert_eq!(
            m.over(3 * 86_400),
            Counts {
                bad: 4320.0,
                total: 43_200.0
            }
        );
        assert_eq!(
            m.window,
            Counts {
                bad: 2880.0,
                total: 28_800.0
            }
        );
        assert_eq!(reads(&slo, 1_000_000)[1].0.buckets, 49);
    }
}
