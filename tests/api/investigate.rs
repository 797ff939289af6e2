//! Investigation tools end to end: a user's timeline (events and OTLP log lines
//! in one order), the log search by request, the release-window advice from
//! four seeded weeks, and what a hostile client gets.

use serde_json::{Value, json};

use hypercare_tests::{
    INGEST_KEY, ManualClock, READ_KEY, SUPPORT_KEY, TestApp, spawn_app, spawn_app_on,
};

/// 2026-11-22T10:00:00Z.
const T0_MS: u64 = 1_795_341_600_000;

fn event(n: u64, name: &str, user: &str, at_ms: u64) -> Value {
    json!({"event": name, "event_id": format!("00000000-0000-4000-a000-{n:012}"),
           "timestamp": at_ms, "user_id": user, "properties": {"step": n}})
}

/// One OTLP log record of service `checkout` at `at_ms` with `attributes`.
fn record(at_ms: u64, severity: u8, body: &str, attributes: &[(&str, &str)]) -> Value {
    let attributes: Vec<Value> = attributes
        .iter()
        .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
        .collect();
    json!({"timeUnixNano": (at_ms * 1_000_000).to_string(), "severityNumber": severity,
           "body": {"stringValue": body}, "attributes": attributes})
}

async fn send_logs(app: &TestApp, records: Vec<Value>) {
    let body = json!({"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "checkout"}}]},
        "scopeLogs": [{"logRecords": records}]}]});
    let response = app
        .post(
            "/v1/otlp/v1/logs",
            INGEST_KEY,
            "application/json",
            body.to_string(),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
}

/// u-42's day: events and log lines interleaved, another user's beside them.
async fn seed_support_case(app: &TestApp) {
    app.send_events(&[
        event(1, "checkout_started", "u-42", T0_MS + 100),
        event(2, "payment_submitted", "u-42", T0_MS + 5_000),
        event(3, "payment_failed", "u-42", T0_MS + 60_000),
        event(4, "checkout_started", "u-7", T0_MS + 30_000),
    ])
    .await;
    let records = vec![
        record(
            T0_MS + 2_000,
            9,
            "cart priced",
            &[("user_id", "u-42"), ("request_id", "r-1")],
        ),
        record(
            T0_MS + 3_000,
            17,
            "card declined by issuer",
            &[("user_id", "u-42"), ("request_id", "r-1")],
        ),
        record(
            T0_MS + 4_000,
            9,
            "cart priced",
            &[("user_id", "u-7"), ("request_id", "r-3")],
        ),
        record(
            T0_MS + 30_000,
            13,
            "retrying payment",
            &[("user.id", "u-42"), ("request_id", "r-2")],
        ),
    ];
    // An exporter's retry: the same records again are one line each.
    send_logs(app, records.clone()).await;
    send_logs(app, records).await;
}

fn order(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|item| match item["type"].as_str().unwrap() {
            "event" => format!(
                "event {} {}",
                item["time"].as_str().unwrap(),
                item["event"].as_str().unwrap()
            ),
            _ => format!(
                "log {} {}",
                item["time"].as_str().unwrap(),
                item["body"].as_str().unwrap()
            ),
        })
        .collect()
}

