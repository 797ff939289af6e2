//! The writer: one task per table gathers the RowBinary chunks of many requests
//! into ClickHouse inserts, and tells each request when its rows are stored.
//!
//! ```text
//! request ─ encode rows ─┐  (bytes reserved in the queue, or 503 at once)
//! request ─ encode rows ─┼─> channel ─> writer task: batch by rows/bytes/time ─> INSERT ... RowBinary
//! request ─ encode rows ─┘                 │  up to `insert_concurrency` in flight
//!    ^ answered when its batch is stored ──┘
//! ```
//!
//! Contract: a request is answered 2xx only after the insert holding its rows
//! succeeded. A failing insert is retried (network errors, overload) until the
//! request's `ack_timeout` runs out; the request then gets 503 and may retry:
//! event ids make a retried row a duplicate that reads fold away. ClickHouse
//! errors about the data itself (codes 117, 53, ...) are not retried.
//!
//! Isolation: one insert carries the rows of many requests, so a batch that
//! ClickHouse refuses is split in halves, and again, until each refused part is
//! one request: only the requests whose rows are refused fail (4xx), the others
//! beside them are stored. A client sending what ClickHouse refuses thus costs
//! the others a few extra inserts, never their data.
//!
//! Back-pressure: the queue is bounded in bytes by a semaphore; a request that
//! does not fit is refused at once with 503 and `Retry-After`, nothing is dropped
//! silently. No key may hold more than `max_queue_share_per_key` of the queue,
//! so one client filling it leaves room for the others.
//!
//! Batching adapts to the load. A batch is sent as soon as an insert slot is free
//! and `flush_interval_ms` has passed since the previous insert started, or at
//! once when it is full; meanwhile arriving chunks join it. So an idle service
//! stores a request's rows right away (latency = one insert), and a busy one
//! sends fewer, larger inserts (at most one per interval per slot, which bounds
//! the parts ClickHouse must merge).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hypercare_http::health::HealthReporter;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use hypercare_runtime::Tasks;
use hypercare_telemetry::metric_name;

use crate::config::WriterSettings;

/// Inserts are sent to ClickHouse in frames of about this size.
const FRAME_BYTES: usize = 1024 * 1024;

/// Why rows were not confirmed stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error(
        "the write queue of `{table}` is full ({capacity} bytes waiting for ClickHouse); retry shortly"
    )]
    QueueFull {
        table: &'static str,
        capacity: usize,
    },
    #[error(
        "this API key already has {share} bytes waiting for ClickHouse in `{table}`, its share of the write queue; retry shortly"
    )]
    KeyShareFull { table: &'static str, share: usize },
    #[error(
        "the rows were not confirmed stored in `{table}` within {waited_ms} ms; retry (same event ids are not counted twice)"
    )]
    NotConfirmed { table: &'static str, waited_ms: u64 },
    #[error("ClickHouse is unavailable for `{table}`: {message}; retry later")]
    Unavailable {
        table: &'static str,
        message: String,
    },
    #[error("ClickHouse refused the rows for `{table}`: {message}")]
    Refused {
        table: &'static str,
        message: String,
    },
    #[error("the service is shutting down; retry on another replica or later")]
    ShuttingDown,
}

impl WriteError {
    /// Whether a client should retry the same request.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, WriteError::Refused { .. })
    }
}

struct Chunk {
    rows: usize,
    data: Bytes,
    done: oneshot::Sender<Result<(), WriteError>>,
    permit: OwnedSemaphorePermit,
    share: KeyShare,
}

/// Bytes each key has waiting in one writer's queue.
#[derive(Default)]
struct KeyShares(Mutex<HashMap<Arc<str>, usize>>);

/// A key's bytes in the queue, given back when the chunk is done with.
struct KeyShare {
    shares: Arc<KeyShares>,
    key: Arc<str>,
    bytes: usize,
}

impl KeyShares {
    /// Takes `bytes` of `key`'s share, or `None` when it would pass `limit`.
    fn take(self: &Arc<Self>, key: &str, bytes: usize, limit: usize) -> Option<KeyShare> {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key: Arc<str> = match held.get_key_value(key) {
            Some((known, _)) => Arc::clone(known),
            None => Arc::from(key),
        };
        let used = held.entry(Arc::clone(&key)).or_insert(0);
        if *used + bytes > limit {
            if *used == 0 {
                held.remove(&key);
            }
            return None;
        }
        *used += bytes;
        Some(KeyShare {
            shares: Arc::clone(self),
            key,
            bytes,
        })
    }
}

