//! Ingest throughput and latency against a real ClickHouse on this machine:
//!
//! ```text
//! cargo bench -p hypercare-tests --bench ingest [-- --duration 20 --concurrency 16,64 ...]
//! ```
//!
//! 1. raw: events encoded exactly as the service encodes them (NDJSON bodies through
//!    `records::encode_body` + `event::encode`), inserted straight into `events`
//!    with `insert_formatted_with(event::INSERT_SQL)`; only the inserts are timed;
//! 2. end-to-end: 1,000-event NDJSON bodies POSTed to the real service, closed loop
//!    with C connections, for a fixed time after a warm-up; the stored count is
//!    checked against what was acknowledged;
//! 3. the ratio end-to-end / raw;
//! 4. latency at a fixed arrival rate (open model: measured from each request's
//!    intended send time, so a stall is not hidden by the client waiting);
//! 5. CPU used by this process (per thread group) and by `clickhouse-server`.
//!
//! Options (`--name value` after `--`, or `INGEST_BENCH_<NAME>` in the environment):
//! `raw-rows` (1000000), `raw-repeats` (3), `insert-rows` (100000), `body-events` (1000),
//! `concurrency` (16,64,128), `warmup` (3 s), `duration` (20 s), `latency-secs` (15),
//! `latency-load` (0.5 of the best end-to-end rate), `client-threads` (1),
//! `workers` (2), `flush-ms`, `insert-concurrency`, `max-batch-rows` (service
//! defaults when not given), `skip-raw`, `skip-latency` (1 to skip).
//!
//! The load generator runs in this process, on its own runtime (threads named
//! `bench-client`), next to the service (actix workers, `app-tokio`) and sharing
//! the machine's cores with ClickHouse.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use chrono::SecondsFormat;
use futures_util::{StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use hypercare::Settings;
use hypercare_ingest::Limits;
use hypercare_ingest::event::{self, RequestContext};
use hypercare_ingest::records::{Framing, encode_body};
use hypercare_tests::{INGEST_KEY, TestApp, spawn_app_with, test_settings};

/// Inserts are sent in frames of about this size, as the service's writer does.
const FRAME_BYTES: usize = 1024 * 1024;
/// Distinct bodies generated up front; each request stamps fresh event ids into a copy.
const TEMPLATES: usize = 64;

/// One line of the report: a label, then the figures.
macro_rules! report {
    ($label:expr, $($arg:tt)*) => {
        println!("{:<28}: {}", $label, format!($($arg)*))
    };
}

// ---------------------------------------------------------------------------
// Options

#[derive(Debug, Clone)]
struct Opts {
    raw_rows: usize,
    raw_repeats: usize,
    insert_rows: usize,
    body_events: usize,
    concurrency: Vec<usize>,
    warmup: Duration,
    duration: Duration,
    latency_secs: Duration,
    latency_load: f64,
    client_threads: usize,
    workers: usize,
    flush_ms: Option<u64>,
    insert_concurrency: Option<usize>,
    max_batch_rows: Option<usize>,
    skip_raw: bool,
    skip_latency: bool,
    args: Vec<String>,
}

impl Opts {
    fn parse() -> Self {
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| a != "--bench")
            .collect();
        let mut given: HashMap<String, String> = HashMap::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let Some(name) = arg.strip_prefix("--") else {
                panic!("unexpected argument `{arg}` (options are `--name value`)");
            };
            match name.split_once('=') {
                Some((name, value)) => given.insert(name.to_owned(), value.to_owned()),
                None => given.insert(
                    name.to_owned(),
                    iter.next()
                        .unwrap_or_else(|| panic!("--{name} needs a value"))
                        .clone(),
                ),
            };
        }
        let get = |name: &str| -> Option<String> {
            given.get(name).cloned().or_else(|| {
                let env = format!("INGEST_BENCH_{}", name.to_uppercase().replace('-', "_"));
                std::env::var(env).ok()
            })
        };
        fn num<T: std::str::FromStr>(name: &str, value: Option<String>, default: T) -> T {
            value.map_or(default, |v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("--{name}: `{v}` is not a number"))
            })
        }
        let secs =
            |name: &str, default: f64| Duration::from_secs_f64(num(name, get(name), default));
        Self {
            raw_rows: num("raw-rows", get("raw-rows"), 1_000_000),
            raw_repeats: num("raw-repeats", get("raw-repeats"), 3),
            insert_rows: num("insert-rows", get("insert-rows"), 100_000),
            body_events: num("body-events", get("body-events"), 1000),
            concurrency: get("concurrency")
                .unwrap_or_else(|| "16,64,128".into())
                .split(',')
                .map(|c| num("concurrency", Some(c.trim().to_owned()), 16))
                .collect(),
            warmup: secs("warmup", 3.0),
            duration: secs("duration", 20.0),
            latency_secs: secs("latency-secs", 15.0),
            latency_load: num("latency-load", get("latency-load"), 0.5),
            client_threads: num("client-threads", get("client-threads"), 1),
            workers: num("workers", get("workers"), 2),
            flush_ms: get("flush-ms").map(|v| num("flush-ms", Some(v), 0)),
            insert_concurrency: get("insert-concurrency")
                .map(|v| num("insert-concurrency", Some(v), 0)),
            max_batch_rows: get("max-batch-rows").map(|v| num("max-batch-rows", Some(v), 0)),
            skip_raw: get("skip-raw").is_some_and(|v| v != "0"),
            skip_latency: get("skip-latency").is_some_and(|v| v != "0"),
            args,
        }
    }

    /// Applies the options to the settings of a spawned application.
    fn customize(&self) -> impl FnOnce(&mut Settings) + use<> {
        let opts = self.clone();
        move |settings: &mut Settings| {
            settings.server.workers = opts.workers;
            let writer = &mut settings.ingest.writer;
            if let Some(ms) = opts.flush_ms {
                writer.flush_interval_ms = ms;
            }
            if let Some(n) = opts.insert_concurrency {
                writer.insert_concurrency = n;
            }
            if let Some(n) = opts.max_batch_rows {
                writer.max_batch_rows = n;
            }
            let unlimited =
                serde_json::json!({"requests_per_second": 1_000_000, "burst": 1_000_000});
            settings.auth.default_rate_limit = serde_json::from_value(unlimited.clone()).unwrap();
            for key in &mut settings.auth.keys {
                key.rate_limit = Some(serde_json::from_value(unlimited.clone()).unwrap());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Events

/// A small, fast PRNG (splitmix64): reproducible bodies without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// An NDJSON body whose event ids start with 8 hex digits (at `id_offsets`) that
/// each request overwrites with its sequence number, so every event sent is new.
struct Template {
    body: Vec<u8>,
    id_offsets: Vec<usize>,
}

impl Template {
    fn generate(rng: &mut Rng, events: usize, now_ms: i64) -> Self {
        let mut body = String::with_capacity(events * 400);
        let mut id_offsets = Vec::with_capacity(events);
        for line in 0..events {
            let name = rng.pick(&[
                "order_placed",
                "page_view",
                "signup",
                "add_to_cart",
                "search",
                "checkout_started",
            ]);
            // Within the last hour, to the millisecond.
            let ts_ms = now_ms - rng.below(3_600_000) as i64;
            let timestamp = chrono::DateTime::from_timestamp_millis(ts_ms)
                .unwrap()
                .to_rfc3339_opts(SecondsFormat::Millis, true);
            write!(body, r#"{{"event":"{name}","event_id":""#).unwrap();
            id_offsets.push(body.len());
            write!(
                body,
                r#"00000000-{line:04x}-4{:03x}-{:x}{:03x}-{:012x}","timestamp":"{timestamp}","source":"{}","release":"{}","user_id":"u-{}","session_id":"s-{:016x}","value":{}.{:02},"properties":"#,
                rng.below(0x1000),
                8 + rng.below(4),
                rng.below(0x1000),
                rng.below(1 << 48),
                rng.pick(&["web", "ios", "android", "checkout"]),
                rng.pick(&["2.4.0", "2.4.1", "2.5.0-rc.1"]),
                rng.below(100_000),
                rng.next(),
                rng.below(500),
                rng.below(100),
            )
            .unwrap();
            let properties = match name {
                "order_placed" => format!(
                    r#"{{"plan":"{}","items":{},"first_order":{}}}"#,
                    rng.pick(&["free", "pro", "team"]),
                    1 + rng.below(9),
                    rng.below(4) == 0
                ),
                "page_view" => format!(
                    r#"{{"path":"{}","load_ms":{}}}"#,
                    rng.pick(&["/", "/pricing", "/docs/start", "/blog"]),
                    50 + rng.below(2000)
                ),
                "signup" => format!(
                    r#"{{"plan":"{}","referrer":"{}","marketing_opt_in":{}}}"#,
                    rng.pick(&["free", "pro"]),
                    rng.pick(&["google", "newsletter", "direct"]),
                    rng.below(2) == 0
                ),
                "add_to_cart" => format!(
                    r#"{{"sku":"SKU-{}","quantity":{}}}"#,
                    rng.below(10_000),
                    1 + rng.below(5)
                ),
                "search" => format!(
                    r#"{{"query_length":{},"results":{},"filtered":{}}}"#,
                    1 + rng.below(40),
                    rng.below(200),
                    rng.below(3) == 0
                ),
                _ => format!(
                    r#"{{"step":"{}","items":{}}}"#,
                    rng.pick(&["cart", "address", "payment"]),
                    1 + rng.below(9)
                ),
            };
            body.push_str(&properties);
            body.push_str("}\n");
        }
        Self {
            body: body.into_bytes(),
            id_offsets,
        }
    }

    /// A copy of the body with `seq` in every event id.
    fn stamp(&self, seq: u32) -> Bytes {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 8];
        for (i, digit) in hex.iter_mut().enumerate() {
            *digit = HEX[((seq >> (28 - 4 * i)) & 0xF) as usize];
        }
        let mut body = self.body.clone();
        for &offset in &self.id_offsets {
            body[offset..offset + 8].copy_from_slice(&hex);
        }
        Bytes::from(body)
    }
}

/// The bodies every phase sends, and the sequence numbers that keep ids unique.
struct Corpus {
    templates: Vec<Template>,
    seq: AtomicU32,
    stamp_nanos: AtomicU64,
    stamped: AtomicU64,
}

impl Corpus {
    fn new(body_events: usize) -> Self {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut rng = Rng(0x5EED_0F11_A5E5);
        Self {
            templates: (0..TEMPLATES)
                .map(|_| Template::generate(&mut rng, body_events, now_ms))
                .collect(),
            seq: AtomicU32::new(1),
            stamp_nanos: AtomicU64::new(0),
            stamped: AtomicU64::new(0),
        }
    }

    /// A body of fresh events (a copy of a template with new ids).
    fn next_body(&self) -> Bytes {
        let started = Instant::now();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let body = self.templates[seq as usize % self.templates.len()].stamp(seq);
        self.stamp_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.stamped.fetch_add(1, Ordering::Relaxed);
        body
    }

    fn body_bytes(&self) -> usize {
        self.templates.iter().map(|t| t.body.len()).sum::<usize>() / self.templates.len()
    }
}

// ---------------------------------------------------------------------------
// CPU accounting (Linux /proc)

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// (comm, utime + stime in ticks, ppid) from a `/proc/.../stat` file.
fn read_stat(path: &str) -> Option<(String, u64, u32)> {
    let text = std::fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_owned();
    let fields: Vec<&str> = text[close + 2..].split(' ').collect();
    // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime, ppid))
}

/// The `clickhouse-server` this process started (the test harness's), if any.
fn find_clickhouse_pid() -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let (comm, _, ppid) = read_stat(&format!("/proc/{pid}/stat"))?;
            (ppid == me && comm.starts_with("clickhouse")).then_some(pid)
        })
}

