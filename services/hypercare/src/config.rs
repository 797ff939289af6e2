//! The configuration: defaults, then a TOML file, then `HYPERCARE_*` variables.
//!
//! Every option, its unit and its default are in `config/hypercare.example.toml`.
//! A variable names a section and a key joined by `_`, and deeper levels by `__`:
//! `HYPERCARE_CLICKHOUSE_URL` sets `clickhouse.url`,
//! `HYPERCARE_INGEST_WRITER__FLUSH_INTERVAL_MS` sets `ingest.writer.flush_interval_ms`.
//! Unknown keys are refused, so a typo never passes silently.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

use hypercare_alerts::AlertSettings;
use hypercare_capacity::CapacitySettings;
use hypercare_http::auth::{ApiKeys, AuthSettings};
use hypercare_ingest::IngestSettings;
use hypercare_kpis::KpiSettings;
use hypercare_storage::ClickHouseSettings;
use hypercare_telemetry::{LogSettings, TraceSettings};
use hypercare_tickets::TicketSettings;

/// Sections a `HYPERCARE_<SECTION>_<KEY>` variable may name.
const SECTIONS: [&str; 10] = [
    "server",
    "clickhouse",
    "ingest",
    "auth",
    "log",
    "traces",
    "capacity",
    "tickets",
    "kpis",
    "alerts",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Hypercare's own files: the local ClickHouse server's data, the development
    /// API key. Defaults to `$XDG_DATA_HOME/hypercare` (`~/.local/share/hypercare`).
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub clickhouse: ClickHouseSettings,
    pub ingest: IngestSettings,
    pub auth: AuthSettings,
    pub log: LogSettings,
    pub traces: TraceSettings,
    pub capacity: CapacitySettings,
    pub tickets: TicketSettings,
    pub kpis: KpiSettings,
    pub alerts: AlertSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            server: ServerSettings::default(),
            clickhouse: ClickHouseSettings::default(),
            ingest: IngestSettings::default(),
            auth: AuthSettings::default(),
            log: LogSettings::default(),
            traces: TraceSettings::default(),
            capacity: CapacitySettings::default(),
            tickets: TicketSettings::default(),
            kpis: KpiSettings::default(),
            alerts: AlertSettings::default(),
        }
    }
}

/// The `[server]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address of the HTTP API; port 0 picks a free port.
    pub listen: String,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// On shutdown, how long in-flight requests may take to finish, in seconds.
    pub shutdown_timeout_secs: u64,
    /// Bytes of request bodies being read at once, over every request and key;
    /// past it a read answers 503 `server_busy`. Bounds what many slow senders
    /// can hold between them.
    pub max_bodies_in_flight_bytes: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            workers: 0,
            shutdown_timeout_secs: 30,
            max_bodies_in_flight_bytes: 512 * 1024 * 1024,
        }
    }
}

fn default_data_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("hypercare")
}

/// `ingest_writer__flush_interval_ms` -> `ingest.writer.flush_interval_ms`.
fn env_key_to_path(key: &str) -> String {
    let key = key.to_ascii_lowercase().replace("__", ".");
    for section in SECTIONS {
        if let Some(rest) = key.strip_prefix(section).and_then(|r| r.strip_prefix('_')) {
            return format!("{section}.{rest}");
        }
    }
    key
}