impl Drop for KeyShare {
    fn drop(&mut self) {
        let mut held = self.shares.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(used) = held.get_mut(&self.key) {
            *used = used.saturating_sub(self.bytes);
            // Keys come and go: forget the idle ones so the map stays small.
            if *used == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// The sending side, shared by request handlers. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    table: &'static str,
    tx: mpsc::UnboundedSender<Chunk>,
    queue: Arc<Semaphore>,
    capacity: usize,
    shares: Arc<KeyShares>,
    key_share: usize,
    ack_timeout: Duration,
    metrics: WriterMetrics,
}

impl Writer {
    /// Starts the writer task for `table` on `tasks`; `insert_sql` is the `INSERT
    /// ... FORMAT RowBinary` statement whose columns the chunks are encoded for.
    /// Once the tasks are cancelled (at shutdown, after the HTTP server stopped
    /// taking requests) the task takes no new chunk, stores (or fails) every
    /// chunk it holds, and ends.
    pub fn spawn(
        client: clickhouse::Client,
        table: &'static str,
        insert_sql: &'static str,
        settings: WriterSettings,
        metrics: WriterMetrics,
        health: HealthReporter,
        tasks: &Tasks,
    ) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            table,
            tx,
            queue: Arc::new(Semaphore::new(settings.queue_capacity_bytes)),
            capacity: settings.queue_capacity_bytes,
            shares: Arc::default(),
            key_share: settings.key_share_bytes(),
            ack_timeout: Duration::from_millis(settings.ack_timeout_ms),
            metrics: metrics.clone(),
        };
        let task = WriterTask {
            client,
            table,
            insert_sql,
            settings,
            metrics,
            health,
        };
        tasks.spawn(table, |cancel| task.run(rx, cancel.cancelled_owned()));
        writer
    }

    /// Encoded bytes one request may queue at most: its key's share of the
    /// queue. A chunk larger than this could never be queued, so requests check
    /// it first and answer 413, not 503.
    pub fn max_request_bytes(&self) -> usize {
        self.key_share
    }

    /// Queues `rows` encoded in `data` on behalf of the API key named `key`,
    /// and waits until they are stored.
    pub async fn write(&self, key: &str, rows: usize, data: Bytes) -> Result<(), WriteError> {
        if rows == 0 {
            return Ok(());
        }
        let bytes = data.len();
        let permits = u32::try_from(bytes.max(1)).unwrap_or(u32::MAX);
        let permit = self
            .queue
            .clone()
            .try_acquire_many_owned(permits)
            .map_err(|_| {
                self.metrics.queue_full.inc();
                WriteError::QueueFull {
                    table: self.table,
                    capacity: self.capacity,
                }
            })?;
        let share = self
            .shares
            .take(key, bytes, self.key_share)
            .ok_or_else(|| {
                self.metrics.queue_full.inc();
                WriteError::KeyShareFull {
                    table: self.table,
                    share: self.key_share,
                }
            })?;
        let (done, confirmed) = oneshot::channel();
        self.metrics.queued_rows.add(rows as i64);
        self.metrics.queued_bytes.add(bytes as i64);
        self.tx
            .send(Chunk {
                rows,
                data,
                done,
                permit,
                share,
            })
            .map_err(|_| WriteError::ShuttingDown)?;
        match tokio::time::timeout(self.ack_timeout, confirmed).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(WriteError::ShuttingDown),
            Err(_) => Err(WriteError::NotConfirmed {
                table: self.table,
                waited_ms: self.ack_timeout.as_millis() as u64,
            }),
        }
    }
}

/// The rows of many requests going into one insert.
struct Batch {
    frames: Vec<Bytes>,
    current: BytesMut,
    rows: usize,
    bytes: usize,
    /// Where each request's rows are in `frames`, in the order of `waiters`.
    parts: Vec<Part>,
    waiters: Vec<oneshot::Sender<Result<(), WriteError>>>,
    reservations: Vec<(OwnedSemaphorePermit, KeyShare)>,
    opened: Instant,
}

/// One request's rows inside a batch. A request's rows never straddle two
/// frames, so each part is one slice of one frame.
#[derive(Debug, Clone, Copy)]
struct Part {
    frame: usize,
    start: usize,
    len: usize,
    rows: usize,
}

