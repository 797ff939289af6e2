//! Prometheus remote write: a real Prometheus server (Debian package) scrapes a
//! target run by the test and remote-writes to Hypercare; hand-built bad
//! payloads get the spec's answers and leave stored data intact.

use std::process::Stdio;
use std::time::Duration;

use hypercare_ingest::remote_write::{Label, STALE_NAN, Sample, TimeSeries, WriteRequest};
use hypercare_tests::{ADMIN_KEY, INGEST_KEY, TestApp, eventually, spawn_app, spawn_app_with};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PATH: &str = "/v1/prometheus/write";

/// What the scraped target exposes, in the text format (values chosen to be exact in binary).
const TARGET_METRICS: &str = "\
# HELP hc_test_requests_total Requests served.
# TYPE hc_test_requests_total counter
hc_test_requests_total{method=\"GET\",code=\"200\"} 1027
hc_test_requests_total{method=\"POST\",code=\"500\"} 3
# HELP hc_test_temperature_celsius A gauge.
# TYPE hc_test_temperature_celsius gauge
hc_test_temperature_celsius{room=\"lab one\"} 21.5
# TYPE hc_test_empty_summary summary
hc_test_empty_summary{quantile=\"0.5\"} NaN
hc_test_empty_summary_sum 0
hc_test_empty_summary_count 0
";

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct StoredPoint {
    kind: String,
    label_keys: Vec<String>,
    label_values: Vec<String>,
    ts_ms: u64,
    value: f64,
    api_key: String,
}

const SELECT_POINTS: &str = "SELECT toString(kind) AS kind, label_keys, label_values, \
    toUInt64(timestamp) * 1000 + timestamp_ms AS ts_ms, value, api_key FROM metric_points \
    WHERE name = ? ORDER BY ts_ms, label_values";

async fn points(app: &TestApp, name: &str) -> Vec<StoredPoint> {
    app.db
        .query(SELECT_POINTS)
        .bind(name)
        .fetch_all()
        .await
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A scrape target: answers every request with `TARGET_METRICS`.
async fn serve_target() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{TARGET_METRICS}",
                    TARGET_METRICS.len()
                );
                socket.write_all(response.as_bytes()).await.ok();
                socket.shutdown().await.ok();
            });
        }
    });
    port
}

#[tokio::test]
async fn a_real_prometheus_remote_writes_scraped_samples_with_their_labels() {
    // Arrange: the service, a target, and Prometheus scraping it every second and
    // remote-writing twice: with a bearer key and with the key as basic_auth user.
    let app = spawn_app().await;
    let target = serve_target().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}{PATH}", app.address);
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: hc_target\n    scrape_interval: 1s\n\
         \x20   static_configs:\n      - targets: ['127.0.0.1:{target}']\n\
         remote_write:\n\
         \x20 - url: {url}\n    authorization:\n      credentials: {INGEST_KEY}\n\
         \x20   queue_config: {{batch_send_deadline: 1s, min_backoff: 100ms}}\n\
         \x20 - url: {url}\n    basic_auth:\n      username: {ADMIN_KEY}\n\
         \x20   queue_config: {{batch_send_deadline: 1s, min_backoff: 100ms}}\n"
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let started_ms = chrono::Utc::now().timestamp_millis() as u64;
    let prometheus = tokio::process::Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus is needed: run scripts/install-deps --tests");

    // Act: wait (bounded) until both remote-write queues delivered the counters.
    let query =
        "SELECT uniqExact(api_key) FROM metric_points WHERE name = 'hc_test_requests_total'";
    let prometheus = std::sync::Mutex::new(prometheus);
    eventually(
        "remote-write samples from both queues",
        Duration::from_secs(60),
        || async {
            if prometheus.lock().unwrap().try_wait().unwrap().is_some() {
                let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap();
                panic!("Prometheus exited; its log:\n{log}");
            }
            (app.sql_u64(query).await >= 2).then_some(())
        },
    )
    .await;
    let mut prometheus = prometheus.into_inner().unwrap();
    prometheus.kill().await.ok();
    let now_ms = chrono::Utc::now().timestamp_millis() as u64;

    // Assert: names, kinds, labels (with job and instance), values and times, as scraped.
    let instance = format!("127.0.0.1:{target}");
    let requests = points(&app, "hc_test_requests_total").await;
    for key_name in ["ingest-key", "admin-key"] {
        let mine: Vec<&StoredPoint> = requests.iter().filter(|p| p.api_key == key_name).collect();
        assert!(mine.len() >= 2, "{key_name}: {mine:?}");
        let get = mine
            .iter()
            .find(|p| p.label_values.contains(&"GET".into()))
            .unwrap();
        assert_eq!(get.kind, "counter");
        assert_eq!(get.label_keys, ["code", "instance", "job", "method"]);
        assert_eq!(
            get.label_values,
            ["200", instance.as_str(), "hc_target", "GET"]
        );
        assert_eq!(get.value, 1027.0);
        let post = mine
            .iter()
            .find(|p| p.label_values.contains(&"POST".into()))
            .unwrap();
        assert_eq!((post.value, post.label_values[0].as_str()), (3.0, "500"));
        for point in mine {
            assert!(
                point.ts_ms >= started_ms - 1_000 && point.ts_ms <= now_ms,
                "{} not within [{started_ms}, {now_ms}]",
                point.ts_ms
            );
        }
    }
    let temperature = points(&app, "hc_test_temperature_celsius").await;
    let first = temperature.first().expect("the gauge arrived");
    assert_eq!((first.kind.as_str(), first.value), ("gauge", 21.5));
    assert_eq!(first.label_keys, ["instance", "job", "room"]);
    assert_eq!(first.label_values[2], "lab one");
    // Prometheus' own series about the scrape arrive too.
    let up = points(&app, "up").await;
    assert!(
        up.iter().all(|p| p.value == 1.0 && p.kind == "gauge"),
        "{up:?}"
    );
    // The empty summary's NaN quantile is skipped; its _sum and _count are counters.
    assert_eq!(
        app.sql_u64("SELECT count() FROM metric_points WHERE name = 'hc_test_empty_summary'")
            .await,
        0
    );
    let count = points(&app, "hc_test_empty_summary_count").await;
    assert!(count.iter().all(|p| p.kind == "counter" && p.value == 0.0) && !count.is_empty());
}

fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.as_bytes().to_vec().into(),
        value: value.as_bytes().to_vec().into(),
    }
}

fn series(name: &str, labels: &[(&str, &str)], samples: &[(f64, i64)]) -> TimeSeries {
    let mut all = vec![label("__name__", name)];
    all.extend(labels.iter().map(|(k, v)| label(k, v)));
    TimeSeries {
        labels: all,
        samples: samples
            .iter()
            .map(|&(value, timestamp)| Sample { value, timestamp })
            .collect(),
    }
}

fn snappy(request: &WriteRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .unwrap()
}

async fn send_request(app: &TestApp, request: &WriteRequest) -> reqwest::Response {
    app.remote_write(snappy(request)).await
}

const T0: i64 = 1_795_253_400_250; // 2026-11-21T09:30:00.250Z

#[tokio::test]
async fn samples_are_stored_exactly_and_stale_markers_and_nan_are_skipped() {
    let app = spawn_app().await;
    let request = WriteRequest {
        timeseries: vec![series(
            "queue_depth",
            &[("zone", "b"), ("app", "checkout")],
            &[
                (17.25, T0),
                (f64::from_bits(STALE_NAN), T0 + 1_000),
                (f64::NAN, T0 + 2_000),
                (-3.5, T0 + 3_000),
            ],
        )],
    };

    let response = send_request(&app, &request).await;

    assert_eq!(response.status(), 204);
    assert_eq!(response.text().await.unwrap(), "");
    let rows = points(&app, "queue_depth").await;
    let got: Vec<(u64, f64)> = rows.iter().map(|p| (p.ts_ms, p.value)).collect();
    assert_eq!(got, [(T0 as u64, 17.25), (T0 as u64 + 3_000, -3.5)]);
    assert_eq!(rows[0].label_keys, ["app", "zone"]);
    assert_eq!(rows[0].label_values, ["checkout", "b"]);
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains(
            r#"hypercare_ingest_records_skipped_total{reason="stale_marker",signal="prometheus_sample"} 1"#
        ),
        "{metrics}"
    );
    // The series id is the one /v1/metrics gives the same name and labels.
    app.post_metrics(&serde_json::json!({"name": "queue_depth", "kind": "gauge",
        "labels": {"app": "checkout", "zone": "b"}, "value": 1, "timestamp": T0 + 10_000}))
        .await;
    assert_eq!(
        app.sql_u64("SELECT uniqExact(series_id) FROM metric_points WHERE name = 'queue_depth'")
            .await,
        1
    );
}

