//! The `[ingest]` section: request limits and the writer's batching.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    pub limits: Limits,
    pub writer: WriterSettings,
    /// `POST /v1/reconcile` (see `crate::reconcile`).
    pub reconcile: crate::reconcile::ReconcileSettings,
}

/// Limits on what one request may carry. A request over a request-wide limit is
/// refused whole with 413; a record over a per-record limit is rejected alone and
/// named in the response, and the other records are stored.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Request-wide: body size after gzip decoding, in bytes.
    pub max_body_bytes: usize,
    /// Request-wide: records (events or metric points) in one request.
    pub max_records_per_request: usize,
    /// Per record: characters in an event name, metric name, property or label key.
    pub max_name_length: usize,
    /// Per record: characters in any string value (ids, source, release, properties, labels).
    pub max_value_length: usize,
    /// Per record: properties of an event, or labels of a metric point.
    pub max_properties: usize,
    /// Per record: how far in the future a timestamp may be, in seconds (clock errors).
    pub max_future_secs: u64,
    /// Per record: buckets of a histogram point.
    pub max_histogram_buckets: usize,
    /// Request-wide, Segment routes: body size after gzip decoding, in bytes
    /// (Segment's own limit for a batch is 500 KB).
    pub max_segment_body_bytes: usize,
    /// Request-wide, Segment routes: calls in one `batch` (Segment's limit: 2,500).
    pub max_segment_batch_events: usize,
    /// Per record: how far in the past a timestamp may be, in days. Older records
    /// are rejected one by one with the reason, unless an `admin` key asks for
    /// backfill (`X-Hypercare-Backfill: true`). 0 turns the check off.
    pub max_age_days: u64,
    /// Per series: bytes of what every row of a metric series repeats, keys and
    /// values together: labels (attributes), and for OTLP the resource
    /// attributes, scope name and version and unit. A series over it is rejected.
    pub max_series_bytes: usize,
    /// Request-wide: encoded rows may be at most this many times the decoded
    /// body (plus 1 MiB), since shared labels and resources are copied into each
    /// row. 413 above, checked before the rows are allocated.
    pub max_encode_amplification: usize,
    /// Request-wide, protobuf bodies (OTLP): the decoded messages may take at
    /// most this many times the body (plus 1 MiB), estimated from the wire
    /// before decoding (an empty record is 2 bytes on the wire and hundreds in
    /// memory). 413 above.
    pub max_decode_amplification: usize,
    /// Request-wide: the whole body must arrive within this time, in
    /// milliseconds (a slow sender holds a connection and a buffer). 408 above.
    pub body_read_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 * 1024 * 1024,
            max_records_per_request: 10_000,
            max_name_length: 200,
            max_value_length: 4096,
            max_properties: 100,
            max_future_secs: 24 * 3600,
            max_histogram_buckets: 160,
            max_segment_body_bytes: 500 * 1024,
            max_segment_batch_events: 2_500,
            max_age_days: 90,
            max_series_bytes: 8 * 1024,
            max_encode_amplification: 64,
            max_decode_amplification: 16,
            body_read_timeout_ms: 30_000,
        }
    }
}

/// How accepted records reach ClickHouse: requests hand RowBinary chunks to one
/// writer per table, which gathers them into inserts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WriterSettings {
    /// Encoded bytes waiting for ClickHouse, per table, before requests get 503.
    pub queue_capacity_bytes: usize,
    /// Rows in one insert at most. ClickHouse is most efficient near 100 k.
    pub max_batch_rows: usize,
    /// Encoded bytes in one insert at most.
    pub max_batch_bytes: usize,
    /// Minimum time between the starts of two inserts into a table, in
    /// milliseconds, unless a batch is full. Rows that arrive meanwhile join the
    /// next insert. Bounds the number of parts ClickHouse must merge; an idle
    /// service still sends a lone request's rows at once.
    pub flush_interval_ms: u64,
    /// Inserts in flight at once, per table. One is usually best on a small
    /// machine: a second insert competes with the first for ClickHouse's CPU.
    pub insert_concurrency: usize,
    /// How long a request waits for its rows to be stored before it gets 503 (and
    /// may retry safely: event ids make retries idempotent), in milliseconds. A
    /// failing insert is retried until this runs out.
    pub ack_timeout_ms: u64,
    /// The part of `queue_capacity_bytes` one API key may hold, from 0 to 1:
    /// past it that key gets 503 while the others still have room.
    pub max_queue_share_per_key: f64,
}

