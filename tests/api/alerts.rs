//! Tiered alerts end to end: the real evaluator on a short interval over metrics
//! sent through the API, and a local webhook receiver standing in for the pager.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hypercare::Settings;
use hypercare_alerts::config::{Escalation, Receiver, TierPolicy};
use hypercare_alerts::rule::Tier;
use serde_json::{Value, json};

use reqwest::Method;

use hypercare_tests::receiver::Pager;
use hypercare_tests::{ADMIN_KEY, READ_KEY, TestApp, eventually, spawn_app_with};

fn policy(receivers: &[&str], group_wait_ms: u64, repeat_ms: u64) -> TierPolicy {
    TierPolicy {
        receivers: receivers.iter().map(|r| (*r).to_owned()).collect(),
        ack_sla: Duration::from_secs(60),
        group_wait: Duration::from_millis(group_wait_ms),
        group_interval: Duration::from_millis(500),
        repeat_interval: Duration::from_millis(repeat_ms),
        escalation: Vec::new(),
        ack_timeout: None,
        digest_at: None,
    }
}

/// An app evaluating `rules` (YAML) every 100 ms, notifying `pager`.
async fn app_with_rules(
    rules: &str,
    pager: &Pager,
    customize: impl FnOnce(&mut Settings),
) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), rules).unwrap();
    let rules_dir: PathBuf = dir.path().to_owned();
    let receivers: BTreeMap<String, Receiver> = ["oncall", "lead", "head", "chat"]
        .iter()
        .map(|name| {
            (
                (*name).to_owned(),
                Receiver {
                    url: pager.url(name),
                    send_resolved: true,
                    max_alerts: 0,
                    timeout: Duration::from_secs(2),
                    bearer_token: None,
                },
            )
        })
        .collect();
    let app = spawn_app_with(move |s| {
        s.alerts.rules = vec![rules_dir];
        s.alerts.interval = Duration::from_millis(100);
        s.alerts.receivers = receivers;
        s.alerts.group_by = vec!["alertname".into()];
        s.alerts.retry_backoff = Duration::from_millis(100);
        s.alerts.tiers = BTreeMap::from([
            (Tier::P0, policy(&["oncall"], 0, 60_000)),
            (Tier::P1, policy(&["oncall"], 300, 60_000)),
            (Tier::P2, policy(&["chat"], 300, 60_000)),
            (Tier::P3, policy(&["chat"], 300, 60_000)),
        ]);
        customize(s);
    })
    .await;
    (app, dir)
}

/// Gauge points now, one per (labels, value).
async fn gauge(app: &TestApp, name: &str, points: &[(Value, f64)]) {
    let now = chrono::Utc::now().timestamp_millis();
    let body: Vec<Value> = points
        .iter()
        .map(|(labels, value)| json!({"name": name, "kind": "gauge", "labels": labels, "value": value, "timestamp": now}))
        .collect();
    // Large storms go in several requests (the per-request record limit).
    for chunk in body.chunks(500) {
        let response = app.post_metrics(&Value::Array(chunk.to_vec())).await;
        assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    }
}

/// `GET /v1/alerts` as a reader: the answer must be a 200.
async fn board(app: &TestApp) -> Value {
    let (status, body) = app.get_json_as("/v1/alerts", READ_KEY).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The open alerts of `service`, as `GET /v1/alerts` shows them.
fn of_service<'a>(board: &'a Value, service: &str) -> Vec<&'a Value> {
    board["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["service"] == service)
        .collect()
}

