//! Segment's tracking API: Segment's own Python client (PyPI) sends a batch, a
//! retry and a skewed call; direct calls check each mapping, the body key and
//! the error answers.

use std::process::Stdio;

use base64::Engine;
use chrono::Utc;
use hypercare_tests::{INGEST_KEY, READ_KEY, StoredEvent, TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};

fn named<'a>(rows: &'a [StoredEvent], event: &str) -> Vec<&'a StoredEvent> {
    rows.iter().filter(|r| r.event == event).collect()
}

fn base_url(app: &TestApp) -> String {
    format!("{}/v1/segment", app.address)
}

#[tokio::test]
async fn the_segment_python_client_sends_calls_that_land_as_events() {
    let app = spawn_app().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/compat/segment_client.py");

    let output = tokio::process::Command::new("python3")
        .arg(script)
        .arg(base_url(&app))
        .arg(INGEST_KEY)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("python3 is needed (scripts/install-deps --tests)");
    let sent_back = Utc::now().timestamp_millis();

    assert!(
        output.status.success(),
        "the Segment client failed (is segment-analytics-python installed? scripts/install-deps --tests):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = app.stored_events().await;

    // track: name, user, value, source, release, flattened properties, time.
    let orders = named(&rows, "Order Completed");
    assert_eq!(orders.len(), 2, "sent twice with the same messageId");
    assert_eq!(orders[0].event_id, orders[1].event_id);
    let order = orders[0];
    assert_eq!(order.user_id, "u-1");
    assert_eq!(order.value, Some(42.5));
    assert_eq!(
        (order.source.as_str(), order.release.as_str()),
        ("analytics-python", "3.1.0")
    );
    assert_eq!(order.string("plan"), Some("pro"));
    assert_eq!(order.number("cart.items"), Some(3.0));
    assert_eq!(order.string("cart.tags"), Some(r#"["a","b"]"#));
    assert_eq!(order.boolean("first"), Some(true));
    assert_eq!(order.number("revenue"), Some(42.5));
    assert_eq!(order.string("context.ip"), Some("203.0.113.9"));
    assert!(order.string("context.library.version").is_some());
    assert_eq!(order.api_key, "ingest-key");
    // 2026-11-21T09:30:00.250Z, corrected by the batch's sentAt: the client's clock
    // is this machine's, so the correction is the send delay only.
    let ordered_at: i64 = 1_795_253_400_250;
    assert!(
        (order.ts_ms as i64 - ordered_at).abs() < 2_000,
        "{} vs {ordered_at}",
        order.ts_ms
    );
    // The retry counts once.
    assert_eq!(
        app.sql_u64("SELECT uniqExact(event_id) FROM events WHERE event = 'Order Completed'")
            .await,
        1
    );

    let identify = named(&rows, "$identify");
    assert_eq!(identify.len(), 1);
    assert_eq!(identify[0].user_id, "u-1");
    assert_eq!(identify[0].string("email"), Some("a@example.com"));
    assert_eq!(identify[0].value, None);

    let page = named(&rows, "$page");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].string("name"), Some("Pricing"));
    assert_eq!(page[0].string("category"), Some("Docs"));
    assert_eq!(page[0].string("path"), Some("/pricing"));

    let anonymous = named(&rows, "Signup Started");
    assert_eq!(anonymous.len(), 1);
    assert_eq!(anonymous[0].user_id, "anon-7");
    assert_eq!(anonymous[0].string("anonymousId"), Some("anon-7"));
    assert_eq!(
        anonymous[0].event_id,
        "5f2b1a3e-8c4d-4e6f-9a0b-1c2d3e4f5a6b"
    );

    // The skewed client: its clock is 2 h ahead; the event happened 5 s before it
    // sent it, so about 5 s before it arrived here.
    let skewed = named(&rows, "Skewed");
    assert_eq!(skewed.len(), 1);
    let expected = sent_back - 5_000;
    assert!(
        (skewed[0].ts_ms as i64 - expected).abs() < 3_000,
        "stored {}, expected about {expected}",
        skewed[0].ts_ms
    );

    // The summary counts distinct events.
    let summary: Value = app
        .get(
            "/v1/events/summary?from=2026-01-01T00:00:00Z",
            Some(READ_KEY),
        )
        .await
        .json()
        .await
        .unwrap();
    let order_count = summary["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "Order Completed")
        .unwrap();
    assert_eq!(order_count["events"], 1);
}

async fn call(
    app: &TestApp,
    path: &str,
    auth: Option<&str>,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut request = app
        .http
        .post(format!("{}/v1/segment/v1/{path}", app.address))
        .header("content-type", content_type)
        .body(body);
    if let Some(key) = auth {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
        request = request.header("authorization", format!("Basic {basic}"));
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn each_call_maps_to_its_event_with_the_write_key_in_the_body_or_basic_auth() {
    let app = spawn_app().await;
    let calls = [
        (
            "screen",
            json!({"writeKey": INGEST_KEY, "userId": "u", "name": "Home", "properties": {"tab": 2}}),
        ),
        (
            "group",
            json!({"writeKey": INGEST_KEY, "userId": "u", "groupId": "g-1", "traits": {"plan": "team"}}),
        ),
        (
            "alias",
            json!({"writeKey": INGEST_KEY, "userId": "u", "previousId": "anon-1"}),
        ),
        (
            "track",
            json!({"userId": "u", "event": "Paid", "properties": {"value": 9}, "messageId": 17}),
        ),
    ];
    for (path, body) in &calls {
        let auth = (*path == "track").then_some(INGEST_KEY);
        let response = call(&app, path, auth, "application/json", body.to_string()).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"success": true, "accepted": 1, "rejected": []})
        );
    }

    let rows = app.stored_events().await;
    let names: Vec<&str> = rows.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(names, ["$alias", "$group", "$screen", "Paid"]);
    assert_eq!(rows[0].string("previousId"), Some("anon-1"));
    assert_eq!(
        (rows[1].string("groupId"), rows[1].string("plan")),
        (Some("g-1"), Some("team"))
    );
    assert_eq!(
        (rows[2].string("name"), rows[2].number("tab")),
        (Some("Home"), Some(2.0))
    );
    assert_eq!(rows[3].value, Some(9.0));
    assert!(
        rows.iter()
            .all(|r| r.api_key == "ingest-key" && r.user_id == "u")
    );
    // A messageId that is not a UUID still gives a stable id: resending folds.
    call(
        &app,
        "track",
        Some(INGEST_KEY),
        "application/json",
        calls[3].1.to_string(),
    )
    .await;
    assert_eq!(
        app.sql_u64("SELECT uniqExact(event_id) FROM events WHERE event = 'Paid'")
            .await,
        1
    );
}

#[tokio::test]
async fn keys_are_checked_from_the_header_or_the_body() {
    let app = spawn_app().await;
    let track = |key: &str| json!({"writeKey": key, "userId": "u", "event": "a"}).to_string();

    let no_key = call(
        &app,
        "track",
        None,
        "application/json",
        r#"{"userId":"u","event":"a"}"#,
    )
    .await;
    let unknown = call(
        &app,
        "track",
        None,
        "application/json",
        track("not-a-key-0123456789"),
    )
    .await;
    let read_only = call(&app, "track", None, "application/json", track(READ_KEY)).await;
    let bad_header = call(
        &app,
        "track",
        Some("wrong-0123456789abc"),
        "application/json",
        track(INGEST_KEY),
    )
    .await;

    assert_eq!(no_key.status(), 401);
    assert_eq!(unknown.status(), 401);
    assert_eq!(read_only.status(), 403);
    assert_eq!(
        bad_header.status(),
        401,
        "a wrong header key is not rescued by the body"
    );
    assert_eq!(app.sql_u64("SELECT count() FROM events").await, 0);
}

#[tokio::test]
async fn bad_calls_are_listed_and_bad_bodies_get_json_errors_leaving_data_intact() {
    let app = spawn_app_with(|s| {
        s.ingest.limits.max_segment_body_bytes = 4_000;
        s.ingest.limits.max_segment_batch_events = 3;
    })
    .await;
    let batch = json!({"batch": [
        {"type": "track", "userId": "u", "event": "kept"},
        {"type": "track", "event": "no user"},
        {"type": "launch", "userId": "u"},
        {"type": "track", "userId": "u", "event": "late", "timestamp": "not a time"}
    ]});
    let ok = spawn_app_with(|_| {}).await; // default limits: 4 calls are allowed there
    let response = call(
        &ok,
        "batch",
        Some(INGEST_KEY),
        "application/json",
        batch.to_string(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["accepted"], 1);
    let rejected: Vec<(u64, &str)> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(rejected, [(1, "userId"), (2, "type"), (3, "timestamp")]);

    // On the app with small limits: one good call, then bad bodies.
    let good = json!({"userId": "u", "event": "kept"}).to_string();
    assert_eq!(
        call(&app, "track", Some(INGEST_KEY), "application/json", good)
            .await
            .status(),
        200
    );
    let oversize = json!({"userId": "u", "event": "big", "properties": {"pad": "x".repeat(5_000)}});
    let cases: [(&str, &str, String, u16, &str); 6] = [
        (
            "track",
            "application/json",
            "{\"event\":".into(),
            400,
            "invalid_json",
        ),
        (
            "track",
            "application/json",
            "[1, 2]".into(),
            400,
            "invalid_json",
        ),
        (
            "track",
            "application/x-ndjson",
            "{}".into(),
            415,
            "unsupported_content_type",
        ),
        (
            "track",
            "application/json",
            oversize.to_string(),
            413,
            "payload_too_large",
        ),
        (
            "batch",
            "application/json",
            batch.to_string(),
            413,
            "too_many_records",
        ),
        (
            "track",
            "application/json",
            json!({"event": "no user"}).to_string(),
            400,
            "no_valid_records",
        ),
    ];
    for (path, content_type, body, status, code) in cases {
        let response = call(&app, path, Some(INGEST_KEY), content_type, body).await;
        assert_eq!(response.status(), status, "{code}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], code);
    }
    let unknown_call = call(&app, "launch", Some(INGEST_KEY), "application/json", "{}").await;
    assert_eq!(unknown_call.status(), 404);
    assert_eq!(
        unknown_call.json::<Value>().await.unwrap()["error"],
        "not_found"
    );

    let rows = app.stored_events().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event, "kept");
}

#[tokio::test]
async fn a_gzip_batch_with_batch_level_context_and_sent_at_is_read() {
    let app = spawn_app().await;
    let batch = json!({
        "writeKey": INGEST_KEY,
        "sentAt": "2026-11-21T10:00:05Z",
        "context": {"library": {"name": "analytics-ruby"}, "app": {"version": "7.0"}},
        "batch": [
            {"type": "track", "userId": "u", "event": "a", "timestamp": "2026-11-21T10:00:00Z"},
            {"type": "track", "userId": "u", "event": "b", "timestamp": "2026-11-21T10:00:00Z",
             "context": {"library": {"name": "own-lib"}}}
        ]
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, batch.to_string().as_bytes()).unwrap();
    let received = Utc::now().timestamp_millis();

    let response = app
        .http
        .post(format!("{}/v1/segment/v1/batch", app.address))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let rows = app.stored_events().await;
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].source.as_str(), rows[0].release.as_str()),
        ("analytics-ruby", "7.0")
    );
    assert_eq!(
        (rows[1].source.as_str(), rows[1].release.as_str()),
        ("own-lib", "7.0")
    );
    // Sent 5 s after it happened, by the client's clock: stored 5 s before receipt.
    for row in &rows {
        let expected = received - 5_000;
        assert!(
            (row.ts_ms as i64 - expected).abs() < 2_000,
            "{} vs {expected}",
            row.ts_ms
        );
    }
}
