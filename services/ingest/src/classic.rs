//! Classic Prometheus histograms: a family `x` sent as counter series
//! `x_bucket{le="..."}` (cumulative counts), `x_sum` and `x_count`, as remote
//! write and Prometheus-named OTLP/JSON senders deliver them. They are stored as
//! they arrive; reads recognise the family and answer what PromQL's
//! `histogram_quantile(q, sum by (le) (rate(x_bucket[w])))` answers at the end
//! of the window.
//!
//! Data flow: a reader (`quantile::quantile`, the alerts' `quantile` condition)
//! fetches each `_bucket` series' points in the window as [`BucketSeries`]; then
//! [`family_quantiles`] takes, per series, [`extrapolated_increase`] (the
//! increase PromQL's `rate`/`increase` compute: counter resets added back,
//! extrapolated to the window's edges), adds them per group and `le`, and
//! interpolates with [`bucket_quantile`] (PromQL's `bucketQuantile`, edge cases
//! included). Everything here is pure.
//!
//! The window is `[start, end]` in milliseconds, both ends included (Prometheus
//! 2.x range selectors); a reader with a half-open window passes its points and
//! its edges, and the extrapolation is the same arithmetic.

use std::collections::BTreeMap;

/// The name of the bucket series of the family a quantile is asked of: `x` and
/// `x_bucket` both read `x_bucket`.
pub fn bucket_name(name: &str) -> String {
    if name.ends_with("_bucket") {
        name.to_owned()
    } else {
        format!("{name}_bucket")
    }
}

/// One `_bucket` series over the window.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketSeries {
    /// The labels it is added up by (none: the whole family).
    pub group: Vec<String>,
    /// Its `le` label as sent (`0.25`, `+Inf`, ...).
    pub le: String,
    /// `(time in ms, value)`, in any order; copies of a point already folded.
    pub points: Vec<(i64, f64)>,
}

/// A group's buckets over the window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupBuckets {
    /// Upper bounds, ascending, `+Inf` included when a series sent it.
    pub bounds: Vec<f64>,
    /// Per bound: the increase over the window as PromQL extrapolates it
    /// (cumulative: each bucket holds the ones below).
    pub increases: Vec<f64>,
    /// Per bound: the increase actually observed between the first and the last
    /// point (resets added back), not extrapolated.
    pub observed: Vec<f64>,
    /// `_bucket` series that had two points or more in the window.
    pub series: usize,
    /// `q`'s estimate: `None` where PromQL gives NaN (no `+Inf` bucket, no
    /// observation, fewer than two buckets).
    pub value: Option<f64>,
}

/// PromQL's `le` parsing: a float, `+Inf` included; other text is not a bucket.
pub fn parse_le(le: &str) -> Option<f64> {
    let v = match le {
        "+Inf" | "+inf" | "Inf" | "inf" => f64::INFINITY,
        other => other.parse::<f64>().ok()?,
    };
    (!v.is_nan()).then_some(v)
}

/// PromQL's `increase` of one counter series over `[start_ms, end_ms]`
/// (Prometheus 2.x `extrapolatedRate` with `isCounter`, without `isRate`):
/// last minus first plus every value before a drop (a reset), extrapolated to
/// the window's edges when the first/last point is within 1.1 average
/// intervals of them (else by half an interval), and never to below zero.
/// `None` with fewer than two points, as PromQL drops such series.
pub fn extrapolated_increase(points: &[(i64, f64)], start_ms: i64, end_ms: i64) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    if points.len() < 2 {
        return None;
    }
    let mut result = last.1 - first.1;
    let mut prev = first.1;
    for &(_, v) in &points[1..] {
        if v < prev {
            result += prev;
        }
        prev = v;
    }
    let mut to_start = (first.0 - start_ms) as f64 / 1000.0;
    let to_end = (end_ms - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let average = sampled / (points.len() - 1) as f64;
    if result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    Some(result * (interval / sampled))
}

