//! Rule backtest end to end: a week of an error-ratio gauge with a 40-minute
//! incident and a smaller bump, sent through the API; `POST /v1/alerts/backtest`
//! replays the rollback rule over the week at the evaluation interval with the
//! live evaluator's reads, writing nothing and notifying no one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use hypercare_alerts::config::Receiver;
use serde_json::{Value, json};

use hypercare_tests::receiver::Pager;
use hypercare_tests::{INGEST_KEY, ManualClock, READ_KEY, TestApp, spawn_app_on};

const STEP_MS: u64 = 5 * 60_000;
const WEEK_MS: u64 = 7 * 24 * 60 * 60_000;
const INCIDENT_MS: u64 = 40 * 60_000;

const RULES: &str = r#"
groups:
  - name: rollback
    rules:
      - name: payment-errors
        tier: P0
        for: 10m
        rollback_trigger: true
        annotations: { summary: "payment errors at {{ $value }}" }
        condition:
          metric: { select: 'payment_error_ratio{service="payments"}', fn: last, window: 5m }
          above: 0.02
"#;

/// (incident start, bump start) in ms: the incident is 5 % errors for 40
/// minutes three days ago, the bump 1.5 % for 20 minutes five days ago, else 0.1 %.
fn windows(now_ms: u64) -> (u64, u64) {
    (now_ms - 3 * 24 * 3_600_000, now_ms - 5 * 24 * 3_600_000)
}

fn ratio_at(at: u64, now_ms: u64) -> f64 {
    let (incident, bump) = windows(now_ms);
    if (incident..incident + INCIDENT_MS).contains(&at) {
        0.05
    } else if (bump..bump + 20 * 60_000).contains(&at) {
        0.015
    } else {
        0.001
    }
}

async fn seeded(pager: &Pager) -> (TestApp, tempfile::TempDir, u64) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), RULES).unwrap();
    let rules: PathBuf = dir.path().to_owned();
    // The wall clock's minute, so that ingest's horizon checks take the points.
    let now_ms = (chrono::Utc::now().timestamp_millis() as u64 / 60_000) * 60_000;
    // The default tiers' receivers, all at the local pager.
    let receivers: BTreeMap<String, Receiver> = ["oncall", "team_lead", "head_of_engineering"]
        .iter()
        .map(|name| {
            let receiver = Receiver {
                url: pager.url(name),
                send_resolved: true,
                max_alerts: 0,
                timeout: Duration::from_secs(2),
                bearer_token: None,
            };
            ((*name).to_owned(), receiver)
        })
        .collect();
    let app = spawn_app_on(ManualClock::starting_at(now_ms), move |s| {
        s.alerts.rules = vec![rules];
        s.alerts.interval = Duration::from_millis(STEP_MS);
        s.alerts.receivers = receivers;
    })
    .await;
    let points: Vec<Value> = (0..=WEEK_MS / STEP_MS)
        .map(|i| {
            let at = now_ms - WEEK_MS + i * STEP_MS;
            json!({"name": "payment_error_ratio", "kind": "gauge", "labels": {"service": "payments"},
                   "timestamp": at, "value": ratio_at(at, now_ms)})
        })
        .collect();
    for chunk in points.chunks(500) {
        let response = app.post_metrics(&Value::Array(chunk.to_vec())).await;
        assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    }
    (app, dir, now_ms)
}

fn rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn ms(text: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_millis() as u64
}

