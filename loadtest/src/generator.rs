//! The open-model generator.
//!
//! Request `k` of a step is due at `step_start + k / rate`, whatever happened to
//! the requests before it: a slow or stalled target does not slow the arrivals
//! down (a closed-loop tool would wait, and so hide the queue it caused: the
//! "coordinated omission" of wrk and ab). Latency is measured from the due time,
//! not from the moment the request was actually written, so any delay on our side
//! (a late timer, a busy core) counts against the target as it would for a user.
//!
//! One task, the scheduler, wakes when the next request is due or the next
//! progress second ends, and queues every request due by then. Connection
//! workers (one keep-alive connection each, see [`wire`]) take them; a new
//! worker starts whenever requests wait and no worker is idle, so a slow target
//! gets more connections instead of later requests. A cap on requests in
//! flight (queued or on the wire) bounds memory and sockets: a request due
//! while the cap is reached is dropped and counted as an error, never delayed.
//!
//! Per step we keep an HDR histogram of latency (by the step the request was due
//! in), the successful responses that completed inside the step's wall-clock
//! window (the achieved rate), error counts by kind, and one sample per second
//! (p50, p99, mean of the responses completed that second) that `compare` uses
//! as independent observations.
//!
//! Time: pacing and latency use tokio's monotonic `Instant`, and the report's
//! timestamps and the `now_ms` of templates read the wall clock. Both are right
//! for a load generator, whose job is to offer load in real time; nothing here
//! is tested at a moved clock (the pure parts, such as templates, take "now"
//! as an argument).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::client::http_client;
use crate::resources::{ResourceProbe, Resources};
use crate::scenario::{RequestSpec, Scenario};
use crate::wire;

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1e3;
        Self {
            mean_ms: h.mean() / 1e3,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// One second of responses, as seen when they completed.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct SecondSample {
    /// Responses of any status.
    pub responses: u64,
    /// Successful responses (status < 400).
    #[serde(default)]
    pub ok: u64,
    pub errors: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// What one step of the plan measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepResult {
    pub index: usize,
    /// Unix milliseconds.
    pub started_at_ms: i64,
    pub duration_secs: f64,
    /// The planned arrival rate.
    pub offered_rps: f64,
    /// Successful responses completed inside the step's window, per second.
    pub achieved_rps: f64,
    /// Requests due in the step.
    pub due: u64,
    /// Requests written (due minus dropped).
    pub sent: u64,
    pub ok: u64,
    /// Responses with status >= 400.
    pub http_errors: u64,
    /// Connection or protocol failures.
    pub transport_errors: u64,
    pub timeouts: u64,
    /// Due while the in-flight cap was reached.
    pub dropped: u64,
    pub error_rate: f64,
    /// Latency from the due time, of every response (any status).
    pub latency: Latency,
    /// How late requests were written after their due time (our own lag), p99.
    pub send_lag_p99_ms: f64,
    /// Mean requests in the system (Little's law: achieved rate x mean latency).
    pub concurrency: f64,
    pub seconds: Vec<SecondSample>,
    pub resources: Resources,
    #[serde(skip)]
    pub histogram: Option<Histogram<u64>>,
}

impl StepResult {
    pub fn errors(&self) -> u64 {
        self.http_errors + self.transport_errors + self.timeouts + self.dropped
    }
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub steps: Vec<StepResult>,
    /// All steps' latencies together.
    pub histogram: Histogram<u64>,
}

