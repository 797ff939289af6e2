//! Hostile and broken bodies (issue 12): each small body that used to take
//! gigabytes or be retried for ever gets a 4xx naming the limit, while a normal
//! client's request sent at the same time is stored.

use std::io::Write;

use chrono::Utc;
use hypercare_ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest};
use hypercare_tests::{ADMIN_KEY, INGEST_KEY, TestApp, spawn_app, spawn_app_with};
use prost::Message;
use serde_json::{Value, json};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// One series of `labels` labels of `chars` characters each, with `samples` samples.
fn wide_series(labels: usize, chars: usize, samples: usize) -> Vec<u8> {
    let now = Utc::now().timestamp_millis();
    let mut series_labels = vec![Label {
        name: "__name__".into(),
        value: "hostile_gauge".into(),
    }];
    series_labels.extend((0..labels).map(|i| Label {
        name: format!("l{i:03}").into(),
        value: "x".repeat(chars).into(),
    }));
    let request = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: series_labels,
            samples: (0..samples)
                .map(|i| Sample {
                    value: i as f64,
                    timestamp: now - 1_000_000 + i as i64,
                })
                .collect(),
        }],
    };
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .unwrap()
}

/// A remote-write request any Prometheus sends: a few series, one sample each.
fn normal_write(name: &str) -> Vec<u8> {
    let now = Utc::now().timestamp_millis();
    let request = WriteRequest {
        timeseries: (0..3)
            .map(|i| TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: name.to_owned().into(),
                    },
                    Label {
                        name: "instance".into(),
                        value: format!("web-{i}").into(),
                    },
                ],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: now,
                }],
            })
            .collect(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .unwrap()
}

async fn points_named(app: &TestApp, name: &str) -> u64 {
    app.sql_u64(&format!(
        "SELECT count() FROM metric_points WHERE name = '{name}'"
    ))
    .await
}

/// Sends `hostile` and a normal request at once; checks the hostile one gets
/// 413 naming `limit` and the normal one is stored.
async fn hostile_write_beside_a_normal_one(app: &TestApp, hostile: Vec<u8>, limit: &str) {
    let (bad, good) = tokio::join!(
        app.remote_write(hostile),
        app.remote_write(normal_write("normal_client_up"))
    );

    assert_eq!(good.status(), 204);
    assert_eq!(bad.status(), 413);
    let text = bad.text().await.unwrap();
    assert!(text.contains(limit), "{text}");
    assert_eq!(points_named(app, "normal_client_up").await, 3);
    assert_eq!(points_named(app, "hostile_gauge").await, 0);
}

#[tokio::test]
async fn a_102_kb_remote_write_of_wide_labels_times_10000_samples_gets_413_naming_the_limit() {
    let app = spawn_app().await;
    let body = wide_series(100, 4_000, 10_000);
    assert!(body.len() < 120_000, "{}", body.len());

    hostile_write_beside_a_normal_one(&app, body, "max_encode_amplification").await;
}

#[tokio::test]
async fn the_1000_sample_variant_gets_413_not_503_so_prometheus_drops_it() {
    let app = spawn_app().await;

    hostile_write_beside_a_normal_one(
        &app,
        wide_series(100, 4_000, 1_000),
        "max_encode_amplification",
    )
    .await;
    // Not a transient refusal: the same body gets the same answer again.
    let again = app.remote_write(wide_series(100, 4_000, 1_000)).await;
    assert_eq!(again.status(), 413);
}

#[tokio::test]
async fn a_series_with_labels_over_max_series_bytes_is_rejected_and_the_others_stored() {
    let app = spawn_app().await;

    // One sample: no amplification, but 100 x 4,000 chars of labels per row.
    let response = app.remote_write(wide_series(100, 4_000, 1)).await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "no_valid_records", "{body}");
    let reason = body["rejected"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("max_series_bytes"), "{reason}");
}

