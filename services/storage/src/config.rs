//! Where ClickHouse is and how Hypercare logs in.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

/// The `[clickhouse]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseSettings {
    /// HTTP URL of a ClickHouse server, e.g. `http://clickhouse:8123`. When empty,
    /// Hypercare starts a local server of its own (see [`LocalServerSettings`]).
    pub url: Option<String>,
    /// Database holding Hypercare's tables; created by the migrations if missing.
    pub database: String,
    pub user: String,
    pub password: SecretString,
    /// Deadline of one statement of an API request or of ingest, in seconds:
    /// ClickHouse stops a query running longer (the API answers 504), and a
    /// server silent for this long plus 5 s is given up (503).
    pub query_timeout_secs: u64,
    /// Deadline of one statement of background work (KPI rollups, alert
    /// evaluation, migrations), in seconds.
    pub background_query_timeout_secs: u64,
    /// Memory one statement may use on the server, in bytes (`max_memory_usage`).
    pub query_max_memory_bytes: u64,
    /// Rows one statement of an API request may read (`max_rows_to_read`).
    pub query_max_rows_to_read: u64,
    /// The local default server, used only when `url` is empty.
    pub local: LocalServerSettings,
}

impl Default for ClickHouseSettings {
    fn default() -> Self {
        Self {
            url: None,
            database: "hypercare".into(),
            user: "default".into(),
            password: SecretString::from(String::new()),
            query_timeout_secs: 10,
            background_query_timeout_secs: 300,
            query_max_memory_bytes: 4_000_000_000,
            query_max_rows_to_read: 2_000_000_000,
            local: LocalServerSettings::default(),
        }
    }
}

/// The `[clickhouse.local]` section: the server Hypercare starts when no URL is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalServerSettings {
    /// The `clickhouse-server` executable (Debian's package installs it here).
    pub binary: PathBuf,
    /// HTTP port on 127.0.0.1; 0 picks a free one at each start.
    pub http_port: u16,
    /// Native-protocol port on 127.0.0.1 (for `clickhouse-client`); 0 picks a free one.
    pub tcp_port: u16,
    /// How long to wait for the server to answer `/ping`, in seconds.
    pub startup_timeout_secs: u64,
    /// Give the `default` user a password, made at the first start and kept in
    /// `<data_dir>/clickhouse/password` (mode 0600). Off, the user has none
    /// (loopback only): for throw-away servers such as the tests'.
    pub generate_password: bool,
}

impl Default for LocalServerSettings {
    fn default() -> Self {
        Self {
            binary: PathBuf::from("/usr/sbin/clickhouse-server"),
            http_port: 18123,
            tcp_port: 19000,
            startup_timeout_secs: 30,
            generate_password: true,
        }
    }
}