fn new_histogram() -> Histogram<u64> {
    // 1 us .. 1 h at 3 significant digits; values above are saturated.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

struct StepAcc {
    latency: Histogram<u64>,
    send_lag: Histogram<u64>,
    ok: u64,
    ok_in_window: u64,
    http_errors: u64,
    transport_errors: u64,
    timeouts: u64,
    dropped: u64,
    seconds: Vec<SecondSample>,
}

impl StepAcc {
    fn new() -> Self {
        Self {
            latency: new_histogram(),
            send_lag: new_histogram(),
            ok: 0,
            ok_in_window: 0,
            http_errors: 0,
            transport_errors: 0,
            timeouts: 0,
            dropped: 0,
            seconds: Vec::new(),
        }
    }
}

struct SecondAcc {
    latency: Histogram<u64>,
    errors: u64,
    ok: u64,
}

struct Recorder {
    steps: Vec<StepAcc>,
    second: SecondAcc,
}

struct Shared {
    recorder: Mutex<Recorder>,
    in_flight: AtomicUsize,
    /// The step whose wall-clock window is open now (usize::MAX after the last).
    window: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Recorder> {
        // A panic while holding the lock leaves plain counters: still usable.
        self.recorder.lock().unwrap_or_else(|p| p.into_inner())
    }
}

enum Outcome {
    Response { ok: bool },
    Transport,
    Timeout,
}

/// A request kind with its bytes, when they are the same every time.
struct Prepared {
    spec: RequestSpec,
    constant: Option<Bytes>,
}

/// Options of a run that are not part of the scenario.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Print a progress line per second to stderr.
    pub progress: bool,
    pub probe: ResourceProbe,
}

/// A request due at `due`, waiting for a connection.
struct Job {
    due: Instant,
    step: usize,
    head: bool,
    bytes: Bytes,
}

/// Hands jobs to connection workers. A worker owns one keep-alive connection;
/// new workers are started while jobs wait and no worker is idle, up to the
/// connection cap, so that requests go out when due instead of queueing.
struct Dispatch {
    queue: Mutex<VecDeque<Job>>,
    notify: Notify,
    idle: AtomicUsize,
    workers: AtomicUsize,
    closed: AtomicBool,
}