#[tokio::test]
async fn a_10_kb_gzip_array_of_millions_of_empty_objects_twice_at_once_gets_413_each() {
    let app = spawn_app().await;
    // 3.49 M `{}`: 10.47 MB, just under max_body_bytes, about 10 KB of gzip.
    let array = format!("[{}]", vec!["{}"; 3_490_000].join(","));
    assert!(array.len() < 10 * 1024 * 1024);
    let body = gzip(array.as_bytes());
    assert!(body.len() < 20_000, "{}", body.len());
    let send = |body: Vec<u8>| {
        app.http
            .post(format!("{}/v1/events", app.address))
            .bearer_auth(INGEST_KEY)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body)
            .send()
    };
    let normal = json!({"event": "normal_signup", "user_id": "u-1"});

    let (a, b, good) = tokio::join!(send(body.clone()), send(body), app.post_events(&normal));

    assert_eq!(good.status(), 202);
    for response in [a.unwrap(), b.unwrap()] {
        assert_eq!(response.status(), 413);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "too_many_records");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("max_records_per_request = 10000"),
            "{message}"
        );
    }
    assert_eq!(
        app.sql_u64("SELECT count() FROM events WHERE event = 'normal_signup'")
            .await,
        1
    );
    assert_eq!(app.sql_u64("SELECT count() FROM events").await, 1);
}

#[tokio::test]
async fn a_request_whose_rows_can_never_fit_the_write_queue_gets_413_not_503() {
    let app = spawn_app_with(|settings| {
        settings.ingest.limits.max_body_bytes = 200_000;
        settings.ingest.writer.queue_capacity_bytes = 200_000;
        settings.ingest.writer.max_queue_share_per_key = 1.0;
    })
    .await;
    // 6,000 tiny events: under 200 KB of body, several hundred KB of rows.
    let body: String = (0..6_000)
        .map(|i| format!("{{\"event\":\"e\",\"user_id\":\"{i}\"}}\n"))
        .collect();
    assert!(body.len() < 200_000, "{}", body.len());

    let response = app
        .post("/v1/events", INGEST_KEY, "application/x-ndjson", body)
        .await;

    assert_eq!(response.status(), 413);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"], "larger_than_queue");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("max_queue_share_per_key = 200000"),
        "{answer}"
    );
    assert_eq!(app.sql_u64("SELECT count() FROM events").await, 0);
}

#[tokio::test]
async fn timestamps_older_than_the_horizon_are_rejected_unless_an_admin_backfills() {
    // The default horizon (the harness widens it for suites with fixed dates).
    let app = spawn_app_with(|settings| {
        settings.ingest.limits.max_age_days =
            hypercare_ingest::config::Limits::default().max_age_days;
    })
    .await;
    let old = (Utc::now() - chrono::Duration::days(120)).to_rfc3339();
    let recent = Utc::now().to_rfc3339();
    let body = json!([
        {"event": "old_order", "user_id": "u-1", "timestamp": old},
        {"event": "new_order", "user_id": "u-2", "timestamp": recent},
    ])
    .to_string();

    let normal = app
        .post("/v1/events", INGEST_KEY, "application/json", body.clone())
        .await;
    assert_eq!(normal.status(), 202);
    let answer: Value = normal.json().await.unwrap();
    assert_eq!(answer["accepted"], 1);
    assert_eq!(answer["rejected"][0]["index"], 0);
    assert_eq!(answer["rejected"][0]["field"], "timestamp");
    let reason = answer["rejected"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("max_age_days"), "{reason}");

    let not_admin = app
        .http
        .post(format!("{}/v1/events", app.address))
        .bearer_auth(INGEST_KEY)
        .header("content-type", "application/json")
        .header("x-hypercare-backfill", "true")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(not_admin.status(), 403);

    let backfill = app
        .http
        .post(format!("{}/v1/events", app.address))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "application/json")
        .header("x-hypercare-backfill", "true")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(backfill.status(), 202);
    assert_eq!(backfill.json::<Value>().await.unwrap()["accepted"], 2);
    assert_eq!(
        app.sql_u64("SELECT count() FROM events WHERE event = 'old_order'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_flood_of_empty_otlp_log_records_gets_413_before_decoding() {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    let app = spawn_app().await;
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(); 1_000_000],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let body = request.encode_to_vec();
    drop(request);

    let response = app
        .http
        .post(format!("{}/v1/otlp/v1/logs", app.address))
        .bearer_auth(INGEST_KEY)
        .header("content-type", "application/x-protobuf")
        .body(gzip(&body))
        .header("content-encoding", "gzip")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 413);
    assert_eq!(app.sql_u64("SELECT count() FROM logs").await, 0);
}