#[tokio::test]
async fn a_timeline_shows_a_users_events_and_logs_in_order_and_pages() {
    // Two hours after the case.
    let app = spawn_app_on(ManualClock::starting_at(T0_MS + 7_200_000), |_| {}).await;
    seed_support_case(&app).await;
    let window = "from=2026-11-22T09:00:00Z&to=2026-11-22T11:00:00Z";
    let (status, timeline) = app
        .get_json_as(&format!("/v1/users/u-42/timeline?{window}"), READ_KEY)
        .await;
    assert_eq!(status, 200, "{timeline}");
    let expected = [
        "event 2026-11-22T10:00:00.100Z checkout_started",
        "log 2026-11-22T10:00:02.000Z cart priced",
        "log 2026-11-22T10:00:03.000Z card declined by issuer",
        "event 2026-11-22T10:00:05.000Z payment_submitted",
        "log 2026-11-22T10:00:30.000Z retrying payment",
        "event 2026-11-22T10:01:00.000Z payment_failed",
    ];
    assert_eq!(order(&timeline["items"]), expected);
    assert_eq!(timeline["user_id"], "u-42");
    assert!(timeline.get("next_cursor").is_none(), "{timeline}");
    let declined = &timeline["items"][2];
    assert_eq!(declined["severity"], "ERROR");
    assert_eq!(declined["service"], "checkout");
    assert_eq!(declined["attributes"]["request_id"], "r-1");
    assert_eq!(timeline["items"][0]["properties"]["step"], 1.0);

    // Pages of four, then two, with nothing lost or repeated between them.
    let (status, first) = app
        .get_json_as(
            &format!("/v1/users/u-42/timeline?{window}&limit=4"),
            READ_KEY,
        )
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(order(&first["items"]), expected[..4]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (status, second) = app
        .get_json_as(
            &format!("/v1/users/u-42/timeline?{window}&limit=4&cursor={cursor}"),
            READ_KEY,
        )
        .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(order(&second["items"]), expected[4..]);
    assert!(second.get("next_cursor").is_none());

    // A ticket about u-42 links to this timeline around its creation.
    let ticket = json!({"title": "payment refused", "description": "card refused twice", "category": "bug",
        "impact": "high", "urgency": "high", "release": "2.4.1", "channel": "chat",
        "reporter": "agent-ana", "affected_user": "u-42", "launch": "spring"});
    let (status, created) = app.post_json_as("/v1/tickets", SUPPORT_KEY, &ticket).await;
    assert_eq!(status, 201, "{created}");
    let link = created["ticket"]["timeline"].as_str().unwrap();
    assert_eq!(
        link,
        "/v1/users/u-42/timeline?from=2026-11-22T11:00:00Z&to=2026-11-22T13:00:00Z"
    );
    let (status, linked) = app.get_json_as(link, READ_KEY).await;
    assert_eq!(status, 200, "{linked}");
    assert_eq!(linked["user_id"], "u-42");
}

#[tokio::test]
async fn a_request_id_finds_the_lines_of_that_request_only() {
    let app = spawn_app_on(ManualClock::starting_at(T0_MS + 7_200_000), |_| {}).await;
    seed_support_case(&app).await;
    let lines = |answer: &Value| -> Vec<String> {
        answer["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["body"].as_str().unwrap().to_owned())
            .collect()
    };
    // Default window: the day before now.
    let (status, answer) = app.get_json_as("/v1/logs?request_id=r-1", READ_KEY).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(lines(&answer), ["cart priced", "card declined by issuer"]);
    assert!(
        answer["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["attributes"]["request_id"] == "r-1")
    );

    for (query, expected) in [
        (
            "request_id=r-1&severity=error",
            vec!["card declined by issuer"],
        ),
        ("user_id=u-42&q=PAYMENT", vec!["retrying payment"]),
        ("user_id=u-7", vec!["cart priced"]),
        (
            "service=checkout&severity=warn",
            vec!["card declined by issuer", "retrying payment"],
        ),
        ("service=billing", vec![]),
        (
            "request_id=r-1&from=2026-11-22T10:00:02.500Z&to=2026-11-22T11:00:00Z",
            vec!["card declined by issuer"],
        ),
    ] {
        let (status, answer) = app
            .get_json_as(&format!("/v1/logs?{query}"), READ_KEY)
            .await;
        assert_eq!(status, 200, "{query}: {answer}");
        assert_eq!(lines(&answer), expected, "{query}");
    }
    let (_, all) = app.get_json_as("/v1/logs?limit=3", READ_KEY).await;
    assert_eq!(all["lines"].as_array().unwrap().len(), 3);
    let cursor = all["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get_json_as(&format!("/v1/logs?limit=3&cursor={cursor}"), READ_KEY)
        .await;
    assert_eq!(lines(&rest), ["retrying payment"]);
    assert!(rest.get("next_cursor").is_none());
}

/// 2026-11-30T00:00:00Z, a Monday.
const ADVICE_NOW_MS: u64 = 1_795_996_800_000;

#[tokio::test]
async fn the_release_window_advice_picks_the_seeded_quiet_hour_in_the_launch_zone() {
    let app = spawn_app_on(ManualClock::starting_at(ADVICE_NOW_MS), |_| {}).await;
    let (status, answer) = app.get_json_as("/v1/advice/release-window", READ_KEY).await;
    assert_eq!(
        (status.as_u16(), answer["error"].as_str()),
        (404, Some("not_found")),
        "{answer}"
    );

    // Four weeks from Monday 2026-11-02 00:00 UTC: three events per quarter
    // hour, one in Wednesday 02:00-03:00 UTC (03:00-04:00 in Paris).
    let start_ms = ADVICE_NOW_MS - 4 * 7 * 86_400_000;
    let quiet = (2 * 96 + 8)..(2 * 96 + 12);
    let mut events = Vec::new();
    let mut n = 0;
    for week in 0..4u64 {
        for slot in 0..672u64 {
            let count = if quiet.contains(&slot) { 1 } else { 3 };
            for i in 0..count {
                n += 1;
                let at = start_ms + week * 7 * 86_400_000 + slot * 900_000 + i * 200_000;
                events.push(event(n, "page_view", &format!("u{}", n % 50), at));
            }
        }
    }
    for batch in events.chunks(5000) {
        app.send_events(batch).await;
    }

    let (status, answer) = app
        .get_json_as("/v1/advice/release-window?weeks=4&length=60m", READ_KEY)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["basis"], "events");
    assert_eq!(answer["time_zone"], "UTC");
    assert_eq!(answer["weeks_with_traffic"], 4);
    let windows = answer["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 3);
    assert_eq!(windows[0]["starts"], "Wednesday 02:00");
    assert_eq!(windows[0]["ends"], "Wednesday 03:00");
    assert_eq!(windows[0]["expected"], 4.0);
    assert_eq!(windows[0]["stddev"], 0.0);
    assert_eq!(windows[0]["per_week"], json!([4.0, 4.0, 4.0, 4.0]));
    assert_eq!(windows[0]["next_start"], "2026-12-02T02:00:00+00:00");
    assert_eq!(windows[1]["expected"], 12.0);

    // With a launch in Paris, the same hour is named in Paris time.
    let (status, launch) = app
        .post_json(
            "/v1/launches",
            &json!({"name": "Winter", "release": "3.0.0", "d0": "2026-11-29T09:00:00+01:00",
                    "tz": "Europe/Paris", "window_days": 5, "baseline_days": 4,
                    "stages": [{"name": "all", "percent": 100, "starts_at": "2026-11-29T09:00:00+01:00"}]}),
        )
        .await;
    assert_eq!(status, 201, "{launch}");
    let (status, answer) = app
        .get_json_as("/v1/advice/release-window?length=1h", READ_KEY)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["time_zone"], "Europe/Paris");
    assert_eq!(answer["windows"][0]["starts"], "Wednesday 03:00");
    assert_eq!(
        answer["windows"][0]["next_start"],
        "2026-12-02T03:00:00+01:00"
    );
}

/// A window of two hours, within the span allowed.
const WINDOW: &str = "from=2026-11-22T10:00:00Z&to=2026-11-22T12:00:00Z";

#[tokio::test]
async fn hostile_clients_get_named_errors_and_nothing_more() {
    let app = spawn_app().await;
    for (path, field) in [
        ("/v1/logs?limit=0", "limit"),
        ("/v1/logs?limit=1001", "limit"),
        ("/v1/logs?severity=loud", "severity"),
        ("/v1/logs?from=yesterday", "from"),
        (
            "/v1/logs?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z",
            "from",
        ),
        (
            "/v1/logs?from=2026-03-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "to",
        ),
        ("/v1/logs?cursor=1.x.2", "cursor"),
        ("/v1/logs?request_id=", "request_id"),
        ("/v1/logs?limit=-1", "limit"),
        ("/v1/users/u-1/timeline", "from"),
        (
            "/v1/users/u-1/timeline?from=2026-11-22T10:00:00Z&to=2026-11-22T12:00:00Z&cursor=99999999999999999999999.e.x",
            "cursor",
        ),
        ("/v1/advice/release-window?weeks=0", "weeks"),
        ("/v1/advice/release-window?weeks=13", "weeks"),
        ("/v1/advice/release-window?weeks=four", "weeks"),
        ("/v1/advice/release-window?length=7m", "length"),
        ("/v1/advice/release-window?length=%C3%A9", "length"),
    ] {
        let (status, answer) = app.get_json_as(path, READ_KEY).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert_eq!(answer["error"], "invalid_request", "{path}");
        assert_eq!(answer["field"], field, "{path}: {answer}");
    }
    let long = "x".repeat(300);
    let (status, answer) = app
        .get_json_as(&format!("/v1/users/{long}/timeline?{WINDOW}"), READ_KEY)
        .await;
    assert_eq!(
        (status.as_u16(), answer["field"].as_str()),
        (400, Some("user_id")),
        "{answer}"
    );
    let (status, answer) = app
        .get_json_as(&format!("/v1/logs?q={long}"), READ_KEY)
        .await;
    assert_eq!(
        (status.as_u16(), answer["field"].as_str()),
        (400, Some("q")),
        "{answer}"
    );
    let (status, answer) = app.get_json_as("/v1/logs?sql=1", READ_KEY).await;
    assert_eq!(
        (status.as_u16(), answer["error"].as_str()),
        (400, Some("invalid_request")),
        "{answer}"
    );

    // SQL in a value is a value.
    for path in [
        "/v1/logs?q=%27%29%20OR%201%3D1%20--",
        "/v1/logs?user_id=%27%20OR%20%271%27%3D%271",
        &format!("/v1/users/%27%20OR%201%3D1%20--/timeline?{WINDOW}"),
    ] {
        let (status, answer) = app.get_json_as(path, READ_KEY).await;
        assert_eq!(status, 200, "{path}: {answer}");
        let items = answer.get("lines").or(answer.get("items")).unwrap();
        assert_eq!(items, &json!([]), "{path}");
    }

    // Keys: none is 401, one without `read` is 403.
    for path in [
        "/v1/logs",
        &format!("/v1/users/u-1/timeline?{WINDOW}"),
        "/v1/advice/release-window",
    ] {
        assert_eq!(app.get(path, None).await.status(), 401, "{path}");
        assert_eq!(
            app.get(path, Some(INGEST_KEY)).await.status(),
            403,
            "{path}"
        );
    }
}

/// Runs one investigation command against `address` with the read key.
async fn command(address: &str, words: &[&str]) -> anyhow::Result<String> {
    use clap::Parser;
    #[derive(Parser)]
    enum Cli {
        Timeline(hypercare_investigate::timeline::cli::TimelineArgs),
        Logs(hypercare_investigate::logs::cli::LogsArgs),
        #[command(subcommand)]
        Advice(hypercare_investigate::advice::cli::AdviceCommand),
    }
    let mut argv = vec!["hypercare"];
    argv.extend_from_slice(words);
    argv.extend_from_slice(&["--url", address, "--key", READ_KEY]);
    match Cli::try_parse_from(argv)? {
        Cli::Timeline(args) => hypercare_investigate::timeline::cli::run(args, None).await,
        Cli::Logs(args) => hypercare_investigate::logs::cli::run(args, None).await,
        Cli::Advice(command) => hypercare_investigate::advice::cli::run(command, None).await,
    }
}

#[tokio::test]
async fn the_commands_print_what_the_api_answers() {
    let app = spawn_app_on(ManualClock::starting_at(T0_MS + 7_200_000), |_| {}).await;
    seed_support_case(&app).await;
    let run = |words: &'static [&'static str]| command(&app.address, words);
    let timeline = run(&[
        "timeline",
        "u-42",
        "--from",
        "2026-11-22T09:00:00Z",
        "--limit",
        "2",
    ])
    .await
    .unwrap();
    let lines: Vec<&str> = timeline.lines().collect();
    assert_eq!(lines.len(), 3, "{timeline}");
    assert_eq!(
        lines[0],
        r#"event  2026-11-22T10:00:00.100Z  checkout_started  {"step":1.0}"#
    );
    assert_eq!(
        lines[1],
        "log    2026-11-22T10:00:02.000Z  INFO   checkout  cart priced  request_id=r-1 user_id=u-42"
    );
    assert!(lines[2].starts_with("(more: --cursor "), "{timeline}");

    let logs = run(&["logs", "--request-id", "r-1"]).await.unwrap();
    assert_eq!(logs.lines().count(), 2, "{logs}");
    assert!(
        logs.contains("ERROR  checkout  card declined by issuer"),
        "{logs}"
    );
    let error = run(&["logs", "--limit", "0"]).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "400 Bad Request: `limit` must be at least 1"
    );

    let advice = run(&["advice", "release-window", "--length", "2h"])
        .await
        .unwrap();
    assert!(
        advice.starts_with("Quietest 120-minute windows, events per window over 4 weeks (1 with traffic), UTC:\n1. "),
        "{advice}"
    );
}
