//! OTLP/HTTP with the real OpenTelemetry SDK and exporter (`opentelemetry-otlp`,
//! HTTP protobuf and HTTP JSON), then SQL checks of what arrived; and the
//! protocol's own answers to bad payloads.

use std::collections::HashMap;

use opentelemetry::KeyValue;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_otlp::{LogExporter, MetricExporter, Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{SdkMeterProvider, Temporality};
use prost::Message;
use serde_json::{Value, json};

use hypercare_tests::{INGEST_KEY, READ_KEY, TestApp, spawn_app, spawn_app_with};

fn headers(key: &str) -> HashMap<String, String> {
    HashMap::from([("authorization".to_owned(), format!("Bearer {key}"))])
}

fn resource() -> Resource {
    Resource::builder()
        .with_service_name("checkout")
        .with_attribute(KeyValue::new("deployment.environment", "prod"))
        .build()
}

/// Records a known set of instruments through the SDK and exports them once.
fn export_metrics(endpoint: String, protocol: Protocol, temporality: Temporality) {
    let exporter = MetricExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(endpoint)
        .with_headers(headers(INGEST_KEY))
        .with_temporality(temporality)
        .build()
        .unwrap();
    let provider = SdkMeterProvider::builder()
        .with_periodic_exporter(exporter)
        .with_resource(resource())
        .build();
    let meter = provider.meter("shop.orders");
    let orders = meter.u64_counter("orders").build();
    orders.add(3, &[KeyValue::new("region", "eu")]);
    orders.add(4, &[KeyValue::new("region", "eu")]);
    orders.add(5, &[KeyValue::new("region", "us")]);
    let in_flight = meter.i64_up_down_counter("carts_open").build();
    in_flight.add(10, &[]);
    in_flight.add(-3, &[]);
    let queue = meter.f64_gauge("queue_depth").build();
    queue.record(42.5, &[KeyValue::new("queue", "payments")]);
    let latency = meter
        .f64_histogram("checkout_latency_ms")
        .with_boundaries(vec![100.0, 200.0, 500.0])
        .build();
    for ms in [50.0, 150.0, 150.0, 300.0, 900.0] {
        latency.record(ms, &[KeyValue::new("route", "/pay")]);
    }
    // Shutting down exports what was recorded, once.
    provider.shutdown().unwrap();
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct Row {
    name: String,
    kind: String,
    temporality: String,
    labels: Vec<(String, String)>,
    resource: Vec<(String, String)>,
    scope_name: String,
    value: f64,
    hist_bounds: Vec<f64>,
    hist_counts: Vec<u64>,
    hist_sum: f64,
    hist_count: u64,
    age_secs: i64,
}

async fn stored_points(app: &TestApp) -> Vec<Row> {
    app.db
        .query(
            "SELECT name, toString(kind) AS kind, toString(temporality) AS temporality, \
             arrayMap((k, v) -> (k, v), label_keys, label_values) AS labels, \
             arrayMap((k, v) -> (k, v), resource_keys, resource_values) AS resource, \
             scope_name, value, hist_bounds, hist_counts, hist_sum, hist_count, \
             toInt64(now()) - toInt64(timestamp) AS age_secs \
             FROM metric_points ORDER BY name, labels",
        )
        .fetch_all()
        .await
        .unwrap()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn check_sdk_metrics(protocol: Protocol) {
    let app = spawn_app().await;
    let endpoint = format!("{}/v1/otlp/v1/metrics", app.address);
    tokio::task::spawn_blocking(move || {
        export_metrics(endpoint, protocol, Temporality::Cumulative)
    })
    .await
    .unwrap();

    let rows = stored_points(&app).await;
    let names: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.name.as_str(), r.kind.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("carts_open", "gauge"),
            ("checkout_latency_ms", "histogram"),
            ("orders", "counter"),
            ("orders", "counter"),
            ("queue_depth", "gauge"),
        ],
        "{rows:#?}"
    );
    for row in &rows {
        for attribute in pairs(&[
            ("deployment.environment", "prod"),
            ("service.name", "checkout"),
            ("telemetry.sdk.language", "rust"),
        ]) {
            assert!(row.resource.contains(&attribute), "{row:?}");
        }
        assert_eq!(row.scope_name, "shop.orders");
        assert_eq!(row.temporality, "cumulative");
        assert!(
            row.age_secs.abs() < 60,
            "timestamp is the export time: {row:?}"
        );
    }
    // An up-down counter is a level: stored as a gauge.
    assert_eq!(rows[0].value, 7.0);
    assert_eq!(rows[0].labels, pairs(&[("service", "checkout")]));
    let histogram = &rows[1];
    assert_eq!(histogram.hist_bounds, vec![100.0, 200.0, 500.0]);
    assert_eq!(histogram.hist_counts, vec![1, 2, 1, 1]);
    assert_eq!((histogram.hist_sum, histogram.hist_count), (1550.0, 5));
    assert_eq!(
        histogram.labels,
        pairs(&[("route", "/pay"), ("service", "checkout")])
    );
    assert_eq!(
        (rows[2].labels.clone(), rows[2].value),
        (pairs(&[("region", "eu"), ("service", "checkout")]), 7.0)
    );
    assert_eq!(
        (rows[3].labels.clone(), rows[3].value),
        (pairs(&[("region", "us"), ("service", "checkout")]), 5.0)
    );
    assert_eq!(rows[4].value, 42.5);
}

#[tokio::test]
async fn sdk_metrics_over_http_protobuf_are_stored_exactly() {
    check_sdk_metrics(Protocol::HttpBinary).await;
}

#[tokio::test]
async fn sdk_metrics_over_http_json_are_stored_exactly() {
    check_sdk_metrics(Protocol::HttpJson).await;
}

#[tokio::test]
async fn delta_temporality_is_kept() {
    let app = spawn_app().await;
    let endpoint = format!("{}/v1/otlp/v1/metrics", app.address);
    tokio::task::spawn_blocking(move || {
        export_metrics(endpoint, Protocol::HttpBinary, Temporality::Delta)
    })
    .await
    .unwrap();
    let rows = stored_points(&app).await;
    let orders: Vec<&Row> = rows.iter().filter(|r| r.name == "orders").collect();
    assert_eq!(orders.len(), 2);
    assert!(
        orders.iter().all(|r| r.temporality == "delta"),
        "{orders:?}"
    );
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct LogRow {
    service: String,
    severity_number: u8,
    severity_text: String,
    body: String,
    attributes: Vec<(String, String)>,
    trace_id: String,
    span_id: String,
    scope_name: String,
}

fn export_logs(endpoint: String, protocol: Protocol) {
    let exporter = LogExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(endpoint)
        .with_headers(headers(INGEST_KEY))
        .build()
        .unwrap();
    let provider = SdkLoggerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(resource())
        .build();
    let logger = provider.logger("shop.payments");
    let mut record = logger.create_log_record();
    record.set_severity_number(Severity::Error);
    record.set_severity_text("ERROR");
    record.set_body(AnyValue::from("payment declined".to_owned()));
    record.add_attribute("order_id", 1234_i64);
    record.add_attribute("provider", "acme");
    record.set_trace_context(
        TraceId::from_hex("5b8efff798038103d269b633813fc60c").unwrap(),
        SpanId::from_hex("eee19b7ec3c1b174").unwrap(),
        None,
    );
    logger.emit(record);
    let mut info = logger.create_log_record();
    info.set_severity_number(Severity::Info);
    info.set_body(AnyValue::from("checkout page served".to_owned()));
    logger.emit(info);
    provider.force_flush().unwrap();
    provider.shutdown().unwrap();
}

async fn check_sdk_logs(protocol: Protocol) {
    let app = spawn_app().await;
    let endpoint = format!("{}/v1/otlp/v1/logs", app.address);
    tokio::task::spawn_blocking(move || export_logs(endpoint, protocol))
        .await
        .unwrap();
    let rows: Vec<LogRow> = app
        .db
        .query(
            "SELECT service, severity_number, severity_text, body, \
             arrayMap((k, v) -> (k, v), attribute_keys, attribute_values) AS attributes, \
             trace_id, span_id, scope_name FROM logs ORDER BY severity_number DESC",
        )
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let error = &rows[0];
    assert_eq!(
        (
            error.service.as_str(),
            error.severity_number,
            error.severity_text.as_str()
        ),
        ("checkout", 17, "ERROR")
    );
    assert_eq!(error.body, "payment declined");
    assert_eq!(
        error.attributes,
        pairs(&[("order_id", "1234"), ("provider", "acme")])
    );
    assert_eq!(error.trace_id, "5b8efff798038103d269b633813fc60c");
    assert_eq!(error.span_id, "eee19b7ec3c1b174");
    assert_eq!(error.scope_name, "shop.payments");
    assert_eq!(
        (rows[1].severity_number, rows[1].body.as_str()),
        (9, "checkout page served")
    );
}

#[tokio::test]
async fn sdk_logs_over_http_protobuf_are_stored_exactly() {
    check_sdk_logs(Protocol::HttpBinary).await;
}

#[tokio::test]
async fn sdk_logs_over_http_json_are_stored_exactly() {
    check_sdk_logs(Protocol::HttpJson).await;
}

/// The JSON example of the OTLP spec's shape: a sum with `asInt` as a string,
/// an exponential histogram, a summary, and one bad point among good ones.
#[tokio::test]
async fn json_partial_success_stores_the_good_points_and_counts_the_bad() {
    let app = spawn_app().await;
    let body = json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "search"}}]},
        "scopeMetrics": [{"scope": {"name": "lib"}, "metrics": [
            {"name": "requests", "unit": "1", "sum": {"aggregationTemporality": 1, "isMonotonic": true,
              "dataPoints": [
                {"asInt": "250", "timeUnixNano": "1795341600000000000",
                 "attributes": [{"key": "code", "value": {"intValue": "200"}}]},
                {"asInt": "-1", "timeUnixNano": "1795341600000000000",
                 "attributes": [{"key": "code", "value": {"intValue": "500"}}]}
              ]}},
            {"name": "latency", "exponentialHistogram": {"aggregationTemporality": 1, "dataPoints": [
                {"timeUnixNano": "1795341600000000000", "scale": 0, "count": "8", "sum": 30,
                 "zeroCount": "1", "positive": {"offset": 1, "bucketCounts": ["4", "3"]}}
            ]}},
            {"name": "rpc_duration", "summary": {"dataPoints": [
                {"timeUnixNano": "1795341600000000000", "count": "10", "sum": 4.5,
                 "quantileValues": [{"quantile": 0.5, "value": 0.3}, {"quantile": 0.99, "value": 1.2}]}
            ]}}
        ]}]
    }]});
    let response = app
        .http
        .post(format!("{}/v1/otlp/v1/metrics", app.address))
        .bearer_auth(INGEST_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["partialSuccess"]["rejectedDataPoints"], "1",
        "{answer}"
    );
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("metrics[0].sum.dataPoints[1].value") && message.contains("negative"),
        "{message}"
    );

    let rows = stored_points(&app).await;
    let summary: Vec<(String, String, f64)> = rows
        .iter()
        .map(|r| (r.name.clone(), r.kind.clone(), r.value))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("latency".to_owned(), "histogram".to_owned(), 0.0),
            ("requests".to_owned(), "counter".to_owned(), 250.0),
            ("rpc_duration".to_owned(), "gauge".to_owned(), 0.3),
            ("rpc_duration".to_owned(), "gauge".to_owned(), 1.2),
            ("rpc_duration_count".to_owned(), "counter".to_owned(), 10.0),
            ("rpc_duration_sum".to_owned(), "counter".to_owned(), 4.5),
        ]
    );
    let latency = &rows[0];
    // zero bucket (.., 0], then (0, 2] empty, (2, 4] 4, (4, 8] 3, (8, +inf) empty.
    assert_eq!(latency.hist_bounds, vec![0.0, 2.0, 4.0, 8.0]);
    assert_eq!(latency.hist_counts, vec![1, 0, 4, 3, 0]);
    assert_eq!(latency.temporality, "delta");
    assert_eq!(rows[1].temporality, "delta");
    assert_eq!(
        rows[1].labels,
        pairs(&[("code", "200"), ("service", "search")])
    );
    assert_eq!(
        rows[2].labels,
        pairs(&[("quantile", "0.5"), ("service", "search")])
    );
}