#[tokio::test]
async fn invalid_series_get_400_with_the_reason_and_the_valid_ones_are_stored() {
    let app = spawn_app().await;
    let request = WriteRequest {
        timeseries: vec![
            series("good_total", &[("job", "x")], &[(5.0, T0)]),
            series("bad", &[("bad-label", "1")], &[(1.0, T0)]),
            series("too_old", &[], &[(1.0, 1_000)]),
        ],
    };

    let response = send_request(&app, &request).await;

    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert_eq!(body["accepted"], 1);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("2 samples were refused and 1 stored"),
        "{message}"
    );
    assert!(
        message.contains("timeseries[1] labels.bad-label"),
        "{message}"
    );
    let rejected: Vec<(u64, &str)> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rejected,
        [(1, "labels.bad-label"), (2, "samples[0].timestamp")]
    );
    let stored = points(&app, "good_total").await;
    assert_eq!(
        (stored.len(), stored[0].value, stored[0].kind.as_str()),
        (1, 5.0, "counter")
    );
    assert_eq!(app.sql_u64("SELECT count() FROM metric_points").await, 1);
}

#[tokio::test]
async fn bad_payloads_get_the_protocols_answers_and_leave_stored_data_intact() {
    let app = spawn_app_with(|s| s.ingest.limits.max_body_bytes = 64 * 1024).await;
    let valid = WriteRequest {
        timeseries: vec![series("kept", &[], &[(1.0, T0)])],
    };
    assert_eq!(send_request(&app, &valid).await.status(), 204);
    let bytes = valid.encode_to_vec();
    let truncated = snap::raw::Encoder::new()
        .compress_vec(&bytes[..bytes.len() - 4])
        .unwrap();
    let big = WriteRequest {
        timeseries: vec![series(
            "big",
            &[("pad", &"x".repeat(70 * 1024))],
            &[(1.0, T0)],
        )],
    };

    let cases = [
        (
            "application/json",
            "snappy",
            snappy(&valid),
            415,
            "unsupported_content_type",
            "application/x-protobuf",
        ),
        (
            "application/x-protobuf",
            "gzip",
            snappy(&valid),
            415,
            "unsupported_encoding",
            "snappy",
        ),
        (
            "application/x-protobuf",
            "snappy",
            bytes.clone(),
            400,
            "unreadable_body",
            "snappy",
        ),
        (
            "application/x-protobuf",
            "snappy",
            b"\x05garbage".to_vec(),
            400,
            "unreadable_body",
            "snappy",
        ),
        (
            "application/x-protobuf",
            "snappy",
            truncated,
            400,
            "invalid_json",
            "protobuf",
        ),
        (
            "application/x-protobuf",
            "snappy",
            snappy(&big),
            413,
            "payload_too_large",
            "limit",
        ),
    ];
    for (content_type, encoding, body, status, code, hint) in cases {
        let response = app.remote_write_as(content_type, encoding, body).await;
        assert_eq!(
            response.status(),
            status,
            "{content_type} {encoding} {hint}"
        );
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error"], code, "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(hint), "{status}: {message}");
    }
    let v2 = app
        .remote_write_as(
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            "snappy",
            snappy(&valid),
        )
        .await;
    assert_eq!(v2.status(), 415);

    assert_eq!(app.sql_u64("SELECT count() FROM metric_points").await, 1);
    assert_eq!(points(&app, "kept").await[0].value, 1.0);
}

#[tokio::test]
async fn rows_larger_than_the_whole_writer_queue_get_413_not_503() {
    let app = spawn_app_with(|s| {
        s.ingest.limits.max_body_bytes = 1_000;
        s.ingest.writer.queue_capacity_bytes = 1_000;
        s.ingest.writer.max_queue_share_per_key = 1.0;
    })
    .await;
    // 40 samples of one series: a small body, but rows larger than the queue.
    let samples: Vec<(f64, i64)> = (0..40).map(|i| (i as f64, T0 + i)).collect();
    let request = WriteRequest {
        timeseries: vec![series("burst", &[("a", "b")], &samples)],
    };

    let response = send_request(&app, &request).await;

    // A 503 would be retried by Prometheus for ever: this request can never fit.
    // (A queue full of other requests still answers 503: see backpressure.rs.)
    assert_eq!(response.status(), 413);
    assert!(response.headers().get("retry-after").is_none());
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"], "larger_than_queue");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("max_queue_share_per_key = 1000"),
        "{message}"
    );
    assert_eq!(app.sql_u64("SELECT count() FROM metric_points").await, 0);
}

#[tokio::test]
async fn a_missing_or_wrong_key_gets_401() {
    let app = spawn_app().await;
    let body = snappy(&WriteRequest::default());
    let response = app
        .http
        .post(format!("{}{PATH}", app.address))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}
