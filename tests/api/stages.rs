//! Rollout stage gates end to end: request counters, duration histograms and
//! events of two releases sent through the API; `GET /v1/launches/{id}/stages`
//! fails the canary whose error ratio is worse, passes the stage where the new
//! release is as good as the old one, and has no verdict for a stage with
//! almost no traffic.

use chrono::TimeZone;
use hypercare_tests::*;
use serde_json::{Value, json};

const OLD: &str = "2.4.0";
const NEW: &str = "2.5.0";

/// 2026-11-21 at `h:m` UTC, in epoch milliseconds.
fn utc_ms(h: u32, m: u32) -> u64 {
    chrono::Utc
        .with_ymd_and_hms(2026, 11, 21, h, m, 0)
        .single()
        .unwrap()
        .timestamp_millis() as u64
}

/// Requests and errors of one release in minute `m` from 08:00: the old release
/// serves about 1,000 a minute at 0.5 % errors throughout; the new one 100 a
/// minute at about 3 % from 09:00 (the canary), 300 at 0.5 % from 11:00 (10 %)
/// and 2 from 12:30 (50 %, almost no traffic).
fn minute(release: &str, m: u64) -> (u64, u64) {
    if release == OLD {
        let errors = 4 + m % 3;
        return (1000, errors);
    }
    match m {
        0..60 => (0, 0),
        60..180 => (100, 2 + m % 3),
        180..270 => (300, 1 + m % 2),
        _ => (2, 0),
    }
}

/// Latency buckets of `requests` (bounds 0.05, 0.1, 0.25, 0.5, 1 s), the same
/// shape for both releases, with a wobble.
fn latency(requests: u64, m: u64) -> Vec<u64> {
    let slow = requests / 10 + m % 3;
    let medium = requests / 4;
    let fast = requests.saturating_sub(slow + medium);
    vec![fast, medium, slow, 0, 0, 0]
}

/// From 08:00 to 13:00 UTC, a point a minute per series (cumulative).
async fn seed_metrics(app: &TestApp) {
    let mut points = Vec::new();
    for release in [OLD, NEW] {
        let (mut ok, mut errors) = (0u64, 0u64);
        let mut buckets = vec![0u64; 6];
        for m in 0..300u64 {
            let (requests, failed) = minute(release, m);
            if requests == 0 {
                continue;
            }
            ok += requests - failed;
            errors += failed;
            for (total, n) in buckets.iter_mut().zip(latency(requests, m)) {
                *total += n;
            }
            let at = utc_ms(8, 0) + m * 60_000;
            for (status, value) in [("200", ok), ("500", errors)] {
                points.push(json!({"name": "http_requests_total", "kind": "counter",
                    "labels": {"release": release, "status": status, "service": "shop"},
                    "timestamp": at, "value": value}));
            }
            let count: u64 = buckets.iter().sum();
            points.push(
                json!({"name": "http_request_duration_seconds", "kind": "histogram",
                "labels": {"version": release, "service": "shop"}, "timestamp": at,
                "bounds": [0.05, 0.1, 0.25, 0.5, 1.0], "counts": buckets,
                "sum": count as f64 * 0.08, "count": count}),
            );
        }
    }
    for batch in points.chunks(5000) {
        let response = app.post_metrics(&json!(batch)).await;
        assert_eq!(response.status(), 202);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["accepted"], batch.len(), "{body}");
    }
}

/// A checkout conversion of 30 % for both releases during the canary: 30
/// checkouts started and 9 completed per release every 5 minutes.
async fn seed_checkouts(app: &TestApp) {
    let mut events = Vec::new();
    for release in [OLD, NEW] {
        for interval in 0..24u64 {
            let start = utc_ms(9, 0) + interval * 300_000;
            for i in 0..30u64 {
                for (event, n) in [("checkout_started", 30), ("checkout_completed", 9)] {
                    if i < n {
                        events.push(json!({"event": event, "release": release,
                            "event_id": uuid::Uuid::new_v4().to_string(),
                            "timestamp": start + i * 9_000, "user_id": format!("u{i}")}));
                    }
                }
            }
        }
    }
    app.send_events(&events).await;
}

fn metric<'a>(stage: &'a Value, name: &str) -> &'a Value {
    stage["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == name)
        .unwrap_or_else(|| panic!("no {name} in {stage}"))
}

