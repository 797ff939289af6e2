//! The command line: `hypercare serve`, `migrate`, `config`, `loadtest`, `kpi`,
//! `rules`, `ticket`, `report`, `timeline`, `logs`, `advice`, `reconcile`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use hypercare_storage::migrate;

use crate::config::Settings;
use crate::startup::Application;

#[derive(Debug, Parser)]
#[command(
    name = "hypercare",
    version,
    about = "Post-launch observability and KPIs, from go-live through D+14."
)]
pub struct Cli {
    /// Configuration file (TOML). Without it, ./hypercare.toml is read if present.
    #[arg(long, global = true, env = "HYPERCARE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: HTTP API and writers. Starts a local ClickHouse when no
    /// clickhouse.url is configured. Stops cleanly on Ctrl-C or SIGTERM.
    Serve,
    /// Apply the schema migrations and exit.
    Migrate,
    /// Check the configuration and print it as the service sees it (secrets hidden).
    Config,
    /// Load tests and capacity baselines (the `loadtest` binary's commands); runs
    /// are recorded into the configured clickhouse.url unless --no-record.
    Loadtest(hypercare_loadtest::LoadtestArgs),
    /// Check, list and show the KPI definitions of a file (no service needed).
    #[command(subcommand)]
    Kpi(hypercare_kpis::cli::KpiCommand),
    /// Check alert rule files (no service needed); review which rules were
    /// noisy and backtest rules over a past window (talk to a running service).
    #[command(subcommand)]
    Rules(hypercare_alerts::cli::RulesCommand),
    /// Feedback tickets from a terminal (talks to a running service).
    Ticket(Box<hypercare_tickets::cli::TicketArgs>),
    /// The daily stabilization report of a launch day, as Markdown, HTML or
    /// JSON (talks to a running service).
    Report(hypercare_report::cli::ReportArgs),
    /// A user's events and the log lines naming them, in time order (talks to
    /// a running service).
    Timeline(hypercare_investigate::timeline::cli::TimelineArgs),
    /// Search the stored OTLP log lines: by request, user, service, severity,
    /// text (talks to a running service).
    Logs(hypercare_investigate::logs::cli::LogsArgs),
    /// Advice from the past weeks' traffic (talks to a running service).
    #[command(subcommand)]
    Advice(hypercare_investigate::advice::cli::AdviceCommand),
    /// Which ids of a source system Hypercare lacks, and which it has in
    /// excess (talks to a running service).
    Reconcile(hypercare_ingest::reconcile::cli::ReconcileArgs),
}

pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Migrate => {
            settings.validate()?;
            let (store, _local) = crate::startup::connect_store(&settings).await?;
            let outcome = migrate::run(&store).await?;
            print(format!(
                "Migrations: {} applied now ({:?}), {} already applied; database `{}` on ClickHouse {}.\n",
                outcome.applied.len(),
                outcome.applied,
                outcome.already_applied.len(),
                store.database,
                store.version
            ))
        }
        Command::Config => {
            settings.validate()?;
            print(format!("{settings:#?}\n"))
        }
        Command::Kpi(command) => hypercare_kpis::cli::run(command, settings.kpis.file.clone()),
        Command::Rules(hypercare_alerts::cli::RulesCommand::Review(args)) => {
            print(hypercare_alerts::cli::review(args, development_key(&settings)).await?)
        }
        Command::Rules(hypercare_alerts::cli::RulesCommand::Backtest(args)) => {
            print(hypercare_alerts::cli::backtest(args, development_key(&settings)).await?)
        }
        Command::Rules(command) => {
            let code = hypercare_alerts::cli::run(
                command,
                &settings.alerts.rules,
                settings.kpis.file.as_ref(),
            )?;
            // Problems are on stdout already: no error log line on top.
            if code != 0 {
                std::process::exit(i32::from(code));
            }
            Ok(())
        }
        Command::Ticket(args) => {
            hypercare_tickets::cli::run(*args, development_key(&settings)).await
        }
        Command::Report(args) => {
            print(hypercare_report::cli::run(args, development_key(&settings)).await?)
        }
        Command::Timeline(args) => print(
            hypercare_investigate::timeline::cli::run(args, development_key(&settings)).await?,
        ),
        Command::Logs(args) => {
            print(hypercare_investigate::logs::cli::run(args, development_key(&settings)).await?)
        }
        Command::Advice(command) => print(
            hypercare_investigate::advice::cli::run(command, development_key(&settings)).await?,
        ),
        Command::Reconcile(args) => {
            print(hypercare_ingest::reconcile::cli::run(args, development_key(&settings)).await?)
        }
        Command::Loadtest(mut args) => {
            // The configured server, else the local default while `serve` runs it.
            let local = format!("http://127.0.0.1:{}", settings.clickhouse.local.http_port);
            let mut login = settings.clickhouse.clone();
            let url = match &settings.clickhouse.url {
                Some(url) if !url.is_empty() => url.clone(),
                _ => {
                    // The password the local server was given at its first start.
                    let file = settings.data_dir.join("clickhouse/password");
                    if let Ok(password) = std::fs::read_to_string(file) {
                        login.password = password.trim().to_owned().into();
                    }
                    local
                }
            };
            args.default_clickhouse(Some(&url));
            let code = hypercare_loadtest::run(args, &login).await?;
            if code != 0 {
                std::process::exit(i32::from(code));
            }
            Ok(())
        }
    }
}

/// The local development key, as a first run makes it: what the terminal
/// commands use without --key.
fn development_key(settings: &Settings) -> Option<String> {
    std::fs::read_to_string(settings.data_dir.join("dev-api-key"))
        .ok()
        .map(|k| k.trim().to_owned())
}

/// Prints a command's output: `println!` panics when the reader has left
/// (`hypercare config | head`); a closed pipe only ends the output.
fn print(text: String) -> anyhow::Result<()> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Whether `error` comes from writing to a pipe whose reader has left.
pub fn closed_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = interrupt => tracing::info!("Received Ctrl-C."),
        () = terminate => tracing::info!("Received SIGTERM."),
    }
}
