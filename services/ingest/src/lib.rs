//! Ingest: business events and technical metrics into ClickHouse.
//!
//! ```text
//! POST /v1/events, /v1/metrics (JSON); /v1/otlp/v1/{metrics,logs} (OTLP/HTTP);
//!      /v1/prometheus/write (remote write);
//!      /v1/segment/v1/{track,identify,page,screen,group,alias,batch} (Segment)
//!   -> routes: key, scope, rate limit; body (gzip, size limit)
//!   -> records: JSON object | array | NDJSON -> one lenient value per record
//!   -> event / metric: check each field, encode accepted records as RowBinary
//!   -> writer: queue (bounded, 503 when full) -> batched INSERT -> answer 202
//! ```
//!
//! A 202 means the accepted records are stored in ClickHouse. Retried batches are
//! made harmless by the tables and the reads (see `migrations/` and [`summary`]).

pub mod api_doc;
pub mod budget;
pub mod config;
pub mod event;
pub mod fields;
pub mod metric;
pub mod metrics;
pub mod otlp;
pub mod quantile;
pub mod records;
pub mod remote_write;
pub mod routes;
pub mod segment;
pub mod summary;
pub mod wire;
pub mod writer;

pub use config::{IngestSettings, Limits, WriterSettings};
pub use routes::{IngestState, configure};