impl Default for WriterSettings {
    fn default() -> Self {
        Self {
            queue_capacity_bytes: 256 * 1024 * 1024,
            max_batch_rows: 100_000,
            max_batch_bytes: 32 * 1024 * 1024,
            flush_interval_ms: 50,
            insert_concurrency: 1,
            ack_timeout_ms: 10_000,
            max_queue_share_per_key: 0.5,
        }
    }
}

impl WriterSettings {
    /// The bytes one key may have waiting in a writer's queue.
    pub fn key_share_bytes(&self) -> usize {
        (self.queue_capacity_bytes as f64 * self.max_queue_share_per_key) as usize
    }
}

impl Limits {
    /// How a route reads a body of at most `max_bytes`.
    pub fn body(&self, max_bytes: usize) -> hypercare_http::body::BodyLimit {
        hypercare_http::body::BodyLimit {
            max_bytes,
            read_timeout: std::time::Duration::from_millis(self.body_read_timeout_ms),
        }
    }

    /// The limits of an admin's backfill request: no age limit.
    pub fn for_backfill(&self) -> Self {
        Self {
            max_age_days: 0,
            ..self.clone()
        }
    }
}

/// A setting to change, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSettings(pub String);

impl IngestSettings {
    /// Checks the settings together; says which one to change and why.
    pub fn validate(&self) -> Result<(), InvalidSettings> {
        let l = &self.limits;
        let w = &self.writer;
        let positive = [
            ("ingest.limits.max_body_bytes", l.max_body_bytes),
            (
                "ingest.limits.max_records_per_request",
                l.max_records_per_request,
            ),
            ("ingest.limits.max_name_length", l.max_name_length),
            ("ingest.limits.max_value_length", l.max_value_length),
            (
                "ingest.limits.max_segment_body_bytes",
                l.max_segment_body_bytes,
            ),
            (
                "ingest.limits.max_segment_batch_events",
                l.max_segment_batch_events,
            ),
            ("ingest.limits.max_series_bytes", l.max_series_bytes),
            (
                "ingest.limits.max_encode_amplification",
                l.max_encode_amplification,
            ),
            (
                "ingest.limits.max_decode_amplification",
                l.max_decode_amplification,
            ),
            (
                "ingest.limits.body_read_timeout_ms",
                l.body_read_timeout_ms as usize,
            ),
            ("ingest.writer.max_batch_rows", w.max_batch_rows),
            ("ingest.writer.max_batch_bytes", w.max_batch_bytes),
            ("ingest.writer.insert_concurrency", w.insert_concurrency),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(InvalidSettings(format!("{name}: must be at least 1")));
            }
        }
        if w.queue_capacity_bytes < l.max_body_bytes {
            return Err(InvalidSettings(format!(
                "ingest.writer.queue_capacity_bytes ({}) must be at least ingest.limits.max_body_bytes ({}), or the largest request could never be queued",
                w.queue_capacity_bytes, l.max_body_bytes
            )));
        }
        if !(w.max_queue_share_per_key > 0.0 && w.max_queue_share_per_key <= 1.0) {
            return Err(InvalidSettings(format!(
                "ingest.writer.max_queue_share_per_key ({}) must be above 0 and at most 1",
                w.max_queue_share_per_key
            )));
        }
        if w.key_share_bytes() < l.max_body_bytes {
            return Err(InvalidSettings(format!(
                "ingest.writer.queue_capacity_bytes x max_queue_share_per_key ({} bytes) must be at least ingest.limits.max_body_bytes ({}), or one key's largest request could never be queued",
                w.key_share_bytes(),
                l.max_body_bytes
            )));
        }
        if w.queue_capacity_bytes > u32::MAX as usize {
            return Err(InvalidSettings(
                "ingest.writer.queue_capacity_bytes: at most 4 GiB".into(),
            ));
        }
        Ok(())
    }
}