#[tokio::test]
async fn bad_payloads_get_the_protocols_answers_and_leave_data_intact() {
    let app = spawn_app_with(|settings| settings.ingest.limits.max_body_bytes = 64 * 1024).await;
    let url = format!("{}/v1/otlp/v1/metrics", app.address);
    let endpoint = url.clone();
    tokio::task::spawn_blocking(move || {
        export_metrics(endpoint, Protocol::HttpBinary, Temporality::Cumulative)
    })
    .await
    .unwrap();
    let before = app.sql_u64("SELECT count() FROM metric_points").await;
    assert_eq!(before, 5);

    #[derive(Clone, PartialEq, prost::Message)]
    struct Status {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    let post = |content_type: &'static str, body: Vec<u8>, key: &'static str| {
        app.http
            .post(&url)
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    // A truncated protobuf: 400 with a google.rpc.Status in protobuf.
    let mut valid =
        opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
            resource_metrics: vec![Default::default()],
        }
        .encode_to_vec();
    valid.extend_from_slice(&[0x0a, 0x20, 0x01]);
    let response = post("application/x-protobuf", valid, INGEST_KEY)
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/x-protobuf"
    );
    let status = Status::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, 3);
    assert!(status.message.contains("protobuf"), "{}", status.message);

    // Invalid JSON: 400 with the status in JSON.
    let response = post(
        "application/json",
        b"{\"resourceMetrics\": [".to_vec(),
        INGEST_KEY,
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 400);
    let status: Value = response.json().await.unwrap();
    assert!(
        status["message"].as_str().unwrap().contains("JSON"),
        "{status}"
    );

    // A content type OTLP does not use: 415.
    let response = post("text/plain", b"hello".to_vec(), INGEST_KEY)
        .await
        .unwrap();
    assert_eq!(response.status(), 415);

    // Over the body limit: 413, not retried by exporters.
    let response = post("application/x-protobuf", vec![0u8; 128 * 1024], INGEST_KEY)
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    // A key without the ingest scope: 403; no key: 401.
    let response = post("application/x-protobuf", Vec::new(), READ_KEY)
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = app
        .http
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // An empty request is a success with an empty answer.
    let response = post("application/x-protobuf", Vec::new(), INGEST_KEY)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.unwrap().is_empty());

    assert_eq!(
        app.sql_u64("SELECT count() FROM metric_points").await,
        before
    );
}

