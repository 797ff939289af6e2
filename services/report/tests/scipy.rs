//! The judge's Mann-Whitney U against SciPy's `mannwhitneyu` (two-sided,
//! `method="auto"`, continuity correction) on fixed data: U and p agree within
//! 1e-9. Needs python3 with scipy (`scripts/install-deps --tests` installs it).

use std::process::Command;

use hypercare_report::judge::{Method, mann_whitney_u};

/// A fixed pseudo-random sample: `n` values around `centre`, rounded to
/// `decimals` (few decimals make ties).
fn sample(seed: u64, n: usize, centre: f64, spread: f64, decimals: i32) -> Vec<f64> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let scale = 10f64.powi(decimals);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
            ((centre + spread * (unit - 0.5)) * scale).round() / scale
        })
        .collect()
}

fn cases() -> Vec<(&'static str, Vec<f64>, Vec<f64>)> {
    vec![
        (
            "3 vs 3, separated",
            vec![10.0, 11.0, 12.0],
            vec![1.0, 2.0, 3.0],
        ),
        (
            "5 vs 7, exact",
            sample(1, 5, 100.0, 30.0, 6),
            sample(2, 7, 90.0, 30.0, 6),
        ),
        (
            "8 vs 8, exact",
            sample(3, 8, 0.5, 0.2, 9),
            sample(4, 8, 0.45, 0.2, 9),
        ),
        (
            "4 vs 40, exact",
            sample(5, 4, 10.0, 4.0, 9),
            sample(6, 40, 12.0, 4.0, 9),
        ),
        (
            "6 vs 6, ties",
            sample(7, 6, 5.0, 4.0, 0),
            sample(8, 6, 6.0, 4.0, 0),
        ),
        (
            "24 vs 168, hourly",
            sample(9, 24, 0.031, 0.01, 4),
            sample(10, 168, 0.034, 0.01, 4),
        ),
        (
            "24 vs 24, heavy ties",
            sample(11, 24, 3.0, 3.0, 0),
            sample(12, 24, 3.0, 3.0, 0),
        ),
        (
            "9 vs 12, no difference",
            sample(13, 9, 50.0, 10.0, 5),
            sample(14, 12, 50.0, 10.0, 5),
        ),
        ("30 vs 30, all equal", vec![1.0; 30], vec![1.0; 30]),
        ("1 vs 1", vec![2.0], vec![1.0]),
    ]
}

/// SciPy's (U, p) for each case, from one python3 run.
fn scipy(cases: &[(&str, Vec<f64>, Vec<f64>)]) -> Vec<(f64, f64)> {
    let mut script = String::from("from scipy.stats import mannwhitneyu\n");
    for (_, x, y) in cases {
        script.push_str(&format!(
            "r = mannwhitneyu({x:?}, {y:?}, alternative='two-sided', method='auto')\nprint(repr(float(r.statistic)), repr(float(r.pvalue)))\n"
        ));
    }
    let output = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs (install it with scripts/install-deps --tests)");
    assert!(
        output.status.success(),
        "scipy failed (is it installed? scripts/install-deps --tests): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parse = |v: &str| {
        if v == "nan" {
            f64::NAN
        } else {
            v.parse::<f64>().unwrap()
        }
    };
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let mut numbers = line.split_whitespace().map(parse);
            (numbers.next().unwrap(), numbers.next().unwrap())
        })
        .collect()
}

#[test]
fn u_and_p_match_scipy_within_1e_9() {
    let cases = cases();
    let expected = scipy(&cases);
    assert_eq!(expected.len(), cases.len());
    let mut methods = Vec::new();
    for ((name, x, y), (u, p)) in cases.iter().zip(expected) {
        let ours = mann_whitney_u(x, y).unwrap();
        methods.push(ours.method);
        assert!(
            (ours.u - u).abs() <= 1e-9,
            "{name}: U {} vs SciPy {u}",
            ours.u
        );
        if p.is_nan() {
            // SciPy answers NaN when every value is equal (no variance); we
            // answer p = 1: nothing moved.
            assert_eq!(ours.p, 1.0, "{name}");
        } else {
            assert!(
                (ours.p - p).abs() <= 1e-9,
                "{name}: p {} vs SciPy {p}",
                ours.p
            );
        }
    }
    // Both ways of computing p were exercised.
    assert!(methods.contains(&Method::Exact) && methods.contains(&Method::Asymptotic));
}