fn alert_ids(notification: &Value) -> Vec<String> {
    notification["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap().to_owned())
        .collect()
}

const TEMPERATURE_RULES: &str = r#"
groups:
  - name: test
    rules:
      - name: hot
        tier: P1
        for: 1s
        labels: { team: sre }
        annotations: { summary: "{{ $labels.service }} at {{ $value }} degrees", runbook_url: "https://runbooks.example.com/hot" }
        condition:
          metric: { select: temperature, fn: last, window: 5m, by: [service] }
          above: 10
      - name: flapping
        tier: P1
        for: 3s
        annotations: { summary: "brief" }
        condition:
          metric: { select: pressure, fn: last, window: 5m }
          above: 10
"#;

#[tokio::test]
async fn a_condition_fires_once_per_group_after_for_repeats_and_resolves() {
    let pager = Pager::start(0).await;
    let (app, _rules) = app_with_rules(TEMPERATURE_RULES, &pager, |s| {
        if let Some(p1) = s.alerts.tiers.get_mut(&Tier::P1) {
            p1.repeat_interval = Duration::from_secs(3);
        }
    })
    .await;
    gauge(
        &app,
        "temperature",
        &[
            (json!({"service": "a"}), 20.0),
            (json!({"service": "b"}), 30.0),
        ],
    )
    .await;
    // Holds shorter than `for`: pending, then clears, never notified.
    gauge(&app, "pressure", &[(json!({}), 50.0)]).await;
    let pending = eventually("three pending alerts", Duration::from_secs(5), || async {
        let open = board(&app).await;
        let states: Vec<(String, String)> = open["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["rule"].to_string(), a["state"].to_string()))
            .collect();
        (states.len() == 3).then_some(states)
    })
    .await;
    assert!(
        pending.iter().all(|(_, s)| s == "\"pending\""),
        "before `for` (1 s): {pending:?}"
    );
    gauge(&app, "pressure", &[(json!({}), 1.0)]).await;

    // Both series of `hot` fire after 1 s and arrive in one notification.
    let got = pager.wait_for("oncall", 1, Duration::from_secs(5)).await;
    let first = &got[0];
    assert_eq!(first["version"], "4");
    assert_eq!(first["status"], "firing");
    assert_eq!(first["receiver"], "oncall");
    assert_eq!(alert_ids(first), vec!["hot", "hot"]);
    assert_eq!(
        first["groupLabels"],
        json!({"alertname": "hot", "tier": "P1"})
    );
    assert_eq!(first["commonLabels"]["team"], "sre");
    let summaries: Vec<&str> = first["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["annotations"]["summary"].as_str().unwrap())
        .collect();
    assert!(
        summaries.contains(&"a at 20 degrees") && summaries.contains(&"b at 30 degrees"),
        "{summaries:?}"
    );
    assert!(first["externalURL"].is_string() && first["alerts"][0]["generatorURL"].is_string());
    assert_eq!(first["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");

    // Nothing new: the next notification is the repeat, 3 s after the first.
    let got = pager.wait_for("oncall", 2, Duration::from_secs(6)).await;
    assert_eq!(alert_ids(&got[1]), vec!["hot", "hot"]);
    let arrivals = pager.arrivals("oncall");
    let gap = arrivals[1].1 - arrivals[0].1;
    assert!(
        gap >= Duration::from_millis(2900),
        "repeated after {gap:?}, not the repeat interval"
    );

    // The condition clears: one resolved notification.
    gauge(
        &app,
        "temperature",
        &[
            (json!({"service": "a"}), 1.0),
            (json!({"service": "b"}), 2.0),
        ],
    )
    .await;
    let got = pager.wait_for("oncall", 3, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[2]["status"], "resolved");
    assert!(
        got[2]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == "resolved" && a["endsAt"] != "0001-01-01T00:00:00Z")
    );
    assert_eq!(board(&app).await["alerts"], json!([]));
    // A condition shorter than `for` never fired, so it was never notified.
    let (status, history) = app.get_json_as("/v1/alerts/history", READ_KEY).await;
    assert_eq!(status, 200);
    let rules: Vec<&str> = history["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, vec!["hot", "hot"], "{history}");
    assert!(
        got.iter()
            .all(|n| !alert_ids(n).contains(&"flapping".to_owned())),
        "{got:?}"
    );
}

const TIERED_RULES: &str = r#"
groups:
  - name: test
    rules:
      - name: checkout_down
        tier: P0
        annotations: { summary: "down" }
        rollback_trigger: true
        condition:
          metric: { select: up, fn: last, window: 5m, by: [service] }
          below: 1
      - name: slow
        tier: P2
        annotations: { summary: "slow" }
        condition:
          metric: { select: latency, fn: last, window: 5m, by: [service] }
          above: 1
"#;

#[tokio::test]
async fn a_firing_p0_inhibits_lower_tiers_of_its_service_only() {
    let pager = Pager::start(0).await;
    let (app, _rules) = app_with_rules(TIERED_RULES, &pager, |s| {
        s.alerts.group_by = vec!["alertname".into(), "service".into()]
    })
    .await;
    gauge(
        &app,
        "up",
        &[
            (json!({"service": "checkout"}), 0.0),
            (json!({"service": "search"}), 1.0),
        ],
    )
    .await;
    gauge(
        &app,
        "latency",
        &[
            (json!({"service": "checkout"}), 5.0),
            (json!({"service": "search"}), 5.0),
        ],
    )
    .await;
    let p0 = pager.wait_for("oncall", 1, Duration::from_secs(5)).await;
    assert_eq!(p0[0]["commonLabels"]["service"], "checkout");
    // Search's P2 is sent after its group wait; checkout's is inhibited, so
    // its group (waiting as long) is never sent.
    let chat = pager.wait_for("chat", 1, Duration::from_secs(5)).await;
    assert_eq!(chat.len(), 1, "only search's P2 is sent: {chat:?}");
    assert_eq!(chat[0]["commonLabels"]["service"], "search");

    let open = board(&app).await;
    let inhibited: Vec<&Value> = open["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["inhibited"] == true)
        .collect();
    assert_eq!(inhibited.len(), 1, "{open}");
    assert_eq!(inhibited[0]["labels"]["service"], "checkout");
    assert_eq!(inhibited[0]["rule"], "slow");
    // A rollback trigger firing: the rollback is recommended, with its evidence.
    assert_eq!(open["rollback"]["state"], "rollback_recommended");
    assert_eq!(open["rollback"]["evidence"][0]["rule"], "checkout_down");
    assert_eq!(open["rollback"]["evidence"][0]["value"], 0.0);
    assert_eq!(
        open["rollback"]["evidence"][0]["condition"]["metric"]["select"],
        "up"
    );
    assert_eq!(
        pager.to("chat").len(),
        1,
        "checkout's P2 stays inhibited: {:?}",
        pager.to("chat")
    );
}

const ONE_RULE: &str = r#"
groups:
  - name: test
    rules:
      - name: queue_full
        tier: P0
        annotations: { summary: "queue full" }
        condition:
          metric: { select: queue, fn: last, window: 5m, by: [service] }
          above: 100
"#;

#[tokio::test]
async fn a_silence_mutes_and_its_expiry_unmutes() {
    let pager = Pager::start(0).await;
    let (app, _rules) = app_with_rules(ONE_RULE, &pager, |_| {}).await;
    let create = |body: Value| {
        let app = &app;
        async move { app.post_json("/v1/silences", &body).await }
    };
    // Bad silences are refused, naming the field.
    let (status, body) =
        create(json!({"matchers": [], "duration": "1h", "createdBy": "amy", "comment": "deploy"}))
            .await;
    assert_eq!(
        (
            status.as_u16(),
            body["error"].as_str(),
            body["field"].as_str()
        ),
        (400, Some("invalid_request"), Some("matchers")),
        "{body}"
    );
    let (status, body) = create(
        json!({"matchers": ["service=api"], "duration": "1h", "createdBy": "amy", "comment": ""}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["field"].as_str()),
        (400, Some("comment")),
        "{body}"
    );
    // Durations as Prometheus (and amtool) write them; the rest is refused.
    for bad in ["1.5h", "2hours", "1 h"] {
        let (status, body) = create(json!({"matchers": ["service=api"], "duration": bad, "createdBy": "amy", "comment": "x"})).await;
        assert_eq!(
            (status.as_u16(), body["field"].as_str()),
            (400, Some("duration")),
            "{body}"
        );
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("is not a duration"),
            "{body}"
        );
    }
    let (status, body) = create(json!({"matchers": [{"name": "service", "value": "(", "isRegex": true}], "duration": "1h", "createdBy": "amy", "comment": "x"})).await;
    assert_eq!(
        (status.as_u16(), body["field"].as_str()),
        (400, Some("matchers[0]")),
        "{body}"
    );
    // A body of the wrong shape names the member, in the same JSON error.
    let (status, body) = create(
        json!({"matchers": ["service=api"], "duration": "1h", "createdBy": 7, "comment": "x"}),
    )
    .await;
    assert_eq!(
        (
            status.as_u16(),
            body["error"].as_str(),
            body["field"].as_str()
        ),
        (400, Some("invalid_request"), Some("createdBy")),
        "{body}"
    );
    let response = app
        .post(
            "/v1/silences",
            ADMIN_KEY,
            "application/json",
            "{\"matchers\": [",
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_json", "{body}");

    let (status, body) = create(json!({"matchers": [{"name": "alertname", "value": "queue_full"}, "service=~\"api|web\""], "duration": "1h", "createdBy": "amy", "comment": "known, fix deploying"})).await;
    assert_eq!(status, 201, "{body}");
    let id = body["silenceID"].as_str().unwrap().to_owned();
    gauge(&app, "queue", &[(json!({"service": "api"}), 500.0)]).await;
    // Fired (P0: no group wait) and silenced: the evaluator decided, nobody is paged.
    let open = eventually("the alert fires", Duration::from_secs(5), || async {
        let open = board(&app).await;
        (open["alerts"][0]["state"] == "firing").then_some(open)
    })
    .await;
    assert_eq!(open["alerts"][0]["silenced"], true, "{open}");
    assert!(pager.to("oncall").is_empty(), "silenced");
    let (status, listed) = app.get_json_as("/v1/silences", READ_KEY).await;
    assert_eq!(status, 200);
    assert_eq!(listed[0]["status"]["state"], "active");
    assert_eq!(listed[0]["createdBy"], "amy");

    let (status, expired) = app.delete_json(&format!("/v1/silences/{id}")).await;
    assert_eq!(status, 200, "{expired}");
    assert_eq!(expired["status"]["state"], "expired");
    let got = pager.wait_for("oncall", 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "unmuted once the silence expired");
    let (status, shown) = app
        .get_json_as(&format!("/v1/silences/{id}"), READ_KEY)
        .await;
    assert_eq!(status, 200);
    assert_eq!(shown["status"]["state"], "expired");
    let (status, missing) = app
        .get_json_as("/v1/silences/nosuchsilence", READ_KEY)
        .await;
    assert_eq!(
        (status.as_u16(), missing["error"].as_str()),
        (404, Some("not_found")),
        "{missing}"
    );
}

/// The id of the open alert of `service`, once there is one.
async fn alert_of(app: &TestApp, service: &str) -> String {
    eventually(
        &format!("an open alert of {service}"),
        Duration::from_secs(5),
        || async {
            of_service(&board(app).await, service)
                .first()
                .and_then(|a| a["id"].as_str().map(str::to_owned))
        },
    )
    .await
}

#[tokio::test]
async fn an_unacked_p0_escalates_on_time_and_an_ack_stops_it() {
    let pager = Pager::start(0).await;
    let (app, _rules) = app_with_rules(ONE_RULE, &pager, |s| {
        if let Some(p0) = s.alerts.tiers.get_mut(&Tier::P0) {
            p0.escalation = vec![
                Escalation {
                    after: Duration::from_millis(1500),
                    receivers: vec!["lead".into()],
                },
                Escalation {
                    after: Duration::from_millis(3000),
                    receivers: vec!["head".into()],
                },
            ];
        }
    })
    .await;
    gauge(&app, "queue", &[(json!({"service": "api"}), 500.0)]).await;
    let started = Instant::now();
    let oncall = pager.wait_for("oncall", 1, Duration::from_secs(5)).await;
    let lead = pager.wait_for("lead", 1, Duration::from_secs(5)).await;
    let lead_after = started.elapsed();
    assert_eq!(lead.len(), 1);
    // The group's own notification, to the next receiver: receivers that
    // de-duplicate by groupKey see the same incident, marked as escalated.
    assert_eq!(lead[0]["groupKey"], oncall[0]["groupKey"], "{lead:?}");
    assert_eq!(lead[0]["groupLabels"], oncall[0]["groupLabels"]);
    assert_eq!(lead[0]["receiver"], "lead");
    assert_eq!(lead[0]["status"], "firing");
    assert_eq!(
        lead[0]["alerts"][0]["fingerprint"],
        oncall[0]["alerts"][0]["fingerprint"]
    );
    assert_eq!(lead[0]["alerts"][0]["annotations"]["escalation_level"], "1");
    assert_eq!(
        lead[0]["alerts"][0]["labels"],
        oncall[0]["alerts"][0]["labels"]
    );
    assert!(
        oncall[0]["alerts"][0]["annotations"]
            .get("escalation_level")
            .is_none()
    );
    assert!(
        lead_after >= Duration::from_millis(1400),
        "not before 1.5 s: {lead_after:?}"
    );
    assert!(
        pager.to("head").is_empty(),
        "head of engineering only after 3 s"
    );
    let head = pager.wait_for("head", 1, Duration::from_secs(5)).await;
    assert_eq!(head.len(), 1);
    assert_eq!(head[0]["groupKey"], oncall[0]["groupKey"]);
    assert_eq!(head[0]["alerts"][0]["annotations"]["escalation_level"], "2");
    assert!(started.elapsed() >= Duration::from_millis(2900));
    assert_eq!(
        of_service(&board(&app).await, "api")[0]["escalation_level"],
        2
    );

    // Two more alerts at once: web, acknowledged at once, and canary, left
    // alone. Canary reaching the head of engineering (3 s) shows the time
    // web would have escalated in.
    let heads_before = pager.to("head").len();
    gauge(
        &app,
        "queue",
        &[
            (json!({"service": "web"}), 500.0),
            (json!({"service": "canary"}), 500.0),
        ],
    )
    .await;
    let id = alert_of(&app, "web").await;
    let (status, acked) = app
        .post_json(&format!("/v1/alerts/{id}/ack"), &json!({"by": "amy"}))
        .await;
    assert_eq!(status, 200, "{acked}");
    assert_eq!(
        (acked["state"].as_str(), acked["acked_by"].as_str()),
        (Some("acknowledged"), Some("amy"))
    );
    pager
        .wait_for("head", heads_before + 1, Duration::from_secs(6))
        .await;
    let escalated: Vec<Value> = pager
        .to("lead")
        .into_iter()
        .chain(pager.to("head"))
        .flat_map(|n| n["alerts"].as_array().unwrap().clone())
        .filter(|a| {
            a["labels"]["service"] == "web" && a["annotations"].get("escalation_level").is_some()
        })
        .collect();
    assert_eq!(
        escalated,
        Vec::<Value>::new(),
        "an acknowledged alert does not escalate"
    );
    assert_eq!(
        of_service(&board(&app).await, "web")[0]["escalation_level"],
        0
    );

    // Resolve by hand: a resolved notification, and time to ack / resolve in the history.
    let (status, resolved) = app
        .json(
            Method::POST,
            &format!("/v1/alerts/{id}/resolve"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["state"], "resolved");
    eventually(
        "a resolved notification",
        Duration::from_secs(5),
        || async {
            pager
                .to("oncall")
                .iter()
                .any(|n| {
                    n["alerts"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|a| a["status"] == "resolved" && a["labels"]["service"] == "web")
                })
                .then_some(())
        },
    )
    .await;
    // Once sent, the evaluator forgets it; an ack still says what it is.
    let (status, again) = app
        .json(
            Method::POST,
            &format!("/v1/alerts/{id}/ack"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(
        (
            status.as_u16(),
            again["error"].as_str(),
            again["state"].as_str()
        ),
        (409, Some("conflict"), Some("resolved")),
        "{again}"
    );
    assert!(again.get("field").is_none(), "no `field` member: {again}");
    let (status, unknown) = app
        .json(Method::POST, "/v1/alerts/nosuchalert/ack", ADMIN_KEY, None)
        .await;
    assert_eq!(
        (status.as_u16(), unknown["error"].as_str()),
        (404, Some("not_found")),
        "{unknown}"
    );
    let (status, history) = app.get_json_as("/v1/alerts/history", READ_KEY).await;
    assert_eq!(status, 200);
    let p0 = &history["tiers"]["P0"];
    assert_eq!(p0["alerts"], 3, "{history}");
    assert_eq!(
        (p0["acked"].as_u64(), p0["resolved"].as_u64()),
        (Some(1), Some(1)),
        "{history}"
    );
    assert!(p0["mtta_secs"].as_f64().unwrap() < 2.0);
    assert!(p0["mttr_secs"].as_f64().unwrap() >= 2.9, "{history}");
    // Still holding: the resolved alert is not started again (its resolved
    // notification came from an evaluation after the resolve).
    assert_eq!(of_service(&board(&app).await, "web"), Vec::<&Value>::new());
}

/// The reasons of the deliveries so far, oldest first.
async fn reasons(app: &TestApp) -> Vec<String> {
    let (status, deliveries) = app.get_json_as("/v1/alerts/notifications", READ_KEY).await;
    assert_eq!(status, 200, "{deliveries}");
    let mut rows: Vec<(u64, String)> = deliveries["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["at_ms"].as_u64().unwrap(),
                d["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    rows.sort();
    rows.into_iter().map(|(_, r)| r).collect()
}

#[tokio::test]
async fn an_acknowledged_alert_stops_repeating_until_its_ack_times_out() {
    let pager = Pager::start(0).await;
    let (app, _rules) = app_with_rules(ONE_RULE, &pager, |s| {
        // One group per service: canary's group repeats beside api's.
        s.alerts.group_by = vec!["alertname".into(), "service".into()];
        if let Some(p0) = s.alerts.tiers.get_mut(&Tier::P0) {
            p0.repeat_interval = Duration::from_millis(700);
            p0.ack_timeout = Some(Duration::from_millis(2500));
        }
    })
    .await;
    let of = |service: &'static str| {
        let pager = pager.clone();
        move || -> Vec<(Value, Instant)> {
            pager
                .arrivals("oncall")
                .into_iter()
                .filter(|(n, _)| n["commonLabels"]["service"] == service)
                .collect()
        }
    };
    let (api, canary) = (of("api"), of("canary"));
    gauge(&app, "queue", &[(json!({"service": "api"}), 500.0)]).await;
    pager.wait_for("oncall", 1, Duration::from_secs(5)).await;
    let id = alert_of(&app, "api").await;
    let (status, acked) = app
        .post_json(&format!("/v1/alerts/{id}/ack"), &json!({"by": "amy"}))
        .await;
    let acked_at = Instant::now();
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["state"], "acknowledged");
    assert_eq!(
        of_service(&board(&app).await, "api")[0]["state"],
        "acknowledged"
    );
    let before = api().len();

    // The ack times out after 2.5 s: the next notification is that one (none
    // of the three repeat intervals before it re-sent), then repeats resume.
    let expired = eventually(
        "a notification after the ack",
        Duration::from_secs(5),
        || async { api().get(before).cloned() },
    )
    .await;
    assert!(
        expired.1 - acked_at >= Duration::from_millis(2400),
        "acknowledged: no repeat; notified {:?} after the ack",
        expired.1 - acked_at
    );
    assert_eq!(expired.0["status"], "firing");
    assert_eq!(of_service(&board(&app).await, "api")[0]["state"], "firing");
    eventually(
        "a repeat once the ack ran out",
        Duration::from_secs(3),
        || async { (api().len() >= before + 2).then_some(()) },
    )
    .await;
    let reasons = eventually(
        "the deliveries recorded",
        Duration::from_secs(5),
        || async {
            let reasons = reasons(&app).await;
            let expired = reasons.iter().position(|r| r == "ack_expired")?;
            reasons[expired..]
                .contains(&"repeat".to_owned())
                .then_some(reasons)
        },
    )
    .await;
    assert!(reasons.contains(&"notify".to_owned()), "{reasons:?}");
    let (status, changes) = app.get_json_as(&format!("/v1/alerts/{id}"), READ_KEY).await;
    assert_eq!(status, 200);
    let changes: Vec<&str> = changes["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["fired", "acked", "ack_expired"]);

    // Acknowledged again: quiet again, while canary (its own group, not
    // acknowledged) repeats twice.
    let (status, _) = app
        .json(
            Method::POST,
            &format!("/v1/alerts/{id}/ack"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let before = api().len();
    gauge(&app, "queue", &[(json!({"service": "canary"}), 500.0)]).await;
    eventually(
        "canary notified and repeated twice",
        Duration::from_secs(5),
        || async { (canary().len() >= 3).then_some(()) },
    )
    .await;
    assert_eq!(api().len(), before, "acknowledged again: no repeat");

    // Every request says who sends it.
    let version = format!("Hypercare/{}", env!("CARGO_PKG_VERSION"));
    let headers = pager.headers.lock().unwrap().clone();
    assert!(!headers.is_empty());
    for (agent, content_type) in headers {
        assert_eq!(
            (agent.as_str(), content_type.as_str()),
            (version.as_str(), "application/json")
        );
    }
}

#[tokio::test]
async fn a_failing_receiver_is_retried_and_every_attempt_recorded() {
    let pager = Pager::start(2).await;
    let (app, _rules) = app_with_rules(ONE_RULE, &pager, |_| {}).await;
    gauge(&app, "queue", &[(json!({"service": "api"}), 500.0)]).await;
    let got = pager.wait_for("oncall", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "delivered on the third attempt");
    let deliveries = eventually(
        "three attempts recorded",
        Duration::from_secs(5),
        || async {
            let (status, body) = app.get_json_as("/v1/alerts/notifications", READ_KEY).await;
            assert_eq!(status, 200, "{body}");
            (body["deliveries"].as_array().unwrap().len() >= 3).then_some(body)
        },
    )
    .await;
    let mut attempts: Vec<(u64, String, u64)> = deliveries["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["attempt"].as_u64().unwrap(),
                d["status"].as_str().unwrap().to_owned(),
                d["http_status"].as_u64().unwrap(),
            )
        })
        .collect();
    attempts.sort();
    assert_eq!(
        attempts,
        vec![
            (1, "failed".into(), 500),
            (2, "failed".into(), 500),
            (3, "delivered".into(), 200)
        ]
    );
    // The receiver's path (a Slack or PagerDuty URL's credential) is never shown.
    for delivery in deliveries["deliveries"].as_array().unwrap() {
        let url = delivery["url"].as_str().unwrap();
        assert!(!url.contains("oncall"), "{url}");
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    }
}

#[tokio::test]
async fn an_alert_storm_of_1000_series_becomes_one_notification() {
    let pager = Pager::start(0).await;
    let (app, _rules) = app_with_rules(
        &ONE_RULE.replace("by: [service]", "by: [host]"),
        &pager,
        |_| {},
    )
    .await;
    let points: Vec<(Value, f64)> = (0..1000)
        .map(|i| (json!({"host": format!("web-{i}")}), 500.0))
        .collect();
    gauge(&app, "queue", &points).await;
    let got = eventually(
        "a notification of all 1000 alerts",
        Duration::from_secs(10),
        || async {
            let got = pager.to("oncall");
            got.last()
                .is_some_and(|n| n["alerts"].as_array().unwrap().len() == 1000)
                .then_some(got)
        },
    )
    .await;
    // The points arrive in two requests, so at most a first partial notification
    // and a complete one follow: a handful, not a thousand.
    assert!(got.len() <= 3, "{} notifications for one storm", got.len());
    let open = board(&app).await;
    assert_eq!(open["alerts"].as_array().unwrap().len(), 1000);
}

#[test]
fn rules_check_names_file_rule_and_field_and_passes_the_shipped_rules() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let kpis: Vec<String> =
        hypercare_kpis::definition::load_file(&root.join("config/kpis.example.yaml"))
            .unwrap()
            .into_iter()
            .map(|k| k.id)
            .collect();
    let shipped = hypercare_alerts::check::load(&[root.join("alert-rules")], Some(&kpis)).unwrap();
    assert!(shipped.len() >= 8);
    assert!(
        shipped
            .iter()
            .any(|r| r.name == "error_rate_rollback" && r.rollback_trigger && r.tier == Tier::P0)
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        ONE_RULE.replace("above: 100", "above: 100\n          below: 3"),
    )
    .unwrap();
    let err = hypercare_alerts::check::load(&[dir.path().to_owned()], None).unwrap_err();
    assert_eq!(
        (err.rule.as_str(), err.field.as_str()),
        ("queue_full", "condition"),
        "{err}"
    );
    assert!(
        err.to_string().starts_with(&file.display().to_string()),
        "{err}"
    );
    std::fs::write(&file, ONE_RULE.replace("tier: P0", "tier: P7")).unwrap();
    let err = hypercare_alerts::check::load(&[dir.path().to_owned()], None).unwrap_err();
    assert_eq!(err.rule, "queue_full", "{err}");
    assert!(err.reason.contains("P7"), "{err}");
}

const SILENCE_RULES: &str = r#"
groups:
  - name: test
    rules:
      - name: heartbeat_silent
        tier: P1
        annotations: { summary: "no heartbeat" }
        condition:
          silence: { event: heartbeat, window: 1m }
      - name: pageviews_silent
        tier: P1
        annotations: { summary: "no page views" }
        condition:
          silence: { event: pageview, window: 1m }
"#;

#[tokio::test]
async fn ingest_silence_fires_only_for_what_was_flowing() {
    let pager = Pager::start(0).await;
    let (app, _rules) = app_with_rules(SILENCE_RULES, &pager, |_| {}).await;
    let send = |event: &'static str, ago_ms: i64| {
        let app = &app;
        async move {
            let ts = chrono::Utc::now().timestamp_millis() - ago_ms;
            let r = app
                .post_events(&json!({"event": event, "timestamp": ts}))
                .await;
            assert_eq!(r.status(), 202);
        }
    };
    // Page views seen 2 minutes ago, not since: silent. Heartbeats never
    // sent: the same evaluations find nothing silent about them.
    send("pageview", 120_000).await;
    let got = pager.wait_for("oncall", 1, Duration::from_secs(5)).await;
    assert_eq!(alert_ids(&got[0]), vec!["pageviews_silent"]);
    let open = board(&app).await;
    let rules: Vec<&str> = open["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["pageviews_silent"], "{open}");
    // Heartbeats seen 2 minutes ago, not since: silent.
    send("heartbeat", 120_000).await;
    let got = pager.wait_for("oncall", 2, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 2);
    assert_eq!(alert_ids(&got[1]), vec!["heartbeat_silent"]);
    assert_eq!(
        got[1]["alerts"][0]["annotations"]["summary"],
        "no heartbeat"
    );
    // A heartbeat now: resolved.
    send("heartbeat", 0).await;
    let got = pager.wait_for("oncall", 3, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[2]["status"], "resolved");
    assert_eq!(alert_ids(&got[2]), vec!["heartbeat_silent"]);
}
