use std::io::Write;

use chrono::Utc;
use hypercare_tests::{INGEST_KEY, READ_KEY, ndjson_events, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn an_event_is_stored_with_every_field_as_sent() {
    let app = spawn_app().await;
    let response = app
        .post_events(&json!({
            "event": "order_placed",
            "event_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            "timestamp": "2026-11-21T09:30:00.250Z",
            "source": "checkout",
            "release": "2.4.0",
            "user_id": 42,
            "session_id": "s-7",
            "value": 59.9,
            "properties": {"plan": "pro", "items": 3, "first_order": true, "coupon": null}
        }))
        .await;

    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"accepted": 1, "rejected": []}));
    let rows = app.stored_events().await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.event_id, "1b4e28ba-2fa1-11d2-883f-0016d3cca427");
    assert_eq!(row.event, "order_placed");
    assert_eq!(row.ts_ms, 1_795_253_400_250);
    assert_eq!(
        (row.source.as_str(), row.release.as_str()),
        ("checkout", "2.4.0")
    );
    assert_eq!(
        (row.user_id.as_str(), row.session_id.as_str()),
        ("42", "s-7")
    );
    assert_eq!(row.value, Some(59.9));
    assert_eq!(
        (row.prop_str_keys.clone(), row.prop_str_values.clone()),
        (vec!["plan".to_owned()], vec!["pro".to_owned()])
    );
    assert_eq!(
        (row.prop_num_keys.clone(), row.prop_num_values.clone()),
        (vec!["items".to_owned()], vec![3.0])
    );
    assert_eq!(
        (row.prop_bool_keys.clone(), row.prop_bool_values.clone()),
        (vec!["first_order".to_owned()], vec![1])
    );
    assert_eq!(row.api_key, "ingest-key");
}

#[tokio::test]
async fn an_event_without_id_or_time_gets_a_fresh_id_and_the_time_of_receipt() {
    let app = spawn_app().await;
    let before = Utc::now().timestamp_millis() as u64;

    let response = app
        .post_events(&json!([{"event": "a"}, {"event": "a"}]))
        .await;

    assert_eq!(response.status(), 202);
    let after = Utc::now().timestamp_millis() as u64;
    let rows = app.stored_events().await;
    assert_eq!(rows.len(), 2);
    assert_ne!(rows[0].event_id, rows[1].event_id);
    for row in &rows {
        assert!(
            row.ts_ms >= before && row.ts_ms <= after,
            "{} not in [{before}, {after}]",
            row.ts_ms
        );
        assert_eq!(row.value, None);
    }
}

#[tokio::test]
async fn sent_at_corrects_the_clock_skew_of_the_client() {
    let app = spawn_app().await;
    // The client's clock runs 2 hours ahead: the event happened 5 s before it sent it.
    let client_now = Utc::now() + chrono::Duration::hours(2);
    let happened = client_now - chrono::Duration::seconds(5);

    let response = app
        .post_events(&json!({
            "event": "skewed",
            "timestamp": happened.to_rfc3339(),
            "sent_at": client_now.to_rfc3339()
        }))
        .await;

    assert_eq!(response.status(), 202);
    let stored = app
        .sql_u64("SELECT toUInt64(timestamp) * 1000 + timestamp_ms FROM events")
        .await as i64;
    let expected = (Utc::now() - chrono::Duration::seconds(5)).timestamp_millis();
    assert!(
        (stored - expected).abs() < 2_000,
        "stored {stored}, expected about {expected}"
    );
}

#[tokio::test]
async fn epoch_milliseconds_are_accepted_as_timestamps() {
    let app = spawn_app().await;
    let response = app
        .post_events(&json!({"event": "a", "timestamp": 1_795_253_400_250_u64}))
        .await;
    assert_eq!(response.status(), 202);
    assert_eq!(
        app.sql_u64("SELECT toUInt64(timestamp) * 1000 + timestamp_ms FROM events")
            .await,
        1_795_253_400_250
    );
}

#[tokio::test]
async fn ndjson_and_gzip_bodies_are_read() {
    let app = spawn_app().await;
    let body = ndjson_events("ndjson", 250);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(ndjson_events("gzipped", 150).as_bytes())
        .unwrap();
    let gzipped = gz.finish().unwrap();

    let plain = app
        .post("/v1/events", INGEST_KEY, "application/x-ndjson", body)
        .await;
    let compressed = app
        .http
        .post(format!("{}/v1/events", app.address))
        .bearer_auth(INGEST_KEY)
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(gzipped)
        .send()
        .await
        .unwrap();

    assert_eq!(plain.status(), 202);
    assert_eq!(compressed.status(), 202);
    assert_eq!(compressed.json::<Value>().await.unwrap()["accepted"], 150);
    assert_eq!(
        app.sql_u64("SELECT count() FROM events WHERE event = 'ndjson'")
            .await,
        250
    );
    assert_eq!(
        app.sql_u64("SELECT count() FROM events WHERE event = 'gzipped'")
            .await,
        150
    );
}

