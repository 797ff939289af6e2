//! The statistical judge on a launch day, end to end: a KPI that dropped by
//! half on D+1 is judged significantly worse than its baseline days' same
//! hours; one that did not move is not; a quiet day has no verdict but
//! `no_change`.

use chrono::TimeZone;
use hypercare_tests::*;
use serde_json::{Value, json};

fn paris_ms(d: u32, h: u32, min: u32) -> u64 {
    chrono_tz::Europe::Paris
        .with_ymd_and_hms(2026, 11, d, h, min, 0)
        .single()
        .unwrap()
        .timestamp_millis() as u64
}

/// Baseline days 2026-11-09..15, D0 on the 16th, D+1 on the 17th: from 08:00
/// to 20:00 each hour, about 10 orders (5 on D+1) and 20 searches.
async fn seeded() -> TestApp {
    let clock = ManualClock::starting_at(paris_ms(17, 21, 30));
    let app = spawn_app_on(clock, |_| {}).await;
    let (status, answer) = app
        .post_json(
            "/v1/launches",
            &json!({"name": "Spring", "release": "2.4.0", "d0": "2026-11-16T00:00:00+01:00",
                    "tz": "Europe/Paris", "window_days": 14, "baseline_days": 7}),
        )
        .await;
    assert!(status.is_success(), "{answer}");
    for (id, event) in [("orders", "order_placed"), ("searches", "search_performed")] {
        let (status, answer) = app
            .put_json(
                &format!("/v1/kpis/{id}"),
                &json!({"title": id, "aggregation": "count", "filter": {"event": event},
                        "direction": "higher_is_better", "target": 100, "warning": 50, "critical": 20}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    let mut lines = Vec::new();
    for day in 9..=17u32 {
        for hour in 8..20u32 {
            let wobble = u64::from((day * 7 + hour * 3) % 3); // 0, 1 or 2
            let orders = if day == 17 { 4 + wobble } else { 9 + wobble };
            for (event, count) in [("order_placed", orders), ("search_performed", 19 + wobble)] {
                for i in 0..count {
                    lines.push(
                        json!({"event": event, "event_id": uuid::Uuid::new_v4().to_string(),
                               "timestamp": paris_ms(day, hour, 0) + i * 60_000, "user_id": format!("u{i}")}),
                    );
                }
            }
        }
    }
    app.send_events(&lines).await;
    app
}

fn verdict<'a>(answer: &'a Value, kpi: &str) -> &'a Value {
    answer["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kpi"] == kpi)
        .unwrap_or_else(|| panic!("no {kpi} in {answer}"))
}

#[tokio::test]
async fn a_kpi_that_halved_on_d1_is_judged_worse_and_one_that_held_is_not() {
    let app = seeded().await;

    let (status, answer) = app.get_json("/v1/launches/current/judgement?day=1").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["date"], "2026-11-17");
    assert_eq!(answer["tz"], "Europe/Paris");
    // 00:00..21:00 of the 17th: the hour under way is not judged.
    assert_eq!(answer["hours"], 21);
    let orders = verdict(&answer, "orders");
    assert_eq!(orders["verdict"], "worse", "{orders}");
    assert!(orders["p_adjusted"].as_f64().unwrap() < 0.05, "{orders}");
    assert!(
        orders["relative_shift"].as_f64().unwrap() < -0.3,
        "{orders}"
    );
    assert_eq!(orders["launch_values"], 21);
    assert_eq!(orders["baseline_values"], 7 * 21);
    let searches = verdict(&answer, "searches");
    assert_eq!(searches["verdict"], "no_change", "{searches}");

    // D0 looked like its baseline: nothing moved.
    let (status, answer) = app.get_json("/v1/launches/current/judgement?day=0").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        verdict(&answer, "orders")["verdict"],
        "no_change",
        "{answer}"
    );
    assert_eq!(answer["hours"], 24);

    // Today by default; a day far outside any launch is refused by its field.
    let (status, answer) = app.get_json("/v1/launches/current/judgement").await;
    assert_eq!(
        (status.as_u16(), answer["day"].as_i64()),
        (200, Some(1)),
        "{answer}"
    );
    let (status, answer) = app
        .get_json("/v1/launches/current/judgement?day=9000")
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["field"], "day");
    let (status, answer) = app.get_json("/v1/launches/nope/judgement?day=1").await;
    assert_eq!(
        (status.as_u16(), answer["error"].as_str()),
        (404, Some("not_found"))
    );
    app.stop().await.unwrap();
}

/// A P0 rollback trigger: the error ratio gauge above 1 %.
const INCIDENT_RULES: &str = r#"
groups:
  - name: launch-rollback
    rules:
      - name: error_rate_rollback
        tier: P0
        rollback_trigger: true
        annotations: { summary: "Error rate above 1 %: roll back" }
        condition:
          metric: { select: error_ratio, fn: last, window: 5m }
          above: 0.01
