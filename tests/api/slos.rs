//! SLOs end to end: request counters sent through the API, the real evaluator
//! on a short interval reading them at a manual clock's time, the burn-rate
//! alerts on `GET /v1/alerts` and the error budgets on `GET /v1/slos`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use hypercare_tests::{INGEST_KEY, ManualClock, READ_KEY, TestApp, eventually, spawn_app_on};

/// Two SLOs at 99.5 % (a 0.5 % budget) over 7 days, one per service.
const SLOS: &str = r#"
slos:
  - name: checkout-availability
    objective: 99.5
    window: 7d
    labels: { team: sre }
    sli:
      availability:
        errors: 'http_requests_total{service="checkout", status=~"5.."}'
        total: 'http_requests_total{service="checkout"}'
  - name: search-availability
    objective: 99.5
    window: 7d
    sli:
      availability:
        errors: 'http_requests_total{service="search", status=~"5.."}'
        total: 'http_requests_total{service="search"}'
"#;

/// Seeding: a point every 5 minutes for 24 hours up to the clock's time, 5000
/// requests a step per service; 0.1 % errors for the first 17 hours, then
/// `burning` errors per thousand for the last 7.
const STEP_MS: u64 = 5 * 60_000;
const STEPS: u64 = 24 * 12;
const BURNING_STEPS: u64 = 7 * 12;
const REQUESTS_PER_STEP: f64 = 5000.0;
const HEALTHY_ERRORS_PER_STEP: f64 = 5.0;
/// 7.5 % errors: 15x a 0.5 % budget.
const CHECKOUT_ERRORS_PER_STEP: f64 = 375.0;
/// 3.5 % errors: 7x.
const SEARCH_ERRORS_PER_STEP: f64 = 175.0;

/// Cumulative counters of both services: `status="200"` and `status="500"`.
fn counters(now_ms: u64) -> Vec<Value> {
    let mut points = Vec::new();
    for (service, burning) in [
        ("checkout", CHECKOUT_ERRORS_PER_STEP),
        ("search", SEARCH_ERRORS_PER_STEP),
    ] {
        let (mut ok, mut errors) = (0.0, 0.0);
        for step in 0..=STEPS {
            let at = now_ms - (STEPS - step) * STEP_MS;
            // The first point is where the counters start; each later one adds a step.
            if step > 0 {
                let bad = if step > STEPS - BURNING_STEPS {
                    burning
                } else {
                    HEALTHY_ERRORS_PER_STEP
                };
                errors += bad;
                ok += REQUESTS_PER_STEP - bad;
            }
            for (status, value) in [("200", ok), ("500", errors)] {
                points.push(json!({"name": "http_requests_total", "kind": "counter",
                    "labels": {"service": service, "status": status}, "timestamp": at, "value": value}));
            }
        }
    }
    points
}

/// The budget left over the 7 days, by hand: every error of the 24 hours over
/// every request, against the 0.5 % budget.
fn remaining_by_hand(burning: f64) -> f64 {
    let errors =
        (STEPS - BURNING_STEPS) as f64 * HEALTHY_ERRORS_PER_STEP + BURNING_STEPS as f64 * burning;
    let requests = STEPS as f64 * REQUESTS_PER_STEP;
    1.0 - (errors / requests) / 0.005
}

async fn seeded() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("slos.yaml"), SLOS).unwrap();
    let rules: PathBuf = dir.path().to_owned();
    // The wall clock's minute, so that ingest's horizon checks take the points.
    let now_ms = (chrono::Utc::now().timestamp_millis() as u64 / 60_000) * 60_000;
    let clock = ManualClock::starting_at(now_ms);
    let app = spawn_app_on(clock, move |s| {
        s.alerts.rules = vec![rules];
        s.alerts.interval = Duration::from_millis(200);
    })
    .await;
    for chunk in counters(now_ms).chunks(500) {
        let response = app.post_metrics(&Value::Array(chunk.to_vec())).await;
        assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    }
    (app, dir)
}

