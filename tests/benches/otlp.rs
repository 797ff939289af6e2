//! OTLP metrics data points per second, end to end, on this machine:
//!
//! ```text
//! cargo bench -p hypercare-tests --bench otlp [-- --concurrency 8,32 --duration 15 --points 1000]
//! ```
//!
//! The real service and a real ClickHouse run in this process's machine; the
//! client POSTs protobuf `ExportMetricsServiceRequest`s (gzip off, as the Rust
//! exporter sends by default) of `points` gauge and histogram points over 100
//! series with 4 attributes each and a 3-attribute resource, closed loop with C
//! connections for `duration` seconds after a 2 s warm-up. It then checks that the
//! stored points (one row per point, copies folded) equal what was acknowledged.
//! Options also read from `OTLP_BENCH_<NAME>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use hypercare_tests::{INGEST_KEY, spawn_app_with};

fn option(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == &format!("--{name}"))
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var(format!("OTLP_BENCH_{}", name.to_uppercase())).ok())
        .unwrap_or_else(|| default.to_owned())
}

fn text(value: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(value.to_owned())),
    })
}

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: text(value),
        ..Default::default()
    }
}

/// One request of `points` points; `sequence` makes every point's time unique so
/// that no two requests write the same (series, time).
fn request(points: usize, sequence: u64, base_ns: u64) -> Vec<u8> {
    // Milliseconds are the stored precision: 10 ms per request, 1 ms per point of a series.
    let time = base_ns + sequence * 10_000_000;
    let series = |i: usize| {
        vec![
            attribute("route", &format!("/api/{}", i % 25)),
            attribute("method", if i.is_multiple_of(2) { "GET" } else { "POST" }),
            attribute("status", if i.is_multiple_of(10) { "500" } else { "200" }),
            attribute("host", &format!("web-{}", i % 4)),
        ]
    };
    let gauges: Vec<NumberDataPoint> = (0..points / 2)
        .map(|i| NumberDataPoint {
            attributes: series(i % 100),
            time_unix_nano: time + (i / 100) as u64 * 1_000_000,
            value: Some(number_data_point::Value::AsDouble(i as f64)),
            ..Default::default()
        })
        .collect();
    let histograms: Vec<HistogramDataPoint> = (0..points - points / 2)
        .map(|i| HistogramDataPoint {
            attributes: series(i % 100),
            time_unix_nano: time + (i / 100) as u64 * 1_000_000,
            count: 10,
            sum: Some(1.5),
            bucket_counts: vec![2, 3, 4, 1, 0],
            explicit_bounds: vec![0.05, 0.1, 0.25, 0.5],
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    attribute("service.name", "checkout"),
                    attribute("service.version", "2.4.1"),
                    attribute("deployment.environment", "prod"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    Metric {
                        name: "queue_depth".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: gauges,
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "http.server.request.duration".into(),
                        unit: "s".into(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: histograms,
                            aggregation_temporality: 2,
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let concurrency: Vec<usize> = option(&args, "concurrency", "8,32")
        .split(',')
        .map(|c| c.trim().parse().expect("--concurrency: numbers"))
        .collect();
    let duration = Duration::from_secs_f64(option(&args, "duration", "15").parse()?);
    let points: usize = option(&args, "points", "1000").parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = spawn_app_with(|s| {
            s.server.workers = 2;
            s.ingest.limits.max_records_per_request = 100_000;
        })
        .await;
        let url = format!("{}/v1/otlp/v1/metrics", app.address);
        let sample = request(points, 0, 0);
        println!("command: cargo bench -p hypercare-tests --bench otlp");
        println!(
            "setup: 2 cores; {points} points per request ({} B protobuf, {:.0} B/point), 100 series x 2 metrics, 4 attributes + 3 resource attributes",
            sample.len(),
            sample.len() as f64 / points as f64
        );
        let base_ns = (chrono::Utc::now().timestamp() as u64 - 3600) * 1_000_000_000;
        let sequence = Arc::new(AtomicU64::new(1));
        let mut acknowledged = 0u64;
        for c in concurrency {
            let acked = Arc::new(AtomicU64::new(0));
            let measuring = Arc::new(AtomicU64::new(0));
            let errors = Arc::new(AtomicU64::new(0));
            let warmup_end = Instant::now() + Duration::from_secs(2);
            let end = warmup_end + duration;
            let mut tasks = Vec::new();
            for _ in 0..c {
                let (http, url) = (app.http.clone(), url.clone());
                let (sequence, acked, measuring, errors) =
                    (sequence.clone(), acked.clone(), measuring.clone(), errors.clone());
                tasks.push(tokio::spawn(async move {
                    while Instant::now() < end {
                        let n = sequence.fetch_add(1, Ordering::Relaxed);
                        let body = request(points, n, base_ns);
                        let response = http
                            .post(&url)
                            .bearer_auth(INGEST_KEY)
                            .header("content-type", "application/x-protobuf")
                            .body(body)
                            .send()
                            .await;
                        match response {
                            Ok(r) if r.status() == 200 => {
                                acked.fetch_add(points as u64, Ordering::Relaxed);
                                if Instant::now() > warmup_end {
                                    measuring.fetch_add(points as u64, Ordering::Relaxed);
                                }
                            }
                            _ => {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }));
            }
            for task in tasks {
                task.await?;
            }
            acknowledged += acked.load(Ordering::Relaxed);
            println!(
                "e2e C={c:<4}: {:>9.0} points/s over {:.0} s; non-200 answers: {}",
                measuring.load(Ordering::Relaxed) as f64 / duration.as_secs_f64(),
                duration.as_secs_f64(),
                errors.load(Ordering::Relaxed)
            );
        }
        let stored = app
            .sql_u64(
                "SELECT count() FROM (SELECT 1 FROM metric_points \
                 GROUP BY series_id, timestamp, timestamp_ms)",
            )
            .await;
        println!(
            "stored points (distinct series x time) {stored} vs acknowledged {acknowledged} -> {}",
            if stored == acknowledged { "OK" } else { "MISMATCH" }
        );
        app.stop().await?;
        anyhow::Ok(())
    })
}
