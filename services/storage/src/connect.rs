//! A connection to a configured ClickHouse server, tuned to its version.

use std::time::Duration;

use secrecy::ExposeSecret;

use crate::config::ClickHouseSettings;
use crate::{Error, Result};

/// A handle on the ClickHouse server and database Hypercare uses. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// A client bound to Hypercare's database.
    pub client: clickhouse::Client,
    /// A client bound to no database, for statements that create it.
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

/// Connects to the server at `url` and reads its version.
///
/// Row validation of the `clickhouse` crate relies on `RowBinaryWithNamesAndTypes`,
/// which 18.16 does not speak: it is on only for servers of version 24 or newer.
#[tracing::instrument(name = "clickhouse.connect", skip(settings))]
pub async fn connect(url: &str, settings: &ClickHouseSettings) -> Result<Store> {
    let server = clickhouse::Client::default()
        .with_url(url)
        .with_user(settings.user.clone())
        .with_password(settings.password.expose_secret().to_owned())
        .with_validation(false);
    let version = tokio::time::timeout(
        Duration::from_secs(settings.query_timeout_secs),
        server.query("SELECT version()").fetch_one::<String>(),
    )
    .await
    .map_err(|_| {
        Error::LocalServer(format!(
            "ClickHouse at {url} did not answer within {}s",
            settings.query_timeout_secs
        ))
    })?
    .map_err(Error::clickhouse(format!("connection to {url}")))?;
    let server = server.with_validation(major_version(&version) >= 24);
    let client = server.clone().with_database(settings.database.clone());
    tracing::info!(url, version = %version, database = %settings.database, "Connected to ClickHouse.");
    Ok(Store {
        client,
        server,
        database: settings.database.clone(),
        version,
    })
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