#[tokio::test]
async fn the_stage_gate_fails_a_worse_canary_and_passes_one_that_is_not() {
    let clock = ManualClock::starting_at(utc_ms(13, 0));
    let app = spawn_app_on(clock, |_| {}).await;
    let (status, launch) = app
        .post_json(
            "/v1/launches",
            &json!({"name": "Checkout v2", "release": NEW, "d0": "2026-11-21T09:00:00+01:00",
                    "tz": "Europe/Paris", "stages": [
                        {"name": "canary", "percent": 1, "starts_at": "2026-11-21T10:00:00+01:00"},
                        {"name": "ten", "percent": 10, "starts_at": "2026-11-21T11:00:00Z"},
                        {"name": "fifty", "percent": 50, "starts_at": "2026-11-21T12:30:00Z"},
                        {"name": "all", "percent": 100, "starts_at": "2026-11-21T15:00:00Z"}]}),
        )
        .await;
    assert!(status.is_success(), "{launch}");
    let (status, answer) = app
        .put_json(
            "/v1/kpis/checkout_conversion",
            &json!({"title": "Checkout conversion", "aggregation": "ratio",
                    "numerator": {"event": "checkout_completed"},
                    "denominator": {"event": "checkout_started"}, "scale": 100,
                    "direction": "higher_is_better", "target": 30, "warning": 25, "critical": 20}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    seed_metrics(&app).await;
    seed_checkouts(&app).await;

    let (status, answer) = app.get_json("/v1/launches/current/stages").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["release"].as_str(), answer["tz"].as_str()),
        (Some(NEW), Some("Europe/Paris"))
    );
    let stages = answer["stages"].as_array().unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["canary", "ten", "fifty", "all"]);

    // The canary: 3 % errors against 0.5 %, over the same two hours.
    let canary = &stages[0];
    assert_eq!(canary["from"], "2026-11-21T10:00:00+01:00", "{canary}");
    assert_eq!(canary["to"], "2026-11-21T12:00:00+01:00");
    assert_eq!(
        (canary["state"].as_str(), canary["intervals"].as_u64()),
        (Some("over"), Some(24))
    );
    assert_eq!(canary["compared_with"], json!([OLD]));
    assert_eq!(canary["verdict"], "fail", "{canary}");
    assert_eq!(canary["failed"], json!(["error_ratio"]), "{canary}");
    let errors = metric(canary, "error_ratio");
    assert_eq!(errors["verdict"], "worse");
    assert!(errors["p_adjusted"].as_f64().unwrap() < 0.05, "{errors}");
    let (new, old) = (
        errors["new_release"]["median"].as_f64().unwrap(),
        errors["old_release"]["median"].as_f64().unwrap(),
    );
    assert!(
        (0.025..0.035).contains(&new) && (0.004..0.006).contains(&old),
        "{errors}"
    );
    // Its first interval has no point before it for the new release's series
    // (they start at 10:00): still counted, from its first point.
    assert_eq!(errors["new_release"]["intervals"], 24, "{errors}");
    for latency in ["latency_p50", "latency_p95", "latency_p99"] {
        assert_eq!(metric(canary, latency)["verdict"], "no_change", "{canary}");
    }
    let conversion = metric(canary, "checkout_conversion");
    assert_eq!(conversion["kind"], "conversion");
    assert_eq!(conversion["verdict"], "no_change", "{conversion}");
    assert_eq!(conversion["new_release"]["median"], 30.0, "{conversion}");

    // 10 %: the new release as good as the old one: pass. No checkout events
    // in this window: the KPI is not measured rather than blocking the gate.
    let ten = &stages[1];
    assert_eq!(ten["verdict"], "pass", "{ten}");
    assert_eq!(ten["intervals"], 18);
    assert_eq!(metric(ten, "error_ratio")["verdict"], "no_change");
    assert_eq!(ten["unmeasured"], json!(["checkout_conversion"]));

    // 50 %, under way: 2 requests a minute, under min_count per interval.
    let fifty = &stages[2];
    assert_eq!(fifty["state"], "under_way");
    assert_eq!(fifty["verdict"], "not_enough_data", "{fifty}");
    assert_eq!(metric(fifty, "error_ratio")["new_release"]["intervals"], 0);
    assert_eq!(metric(fifty, "error_ratio")["old_release"]["intervals"], 6);

    // 100 % starts later.
    assert_eq!(
        (stages[3]["state"].as_str(), stages[3]["verdict"].as_str()),
        (Some("to_come"), Some("not_enough_data"))
    );

    // The same by id.
    let id = launch["id"].as_str().unwrap();
    let (status, by_id) = app.get_json(&format!("/v1/launches/{id}/stages")).await;
    assert_eq!((status.as_u16(), &by_id), (200, &answer));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_hostile_client_gets_a_clear_answer() {
    let clock = ManualClock::starting_at(utc_ms(13, 0));
    let app = spawn_app_on(clock, |_| {}).await;
    let (status, launch) = app
        .post_json(
            "/v1/launches",
            &json!({"name": "No stages", "release": NEW, "d0": "2026-11-21T09:00:00+01:00",
                    "tz": "Europe/Paris"}),
        )
        .await;
    assert!(status.is_success(), "{launch}");
    let id = launch["id"].as_str().unwrap();

    // A launch without stages: an empty list.
    let (status, answer) = app.get_json(&format!("/v1/launches/{id}/stages")).await;
    assert_eq!(
        (status.as_u16(), &answer["stages"]),
        (200, &json!([])),
        "{answer}"
    );

    let path = "/v1/launches/current/stages";
    let response = app.get(path, None).await;
    assert_eq!(response.status(), 401);
    let (status, answer) = app.get_json_as(path, INGEST_KEY).await;
    assert_eq!(
        (status.as_u16(), answer["error"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, answer) = app.get_json("/v1/launches/nope/stages").await;
    assert_eq!(
        (status.as_u16(), answer["error"].as_str()),
        (404, Some("not_found"))
    );
    let (status, answer) = app.get_json(&format!("{path}?day=1")).await;
    assert_eq!(
        (status.as_u16(), answer["error"].as_str()),
        (400, Some("invalid_request")),
        "{answer}"
    );
    app.stop().await.unwrap();
}

/// Cumulative counts per `le` (0.05, 0.1, 0.25, 0.5, 1, +Inf) of one minute's
/// requests of a release whose latency is a classic Prometheus histogram: the
/// old release serves 1,000 a minute, 95 % within 0.1 s; the new one 100 a
/// minute, 85 % within 0.25 s and all within 0.5 s.
fn classic_minute(release: &str) -> [u64; 6] {
    if release == OLD {
        [700, 950, 990, 1000, 1000, 1000]
    } else {
        [40, 70, 85, 100, 100, 100]
    }
}

/// Request counters and a classic duration histogram (no native one), one
/// point a minute per series from 08:00 to 11:00 UTC; the new release from
/// 09:00 (the canary), each release with 0.5 % errors.
async fn seed_classic(app: &TestApp) {
    const LE: [&str; 6] = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"];
    let mut points = Vec::new();
    for release in [OLD, NEW] {
        let first = if release == OLD { 0 } else { 60 };
        let mut buckets = [0u64; 6];
        for m in first..180u64 {
            for (total, n) in buckets.iter_mut().zip(classic_minute(release)) {
                *total += n;
            }
            let at = utc_ms(8, 0) + m * 60_000;
            let requests = buckets[5];
            for (status, value) in [("200", requests - requests / 200), ("500", requests / 200)] {
                points.push(json!({"name": "http_requests_total", "kind": "counter",
                    "labels": {"release": release, "status": status}, "timestamp": at,
                    "value": value}));
            }
            for (le, value) in LE.iter().zip(buckets) {
                points.push(json!({"name": "http_request_duration_seconds_bucket",
                    "kind": "counter", "timestamp": at, "value": value,
                    "labels": {"version": release, "le": le, "job": "shop"}}));
            }
        }
    }
    for batch in points.chunks(5000) {
        let response = app.post_metrics(&json!(batch)).await;
        assert_eq!(response.status(), 202);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["accepted"], batch.len(), "{body}");
    }
}

#[tokio::test]
async fn a_canary_slower_on_a_classic_histogram_fails_on_latency() {
    let clock = ManualClock::starting_at(utc_ms(11, 5));
    let app = spawn_app_on(clock, |_| {}).await;
    let (status, launch) = app
        .post_json(
            "/v1/launches",
            &json!({"name": "Checkout v2", "release": NEW, "d0": "2026-11-21T09:00:00+01:00",
                    "tz": "Europe/Paris", "stages": [
                        {"name": "canary", "percent": 1, "starts_at": "2026-11-21T10:00:00+01:00"},
                        {"name": "all", "percent": 100, "starts_at": "2026-11-21T11:00:00Z"}]}),
        )
        .await;
    assert!(status.is_success(), "{launch}");
    seed_classic(&app).await;

    let (status, answer) = app.get_json("/v1/launches/current/stages").await;
    assert_eq!(status, 200, "{answer}");
    let canary = &answer["stages"][0];
    assert_eq!(canary["intervals"], 24, "{canary}");
    assert_eq!(canary["verdict"], "fail", "{canary}");
    let failed = canary["failed"].as_array().unwrap();
    assert!(failed.contains(&json!("latency_p95")), "{canary}");
    assert!(!failed.contains(&json!("error_ratio")), "{canary}");
    let unmeasured = canary["unmeasured"].as_array().unwrap();
    assert!(
        !unmeasured
            .iter()
            .any(|m| m.as_str().unwrap().starts_with("latency")),
        "{canary}"
    );
    let p95 = metric(canary, "latency_p95");
    assert_eq!(p95["verdict"], "worse", "{p95}");
    // PromQL's interpolation on 5 minutes of buckets: the old release's rank
    // 0.95 x 5,000 is the top of (0.05, 0.1]; the new one's 0.95 x 500 is 50
    // of the 75 in (0.25, 0.5]: 0.25 + 0.25 x 50 / 75.
    let (new, old) = (
        p95["new_release"]["median"].as_f64().unwrap(),
        p95["old_release"]["median"].as_f64().unwrap(),
    );
    assert!((new - (0.25 + 0.25 * 50.0 / 75.0)).abs() < 1e-9, "{p95}");
    assert!((old - 0.1).abs() < 1e-9, "{p95}");
    assert_eq!(
        (
            p95["new_release"]["intervals"].as_u64(),
            p95["old_release"]["intervals"].as_u64()
        ),
        (Some(24), Some(24)),
        "{p95}"
    );
    app.stop().await.unwrap();
}