#[tokio::test]
async fn a_retried_log_export_is_not_counted_twice() {
    let app = spawn_app().await;
    let body = json!({"resourceLogs": [{"resource": {"attributes": [
    {"key": "service.name", "value": {"stringValue": "checkout"}}]},
    "scopeLogs": [{"logRecords": [
        {"timeUnixNano": "1795341600000000000", "severityNumber": 13, "body": {"stringValue": "slow"}},
        {"timeUnixNano": "1795341600000000000", "severityNumber": 13, "body": {"stringValue": "slower"}}
    ]}]}]});
    for _ in 0..2 {
        let response = app
            .http
            .post(format!("{}/v1/otlp/v1/logs", app.address))
            .bearer_auth(INGEST_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    }
    assert_eq!(app.sql_u64("SELECT count() FROM logs").await, 4);
    assert_eq!(app.sql_u64("SELECT count() FROM logs FINAL").await, 2);
    assert_eq!(app.sql_u64("SELECT uniqExact(log_id) FROM logs").await, 2);
}

/// The same observations sent as an OTLP histogram (by the SDK) and as a
/// `/v1/metrics` histogram answer the same percentile query.
#[tokio::test]
async fn otlp_and_api_histograms_answer_the_same_percentile_query() {
    let app = spawn_app().await;
    let endpoint = format!("{}/v1/otlp/v1/metrics", app.address);
    tokio::task::spawn_blocking(move || {
        export_metrics(endpoint, Protocol::HttpBinary, Temporality::Cumulative)
    })
    .await
    .unwrap();
    // The SDK recorded 50, 150, 150, 300, 900 ms for service "checkout"; send the
    // same for service "web" through the JSON API.
    let response = app
        .post_metrics(&json!({"name": "checkout_latency_ms", "kind": "histogram",
            "labels": {"service": "web", "route": "/pay"},
            "bounds": [100, 200, 500], "counts": [1, 2, 1, 1], "sum": 1550, "count": 5}))
        .await;
    assert_eq!(response.status(), 202);

    let quantile = |service: &'static str, q: f64| {
        let app = &app;
        async move {
            let response = app
                .get(
                    &format!(
                        "/v1/metrics/quantile?name=checkout_latency_ms&q={q}&label.service={service}"
                    ),
                    Some(READ_KEY),
                )
                .await;
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    for q in [0.5, 0.9] {
        let otlp = quantile("checkout", q).await;
        let api = quantile("web", q).await;
        assert_eq!(otlp["value"], api["value"], "{otlp} vs {api}");
        assert_eq!(otlp["counts"], json!([1, 2, 1, 1]));
        assert_eq!(otlp["series"], 1);
    }
    // 5 observations, the percentile rule's rank 1 + q (n - 1): for q = 0.5, rank 3
    // falls in (100, 200] holding the 2nd and 3rd: 100 + 100 * (3 - 1) / 2 = 200
    // (the exact values' median is 150, at a bucket's upper bound 200). Rank
    // 1 + 0.9 * 4 = 4.6 is in (500, +Inf): the last bound.
    assert_eq!(quantile("web", 0.5).await["value"], 200.0);
    assert_eq!(quantile("web", 0.9).await["value"], 500.0);

    // Without a label filter the two series add up.
    let both = app
        .get(
            "/v1/metrics/quantile?name=checkout_latency_ms&q=0.5",
            Some(READ_KEY),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        (both["count"].as_u64(), both["series"].as_u64()),
        (Some(10), Some(2))
    );

    let bad = app
        .get("/v1/metrics/quantile?name=x&q=2", Some(READ_KEY))
        .await;
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["field"], "q");
}

/// A cumulative series answers the increase within the window, not its total.
#[tokio::test]
async fn a_cumulative_histogram_counts_only_what_the_window_added() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp_millis();
    let point = |ms: i64, counts: [u64; 3]| {
        json!({"name": "lat", "kind": "histogram", "labels": {"service": "api"}, "timestamp": ms,
               "bounds": [1, 2], "counts": counts, "sum": 0, "count": counts.iter().sum::<u64>()})
    };
    let response = app
        .post_metrics(&json!([
            point(now - 2 * 3600 * 1000, [10, 0, 0]),
            point(now - 30 * 60 * 1000, [10, 4, 0]),
            point(now - 60 * 1000, [10, 8, 0]),
        ]))
        .await;
    assert_eq!(response.status(), 202);
    // Sent twice: a retried batch must not change the answer.
    app.post_metrics(&json!([point(now - 60 * 1000, [10, 8, 0])]))
        .await;
    let answer = app
        .get("/v1/metrics/quantile?name=lat&q=0.5", Some(READ_KEY))
        .await
        .json::<Value>()
        .await
        .unwrap();
    // The last hour added 8 observations, all in (1, 2].
    assert_eq!(answer["counts"], json!([0, 8, 0]), "{answer}");
    // The percentile rule's rank 1 + 0.5 x 7 = 4.5 among 8 spread evenly in
    // (1, 2] (1.125, 1.25, ..., 2): between 1.5 and 1.625.
    assert_eq!(answer["value"], 1.5625);
}
