//! The statistical judge: did a KPI move, against its baseline, by more than
//! chance and by enough to matter?
//!
//! For each KPI, the launch's hourly values are compared with the baseline's
//! for the same hours of day:
//!
//! 1. [`mann_whitney_u`]: the two-sided Mann-Whitney U test, with midranks for
//!    ties. As SciPy's `mannwhitneyu(method="auto")` does, the p-value is exact
//!    when one sample has at most 8 values and there is no tie, and otherwise
//!    comes from the normal approximation with the tie correction and the
//!    continuity correction. Rank tests need no assumption on the shape of the
//!    values (conversion ratios, revenue per hour are rarely normal).
//! 2. [`hodges_lehmann`]: the effect, as the median of all launch - baseline
//!    differences, and relative to the baseline's median.
//! 3. [`holm`]: testing a dozen KPIs at once makes a "significant" one likely by
//!    chance; Holm's step-down correction keeps the chance of any false alarm
//!    under `alpha`, and is never less powerful than Bonferroni.
//! 4. [`judge`]: `worse` or `better` needs both a corrected p under `alpha` and
//!    an effect of at least the KPI's minimum meaningful one in that direction;
//!    otherwise `no_change`; too few hours is `not_enough_data`.

use serde::{Deserialize, Serialize};

/// How the p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Exact,
    Asymptotic,
}

/// The Mann-Whitney U test of `x` against `y`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MannWhitney {
    /// U of `x`: the number of (x, y) pairs where x is larger, ties counting half.
    pub u: f64,
    /// Two-sided p-value.
    pub p: f64,
    pub method: Method,
}

/// The two-sided Mann-Whitney U test; `None` when a sample is empty or a value
/// is not finite.
pub fn mann_whitney_u(x: &[f64], y: &[f64]) -> Option<MannWhitney> {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let (ranks, tie_sizes) = midranks(x.iter().chain(y).copied().collect());
    let r1: f64 = ranks[..n1].iter().sum();
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let u1 = r1 - n1f * (n1f + 1.0) / 2.0;
    let u2 = n1f * n2f - u1;
    let u = u1.max(u2);
    let ties = tie_sizes.iter().any(|&t| t > 1);
    let method = if (n1 > 8 && n2 > 8) || ties {
        Method::Asymptotic
    } else {
        Method::Exact
    };
    let one_sided = match method {
        // U is a whole number without ties.
        Method::Exact => exact_sf(u.round() as usize, n1, n2),
        Method::Asymptotic => {
            let n = n1f + n2f;
            let tie_term: f64 = tie_sizes
                .iter()
                .map(|&t| {
                    let t = t as f64;
                    t * t * t - t
                })
                .sum();
            let s = (n1f * n2f / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
            let z = (u - n1f * n2f / 2.0 - 0.5) / s;
            normal_sf(z)
        }
    };
    Some(MannWhitney {
        u: u1,
        p: (2.0 * one_sided).clamp(0.0, 1.0),
        method,
    })
}

/// Ranks from 1 with ties given their mean rank, and the size of each group of
/// equal values.
fn midranks(values: Vec<f64>) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut tie_sizes = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1..=end.
        let mean = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = mean;
        }
        tie_sizes.push(end - start);
        start = end;
    }
    (ranks, tie_sizes)
}

/// P(U >= u) under the null hypothesis for samples of `m` and `n` values:
/// with `p[i][j]` the distribution for i and j values,
/// `p[i][j](u) = i/(i+j) p[i-1][j](u-j) + j/(i+j) p[i][j-1](u)` (the largest of
/// the i+j values is an x, adding j to U, or a y). Probabilities rather than
/// counts, so that nothing overflows.
fn exact_sf(u: usize, m: usize, n: usize) -> f64 {
    // column[i] = distribution for (i, j) at the current j.
    let mut column: Vec<Vec<f64>> = (0..=m).map(|_| vec![1.0]).collect(); // j = 0: U = 0
    for j in 1..=n {
        let mut next: Vec<Vec<f64>> = Vec::with_capacity(m + 1);
        next.push(vec![1.0]); // i = 0: U = 0
        for i in 1..=m {
            let mut pmf = vec![0.0; i * j + 1];
            let (wx, wy) = (i as f64 / (i + j) as f64, j as f64 / (i + j) as f64);
            for (k, p) in next[i - 1].iter().enumerate() {
                pmf[k + j] += wx * p;
            }
            for (k, p) in column[i].iter().enumerate() {
                pmf[k] += wy * p;
            }
            next.push(pmf);
        }
        column = next;
    }
    column[m].iter().skip(u).sum::<f64>().min(1.0)
}