impl Settings {
    /// Loads the settings from `file` (when given, it must exist; otherwise
    /// `hypercare.toml` in the working directory is read if present) and the
    /// environment, then validates them.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        match file {
            Some(path) => {
                anyhow::ensure!(path.is_file(), "config file {} not found", path.display());
                figment = figment.merge(Toml::file_exact(path));
            }
            None => figment = figment.merge(Toml::file("hypercare.toml")),
        }
        let env = Env::prefixed("HYPERCARE_")
            .ignore(&["config", "url", "api_key"])
            .map(|key| env_key_to_path(key.as_str()).into());
        let settings: Settings = figment
            .merge(env)
            .extract()
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what serde cannot, before anything starts; says what to fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.server.listen.parse::<SocketAddr>().map_err(|e| {
            anyhow::anyhow!(
                "server.listen `{}`: {e} (expected host:port)",
                self.server.listen
            )
        })?;
        self.ingest.validate().map_err(anyhow::Error::msg)?;
        self.traces.validate().map_err(anyhow::Error::msg)?;
        ApiKeys::from_settings(&self.auth).map_err(anyhow::Error::msg)?;
        let largest_body = self.ingest.limits.max_body_bytes;
        // A buffer's capacity may be twice what it holds.
        anyhow::ensure!(
            self.server.max_bodies_in_flight_bytes >= 2 * largest_body,
            "server.max_bodies_in_flight_bytes ({}) must be at least twice ingest.limits.max_body_bytes ({largest_body}), or the largest body could never be read",
            self.server.max_bodies_in_flight_bytes
        );
        let limits = std::iter::once((
            "auth.default_rate_limit".to_owned(),
            self.auth.default_rate_limit,
        ))
        .chain(self.auth.keys.iter().enumerate().filter_map(|(i, k)| {
            k.rate_limit
                .map(|limit| (format!("auth.keys[{i}].rate_limit"), limit))
        }));
        for (at, limit) in limits {
            anyhow::ensure!(
                limit.burst_bytes as usize >= largest_body,
                "{at}.burst_bytes ({}) must be at least ingest.limits.max_body_bytes ({largest_body}), or the largest body could never be sent",
                limit.burst_bytes
            );
        }
        self.capacity.validate().map_err(anyhow::Error::msg)?;
        self.tickets.validate()?;
        self.kpis.load().map_err(anyhow::Error::msg)?;
        self.alerts.validate().map_err(anyhow::Error::msg)?;
        if let Some(url) = &self.clickhouse.url {
            anyhow::ensure!(
                url.starts_with("http://") || url.starts_with("https://"),
                "clickhouse.url `{url}`: expected an http:// or https:// URL of the HTTP interface"
            );
        }
        anyhow::ensure!(
            !self.clickhouse.database.is_empty(),
            "clickhouse.database: must not be empty"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_map_to_sections_and_nested_keys() {
        assert_eq!(env_key_to_path("CLICKHOUSE_URL"), "clickhouse.url");
        assert_eq!(
            env_key_to_path("INGEST_WRITER__FLUSH_INTERVAL_MS"),
            "ingest.writer.flush_interval_ms"
        );
        assert_eq!(env_key_to_path("DATA_DIR"), "data_dir");
        assert_eq!(
            env_key_to_path("CLICKHOUSE_LOCAL__HTTP_PORT"),
            "clickhouse.local.http_port"
        );
    }

    #[test]
    fn the_example_config_is_valid_and_complete() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/hypercare.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let settings: Settings = Figment::new().merge(Toml::string(&text)).extract().unwrap();
        settings.validate().unwrap();
    }

    #[test]
    fn the_example_lists_every_alerts_option_with_its_default() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/hypercare.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let example: Settings = Figment::new().merge(Toml::string(&text)).extract().unwrap();
        assert_eq!(
            format!("{:#?}", example.alerts),
            format!("{:#?}", AlertSettings::default()),
            "the example's [alerts] values are the defaults"
        );
        // The option names come from serde itself: an unknown key is refused with
        // the list of the known ones, so a new option cannot be forgotten here.
        let section = &text[text.find("[alerts]").unwrap()..];
        for probe in [
            "[alerts]\nzz_probe = 1\n",
            "[alerts.receivers.x]\nzz_probe = 1\n",
            "[alerts.tiers.P0]\nzz_probe = 1\n",
            "[alerts.tiers.P0]\nescalation = [{ zz_probe = 1 }]\n",
            "[[alerts.inhibit_rules]]\nzz_probe = 1\n",
        ] {
            let error = Figment::new()
                .merge(Toml::string(probe))
                .extract::<Settings>()
                .unwrap_err()
                .to_string();
            let expected = &error[error.find("expected").unwrap()..];
            let names: Vec<&str> = expected
                .split('`')
                .filter(|n| {
                    !n.is_empty()
                        && n.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                })
                .collect();
            assert!(names.len() >= 2, "{probe}: {error}");
            for name in names {
                let listed = section.lines().any(|line| {
                    let line = line.trim_start().trim_start_matches('#').trim_start();
                    line.starts_with(&format!("{name} ="))
                        || line.starts_with(&format!("[alerts.{name}"))
                        || line.starts_with(&format!("[[alerts.{name}]]"))
                        || line.contains(&format!("{{ {name} ="))
                        || line.contains(&format!(", {name} ="))
                });
                assert!(
                    listed,
                    "`{name}` ({probe:?}) is not in the example's [alerts]"
                );
            }
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Figment::new()
            .merge(Toml::string("[ingest.limits]\nmax_body_byte = 5\n"))
            .extract::<Settings>()
            .unwrap_err();
        assert!(err.to_string().contains("max_body_byte"), "{err}");
    }
}