/// PromQL's `bucketQuantile` (Prometheus 2.42) on cumulative `(upper bound,
/// count)` buckets in any order: NaN without a `+Inf` bucket, with fewer than two
/// buckets or no observation; -Inf / +Inf for q < 0 / q > 1; buckets with the
/// same bound added; counts that go down made flat; the first bucket starts at
/// 0 (or is its bound when that is ≤ 0); a rank in the `+Inf` bucket answers
/// the highest finite bound; otherwise linear interpolation at rank q × count.
pub fn bucket_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let mut sorted = buckets.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    match sorted.last() {
        Some(&(upper, _)) if upper == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // Coalesce equal bounds (`le="1"` and `le="1.0"` of one group).
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(sorted.len());
    for (upper, count) in sorted {
        match merged.last_mut() {
            Some(last) if last.0 == upper => last.1 += count,
            _ => merged.push((upper, count)),
        }
    }
    // Scrapes that are not atomic can leave a bucket below the one before it.
    let mut max = f64::NEG_INFINITY;
    for bucket in &mut merged {
        if bucket.1 > max {
            max = bucket.1;
        } else if bucket.1 < max {
            bucket.1 = max;
        }
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // sort.Search over all but the +Inf bucket: the first count ≥ rank.
    let n = merged.len() - 1;
    let b = merged[..n].partition_point(|&(_, c)| c < rank);
    if b == n {
        return merged[n - 1].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let end = merged[b].0;
    let mut count = merged[b].1;
    let mut start = 0.0;
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// Per group: the buckets' increases over `[start_ms, end_ms]` and `q`'s
/// estimate, as `histogram_quantile(q, sum by (le, group) (rate(..[w])))`.
/// Series whose `le` is not a number are left out, as PromQL does.
pub fn family_quantiles(
    mut series: Vec<BucketSeries>,
    q: f64,
    start_ms: i64,
    end_ms: i64,
) -> BTreeMap<Vec<String>, GroupBuckets> {
    // Per group: per bound (upper, extrapolated, observed), and series seen.
    type Sums = (Vec<(f64, f64, f64)>, usize);
    let mut sums: BTreeMap<Vec<String>, Sums> = BTreeMap::new();
    for s in &mut series {
        let Some(upper) = parse_le(&s.le) else {
            continue;
        };
        s.points.sort_by_key(|p| p.0);
        let Some(increase) = extrapolated_increase(&s.points, start_ms, end_ms) else {
            continue;
        };
        let observed = observed_increase(&s.points);
        let entry = sums.entry(std::mem::take(&mut s.group)).or_default();
        entry.1 += 1;
        match entry.0.iter_mut().find(|b| b.0 == upper) {
            Some(b) => {
                b.1 += increase;
                b.2 += observed;
            }
            None => entry.0.push((upper, increase, observed)),
        }
    }
    sums.into_iter()
        .map(|(group, (mut buckets, series))| {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            let pairs: Vec<(f64, f64)> = buckets.iter().map(|b| (b.0, b.1)).collect();
            let value = Some(bucket_quantile(q, &pairs)).filter(|v| !v.is_nan());
            let answer = GroupBuckets {
                bounds: buckets.iter().map(|b| b.0).collect(),
                increases: buckets.iter().map(|b| b.1).collect(),
                observed: buckets.iter().map(|b| b.2).collect(),
                series,
                value,
            };
            (group, answer)
        })
        .collect()
}

/// Last minus first, resets added back: the observations the points show.
fn observed_increase(points: &[(i64, f64)]) -> f64 {
    let mut total = 0.0;
    for pair in points.windows(2) {
        let (prev, next) = (pair[0].1, pair[1].1);
        total += if next >= prev { next - prev } else { next };
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;

    #[test]
    fn bucket_quantile_interpolates_at_rank_q_times_count() {
        // 100 observations: 50 ≤ 1, 90 ≤ 2, 100 ≤ +Inf.
        let b = [(1.0, 50.0), (2.0, 90.0), (INF, 100.0)];
        assert_eq!(bucket_quantile(0.5, &b), 1.0);
        assert_eq!(bucket_quantile(0.25, &b), 0.5);
        // Rank 70: 20 of the 40 in (1, 2].
        assert_eq!(bucket_quantile(0.7, &b), 1.5);
        // Rank 95 falls in +Inf: the highest finite bound.
        assert_eq!(bucket_quantile(0.95, &b), 2.0);
    }

    #[test]
    fn bucket_quantile_edge_cases_follow_promql() {
        let b = [(1.0, 50.0), (2.0, 90.0), (INF, 100.0)];
        assert_eq!(bucket_quantile(-0.1, &b), f64::NEG_INFINITY);
        assert_eq!(bucket_quantile(1.1, &b), INF);
        assert!(bucket_quantile(f64::NAN, &b).is_nan());
        // No +Inf bucket, a lone bucket, no observation: NaN.
        assert!(bucket_quantile(0.5, &[(1.0, 5.0), (2.0, 9.0)]).is_nan());
        assert!(bucket_quantile(0.5, &[(INF, 9.0)]).is_nan());
        assert!(bucket_quantile(0.5, &[(1.0, 0.0), (INF, 0.0)]).is_nan());
        // Order does not matter; a count below the one before is raised to it.
        let shuffled = [(INF, 100.0), (1.0, 50.0), (2.0, 90.0)];
        assert_eq!(bucket_quantile(0.7, &shuffled), 1.5);
        let dip = [(1.0, 50.0), (2.0, 40.0), (3.0, 90.0), (INF, 100.0)];
        // (2, 40) becomes (2, 50): rank 70 is 20 of 40 in (2, 3].
        assert_eq!(bucket_quantile(0.7, &dip), 2.5);
        // Everything in the first bucket: from 0 up to its bound ...
        assert_eq!(bucket_quantile(0.5, &[(4.0, 10.0), (INF, 10.0)]), 2.0);
        // ... unless that bound is ≤ 0: the bound itself.
        assert_eq!(bucket_quantile(0.5, &[(-1.0, 10.0), (INF, 10.0)]), -1.0);
        // Equal bounds are added.
        let twice = [(1.0, 25.0), (1.0, 25.0), (2.0, 90.0), (INF, 100.0)];
        assert_eq!(bucket_quantile(0.7, &twice), 1.5);
    }

    #[test]
    fn increase_adds_resets_back_and_extrapolates_like_promql() {
        // Points every 10 s from 5 s into a 60 s window: 0..60 s.
        let pts = [(5_000, 10.0), (15_000, 20.0), (25_000, 30.0)];
        // Sampled 20 s, average 10 s; start 5 s away (< 11): +5; zero point is
        // 20 x 10/20 = 10 s away, so 5 stays; end 35 s away (>= 11): +5.
        let inc = extrapolated_increase(&pts, 0, 60_000).unwrap();
        assert!((inc - 20.0 * 30.0 / 20.0).abs() < 1e-12, "{inc}");
        // A reset: 30 -> 4 counts 30 + 4 - 10 ... last - first + 30.
        let reset = [(0, 10.0), (10_000, 30.0), (20_000, 4.0)];
        let inc = extrapolated_increase(&reset, 0, 20_000).unwrap();
        assert!((inc - 24.0).abs() < 1e-12, "{inc}");
        // The zero point limits extrapolation to the start.
        let young = [(10_000, 1.0), (20_000, 11.0)];
        let inc = extrapolated_increase(&young, 0, 20_000).unwrap();
        // to_zero = 10 x 1/10 = 1 s < 10 s: interval 11 s over 10 s sampled.
        assert!((inc - 11.0).abs() < 1e-12, "{inc}");
        assert_eq!(extrapolated_increase(&[(0, 1.0)], 0, 10_000), None);
    }

    #[test]
    fn family_quantiles_sums_series_per_le_and_group() {
        let pts = |a: f64, b: f64| vec![(20_000, b), (0, a)];
        let s = |g: &str, le: &str, p| BucketSeries {
            group: vec![g.to_owned()],
            le: le.to_owned(),
            points: p,
        };
        let series = vec![
            s("a", "1", pts(0.0, 30.0)),
            s("a", "+Inf", pts(0.0, 40.0)),
            s("b", "1", pts(0.0, 20.0)),
            s("b", "+Inf", pts(0.0, 60.0)),
            s("b", "oops", pts(0.0, 1.0)),
        ];
        let out = family_quantiles(series, 0.5, 0, 20_000);
        let a = &out[&vec!["a".to_owned()]];
        assert_eq!(a.bounds, vec![1.0, INF]);
        assert_eq!(a.observed, vec![30.0, 40.0]);
        assert_eq!(a.series, 2);
        // Rank 20 of 40: 20 of 30 in (0, 1].
        assert!((a.value.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        // b: rank 30 of 60 falls above 1 (20 ≤ 1): the highest finite bound.
        assert_eq!(out[&vec!["b".to_owned()]].value, Some(1.0));
    }
}
