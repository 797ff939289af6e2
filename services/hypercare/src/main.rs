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
    hypercare_telemetry::init_logs(&settings.log, std::io::stderr);
    match cli::run(cli, settings).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                "Hypercare exited with an error."
            );
            std::process::ExitCode::FAILURE
        }
    }
}
