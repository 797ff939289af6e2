//! A connection to a configured ClickHouse server, tuned to its version, where
//! every statement has a deadline.
//!
//! Two deadlines guard each statement, because either side can be the one that
//! stalls:
//! - ClickHouse stops a query that runs longer than `max_execution_time` (set on
//!   every statement from the configuration) and answers with code 159, which
//!   the API maps to 504 `query_too_slow`;
//! - a server that stops answering altogether (hung, stopped, a dead network)
//!   sends nothing more: the connection gives up once no byte has arrived for
//!   the same time plus a margin, and the API answers 503.
//!
//! Requests of the API use [`Store::client`] (`query_timeout_secs`, 10 s by
//! default); background work whose statements are longer by nature (rollups,
//! alert evaluation, migrations) uses [`Store::background`]
//! (`background_query_timeout_secs`). API reads also run with `readonly`
//! ([`ReadOnly`]), so that no text built from a request can write.

use std::time::Duration;

use hyper_timeout::TimeoutConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::ExposeSecret;

use crate::config::ClickHouseSettings;
use crate::{Error, Result};

/// A handle on the ClickHouse server and database Hypercare uses. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// A client bound to Hypercare's database, for the statements of API
    /// requests and ingest: deadline `query_timeout_secs`.
    pub client: clickhouse::Client,
    /// The same database, for background work: deadline
    /// `background_query_timeout_secs`.
    pub background: clickhouse::Client,
    /// A client bound to no database, for statements that create it (deadline
    /// of background work).
    pub server: clickhouse::Client,
    pub database: String,
    /// The server's version, e.g. `18.16.1` or `26.9.2.1`.
    pub version: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("database", &self.database)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The server's major version (18 for the Debian package, 24+ in production).
    pub fn major_version(&self) -> u32 {
        major_version(&self.version)
    }

    /// Answers whether the server runs queries now, within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> bool {
        let query = self.server.query("SELECT 1").fetch_one::<u8>();
        matches!(tokio::time::timeout(timeout, query).await, Ok(Ok(1)))
    }
}

/// How long after the server's deadline a silent connection is given up: time
/// for ClickHouse to send its own "too slow" answer, which says more.
const SILENCE_MARGIN: Duration = Duration::from_secs(5);

/// Idle pooled connections are closed before ClickHouse closes them (3 s on
/// servers before 23.11), so a request never picks a connection being closed.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_millis(2_500);

/// Connects to the server at `url` and reads its version.
///
/// Row validation of the `clickhouse` crate relies on `RowBinaryWithNamesAndTypes`,
/// which 18.16 does not speak: it is on only for servers of version 24 or newer.
#[tracing::instrument(name = "clickhouse.connect", skip(settings))]
pub async fn connect(url: &str, settings: &ClickHouseSettings) -> Result<Store> {
    let interactive = Duration::from_secs(settings.query_timeout_secs);
    let background = Duration::from_secs(settings.background_query_timeout_secs);
    let server = client_with_deadline(url, settings, interactive);
    let version = server
        .query("SELECT version()")
        .fetch_one::<String>()
        .await
        .map_err(|e| {
            Error::LocalServer(format!(
                "ClickHouse at {url} did not answer `SELECT version()` within {}s: {e}",
                settings.query_timeout_secs
            ))
        })?;
    let validation = major_version(&version) >= 24;
    let database = |client: clickhouse::Client| {
        client
            .with_validation(validation)
            .with_database(settings.database.clone())
    };
    let client = database(server.with_setting(
        "max_rows_to_read",
        settings.query_max_rows_to_read.to_string(),
    ));
    let server = client_with_deadline(url, settings, background).with_validation(validation);
    let background = database(server.clone());
    tracing::info!(url, version = %version, database = %settings.database, "Connected to ClickHouse.");
    Ok(Store {
        client,
        background,
        server,
        database: settings.database.clone(),
        version,
    })
}

/// A client whose statements ClickHouse stops after `deadline`, over
/// connections that give up `SILENCE_MARGIN` later when the server is silent.
fn client_with_deadline(
    url: &str,
    settings: &ClickHouseSettings,
    deadline: Duration,
) -> clickhouse::Client {
    let mut connector = TimeoutConnector::new(HttpConnector::new());
    connector.set_connect_timeout(Some(deadline.min(Duration::from_secs(5))));
    connector.set_read_timeout(Some(deadline + SILENCE_MARGIN));
    connector.set_write_timeout(Some(deadline + SILENCE_MARGIN));
    // A long insert body is sent while the answer is awaited: writing is activity.
    connector.set_reset_reader_on_write(true);
    let http = HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(connector);
    clickhouse::Client::with_http_client(http)
        .with_url(url)
        .with_user(settings.user.clone())
        .with_password(settings.password.expose_secret().to_owned())
        .with_validation(false)
        .with_setting("max_execution_time", deadline.as_secs().max(1).to_string())
        .with_setting(
            "max_memory_usage",
            settings.query_max_memory_bytes.to_string(),
        )
}

/// Rows one API read may return; more is an error (ClickHouse code 396), never
/// a silently cut answer.
pub const MAX_RESULT_ROWS: u64 = 1_000_000;

/// API reads run `readonly`: a statement that would write or change the schema
/// is refused by ClickHouse itself, whatever text a request managed to put in
/// it. Level 2 (not 1) because our own per-query limits are settings too. The
/// answer is bounded to [`MAX_RESULT_ROWS`].
pub trait ReadOnly {
    fn read_only(self) -> Self;
}

impl ReadOnly for clickhouse::query::Query {
    fn read_only(self) -> Self {
        self.with_setting("readonly", "2")
            .with_setting("max_result_rows", MAX_RESULT_ROWS.to_string())
            .with_setting("result_overflow_mode", "throw")
    }
}

fn major_version(version: &str) -> u32 {
    version
        .split('.')
        .next()
        .and_then(|major| major.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::major_version;

    #[test]
    fn major_version_reads_the_first_number() {
        assert_eq!(major_version("18.16.1"), 18);
        assert_eq!(major_version("26.9.2.1"), 26);
        assert_eq!(major_version("garbage"), 0);
    }
}
