use hypercare_tests::spawn_app;
use serde_json::{Value, json};

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct StoredPoint {
    name: String,
    kind: String,
    series_id: u64,
    label_keys: Vec<String>,
    label_values: Vec<String>,
    ts_ms: u64,
    value: f64,
    hist_bounds: Vec<f64>,
    hist_counts: Vec<u64>,
    hist_sum: f64,
    hist_count: u64,
}

const SELECT_POINTS: &str = "SELECT name, toString(kind) AS kind, series_id, label_keys, \
    label_values, toUInt64(timestamp) * 1000 + timestamp_ms AS ts_ms, value, hist_bounds, \
    hist_counts, hist_sum, hist_count FROM metric_points ORDER BY name";

#[tokio::test]
async fn gauges_counters_and_histograms_are_stored_as_sent() {
    let app = spawn_app().await;

    let response = app
        .post_metrics(&json!([
            {"name": "cpu_utilisation", "kind": "gauge", "labels": {"host": "web-1"},
             "timestamp": "2026-11-21T09:30:00Z", "value": 0.73},
            {"name": "http_requests", "kind": "counter", "labels": {"status": "500", "service": "checkout"},
             "timestamp": 1_795_253_400_500_u64, "value": 1234},
            {"name": "http_request_duration_seconds", "kind": "histogram", "labels": {"service": "checkout"},
             "timestamp": "2026-11-21T09:30:00Z",
             "bounds": [0.1, 0.5, 1.0], "counts": [80, 15, 4, 1], "sum": 21.7, "count": 100}
        ]))
        .await;

    assert_eq!(response.status(), 202);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"accepted": 3, "rejected": []})
    );
    let rows: Vec<StoredPoint> = app.db.query(SELECT_POINTS).fetch_all().await.unwrap();
    assert_eq!(rows.len(), 3);
    let gauge = &rows[0];
    assert_eq!(
        (gauge.name.as_str(), gauge.kind.as_str(), gauge.value),
        ("cpu_utilisation", "gauge", 0.73)
    );
    assert_eq!(
        (gauge.label_keys.clone(), gauge.label_values.clone()),
        (vec!["host".to_owned()], vec!["web-1".to_owned()])
    );
    assert_eq!(gauge.ts_ms, 1_795_253_400_000);
    let histogram = &rows[1];
    assert_eq!(histogram.kind, "histogram");
    assert_eq!(histogram.hist_bounds, vec![0.1, 0.5, 1.0]);
    assert_eq!(histogram.hist_counts, vec![80, 15, 4, 1]);
    assert_eq!((histogram.hist_sum, histogram.hist_count), (21.7, 100));
    let counter = &rows[2];
    assert_eq!(
        (counter.kind.as_str(), counter.value, counter.ts_ms),
        ("counter", 1234.0, 1_795_253_400_500)
    );
    // Labels are stored sorted by key, so a series reads the same however it was sent.
    assert_eq!(counter.label_keys, vec!["service", "status"]);
    assert_eq!(counter.label_values, vec!["checkout", "500"]);
    assert_ne!(counter.series_id, histogram.series_id);
}

#[tokio::test]
async fn the_same_series_gets_the_same_id_whatever_the_label_order() {
    let app = spawn_app().await;
    app.post_metrics(&json!([
        {"name": "queue_depth", "kind": "gauge", "labels": {"a": "1", "b": "2"}, "value": 1, "timestamp": "2026-11-21T09:30:00Z"},
        {"name": "queue_depth", "kind": "gauge", "labels": {"b": "2", "a": "1"}, "value": 2, "timestamp": "2026-11-21T09:31:00Z"},
        {"name": "queue_depth", "kind": "gauge", "labels": {"a": "1", "b": "3"}, "value": 3, "timestamp": "2026-11-21T09:32:00Z"}
    ]))
    .await;

    assert_eq!(
        app.sql_u64("SELECT uniqExact(series_id) FROM metric_points")
            .await,
        2
    );
}

#[tokio::test]
async fn a_retried_batch_of_points_is_folded_into_one() {
    let app = spawn_app().await;
    let batch = json!([
        {"name": "rps", "kind": "gauge", "value": 10, "timestamp": "2026-11-21T09:30:00Z"},
        {"name": "rps", "kind": "gauge", "value": 12, "timestamp": "2026-11-21T09:31:00Z"}
    ]);

    for _ in 0..3 {
        assert_eq!(app.post_metrics(&batch).await.status(), 202);
    }

    assert_eq!(
        app.sql_u64("SELECT count() FROM metric_points FINAL").await,
        2
    );
    assert_eq!(
        app.sql_u64("SELECT toUInt64(sum(value)) FROM metric_points FINAL")
            .await,
        22
    );
}

#[tokio::test]
async fn bad_points_are_named_and_the_good_ones_are_stored() {
    let app = spawn_app().await;

    let response = app
        .post_metrics(&json!([
            {"name": "ok", "kind": "gauge", "value": 1},
            {"name": "lat", "kind": "histogram", "bounds": [1, 2], "counts": [1, 1], "sum": 1, "count": 2},
            {"name": "neg", "kind": "counter", "value": -5},
            {"name": "x", "kind": "timer", "value": 1}
        ]))
        .await;

    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 1);
    let fields: Vec<&str> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["counts", "value", "kind"]);
    assert_eq!(app.sql_u64("SELECT count() FROM metric_points").await, 1);
}