#[tokio::test]
async fn bad_records_are_named_and_the_good_ones_are_stored() {
    let app = spawn_app().await;

    let response = app
        .post_events(&json!([
            {"event": "good", "value": 1},
            {"event": "bad", "value": "12"},
            "not an object",
            {"event": "good", "value": 2},
            {"event": "bad", "timestamp": "yesterday"},
            {"event": "bad", "properties": {"nested": {"no": 1}}}
        ]))
        .await;

    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 2);
    let rejected: Vec<(u64, String)> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(!r["reason"].as_str().unwrap().is_empty());
            (
                r["index"].as_u64().unwrap(),
                r["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        vec![
            (1, "value".to_owned()),
            (2, "record".to_owned()),
            (4, "timestamp".to_owned()),
            (5, "properties.nested".to_owned())
        ]
    );
    assert_eq!(app.sql_u64("SELECT count() FROM events").await, 2);
    assert_eq!(
        app.sql_u64("SELECT count() FROM events WHERE event = 'bad'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_request_with_no_valid_record_is_refused_and_stores_nothing() {
    let app = spawn_app().await;

    let (status, body) = app
        .post_json_as(
            "/v1/events",
            INGEST_KEY,
            &json!([{"value": 1}, {"event": 3}]),
        )
        .await;

    assert_eq!(status, 400);
    assert_eq!(body["error"], "no_valid_records");
    assert_eq!(body["accepted"], 0);
    assert_eq!(body["rejected"][0]["field"], "event");
    assert_eq!(body["rejected"][1]["index"], 1);
    assert_eq!(app.sql_u64("SELECT count() FROM events").await, 0);
}

#[tokio::test]
async fn a_body_that_is_not_json_gets_400_and_leaves_stored_data_intact() {
    let app = spawn_app().await;
    assert_eq!(
        app.post_events(&json!({"event": "kept"})).await.status(),
        202
    );

    for body in ["{\"event\": ", "", "{\"event\":\"a\"}\n{\"event\":\"b\"}"] {
        let response = app
            .post("/v1/events", INGEST_KEY, "application/json", body)
            .await;
        assert_eq!(response.status(), 400, "{body:?}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"].is_string() && error["message"].is_string(),
            "{error}"
        );
    }
    assert_eq!(app.sql_u64("SELECT count() FROM events").await, 1);
}

#[tokio::test]
async fn a_retried_batch_does_not_make_any_count_grow() {
    let app = spawn_app().await;
    let batch = ndjson_events("checkout", 500);

    for _ in 0..3 {
        let response = app
            .post(
                "/v1/events",
                INGEST_KEY,
                "application/x-ndjson",
                batch.clone(),
            )
            .await;
        assert_eq!(response.status(), 202);
    }

    // The reads count distinct event ids, so they are exact before any merge.
    let (status, summary) = app.get_json_as("/v1/events/summary", READ_KEY).await;
    assert_eq!(status, 200);
    assert_eq!(summary["events"][0]["event"], "checkout");
    assert_eq!(summary["events"][0]["events"], 500);
    assert_eq!(summary["events"][0]["users"], 500);
    assert_eq!(
        app.sql_u64("SELECT uniqExact(event_id) FROM events").await,
        500
    );
    assert_eq!(app.sql_u64("SELECT count() FROM events FINAL").await, 500);
    // And merges fold the copies away for good.
    app.db
        .query("OPTIMIZE TABLE events FINAL")
        .execute()
        .await
        .unwrap();
    assert_eq!(app.sql_u64("SELECT count() FROM events").await, 500);
}

#[tokio::test]
async fn the_summary_counts_events_per_name_in_a_time_range() {
    let app = spawn_app().await;
    let at = |name: &str, ts: &str| json!({"event": name, "timestamp": ts, "user_id": "u1"});
    app.post_events(&json!([
        at("signup", "2026-11-20T10:00:00Z"),
        at("signup", "2026-11-20T11:00:00Z"),
        at("login", "2026-11-20T12:00:00Z"),
        at("signup", "2026-11-19T10:00:00Z")
    ]))
    .await;

    let (status, summary) = app
        .get_json_as(
            "/v1/events/summary?from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z",
            READ_KEY,
        )
        .await;

    assert_eq!(status, 200);
    assert_eq!(
        summary["events"],
        json!([
            {"event": "signup", "events": 2, "users": 1, "first_seen": "2026-11-20T10:00:00Z", "last_seen": "2026-11-20T11:00:00Z"},
            {"event": "login", "events": 1, "users": 1, "first_seen": "2026-11-20T12:00:00Z", "last_seen": "2026-11-20T12:00:00Z"}
        ])
    );
    let (status, bad) = app
        .get_json_as("/v1/events/summary?from=monday", READ_KEY)
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        (bad["error"].as_str(), bad["field"].as_str()),
        (Some("invalid_request"), Some("from"))
    );
}
