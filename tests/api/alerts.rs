//! Tiered alerts end to end: the real evaluator on a short interval over metrics
//! sent through the API, and a local webhook receiver standing in for the pager.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use hypercare::Settings;
use hypercare_alerts::config::{Escalation, Receiver, TierPolicy};
use hypercare_alerts::rule::Tier;
use serde_json::{Value, json};

use hypercare_tests::{ADMIN_KEY, READ_KEY, TestApp, spawn_app_with};

/// A webhook receiver: records every POST by path (and its headers); answers
/// 500 to the first `fail_first` requests.
#[derive(Clone, Default)]
struct Pager {
    received: Arc<Mutex<Vec<(String, Value)>>>,
    /// (User-Agent, Content-Type) of every request, failed ones included.
    headers: Arc<Mutex<Vec<(String, String)>>>,
    fail_first: Arc<AtomicUsize>,
    port: u16,
}

impl Pager {
    async fn start(fail_first: usize) -> Pager {
        let mut pager = Pager {
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
            ..Pager::default()
        };
        let state = pager.clone();
        let server = HttpServer::new(move || {
            let state = state.clone();
            App::new()
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .default_service(web::to(
                    move |req: actix_web::HttpRequest, body: web::Bytes| {
                        let state = state.clone();
                        async move {
                            let header = |name: &str| {
                                req.headers()
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_owned()
                            };
                            state
                                .headers
                                .lock()
                                .unwrap()
                                .push((header("user-agent"), header("content-type")));
                            if state
                                .fail_first
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                    n.checked_sub(1)
                                })
                                .is_ok()
                            {
                                return HttpResponse::InternalServerError().body("pager down");
                            }
                            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            state
                                .received
                                .lock()
                                .unwrap()
                                .push((req.path().to_owned(), value));
                            HttpResponse::Ok().finish()
                        }
                    },
                ))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        pager.port = server.addrs()[0].port();
        tokio::spawn(server.run());
        pager
    }

    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }

    fn to(&self, receiver: &str) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(path, _)| path == &format!("/{receiver}"))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Waits until `receiver` got at least `n` notifications.
    async fn wait_for(&self, receiver: &str, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.to(receiver);
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

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

async fn alerts(app: &TestApp) -> Value {
    let response = app.get("/v1/alerts", Some(READ_KEY)).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
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
    tokio::time::sleep(Duration::from_millis(600)).await;
    let pending = alerts(&app).await;
    let states: Vec<(&str, &str)> = pending["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["rule"].as_str().unwrap(), a["state"].as_str().unwrap()))
        .collect();
    assert!(states.contains(&("flapping", "pending")), "{pending}");
    assert!(
        states.iter().all(|(_, s)| *s == "pending"),
        "before `for`: {pending}"
    );
    gauge(&app, "pressure", &[(json!({}), 1.0)]).await;

    // Both series of `hot` fire after 1 s and arrive in one notification.
    let got = pager.wait_for("oncall", 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "{got:?}");
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

    // Nothing new for a second: no new notification; the repeat interval (3 s) re-sends.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(pager.to("oncall").len(), 1);
    let got = pager.wait_for("oncall", 2, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 2, "repeat: {got:?}");
    assert_eq!(alert_ids(&got[1]), vec!["hot", "hot"]);

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
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        pager
            .to("oncall")
            .iter()
            .all(|n| !alert_ids(n).contains(&"flapping".to_owned())),
        "a condition shorter than `for` never notifies"
    );
    assert_eq!(alerts(&app).await["alerts"], json!([]));
    let history: Value = app
        .get("/v1/alerts/history", Some(READ_KEY))
        .await
        .json()
        .await
        .unwrap();
    let rules: Vec<&str> = history["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, vec!["hot", "hot"], "{history}");
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
    let chat = pager.wait_for("chat", 1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let chat = if chat.len() < 2 {
        pager.to("chat")
    } else {
        chat
    };
    assert_eq!(chat.len(), 1, "only search's P2 is sent: {chat:?}");
    assert_eq!(chat[0]["commonLabels"]["service"], "search");

    let open = alerts(&app).await;
    let inhibited: Vec<&Value> = open["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["inhibited"] == true)
        .collect();
    assert_eq!(inhibited.len(), 1, "{open}");
    assert_eq!(inhibited[0]["labels"]["service"], "checkout");
    // A rollback trigger firing: the rollback is recommended, with its evidence.
    assert_eq!(open["rollback"]["state"], "rollback_recommended");
    assert_eq!(open["rollback"]["evidence"][0]["rule"], "checkout_down");
    assert_eq!(open["rollback"]["evidence"][0]["value"], 0.0);
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
        async move {
            let r = app
                .http
                .post(format!("{}/v1/silences", app.address))
                .bearer_auth(ADMIN_KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // Bad silences are refused, naming the field.
    let (status, body) =
        create(json!({"matchers": [], "duration": "1h", "createdBy": "amy", "comment": "deploy"}))
            .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("matchers")),
        "{body}"
    );
    let (status, body) = create(
        json!({"matchers": ["service=api"], "duration": "1h", "createdBy": "amy", "comment": ""}),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("comment")),
        "{body}"
    );
    // Durations as Prometheus (and amtool) write them; the rest is refused.
    for bad in ["1.5h", "2hours", "1 h"] {
        let (status, body) = create(json!({"matchers": ["service=api"], "duration": bad, "createdBy": "amy", "comment": "x"})).await;
        assert_eq!(
            (status, body["field"].as_str()),
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
        (status, body["field"].as_str()),
        (400, Some("matchers[0]")),
        "{body}"
    );

    let (status, body) = create(json!({"matchers": [{"name": "alertname", "value": "queue_full"}, "service=~\"api|web\""], "duration": "1h", "createdBy": "amy", "comment": "known, fix deploying"})).await;
    assert_eq!(status, 201, "{body}");
    let id = body["silenceID"].as_str().unwrap().to_owned();
    gauge(&app, "queue", &[(json!({"service": "api"}), 500.0)]).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(pager.to("oncall").is_empty(), "silenced");
    let open = alerts(&app).await;
    assert_eq!(open["alerts"][0]["state"], "firing");
    assert_eq!(open["alerts"][0]["silenced"], true);
    let listed: Value = app
        .get("/v1/silences", Some(READ_KEY))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["status"]["state"], "active");
    assert_eq!(listed[0]["createdBy"], "amy");

    let expired = app
        .http
        .delete(format!("{}/v1/silences/{id}", app.address))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 200);
    let got = pager.wait_for("oncall", 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "unmuted once the silence expired");
    let shown: Value = app
        .get(&format!("/v1/silences/{id}"), Some(READ_KEY))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["status"]["state"], "expired");
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
    assert_eq!(alerts(&app).await["alerts"][0]["escalation_level"], 2);

    // A second alert, acknowledged at once: nobody else is paged.
    gauge(&app, "queue", &[(json!({"service": "web"}), 500.0)]).await;
    let id = loop {
        let open = alerts(&app).await;
        if let Some(web) = open["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["service"] == "web")
        {
            break web["id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let acked = app
        .http
        .post(format!("{}/v1/alerts/{id}/ack", app.address))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"by": "amy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(acked.status(), 200);
    let acked: Value = acked.json().await.unwrap();
    assert_eq!(
        (acked["state"].as_str(), acked["acked_by"].as_str()),
        (Some("acknowledged"), Some("amy"))
    );
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let escalated_web = pager
        .to("lead")
        .iter()
        .chain(pager.to("head").iter())
        .filter(|n| n["alerts"][0]["labels"]["service"] == "web")
        .count();
    assert_eq!(escalated_web, 0, "an acknowledged alert does not escalate");

    // Resolve by hand: a resolved notification, and time to ack / resolve in the history.
    let resolved = app
        .http
        .post(format!("{}/v1/alerts/{id}/resolve", app.address))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resolved.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pager.to("oncall").iter().any(|n| {
        n["status"] == "resolved"
            || n["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["status"] == "resolved")
    }) {
        assert!(
            Instant::now() < deadline,
            "no resolved notification: {:?}",
            pager.to("oncall")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Once sent, the evaluator forgets it; an ack still says what it is.
    let again = app
        .http
        .post(format!("{}/v1/alerts/{id}/ack", app.address))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        (again["error"].as_str(), again["state"].as_str()),
        (Some("wrong_state"), Some("resolved")),
        "{again}"
    );
    let unknown = app
        .http
        .post(format!("{}/v1/alerts/nosuchalert/ack", app.address))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let history: Value = app
        .get("/v1/alerts/history", Some(READ_KEY))
        .await
        .json()
        .await
        .unwrap();
    let p0 = &history["tiers"]["P0"];
    assert_eq!(p0["alerts"], 2, "{history}");
    assert_eq!(
        (p0["acked"].as_u64(), p0["resolved"].as_u64()),
        (Some(1), Some(1)),
        "{history}"
    );
    assert!(p0["mtta_secs"].as_f64().unwrap() < 2.0);
    assert!(p0["mttr_secs"].as_f64().unwrap() >= 3.5);
    // Still holding: the resolved alert is not started again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open = alerts(&app).await;
    assert!(
        open["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["labels"]["service"] != "web"),
        "{open}"
    );
}

async fn first_alert_id(app: &TestApp) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(id) = alerts(app).await["alerts"][0]["id"].as_str() {
            return id.to_owned();
        }
        assert!(Instant::now() < deadline, "no alert");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn reasons(app: &TestApp) -> Vec<String> {
    let deliveries: Value = app
        .get("/v1/alerts/notifications", Some(READ_KEY))
        .await
        .json()
        .await
        .unwrap();
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
        if let Some(p0) = s.alerts.tiers.get_mut(&Tier::P0) {
            p0.repeat_interval = Duration::from_millis(700);
            p0.ack_timeout = Some(Duration::from_millis(2500));
        }
    })
    .await;
    gauge(&app, "queue", &[(json!({"service": "api"}), 500.0)]).await;
    pager.wait_for("oncall", 1, Duration::from_secs(5)).await;
    let id = first_alert_id(&app).await;
    let acked = app
        .http
        .post(format!("{}/v1/alerts/{id}/ack", app.address))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"by": "amy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(acked.status(), 200);
    let acked_at = Instant::now();
    let before = pager.to("oncall").len();

    // Three repeat intervals: an unacknowledged alert would have been re-sent.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(pager.to("oncall").len(), before, "acknowledged: no repeat");
    assert_eq!(alerts(&app).await["alerts"][0]["state"], "acknowledged");

    // The ack times out after 2.5 s: notified again at once, then repeats resume.
    let got = pager
        .wait_for("oncall", before + 1, Duration::from_secs(3))
        .await;
    assert_eq!(got.len(), before + 1, "notified when the ack timed out");
    assert!(
        acked_at.elapsed() >= Duration::from_millis(2400),
        "{:?}",
        acked_at.elapsed()
    );
    assert_eq!(got[before]["status"], "firing");
    assert_eq!(alerts(&app).await["alerts"][0]["state"], "firing");
    let got = pager
        .wait_for("oncall", before + 2, Duration::from_secs(3))
        .await;
    assert_eq!(got.len(), before + 2, "repeats once the ack ran out");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reasons = reasons(&app).await;
    let expired = reasons.iter().position(|r| r == "ack_expired");
    assert!(expired.is_some(), "{reasons:?}");
    assert!(
        reasons[expired.unwrap_or(0)..].contains(&"repeat".to_owned()),
        "{reasons:?}"
    );
    let changes: Value = app
        .get(&format!("/v1/alerts/{id}"), Some(READ_KEY))
        .await
        .json()
        .await
        .unwrap();
    let changes: Vec<&str> = changes["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["fired", "acked", "ack_expired"]);

    // Acknowledged again: quiet again.
    let acked = app
        .http
        .post(format!("{}/v1/alerts/{id}/ack", app.address))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(acked.status(), 200);
    let before = pager.to("oncall").len();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        pager.to("oncall").len(),
        before,
        "acknowledged again: no repeat"
    );

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
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deliveries: Value = app
        .get("/v1/alerts/notifications", Some(READ_KEY))
        .await
        .json()
        .await
        .unwrap();
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
    pager.wait_for("oncall", 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let got = pager.to("oncall");
    // The points arrive in two requests, so at most a first partial notification
    // and a complete one follow: a handful, not a thousand.
    assert!(got.len() <= 3, "{} notifications for one storm", got.len());
    assert_eq!(
        got.last().unwrap()["alerts"].as_array().unwrap().len(),
        1000
    );
    let open = alerts(&app).await;
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
    let shipped = hypercare_alerts::rule::load(&[root.join("alert-rules")], Some(&kpis)).unwrap();
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
    let err = hypercare_alerts::rule::load(&[dir.path().to_owned()], None).unwrap_err();
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
    let err = hypercare_alerts::rule::load(&[dir.path().to_owned()], None).unwrap_err();
    assert_eq!(err.rule, "queue_full", "{err}");
    assert!(err.reason.contains("P7"), "{err}");
}

const SILENCE_RULE: &str = r#"
groups:
  - name: test
    rules:
      - name: heartbeat_silent
        tier: P1
        annotations: { summary: "no heartbeat" }
        condition:
          silence: { event: heartbeat, window: 1m }
"#;

#[tokio::test]
async fn ingest_silence_fires_only_for_what_was_flowing() {
    let pager = Pager::start(0).await;
    let (app, _rules) = app_with_rules(SILENCE_RULE, &pager, |_| {}).await;
    let send = |ago_ms: i64| {
        let app = &app;
        async move {
            let ts = chrono::Utc::now().timestamp_millis() - ago_ms;
            let r = app
                .post_events(&json!({"event": "heartbeat", "timestamp": ts}))
                .await;
            assert_eq!(r.status(), 202);
        }
    };
    // Nothing ever sent: nothing is silent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(alerts(&app).await["alerts"], json!([]));
    // Seen 2 minutes ago, not since: silent.
    send(120_000).await;
    let got = pager.wait_for("oncall", 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(alert_ids(&got[0]), vec!["heartbeat_silent"]);
    assert_eq!(
        got[0]["alerts"][0]["annotations"]["summary"],
        "no heartbeat"
    );
    // A heartbeat now: resolved.
    send(0).await;
    let got = pager.wait_for("oncall", 2, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1]["status"], "resolved");
}
