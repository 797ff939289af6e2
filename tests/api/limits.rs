use hypercare_tests::{INGEST_KEY, ndjson_events, spawn_app, spawn_app_with};
use serde_json::{Value, json};

#[tokio::test]
async fn a_body_over_the_size_limit_gets_413_and_stores_nothing() {
    let app = spawn_app_with(|settings| {
        settings.ingest.limits.max_body_bytes = 10_000;
    })
    .await;

    let response = app
        .post(
            "/v1/events",
            INGEST_KEY,
            "application/x-ndjson",
            ndjson_events("big", 200),
        )
        .await;

    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large");
    assert!(body["message"].as_str().unwrap().contains("10000"));
    assert_eq!(app.sql_u64("SELECT count() FROM events").await, 0);
}

#[tokio::test]
async fn a_gzip_body_that_expands_over_the_limit_gets_413() {
    use std::io::Write;
    let app = spawn_app_with(|settings| {
        settings.ingest.limits.max_body_bytes = 10_000;
    })
    .await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(format!("[{}]", vec![r#"{"event":"zip"}"#; 5_000].join(",")).as_bytes())
        .unwrap();
    let small = gz.finish().unwrap();
    assert!(small.len() < 10_000);

    let response = app
        .http
        .post(format!("{}/v1/events", app.address))
        .bearer_auth(INGEST_KEY)
        .header("content-encoding", "gzip")
        .body(small)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn too_many_records_in_one_request_get_413() {
    let app = spawn_app_with(|settings| {
        settings.ingest.limits.max_records_per_request = 100;
    })
    .await;

    let response = app
        .post(
            "/v1/events",
            INGEST_KEY,
            "application/x-ndjson",
            ndjson_events("many", 101),
        )
        .await;

    assert_eq!(response.status(), 413);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "too_many_records"
    );
    assert_eq!(app.sql_u64("SELECT count() FROM events").await, 0);
}

#[tokio::test]
async fn per_record_limits_reject_the_record_and_name_the_limit() {
    let app = spawn_app_with(|settings| {
        settings.ingest.limits.max_properties = 2;
    })
    .await;
    let long_name = "x".repeat(201);

    let response = app
        .post_events(&json!([
            {"event": long_name},
            {"event": "props", "properties": {"a": 1, "b": 2, "c": 3}},
            {"event": "fine", "properties": {"a": 1, "b": 2}}
        ]))
        .await;

    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["rejected"][0]["field"], "event");
    assert!(
        body["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("200")
    );
    assert_eq!(body["rejected"][1]["field"], "properties");
    assert!(
        body["rejected"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("limit is 2")
    );
}

#[tokio::test]
async fn a_content_type_or_encoding_we_do_not_read_gets_415() {
    let app = spawn_app().await;

    let csv = app
        .post("/v1/events", INGEST_KEY, "text/csv", "event\na\n")
        .await;
    let brotli = app
        .http
        .post(format!("{}/v1/events", app.address))
        .bearer_auth(INGEST_KEY)
        .header("content-encoding", "br")
        .body("xx")
        .send()
        .await
        .unwrap();

    assert_eq!(csv.status(), 415);
    assert_eq!(
        csv.json::<Value>().await.unwrap()["error"],
        "unsupported_content_type"
    );
    assert_eq!(brotli.status(), 415);
}

#[tokio::test]
async fn a_key_over_its_byte_rate_gets_429_and_another_key_is_unaffected() {
    let body = ndjson_events("bulk", 100);
    let bytes = u32::try_from(body.len()).unwrap();
    let app = spawn_app_with(|settings| {
        settings.ingest.limits.max_body_bytes = body.len() * 2;
        let ingest = settings
            .auth
            .keys
            .iter_mut()
            .find(|k| k.name == "ingest-key")
            .unwrap();
        // Room for two bodies, then about one body per minute.
        ingest.rate_limit = Some(
            serde_json::from_value(json!({
                "requests_per_second": 1000, "burst": 1000,
                "bytes_per_second": (bytes / 60).max(1), "burst_bytes": bytes * 2,
            }))
            .unwrap(),
        );
    })
    .await;
    // Fresh event ids each time, the same size each time.
    let send = |key: &'static str| {
        app.post(
            "/v1/events",
            key,
            "application/x-ndjson",
            ndjson_events("bulk", 100),
        )
    };

    assert_eq!(send(INGEST_KEY).await.status(), 202);
    assert_eq!(send(INGEST_KEY).await.status(), 202);
    let refused = send(INGEST_KEY).await;
    let other = send(hypercare_tests::ADMIN_KEY).await;

    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"], "rate_limited");
    assert!(
        error["message"].as_str().unwrap().contains("bytes/s"),
        "{error}"
    );
    assert_eq!(other.status(), 202, "another key has its own bucket");
    assert_eq!(
        app.sql_u64("SELECT uniqExact(event_id) FROM events").await,
        300
    );
}
