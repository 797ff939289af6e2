//! Lost-record reconciliation: which ids a source system holds that Hypercare
//! does not (`missing`), and the reverse (`extra`), per event and day.
//!
//! ```text
//! POST /v1/reconcile (admin key; JSON, NDJSON or CSV; gzip; body limit)
//!   -> input: options and each id checked, encoded as RowBinary chunks (max_ids)
//!   -> compare: CREATE a Memory table for the request, INSERT the chunks,
//!      two anti-joins against `events` (deadline), DROP the table
//!   -> 200 {source_ids, missing {total, ids}, extra {total, ids}, by_event_day}
//! ```
//!
//! `cli` is `hypercare reconcile`, which sends a file to this route. See
//! docs/investigate.md.

pub mod cli;
pub mod compare;
pub mod input;
pub mod routes;

use std::time::Duration;

use serde::Deserialize;

/// The `[ingest.reconcile]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcileSettings {
    /// Ids in one request at most (400 `invalid_request`, field `ids`, above).
    pub max_ids: usize,
    /// Body bytes after gzip decoding (413 `payload_too_large` above).
    pub max_body_bytes: usize,
    /// Missing and extra ids listed at most (the totals count them all).
    pub max_listed: usize,
    /// ClickHouse stops each statement of a reconciliation after this (504).
    pub query_timeout_secs: u64,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            max_ids: 2_000_000,
            max_body_bytes: 128 * 1024 * 1024,
            max_listed: 1000,
            query_timeout_secs: 60,
        }
    }
}

/// Rows per insert chunk: the size ClickHouse inserts best.
const CHUNK_ROWS: usize = 100_000;

/// What the route needs, in the app data.
pub struct ReconcileState {
    pub settings: ReconcileSettings,
    pub comparer: compare::Comparer,
    pub body_read_timeout: Duration,
    pub clock: hypercare_runtime::SharedClock,
}
