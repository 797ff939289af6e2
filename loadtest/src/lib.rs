//! Load tests and capacity baselines.
//!
//! ```text
//! scenario (YAML or built-in) -> scenario::check -> generator (open model, HDR
//! histograms, progress per second) -> report (JSON, text, SVG; thresholds ->
//! exit code; capacity model: USL fit, knee, max sustainable rate)
//! -> record (ClickHouse: loadtest_runs, loadtest_steps) -> compare (two runs)
//! ```
//!
//! The same commands run as the `loadtest` binary and as `hypercare loadtest`;
//! both call [`run`] with [`LoadtestArgs`].

pub mod capacity;
pub mod client;
pub mod compare;
pub mod error;
pub mod generator;
pub mod record;
pub mod report;
pub mod resources;
pub mod scenario;
pub mod target;
pub mod template;
pub mod wire;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use hypercare_storage::ClickHouseSettings;

use crate::generator::RunOptions;
use crate::report::Report;
use crate::resources::ResourceProbe;
use crate::scenario::Overrides;

/// Exit code of a run whose thresholds did not hold.
pub const EXIT_THRESHOLDS_BROKEN: u8 = 3;
/// Exit code of `compare --fail-on-slower` when a step got slower.
pub const EXIT_SLOWER: u8 = 4;

#[derive(Debug, Args)]
pub struct LoadtestArgs {
    #[command(subcommand)]
    pub command: LoadtestCommand,
}

