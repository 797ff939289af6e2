//! `hypercare advice release-window [--weeks 4] [--length 60m]`: the quietest
//! windows of the week from a terminal, through the API; a short table, or the
//! API's JSON with `--json`.

use clap::{Args, Subcommand};
use serde_json::Value;

use crate::logs::cli::{Api, get};

#[derive(Debug, Subcommand)]
pub enum AdviceCommand {
    /// The quietest windows of the past weeks' traffic for a release.
    ReleaseWindow(ReleaseWindowArgs),
}

#[derive(Debug, Args)]
pub struct ReleaseWindowArgs {
    #[command(flatten)]
    pub api: Api,
    /// Past weeks to learn from (1..=12).
    #[arg(long, default_value_t = 4)]
    pub weeks: u32,
    /// The window's length: 60m, 90m, 2h...
    #[arg(long, default_value = "60m")]
    pub length: String,
}

/// The advice as text.
pub fn render(answer: &Value) -> String {
    let number = |v: &Value| v.as_f64().unwrap_or_default();
    let mut out = format!(
        "Quietest {}-minute windows, {} per window over {} weeks ({} with traffic), {}:\n",
        answer["length_minutes"],
        answer["basis"].as_str().unwrap_or_default(),
        answer["weeks"],
        answer["weeks_with_traffic"],
        answer["time_zone"].as_str().unwrap_or_default(),
    );
    for (i, window) in answer["windows"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        out.push_str(&format!(
            "{}. {} - {}  expected {:.1} (sd {:.1}, p10-p90 {:.1}-{:.1})  next {}\n",
            i + 1,
            window["starts"].as_str().unwrap_or_default(),
            window["ends"].as_str().unwrap_or_default(),
            number(&window["expected"]),
            number(&window["stddev"]),
            number(&window["p10"]),
            number(&window["p90"]),
            window["next_start"].as_str().unwrap_or_default(),
        ));
    }
    out
}

pub async fn run(command: AdviceCommand, default_key: Option<String>) -> anyhow::Result<String> {
    let AdviceCommand::ReleaseWindow(args) = command;
    let query = [("weeks", args.weeks.to_string()), ("length", args.length)];
    let answer = get(&args.api, default_key, "/v1/advice/release-window", &query).await?;
    Ok(if args.api.json {
        format!("{answer:#}\n")
    } else {
        render(&answer)
    })
}
