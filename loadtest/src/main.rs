//! `loadtest`: the load generator on its own (the same commands as `hypercare loadtest`).

use clap::Parser;

use hypercare_loadtest::LoadtestArgs;
use hypercare_storage::ClickHouseSettings;

#[derive(Debug, Parser)]
#[command(
    name = "loadtest",
    version,
    about = "Open-model HTTP load generator and capacity baselines."
)]
struct Cli {
    /// Runtime worker threads; 1 runs everything on one core (a current-thread runtime).
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    #[command(flatten)]
    args: LoadtestArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loadtest: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(hypercare_loadtest::run(
        cli.args,
        &ClickHouseSettings::default(),
    )) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(error) => {
            eprintln!("loadtest: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