#[derive(Debug, Subcommand)]
pub enum LoadtestCommand {
    /// Run a scenario: open-model arrivals at a constant rate or a stepped ramp.
    /// Exits 3 when a threshold is broken.
    Run(Box<RunArgs>),
    /// Compare two runs step by step (report files or recorded run ids).
    /// Exits 4 with --fail-on-slower when a step got significantly slower.
    Compare(CompareArgs),
    /// Serve a small HTTP target with a fixed service time (for trials and benchmarks).
    TargetServer(TargetArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (YAML); see docs/loadtest.md. Without one (and without
    /// --builtin), `GET /` on --target at --rate or --ramp.
    #[arg(conflicts_with = "builtin")]
    pub scenario: Option<PathBuf>,
    /// A built-in scenario: `hypercare-ingest` (NDJSON batches to POST /v1/events,
    /// key from LOADTEST_API_KEY).
    #[arg(long)]
    pub builtin: Option<String>,
    /// Base URL of the target (replaces the scenario's).
    #[arg(long)]
    pub target: Option<String>,
    /// Constant arrival rate in requests per second (replaces the scenario's rate or ramp).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Length of a constant-rate run, e.g. 30s.
    #[arg(long)]
    pub duration: Option<String>,
    /// A stepped ramp FROM:TO:STEPS:STEP_DURATION, e.g. 100:5000:10:30s.
    #[arg(long, conflicts_with = "rate")]
    pub ramp: Option<String>,
    /// Hard cap on the run's length (default 10m).
    #[arg(long)]
    pub max_duration: Option<String>,
    /// Requests in flight at most; above it requests are dropped as errors (default 2000).
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// Connections at most (default: --max-in-flight); requests beyond wait for a
    /// free connection, their latency still counted from the due time.
    #[arg(long)]
    pub connections: Option<usize>,
    /// The service under test, as named in its metrics (key of the baseline).
    #[arg(long)]
    pub service: Option<String>,
    /// Replicas of the service that served this run.
    #[arg(long)]
    pub replicas: Option<u32>,
    /// The latency objective of the maximum sustainable rate (default 300ms).
    #[arg(long)]
    pub slo_p99: Option<String>,
    /// The error-rate objective of the maximum sustainable rate (default 1%).
    #[arg(long)]
    pub slo_error_rate: Option<String>,
    /// Extra threshold, e.g. "p99 < 300ms" (repeatable).
    #[arg(long = "threshold")]
    pub thresholds: Vec<String>,
    /// Allow targets outside loopback.
    #[arg(long)]
    pub allow_remote: bool,
    /// Folder for the report files (<run-id>.json, .txt, .svg).
    #[arg(long, default_value = "loadtest-results")]
    pub out: PathBuf,
    /// Record the run in this ClickHouse (HTTP URL); `hypercare loadtest` records
    /// into the configured clickhouse.url by default.
    #[arg(long)]
    pub record_to: Option<String>,
    /// Database to record into (default: clickhouse.database, `hypercare`).
    #[arg(long)]
    pub record_database: Option<String>,
    /// Do not record, even when a ClickHouse is configured.
    #[arg(long)]
    pub no_record: bool,
    /// Set when `record_to` comes from the configuration rather than the command
    /// line: then an unreachable ClickHouse is a warning, not a failure.
    #[arg(skip)]
    pub record_is_default: bool,
    /// A process of the target on this host: its CPU and RSS are sampled per step.
    #[arg(long)]
    pub pid: Option<u32>,
    /// The target's Prometheus endpoint, scraped at each step's start and end.
    #[arg(long)]
    pub scrape: Option<String>,
    /// Metric to keep from the scrape (repeatable; default process CPU and RSS).
    #[arg(long = "scrape-metric")]
    pub scrape_metrics: Vec<String>,
    /// No progress line per second.
    #[arg(long)]
    pub quiet: bool,
    /// Print the JSON report on stdout instead of the text one.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run A (before): a report file (.json) or a recorded run id.
    pub a: String,
    /// Run B (after).
    pub b: String,
    /// ClickHouse to read recorded runs from (hypercare: clickhouse.url by default).
    #[arg(long)]
    pub from: Option<String>,
    #[arg(long)]
    pub database: Option<String>,
    /// Smallest change of a median that counts, in percent.
    #[arg(long, default_value_t = 5.0)]
    pub min_change: f64,
    #[arg(long)]
    pub json: bool,
    /// Exit 4 when some step got significantly slower.
    #[arg(long)]
    pub fail_on_slower: bool,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: String,
    /// Service time of every request, e.g. 5ms.
    #[arg(long, default_value = "0ms")]
    pub delay: String,
    #[arg(long, default_value_t = 200)]
    pub status: u16,
}

impl LoadtestArgs {
    /// Fills in the ClickHouse to record into and read from when none was given
    /// (`hypercare loadtest`: the configured server, or the local default one).
    pub fn default_clickhouse(&mut self, url: Option<&str>) {
        let Some(url) = url.filter(|u| !u.is_empty()) else {
            return;
        };
        match &mut self.command {
            LoadtestCommand::Run(args) if !args.no_record && args.record_to.is_none() => {
                args.record_to = Some(url.to_owned());
                args.record_is_default = true;
            }
            LoadtestCommand::Compare(args) if args.from.is_none() => {
                args.from = Some(url.to_owned());
            }
            _ => {}
        }
    }
}

/// Runs a command; the result is the process exit code.
pub async fn run(args: LoadtestArgs, clickhouse: &ClickHouseSettings) -> anyhow::Result<u8> {
    match args.command {
        LoadtestCommand::Run(args) => run_scenario(*args, clickhouse).await.map(|(code, _)| code),
        LoadtestCommand::Compare(args) => compare_runs(args, clickhouse).await,
        LoadtestCommand::TargetServer(args) => {
            let delay = scenario::parse_duration(&args.delay)
                .map_err(|e| anyhow::anyhow!("--delay: {e}"))?;
            let server = target::TargetServer::start(
                &args.listen,
                target::TargetConfig {
                    delay,
                    status: args.status,
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
            eprintln!(
                "Target server on {} (service time {delay:?}); Ctrl-C stops it.",
                server.url()
            );
            tokio::signal::ctrl_c().await.ok();
            eprintln!("{} requests served.", server.received());
            Ok(0)
        }
    }
}

/// Runs a scenario; returns the exit code and the report.
pub async fn run_scenario(
    args: RunArgs,
    clickhouse: &ClickHouseSettings,
) -> anyhow::Result<(u8, Report)> {
    let file = match (&args.scenario, &args.builtin) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            scenario::parse_file(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        (None, Some(name)) => scenario::builtin(name)?,
        (None, None) if args.target.is_some() => {
            scenario::parse_file("name: get-root\nrequests: [{path: /}]\nrate: 100\n")?
        }
        (None, None) => anyhow::bail!("give a scenario file, --builtin NAME or --target URL"),
    };
    let overrides = Overrides {
        target: args.target.clone(),
        rate: args.rate,
        duration: args.duration.clone(),
        ramp: args.ramp.clone(),
        max_duration: args.max_duration.clone(),
        max_in_flight: args.max_in_flight,
        connections: args.connections,
        slo_p99: args.slo_p99.clone(),
        slo_error_rate: args.slo_error_rate.clone(),
        service: args.service.clone(),
        replicas: args.replicas,
        thresholds: args.thresholds.clone(),
    };
    let scenario = file.check(&overrides)?;
    scenario::check_target_is_local(&scenario.target, args.allow_remote)?;
    // Connect before the run, so that a wrong URL fails before the load, not after.
    let store = match &args.record_to {
        Some(url) if !args.no_record => {
            let mut settings = clickhouse.clone();
            if let Some(db) = &args.record_database {
                settings.database = db.clone();
            }
            match record::open(url, &settings).await {
                Ok(store) => Some(store),
                Err(error) if args.record_is_default => {
                    eprintln!(
                        "Not recording this run: {error:#} (give --record-to URL, or start the service)."
                    );
                    None
                }
                Err(error) => return Err(error),
            }
        }
        _ => None,
    };

    let planned: Duration = scenario.steps.iter().map(|s| s.duration).sum();
    if !args.quiet {
        eprintln!(
            "Scenario `{}` against {}: {} step(s), {:.0} -> {:.0} req/s, {:?} in all.",
            scenario.name,
            scenario.target,
            scenario.steps.len(),
            scenario.steps.first().map_or(0.0, |s| s.rate),
            scenario.steps.last().map_or(0.0, |s| s.rate),
            planned
        );
    }
    let options = RunOptions {
        progress: !args.quiet,
        probe: ResourceProbe {
            pid: args.pid,
            scrape_url: args.scrape.clone(),
            scrape_metrics: args.scrape_metrics.clone(),
        },
    };
    let result = generator::run(&scenario, &options).await?;
    let run_id = uuid::Uuid::new_v4().to_string();
    let report = Report::new(run_id, &scenario, &result);
    let text = report.text();
    let files = write_files(&args.out, &report, &text)?;
    if args.json {
        writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(&report)?
        )?;
    } else {
        write!(std::io::stdout().lock(), "{text}")?;
    }
    eprintln!("Report: {}", files.join(", "));
    if let Some(store) = store {
        record::record(&store, &report).await?;
        eprintln!(
            "Recorded run {} in ClickHouse (database `{}`).",
            report.run_id, store.database
        );
    }
    let code = if report.passed {
        0
    } else {
        eprintln!("Thresholds broken: exit code {EXIT_THRESHOLDS_BROKEN}.");
        EXIT_THRESHOLDS_BROKEN
    };
    Ok((code, report))
}

fn write_files(out: &Path, report: &Report, text: &str) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::new();
    for (ext, content) in [
        ("json", serde_json::to_string_pretty(report)?),
        ("txt", text.to_owned()),
        ("svg", report::svg(report)),
    ] {
        let path = out.join(format!("{}.{ext}", report.run_id));
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

async fn load_report(
    which: &str,
    from: Option<&str>,
    clickhouse: &ClickHouseSettings,
) -> anyhow::Result<Report> {
    let path = Path::new(which);
    if path.is_file() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()));
    }
    let url = from.with_context(|| {
        format!(
            "`{which}` is not a report file; to read a recorded run give --from <clickhouse url>"
        )
    })?;
    let store = record::open(url, clickhouse).await?;
    record::load(&store, which)
        .await?
        .with_context(|| format!("no recorded run `{which}` in database `{}`", store.database))
}

async fn compare_runs(args: CompareArgs, clickhouse: &ClickHouseSettings) -> anyhow::Result<u8> {
    let mut settings = clickhouse.clone();
    if let Some(db) = &args.database {
        settings.database = db.clone();
    }
    let a = load_report(&args.a, args.from.as_deref(), &settings).await?;
    let b = load_report(&args.b, args.from.as_deref(), &settings).await?;
    if a.steps.len() != b.steps.len() {
        eprintln!(
            "The runs have {} and {} steps: comparing the first {}.",
            a.steps.len(),
            b.steps.len(),
            a.steps.len().min(b.steps.len())
        );
    }
    let comparison = compare::compare(
        &a.run_id,
        &a.steps,
        &b.run_id,
        &b.steps,
        args.min_change / 100.0,
    );
    if args.json {
        writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(&comparison)?
        )?;
    } else {
        write!(std::io::stdout().lock(), "{}", comparison.text())?;
    }
    Ok(
        if args.fail_on_slower && !comparison.slower_steps.is_empty() {
            EXIT_SLOWER
        } else {
            0
        },
    )
}