#[derive(Clone, Default)]
struct CpuSnapshot {
    at: Option<Instant>,
    process: u64,
    clickhouse: u64,
    threads: HashMap<u32, (String, u64)>,
}

impl CpuSnapshot {
    fn take(clickhouse: Option<u32>) -> Self {
        let mut threads = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
            for entry in dir.flatten() {
                let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
                    continue;
                };
                if let Some((comm, ticks, _)) = read_stat(&format!("/proc/self/task/{tid}/stat")) {
                    threads.insert(tid, (comm, ticks));
                }
            }
        }
        Self {
            at: Some(Instant::now()),
            process: read_stat("/proc/self/stat").map_or(0, |s| s.1),
            clickhouse: clickhouse
                .and_then(|pid| read_stat(&format!("/proc/{pid}/stat")))
                .map_or(0, |s| s.1),
            threads,
        }
    }

    /// Cores used between `self` and `later`: (process, clickhouse, per thread group).
    fn cores_until(&self, later: &CpuSnapshot, ticks: f64) -> (f64, f64, Vec<(String, f64)>) {
        let wall = later
            .at
            .unwrap()
            .duration_since(self.at.unwrap())
            .as_secs_f64();
        let cores = |delta: u64| delta as f64 / ticks / wall;
        let mut groups: BTreeMap<String, u64> = BTreeMap::new();
        for (tid, (comm, after)) in &later.threads {
            let before = self.threads.get(tid).map_or(0, |t| t.1);
            let group = comm
                .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == ' ')
                .to_owned();
            *groups.entry(group).or_default() += after.saturating_sub(before);
        }
        let mut groups: Vec<(String, f64)> = groups
            .into_iter()
            .map(|(g, t)| (g, cores(t)))
            .filter(|(_, c)| *c >= 0.005)
            .collect();
        groups.sort_by(|a, b| b.1.total_cmp(&a.1));
        (
            cores(later.process.saturating_sub(self.process)),
            cores(later.clickhouse.saturating_sub(self.clickhouse)),
            groups,
        )
    }
}

