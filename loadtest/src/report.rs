//! The report of a run: JSON (the record, read back by `compare`), text for a
//! person, and thresholds that decide the exit code.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::capacity::{self, CapacityModel};
use crate::generator::{RunResult, StepResult, Totals};
use crate::scenario::{Metric, Scenario};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThresholdResult {
    pub threshold: String,
    pub actual: f64,
    pub passed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub run_id: String,
    pub scenario: String,
    pub service: String,
    pub target: String,
    pub replicas: u32,
    /// RFC 3339.
    pub started_at: String,
    pub finished_at: String,
    pub max_in_flight: usize,
    pub steps: Vec<StepResult>,
    pub totals: Totals,
    pub thresholds: Vec<ThresholdResult>,
    /// Every threshold held.
    pub passed: bool,
    pub capacity: CapacityModel,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Report {
    pub fn new(run_id: String, scenario: &Scenario, run: &RunResult) -> Self {
        let totals = run.totals();
        let thresholds: Vec<ThresholdResult> = scenario
            .thresholds
            .iter()
            .map(|t| {
                let actual = match t.metric {
                    Metric::Percentile(q) => {
                        run.histogram.value_at_quantile(q / 100.0) as f64 / 1e3
                    }
                    Metric::MeanMs => totals.latency.mean_ms,
                    Metric::MaxMs => totals.latency.max_ms,
                    Metric::ErrorRate => totals.error_rate,
                    Metric::Rps => totals.achieved_rps,
                };
                ThresholdResult {
                    threshold: t.text.clone(),
                    actual,
                    passed: t.holds(actual),
                }
            })
            .collect();
        let capacity = capacity::model(
            &run.steps,
            scenario.slo_p99.as_secs_f64() * 1e3,
            scenario.slo_error_rate,
        );
        Self {
            run_id,
            scenario: scenario.name.clone(),
            service: scenario.service.clone(),
            target: scenario.target.clone(),
            replicas: scenario.replicas,
            started_at: rfc3339(run.started_at_ms),
            finished_at: rfc3339(run.finished_at_ms),
            max_in_flight: scenario.max_in_flight,
            steps: run.steps.clone(),
            passed: thresholds.iter().all(|t| t.passed),
            thresholds,
            totals,
            capacity,
        }
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let t = &self.totals;
        writeln!(
            out,
            "Run {} — scenario `{}` against {} ({} → {})",
            self.run_id, self.scenario, self.target, self.started_at, self.finished_at
        )
        .ok();
        writeln!(
            out,
            "\n step  offered/s achieved/s     due   errors  err%    p50ms    p90ms    p99ms   p999ms    maxms  conc.  lag99ms  cpu  rss MiB"
        )
        .ok();
        for s in &self.steps {
            writeln!(
                out,
                " {:>4} {:>10.1} {:>10.1} {:>7} {:>8} {:>5.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6.1} {:>8.2} {:>4} {:>8}",
                s.index + 1,
                s.offered_rps,
                s.achieved_rps,
                s.due,
                s.errors(),
                100.0 * s.error_rate,
                s.latency.p50_ms,
                s.latency.p90_ms,
                s.latency.p99_ms,
                s.latency.p999_ms,
                s.latency.max_ms,
                s.concurrency,
                s.send_lag_p99_ms,
                s.resources
                    .cpu_cores
                    .map_or("-".into(), |c| format!("{c:.2}")),
                s.resources
                    .rss_bytes
                    .map_or("-".into(), |b| format!("{:.0}", b as f64 / 1048576.0)),
            )
            .ok();
        }
        writeln!(
            out,
            "\nTotal: {} due, {} ok, {} errors ({:.3}%: {:?}); achieved {:.1}/s; latency p50 {:.2}ms p90 {:.2}ms p99 {:.2}ms p99.9 {:.2}ms max {:.2}ms (from the due time)",
            t.due,
            t.ok,
            t.errors,
            100.0 * t.error_rate,
            t.error_kinds,
            t.achieved_rps,
            t.latency.p50_ms,
            t.latency.p90_ms,
            t.latency.p99_ms,
            t.latency.p999_ms,
            t.latency.max_ms
        )
        .ok();
        let c = &self.capacity;
        writeln!(
            out,
            "\nCapacity: latency floor (lowest step p50) {:.2}ms; knee {}; max sustainable rate under p99 <= {:.0}ms and errors <= {:.2}%: {}",
            c.latency_floor_ms,
            c.knee_offered_rps
                .map_or("not reached".into(), |k| format!("at {k:.1} req/s offered")),
            c.slo_p99_ms,
            100.0 * c.slo_error_rate,
            c.max_sustainable_rps
                .map_or("none of the steps".into(), |m| format!("{m:.1} req/s")),
        )
        .ok();
        match &c.usl {
            Some(u) => writeln!(
                out,
                "USL fit over {} steps: λ = {:.2} req/s per unit of concurrency, σ = {:.5}, κ = {:.7}, R² = {:.4}; peak {} at N = {}",
                u.points,
                u.lambda,
                u.sigma,
                u.kappa,
                u.r2,
                u.peak_throughput
                    .map_or("unbounded".into(), |p| format!("{p:.1} req/s")),
                u.peak_concurrency
                    .map_or("-".into(), |n| format!("{n:.1}"))
            )
            .ok(),
            None => writeln!(out, "USL fit: needs at least 3 steps with responses (use a ramp).").ok(),
        };
        if !self.thresholds.is_empty() {
            writeln!(out, "\nThresholds:").ok();
            for t in &self.thresholds {
                writeln!(
                    out,
                    "  {} {} (actual {:.4})",
                    if t.passed { "PASS" } else { "FAIL" },
                    t.threshold,
                    t.actual
                )
                .ok();
            }
        }
        out
    }
}

/// An SVG plot: achieved throughput and p99 latency against the offered rate.
pub fn svg(report: &Report) -> String {
    let (w, h) = (760.0, 420.0);
    let (left, right, top, bottom) = (70.0, 80.0, 40.0, 50.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let steps: &[StepResult] = &report.steps;
    let max_x = steps
        .iter()
        .map(|s| s.offered_rps.max(s.achieved_rps))
        .fold(1.0, f64::max)
        * 1.05;
    let max_tp = max_x;
    // The latency axis fits the data; the SLO line shows when it is within 2x of it.
    let max_p99 = steps.iter().map(|s| s.latency.p99_ms).fold(0.0, f64::max);
    let slo = report.capacity.slo_p99_ms;
    let slo_shown = slo <= 2.0 * max_p99;
    let max_lat = if slo_shown { max_p99.max(slo) } else { max_p99 }.max(0.1) * 1.15;
    let x = |v: f64| left + pw * v / max_x;
    let y_tp = |v: f64| top + ph * (1.0 - v / max_tp);
    let y_lat = |v: f64| top + ph * (1.0 - v / max_lat);
    let mut s = String::new();
    writeln!(s, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#).ok();
    writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#).ok();
    writeln!(
        s,
        r#"<text x="{}" y="22" font-size="14" text-anchor="middle">{} — throughput and p99 latency vs offered load</text>"#,
        w / 2.0,
        escape(&report.scenario)
    )
    .ok();
    // Axes and grid.
    for i in 0..=5 {
        let f = f64::from(i) / 5.0;
        let gx = left + pw * f;
        let gy = top + ph * (1.0 - f);
        writeln!(
            s,
            r##"<line x1="{left}" y1="{gy}" x2="{}" y2="{gy}" stroke="#eee"/>"##,
            left + pw
        )
        .ok();
        writeln!(
            s,
            r#"<text x="{gx}" y="{}" text-anchor="middle">{:.0}</text>"#,
            top + ph + 16.0,
            max_x * f
        )
        .ok();
        writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#1f77b4">{:.0}</text>"##,
            left - 6.0,
            gy + 4.0,
            max_tp * f
        )
        .ok();
        writeln!(
            s,
            r##"<text x="{}" y="{}" fill="#d62728">{}</text>"##,
            left + pw + 6.0,
            gy + 4.0,
            if max_lat >= 20.0 {
                format!("{:.0}", max_lat * f)
            } else {
                format!("{:.2}", max_lat * f)
            }
        )
        .ok();
    }
    writeln!(
        s,
        r#"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    )
    .ok();
    writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">offered load (req/s)</text>"#,
        left + pw / 2.0,
        h - 12.0
    )
    .ok();
    writeln!(s, r##"<text transform="translate(18,{}) rotate(-90)" text-anchor="middle" fill="#1f77b4">achieved throughput (req/s)</text>"##, top + ph / 2.0).ok();
    writeln!(s, r##"<text transform="translate({},{}) rotate(90)" text-anchor="middle" fill="#d62728">p99 latency (ms)</text>"##, w - 20.0, top + ph / 2.0).ok();
    // Ideal: achieved = offered.
    writeln!(
        s,
        r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999" stroke-dasharray="4 4"/>"##,
        x(0.0),
        y_tp(0.0),
        x(max_x),
        y_tp(max_x)
    )
    .ok();
    // SLO line.
    if slo_shown {
        writeln!(s, r##"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#d62728" stroke-dasharray="2 3"/><text x="{}" y="{}" fill="#d62728" text-anchor="end">SLO p99 {slo:.0}ms</text>"##, y_lat(slo), left + pw, y_lat(slo), left + pw - 4.0, y_lat(slo) - 4.0).ok();
    } else {
        writeln!(s, r##"<text x="{}" y="{}" fill="#d62728" text-anchor="end">SLO p99 {slo:.0}ms (above the scale)</text>"##, left + pw - 4.0, top + 14.0).ok();
    }
    if let Some(knee) = report.capacity.knee_offered_rps {
        writeln!(s, r##"<line x1="{}" y1="{top}" x2="{}" y2="{}" stroke="#2ca02c" stroke-dasharray="6 3"/><text x="{}" y="{}" fill="#2ca02c">knee</text>"##, x(knee), x(knee), top + ph, x(knee) + 4.0, top + 14.0).ok();
    }
    let polyline = |points: Vec<(f64, f64)>, color: &str, s: &mut String| {
        let text: Vec<String> = points
            .iter()
            .map(|(a, b)| format!("{a:.1},{b:.1}"))
            .collect();
        writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            text.join(" ")
        )
        .ok();
        for (a, b) in points {
            writeln!(
                s,
                r#"<circle cx="{a:.1}" cy="{b:.1}" r="3" fill="{color}"/>"#
            )
            .ok();
        }
    };
    polyline(
        steps
            .iter()
            .map(|st| (x(st.offered_rps), y_tp(st.achieved_rps)))
            .collect(),
        "#1f77b4",
        &mut s,
    );
    polyline(
        steps
            .iter()
            .map(|st| (x(st.offered_rps), y_lat(st.latency.p99_ms.min(max_lat))))
            .collect(),
        "#d62728",
        &mut s,
    );
    if let Some(usl) = &report.capacity.usl {
        let fitted: Vec<String> = steps
            .iter()
            .map(|st| {
                let v = usl.throughput(st.concurrency).clamp(0.0, max_tp);
                format!("{:.1},{:.1}", x(st.offered_rps), y_tp(v))
            })
            .collect();
        writeln!(s, r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-dasharray="5 3" stroke-width="1.5"/>"##, fitted.join(" ")).ok();
    }
    // Legend.
    let (lx, ly) = (left + 10.0, top + 10.0);
    writeln!(
        s,
        r##"<rect x="{lx}" y="{ly}" width="250" height="66" fill="white" stroke="#ccc"/>"##
    )
    .ok();
    for (i, (dash, color, label)) in [
        ("", "#1f77b4", "achieved throughput"),
        ("5 3", "#1f77b4", "USL fit at the step's concurrency"),
        ("", "#d62728", "p99 latency (from the due time)"),
        ("4 4", "#999", "achieved = offered"),
    ]
    .iter()
    .enumerate()
    {
        let yy = ly + 13.0 + 14.0 * i as f64;
        writeln!(s, r#"<line x1="{}" y1="{yy}" x2="{}" y2="{yy}" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{}" y="{}">{label}</text>"#, lx + 6.0, lx + 30.0, lx + 36.0, yy + 4.0).ok();
    }
    writeln!(s, "</svg>").ok();
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