impl Dispatch {
    fn queue(&self) -> MutexGuard<'_, VecDeque<Job>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs the scenario's plan against its target.
pub async fn run(scenario: &Scenario, options: &RunOptions) -> anyhow::Result<RunResult> {
    let uri: hyper::Uri = scenario.target.parse()?;
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .ok_or_else(|| anyhow::anyhow!("target {} has no host", scenario.target))?;
    let port = uri.port_u16().unwrap_or(80);
    let addr = tokio::net::lookup_host((uri.host().unwrap_or_default(), port))
        .await?
        .next()
        .ok_or_else(|| anyhow::anyhow!("target {} does not resolve", scenario.target))?;
    let base_path = uri.path().trim_end_matches('/').to_owned();
    let mut rng = rand::rng();
    let prepared: Vec<Prepared> = scenario
        .requests
        .iter()
        .map(|spec| {
            let constant = (spec.path.is_constant()
                && spec.headers.iter().all(|(_, v)| v.is_constant())
                && spec.body.as_ref().is_none_or(|b| b.is_constant()))
            .then(|| serialize(spec, &host, &base_path, 0, wall_ms(), &mut rng));
            Prepared {
                spec: spec.clone(),
                constant,
            }
        })
        .collect();
    let weights: Vec<u64> = prepared
        .iter()
        .scan(0u64, |acc, p| {
            *acc += u64::from(p.spec.weight);
            Some(*acc)
        })
        .collect();
    let total_weight = *weights.last().unwrap_or(&1);
    let client = http_client(4);

    let shared = Arc::new(Shared {
        recorder: Mutex::new(Recorder {
            steps: scenario.steps.iter().map(|_| StepAcc::new()).collect(),
            second: SecondAcc {
                latency: new_histogram(),
                errors: 0,
                ok: 0,
            },
        }),
        in_flight: AtomicUsize::new(0),
        window: AtomicUsize::new(0),
    });
    let dispatch = Arc::new(Dispatch {
        queue: Mutex::new(VecDeque::new()),
        notify: Notify::new(),
        idle: AtomicUsize::new(0),
        workers: AtomicUsize::new(0),
        closed: AtomicBool::new(false),
    });
    let mut worker_tasks = Vec::new();
    let started_at_ms = wall_ms();
    let run_start = Instant::now();
    let mut seq: u64 = 0;
    let mut step_starts_ms = Vec::new();
    let mut step_durations = Vec::new();
    let mut due_counts = vec![0u64; scenario.steps.len()];
    let mut probes = Vec::new();
    let mut ticker = Ticker {
        run_start,
        next: run_start + Duration::from_secs(1),
        progress: options.progress,
        total_steps: scenario.steps.len(),
    };

    for (index, step) in scenario.steps.iter().enumerate() {
        let step_start = Instant::now();
        shared.window.store(index, Ordering::Relaxed);
        step_starts_ms.push(wall_ms());
        let sampling = options.probe.start(&client);
        let interval_ns = 1e9 / step.rate;
        let step_end = step_start + step.duration;
        let mut k: u64 = 0;
        ticker.next = step_start + Duration::from_secs(1);
        loop {
            let due = step_start + Duration::from_nanos((k as f64 * interval_ns) as u64);
            let now = Instant::now();
            if due >= step_end {
                break;
            }
            if now >= ticker.next {
                ticker.tick(&shared, index, step.rate, now);
                continue;
            }
            if due > now {
                tokio::time::sleep_until(due.min(ticker.next)).await;
                continue;
            }
            // Everything due by now goes out in this pass.
            k += 1;
            seq += 1;
            due_counts[index] += 1;
            if shared.in_flight.load(Ordering::Relaxed) >= scenario.max_in_flight {
                let mut rec = shared.lock();
                rec.steps[index].dropped += 1;
                rec.second.errors += 1;
                continue;
            }
            let pick = rng.random_range(0..total_weight);
            let p = &prepared[weights.partition_point(|w| *w <= pick)];
            let bytes = match &p.constant {
                Some(bytes) => bytes.clone(),
                None => serialize(&p.spec, &host, &base_path, seq - 1, wall_ms(), &mut rng),
            };
            shared.in_flight.fetch_add(1, Ordering::Relaxed);
            let waiting = {
                let mut queue = dispatch.queue();
                queue.push_back(Job {
                    due,
                    step: index,
                    head: p.spec.method == hyper::Method::HEAD,
                    bytes,
                });
                queue.len()
            };
            if waiting > dispatch.idle.load(Ordering::Relaxed)
                && dispatch.workers.load(Ordering::Relaxed) < scenario.connections
            {
                dispatch.workers.fetch_add(1, Ordering::Relaxed);
                worker_tasks.push(tokio::spawn(worker(
                    dispatch.clone(),
                    shared.clone(),
                    addr,
                    scenario.timeout,
                )));
            }
            dispatch.notify.notify_one();
        }
        // Wait out the end of the window (the last request may be due before it ends).
        loop {
            let now = Instant::now();
            if now >= step_end {
                break;
            }
            if now >= ticker.next {
                ticker.tick(&shared, index, step.rate, now);
                continue;
            }
            tokio::time::sleep_until(step_end.min(ticker.next)).await;
        }
        ticker.tick(&shared, index, step.rate, Instant::now());
        step_durations.push(step_end.saturating_duration_since(step_start));
        probes.push(options.probe.finish(&client, sampling));
    }
    shared.window.store(usize::MAX, Ordering::Relaxed);

    // Outstanding requests end by their own timeout at the latest.
    let deadline = Instant::now() + scenario.timeout + Duration::from_secs(1);
    while shared.in_flight.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    dispatch.closed.store(true, Ordering::Relaxed);
    dispatch.notify.notify_waiters();
    for task in worker_tasks {
        task.abort();
    }
    let finished_at_ms = wall_ms();
    let mut resources = Vec::new();
    for probe in probes {
        resources.push(probe.await);
    }

    let rec = shared.lock();
    let mut histogram = new_histogram();
    let mut steps = Vec::new();
    for (index, ((acc, resources), duration)) in rec
        .steps
        .iter()
        .zip(resources)
        .zip(step_durations)
        .enumerate()
    {
        histogram.add(&acc.latency).ok();
        let secs = duration.as_secs_f64().max(1e-9);
        let latency = Latency::of(&acc.latency);
        let achieved_rps = acc.ok_in_window as f64 / secs;
        let due = due_counts[index];
        let errors = acc.http_errors + acc.transport_errors + acc.timeouts + acc.dropped;
        steps.push(StepResult {
            index,
            started_at_ms: step_starts_ms[index],
            duration_secs: secs,
            offered_rps: scenario.steps[index].rate,
            achieved_rps,
            due,
            sent: due - acc.dropped,
            ok: acc.ok,
            http_errors: acc.http_errors,
            transport_errors: acc.transport_errors,
            timeouts: acc.timeouts,
            dropped: acc.dropped,
            error_rate: if due == 0 {
                0.0
            } else {
                errors as f64 / due as f64
            },
            latency,
            send_lag_p99_ms: acc.send_lag.value_at_quantile(0.99) as f64 / 1e3,
            concurrency: achieved_rps * latency.mean_ms / 1e3,
            seconds: acc.seconds.clone(),
            resources,
            histogram: Some(acc.latency.clone()),
        });
    }
    Ok(RunResult {
        started_at_ms,
        finished_at_ms,
        steps,
        histogram,
    })
}

/// One connection: takes due jobs, writes each, reads its answer, records it.
async fn worker(dispatch: Arc<Dispatch>, shared: Arc<Shared>, addr: SocketAddr, timeout: Duration) {
    let mut stream: Option<TcpStream> = None;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        let job = loop {
            let notified = dispatch.notify.notified();
            if let Some(job) = dispatch.queue().pop_front() {
                break job;
            }
            if dispatch.closed.load(Ordering::Relaxed) {
                return;
            }
            dispatch.idle.fetch_add(1, Ordering::Relaxed);
            notified.await;
            dispatch.idle.fetch_sub(1, Ordering::Relaxed);
        };
        let sent_at = Instant::now();
        let exchanged = tokio::time::timeout(timeout, async {
            let connection = match &mut stream {
                Some(connection) => connection,
                None => {
                    let connection = TcpStream::connect(addr).await?;
                    connection.set_nodelay(true)?;
                    stream.insert(connection)
                }
            };
            wire::exchange(connection, &job.bytes, job.head, &mut buf).await
        })
        .await;
        let outcome = match exchanged {
            Ok(Ok(answer)) => {
                if !answer.keep_alive {
                    stream = None;
                }
                Outcome::Response {
                    ok: answer.status < 400,
                }
            }
            Ok(Err(_)) => {
                stream = None;
                Outcome::Transport
            }
            Err(_) => {
                stream = None;
                Outcome::Timeout
            }
        };
        let done = Instant::now();
        let latency = micros(done.saturating_duration_since(job.due)).max(1);
        let lag = micros(sent_at.saturating_duration_since(job.due)).max(1);
        let window = shared.window.load(Ordering::Relaxed);
        {
            let mut rec = shared.lock();
            let Recorder { steps, second } = &mut *rec;
            let acc = &mut steps[job.step];
            acc.send_lag.saturating_record(lag);
            match outcome {
                Outcome::Response { ok } => {
                    acc.latency.saturating_record(latency);
                    second.latency.saturating_record(latency);
                    if ok {
                        acc.ok += 1;
                        second.ok += 1;
                        if let Some(open) = steps.get_mut(window) {
                            open.ok_in_window += 1;
                        }
                    } else {
                        acc.http_errors += 1;
                        second.errors += 1;
                    }
                }
                Outcome::Transport => {
                    acc.transport_errors += 1;
                    second.errors += 1;
                }
                Outcome::Timeout => {
                    acc.timeouts += 1;
                    second.errors += 1;
                }
            }
        }
        shared.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Ticker {
    run_start: Instant,
    next: Instant,
    progress: bool,
    total_steps: usize,
}

impl Ticker {
    fn tick(&mut self, shared: &Shared, step: usize, rate: f64, now: Instant) {
        let sample = self.flush(shared, step);
        self.next += Duration::from_secs(1);
        if sample.responses == 0 && sample.errors == 0 {
            return;
        }
        if self.progress {
            let in_flight = shared.in_flight.load(Ordering::Relaxed);
            let total = sample.responses + sample.errors;
            let error_pct = if total == 0 {
                0.0
            } else {
                100.0 * sample.errors as f64 / total as f64
            };
            eprintln!(
                "[{:>4}s] step {}/{} offered {:.0}/s achieved {}/s errors {} ({:.2}%) p50 {:.2}ms p99 {:.2}ms in-flight {}",
                now.saturating_duration_since(self.run_start).as_secs(),
                step + 1,
                self.total_steps,
                rate,
                sample.ok,
                sample.errors,
                error_pct,
                sample.p50_ms,
                sample.p99_ms,
                in_flight
            );
        }
    }

    /// Closes the current second into `step`'s samples.
    fn flush(&mut self, shared: &Shared, step: usize) -> SecondSample {
        let mut rec = shared.lock();
        let Recorder { steps, second } = &mut *rec;
        let h = &second.latency;
        let sample = SecondSample {
            responses: h.len(),
            ok: second.ok,
            errors: second.errors,
            mean_ms: if h.is_empty() { 0.0 } else { h.mean() / 1e3 },
            p50_ms: h.value_at_quantile(0.5) as f64 / 1e3,
            p99_ms: h.value_at_quantile(0.99) as f64 / 1e3,
        };
        if sample.responses > 0 || sample.errors > 0 {
            steps[step].seconds.push(sample);
        }
        second.latency.reset();
        second.errors = 0;
        second.ok = 0;
        sample
    }
}

/// The wall clock, Unix milliseconds (see the module documentation).
fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The request's bytes on the wire: request line, Host, the scenario's headers,
/// Content-Length, body (rendered `repeat` times, joined by newlines).
fn serialize(
    spec: &RequestSpec,
    host: &str,
    base_path: &str,
    seq: u64,
    now_ms: i64,
    rng: &mut impl Rng,
) -> Bytes {
    let mut body = String::new();
    if let Some(template) = &spec.body {
        for i in 0..spec.repeat {
            if i > 0 {
                body.push('\n');
            }
            template.render_into(&mut body, seq, now_ms, rng);
        }
    }
    let mut out = String::with_capacity(128 + body.len());
    out.push_str(spec.method.as_str());
    out.push(' ');
    out.push_str(base_path);
    spec.path.render_into(&mut out, seq, now_ms, rng);
    out.push_str(" HTTP/1.1\r\n");
    let mut has_host = false;
    for (name, value) in &spec.headers {
        if name == hyper::header::CONTENT_LENGTH {
            continue;
        }
        has_host |= name == hyper::header::HOST;
        out.push_str(name.as_str());
        out.push_str(": ");
        value.render_into(&mut out, seq, now_ms, rng);
        out.push_str("\r\n");
    }
    if !has_host {
        out.push_str("host: ");
        out.push_str(host);
        out.push_str("\r\n");
    }
    if !body.is_empty()
        || matches!(
            spec.method,
            hyper::Method::POST | hyper::Method::PUT | hyper::Method::PATCH
        )
    {
        write!(out, "content-length: {}\r\n", body.len()).ok();
    }
    out.push_str("\r\n");
    out.push_str(&body);
    Bytes::from(out)
}

/// Sums of the steps, for thresholds and the report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Totals {
    pub due: u64,
    pub ok: u64,
    pub errors: u64,
    pub error_rate: f64,
    /// Successful responses per second over the whole run.
    pub achieved_rps: f64,
    pub latency: Latency,
    /// Errors by kind.
    pub error_kinds: BTreeMap<String, u64>,
}

impl RunResult {
    pub fn totals(&self) -> Totals {
        let due: u64 = self.steps.iter().map(|s| s.due).sum();
        let ok: u64 = self.steps.iter().map(|s| s.ok).sum();
        let errors: u64 = self.steps.iter().map(StepResult::errors).sum();
        let secs: f64 = self.steps.iter().map(|s| s.duration_secs).sum();
        let in_window: f64 = self
            .steps
            .iter()
            .map(|s| s.achieved_rps * s.duration_secs)
            .sum();
        let mut kinds = BTreeMap::new();
        for (kind, n) in [
            (
                "http",
                self.steps.iter().map(|s| s.http_errors).sum::<u64>(),
            ),
            (
                "transport",
                self.steps.iter().map(|s| s.transport_errors).sum(),
            ),
            ("timeout", self.steps.iter().map(|s| s.timeouts).sum()),
            ("dropped", self.steps.iter().map(|s| s.dropped).sum()),
        ] {
            kinds.insert(kind.to_owned(), n);
        }
        Totals {
            due,
            ok,
            errors,
            error_rate: if due == 0 {
                0.0
            } else {
                errors as f64 / due as f64
            },
            achieved_rps: if secs > 0.0 { in_window / secs } else { 0.0 },
            latency: Latency::of(&self.histogram),
            error_kinds: kinds,
        }
    }
}
