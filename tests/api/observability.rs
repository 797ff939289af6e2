use hypercare_tests::{INGEST_KEY, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn a_request_id_is_echoed_or_generated() {
    let app = spawn_app().await;

    let given = app
        .http
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    let generated = app.get("/healthz", None).await;

    assert_eq!(given.headers()["x-request-id"], "abc-123");
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

#[tokio::test]
async fn metrics_count_requests_records_and_inserts() {
    let app = spawn_app().await;
    app.post_events(&json!([{"event": "a"}, {"event": "b"}, {"value": 1}]))
        .await;
    app.post(
        "/v1/events",
        "wrong-key-wrong-key",
        "application/json",
        "{}",
    )
    .await;

    let response = app.get("/metrics", None).await;

    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for expected in [
        r#"hypercare_http_requests_total{method="POST",route="/v1/events",status="202"} 1"#,
        r#"hypercare_http_requests_total{method="POST",route="/v1/events",status="401"} 1"#,
        r#"hypercare_ingest_records_accepted_total{signal="event"} 2"#,
        r#"hypercare_ingest_records_rejected_total{reason="missing",signal="event"} 1"#,
        r#"hypercare_writer_inserted_rows_total{table="events"} 2"#,
        r#"hypercare_writer_queue_rows{table="events"} 0"#,
        r#"hypercare_writer_insert_duration_seconds_count{table="events"} 1"#,
        r#"hypercare_writer_batch_rows_sum{table="events"} 2"#,
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
}

#[tokio::test]
async fn health_and_readiness_report_each_component() {
    let app = spawn_app().await;
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    for component in ["clickhouse", "writer_events", "writer_metric_points"] {
        assert_eq!(body["components"][component]["ready"], true, "{body}");
    }
    assert_eq!(app.get("/healthz", None).await.status(), 200);
}

#[tokio::test]
async fn unknown_routes_answer_404_in_json() {
    let app = spawn_app().await;
    let response = app
        .post("/v1/nothing", INGEST_KEY, "application/json", "{}")
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "not_found"
    );
}