/// P(Z > z) for a standard normal Z.
fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// The Hodges-Lehmann shift of `x` against `y`: the median of all `x_i - y_j`.
pub fn hodges_lehmann(x: &[f64], y: &[f64]) -> Option<f64> {
    let mut differences: Vec<f64> = x
        .iter()
        .flat_map(|a| y.iter().map(move |b| a - b))
        .collect();
    median(&mut differences)
}

/// The median (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// Holm's step-down adjusted p-values, in the order given.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p_values[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// Which way is good for a KPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
}

/// What one KPI is judged on.
#[derive(Debug, Clone)]
pub struct Sample<'a> {
    pub kpi: &'a str,
    pub direction: Direction,
    /// The smallest relative change worth a verdict, e.g. 0.05 for 5 %.
    pub min_effect: f64,
    /// The launch's hourly values.
    pub launch: &'a [f64],
    /// The baseline's values for the same hours of day.
    pub baseline: &'a [f64],
}

/// The rules of the judge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JudgeSettings {
    /// The family-wise false alarm rate across the KPIs judged together.
    pub alpha: f64,
    /// Fewer hours than this on either side: `not_enough_data`.
    pub min_values: usize,
}

impl Default for JudgeSettings {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            min_values: 6,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Better,
    Worse,
    NoChange,
    NotEnoughData,
}

/// The judge's answer for one KPI, with what it rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub kpi: String,
    pub verdict: Verdict,
    /// U of the launch values against the baseline's.
    pub u: Option<f64>,
    pub p: Option<f64>,
    /// p after Holm's correction across the KPIs judged together.
    pub p_adjusted: Option<f64>,
    pub method: Option<Method>,
    /// Hodges-Lehmann shift, launch - baseline, in the KPI's unit.
    pub shift: Option<f64>,
    /// The shift relative to the baseline's median (`None` when that is 0).
    pub relative_shift: Option<f64>,
    pub launch_values: usize,
    pub baseline_values: usize,
}

