//! Classic Prometheus histograms: a real Prometheus scrapes a target whose
//! `_bucket{le}` counters grow on every scrape (one series restarts half-way),
//! remote-writes them to Hypercare, and Hypercare's `/v1/metrics/quantile`
//! answers what Prometheus' own `histogram_quantile(q, sum by (le)
//! (rate(x_bucket[w])))` answers at the same time, over the same window.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hypercare_tests::{INGEST_KEY, READ_KEY, eventually, spawn_app};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BOUNDS: [&str; 8] = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1"];

/// Observations per bucket (the last is +Inf) added by each scrape of a route,
/// varied by the scrape's number so that windows differ.
fn added(route: usize, scrape: u64) -> [u64; 9] {
    let k = scrape % 5;
    match route {
        0 => [1, 2 + k, 5, 9, 14 + 2 * k, 6, 3, 1 + k % 2, k % 3],
        _ => [0, 1, 2 + k, 3, 5, 11 + k, 9, 4, 1],
    }
}

/// The exposition after `scrape` scrapes: route `b` restarts (its counters go
/// back to zero) at the 8th.
fn exposition(scrape: u64) -> String {
    let mut text = String::from("# TYPE hc_latency_seconds histogram\n");
    for (route, name) in ["a", "b"].iter().enumerate() {
        let first = if route == 1 && scrape >= 8 { 8 } else { 0 };
        let mut per_bucket = [0u64; 9];
        for s in first..=scrape {
            for (total, n) in per_bucket.iter_mut().zip(added(route, s)) {
                *total += n;
            }
        }
        let mut cumulative = 0;
        for (i, n) in per_bucket.iter().enumerate() {
            cumulative += n;
            let le = BOUNDS.get(i).copied().unwrap_or("+Inf");
            text.push_str(&format!(
                "hc_latency_seconds_bucket{{route=\"{name}\",le=\"{le}\"}} {cumulative}\n"
            ));
        }
        text.push_str(&format!(
            "hc_latency_seconds_sum{{route=\"{name}\"}} {}\n\
             hc_latency_seconds_count{{route=\"{name}\"}} {cumulative}\n",
            cumulative as f64 * 0.05
        ));
    }
    text
}

