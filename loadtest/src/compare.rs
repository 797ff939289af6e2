//! Comparing two runs (before and after a release), step by step.
//!
//! One step's p99 is one noisy number; a step of 30 s holds 30 per-second
//! samples of p50 and p99. Per step and percentile we compare the two sets of
//! samples with a Mann–Whitney U test (no assumption of normality; latencies are
//! skewed) and a bootstrap 95 % confidence interval of the change of the median.
//! A step is called slower only when both agree and the change is above
//! `min_change` (5 % by default): statistically sure and big enough to matter.

use serde::Serialize;

use crate::generator::{SecondSample, StepResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Slower,
    Faster,
    Unchanged,
    InsufficientData,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricChange {
    pub metric: &'static str,
    pub median_a_ms: f64,
    pub median_b_ms: f64,
    /// (B − A) / A, in percent.
    pub change_percent: f64,
    /// Bootstrap 95 % interval of the change, in percent.
    pub ci95_percent: (f64, f64),
    /// Two-sided Mann–Whitney p-value.
    pub p_value: f64,
    pub samples: (usize, usize),
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepComparison {
    pub step: usize,
    pub offered_a_rps: f64,
    pub offered_b_rps: f64,
    pub achieved_a_rps: f64,
    pub achieved_b_rps: f64,
    pub error_rate_a: f64,
    pub error_rate_b: f64,
    pub changes: Vec<MetricChange>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub run_a: String,
    pub run_b: String,
    pub steps: Vec<StepComparison>,
    /// Steps (1-based) where some percentile got slower.
    pub slower_steps: Vec<usize>,
}

/// Seconds with fewer responses than this are not used as samples.
const MIN_RESPONSES_PER_SAMPLE: u64 = 5;
const ALPHA: f64 = 0.05;

pub fn compare(
    run_a: &str,
    a: &[StepResult],
    run_b: &str,
    b: &[StepResult],
    min_change: f64,
) -> Comparison {
    let mut steps = Vec::new();
    for (sa, sb) in a.iter().zip(b) {
        let samples = |s: &StepResult, f: fn(&SecondSample) -> f64| -> Vec<f64> {
            s.seconds
                .iter()
                .filter(|x| x.responses >= MIN_RESPONSES_PER_SAMPLE)
                .map(f)
                .collect()
        };
        let changes = vec![
            metric_change(
                "p50",
                &samples(sa, |x| x.p50_ms),
                &samples(sb, |x| x.p50_ms),
                min_change,
            ),
            metric_change(
                "p99",
                &samples(sa, |x| x.p99_ms),
                &samples(sb, |x| x.p99_ms),
                min_change,
            ),
        ];
        steps.push(StepComparison {
            step: sa.index + 1,
            offered_a_rps: sa.offered_rps,
            offered_b_rps: sb.offered_rps,
            achieved_a_rps: sa.achieved_rps,
            achieved_b_rps: sb.achieved_rps,
            error_rate_a: sa.error_rate,
            error_rate_b: sb.error_rate,
            changes,
        });
    }
    let slower_steps = steps
        .iter()
        .filter(|s| s.changes.iter().any(|c| c.verdict == Verdict::Slower))
        .map(|s| s.step)
        .collect();
    Comparison {
        run_a: run_a.to_owned(),
        run_b: run_b.to_owned(),
        steps,
        slower_steps,
    }
}

pub fn metric_change(metric: &'static str, a: &[f64], b: &[f64], min_change: f64) -> MetricChange {
    let (ma, mb) = (median(a), median(b));
    let change = if ma > 0.0 {
        100.0 * (mb - ma) / ma
    } else {
        0.0
    };
    if a.len() < 3 || b.len() < 3 {
        return MetricChange {
            metric,
            median_a_ms: ma,
            median_b_ms: mb,
            change_percent: change,
            ci95_percent: (f64::NAN, f64::NAN),
            p_value: f64::NAN,
            samples: (a.len(), b.len()),
            verdict: Verdict::InsufficientData,
        };
    }
    let p_value = mann_whitney_p(a, b);
    let ci = bootstrap_change_ci(a, b, 2000);
    let verdict = if p_value < ALPHA && ci.0 > 0.0 && change >= min_change * 100.0 {
        Verdict::Slower
    } else if p_value < ALPHA && ci.1 < 0.0 && change <= -min_change * 100.0 {
        Verdict::Faster
    } else {
        Verdict::Unchanged
    };
    MetricChange {
        metric,
        median_a_ms: ma,
        median_b_ms: mb,
        change_percent: change,
        ci95_percent: ci,
        p_value,
        samples: (a.len(), b.len()),
        verdict,
    }
}

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Two-sided p-value of the Mann–Whitney U test (normal approximation with tie
/// correction and continuity correction; fine from about 8 samples a side).
pub fn mann_whitney_p(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let mut all: Vec<(f64, usize)> = a
        .iter()
        .map(|v| (*v, 0))
        .chain(b.iter().map(|v| (*v, 1)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let mut ranks = vec![0.0; n];
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for r in &mut ranks[i..=j] {
            *r = rank;
        }
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        i = j + 1;
    }
    let r1: f64 = all
        .iter()
        .zip(&ranks)
        .filter(|((_, g), _)| *g == 0)
        .map(|(_, r)| r)
        .sum();
    let u1 = r1 - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let nn = n1 + n2;
    let variance = n1 * n2 / 12.0 * ((nn + 1.0) - tie_term / (nn * (nn - 1.0)));
    if variance <= 0.0 {
        return 1.0;
    }
    let z = ((u1 - mean).abs() - 0.5).max(0.0) / variance.sqrt();
    (2.0 * (1.0 - normal_cdf(z))).clamp(0.0, 1.0)
}

fn normal_cdf(z: f64) -> f64 {
    0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2))
}

/// Abramowitz–Stegun 7.1.26 (error below 1.5e-7).
fn erf(x: f64) -> f64 {
    let sign = x.signum();
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    sign * y
}

/// 95 % percentile-bootstrap interval of the change of the median, in percent.
/// Deterministic (fixed seed), so that a comparison reads the same twice.
fn bootstrap_change_ci(a: &[f64], b: &[f64], rounds: usize) -> (f64, f64) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: usize| {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    };
    let mut changes = Vec::with_capacity(rounds);
    let mut ra = vec![0.0; a.len()];
    let mut rb = vec![0.0; b.len()];
    for _ in 0..rounds {
        for v in ra.iter_mut() {
            *v = a[next(a.len())];
        }
        for v in rb.iter_mut() {
            *v = b[next(b.len())];
        }
        let (ma, mb) = (median(&ra), median(&rb));
        if ma > 0.0 {
            changes.push(100.0 * (mb - ma) / ma);
        }
    }
    if changes.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    changes.sort_by(f64::total_cmp);
    let at = |q: f64| changes[((changes.len() - 1) as f64 * q).round() as usize];
    (at(0.025), at(0.975))
}

impl Comparison {
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        writeln!(
            out,
            "Comparing {} (A) with {} (B), per step:",
            self.run_a, self.run_b
        )
        .ok();
        writeln!(
            out,
            " step  offered A/B       achieved A/B        metric  median A ms  median B ms   change   95% CI           p-value  verdict"
        )
        .ok();
        for s in &self.steps {
            for c in &s.changes {
                writeln!(
                    out,
                    " {:>4}  {:>7.0}/{:<7.0} {:>8.1}/{:<8.1}  {:>6}  {:>11.2}  {:>11.2}  {:>+6.1}%  [{:>+6.1}, {:>+6.1}]%  {:>7.4}  {:?}",
                    s.step,
                    s.offered_a_rps,
                    s.offered_b_rps,
                    s.achieved_a_rps,
                    s.achieved_b_rps,
                    c.metric,
                    c.median_a_ms,
                    c.median_b_ms,
                    c.change_percent,
                    c.ci95_percent.0,
                    c.ci95_percent.1,
                    c.p_value,
                    c.verdict
                )
                .ok();
            }
        }
        if self.slower_steps.is_empty() {
            writeln!(out, "No step got significantly slower.").ok();
        } else {
            writeln!(out, "Slower in steps {:?}.", self.slower_steps).ok();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy(base: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                base * (0.9 + 0.2 * ((s >> 11) as f64 / (1u64 << 53) as f64))
            })
            .collect()
    }

    #[test]
    fn a_twenty_percent_slowdown_is_found_with_confidence() {
        let c = metric_change("p99", &noisy(10.0, 30, 1), &noisy(12.0, 30, 2), 0.05);
        assert_eq!(c.verdict, Verdict::Slower, "{c:?}");
        assert!(c.p_value < 0.001);
        assert!((c.change_percent - 20.0).abs() < 6.0, "{c:?}");
        assert!(c.ci95_percent.0 > 5.0 && c.ci95_percent.1 < 35.0, "{c:?}");
    }

    #[test]
    fn two_samples_of_the_same_distribution_are_unchanged() {
        let c = metric_change("p99", &noisy(10.0, 30, 3), &noisy(10.0, 30, 4), 0.05);
        assert_eq!(c.verdict, Verdict::Unchanged, "{c:?}");
        assert!(c.ci95_percent.0 < 0.0 && c.ci95_percent.1 > 0.0, "{c:?}");
    }

    #[test]
    fn a_single_noisy_sample_is_not_enough() {
        let c = metric_change("p99", &[10.0], &[30.0], 0.05);
        assert_eq!(c.verdict, Verdict::InsufficientData);
    }

    #[test]
    fn mann_whitney_matches_a_textbook_value() {
        // Fully separated groups of 10: U = 0, z = (50 - 0.5) / sqrt(175) = 3.742, p = 0.00018.
        let a: Vec<f64> = (0..10).map(f64::from).collect();
        let b: Vec<f64> = (10..20).map(f64::from).collect();
        let p = mann_whitney_p(&a, &b);
        assert!((p - 0.000_183).abs() < 0.000_01, "{p}");
    }
}
