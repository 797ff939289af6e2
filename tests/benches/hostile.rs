//! Peak memory of the release service under hostile bodies (issue 12), beside
//! its idle and normal-load figures from the same run:
//!
//! ```text
//! cargo build --release -p hypercare
//! cargo bench -p hypercare-tests --bench hostile [-- --concurrency 20]
//! ```
//!
//! The bench starts a real ClickHouse (the test harness's) and the release
//! `hypercare serve` as its own process with the default limits, then sends,
//! protocol by protocol, `concurrency` concurrent bodies at once and reads the
//! service's peak RSS (`VmHWM`, reset before each burst through
//! `/proc/<pid>/clear_refs`). First the hostile bodies, from an idle process:
//! a 10 KB gzip JSON array of 3.49 M `{}`, the same as NDJSON, the 102 KB
//! remote-write series of 100 x 4,000-char labels x 10,000 samples, 10 MB
//! OTLP protobuf bodies of empty log records and of empty attributes, an
//! OTLP/JSON body of small objects, and a 500 KB Segment batch of empty calls;
//! then all of them at once; then, as the baseline, normal maximum-size
//! bodies (10,000 records of about 1 KB: what a legitimate client may send).
//! Each line says the answers' statuses; the service must stay alive.
//!
//! Options (`--name value` after `--`): `concurrency` (20), `binary` (default:
//! the release `hypercare` beside this bench, `target/release/hypercare`).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use hypercare_ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use prost::Message;

const KEY: &str = "bench-ingest-key-0123456789";

/// One kind of request: where it goes, its headers and its body.
struct Shot {
    name: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: Bytes,
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn snappy(request: &WriteRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .unwrap()
}

fn json(name: &'static str, path: &'static str, content_type: &'static str, body: Vec<u8>) -> Shot {
    Shot {
        name,
        path,
        headers: vec![("content-type", content_type), ("content-encoding", "gzip")],
        body: gzip(&body).into(),
    }
}

/// 10,000 events of about 1 KB each: the largest normal request.
fn normal_events() -> Shot {
    let padding = "p".repeat(900);
    let body: String = (0..10_000)
        .map(|i| {
            serde_json::json!({
                "event": "bench_signup",
                "user_id": format!("u-{i}"),
                "properties": {"plan": "pro", "note": padding},
            })
            .to_string()
                + "\n"
        })
        .collect();
    json(
        "events NDJSON",
        "/v1/events",
        "application/x-ndjson",
        body.into_bytes(),
    )
}

fn normal_remote_write() -> Shot {
    let now = Utc::now().timestamp_millis();
    let request = WriteRequest {
        timeseries: (0..10_000)
            .map(|i| TimeSeries {
                labels: [
                    ("__name__", "bench_requests_total".to_owned()),
                    ("instance", format!("web-{}", i % 100)),
                    ("job", "api".to_owned()),
                    ("path", format!("/v1/route/{}", i % 50)),
                    ("pad", "x".repeat(600)),
                ]
                .into_iter()
                .map(|(k, v)| Label {
                    name: k.into(),
                    value: v.into(),
                })
                .collect(),
                samples: vec![Sample {
                    value: i as f64,
                    timestamp: now,
                }],
            })
            .collect(),
    };
    Shot {
        name: "remote write",
        path: "/v1/prometheus/write",
        headers: remote_write_headers(),
        body: snappy(&request).into(),
    }
}

fn normal_otlp_logs() -> Shot {
    let now = Utc::now().timestamp_nanos_opt().unwrap() as u64;
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: (0..10_000)
                    .map(|i| LogRecord {
                        time_unix_nano: now + i,
                        severity_number: 9,
                        body: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                            value: Some(
                                opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                                    format!("request {i} {}", "y".repeat(900)),
                                ),
                            ),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    Shot {
        name: "OTLP logs protobuf",
        path: "/v1/otlp/v1/logs",
        headers: vec![
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "gzip"),
        ],
        body: gzip(&request.encode_to_vec()).into(),
    }
}

fn remote_write_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("content-type", "application/x-protobuf"),
        ("content-encoding", "snappy"),
        ("x-prometheus-remote-write-version", "0.1.0"),
    ]
}

