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
use hypercare_console::ConsoleSettings;
use hypercare_http::auth::{ApiKeys, AuthSettings};
use hypercare_ingest::IngestSettings;
use hypercare_kpis::KpiSettings;
use hypercare_report::ReportSettings;
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
    pub console: ConsoleSettings,
    pub report: ReportSettings,
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
            console: ConsoleSettings::default(),
            report: ReportSettings::default(),
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
    /// environment. What serde cannot check is checked once, by [`Self::validate`],
    /// where the settings are used (`serve`, `migrate`, `config`).
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
        self.traces.validate()?;
        ApiKeys::from_settings(&self.auth)?;
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
        self.capacity.validate()?;
        self.tickets.validate()?;
        self.report.validate()?;
        self.kpis
            .load()
            .map_err(|e| anyhow::anyhow!("kpis.file {e}"))?;
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
    fn the_example_holds_every_default() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/hypercare.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let example: Settings = Figment::new().merge(Toml::string(&text)).extract().unwrap();
        let defaults = Settings::default();
        // Keys are the only thing the example sets that has no default.
        let mut example = example;
        example.auth.keys.clear();
        example.data_dir = defaults.data_dir.clone();
        let (example, defaults) = (format!("{example:#?}"), format!("{defaults:#?}"));
        for (line, (a, b)) in example.lines().zip(defaults.lines()).enumerate() {
            assert_eq!(a, b, "line {line} of the settings differs from its default");
        }
        assert_eq!(example.lines().count(), defaults.lines().count());
    }

    /// Every option of every section is written in the example: serde lists a
    /// section's option names when it refuses an unknown one, so none can be
    /// forgotten.
    #[test]
    fn the_example_lists_every_option_of_every_section() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/hypercare.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let headers: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with('[') && !l.starts_with("[["))
            .map(|l| l.split(']').next().unwrap().trim_start_matches('['))
            .collect();
        let mut probes: Vec<(String, String)> = vec![(String::new(), "zz_probe = 1\n".into())];
        for header in headers {
            probes.push((header.to_owned(), format!("[{header}]\nzz_probe = 1\n")));
        }
        for (section, probe) in probes {
            let Err(error) = Figment::new()
                .merge(Toml::string(&probe))
                .extract::<Settings>()
            else {
                // A map of free names (receivers, templates): nothing to list.
                continue;
            };
            let error = error.to_string();
            let Some(at) = error.find("expected") else {
                continue;
            };
            let names: Vec<&str> = error[at..]
                .split('`')
                .filter(|n| {
                    !n.is_empty()
                        && n.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                })
                .collect();
            // Sections of one map (alerts.tiers.P0..P3) share a type: listing an
            // option in one of them is enough.
            let body = match section.rsplit_once('.') {
                Some((parent, _)) if parent.ends_with("tiers") => headers_under(&text, parent)
                    .iter()
                    .map(|s| section_text(&text, s))
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => section_text(&text, &section),
            };
            for name in names {
                let listed = body.lines().any(|line| {
                    let line = line.trim_start().trim_start_matches('#').trim_start();
                    line.starts_with(&format!("{name} ="))
                        || line.starts_with(&format!("{name}="))
                        || line.starts_with(&format!("[{}{name}", prefix(&section)))
                        || line.starts_with(&format!("[[{}{name}", prefix(&section)))
                });
                assert!(listed, "`{name}` of [{section}] is not in the example");
            }
        }
    }

    fn headers_under(text: &str, parent: &str) -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter_map(|l| l.strip_prefix(&format!("[{parent}.")))
            .map(|rest| format!("{parent}.{}", rest.split(']').next().unwrap()))
            .collect()
    }

    fn prefix(section: &str) -> String {
        if section.is_empty() {
            String::new()
        } else {
            format!("{section}.")
        }
    }

    /// The lines of `[section]` up to the next header that is not inside it
    /// (the whole file for the top level).
    fn section_text(text: &str, section: &str) -> String {
        if section.is_empty() {
            return text.to_owned();
        }
        let header = format!("[{section}]");
        let Some(start) = text
            .lines()
            .position(|l| l.trim_start().starts_with(&header))
        else {
            return String::new();
        };
        text.lines()
            .skip(start)
            .enumerate()
            .take_while(|(i, l)| {
                let l = l.trim_start();
                *i == 0
                    || !l.starts_with('[')
                    || l.trim_start_matches('[')
                        .starts_with(&format!("{section}."))
            })
            .map(|(_, l)| l)
            .collect::<Vec<_>>()
            .join("\n")
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