#[tokio::test]
async fn backtest_fires_during_the_incident_only_and_sweeps_without_touching_live_state() {
    let pager = Pager::start(0).await;
    let (app, _rules, now_ms) = seeded(&pager).await;
    let (status, before) = app.get_json_as("/v1/alerts", READ_KEY).await;
    assert_eq!(status, 200, "{before}");

    let week = json!({"from": rfc3339(now_ms - WEEK_MS), "to": rfc3339(now_ms)});
    let mut body = week.clone();
    body["set"] = json!({"threshold": [0.01, 0.02, 0.1]});
    let (status, outcome) = app
        .post_json_as("/v1/alerts/backtest", READ_KEY, &body)
        .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["evaluations"], WEEK_MS / STEP_MS + 1, "{outcome}");
    assert_eq!(outcome["rules"], json!(["payment-errors"]));

    // Pending, firing, resolved: once, inside the incident (± one interval).
    let (incident, _) = windows(now_ms);
    let transitions = outcome["transitions"].as_array().unwrap();
    let states: Vec<&str> = transitions
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["pending", "firing", "resolved"], "{outcome}");
    for t in transitions {
        assert_eq!(t["rule"], "payment-errors");
        assert_eq!(t["labels"]["alertname"], "payment-errors");
        let at = ms(t["at"].as_str().unwrap());
        assert!(
            (incident - STEP_MS..=incident + INCIDENT_MS + STEP_MS).contains(&at),
            "{t} outside the incident starting {}",
            rfc3339(incident)
        );
    }
    let at = |i: usize| ms(transitions[i]["at"].as_str().unwrap());
    // `for: 10m` between pending and firing.
    assert_eq!(at(1) - at(0), 10 * 60_000, "{outcome}");
    assert_eq!(transitions[1]["value"], 0.05);
    assert_eq!(outcome["firings"], 1);
    // The page it would have sent, to the P0 receiver.
    let notifications = outcome["notifications"].as_array().unwrap();
    assert!(
        notifications
            .iter()
            .any(|n| n["receiver"] == "oncall" && n["reason"] == "notify"),
        "{outcome}"
    );

    // The sweep: the bump fires too at 1 %, nothing at 10 %.
    let sweep: Vec<(f64, u64)> = outcome["sweep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["threshold"].as_f64().unwrap(),
                s["firings"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(sweep, [(0.01, 2), (0.02, 1), (0.1, 0)], "{outcome}");
    let minutes: Vec<f64> = outcome["sweep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["firing_minutes"].as_f64().unwrap())
        .collect();
    assert!(
        minutes[0] > minutes[1] && minutes[1] > minutes[2],
        "{minutes:?}"
    );

    // Nothing changed live, and nobody was paged.
    let (status, after) = app.get_json_as("/v1/alerts", READ_KEY).await;
    assert_eq!(status, 200);
    assert_eq!(before, after);
    let (_, history) = app.get_json_as("/v1/alerts/notifications", READ_KEY).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for receiver in ["oncall", "team_lead", "head_of_engineering"] {
        assert!(pager.to(receiver).is_empty(), "{receiver}: {history}");
    }

    // A candidate rule that does not load yet: checked like a rule file.
    let mut body = week.clone();
    body["rules"] = json!(RULES.replace("above: 0.02", "above: 0.02\n        sometimes: yes"));
    let (status, error) = app
        .post_json_as("/v1/alerts/backtest", READ_KEY, &body)
        .await;
    assert_eq!(
        (status.as_u16(), error["field"].as_str()),
        (400, Some("rules")),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("payment-errors"),
        "{error}"
    );
    // A candidate with a lower threshold replays like the loaded rule.
    body["rules"] = json!(RULES.replace("above: 0.02", "above: 0.01"));
    let (status, candidate) = app
        .post_json_as("/v1/alerts/backtest", READ_KEY, &body)
        .await;
    assert_eq!(status, 200, "{candidate}");
    assert_eq!(candidate["firings"], 2, "{candidate}");

    // The same through `hypercare rules backtest FILE --set threshold=...`.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), RULES).unwrap();
    let args = hypercare_alerts::cli::BacktestArgs {
        file: Some(file.path().to_owned()),
        from: rfc3339(now_ms - WEEK_MS),
        to: rfc3339(now_ms),
        rule: vec!["payment-errors".into()],
        set: Some("threshold=0.01,0.1".into()),
        step: None,
        json: false,
        url: app.address.clone(),
        key: Some(READ_KEY.into()),
    };
    let text = hypercare_alerts::cli::backtest(args, None).await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains(": 1 firing(s), "), "{text}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("payment-errors") && l.contains(" value "))
            .count(),
        3,
        "{text}"
    );
    assert!(text.contains("  0.01        2 "), "{text}");
    assert!(text.contains("  0.1         0 "), "{text}");
}

#[tokio::test]
async fn backtest_limits_are_checked_first_and_name_the_field() {
    let pager = Pager::start(0).await;
    let (app, _rules, now_ms) = seeded(&pager).await;
    let post = |body: Value, key: &'static str| {
        let app = &app;
        async move { app.post_json_as("/v1/alerts/backtest", key, &body).await }
    };
    // 100 days at 5 minutes asked for: over the 20 000 evaluations.
    let (status, error) = post(
        json!({"from": rfc3339(now_ms - 100 * 24 * 3_600_000), "to": rfc3339(now_ms), "step": "5m"}),
        READ_KEY,
    )
    .await;
    assert_eq!(
        (status.as_u16(), error["field"].as_str()),
        (400, Some("step")),
        "{error}"
    );
    let from = rfc3339(now_ms - 3_600_000);
    let to = rfc3339(now_ms);
    for (body, field) in [
        (json!({"from": "last week", "to": to}), "from"),
        (json!({"from": to, "to": from}), "to"),
        (
            json!({"from": from, "to": rfc3339(now_ms + 3_600_000)}),
            "to",
        ),
        (json!({"from": from, "to": to, "rule": ["nope"]}), "rule"),
        (
            json!({"from": from, "to": to, "set": {"threshold": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]}}),
            "set.threshold",
        ),
        (json!({"from": from, "to": to, "extra": 1}), "extra"),
    ] {
        let (status, error) = post(body.clone(), READ_KEY).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["error"], "invalid_request", "{error}");
        assert_eq!(error["field"], field, "{body}: {error}");
    }
    let (status, error) = post(json!({"from": from, "to": to}), INGEST_KEY).await;
    assert_eq!(status, 403, "{error}");
    // A GET is the wrong method, not the alert called "backtest".
    let (status, error) = app.get_json("/v1/alerts/backtest").await;
    assert_eq!(
        (status.as_u16(), error["error"].as_str()),
        (405, Some("method_not_allowed")),
        "{error}"
    );
}