fn hostile_shots() -> Vec<Shot> {
    let empties = 3_490_000;
    let array = format!("[{}]", vec!["{}"; empties].join(","));
    let ndjson = "{}\n".repeat(empties);
    let now = Utc::now().timestamp_millis();
    let mut labels = vec![Label {
        name: "__name__".into(),
        value: "hostile_gauge".into(),
    }];
    labels.extend((0..100).map(|i| Label {
        name: format!("l{i:03}").into(),
        value: "x".repeat(4_000).into(),
    }));
    let wide = WriteRequest {
        timeseries: vec![TimeSeries {
            labels,
            samples: (0..10_000)
                .map(|i| Sample {
                    value: 1.0,
                    timestamp: now - i,
                })
                .collect(),
        }],
    };
    let empty_logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(); 5_000_000],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    let empty_attributes = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "m".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![KeyValue::default(); 5_000_000],
                            value: Some(number_data_point::Value::AsDouble(1.0)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    let small_objects = format!(
        "{{\"resourceLogs\":[{{\"scopeLogs\":[{{\"logRecords\":[{{\"body\":{{\"stringValue\":\"x\"}}}}],\"scope\":{{\"attributes\":[{}]}}}}]}}]}}",
        vec!["{\"key\":\"a\"}"; 700_000].join(",")
    );
    let segment = format!("{{\"batch\":[{}]}}", vec!["{}"; 160_000].join(","));
    vec![
        json(
            "JSON array of 3.49 M {}",
            "/v1/events",
            "application/json",
            array.into_bytes(),
        ),
        json(
            "NDJSON of 3.49 M {}",
            "/v1/events",
            "application/x-ndjson",
            ndjson.into_bytes(),
        ),
        Shot {
            name: "remote write 100 x 4,000-char labels x 10,000 samples",
            path: "/v1/prometheus/write",
            headers: remote_write_headers(),
            body: snappy(&wide).into(),
        },
        json(
            "OTLP logs protobuf, 5 M empty records",
            "/v1/otlp/v1/logs",
            "application/x-protobuf",
            empty_logs,
        ),
        json(
            "OTLP metrics protobuf, 5 M empty attributes",
            "/v1/otlp/v1/metrics",
            "application/x-protobuf",
            empty_attributes,
        ),
        json(
            "OTLP/JSON logs, 700 k small objects",
            "/v1/otlp/v1/logs",
            "application/json",
            small_objects.into_bytes(),
        ),
        json(
            "Segment batch of 160 k empty calls",
            "/v1/segment/v1/batch",
            "application/json",
            segment.into_bytes(),
        ),
    ]
}

/// The service under test, as its own process.
struct Service {
    child: Child,
    address: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Service {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the service died");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    fn rss_mb(&self) -> f64 {
        self.status_kb("VmRSS:") as f64 / 1024.0
    }

    fn peak_mb(&self) -> f64 {
        self.status_kb("VmHWM:") as f64 / 1024.0
    }

    /// Resets the peak to the current RSS (Linux: `5` in `clear_refs`).
    fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").ok();
    }
}

fn binary(args: &[String]) -> PathBuf {
    if let Some(path) = args
        .iter()
        .position(|a| a == "--binary")
        .and_then(|i| args.get(i + 1))
    {
        return path.into();
    }
    // target/release/deps/hostile-<hash> -> target/release/hypercare
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("hypercare")
}

async fn start(binary: &PathBuf, dir: &std::path::Path) -> Service {
    let clickhouse = hypercare_tests::clickhouse().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("hypercare.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n[clickhouse]\nurl = \"{}\"\ndatabase = \"bench_hostile_{}\"\n[[auth.keys]]\nname = \"bench\"\nkey = \"{KEY}\"\nscopes = [\"ingest\"]\n",
            dir.display(),
            clickhouse.url,
            std::process::id()
        ),
    )
    .unwrap();
    let child = Command::new(binary)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (build it first: cargo build --release -p hypercare)",
                binary.display()
            )
        });
    let service = Service {
        child,
        address: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{}/readyz", service.address)).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    service
}