/// A scrape target whose histogram grows on every request.
async fn serve_target() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let scrapes = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let scrapes = scrapes.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let body = exposition(scrapes.fetch_add(1, Ordering::SeqCst));
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(response.as_bytes()).await.ok();
                socket.shutdown().await.ok();
            });
        }
    });
    port
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Prometheus' answer to an instant query at `time` (epoch seconds).
async fn promql(port: u16, query: &str, time: i64) -> Option<f64> {
    let body: serde_json::Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/query"))
        .query(&[("query", query), ("time", &time.to_string())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "success", "{body}");
    let result = body["data"]["result"].as_array().unwrap();
    assert!(result.len() <= 1, "{body}");
    let text = result.first()?["value"][1].as_str().unwrap().to_owned();
    let value: f64 = text.parse().unwrap();
    (!value.is_nan()).then_some(value)
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap()
        .to_rfc3339()
}

#[tokio::test]
async fn classic_histogram_quantiles_match_prometheus_histogram_quantile() {
    if std::process::Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIPPED: the `prometheus` binary is not installed (scripts/install-deps --tests installs it)"
        );
        return;
    }
    // Arrange: the service, the target, Prometheus scraping every second and
    // remote-writing through one shard (samples arrive in order).
    let began = std::time::Instant::now();
    let app = spawn_app().await;
    eprintln!("app up after {:?}", began.elapsed());
    let target = serve_target().await;
    let prom_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n\
         scrape_configs:\n  - job_name: hc_target\n    scrape_interval: 1s\n\
         \x20   static_configs:\n      - targets: ['127.0.0.1:{target}']\n\
         remote_write:\n\
         \x20 - url: {}/v1/prometheus/write\n    authorization:\n      credentials: {INGEST_KEY}\n\
         \x20   queue_config: {{batch_send_deadline: 1s, min_backoff: 100ms, max_shards: 1}}\n",
        app.address
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let mut prometheus = tokio::process::Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // Act: wait (bounded) until Hypercare holds 14 s of scrapes, the restart included.
    let stored = |what: &str| {
        format!(
            "SELECT toUInt64({what}(toUInt64(timestamp) * 1000 + timestamp_ms)) \
             FROM metric_points WHERE name = 'hc_latency_seconds_bucket'"
        )
    };
    let (first_ms, last_ms) = eventually(
        "14 s of remote-written scrapes",
        Duration::from_secs(35),
        || async {
            let first_ms = app.sql_u64(&stored("min")).await;
            let last_ms = app.sql_u64(&stored("max")).await;
            (last_ms >= first_ms + 14_000 && first_ms > 0).then_some((first_ms, last_ms))
        },
    )
    .await;
    let span_ms = last_ms - first_ms;
    eprintln!("{span_ms} ms of scrapes after {:?}", began.elapsed());
    assert!(
        prometheus.try_wait().unwrap().is_none(),
        "Prometheus exited"
    );
    // Evaluate where both hold every sample: a second before the last one stored.
    let mut at = (last_ms / 1000) as i64 - 1;
    // The alerts' window is half-open, Prometheus' closed: no scrape exactly at its end.
    while app
        .sql_u64(&format!(
            "SELECT count() FROM metric_points WHERE name = 'hc_latency_seconds_bucket' \
             AND toUInt64(timestamp) = {at} AND timestamp_ms = 0"
        ))
        .await
        > 0
    {
        at -= 1;
    }

    // Assert: the same quantiles, for the family, by either name, per route;
    // the last window starts before the first scrape, where PromQL's
    // extrapolation stops at each bucket's zero point (differently per bucket).
    let from_before = at - (first_ms / 1000) as i64 + 3;
    let mut compared = 0;
    for (window, q, selector, filter) in [
        (from_before, 0.75, "", ""),
        (10, 0.95, "", ""),
        (10, 0.5, "", ""),
        (12, 0.99, "", ""),
        (5, 0.9, "", ""),
        (10, 0.95, "{route=\"b\"}", "&label.route=b"),
        (12, 0.25, "{route=\"a\"}", "&label.route=a"),
    ] {
        let expected = promql(
            prom_port,
            &format!(
                "histogram_quantile({q}, sum by (le) (rate(hc_latency_seconds_bucket{selector}[{window}s])))"
            ),
            at,
        )
        .await;
        for name in ["hc_latency_seconds", "hc_latency_seconds_bucket"] {
            let path = format!(
                "/v1/metrics/quantile?name={name}&q={q}&from={}&to={}{filter}",
                rfc3339(at - window),
                rfc3339(at)
            )
            .replace('+', "%2B");
            let (status, answer) = app.get_json_as(&path, READ_KEY).await;
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["kind"], "classic_histogram", "{answer}");
            let got = answer["value"].as_f64();
            match (expected, got) {
                (Some(e), Some(g)) => {
                    assert!(
                        ((g - e) / e).abs() < 1e-9,
                        "q={q} [{window}s]{selector}: Hypercare {g}, Prometheus {e} (span {span_ms} ms): {answer}"
                    );
                    eprintln!("q={q} [{window}s]{selector} {name}: Hypercare {g}, Prometheus {e}");
                    compared += 1;
                }
                other => panic!("q={q} [{window}s]{selector}: {other:?}: {answer}"),
            }
            let series = if filter.is_empty() { 2 } else { 1 };
            assert_eq!(answer["series"], series, "{answer}");
        }
    }
    assert_eq!(compared, 14);

    // The alerts' `quantile` condition reads the same family, per route: at
    // second `at - 1` its window is [at - 11 s, at), Prometheus' [11s] at `at`.
    let source: hypercare_alerts::rule::MetricSource = serde_json::from_value(serde_json::json!({
        "select": "hc_latency_seconds", "fn": "quantile", "quantile": 0.95,
        "window": "10s", "by": ["route"],
    }))
    .unwrap();
    let values = hypercare_alerts::evaluate::metric_values(
        &app.db,
        &source,
        "hc_latency_seconds",
        (at - 1) as u64,
    )
    .await
    .unwrap();
    assert_eq!(values.len(), 2, "{values:?}");
    for route in ["a", "b"] {
        let expected = promql(
            prom_port,
            &format!(
                "histogram_quantile(0.95, sum by (le, route) (rate(hc_latency_seconds_bucket{{route=\"{route}\"}}[11s])))"
            ),
            at,
        )
        .await
        .unwrap();
        let labels = std::collections::BTreeMap::from([("route".to_owned(), route.to_owned())]);
        let got = values[&labels];
        eprintln!("alert quantile route={route}: Hypercare {got}, Prometheus {expected}");
        assert!(
            ((got - expected) / expected).abs() < 1e-9,
            "route {route}: {got} vs {expected}"
        );
    }
}