impl Batch {
    fn new() -> Self {
        Self {
            frames: Vec::new(),
            current: BytesMut::new(),
            rows: 0,
            bytes: 0,
            parts: Vec::new(),
            waiters: Vec::new(),
            reservations: Vec::new(),
            opened: Instant::now(),
        }
    }

    fn push(&mut self, chunk: Chunk) {
        self.rows += chunk.rows;
        self.bytes += chunk.data.len();
        let len = chunk.data.len();
        let part = if len >= FRAME_BYTES / 2 {
            self.seal_frame();
            self.frames.push(chunk.data);
            Part {
                frame: self.frames.len() - 1,
                start: 0,
                len,
                rows: chunk.rows,
            }
        } else {
            // `current` becomes the next frame when sealed.
            let part = Part {
                frame: self.frames.len(),
                start: self.current.len(),
                len,
                rows: chunk.rows,
            };
            self.current.extend_from_slice(&chunk.data);
            if self.current.len() >= FRAME_BYTES {
                self.seal_frame();
            }
            part
        };
        self.parts.push(part);
        self.waiters.push(chunk.done);
        self.reservations.push((chunk.permit, chunk.share));
    }

    /// The frames holding the rows of the requests in `parts`.
    fn frames_of(&self, parts: Range<usize>) -> Vec<Bytes> {
        if parts.len() == self.parts.len() {
            return self.frames.clone();
        }
        self.parts[parts]
            .iter()
            .map(|p| self.frames[p.frame].slice(p.start..p.start + p.len))
            .collect()
    }

    fn rows_of(&self, parts: Range<usize>) -> usize {
        self.parts[parts].iter().map(|p| p.rows).sum()
    }

    fn seal_frame(&mut self) {
        if !self.current.is_empty() {
            self.frames.push(self.current.split().freeze());
        }
    }

    fn is_full(&self, settings: &WriterSettings) -> bool {
        self.rows >= settings.max_batch_rows || self.bytes >= settings.max_batch_bytes
    }

    /// Answers each request with its own outcome (`results` in the order of the
    /// requests) and gives its place in the queue back.
    fn finish(self, results: Vec<Result<(), WriteError>>, metrics: &WriterMetrics) {
        metrics.queued_rows.sub(self.rows as i64);
        metrics.queued_bytes.sub(self.bytes as i64);
        for (waiter, result) in self.waiters.into_iter().zip(results) {
            // A request that gave up waiting has dropped its receiver; nothing to tell.
            waiter.send(result).ok();
        }
        drop(self.reservations);
    }
}

struct WriterTask {
    client: clickhouse::Client,
    table: &'static str,
    insert_sql: &'static str,
    settings: WriterSettings,
    metrics: WriterMetrics,
    health: HealthReporter,
}

impl WriterTask {
    async fn run(
        self,
        mut rx: mpsc::UnboundedReceiver<Chunk>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(this.settings.insert_concurrency));
        let mut inserts = JoinSet::new();
        let flush_interval = Duration::from_millis(this.settings.flush_interval_ms);
        tokio::pin!(shutdown);
        let mut stopping = false;
        let mut last_start: Option<Instant> = None;
        loop {
            // Idle: wait for a first chunk, reporting liveness meanwhile.
            let first = loop {
                this.health.report(true, "idle");
                tokio::select! {
                    chunk = rx.recv() => break chunk,
                    () = &mut shutdown, if !stopping => {
                        stopping = true;
                        rx.close();
                    }
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            };
            let Some(first) = first else { break };
            let mut batch = Batch::new();
            batch.push(first);
            // Send as soon as an insert slot is free and the last insert started at
            // least `flush_interval` ago (or at once when the batch is full). An idle
            // request is thus stored right away, while under load the rows that
            // arrive during an insert gather into the next, larger one.
            let send_after = last_start.map_or(batch.opened, |at| at + flush_interval);
            let mut gap_over = Instant::now() >= send_after;
            let mut closed = false;
            let slot = loop {
                let full = batch.is_full(&this.settings);
                tokio::select! {
                    biased;
                    slot = slots.clone().acquire_owned(), if gap_over || full => break slot,
                    () = tokio::time::sleep_until(send_after), if !gap_over => gap_over = true,
                    chunk = rx.recv(), if !closed && !full => match chunk {
                        Some(chunk) => batch.push(chunk),
                        None => closed = true,
                    },
                }
            };
            let Ok(slot) = slot else { break };
            // Take what already waits in the channel: it costs nothing to add.
            while !closed && !batch.is_full(&this.settings) {
                match rx.try_recv() {
                    Ok(chunk) => batch.push(chunk),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => closed = true,
                }
            }
            last_start = Some(Instant::now());
            batch.seal_frame();
            let task = Arc::clone(&this);
            inserts.spawn(async move {
                let results = task.insert_isolating_refusals(&batch).await;
                batch.finish(results, &task.metrics);
                drop(slot);
            });
            while inserts.try_join_next().is_some() {}
            this.health.report(true, "writing");
            if closed {
                break;
            }
        }
        while inserts.join_next().await.is_some() {}
        tracing::info!(
            table = this.table,
            "Writer stopped; every queued row was handled."
        );
    }

