//! How Hypercare observes itself.
//!
//! - Logs: `tracing` events, JSON lines by default (one object per line, with the
//!   fields of the enclosing spans, such as `request_id`), or human-readable text.
//! - Metrics: each capability registers its own metrics on the one
//!   [`prometheus::Registry`] that `Application::build` creates, so that several
//!   applications in one process (the tests) do not share counters. Every metric
//!   name starts with [`METRIC_PREFIX`]; labels stay low-cardinality (a route
//!   pattern, never a raw path; a key name, never a key).

use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

pub use prometheus;

/// Prefix of every metric Hypercare exports.
pub const METRIC_PREFIX: &str = "hypercare";

/// The `[log]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `json` (one object per line) or `text`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `info,hypercare_ingest=debug`.
    /// `RUST_LOG`, when set, wins.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            filter: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

/// Installs the global subscriber. Call once, from `main` (tests call
/// [`init_test_logs`] instead).
pub fn init_logs<W>(settings: &LogSettings, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(settings.filter.as_str()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let result = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    if let Err(error) = result {
        eprintln!("Logging was already set up: {error}");
    }
}

/// Logs for tests: silent unless `TEST_LOG` is set, then text to the test output.
pub fn init_test_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let settings = LogSettings {
            format: LogFormat::Text,
            filter: "info".into(),
        };
        init_logs(&settings, tracing_subscriber::fmt::TestWriter::new);
    }
}

/// A metric name with the service prefix: `name("ingest_records_total")`.
pub fn metric_name(name: &str) -> String {
    format!("{METRIC_PREFIX}_{name}")
}
