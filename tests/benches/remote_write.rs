//! Prometheus remote-write throughput, end to end against a real ClickHouse on
//! this machine:
//!
//! ```text
//! cargo bench -p hypercare-tests --bench remote_write [-- --requests 2000 --series-per-request 2000 --concurrency 4,16,64]
//! ```
//!
//! Snappy-compressed `WriteRequest`s are built up front (as Prometheus sends
//! them: one sample per series, `series-per-request` series per request, over
//! `distinct-series` distinct series of 50 metric names with job/instance/path/code
//! labels; each round of series gets the next scrape time, so no two samples are
//! the same point). They are POSTed to `/v1/prometheus/write` by C concurrent
//! connections until all are sent; the figure is acknowledged samples / wall
//! time. Then the stored row count is checked against what was acknowledged.
//! Before that, the service's own work per sample (decompress, decode, check,
//! encode rows) is timed on one core, without HTTP or ClickHouse.
//!
//! Options (`--name value` after `--`, or `REMOTE_WRITE_BENCH_<NAME>`):
//! `requests` (2000), `series-per-request` (2000), `distinct-series` (100000),
//! `concurrency` (4,16,64), `workers` (2).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hypercare_ingest::event::RequestContext;
use hypercare_ingest::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};
use hypercare_tests::{INGEST_KEY, TestApp, spawn_app_with};
use prost::Message;

struct Options {
    requests: usize,
    series_per_request: usize,
    distinct_series: usize,
    concurrency: Vec<usize>,
    workers: usize,
}

fn option(args: &[String], name: &str) -> Option<String> {
    let flag = format!("--{name}");
    args.iter()
        .position(|a| *a == flag)
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            let env = format!(
                "REMOTE_WRITE_BENCH_{}",
                name.to_uppercase().replace('-', "_")
            );
            std::env::var(env).ok()
        })
}

impl Options {
    fn parse() -> Self {
        let args: Vec<String> = std::env::args().collect();
        let number = |name: &str, default: usize| {
            option(&args, name).map_or(default, |v| v.parse().expect(name))
        };
        Self {
            requests: number("requests", 2000),
            series_per_request: number("series-per-request", 2000),
            distinct_series: number("distinct-series", 100_000),
            concurrency: option(&args, "concurrency")
                .unwrap_or_else(|| "4,16,64".into())
                .split(',')
                .map(|c| c.trim().parse().expect("concurrency"))
                .collect(),
            workers: number("workers", 2),
        }
    }
}

fn label(name: &str, value: String) -> Label {
    Label {
        name: Bytes::copy_from_slice(name.as_bytes()),
        value: Bytes::from(value),
    }
}

/// The labels of series `i` (sorted by name, as Prometheus sends them).
fn series_labels(i: usize) -> Vec<Label> {
    let metric = i % 50;
    let name = if metric.is_multiple_of(2) {
        format!("bench_http_requests_{metric}_total")
    } else {
        format!("bench_queue_depth_{metric}")
    };
    vec![
        label("__name__", name),
        label("code", ["200", "404", "500"][i % 3].into()),
        label(
            "instance",
            format!("10.0.{}.{}:9100", (i / 50) % 250, (i / 12_500) % 250),
        ),
        label("job", "node".into()),
        label("path", format!("/api/v1/items/{}", (i / 7) % 97)),
    ]
}

/// Request `r`: series `[r * n, (r + 1) * n)` modulo the distinct series, at the
/// scrape time of its round.
fn build_request(r: usize, options: &Options, t0_ms: i64) -> Bytes {
    let n = options.series_per_request;
    let per_round = options.distinct_series.div_ceil(n).max(1);
    let round = r / per_round;
    let timeseries = (0..n)
        .map(|k| {
            let i = ((r % per_round) * n + k) % options.distinct_series;
            TimeSeries {
                labels: series_labels(i),
                samples: vec![Sample {
                    value: (i * 7 + round) as f64 * 0.5,
                    timestamp: t0_ms + round as i64 * 15_000,
                }],
            }
        })
        .collect();
    let raw = WriteRequest { timeseries }.encode_to_vec();
    Bytes::from(snap::raw::Encoder::new().compress_vec(&raw).unwrap())
}

