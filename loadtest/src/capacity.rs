//! The capacity model of a ramp: the Universal Scalability Law fitted to the
//! measured throughput, where latency leaves its floor (the knee), and the
//! highest rate that met the latency objective.
//!
//! USL (Gunther): `X(N) = λN / (1 + σ(N−1) + κN(N−1))`, with `N` the concurrency
//! (requests in the system, by Little's law the achieved rate times the mean
//! latency), `λ` the throughput of one request stream without interference, `σ`
//! contention (the serial fraction) and `κ` coherency (crosstalk; it makes
//! throughput fall past `N* = sqrt((1−σ)/κ)`). It is fitted by Levenberg–Marquardt
//! least squares on the analytic Jacobian, keeping `σ, κ ≥ 0`.

use serde::{Deserialize, Serialize};

use crate::generator::StepResult;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct UslFit {
    pub lambda: f64,
    pub sigma: f64,
    pub kappa: f64,
    /// Coefficient of determination of the fitted throughput.
    pub r2: f64,
    pub points: usize,
    /// Concurrency of the highest throughput, when κ > 0.
    pub peak_concurrency: Option<f64>,
    /// The model's highest throughput (req/s); none when it grows without bound
    /// (σ = κ = 0).
    pub peak_throughput: Option<f64>,
}

impl UslFit {
    pub fn throughput(&self, n: f64) -> f64 {
        usl(self.lambda, self.sigma, self.kappa, n)
    }
}

fn usl(lambda: f64, sigma: f64, kappa: f64, n: f64) -> f64 {
    lambda * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
}

/// Fits the USL to `(N, X)` points; `None` with fewer than 3 usable points or
/// when the fit does not converge to finite values.
pub fn fit_usl(points: &[(f64, f64)]) -> Option<UslFit> {
    let points: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(n, x)| n.is_finite() && x.is_finite() && *n > 0.0 && *x > 0.0)
        .collect();
    if points.len() < 3 {
        return None;
    }
    let sse = |p: &[f64; 3]| -> f64 {
        points
            .iter()
            .map(|(n, x)| (x - usl(p[0], p[1], p[2], *n)).powi(2))
            .sum()
    };
    // Start from the best per-stream throughput seen and mild contention.
    let lambda0 = points
        .iter()
        .map(|(n, x)| x / n.max(1.0))
        .fold(0.0, f64::max);
    let mut best: Option<([f64; 3], f64)> = None;
    for start in [
        [lambda0, 0.01, 1e-4],
        [lambda0, 0.1, 1e-6],
        [lambda0, 0.0, 0.0],
    ] {
        let p = levenberg_marquardt(&points, start, sse);
        let e = sse(&p);
        if p.iter().all(|v| v.is_finite()) && best.is_none_or(|(_, b)| e < b) {
            best = Some((p, e));
        }
    }
    let ([lambda, sigma, kappa], sse_value) = best?;
    let mean = points.iter().map(|(_, x)| x).sum::<f64>() / points.len() as f64;
    let sst: f64 = points.iter().map(|(_, x)| (x - mean).powi(2)).sum();
    let r2 = if sst > 0.0 {
        1.0 - sse_value / sst
    } else {
        1.0
    };
    let peak_concurrency = (kappa > 0.0 && sigma < 1.0).then(|| ((1.0 - sigma) / kappa).sqrt());
    let peak_throughput = match peak_concurrency {
        Some(n) => Some(usl(lambda, sigma, kappa, n.max(1.0))),
        // Without coherency cost throughput approaches λ/σ.
        None if sigma > 0.0 => Some(lambda / sigma),
        None => None,
    };
    Some(UslFit {
        lambda,
        sigma,
        kappa,
        r2,
        points: points.len(),
        peak_concurrency,
        peak_throughput,
    })
}

fn levenberg_marquardt(
    points: &[(f64, f64)],
    start: [f64; 3],
    sse: impl Fn(&[f64; 3]) -> f64,
) -> [f64; 3] {
    let mut p = start;
    let mut error = sse(&p);
    let mut mu = 1e-3;
    for _ in 0..500 {
        // Normal equations J^T J and J^T r of the residuals r = X - model.
        let mut jtj = [[0.0f64; 3]; 3];
        let mut jtr = [0.0f64; 3];
        for (n, x) in points {
            let d = 1.0 + p[1] * (n - 1.0) + p[2] * n * (n - 1.0);
            let model = p[0] * n / d;
            let j = [
                n / d,
                -p[0] * n * (n - 1.0) / (d * d),
                -p[0] * n * n * (n - 1.0) / (d * d),
            ];
            let r = x - model;
            for a in 0..3 {
                jtr[a] += j[a] * r;
                for b in 0..3 {
                    jtj[a][b] += j[a] * j[b];
                }
            }
        }
        let mut improved = false;
        while mu < 1e12 {
            let mut m = jtj;
            for (a, row) in m.iter_mut().enumerate() {
                row[a] += mu * jtj[a][a].max(1e-30);
            }
            let Some(delta) = solve3(m, jtr) else {
                mu *= 10.0;
                continue;
            };
            let candidate = [
                (p[0] + delta[0]).max(1e-12),
                (p[1] + delta[1]).max(0.0),
                (p[2] + delta[2]).max(0.0),
            ];
            let e = sse(&candidate);
            if e.is_finite() && e < error {
                let change = (error - e) / error.max(1e-300);
                p = candidate;
                error = e;
                mu = (mu / 10.0).max(1e-12);
                improved = change > 1e-15;
                break;
            }
            mu *= 10.0;
        }
        if !improved {
            break;
        }
    }
    p
}

