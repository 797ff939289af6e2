//! The OpenAPI document (`GET /v1/openapi.json`) against the live service.
//!
//! schemathesis (PyPI, installed by `scripts/install-deps --tests`) reads the
//! document the service serves and sends what it allows, and what it does not
//! (negative cases), to every operation with a key of every scope; every answer
//! must be documented (status and content type) and match its schema, and none
//! may be a 5xx. The run is bounded by `--max-examples` per operation and a
//! wall-clock cap; `HYPERCARE_SCHEMATHESIS_SEED` replays a run, and
//! `HYPERCARE_SCHEMATHESIS_EXAMPLES` changes its depth. No operation is
//! excluded from the run.

use std::process::Stdio;
use std::time::{Duration, Instant};

use hypercare_tests::{ADMIN_KEY, READ_KEY, SUPPORT_KEY, TestApp, spawn_app};

/// The document needs no key: API tools fetch it before they have one.
#[tokio::test]
async fn the_document_is_served_without_a_key() {
    let app = spawn_app().await;
    let response = app.get("/v1/openapi.json", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let doc: serde_json::Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, method) in [
        ("/v1/events", "post"),
        ("/v1/tickets/{id}/transition", "post"),
        ("/v1/kpis/{id}", "put"),
        ("/v1/silences/{id}", "delete"),
        ("/v1/slos", "get"),
        ("/v1/openapi.json", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["name"],
        "X-API-Key"
    );
    // The configured ticket vocabulary is in the document.
    let settings = hypercare_tickets::TicketSettings::default();
    assert_eq!(
        doc["components"]["schemas"]["NewTicket"]["properties"]["category"]["enum"],
        serde_json::json!(settings.categories)
    );
    assert_eq!(
        doc["components"]["schemas"]["PriorityBody"]["properties"]["urgency"]["enum"],
        serde_json::json!(settings.urgencies)
    );
}

/// `from` at the last date chrono can hold used to panic on `from + 14 days`.
#[tokio::test]
async fn ticket_stats_at_the_end_of_the_calendar_is_a_400_naming_from() {
    let app = spawn_app().await;
    let response = app
        .get("/v1/tickets/stats?from=%2B262142-12-31", Some(READ_KEY))
        .await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["field"], "from");
    assert_eq!(body["error"], "invalid_request");
    // The service is still there.
    let response = app
        .get("/v1/tickets/stats?from=2026-11-20", Some(READ_KEY))
        .await;
    assert_eq!(response.status(), 200);
}

/// Some data for the reads to find, and ids for schemathesis to follow.
async fn seed(app: &TestApp) {
    let events = serde_json::json!([
        {"event": "order_placed", "user_id": "u-1", "value": 10.5, "properties": {"plan": "pro"}},
        {"event": "signup", "user_id": "u-2"},
    ]);
    assert_eq!(app.post_events(&events).await.status(), 202);
    let metrics = serde_json::json!([
        {"name": "http_requests_total", "kind": "counter", "labels": {"service": "checkout"}, "value": 5},
        {"name": "latency_seconds", "kind": "histogram", "labels": {"service": "checkout"},
         "bounds": [0.1, 1], "counts": [3, 1, 0], "sum": 0.9, "count": 4},
    ]);
    assert_eq!(app.post_metrics(&metrics).await.status(), 202);
    let ticket = serde_json::json!({"title": "Checkout fails", "category": "bug",
        "impact": "high", "urgency": "high", "description": "500 on pay", "release": "2.4.0"});
    let response = app
        .post(
            "/v1/tickets",
            SUPPORT_KEY,
            "application/json",
            ticket.to_string(),
        )
        .await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_schema() {
    let app = spawn_app().await;
    seed(&app).await;
    let seed = std::env::var("HYPERCARE_SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".into());
    let examples =
        std::env::var("HYPERCARE_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "100".into());
    let hooks = concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis/hooks.py");
    let report = tempfile::tempdir().unwrap();
    let started = Instant::now();
    // `python3 -c` rather than the `st` script: a `pip install --user` puts
    // the script in a folder that may not be on PATH.
    let child = tokio::process::Command::new("python3")
        .args([
            "-c",
            "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'st'; schemathesis()",
            "run",
            &format!("{}/v1/openapi.json", app.address),
            "--header",
            &format!("Authorization: Bearer {ADMIN_KEY}"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            &examples,
            "--seed",
            &seed,
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--report-dir",
            report.path().to_str().unwrap(),
        ])
        .env("SCHEMATHESIS_HOOKS", hooks)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 with schemathesis is needed: run scripts/install-deps --tests");
    // The run is bounded by --max-examples; this cap only stops a run that hangs.
    let output = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .expect("schemathesis did not finish within 300 s")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: String = text
        .lines()
        .filter(|l| l.contains(" generated, ") || l.contains("Tested:"))
        .collect::<Vec<_>>()
        .join("; ");
    eprintln!(
        "schemathesis (seed {seed}, {examples} examples per operation) took {:.0} s: {summary}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        output.status.success(),
        "schemathesis found answers that break the document (seed {seed}):\n{text}"
    );
    // Every operation but the document's own route, which schemathesis reads
    // the document from rather than tests.
    let doc: serde_json::Value = app
        .get("/v1/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    let tested = format!("Tested: {}", operations - 1);
    assert!(text.contains(&tested), "{tested} expected:\n{text}");
}

/// A silence `duration` past what a u64 of milliseconds holds used to overflow
/// `startsAt + duration` and panic; one past year 9999 was stored with an end
/// that the API then showed as 1970 while calling it active.
#[tokio::test]
async fn a_silence_too_long_to_write_is_a_400_naming_duration() {
    let app = spawn_app().await;
    for duration in ["18446744073709551615s", "500000000y"] {
        let body = serde_json::json!({"matchers": ["service=\"checkout\""], "duration": duration,
            "createdBy": "sre", "comment": "maintenance"});
        let response = app
            .post(
                "/v1/silences",
                ADMIN_KEY,
                "application/json",
                body.to_string(),
            )
            .await;
        assert_eq!(response.status(), 400, "{duration}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["field"], "duration", "{duration}");
    }
    let body = serde_json::json!({"matchers": ["service=\"checkout\""], "duration": "2h",
        "createdBy": "sre", "comment": "maintenance"});
    let response = app
        .post(
            "/v1/silences",
            ADMIN_KEY,
            "application/json",
            body.to_string(),
        )
        .await;
    assert_eq!(response.status(), 201);
}

/// Over-limit and malformed bodies of the small JSON routes answer the JSON
/// error body (they were plain text from actix's extractors).
#[tokio::test]
async fn json_routes_answer_oversized_and_malformed_bodies_in_json() {
    let app = spawn_app().await;
    let big = format!("{{\"title\": \"{}\"}}", "a".repeat(300 * 1024));
    for (path, key) in [
        ("/v1/tickets", SUPPORT_KEY),
        ("/v1/launches", ADMIN_KEY),
        ("/v1/silences", ADMIN_KEY),
    ] {
        let response = app.post(path, key, "application/json", big.clone()).await;
        assert_eq!(response.status(), 413, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "payload_too_large", "{path}");
    }
    let response = app
        .post(
            "/v1/silences",
            ADMIN_KEY,
            "application/json",
            "{\"matchers\": 1}",
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}