    /// Sends the batch; when ClickHouse refuses it, sends halves of it, and so on,
    /// so that only the requests whose rows are refused fail. One outcome per
    /// request, in their order.
    async fn insert_isolating_refusals(&self, batch: &Batch) -> Vec<Result<(), WriteError>> {
        let mut results: Vec<Option<Result<(), WriteError>>> = vec![None; batch.parts.len()];
        // The parts still to insert, as ranges of requests; first all of them.
        let mut pending: Vec<Range<usize>> = Vec::new();
        pending.push(0..batch.parts.len());
        while let Some(parts) = pending.pop() {
            match self.insert_with_retries(batch, parts.clone()).await {
                Err(WriteError::Refused { .. }) if parts.len() > 1 => {
                    self.metrics.split_inserts.inc();
                    let middle = parts.start + parts.len() / 2;
                    pending.push(middle..parts.end);
                    pending.push(parts.start..middle);
                }
                outcome => {
                    for result in &mut results[parts] {
                        *result = Some(outcome.clone());
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(WriteError::ShuttingDown)))
            .collect()
    }

    /// Sends the rows of the requests in `parts`, retrying what may succeed
    /// later for as long as the oldest request in the batch still waits.
    #[tracing::instrument(name = "clickhouse.insert", skip_all, fields(table = self.table, requests = parts.len()))]
    async fn insert_with_retries(
        &self,
        batch: &Batch,
        parts: Range<usize>,
    ) -> Result<(), WriteError> {
        let give_up_at = batch.opened + Duration::from_millis(self.settings.ack_timeout_ms);
        let frames = batch.frames_of(parts.clone());
        let rows = batch.rows_of(parts);
        let bytes: usize = frames.iter().map(Bytes::len).sum();
        let mut backoff = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let result = self.insert_once(&frames).await;
            let elapsed = started.elapsed();
            match result {
                Ok(()) => {
                    self.metrics.insert_seconds.observe(elapsed.as_secs_f64());
                    self.metrics.batch_rows.observe(rows as f64);
                    self.metrics.batch_bytes.observe(bytes as f64);
                    self.metrics.inserted_rows.inc_by(rows as u64);
                    tracing::debug!(
                        table = self.table,
                        rows,
                        bytes,
                        attempt,
                        millis = elapsed.as_millis() as u64,
                        "Inserted a batch."
                    );
                    return Ok(());
                }
                Err(error) => {
                    let retryable = is_retryable(&error);
                    let kind = if retryable { "retryable" } else { "refused" };
                    self.metrics
                        .clickhouse_errors
                        .with_label_values(&[kind])
                        .inc();
                    let message = error.to_string();
                    if !retryable {
                        tracing::error!(table = self.table, rows, error = %message, "ClickHouse refused a batch; it is not retried.");
                        self.health
                            .report(true, format!("last insert refused: {message}"));
                        return Err(WriteError::Refused {
                            table: self.table,
                            message,
                        });
                    }
                    self.health
                        .report(false, format!("insert failing: {message}"));
                    if Instant::now() + backoff >= give_up_at {
                        tracing::error!(table = self.table, rows, attempt, error = %message, "Giving up on a batch: its requests were answered 503 and may retry.");
                        return Err(WriteError::Unavailable {
                            table: self.table,
                            message,
                        });
                    }
                    tracing::warn!(table = self.table, rows, attempt, retry_in_ms = backoff.as_millis() as u64, error = %message, "Insert failed; retrying.");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    attempt += 1;
                }
            }
        }
    }

    async fn insert_once(&self, frames: &[Bytes]) -> clickhouse::error::Result<()> {
        let timeout = Some(Duration::from_millis(self.settings.ack_timeout_ms));
        let mut insert = self
            .client
            .insert_formatted_with(self.insert_sql)
            .with_timeouts(timeout, timeout);
        for frame in frames {
            insert.send(frame.clone()).await?;
        }
        insert.end().await
    }
}

/// ClickHouse error codes that mean the data or the statement is wrong: sending
/// the same bytes again gives the same answer.
const REFUSED_CODES: &[u32] = &[
    6, 16, 26, 27, 32, 33, 38, 41, 44, 47, 53, 60, 62, 69, 70, 72, 81, 117, 130, 131, 236,
];

fn is_retryable(error: &clickhouse::error::Error) -> bool {
    use clickhouse::error::Error;
    match error {
        Error::Network(_) | Error::TimedOut => true,
        // One request's times spanning too many months: the same bytes fail again
        // (code 252 otherwise means too many parts, an overload that passes).
        Error::BadResponse(text) if text.contains("partitions for single INSERT block") => false,
        Error::BadResponse(text) => match exception_code(text) {
            Some(code) => !REFUSED_CODES.contains(&code),
            None => true,
        },
        _ => false,
    }
}

/// The `Code: N` of a ClickHouse exception text.
fn exception_code(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Writer metrics, labelled by table.
#[derive(Clone)]
pub struct WriterMetrics {
    queued_rows: IntGauge,
    queued_bytes: IntGauge,
    queue_full: IntCounter,
    inserted_rows: IntCounter,
    batch_rows: Histogram,
    batch_bytes: Histogram,
    insert_seconds: Histogram,
    clickhouse_errors: IntCounterVec,
    split_inserts: IntCounter,
}

impl WriterMetrics {
    pub fn register(registry: &Registry, table: &'static str) -> prometheus::Result<Self> {
        let label = |opts: Opts| opts.const_label("table", table);
        let hlabel = |opts: HistogramOpts| opts.const_label("table", table);
        let queued_rows = IntGauge::with_opts(label(Opts::new(
            metric_name("writer_queue_rows"),
            "Rows accepted and waiting to be stored in ClickHouse.",
        )))?;
        let queued_bytes = IntGauge::with_opts(label(Opts::new(
            metric_name("writer_queue_bytes"),
            "Encoded bytes accepted and waiting to be stored in ClickHouse.",
        )))?;
        let queue_full = IntCounter::with_opts(label(Opts::new(
            metric_name("writer_queue_full_total"),
            "Requests refused with 503 because the write queue was full.",
        )))?;
        let inserted_rows = IntCounter::with_opts(label(Opts::new(
            metric_name("writer_inserted_rows_total"),
            "Rows stored in ClickHouse.",
        )))?;
        let batch_rows = Histogram::with_opts(hlabel(
            HistogramOpts::new(metric_name("writer_batch_rows"), "Rows per insert.")
                .buckets(prometheus::exponential_buckets(1.0, 4.0, 10)?),
        ))?;
        let batch_bytes = Histogram::with_opts(hlabel(
            HistogramOpts::new(
                metric_name("writer_batch_bytes"),
                "Encoded bytes per insert.",
            )
            .buckets(prometheus::exponential_buckets(256.0, 4.0, 10)?),
        ))?;
        let insert_seconds = Histogram::with_opts(hlabel(
            HistogramOpts::new(
                metric_name("writer_insert_duration_seconds"),
                "Time of one successful insert into ClickHouse, in seconds.",
            )
            .buckets(prometheus::exponential_buckets(0.001, 2.0, 15)?),
        ))?;
        let clickhouse_errors = IntCounterVec::new(
            label(Opts::new(
                metric_name("clickhouse_errors_total"),
                "Failed inserts, by whether they are retried.",
            )),
            &["kind"],
        )?;
        let split_inserts = IntCounter::with_opts(label(Opts::new(
            metric_name("writer_split_inserts_total"),
            "Refused inserts split in halves to find the requests whose rows were refused.",
        )))?;
        for metric in [
            Box::new(queued_rows.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(queued_bytes.clone()),
            Box::new(queue_full.clone()),
            Box::new(inserted_rows.clone()),
            Box::new(batch_rows.clone()),
            Box::new(batch_bytes.clone()),
            Box::new(insert_seconds.clone()),
            Box::new(clickhouse_errors.clone()),
            Box::new(split_inserts.clone()),
        ] {
            registry.register(metric)?;
        }
        Ok(Self {
            queued_rows,
            queued_bytes,
            queue_full,
            inserted_rows,
            batch_rows,
            batch_bytes,
            insert_seconds,
            clickhouse_errors,
            split_inserts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_codes_are_read_from_clickhouse_errors() {
        let text = "Code: 117, e.displayText() = DB::Exception: Cannot parse input";
        assert_eq!(exception_code(text), Some(117));
        assert_eq!(
            exception_code("Code: 241. DB::Exception: Memory limit"),
            Some(241)
        );
        assert_eq!(exception_code("connection reset"), None);
    }

    #[test]
    fn data_errors_are_not_retried_but_overload_is() {
        use clickhouse::error::Error;
        assert!(!is_retryable(&Error::BadResponse(
            "Code: 117, bad data".into()
        )));
        assert!(is_retryable(&Error::BadResponse(
            "Code: 252, too many parts".into()
        )));
        assert!(is_retryable(&Error::TimedOut));
        assert!(!is_retryable(&Error::BadResponse(
            "Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100)."
                .into()
        )));
    }

    fn chunk(
        data: &'static str,
        queue: &Arc<Semaphore>,
        shares: &Arc<KeyShares>,
    ) -> (Chunk, oneshot::Receiver<Result<(), WriteError>>) {
        let (done, answer) = oneshot::channel();
        let chunk = Chunk {
            rows: 1,
            data: Bytes::from_static(data.as_bytes()),
            done,
            permit: queue.clone().try_acquire_many_owned(4).unwrap(),
            share: shares.take("client", 4, 1024).unwrap(),
        };
        (chunk, answer)
    }

    #[tokio::test]
    async fn a_refused_batch_fails_only_the_requests_whose_rows_are_refused() {
        use clickhouse::test::{Mock, handlers};
        let mock = Mock::new();
        // The whole batch, then [A] stored, [B, C] refused, [B] refused, [C] stored.
        mock.add(handlers::exception(117));
        let stored_a = mock.add(handlers::record_ddl());
        mock.add(handlers::exception(117));
        mock.add(handlers::exception(117));
        let stored_c = mock.add(handlers::record_ddl());
        let task = WriterTask {
            client: clickhouse::Client::default().with_url(mock.url()),
            table: "events",
            insert_sql: "INSERT INTO events FORMAT RowBinary",
            settings: WriterSettings::default(),
            metrics: WriterMetrics::register(&Registry::new(), "events").unwrap(),
            health: hypercare_http::health::Health::default()
                .register("writer", Duration::from_secs(30)),
        };
        let queue = Arc::new(Semaphore::new(1024));
        let shares = Arc::new(KeyShares::default());
        let mut batch = Batch::new();
        for data in ["AAAA", "BBBB", "CCCC"] {
            batch.push(chunk(data, &queue, &shares).0);
        }
        batch.seal_frame();

        let results = task.insert_isolating_refusals(&batch).await;

        assert!(results[0].is_ok(), "{results:?}");
        assert!(
            matches!(results[1], Err(WriteError::Refused { .. })),
            "{results:?}"
        );
        assert!(results[2].is_ok(), "{results:?}");
        assert_eq!(stored_a.query().await, "AAAA");
        assert_eq!(stored_c.query().await, "CCCC");
        assert_eq!(task.metrics.split_inserts.get(), 2);
        batch.finish(results, &task.metrics);
        assert_eq!(queue.available_permits(), 1024, "the queue is given back");
        assert!(shares.0.lock().unwrap().is_empty(), "and the key's share");
    }

    #[test]
    fn one_key_cannot_take_more_than_its_share_of_the_queue() {
        let shares = Arc::new(KeyShares::default());
        let first = shares.take("noisy", 60, 100).unwrap();
        assert!(shares.take("noisy", 50, 100).is_none());
        let other = shares.take("quiet", 90, 100);
        assert!(other.is_some(), "another key still has its share");
        drop(first);
        assert!(shares.take("noisy", 100, 100).is_some());
    }
}
