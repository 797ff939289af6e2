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
//! Back-pressure: the queue is bounded in bytes by a semaphore; a request that
//! does not fit is refused at once with 503 and `Retry-After`, nothing is dropped
//! silently.
//!
//! Batching adapts to the load. A batch is sent as soon as an insert slot is free
//! and `flush_interval_ms` has passed since the previous insert started, or at
//! once when it is full; meanwhile arriving chunks join it. So an idle service
//! stores a request's rows right away (latency = one insert), and a busy one
//! sends fewer, larger inserts (at most one per interval per slot, which bounds
//! the parts ClickHouse must merge).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hypercare_http::health::HealthReporter;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

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
}

/// The sending side, shared by request handlers. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    table: &'static str,
    tx: mpsc::UnboundedSender<Chunk>,
    queue: Arc<Semaphore>,
    capacity: usize,
    ack_timeout: Duration,
    metrics: WriterMetrics,
}

impl Writer {
    /// Starts the writer task for `table`; `insert_sql` is the `INSERT ... FORMAT
    /// RowBinary` statement whose columns the chunks are encoded for. The task ends
    /// once `shutdown` completes and every queued chunk is stored (or failed).
    pub fn spawn(
        client: clickhouse::Client,
        table: &'static str,
        insert_sql: &'static str,
        settings: WriterSettings,
        metrics: WriterMetrics,
        health: HealthReporter,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> (Writer, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            table,
            tx,
            queue: Arc::new(Semaphore::new(settings.queue_capacity_bytes)),
            capacity: settings.queue_capacity_bytes,
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
        let handle = tokio::spawn(task.run(rx, shutdown));
        (writer, handle)
    }

    /// Encoded bytes the queue holds at most: a chunk larger than this could
    /// never be queued, so requests check it first and answer 413, not 503.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Queues `rows` encoded in `data` and waits until they are stored.
    pub async fn write(&self, rows: usize, data: Bytes) -> Result<(), WriteError> {
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
        let (done, confirmed) = oneshot::channel();
        self.metrics.queued_rows.add(rows as i64);
        self.metrics.queued_bytes.add(bytes as i64);
        self.tx
            .send(Chunk {
                rows,
                data,
                done,
                permit,
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
    waiters: Vec<oneshot::Sender<Result<(), WriteError>>>,
    permits: Vec<OwnedSemaphorePermit>,
    opened: Instant,
}

impl Batch {
    fn new() -> Self {
        Self {
            frames: Vec::new(),
            current: BytesMut::new(),
            rows: 0,
            bytes: 0,
            waiters: Vec::new(),
            permits: Vec::new(),
            opened: Instant::now(),
        }
    }

    fn push(&mut self, chunk: Chunk) {
        self.rows += chunk.rows;
        self.bytes += chunk.data.len();
        if chunk.data.len() >= FRAME_BYTES / 2 {
            self.seal_frame();
            self.frames.push(chunk.data);
        } else {
            self.current.extend_from_slice(&chunk.data);
            if self.current.len() >= FRAME_BYTES {
                self.seal_frame();
            }
        }
        self.waiters.push(chunk.done);
        self.permits.push(chunk.permit);
    }

    fn seal_frame(&mut self) {
        if !self.current.is_empty() {
            self.frames.push(self.current.split().freeze());
        }
    }

    fn is_full(&self, settings: &WriterSettings) -> bool {
        self.rows >= settings.max_batch_rows || self.bytes >= settings.max_batch_bytes
    }

    fn finish(self, result: Result<(), WriteError>, metrics: &WriterMetrics) {
        metrics.queued_rows.sub(self.rows as i64);
        metrics.queued_bytes.sub(self.bytes as i64);
        for waiter in self.waiters {
            // A request that gave up waiting has dropped its receiver; nothing to tell.
            waiter.send(result.clone()).ok();
        }
        drop(self.permits);
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
                let result = task.insert_with_retries(&batch).await;
                batch.finish(result, &task.metrics);
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

    /// Sends the batch, retrying what may succeed later for as long as the oldest
    /// request in it still waits.
    #[tracing::instrument(name = "clickhouse.insert", skip_all, fields(table = self.table, rows = batch.rows, bytes = batch.bytes))]
    async fn insert_with_retries(&self, batch: &Batch) -> Result<(), WriteError> {
        let give_up_at = batch.opened + Duration::from_millis(self.settings.ack_timeout_ms);
        let mut backoff = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let result = self.insert_once(batch).await;
            let elapsed = started.elapsed();
            match result {
                Ok(()) => {
                    self.metrics.insert_seconds.observe(elapsed.as_secs_f64());
                    self.metrics.batch_rows.observe(batch.rows as f64);
                    self.metrics.batch_bytes.observe(batch.bytes as f64);
                    self.metrics.inserted_rows.inc_by(batch.rows as u64);
                    tracing::debug!(
                        table = self.table,
                        rows = batch.rows,
                        bytes = batch.bytes,
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
                        tracing::error!(table = self.table, rows = batch.rows, error = %message, "ClickHouse refused a batch; it is not retried.");
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
                        tracing::error!(table = self.table, rows = batch.rows, attempt, error = %message, "Giving up on a batch: its requests were answered 503 and may retry.");
                        return Err(WriteError::Unavailable {
                            table: self.table,
                            message,
                        });
                    }
                    tracing::warn!(table = self.table, rows = batch.rows, attempt, retry_in_ms = backoff.as_millis() as u64, error = %message, "Insert failed; retrying.");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    attempt += 1;
                }
            }
        }
    }

    async fn insert_once(&self, batch: &Batch) -> clickhouse::error::Result<()> {
        let timeout = Some(Duration::from_millis(self.settings.ack_timeout_ms));
        let mut insert = self
            .client
            .insert_formatted_with(self.insert_sql)
            .with_timeouts(timeout, timeout);
        for frame in &batch.frames {
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
        for metric in [
            Box::new(queued_rows.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(queued_bytes.clone()),
            Box::new(queue_full.clone()),
            Box::new(inserted_rows.clone()),
            Box::new(batch_rows.clone()),
            Box::new(batch_bytes.clone()),
            Box::new(insert_seconds.clone()),
            Box::new(clickhouse_errors.clone()),
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
    }
}