/// Judges every KPI of `samples` together (Holm's correction runs over the
/// ones with enough data).
pub fn judge(samples: &[Sample<'_>], settings: JudgeSettings) -> Vec<Judgement> {
    let tests: Vec<Option<MannWhitney>> = samples
        .iter()
        .map(|s| {
            let enough =
                s.launch.len() >= settings.min_values && s.baseline.len() >= settings.min_values;
            enough
                .then(|| mann_whitney_u(s.launch, s.baseline))
                .flatten()
        })
        .collect();
    let tested: Vec<f64> = tests.iter().flatten().map(|t| t.p).collect();
    let mut adjusted = holm(&tested).into_iter();
    samples
        .iter()
        .zip(tests)
        .map(|(sample, test)| {
            let mut judgement = Judgement {
                kpi: sample.kpi.to_owned(),
                verdict: Verdict::NotEnoughData,
                u: None,
                p: None,
                p_adjusted: None,
                method: None,
                shift: None,
                relative_shift: None,
                launch_values: sample.launch.len(),
                baseline_values: sample.baseline.len(),
            };
            let Some(test) = test else {
                return judgement;
            };
            let p_adjusted = adjusted.next().unwrap_or(1.0);
            let shift = hodges_lehmann(sample.launch, sample.baseline);
            let base = median(&mut sample.baseline.to_vec()).filter(|m| *m != 0.0);
            let relative = shift.zip(base).map(|(s, b)| s / b.abs());
            // Without a relative size (a baseline median of 0), any shift counts.
            let meaningful = match (relative, shift) {
                (Some(r), _) => r.abs() >= sample.min_effect,
                (None, Some(s)) => s != 0.0,
                (None, None) => false,
            };
            let up = shift.is_some_and(|s| s > 0.0);
            judgement.verdict = if p_adjusted < settings.alpha && meaningful {
                match (sample.direction, up) {
                    (Direction::HigherIsBetter, true) | (Direction::LowerIsBetter, false) => {
                        Verdict::Better
                    }
                    _ => Verdict::Worse,
                }
            } else {
                Verdict::NoChange
            };
            judgement.u = Some(test.u);
            judgement.p = Some(test.p);
            judgement.p_adjusted = Some(p_adjusted);
            judgement.method = Some(test.method);
            judgement.shift = shift;
            judgement.relative_shift = relative;
            judgement
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midranks_share_the_mean_rank_of_a_tie() {
        let (ranks, ties) = midranks(vec![3.0, 1.0, 3.0, 2.0, 3.0]);
        assert_eq!(ranks, vec![4.0, 1.0, 4.0, 2.0, 4.0]);
        assert_eq!(ties, vec![1, 1, 3]);
    }

    #[test]
    fn the_exact_distribution_sums_to_one_and_is_symmetric() {
        for (m, n) in [(1, 1), (3, 5), (8, 8), (2, 30)] {
            let total = exact_sf(0, m, n);
            assert!((total - 1.0).abs() < 1e-12, "{m},{n}: {total}");
            // P(U >= k) = P(U <= mn - k).
            for k in 0..=m * n {
                let upper = exact_sf(k, m, n);
                let lower = 1.0 - exact_sf(m * n - k + 1, m, n);
                assert!((upper - lower).abs() < 1e-12, "{m},{n},{k}");
            }
        }
        // Two values each: U is 0..4 with counts 1, 1, 2, 1, 1 of 6.
        assert!((exact_sf(4, 2, 2) - 1.0 / 6.0).abs() < 1e-15);
        assert!((exact_sf(3, 2, 2) - 2.0 / 6.0).abs() < 1e-15);
    }

    #[test]
    fn separated_samples_give_the_smallest_exact_p() {
        let test = mann_whitney_u(&[10.0, 11.0, 12.0], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(test.u, 9.0);
        assert_eq!(test.method, Method::Exact);
        // One arrangement in C(6,3) = 20 on each side.
        assert!((test.p - 2.0 / 20.0).abs() < 1e-15);
    }

    #[test]
    fn holm_multiplies_by_the_remaining_count_and_keeps_the_order() {
        let adjusted = holm(&[0.01, 0.04, 0.03, 0.5]);
        let expected = [0.04, 0.09, 0.09, 0.5];
        for (a, e) in adjusted.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{adjusted:?}");
        }
    }

    #[test]
    fn hodges_lehmann_is_the_median_pairwise_difference() {
        assert_eq!(hodges_lehmann(&[5.0, 7.0], &[1.0, 2.0]), Some(4.5));
        assert_eq!(hodges_lehmann(&[], &[1.0]), None);
    }

    #[test]
    fn a_drop_beyond_the_minimum_effect_is_worse_and_a_small_one_is_no_change() {
        let baseline: Vec<f64> = (0..24).map(|h| 100.0 + (h % 5) as f64).collect();
        let dropped: Vec<f64> = baseline.iter().map(|v| v * 0.8).collect();
        let nudged: Vec<f64> = baseline.iter().map(|v| v * 0.99 - 0.01).collect();
        let few = [90.0, 91.0];
        let samples = [
            Sample {
                kpi: "conversion",
                direction: Direction::HigherIsBetter,
                min_effect: 0.05,
                launch: &dropped,
                baseline: &baseline,
            },
            Sample {
                kpi: "latency",
                direction: Direction::LowerIsBetter,
                min_effect: 0.05,
                launch: &dropped,
                baseline: &baseline,
            },
            Sample {
                kpi: "signups",
                direction: Direction::HigherIsBetter,
                min_effect: 0.05,
                launch: &nudged,
                baseline: &baseline,
            },
            Sample {
                kpi: "leads",
                direction: Direction::HigherIsBetter,
                min_effect: 0.05,
                launch: &few,
                baseline: &baseline,
            },
        ];
        let verdicts: Vec<Verdict> = judge(&samples, JudgeSettings::default())
            .into_iter()
            .map(|j| j.verdict)
            .collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Worse,
                Verdict::Better,
                Verdict::NoChange,
                Verdict::NotEnoughData
            ]
        );
    }
}
