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
    /// Timeout of one query or insert, in seconds.
    pub query_timeout_secs: u64,
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
            query_timeout_secs: 30,
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
}

impl Default for LocalServerSettings {
    fn default() -> Self {
        Self {
            binary: PathBuf::from("/usr/sbin/clickhouse-server"),
            http_port: 18123,
            tcp_port: 19000,
            startup_timeout_secs: 30,
        }
    }
}
