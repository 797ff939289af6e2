use base64::Engine;
use hypercare_tests::{ADMIN_KEY, INGEST_KEY, READ_KEY, spawn_app, spawn_app_with};
use serde_json::{Value, json};

#[tokio::test]
async fn a_request_without_a_key_gets_401_with_a_json_error() {
    let app = spawn_app().await;

    let response = app
        .http
        .post(format!("{}/v1/events", app.address))
        .json(&json!({"event": "a"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );
}

#[tokio::test]
async fn an_unknown_key_gets_401_and_stores_nothing() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/v1/events",
            "not-a-key-of-ours-at-all",
            "application/json",
            r#"{"event":"a"}"#,
        )
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(app.sql_u64("SELECT count() FROM events").await, 0);
}

#[tokio::test]
async fn a_key_without_the_ingest_scope_gets_403() {
    let app = spawn_app().await;

    let response = app
        .post(
            "/v1/events",
            READ_KEY,
            "application/json",
            r#"{"event":"a"}"#,
        )
        .await;

    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");
    assert!(body["message"].as_str().unwrap().contains("ingest"));
    // ...and the read route refuses the ingest key the same way.
    assert_eq!(
        app.get("/v1/events/summary", Some(INGEST_KEY))
            .await
            .status(),
        403
    );
    assert_eq!(
        app.get("/v1/events/summary", Some(ADMIN_KEY))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn segment_style_basic_auth_and_x_api_key_are_accepted() {
    let app = spawn_app().await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{INGEST_KEY}:"));

    let with_basic = app
        .http
        .post(format!("{}/v1/events", app.address))
        .header("authorization", format!("Basic {basic}"))
        .json(&json!({"event": "basic"}))
        .send()
        .await
        .unwrap();
    let with_header = app
        .http
        .post(format!("{}/v1/events", app.address))
        .header("x-api-key", INGEST_KEY)
        .json(&json!({"event": "header"}))
        .send()
        .await
        .unwrap();

    assert_eq!(with_basic.status(), 202);
    assert_eq!(with_header.status(), 202);
    assert_eq!(app.sql_u64("SELECT count() FROM events").await, 2);
}

#[tokio::test]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after() {
    let app = spawn_app_with(|settings| {
        settings.auth.keys[0].rate_limit =
            Some(serde_json::from_value(json!({"requests_per_second": 1, "burst": 3})).unwrap());
    })
    .await;

    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let response = app.post_events(&json!({"event": "limited"})).await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "rate_limited");
        }
    }

    assert_eq!(&statuses[..3], &[202, 202, 202]);
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    // Another key has its own bucket.
    let other = app
        .post(
            "/v1/events",
            ADMIN_KEY,
            "application/json",
            r#"{"event":"a"}"#,
        )
        .await;
    assert_eq!(other.status(), 202);
    assert_eq!(
        app.sql_u64("SELECT count() FROM events WHERE event = 'limited'")
            .await,
        3
    );
}
