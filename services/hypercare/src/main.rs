//! `hypercare`: loads the configuration, sets up logs and runs a subcommand.

use clap::Parser;

use hypercare::Settings;
use hypercare::cli::{self, Cli};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("hypercare: {error:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let telemetry =
        match hypercare_telemetry::init(&settings.log, &settings.traces, std::io::stderr) {
            Ok(telemetry) => telemetry,
            Err(error) => {
                eprintln!("hypercare: {error}");
                return std::process::ExitCode::from(2);
            }
        };
    let code = match cli::run(cli, settings).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader of the output left (`hypercare ticket list | head`): the
        // output ends there, as any Unix tool's does.
        Err(error) if cli::closed_pipe(&error) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                "Hypercare exited with an error."
            );
            std::process::ExitCode::FAILURE
        }
    };
    // The exporter flushes with a blocking client: keep it off the async workers.
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .ok();
    code
}
