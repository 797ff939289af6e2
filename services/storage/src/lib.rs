//! ClickHouse is Hypercare's only store. This crate owns everything that touches it
//! below the level of a capability:
//!
//! - [`config`]: where the server is (a URL, or the local default) and how to log in;
//! - [`local`]: the local default, a `clickhouse-server` process that Hypercare starts
//!   itself under its own data folder and stops when it stops;
//! - [`connect`]: a [`clickhouse::Client`] for a configured server, tuned to its version;
//! - [`migrate`]: the versioned schema, applied by `hypercare migrate` and at start-up;
//! - [`rowbinary`]: the RowBinary encoding our writers build their inserts with;
//! - [`late`]: marks hours that received events after KPI rollups may have summed them;
//! - [`catalog`]: every SQL statement the service runs, so that tests can run each one
//!   through both ClickHouse engines we support (18.16 and 26.x).
//!
//! The schema and queries stay within what ClickHouse 18.16 and 26.x both accept; see
//! `docs/clickhouse-compat.md`.

pub mod catalog;
pub mod config;
mod connect;
pub mod late;
pub mod local;
pub mod migrate;
pub mod rowbinary;

pub use config::{ClickHouseSettings, LocalServerSettings};
pub use connect::{ReadOnly, Store, connect};

/// Errors of the storage layer. Each says what was being done and what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("ClickHouse {what} failed: {source}")]
    ClickHouse {
        what: String,
        #[source]
        source: clickhouse::error::Error,
    },
    #[error("local ClickHouse server: {0}")]
    LocalServer(String),
    #[error(
        "migration {version:04} ({name}) was changed after it was applied (checksum {applied} in ClickHouse, {current} here); write a new migration instead"
    )]
    MigrationChanged {
        version: u32,
        name: String,
        applied: String,
        current: String,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn clickhouse(
        what: impl Into<String>,
    ) -> impl FnOnce(clickhouse::error::Error) -> Self {
        let what = what.into();
        move |source| Error::ClickHouse { what, source }
    }
}