/// Solves a 3x3 system by Gaussian elimination with partial pivoting.
fn solve3(mut m: [[f64; 3]; 3], mut v: [f64; 3]) -> Option<[f64; 3]> {
    for col in 0..3 {
        let pivot = (col..3).max_by(|a, b| m[*a][col].abs().total_cmp(&m[*b][col].abs()))?;
        if m[pivot][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, pivot);
        v.swap(col, pivot);
        for row in col + 1..3 {
            let f = m[row][col] / m[col][col];
            let pivot_row = m[col];
            for (cell, above) in m[row].iter_mut().zip(pivot_row).skip(col) {
                *cell -= f * above;
            }
            v[row] -= f * v[col];
        }
    }
    let mut x = [0.0; 3];
    for row in (0..3).rev() {
        let s: f64 = (row + 1..3).map(|k| m[row][k] * x[k]).sum();
        x[row] = (v[row] - s) / m[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// What a ramp says about capacity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CapacityModel {
    /// The lowest step p50: latency with no queueing.
    pub latency_floor_ms: f64,
    /// Offered rate of the first step whose p50 exceeds 1.5x the floor.
    pub knee_offered_rps: Option<f64>,
    /// The highest achieved rate of a step within the SLO (p99 and error rate)
    /// that kept up with its offered rate (achieved >= 95 % of offered).
    pub max_sustainable_rps: Option<f64>,
    pub slo_p99_ms: f64,
    pub slo_error_rate: f64,
    /// Fitted on (concurrency, achieved rate) of the steps; needs 3 steps.
    pub usl: Option<UslFit>,
}

/// Latency has left its floor when p50 is above this multiple of the floor.
pub const KNEE_FACTOR: f64 = 1.5;

pub fn model(steps: &[StepResult], slo_p99_ms: f64, slo_error_rate: f64) -> CapacityModel {
    let answered: Vec<&StepResult> = steps.iter().filter(|s| s.ok > 0).collect();
    let floor = answered
        .iter()
        .map(|s| s.latency.p50_ms)
        .fold(f64::INFINITY, f64::min);
    let floor = if floor.is_finite() { floor } else { 0.0 };
    let knee = answered
        .iter()
        .find(|s| s.latency.p50_ms > KNEE_FACTOR * floor)
        .map(|s| s.offered_rps);
    let max_sustainable = answered
        .iter()
        .filter(|s| {
            s.latency.p99_ms <= slo_p99_ms
                && s.error_rate <= slo_error_rate
                && s.achieved_rps >= 0.95 * s.offered_rps
        })
        .map(|s| s.achieved_rps)
        .fold(None, |best: Option<f64>, x| {
            Some(best.map_or(x, |b| b.max(x)))
        });
    let points: Vec<(f64, f64)> = answered
        .iter()
        .map(|s| (s.concurrency, s.achieved_rps))
        .collect();
    CapacityModel {
        latency_floor_ms: floor,
        knee_offered_rps: knee,
        max_sustainable_rps: max_sustainable,
        slo_p99_ms,
        slo_error_rate,
        usl: fit_usl(&points),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(lambda: f64, sigma: f64, kappa: f64, ns: &[f64]) -> Vec<(f64, f64)> {
        ns.iter()
            .map(|n| (*n, usl(lambda, sigma, kappa, *n)))
            .collect()
    }

    #[test]
    fn usl_fit_recovers_known_parameters_from_an_exact_curve() {
        let ns: Vec<f64> = (1..=64).map(f64::from).collect();
        let fit = fit_usl(&curve(1000.0, 0.05, 0.002, &ns)).unwrap();
        assert!((fit.lambda - 1000.0).abs() / 1000.0 < 1e-4, "{fit:?}");
        assert!((fit.sigma - 0.05).abs() < 1e-5, "{fit:?}");
        assert!((fit.kappa - 0.002).abs() < 1e-6, "{fit:?}");
        assert!(fit.r2 > 0.999_999);
        // N* = sqrt((1 - 0.05) / 0.002) = 21.79...
        assert!(
            (fit.peak_concurrency.unwrap() - 21.794).abs() < 0.01,
            "{fit:?}"
        );
    }

    #[test]
    fn usl_fit_recovers_parameters_from_a_noisy_ramp_of_ten_steps() {
        // Ten steps as a ramp gives them, with ±2 % deterministic noise.
        let ns = [1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0];
        let noise = [
            0.01, -0.02, 0.015, -0.01, 0.02, -0.015, 0.005, -0.005, 0.01, -0.01,
        ];
        let points: Vec<(f64, f64)> = curve(500.0, 0.08, 0.0005, &ns)
            .into_iter()
            .zip(noise)
            .map(|((n, x), e)| (n, x * (1.0 + e)))
            .collect();
        let fit = fit_usl(&points).unwrap();
        assert!((fit.lambda - 500.0).abs() / 500.0 < 0.05, "{fit:?}");
        assert!((fit.sigma - 0.08).abs() < 0.02, "{fit:?}");
        assert!((fit.kappa - 0.0005).abs() < 0.0003, "{fit:?}");
        assert!(fit.r2 > 0.98, "{fit:?}");
    }

    #[test]
    fn linear_scaling_fits_with_no_contention() {
        let ns: Vec<f64> = (1..=10).map(f64::from).collect();
        let fit = fit_usl(&curve(200.0, 0.0, 0.0, &ns)).unwrap();
        assert!((fit.lambda - 200.0).abs() < 1e-3, "{fit:?}");
        assert!(fit.sigma < 1e-6 && fit.kappa < 1e-8, "{fit:?}");
        assert!(fit.peak_concurrency.is_none());
    }

    #[test]
    fn too_few_points_give_no_fit() {
        assert!(fit_usl(&[(1.0, 10.0), (2.0, 19.0)]).is_none());
    }
}