/// Sends `concurrency` copies of `shot` at once; gives the statuses seen.
async fn burst(
    service: &Service,
    http: &reqwest::Client,
    shot: &Shot,
    concurrency: usize,
) -> String {
    let sends = (0..concurrency).map(|_| {
        let mut request = http
            .post(format!("{}{}", service.address, shot.path))
            .bearer_auth(KEY)
            .body(shot.body.clone());
        for (k, v) in &shot.headers {
            request = request.header(*k, *v);
        }
        request.send()
    });
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for result in futures_util::future::join_all(sends).await {
        let key = match result {
            Ok(r) => r.status().as_u16().to_string(),
            Err(e) => format!("error: {e}"),
        };
        *statuses.entry(key).or_default() += 1;
    }
    statuses
        .iter()
        .map(|(k, n)| format!("{n} x {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let concurrency = hypercare_tests::bench::option(&args, "concurrency", 20) as usize;
    let binary = binary(&args);
    let dir = tempfile::tempdir().unwrap();
    let service = start(&binary, dir.path()).await;
    // No pooled connections: one closed by the server's keep-alive between
    // bursts would show as a send error unrelated to the body.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "service {} (pid {}), default limits, {concurrency} concurrent bodies per line",
        binary.display(),
        service.pid()
    );
    println!("  idle: RSS {:.0} MB", service.rss_mb());

    println!("  hostile bodies:");
    let mut hostile_peak: f64 = 0.0;
    let shots = hostile_shots();
    for shot in &shots {
        service.reset_peak();
        let started = Instant::now();
        let before = service.rss_mb();
        let statuses = burst(&service, &http, shot, concurrency).await;
        let peak = service.peak_mb();
        hostile_peak = hostile_peak.max(peak);
        println!(
            "    {:<56} body {:>7} B  RSS before {:>5.0} MB, peak {:>5.0} MB  {:>5.1} s  [{statuses}]",
            shot.name,
            shot.body.len(),
            before,
            peak,
            started.elapsed().as_secs_f64()
        );
    }
    // Every hostile body of every protocol at once.
    service.reset_peak();
    let before = service.rss_mb();
    let started = Instant::now();
    let all = futures_util::future::join_all(
        shots
            .iter()
            .map(|shot| burst(&service, &http, shot, concurrency)),
    )
    .await;
    let peak = service.peak_mb();
    hostile_peak = hostile_peak.max(peak);
    println!(
        "    {:<56} {:>9}   RSS before {before:>5.0} MB, peak {peak:>5.0} MB  {:>5.1} s  [{}]",
        format!(
            "all {} hostile kinds at once ({} requests)",
            shots.len(),
            shots.len() * concurrency
        ),
        "",
        started.elapsed().as_secs_f64(),
        all.join("; ")
    );
    println!("  normal maximum-size bodies (baseline, same process, after the hostile ones):");
    let mut normal_peak: f64 = 0.0;
    for shot in [normal_events(), normal_remote_write(), normal_otlp_logs()] {
        service.reset_peak();
        let started = Instant::now();
        let before = service.rss_mb();
        let statuses = burst(&service, &http, &shot, concurrency).await;
        let peak = service.peak_mb();
        normal_peak = normal_peak.max(peak);
        println!(
            "    {:<56} body {:>7} B  RSS before {:>5.0} MB, peak {:>5.0} MB  {:>5.1} s  [{statuses}]",
            shot.name,
            shot.body.len(),
            before,
            peak,
            started.elapsed().as_secs_f64()
        );
    }

    let alive = http
        .get(format!("{}/healthz", service.address))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    println!(
        "  peak RSS: normal {normal_peak:.0} MB, hostile {hostile_peak:.0} MB (target < 1536 MB); service alive after: {alive}"
    );
}