/// OpenTelemetry's Prometheus compatibility names: a query or rule naming
/// `http_server_request_duration_seconds` reads OTLP's
/// `http.server.request.duration` (unit `s`), each point stored once.
#[tokio::test]
async fn an_otlp_metric_answers_to_its_prometheus_name() {
    let app = spawn_app().await;
    let now_ns = (chrono::Utc::now().timestamp() - 60) as u64 * 1_000_000_000;
    let t = now_ns.to_string();
    let body = serde_json::json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
        "scopeMetrics": [{"metrics": [
            {"name": "http.server.request.duration", "unit": "s", "histogram": {
                "aggregationTemporality": 2, "dataPoints": [{
                    "timeUnixNano": t, "count": "10", "sum": 3.1,
                    "explicitBounds": [0.1, 0.5, 1], "bucketCounts": ["2", "5", "2", "1"]}]}},
            {"name": "http.server.requests", "unit": "{request}", "sum": {
                "aggregationTemporality": 1, "isMonotonic": true,
                "dataPoints": [{"asInt": "250", "timeUnixNano": t}]}},
            {"name": "system.cpu.utilization", "unit": "1", "gauge": {
                "dataPoints": [{"asDouble": 0.5, "timeUnixNano": t}]}},
            {"name": "network.io.rate", "unit": "By/s", "gauge": {
                "dataPoints": [{"asDouble": 10.0, "timeUnixNano": t}]}},
            {"name": "queue_length", "gauge": {
                "dataPoints": [{"asDouble": 3.0, "timeUnixNano": t}]}}
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
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    // The names as the compatibility rules give them; a name already in
    // Prometheus form (`queue_length`, no unit) needs none.
    #[derive(Debug, clickhouse::Row, serde::Deserialize, PartialEq)]
    struct Names {
        prom_name: String,
        name: String,
    }
    let names: Vec<Names> = app
        .db
        .query("SELECT DISTINCT prom_name, name FROM metric_names ORDER BY name")
        .fetch_all()
        .await
        .unwrap();
    let pairs: Vec<(&str, &str)> = names
        .iter()
        .map(|n| (n.name.as_str(), n.prom_name.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            (
                "http.server.request.duration",
                "http_server_request_duration_seconds"
            ),
            ("http.server.requests", "http_server_requests_total"),
            ("network.io.rate", "network_io_rate_bytes_per_second"),
            ("system.cpu.utilization", "system_cpu_utilization_ratio"),
        ]
    );

    // The quantile by either name: the same answer from the one stored series.
    let mut answers = Vec::new();
    for name in [
        "http.server.request.duration",
        "http_server_request_duration_seconds",
    ] {
        let (status, answer) = app
            .get_json_as(&format!("/v1/metrics/quantile?name={name}&q=0.5"), READ_KEY)
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            (
                answer["kind"].as_str(),
                answer["series"].as_u64(),
                answer["count"].as_u64()
            ),
            (Some("histogram"), Some(1), Some(10)),
            "{answer}"
        );
        answers.push(answer["value"].clone());
    }
    assert_eq!(answers[0], answers[1]);
    assert!(
        answers[0].as_f64().is_some_and(|v| v > 0.1 && v <= 0.5),
        "{answers:?}"
    );

    // A rule naming the Prometheus names reads the OTLP points.
    let now = chrono::Utc::now().timestamp() as u64;
    for (select, function, expected) in [
        ("http_server_requests_total", "increase", 250.0),
        ("system_cpu_utilization_ratio", "last", 0.5),
        ("queue_length", "last", 3.0),
    ] {
        let source: hypercare_alerts::rule::MetricSource = serde_json::from_value(
            serde_json::json!({"select": select, "fn": function, "window": "5m"}),
        )
        .unwrap();
        let values = hypercare_alerts::evaluate::metric_values(&app.db, &source, select, now)
            .await
            .unwrap();
        assert_eq!(
            values.values().copied().collect::<Vec<_>>(),
            [expected],
            "{select}"
        );
    }
}
