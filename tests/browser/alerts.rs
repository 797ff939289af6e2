//! The SRE's pages: alerts (acknowledge and silence from the page, what a read
//! key and a forged action get) and capacity (a recorded load test run and the
//! live headroom), checked through the API and with axe-core at 1280 and 390 px.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use hypercare_alerts::config::{Escalation, Receiver, TierPolicy};
use hypercare_alerts::rule::Tier;
use hypercare_tests::browser::Browser;
use hypercare_tests::*;
use serde_json::{Value, json};

/// A webhook receiver that answers 200 and counts what it got.
async fn pager() -> (String, Arc<AtomicUsize>) {
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let server = HttpServer::new(move || {
        let counter = counter.clone();
        App::new().default_service(web::to(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { HttpResponse::Ok().finish() }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://127.0.0.1:{}/oncall", server.addrs()[0].port());
    tokio::spawn(server.run());
    (url, received)
}

const RULES: &str = r#"
groups:
  - name: sre
    rules:
      - name: checkout_down
        tier: P0
        annotations: { summary: "checkout answers no health check" }
        condition:
          metric: { select: up, fn: last, window: 5m, by: [service] }
          below: 1
"#;

/// An app evaluating [`RULES`] every 100 ms, P0 notifying a local pager with
/// a 5 min ack SLA and a 10 min escalation; `up{service="checkout"}` is 0, so
/// one P0 fires. Returns the app, the alert's id and the rules' folder.
async fn firing_alert() -> (TestApp, String, tempfile::TempDir, Arc<AtomicUsize>) {
    let (url, received) = pager().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), RULES).unwrap();
    let rules = dir.path().to_owned();
    let app = spawn_app_with(move |s| {
        s.alerts.rules = vec![rules];
        s.alerts.interval = Duration::from_millis(100);
        s.alerts.receivers = BTreeMap::from([(
            "oncall".to_owned(),
            Receiver {
                url,
                send_resolved: true,
                max_alerts: 0,
                timeout: Duration::from_secs(2),
                bearer_token: None,
            },
        )]);
        let p0 = TierPolicy {
            receivers: vec!["oncall".into()],
            ack_sla: Duration::from_secs(300),
            group_wait: Duration::ZERO,
            group_interval: Duration::from_secs(60),
            repeat_interval: Duration::from_secs(3600),
            escalation: vec![Escalation {
                after: Duration::from_secs(600),
                receivers: vec!["oncall".into()],
            }],
            ack_timeout: None,
            digest_at: None,
        };
        s.alerts.tiers = BTreeMap::from([(Tier::P0, p0)]);
    })
    .await;
    let now = chrono::Utc::now().timestamp_millis();
    let points = json!([{"name": "up", "kind": "gauge", "labels": {"service": "checkout"}, "value": 0.0, "timestamp": now}]);
    assert_eq!(app.post_metrics(&points).await.status(), 202);
    let id = eventually("the P0 fires", Duration::from_secs(10), || async {
        let (_, body) = app.get_json_as("/v1/alerts", READ_KEY).await;
        body["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["state"] == "firing")
            .map(|a| a["id"].as_str().unwrap().to_owned())
    })
    .await;
    (app, id, dir, received)
}

async fn alert(app: &TestApp, id: &str) -> Value {
    let (status, body) = app.get_json_as(&format!("/v1/alerts/{id}"), READ_KEY).await;
    assert_eq!(status, 200, "{body}");
    body["alert"].clone()
}

async fn no_accessibility_problem(browser: &Browser, page: &str) {
    let problems = browser.accessibility_problems().await;
    assert!(problems.is_empty(), "{page}: {problems:?}");
}

#[tokio::test]
async fn the_sre_acknowledges_a_firing_alert_and_silences_it_from_the_page() {
    // Arrange: a firing P0, notified once.
    let (app, id, _rules, received) = firing_alert().await;
    eventually("the page is notified", Duration::from_secs(10), || async {
        (received.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    eventually(
        "the delivery is recorded",
        Duration::from_secs(10),
        || async {
            let (_, body) = app.get_json_as("/v1/alerts/notifications", READ_KEY).await;
            (!body["deliveries"].as_array()?.is_empty()).then_some(())
        },
    )
    .await;
    let browser = Browser::start(1280).await;
    browser.sign_in(&app.address, ADMIN_KEY).await;

    // The alert is listed under P0, firing, with its ack SLA clock running.
    browser.goto(&format!("{}/alerts", app.address)).await;
    let row = format!("tr[data-alert='{id}']");
    browser.wait_for(&row).await;
    let text = browser.text(&row).await;
    assert!(
        text.contains("checkout_down") && text.contains("firing"),
        "{text}"
    );
    let sla = browser.text(&format!("{row} td.ack-sla")).await;
    assert!(
        sla.contains("left") && sla.contains("escalates to oncall in"),
        "{sla}"
    );
    let deliveries = browser.text("#deliveries").await;
    assert!(
        deliveries.contains("oncall") && deliveries.contains("delivered"),
        "{deliveries}"
    );
    no_accessibility_problem(&browser, "/alerts, firing").await;

    // Act: acknowledge from the page.
    browser
        .click(&format!("form[action='/alerts/{id}/ack'] button"))
        .await;
    browser.wait_for("p.banner.info").await;

    // Assert: the API shows it acknowledged, by the admin key.
    let acked = alert(&app, &id).await;
    assert_eq!(acked["state"], "acknowledged", "{acked}");
    assert_eq!(acked["acked_by"], "admin-key", "{acked}");
    assert!(browser.text(&row).await.contains("acknowledged"));
    // The day's history counts it: one P0, acknowledged.
    assert_eq!(browser.text("#mtta tbody th").await, "P0");
    let counts = browser.texts("#mtta tbody td").await;
    assert_eq!(
        counts[..3],
        ["1", "1", "0"],
        "fired, acknowledged, resolved"
    );

    // Act: silence it from its row's link; a bad duration first.
    browser.click(&format!("{row} a.button")).await;
    browser.wait_for("#silence-matchers").await;
    let matchers = browser
        .client
        .find(fantoccini::Locator::Css("#silence-matchers"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(matchers.contains(r#"service="checkout""#), "{matchers}");
    browser.fill("#silence-duration", "1.5h").await;
    browser.fill("#silence-comment", "deploying the fix").await;
    browser
        .click("form[action='/alerts/silences'] button")
        .await;
    browser.wait_for("#silence-duration-error").await;
    assert!(
        browser
            .text("#silence-duration-error")
            .await
            .starts_with("Duration:")
    );
    no_accessibility_problem(&browser, "/alerts, silence refused").await;
    browser.fill("#silence-duration", "1h").await;
    browser
        .click("form[action='/alerts/silences'] button")
        .await;
    browser.wait_for("tr[data-silence]").await;

    // Assert: the API has the silence, with its comment and who made it.
    let (status, silences) = app.get_json_as("/v1/silences", READ_KEY).await;
    assert_eq!(status, 200);
    let silence = &silences[0];
    assert_eq!(silence["comment"], "deploying the fix", "{silences}");
    assert_eq!(silence["createdBy"], "admin-key");
    assert_eq!(silence["status"]["state"], "active");
    assert!(
        silence["matchers"].as_array().unwrap().contains(
            &json!({"name": "service", "value": "checkout", "isRegex": false, "isEqual": true})
        ),
        "{silence}"
    );
    eventually(
        "the alert shows silenced",
        Duration::from_secs(5),
        || async { (alert(&app, &id).await["silenced"] == true).then_some(()) },
    )
    .await;
    no_accessibility_problem(&browser, "/alerts, silenced").await;
    browser.close().await;

    // A phone: the same page, still accessible.
    let phone = Browser::start(390).await;
    phone.sign_in(&app.address, ADMIN_KEY).await;
    phone.goto(&format!("{}/alerts", app.address)).await;
    phone.wait_for(&row).await;
    no_accessibility_problem(&phone, "/alerts at 390 px").await;
    phone.close().await;
    app.stop().await.unwrap();
}

/// Signs in over HTTP as `key`: the session cookie and the page's CSRF token.
async fn session(app: &TestApp, http: &reqwest::Client, key: &str) -> (String, String) {
    let response = http
        .post(format!("{}/sign-in", app.address))
        .form(&[("key", key), ("next", "/alerts")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = http
        .get(format!("{}/alerts", app.address))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split(r#"name="csrf-token" content=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's CSRF token")
        .to_owned();
    (cookie, csrf)
}

#[tokio::test]
async fn a_read_key_sees_no_action_and_a_forged_ack_is_refused() {
    let (app, id, _rules, _received) = firing_alert().await;

    // A read key sees the alert, and no button to act on it.
    let browser = Browser::start(1280).await;
    browser.sign_in(&app.address, READ_KEY).await;
    browser.goto(&format!("{}/alerts", app.address)).await;
    browser.wait_for(&format!("tr[data-alert='{id}']")).await;
    assert_eq!(browser.count("form[action^='/alerts/'] button").await, 0);
    assert_eq!(browser.count("#new-silence").await, 0);
    no_accessibility_problem(&browser, "/alerts as a reader").await;
    browser.close().await;

    // Forged acks: no token, a wrong one, another site's page, a read key.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (admin, admin_csrf) = session(&app, &http, ADMIN_KEY).await;
    let (reader, reader_csrf) = session(&app, &http, READ_KEY).await;
    let ack = format!("{}/alerts/{id}/ack", app.address);
    let attempts = [
        ("no token", admin.clone(), vec![], None),
        (
            "a wrong token",
            admin.clone(),
            vec![("csrf", "0".repeat(64))],
            None,
        ),
        (
            "another site",
            admin.clone(),
            vec![("csrf", admin_csrf.clone())],
            Some("https://evil.example"),
        ),
        ("a read key", reader, vec![("csrf", reader_csrf)], None),
    ];
    for (what, cookie, form, origin) in attempts {
        let mut request = http.post(&ack).header("cookie", cookie).form(&form);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403, "{what}");
        let page = response.text().await.unwrap();
        assert!(page.contains("<h1>"), "{what}: a page, not JSON: {page}");
    }
    let untouched = alert(&app, &id).await;
    assert_eq!(untouched["state"], "firing", "{untouched}");
    assert!(untouched["acked_at"].is_null(), "{untouched}");

    // The same request with the admin session's token goes through.
    let response = http
        .post(&ack)
        .header("cookie", admin)
        .form(&[("csrf", admin_csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(alert(&app, &id).await["state"], "acknowledged");
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_capacity_page_shows_a_recorded_runs_maximum_rate_and_the_live_headroom() {
    use clap::Parser;
    use hypercare_loadtest::target::{TargetConfig, TargetServer};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: hypercare_loadtest::LoadtestArgs,
    }

    // Arrange: a recorded ramp of `orders` against a target with a 1 ms service time...
    let app = spawn_app().await;
    let server = clickhouse().await;
    let target = TargetServer::start(
        "127.0.0.1:0",
        TargetConfig {
            delay: Duration::from_millis(1),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("ramp.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: orders-ramp\nservice: orders\ntarget: {}\nrequests: [{{path: /orders}}]\n\
             ramp: {{from: 20, to: 60, steps: 3, step_duration: 1s}}\nslo: {{p99: 2s, error_rate: 1%}}\n",
            target.url()
        ),
    )
    .unwrap();
    let out = dir.path().to_str().unwrap();
    let cli = Cli::try_parse_from([
        "loadtest",
        "run",
        scenario.to_str().unwrap(),
        "--record-to",
        &server.url,
        "--record-database",
        &app.database,
        "--out",
        out,
        "--quiet",
    ])
    .unwrap();
    let code = hypercare_loadtest::run(cli.args, &Default::default())
        .await
        .unwrap();
    assert_eq!(code, 0);
    let report = report_in(dir.path());
    let max = report["capacity"]["max_sustainable_rps"].as_f64().unwrap();
    // ...and live traffic: a counter rising 10/s then 15/s.
    let now = chrono::Utc::now().timestamp();
    let t0 = now - now % 60 - 170;
    let at = |t: i64| chrono::DateTime::from_timestamp(t, 0).unwrap().to_rfc3339();
    let points: Vec<Value> = [(t0, 0.0), (t0 + 60, 600.0), (t0 + 120, 1500.0)]
        .iter()
        .map(|(t, v)| {
            json!({"name": "http_requests_total", "kind": "counter",
                   "labels": {"service": "orders"}, "timestamp": at(*t), "value": v})
        })
        .collect();
    assert_eq!(app.post_metrics(&Value::Array(points)).await.status(), 202);
    let headroom = eventually("the peak is stored", Duration::from_secs(10), || async {
        let (status, body) = app
            .get_json_as("/v1/capacity/headroom?service=orders", READ_KEY)
            .await;
        (status == 200 && body["peak_rps"].as_f64()? > 14.0).then_some(body)
    })
    .await;

    // Act
    let browser = Browser::start(1280).await;
    browser.sign_in(&app.address, READ_KEY).await;
    browser.goto(&format!("{}/capacity", app.address)).await;
    browser.wait_for("tr[data-service='orders']").await;

    // Assert: the run's maximum sustainable rate and the headroom, as the API says.
    let run = format!("article[data-run='{}']", report["run_id"].as_str().unwrap());
    assert_eq!(
        browser.text(&format!("{run} dd.max-rate")).await,
        format!("{max:.1} req/s"),
        "max sustainable {max}"
    );
    let shown = browser.text("tr[data-service='orders'] td.headroom").await;
    let percent = headroom["headroom_percent"].as_f64().unwrap();
    assert!(
        shown.starts_with(&format!("{percent:.1} %")),
        "{shown} for {headroom}"
    );
    assert_eq!(
        browser
            .count(&format!("{run} table[aria-label^='Steps'] tbody tr"))
            .await,
        3,
        "one row per step"
    );
    // The plot is drawn (uPlot's canvas) from the page's JSON.
    browser.wait_for(&format!("{run} .chart canvas")).await;
    no_accessibility_problem(&browser, "/capacity").await;
    browser.close().await;

    let phone = Browser::start(390).await;
    phone.sign_in(&app.address, READ_KEY).await;
    phone.goto(&format!("{}/capacity", app.address)).await;
    phone.wait_for("tr[data-service='orders']").await;
    no_accessibility_problem(&phone, "/capacity at 390 px").await;
    phone.close().await;
    app.stop().await.unwrap();
}

/// The JSON report `loadtest run --out` wrote in `dir`.
fn report_in(dir: &Path) -> Value {
    let file = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a JSON report");
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}