"#;

/// Orders (about 10 an hour from 08:00 to 20:00, 5 on D+1) from `from` to
/// `to` (day, hour), both days of November 2026 in Paris.
fn orders(from: (u32, u32), to: (u32, u32)) -> Vec<Value> {
    let mut lines = Vec::new();
    for day in from.0..=to.0 {
        for hour in 8..20u32 {
            if (day, hour) < from || (day, hour) >= to {
                continue;
            }
            let wobble = u64::from((day * 7 + hour * 3) % 3);
            let count = if day == 17 { 4 + wobble } else { 9 + wobble };
            for i in 0..count {
                lines.push(json!({"event": "order_placed", "event_id": uuid::Uuid::new_v4().to_string(),
                                  "timestamp": paris_ms(day, hour, 0) + i * 60_000, "user_id": format!("u{i}")}));
            }
        }
    }
    lines
}

async fn error_ratio(app: &TestApp, at_ms: u64, ratio: f64) {
    let response = app
        .post_metrics(
            &json!([{"name": "error_ratio", "kind": "gauge", "labels": {"service": "api"},
                               "value": ratio, "timestamp": at_ms}]),
        )
        .await;
    assert!(response.status().is_success(), "{}", response.status());
}

/// The rollback trigger's state among the open alerts (`None`: not open).
async fn alert_state(app: &TestApp) -> Option<String> {
    let (_, answer) = app.get_json("/v1/alerts").await;
    answer["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["rule"] == "error_rate_rollback")
        .and_then(|a| a["state"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn the_report_calls_roll_back_on_the_incident_day_and_go_on_a_quiet_day() {
    // D+1 (the 17th), 15:00: errors at 5 % and orders halved since the morning.
    let clock = ManualClock::starting_at(paris_ms(17, 15, 0));
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("rules.yaml"), INCIDENT_RULES).unwrap();
    let rules_dir = rules.path().to_owned();
    let app = spawn_app_on(clock.clone(), move |s| {
        s.alerts.rules = vec![rules_dir];
        s.alerts.interval = std::time::Duration::from_millis(100);
    })
    .await;
    let (status, answer) = app
        .post_json(
            "/v1/launches",
            &json!({"name": "Spring", "release": "2.4.0", "d0": "2026-11-16T00:00:00+01:00",
                    "tz": "Europe/Paris", "window_days": 14, "baseline_days": 7,
                    "stages": [{"name": "canary", "percent": 5, "starts_at": "2026-11-16T09:00:00+01:00"},
                               {"name": "everyone", "percent": 100, "starts_at": "2026-11-25T09:00:00+01:00"}]}),
        )
        .await;
    assert!(status.is_success(), "{answer}");
    let (status, answer) = app
        .put_json(
            "/v1/kpis/orders",
            &json!({"title": "Orders", "aggregation": "count", "filter": {"event": "order_placed"},
                    "direction": "higher_is_better", "target": 100, "warning": 90, "critical": 80}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    app.send_events(&orders((9, 0), (17, 15))).await;
    error_ratio(&app, paris_ms(17, 14, 59), 0.05).await;
    eventually(
        "the rollback trigger fires",
        std::time::Duration::from_secs(20),
        || async { (alert_state(&app).await.as_deref() == Some("firing")).then_some(()) },
    )
    .await;

    // D+1 under way: the report says so, up to now, and is not kept.
    let (status, partial) = app.get_json("/v1/launches/current/report?day=1").await;
    assert_eq!(status, 200, "{partial}");
    assert_eq!(partial["complete"], false);
    assert_eq!(partial["call"]["call"], "roll_back", "{}", partial["call"]);

    // D+2 (the 18th), 10:00: the error rate is back to normal and the alert resolves.
    clock.set_ms(paris_ms(18, 10, 0));
    app.send_events(&orders((17, 15), (18, 10))).await;
    error_ratio(&app, paris_ms(18, 9, 59), 0.001).await;
    eventually(
        "the rollback trigger resolves",
        std::time::Duration::from_secs(20),
        || async { alert_state(&app).await.is_none().then_some(()) },
    )
    .await;
    // D+3 (the 19th), 09:00: D+2 is over and was quiet.
    clock.set_ms(paris_ms(19, 9, 0));
    app.send_events(&orders((18, 10), (19, 0))).await;

    let (status, incident) = app.get_json("/v1/launches/current/report?day=1").await;
    assert_eq!(status, 200, "{incident}");
    assert_eq!(incident["complete"], true);
    assert_eq!(incident["date"], "2026-11-17");
    assert_eq!(
        incident["call"]["call"], "roll_back",
        "{}",
        incident["call"]
    );
    let reasons = incident["call"]["reasons"].to_string();
    assert!(reasons.contains("rollback trigger"), "{reasons}");
    assert!(reasons.contains("significantly worse"), "{reasons}");
    // The incident and its trigger, still firing at the end of the day.
    let trigger = &incident["alerts"]["rollback_triggers"][0];
    assert_eq!(trigger["rule"], "error_rate_rollback", "{incident}");
    assert_eq!(trigger["firing"], true);
    assert_eq!(incident["alerts"]["tiers"]["P0"]["fired"], 1);
    // The dropped KPI, critical and significantly worse than its baseline.
    let orders_line = &incident["kpis"][0];
    assert_eq!(orders_line["id"], "orders");
    assert_eq!(orders_line["status"], "critical", "{orders_line}");
    assert_eq!(
        orders_line["judgement"]["verdict"], "worse",
        "{orders_line}"
    );
    // Every rule of the policy is listed with its inputs.
    let rules: Vec<&str> = incident["call"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"headroom_under_floor"), "{rules:?}");
    let headroom = incident["call"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "headroom_under_floor")
        .unwrap();
    assert_eq!(headroom["outcome"], "no_data", "no load test, no headroom");
    assert_eq!(incident["rollout"]["current_stage"], "canary");

    let (status, quiet) = app.get_json("/v1/launches/current/report?day=2").await;
    assert_eq!(status, 200, "{quiet}");
    assert_eq!(quiet["call"]["call"], "go", "{}", quiet["call"]);
    assert_eq!(quiet["kpis"][0]["status"], "ok", "{}", quiet["kpis"][0]);
    assert!(
        quiet["alerts"]["rollback_triggers"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // What changed since the incident day.
    let changes = quiet["changes"].as_array().unwrap();
    let call_change = changes.iter().find(|c| c["what"] == "call").unwrap();
    assert_eq!(
        (
            call_change["before"].as_str(),
            call_change["after"].as_str()
        ),
        (Some("roll_back"), Some("go"))
    );

    // Kept: late events for D+1 do not rewrite its report.
    app.send_events(&orders((17, 8), (17, 9))).await;
    let (_, again) = app.get_json("/v1/launches/current/report?day=1").await;
    assert_eq!(again, incident);

    // Markdown and HTML, by `format` or by `Accept`.
    let response = app
        .get(
            "/v1/launches/current/report?day=1&format=md",
            Some(READ_KEY),
        )
        .await;
    assert_eq!(
        response.headers()["content-type"],
        "text/markdown; charset=utf-8"
    );
    let markdown = response.text().await.unwrap();
    assert!(markdown.contains("## Call: **roll back**"), "{markdown}");
    assert!(markdown.contains("| Orders |"), "{markdown}");
    let response = app
        .http
        .get(format!("{}/v1/launches/current/report?day=2", app.address))
        .bearer_auth(READ_KEY)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert!(response.text().await.unwrap().contains("<!DOCTYPE html>"));

    // The terminal command prints the same report.
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        report: hypercare_report::cli::ReportArgs,
    }
    let cli = |words: &[&str]| {
        let mut argv = vec![
            "hypercare-report",
            "--url",
            app.address.as_str(),
            "--key",
            READ_KEY,
        ];
        argv.extend_from_slice(words);
        hypercare_report::cli::run(Cli::try_parse_from(argv).unwrap().report, None)
    };
    assert_eq!(cli(&["--day", "1"]).await.unwrap(), markdown);
    let json: Value =
        serde_json::from_str(&cli(&["--day", "1", "--format", "json"]).await.unwrap()).unwrap();
    assert_eq!(json, incident);
    let error = cli(&["--day", "5"]).await.unwrap_err().to_string();
    assert!(
        error.starts_with("400") && error.contains("`day`"),
        "{error}"
    );

    // A hostile or mistaken client.
    let (status, answer) = app.get_json("/v1/launches/current/report?day=5").await;
    assert_eq!(
        (status.as_u16(), answer["field"].as_str()),
        (400, Some("day")),
        "{answer}"
    );
    let (status, answer) = app
        .get_json("/v1/launches/current/report?day=1&format=pdf")
        .await;
    assert_eq!(status, 400, "{answer}");
    let (status, _) = app
        .get_json("/v1/launches/current/report?day=1&colour=red")
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .get_json_as("/v1/launches/current/report?day=1", INGEST_KEY)
        .await;
    assert_eq!(status, 403);
    let response = app.get("/v1/launches/current/report?day=1", None).await;
    assert_eq!(response.status(), 401);
    app.stop().await.unwrap();
}
