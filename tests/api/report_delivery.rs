//! Scheduled delivery of the daily report, end to end: a launch, a manual
//! clock moved past `at` on D+2, local webhook receivers (one failing twice),
//! a folder; then a restart on the same data.

use std::time::Duration;

use chrono::TimeZone;
use hypercare::Settings;
use hypercare_report::delivery::{DeliverySettings, HookFormat, Webhook};
use hypercare_tests::receiver::Pager;
use hypercare_tests::*;
use serde_json::{Value, json};

fn paris_ms(d: u32, h: u32, min: u32) -> u64 {
    chrono_tz::Europe::Paris
        .with_ymd_and_hms(2026, 11, d, h, min, 0)
        .single()
        .unwrap()
        .timestamp_millis() as u64
}

fn hook(url: String, format: HookFormat) -> Webhook {
    Webhook { url, format }
}

fn delivering(settings: &mut Settings, webhooks: Vec<Webhook>, folder: &std::path::Path) {
    settings.report.delivery = DeliverySettings {
        webhooks,
        folder: folder.display().to_string(),
        retries: 3,
        backoff: Duration::from_millis(100),
        interval: Duration::from_millis(200),
        ..DeliverySettings::default()
    };
}

async fn attempts(app: &TestApp) -> Vec<Value> {
    let (status, answer) = app.get_json("/v1/reports/deliveries?limit=100").await;
    assert_eq!(status, 200, "{answer}");
    answer["deliveries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_report_of_d1_is_delivered_once_on_d2_morning_retried_and_not_resent_after_a_restart() {
    // Arrange: D0 is 2026-11-16 in Paris; it is D+2, 07:00.
    let ok = Pager::start(0).await;
    let flaky = Pager::start(2).await;
    let folder = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_at(paris_ms(18, 7, 0));
    let webhooks = vec![
        hook(ok.url("json"), HookFormat::Json),
        hook(ok.url("slack"), HookFormat::Slack),
        hook(flaky.url("hook"), HookFormat::Json),
    ];
    let app = spawn_app_on(clock.clone(), |s| {
        delivering(s, webhooks.clone(), folder.path())
    })
    .await;
    let (status, answer) = app
        .post_json(
            "/v1/launches",
            &json!({"name": "Spring", "release": "2.4.0", "d0": "2026-11-16T00:00:00+01:00",
                    "tz": "Europe/Paris", "window_days": 14, "baseline_days": 7}),
        )
        .await;
    assert!(status.is_success(), "{answer}");

    // Act: the morning meeting's time comes.
    clock.set_ms(paris_ms(18, 8, 31));

    // Assert: one JSON report of D+1 and one Slack message.
    let json_bodies = ok.wait_for("json", 1, Duration::from_secs(60)).await;
    assert_eq!(json_bodies[0]["day"], 1, "{}", json_bodies[0]);
    assert_eq!(json_bodies[0]["date"], "2026-11-17");
    assert_eq!(json_bodies[0]["complete"], true);
    assert_eq!(json_bodies[0]["launch"]["name"], "Spring");
    let call = json_bodies[0]["call"]["call"].as_str().unwrap().to_owned();
    let slack = ok.wait_for("slack", 1, Duration::from_secs(60)).await;
    assert_eq!(slack[0]["blocks"][0]["type"], "header", "{}", slack[0]);
    let header = slack[0]["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(
        header.contains("Spring D+1 (2026-11-17)") && header.contains(&call.replace('_', " ")),
        "{header}"
    );
    // The chat message is a summary, smaller than the report.
    let (json_size, slack_size) = (json_bodies[0].to_string().len(), slack[0].to_string().len());
    eprintln!("report delivery body sizes: json {json_size} B, slack {slack_size} B");
    assert!(slack_size < json_size, "{slack_size} vs {json_size}");
    // The failing receiver gets it at the third attempt.
    let flaky_bodies = flaky.wait_for("hook", 1, Duration::from_secs(60)).await;
    assert_eq!(flaky_bodies[0]["day"], 1);
    // The folder gets the three files.
    let stem = folder.path().join("Spring-D+1-2026-11-17");
    for extension in ["json", "md", "html"] {
        let path = stem.with_extension(extension);
        eventually(
            &format!("{}", path.display()),
            Duration::from_secs(60),
            || async { path.exists().then_some(()) },
        )
        .await;
    }
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(stem.with_extension("json")).unwrap())
            .unwrap();
    assert_eq!(written, json_bodies[0]);
    assert!(
        std::fs::read_to_string(stem.with_extension("md"))
            .unwrap()
            .starts_with("# Spring D+1: 2026-11-17")
    );

    // Every attempt is listed: 3 for the flaky receiver, 1 for each other target.
    let rows = eventually("6 recorded attempts", Duration::from_secs(30), || async {
        Some(attempts(&app).await).filter(|rows| rows.len() >= 6)
    })
    .await;
    let flaky_target = format!("http://127.0.0.1:{}/(hidden)", flaky.port);
    let mut flaky_rows: Vec<(u64, String, u64)> = rows
        .iter()
        .filter(|r| r["target"] == flaky_target.as_str())
        .map(|r| {
            (
                r["attempt"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_owned(),
                r["http_status"].as_u64().unwrap(),
            )
        })
        .collect();
    flaky_rows.sort();
    assert_eq!(
        flaky_rows,
        vec![
            (1, "retrying".into(), 500),
            (2, "retrying".into(), 500),
            (3, "delivered".into(), 200)
        ],
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .all(|r| r["day"] == 1 && !r["target"].as_str().unwrap().contains("json")),
        "URL paths are hidden: {rows:?}"
    );
    let formats: Vec<&str> = rows.iter().map(|r| r["format"].as_str().unwrap()).collect();
    assert!(
        formats.contains(&"slack") && formats.contains(&"folder"),
        "{formats:?}"
    );
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics
            .contains("hypercare_report_deliveries_total{format=\"json\",status=\"retrying\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("hypercare_report_deliveries_total{format=\"json\",status=\"delivered\"} 2")
    );

    // A hostile client gets 400s naming the field.
    for (query, field) in [
        ("since=yesterday", "since"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("limit=-1", "limit"),
    ] {
        let (status, answer) = app
            .get_json(&format!("/v1/reports/deliveries?{query}"))
            .await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert_eq!(answer["error"], "invalid_request", "{query}: {answer}");
        assert_eq!(answer["field"], field, "{query}: {answer}");
    }
    let (status, answer) = app.get_json("/v1/reports/deliveries?launch=x").await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = app
        .get_json("/v1/reports/deliveries?since=2026-11-19T00:00:00%2B01:00")
        .await;
    assert_eq!(
        (
            status.as_u16(),
            answer["deliveries"].as_array().map(Vec::len)
        ),
        (200, Some(0)),
        "{answer}"
    );
    assert_eq!(app.get("/v1/reports/deliveries", None).await.status(), 401);
    let database = app.database.clone();
    app.stop().await.unwrap();

    // Act: a restart on the same data, with one more target.
    let late = Pager::start(0).await;
    let mut more = webhooks.clone();
    more.push(hook(late.url("late"), HookFormat::Teams));
    let again = spawn_app_on(clock.clone(), |s| {
        delivering(s, more, folder.path());
        s.clickhouse.database = database;
    })
    .await;

    // Assert: the new target gets D+1's report; the others are not sent it again
    // (the tick that delivered the new one had already looked at them).
    let teams = late.wait_for("late", 1, Duration::from_secs(60)).await;
    eventually(
        "the Teams attempt recorded",
        Duration::from_secs(30),
        || async {
            let rows = attempts(&again).await;
            rows.iter().any(|r| r["format"] == "teams").then_some(())
        },
    )
    .await;
    assert_eq!(teams[0]["type"], "message", "{}", teams[0]);
    assert_eq!(
        teams[0]["attachments"][0]["content"]["type"],
        "AdaptiveCard"
    );
    assert_eq!(ok.to("json").len(), 1);
    assert_eq!(ok.to("slack").len(), 1);
    assert_eq!(flaky.to("hook").len(), 1);
    again.stop().await.unwrap();
}

#[tokio::test]
async fn an_https_webhook_is_spoken_to_in_tls() {
    // A listener that reads what a client sends first: a TLS client opens with a
    // handshake record (0x16, then the protocol version's major byte 0x03).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let first_bytes = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = [0u8; 2];
        socket.read_exact(&mut head).await.unwrap();
        head
    });
    let folder = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_at(paris_ms(18, 8, 31));
    let webhooks = vec![hook(
        format!("https://127.0.0.1:{port}/hook"),
        HookFormat::Slack,
    )];
    let app = spawn_app_on(clock.clone(), |s| {
        delivering(s, webhooks, folder.path());
        s.report.delivery.folder = String::new();
        s.report.delivery.retries = 0;
    })
    .await;
    let (status, answer) = app
        .post_json(
            "/v1/launches",
            &json!({"name": "Spring", "release": "2.4.0", "d0": "2026-11-16T00:00:00+01:00",
                    "tz": "Europe/Paris", "window_days": 14, "baseline_days": 7}),
        )
        .await;
    assert!(status.is_success(), "{answer}");
    let head = tokio::time::timeout(Duration::from_secs(60), first_bytes)
        .await
        .expect("the webhook was never called")
        .unwrap();
    assert_eq!(head, [0x16, 0x03], "a TLS handshake, not plain HTTP");
    // The listener speaks no TLS: the attempt is recorded as failed, with why.
    let rows = eventually("the failed attempt", Duration::from_secs(30), || async {
        Some(attempts(&app).await).filter(|rows| rows.iter().any(|r| r["status"] == "failed"))
    })
    .await;
    assert!(!rows[0]["error"].as_str().unwrap().is_empty(), "{rows:?}");
    app.stop().await.unwrap();
}