/// The open alerts as (rule, tier, state).
async fn open(app: &TestApp) -> Vec<(String, String, String)> {
    let (status, body) = app.get_json_as("/v1/alerts", READ_KEY).await;
    assert_eq!(status, 200, "{body}");
    body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap().to_owned(),
                a["tier"].as_str().unwrap().to_owned(),
                a["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn burn_rates_fire_at_the_workbooks_thresholds_and_slos_show_the_budget_left() {
    let (app, _rules) = seeded().await;

    // 15x over 1 h and 5 min pages (P1); 7x fires the 6 h alert (P2), not the 1 h one.
    let alerts = eventually("the burn-rate alerts", Duration::from_secs(30), || async {
        let alerts = open(&app).await;
        let firing = |rule: &str| alerts.iter().any(|(r, _, s)| r == rule && s == "firing");
        (firing("checkout-availability-burn-1h") && firing("search-availability-burn-6h"))
            .then_some(alerts)
    })
    .await;
    let tier = |rule: &str| {
        alerts
            .iter()
            .find(|(r, _, _)| r == rule)
            .map(|(_, t, _)| t.as_str())
    };
    assert_eq!(tier("checkout-availability-burn-1h"), Some("P1"));
    assert_eq!(tier("checkout-availability-burn-6h"), Some("P2"));
    assert_eq!(tier("search-availability-burn-6h"), Some("P2"));
    assert_eq!(tier("search-availability-burn-1h"), None, "{alerts:?}");
    // 24 h at 1.09 % errors is 2.2x: under the 1 d alert's 3x.
    assert_eq!(tier("search-availability-burn-1d"), None, "{alerts:?}");

    let (_, board) = app.get_json_as("/v1/alerts", READ_KEY).await;
    let page = board["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "checkout-availability-burn-1h")
        .unwrap();
    assert_eq!(page["labels"]["slo"], "checkout-availability");
    assert_eq!(page["labels"]["window"], "1h");
    assert_eq!(page["labels"]["team"], "sre");
    assert!(
        (page["value"].as_f64().unwrap() - 15.0).abs() < 1e-6,
        "{page}"
    );
    let summary = page["annotations"]["summary"].as_str().unwrap();
    assert!(summary.contains("15.00x over 1h"), "{summary}");
    assert!(summary.contains("of the 7d budget left"), "{summary}");
    assert_eq!(board["rollback"]["state"], "none", "{board}");

    let (status, slos) = app.get_json_as("/v1/slos", READ_KEY).await;
    assert_eq!(status, 200, "{slos}");
    let slo = |name: &str| -> Value {
        slos["slos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {slos}"))
    };
    for (name, burning) in [
        ("checkout-availability", CHECKOUT_ERRORS_PER_STEP),
        ("search-availability", SEARCH_ERRORS_PER_STEP),
    ] {
        let status = slo(name);
        let expected = remaining_by_hand(burning);
        let remaining = status["budget_remaining"].as_f64().unwrap();
        assert!(
            (remaining - expected).abs() < 1e-9,
            "{name}: {remaining} against {expected} by hand: {status}"
        );
        assert_eq!(
            status["total"].as_f64(),
            Some(STEPS as f64 * REQUESTS_PER_STEP)
        );
        assert_eq!(status["window"], "7d");
        assert_eq!(
            status["error_budget"].as_f64().map(|b| (b * 1e6).round()),
            Some(5000.0)
        );
    }
    let checkout = slo("checkout-availability");
    assert!(expected_negative(&checkout), "overspent: {checkout}");
    let fast = &checkout["burn_rates"][0];
    assert_eq!(
        (fast["window"].as_str(), fast["tier"].as_str()),
        (Some("1h"), Some("P1"))
    );
    assert!(
        (fast["burn_rate"].as_f64().unwrap() - 15.0).abs() < 1e-6,
        "{fast}"
    );
    assert_eq!(fast["burning"], true);
    let search = slo("search-availability");
    assert_eq!(search["burn_rates"][0]["burning"], false, "{search}");
    assert_eq!(search["burn_rates"][1]["burning"], true, "{search}");

    // Without a key: the usual 401; an ingest key has no `read`: 403.
    let response = app.get("/v1/slos", None).await;
    assert_eq!(response.status(), 401);
    let (status, body) = app.get_json_as("/v1/slos", INGEST_KEY).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
}

fn expected_negative(status: &Value) -> bool {
    status["budget_remaining"].as_f64().is_some_and(|r| r < 0.0)
}

/// Latency SLOs on a classic Prometheus histogram (`_bucket{le}` counters, as
/// remote write delivers one; no native histogram of the name): 99 % within
/// 0.25 s, and one whose threshold is not a bucket bound.
const CLASSIC_SLOS: &str = r#"
slos:
  - name: checkout-latency
    objective: 99
    window: 7d
    sli:
      latency:
        histogram: 'checkout_duration_seconds{service="checkout"}'
        threshold: 0.25
  - name: checkout-latency-off-bound
    objective: 99
    window: 7d
    sli:
      latency:
        histogram: 'checkout_duration_seconds{service="checkout"}'
        threshold: 0.3
"#;

/// Per step, per instance: 2,500 requests, 2,450 within 0.25 s (2 % slower).
const CLASSIC_BUCKETS: [(&str, f64); 4] = [
    ("0.1", 2000.0),
    ("0.25", 2450.0),
    ("1", 2500.0),
    ("+Inf", 2500.0),
];

#[tokio::test]
async fn a_latency_slo_reads_a_classic_histogram() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("slos.yaml"), CLASSIC_SLOS).unwrap();
    let rules: PathBuf = dir.path().to_owned();
    let now_ms = (chrono::Utc::now().timestamp_millis() as u64 / 60_000) * 60_000;
    let app = spawn_app_on(ManualClock::starting_at(now_ms), move |s| {
        s.alerts.rules = vec![rules];
        s.alerts.interval = Duration::from_millis(200);
    })
    .await;
    // Two instances; instance b restarts (its counters back to 0) half way.
    let mut points = Vec::new();
    for instance in ["a", "b"] {
        for step in 0..=STEPS {
            let at = now_ms - (STEPS - step) * STEP_MS;
            let steps = if instance == "b" && step > STEPS / 2 {
                step - STEPS / 2 - 1
            } else {
                step
            };
            for (le, per_step) in CLASSIC_BUCKETS {
                points.push(
                    json!({"name": "checkout_duration_seconds_bucket", "kind": "counter",
                    "labels": {"service": "checkout", "instance": instance, "le": le},
                    "timestamp": at, "value": per_step * steps as f64}),
                );
            }
        }
    }
    for chunk in points.chunks(500) {
        let response = app.post_metrics(&Value::Array(chunk.to_vec())).await;
        assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    }

    let (status, slos) = app.get_json_as("/v1/slos", READ_KEY).await;
    assert_eq!(status, 200, "{slos}");
    let slo = |name: &str| -> Value {
        slos["slos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {slos}"))
    };
    let latency = slo("checkout-latency");
    assert_eq!(latency["sli"], "latency");
    // Every step but the restart's first point of instance b counts: that
    // point (0) is where its counters start again, so its step is lost.
    let steps = (2 * STEPS - 1) as f64;
    assert_eq!(latency["total"].as_f64(), Some(steps * 2500.0), "{latency}");
    assert_eq!(latency["bad"].as_f64(), Some(steps * 50.0), "{latency}");
    assert!(
        (latency["sli_value"].as_f64().unwrap() - 0.98).abs() < 1e-9,
        "{latency}"
    );
    // 2 % slower against a 1 % budget: burning at 2x everywhere.
    let burn = latency["burn_rates"][0]["burn_rate"].as_f64().unwrap();
    assert!((burn - 2.0).abs() < 1e-9, "{latency}");

    let off = slo("checkout-latency-off-bound");
    let error = off["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("0.3") && error.contains("[0.1, 0.25, 1.0]"),
        "{off}"
    );
    app.stop().await.unwrap();
}