// ---------------------------------------------------------------------------
// The writer's own figures, from the service's /metrics

#[derive(Clone, Copy, Default)]
struct WriterFigures {
    batches: f64,
    rows: f64,
    insert_seconds: f64,
    queue_full: f64,
}

async fn writer_figures(http: &reqwest::Client, address: &str) -> WriterFigures {
    let Ok(response) = http.get(format!("{address}/metrics")).send().await else {
        return WriterFigures::default();
    };
    let text = response.text().await.unwrap_or_default();
    let value = |suffix: &str| {
        text.lines()
            .filter(|l| !l.starts_with('#') && l.contains(r#"table="events""#))
            .find(|l| {
                l.split(['{', ' '])
                    .next()
                    .is_some_and(|n| n.ends_with(suffix))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    WriterFigures {
        batches: value("writer_batch_rows_count"),
        rows: value("writer_batch_rows_sum"),
        insert_seconds: value("writer_insert_duration_seconds_sum"),
        queue_full: value("writer_queue_full_total"),
    }
}

// ---------------------------------------------------------------------------
// Sending

struct Target {
    http: reqwest::Client,
    url: String,
    auth: String,
    corpus: Arc<Corpus>,
}

/// Status and accepted events of one POST; status 0 for a transport error.
async fn post_once(target: &Target) -> (u16, u64) {
    let body = target.corpus.next_body();
    let response = target
        .http
        .post(&target.url)
        .header("authorization", &target.auth)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await;
    let Ok(response) = response else {
        return (0, 0);
    };
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    let accepted = if status == 202 {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["accepted"].as_u64())
            .unwrap_or(0)
    } else {
        0
    };
    (status, accepted)
}

fn client(opts: &Opts) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(opts.concurrency.iter().copied().max().unwrap_or(64) * 2)
        .tcp_nodelay(true)
        .build()
        .unwrap()
}

fn target(app: &TestApp, opts: &Opts, corpus: &Arc<Corpus>) -> Arc<Target> {
    Arc::new(Target {
        http: client(opts),
        url: format!("{}/v1/events", app.address),
        auth: format!("Bearer {INGEST_KEY}"),
        corpus: Arc::clone(corpus),
    })
}

fn statuses_text(statuses: &BTreeMap<u16, u64>) -> String {
    let others: Vec<String> = statuses
        .iter()
        .filter(|(s, _)| **s != 202)
        .map(|(s, n)| {
            if *s == 0 {
                format!("transport error x{n}")
            } else {
                format!("{s} x{n}")
            }
        })
        .collect();
    if others.is_empty() {
        "none".into()
    } else {
        others.join(", ")
    }
}

/// Stops the application and drops its database, so that background merges of
/// its parts do not take CPU from the next phase.
async fn stop_and_drop(app: TestApp) -> anyhow::Result<()> {
    let db = app.db.clone();
    let database = app.database.clone();
    app.stop().await?;
    db.query(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Phase 1: raw inserts

struct Raw {
    rows_per_s: f64,
    in_flight: usize,
}

async fn raw_phase(
    opts: &Opts,
    corpus: &Corpus,
    clickhouse_pid: Option<u32>,
    ticks: f64,
) -> anyhow::Result<Vec<Raw>> {
    let limits = Limits::default();
    let ctx = RequestContext {
        limits: &limits,
        received_ms: chrono::Utc::now().timestamp_millis(),
        api_key: "ingest-key",
        late_hours: Default::default(),
    };
    let bodies = opts.raw_rows.div_ceil(opts.body_events);
    let mut chunks = Vec::with_capacity(bodies);
    let mut encode_time = Duration::ZERO;
    let mut json_bytes = 0;
    for _ in 0..bodies {
        let body = corpus.next_body();
        json_bytes += body.len();
        let started = Instant::now();
        let batch = encode_body(
            &body,
            Framing::Ndjson,
            &hypercare_ingest::budget::Budget::records(100_000),
            |record, out| event::encode(record, &ctx, out),
        )
        .map_err(|e| anyhow::anyhow!("encoding: {e}"))?;
        encode_time += started.elapsed();
        anyhow::ensure!(
            batch.rejected.is_empty(),
            "generated events were rejected: {:?}",
            &batch.rejected[..1]
        );
        chunks.push((batch.rows, batch.data.freeze()));
    }
    let rows: usize = chunks.iter().map(|c| c.0).sum();
    let rb_bytes: usize = chunks.iter().map(|c| c.1.len()).sum();
    report!(
        "encode (1 thread)",
        "{:>9.0} events/s  ({:.2} us/event; NDJSON {:.0} B/event -> RowBinary {:.0} B/row)",
        rows as f64 / encode_time.as_secs_f64(),
        encode_time.as_secs_f64() * 1e6 / rows as f64,
        json_bytes as f64 / rows as f64,
        rb_bytes as f64 / rows as f64,
    );

    // Inserts of `insert_rows` rows, in frames of about 1 MiB, as the writer builds them.
    let mut inserts: Vec<Vec<Bytes>> = Vec::new();
    let (mut frames, mut current, mut in_insert) = (Vec::new(), BytesMut::new(), 0);
    for (n, data) in chunks {
        current.extend_from_slice(&data);
        in_insert += n;
        if current.len() >= FRAME_BYTES {
            frames.push(current.split().freeze());
        }
        if in_insert >= opts.insert_rows {
            if !current.is_empty() {
                frames.push(current.split().freeze());
            }
            inserts.push(std::mem::take(&mut frames));
            in_insert = 0;
        }
    }
    if !current.is_empty() {
        frames.push(current.split().freeze());
    }
    if !frames.is_empty() {
        inserts.push(frames);
    }

    let mut results = Vec::new();
    for in_flight in [1, 2] {
        // Each repeat into a fresh database; the median is reported.
        let mut runs = Vec::new();
        for _ in 0..opts.raw_repeats.max(1) {
            runs.push(raw_inserts(&inserts, in_flight, rows, clickhouse_pid, ticks).await?);
        }
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (rows_per_s, clickhouse_cores) = runs[runs.len() / 2];
        let range = if runs.len() > 1 {
            format!(
                "median of {}, range {:.0}-{:.0}; ",
                runs.len(),
                runs[0].0,
                runs[runs.len() - 1].0
            )
        } else {
            String::new()
        };
        report!(
            format!("raw insert, {in_flight} in flight"),
            "{rows_per_s:>9.0} rows/s    ({range}{rows} rows in {} inserts of {} rows, {:.1} MB RowBinary; clickhouse-server {clickhouse_cores:.2} cores = {:.2} us CPU/row)",
            inserts.len(),
            opts.insert_rows,
            rb_bytes as f64 / 1e6,
            clickhouse_cores * 1e6 / rows_per_s,
        );
        results.push(Raw {
            rows_per_s,
            in_flight,
        });
    }
    Ok(results)
}

/// Sends `inserts` into a fresh `events` table, `in_flight` at a time; returns
/// rows/s (inserts only) and the cores clickhouse-server used meanwhile.
async fn raw_inserts(
    inserts: &[Vec<Bytes>],
    in_flight: usize,
    rows: usize,
    clickhouse_pid: Option<u32>,
    ticks: f64,
) -> anyhow::Result<(f64, f64)> {
    let (settings, _data_dir) = test_settings().await;
    let store = hypercare_storage::connect(
        settings.clickhouse.url.as_deref().unwrap(),
        &settings.clickhouse,
    )
    .await?;
    hypercare_storage::migrate::run(&store).await?;
    let client = store.client.clone();
    let cpu_before = CpuSnapshot::take(clickhouse_pid);
    let started = Instant::now();
    futures_util::stream::iter(inserts)
        .map(|frames| {
            let client = client.clone();
            async move {
                let mut insert = client.insert_formatted_with(event::INSERT_SQL);
                for frame in frames {
                    insert.send(frame.clone()).await?;
                }
                insert.end().await
            }
        })
        .buffer_unordered(in_flight)
        .try_collect::<()>()
        .await?;
    let elapsed = started.elapsed();
    let (_, clickhouse_cores, _) =
        cpu_before.cores_until(&CpuSnapshot::take(clickhouse_pid), ticks);
    let stored = client
        .query("SELECT count() FROM events")
        .fetch_one::<u64>()
        .await?;
    anyhow::ensure!(
        stored == rows as u64,
        "raw: {stored} rows stored, {rows} sent"
    );
    store
        .server
        .query(&format!("DROP DATABASE {}", store.database))
        .execute()
        .await?;
    Ok((rows as f64 / elapsed.as_secs_f64(), clickhouse_cores))
}

// ---------------------------------------------------------------------------
// Phase 2: closed-loop end-to-end throughput

#[derive(Default)]
struct LoopTally {
    measured_events: u64,
    acked_events: u64,
    statuses: BTreeMap<u16, u64>,
}

struct E2e {
    concurrency: usize,
    events_per_s: f64,
}

async fn e2e_phase(
    opts: &Opts,
    corpus: &Arc<Corpus>,
    concurrency: usize,
    client_rt: &tokio::runtime::Handle,
    clickhouse_pid: Option<u32>,
    ticks: f64,
) -> anyhow::Result<E2e> {
    let app = spawn_app_with(opts.customize()).await;
    let target = target(&app, opts, corpus);
    let start = Instant::now();
    let measure_from = start + opts.warmup;
    let measure_to = measure_from + opts.duration;

    // Snapshots of CPU and the writer's metrics at both ends of the window.
    let snapshots = {
        let target = Arc::clone(&target);
        let address = app.address.clone();
        client_rt.spawn(async move {
            let mut out = Vec::new();
            for at in [measure_from, measure_to] {
                tokio::time::sleep_until(at.into()).await;
                let cpu = CpuSnapshot::take(clickhouse_pid);
                let writer = writer_figures(&target.http, &address).await;
                out.push((cpu, writer));
            }
            out
        })
    };
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let target = Arc::clone(&target);
            client_rt.spawn(async move {
                let mut tally = LoopTally::default();
                while Instant::now() < measure_to {
                    let (status, accepted) = post_once(&target).await;
                    let done = Instant::now();
                    *tally.statuses.entry(status).or_default() += 1;
                    tally.acked_events += accepted;
                    if done >= measure_from && done <= measure_to {
                        tally.measured_events += accepted;
                    }
                }
                tally
            })
        })
        .collect();
    let mut tally = LoopTally::default();
    for worker in workers {
        let t = worker.await?;
        tally.measured_events += t.measured_events;
        tally.acked_events += t.acked_events;
        for (s, n) in t.statuses {
            *tally.statuses.entry(s).or_default() += n;
        }
    }
    let snaps = snapshots.await?;
    let events_per_s = tally.measured_events as f64 / opts.duration.as_secs_f64();
    let stored = app.sql_u64("SELECT uniqExact(event_id) FROM events").await;
    let rows = app.sql_u64("SELECT count() FROM events").await;
    report!(
        format!("e2e C={concurrency}"),
        "{events_per_s:>9.0} events/s  ({:.0} req/s; non-202: {}; stored uniqExact {stored} vs acked {} -> {}{})",
        events_per_s / opts.body_events as f64,
        statuses_text(&tally.statuses),
        tally.acked_events,
        if stored == tally.acked_events {
            "OK"
        } else {
            "MISMATCH"
        },
        if rows == stored {
            String::new()
        } else {
            format!(", {rows} rows before dedup")
        },
    );
    let (cpu0, w0) = &snaps[0];
    let (cpu1, w1) = &snaps[1];
    let (process, clickhouse, groups) = cpu0.cores_until(cpu1, ticks);
    let groups: Vec<String> = groups.iter().map(|(g, c)| format!("{g} {c:.2}")).collect();
    let per_event = |cores: f64| cores * 1e6 / events_per_s.max(1.0);
    report!(
        "  cpu (cores)",
        "bench process {process:.2} = {:.2} us/event [{}] (app + load generator), clickhouse-server {}",
        per_event(process),
        groups.join(", "),
        if clickhouse_pid.is_some() {
            let cores = std::thread::available_parallelism().map_or(2, usize::from);
            format!(
                "{clickhouse:.2} = {:.2} us/event; together {:.2} of {cores} cores",
                per_event(clickhouse),
                process + clickhouse
            )
        } else {
            "n/a".into()
        }
    );
    let batches = w1.batches - w0.batches;
    if batches > 0.0 {
        let rows = w1.rows - w0.rows;
        let secs = w1.insert_seconds - w0.insert_seconds;
        report!(
            "  writer",
            "{batches:.0} inserts, {:.0} rows/insert, {:.0} ms/insert, inserting {:.0}% of the time (over {} slots), {:.0} rows/s while inserting, queue-full 503s {:.0}",
            rows / batches,
            secs * 1e3 / batches,
            secs * 100.0 / opts.duration.as_secs_f64(),
            opts.insert_concurrency
                .unwrap_or(hypercare_ingest::WriterSettings::default().insert_concurrency),
            rows / secs.max(1e-9),
            w1.queue_full - w0.queue_full,
        );
    }
    stop_and_drop(app).await?;
    Ok(E2e {
        concurrency,
        events_per_s,
    })
}

// ---------------------------------------------------------------------------
// Phase 4: latency at a fixed arrival rate

async fn latency_phase(
    opts: &Opts,
    corpus: &Arc<Corpus>,
    requests_per_s: f64,
    client_rt: &tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let app = spawn_app_with(opts.customize()).await;
    let target = target(&app, opts, corpus);
    let period = Duration::from_secs_f64(1.0 / requests_per_s);
    let length = opts.latency_secs;
    let result = client_rt
        .spawn(async move {
            let start = Instant::now() + Duration::from_millis(100);
            let mut sends = tokio::task::JoinSet::new();
            let mut i = 0u32;
            loop {
                let intended = start + period * i;
                if intended >= start + length {
                    break;
                }
                tokio::time::sleep_until(intended.into()).await;
                let target = Arc::clone(&target);
                sends.spawn(async move {
                    let (status, accepted) = post_once(&target).await;
                    (status, accepted, intended.elapsed(), Instant::now())
                });
                i += 1;
            }
            let mut histogram = Histogram::<u64>::new(3).unwrap();
            let mut statuses = BTreeMap::new();
            let (mut acked, mut last) = (0u64, start);
            while let Some(done) = sends.join_next().await {
                let (status, accepted, latency, at) = done.unwrap();
                histogram.record(latency.as_micros() as u64).unwrap();
                *statuses.entry(status).or_default() += 1;
                acked += accepted;
                last = last.max(at);
            }
            (histogram, statuses, acked, i, last.duration_since(start))
        })
        .await?;
    let (histogram, statuses, acked, sent, elapsed) = result;
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1e3;
    report!(
        format!("latency @ {requests_per_s:.1} req/s"),
        "p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms  (open model, from intended send time; {sent} requests, achieved {:.1} req/s = {:.0} events/s; non-202: {})",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        histogram.max() as f64 / 1e3,
        sent as f64 / elapsed.as_secs_f64(),
        acked as f64 / elapsed.as_secs_f64(),
        statuses_text(&statuses),
    );
    stop_and_drop(app).await?;
    Ok(())
}

// ---------------------------------------------------------------------------

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.client_threads)
        .thread_name("bench-client")
        .enable_all()
        .build()?;
    let app_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("app-tokio")
        .enable_all()
        .build()?;
    let handle = client_rt.handle().clone();
    let result = app_rt.block_on(run(&opts, &handle));
    drop(app_rt);
    drop(client_rt);
    result
}

async fn run(opts: &Opts, client_rt: &tokio::runtime::Handle) -> anyhow::Result<()> {
    let mut command = "cargo bench -p hypercare-tests --bench ingest".to_owned();
    if !opts.args.is_empty() {
        command = format!("{command} -- {}", opts.args.join(" "));
    }
    println!("command: {command}");
    let server = hypercare_tests::clickhouse().await;
    let probe = clickhouse::Client::default()
        .with_url(&server.url)
        .with_validation(false);
    let version = probe
        .query("SELECT version()")
        .fetch_one::<String>()
        .await?;
    let clickhouse_pid = find_clickhouse_pid();
    let ticks = clock_ticks();
    let defaults = hypercare_ingest::WriterSettings::default();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let corpus = Arc::new(Corpus::new(opts.body_events));
    println!(
        "setup: {cores} cores, ClickHouse {version} (pid {}); bodies of {} events ({:.0} KB NDJSON); \
         workers={}, flush_interval_ms={}, insert_concurrency={}, max_batch_rows={}; client: reqwest on {} thread(s); \
         warm-up {:.0}s, measure {:.0}s",
        clickhouse_pid.map_or("n/a".into(), |p| p.to_string()),
        opts.body_events,
        corpus.body_bytes() as f64 / 1e3,
        opts.workers,
        opts.flush_ms.unwrap_or(defaults.flush_interval_ms),
        opts.insert_concurrency
            .unwrap_or(defaults.insert_concurrency),
        opts.max_batch_rows.unwrap_or(defaults.max_batch_rows),
        opts.client_threads,
        opts.warmup.as_secs_f64(),
        opts.duration.as_secs_f64(),
    );

    let raw = if opts.skip_raw {
        Vec::new()
    } else {
        raw_phase(opts, &corpus, clickhouse_pid, ticks).await?
    };

    let mut e2e = Vec::new();
    for &concurrency in &opts.concurrency {
        e2e.push(e2e_phase(opts, &corpus, concurrency, client_rt, clickhouse_pid, ticks).await?);
    }
    let stamped = corpus.stamped.load(Ordering::Relaxed).max(1);
    report!(
        "client body prep",
        "{:.0} us/body (copy + fresh ids; included in the client's CPU)",
        corpus.stamp_nanos.load(Ordering::Relaxed) as f64 / 1e3 / stamped as f64
    );
    let best = e2e
        .iter()
        .max_by(|a, b| a.events_per_s.total_cmp(&b.events_per_s));
    if let Some(best) = best {
        for r in &raw {
            report!(
                format!("ratio e2e / raw({} in flight)", r.in_flight),
                "{:>4.0}%  (best e2e, C={}: {:.0} events/s vs {:.0} rows/s; target >= 60%)",
                best.events_per_s * 100.0 / r.rows_per_s,
                best.concurrency,
                best.events_per_s,
                r.rows_per_s,
            );
        }
    }
    if let (Some(best), false) = (best, opts.skip_latency) {
        let rate = best.events_per_s * opts.latency_load / opts.body_events as f64;
        if rate > 0.0 {
            latency_phase(opts, &corpus, rate, client_rt).await?;
        }
    }
    Ok(())
}
