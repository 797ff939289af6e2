//! How Hypercare observes itself.
//!
//! - Logs: `tracing` events, JSON lines by default (one object per line, with the
//!   fields of the enclosing spans, such as `request_id`), or human-readable text.
//! - Metrics: each capability registers its own metrics on the one
//!   [`prometheus::Registry`] that `Application::build` creates, so that several
//!   applications in one process (the tests) do not share counters. Every metric
//!   name starts with [`METRIC_PREFIX`]; labels stay low-cardinality (a route
//!   pattern, never a raw path; a key name, never a key).
//! - Traces: with `[traces] otlp_endpoint` set, the same `tracing` spans (HTTP
//!   requests, ingest handlers, ClickHouse inserts) are exported over OTLP/HTTP
//!   by the OpenTelemetry SDK, and an incoming W3C `traceparent` makes a request
//!   part of the caller's trace.

use std::collections::BTreeMap;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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

/// The `[traces]` section: Hypercare's own spans, exported over OTLP/HTTP.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceSettings {
    /// Base URL of an OTLP/HTTP receiver (a Collector, Jaeger, Tempo, ...), such as
    /// `http://127.0.0.1:4318`; `/v1/traces` is appended unless the URL already
    /// ends with it. Unset: no traces are exported.
    pub otlp_endpoint: Option<String>,
    /// `protobuf` or `json`.
    pub protocol: TraceProtocol,
    /// Extra headers on each export, e.g. `{ authorization = "Bearer ..." }`.
    pub headers: BTreeMap<String, String>,
    /// The `service.name` of the exported spans.
    pub service_name: String,
    /// Share of new traces kept, from 0 to 1; a request that arrives with a
    /// sampled `traceparent` is always kept.
    pub sample_ratio: f64,
}

/// Header values are credentials (`authorization = "Bearer ..."`): only their
/// names are shown (`hypercare config` prints the settings).
impl std::fmt::Debug for TraceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .headers
            .keys()
            .map(|name| (name.as_str(), "[REDACTED]"))
            .collect();
        f.debug_struct("TraceSettings")
            .field("otlp_endpoint", &self.otlp_endpoint)
            .field("protocol", &self.protocol)
            .field("headers", &headers)
            .field("service_name", &self.service_name)
            .field("sample_ratio", &self.sample_ratio)
            .finish()
    }
}

impl Default for TraceSettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            protocol: TraceProtocol::Protobuf,
            headers: BTreeMap::new(),
            service_name: "hypercare".into(),
            sample_ratio: 1.0,
        }
    }
}

/// A `[traces]` setting that cannot be used, or an exporter that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TraceSettingsError {
    #[error("traces.sample_ratio: {0} is not between 0 and 1")]
    SampleRatio(f64),
    #[error("traces.otlp_endpoint `{0}`: expected an http:// or https:// URL")]
    EndpointScheme(String),
    #[error("traces.otlp_endpoint `{url}`: {reason}")]
    Exporter { url: String, reason: String },
}

impl TraceSettings {
    pub fn validate(&self) -> Result<(), TraceSettingsError> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(TraceSettingsError::SampleRatio(self.sample_ratio));
        }
        if let Some(url) = &self.otlp_endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(TraceSettingsError::EndpointScheme(url.clone()));
        }
        Ok(())
    }

    fn traces_url(&self) -> Option<String> {
        let base = self.otlp_endpoint.as_deref()?.trim_end_matches('/');
        Some(if base.ends_with("/v1/traces") {
            base.to_owned()
        } else {
            format!("{base}/v1/traces")
        })
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TraceProtocol {
    Protobuf,
    Json,
}

/// What [`init`] set up; [`Telemetry::shutdown`] exports the spans still buffered.
#[must_use = "call shutdown() before exiting, or buffered spans are lost"]
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Some(provider) = self.tracer_provider
            && let Err(error) = provider.shutdown()
        {
            eprintln!("Exporting the last spans failed: {error}");
        }
    }
}

/// Installs the global subscriber: logs, and spans exported over OTLP when
/// configured. Call once, from `main` (tests call [`init_test_logs`] instead).
/// The exporter sends from threads of its own (it uses a blocking HTTP client), so
/// call this outside async code or from a multi-threaded runtime.
pub fn init<W>(
    logs: &LogSettings,
    traces: &TraceSettings,
    writer: W,
) -> Result<Telemetry, TraceSettingsError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(logs.filter.as_str()));
    let (json, text) = match logs.format {
        LogFormat::Json => (
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            ),
            None,
        ),
        LogFormat::Text => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(writer),
            ),
        ),
    };
    let tracer_provider = match traces.traces_url() {
        None => None,
        Some(url) => Some(tracer_provider(traces, url)?),
    };
    let otel = tracer_provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("hypercare")));
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let result = tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .with(text)
        .with(otel)
        .try_init();
    if let Err(error) = result {
        eprintln!("Logging was already set up: {error}");
    }
    Ok(Telemetry { tracer_provider })
}

fn tracer_provider(
    settings: &TraceSettings,
    url: String,
) -> Result<SdkTracerProvider, TraceSettingsError> {
    let protocol = match settings.protocol {
        TraceProtocol::Protobuf => Protocol::HttpBinary,
        TraceProtocol::Json => Protocol::HttpJson,
    };
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(url.clone())
        .with_headers(settings.headers.clone().into_iter().collect())
        .build()
        .map_err(|e| TraceSettingsError::Exporter {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.sample_ratio,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build())
}

/// Installs logs only (no trace export).
pub fn init_logs<W>(settings: &LogSettings, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // Without an exporter there is nothing to shut down or to fail.
    if let Ok(telemetry) = init(settings, &TraceSettings::default(), writer) {
        telemetry.shutdown();
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