async fn run(app: &TestApp, bodies: Arc<Vec<Bytes>>, concurrency: usize) -> (usize, Duration) {
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("{}/v1/prometheus/write", app.address);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, bodies, url, http) =
            (next.clone(), bodies.clone(), url.clone(), app.http.clone());
        tasks.push(tokio::spawn(async move {
            let mut failed = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return failed;
                };
                let response = http
                    .post(&url)
                    .bearer_auth(INGEST_KEY)
                    .header("content-type", "application/x-protobuf")
                    .header("content-encoding", "snappy")
                    .header("x-prometheus-remote-write-version", "0.1.0")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("request");
                if response.status() != 204 {
                    failed += 1;
                    eprintln!("request {i}: {}", response.status());
                }
            }
        }));
    }
    let mut failed = 0;
    for task in tasks {
        failed += task.await.unwrap();
    }
    (failed, started.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = Options::parse();
    println!(
        "remote write: {} requests x {} samples (one per series), {} distinct series, concurrency {:?}",
        options.requests, options.series_per_request, options.distinct_series, options.concurrency
    );
    let t0_ms = chrono::Utc::now().timestamp_millis() - 24 * 3600 * 1000;
    let built = Instant::now();
    let bodies: Vec<Bytes> = (0..options.requests * options.concurrency.len())
        .map(|r| build_request(r, &options, t0_ms))
        .collect();
    let bytes: usize = bodies.iter().map(Bytes::len).sum();
    println!(
        "built {} bodies, {:.1} MB snappy ({:.0} bytes/sample) in {:.1} s",
        bodies.len(),
        bytes as f64 / 1e6,
        bytes as f64 / (bodies.len() * options.series_per_request) as f64,
        built.elapsed().as_secs_f64()
    );
    // The service's own work per sample, on one core: snappy + protobuf + checks + rows.
    let limits = hypercare_ingest::Limits::default();
    let ctx = RequestContext {
        limits: &limits,
        received_ms: chrono::Utc::now().timestamp_millis(),
        api_key: "bench",
        late_hours: Default::default(),
    };
    let sample = &bodies[..options.requests.min(500)];
    let started = Instant::now();
    let mut rows = 0;
    for body in sample {
        let request = remote_write::decode(body, &limits, usize::MAX).unwrap();
        rows += remote_write::encode(&request, &ctx).unwrap().batch.rows;
    }
    let per_sample = started.elapsed().as_secs_f64() / rows as f64;
    println!(
        "decode + check + encode, one core: {:.3} us/sample = {:.2} M samples/s",
        per_sample * 1e6,
        1e-6 / per_sample
    );
    let workers = options.workers;
    let app = spawn_app_with(|s| s.server.workers = workers).await;
    let mut stored_expected = 0u64;
    for (k, &concurrency) in options.concurrency.iter().enumerate() {
        let slice = bodies[k * options.requests..(k + 1) * options.requests].to_vec();
        let (failed, elapsed) = run(&app, Arc::new(slice), concurrency).await;
        let ok = options.requests - failed;
        let samples = ok * options.series_per_request;
        stored_expected += samples as u64;
        println!(
            "concurrency {concurrency:>3}: {samples} samples acknowledged in {:.2} s = {:.0} samples/s ({failed} requests failed)",
            elapsed.as_secs_f64(),
            samples as f64 / elapsed.as_secs_f64()
        );
    }
    let stored = app.sql_u64("SELECT count() FROM metric_points").await;
    println!(
        "stored rows: {stored}, acknowledged samples: {stored_expected} -> {}",
        if stored == stored_expected {
            "match"
        } else {
            "MISMATCH"
        }
    );
    let series = app
        .sql_u64("SELECT uniqExact(series_id) FROM metric_points")
        .await;
    println!(
        "distinct series stored: {series} (expected {})",
        options
            .distinct_series
            .min(options.requests * options.series_per_request)
    );
    app.stop().await.ok();
    assert_eq!(
        stored, stored_expected,
        "every acknowledged sample is stored"
    );
}
