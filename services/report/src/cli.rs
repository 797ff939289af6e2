//! `hypercare report`: a day's report from a terminal, as Markdown (default),
//! HTML or JSON. Talks to a running Hypercare over HTTP (`--url`, default the
//! local service) with a `read` key (`--key`, or `HYPERCARE_API_KEY`, or the
//! local development key), so it prints exactly what the API and the console
//! show, kept report included.

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CliFormat {
    Md,
    Html,
    Json,
}

impl CliFormat {
    fn as_str(self) -> &'static str {
        match self {
            CliFormat::Md => "md",
            CliFormat::Html => "html",
            CliFormat::Json => "json",
        }
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Base URL of the Hypercare API.
    #[arg(long, env = "HYPERCARE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API key with the `read` scope.
    #[arg(long, env = "HYPERCARE_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Launch id, or `current`.
    #[arg(long, default_value = "current")]
    pub launch: String,
    /// N of D+N (negative for a baseline day); today's by default.
    #[arg(long, allow_negative_numbers = true, conflicts_with_all = ["from", "to"])]
    pub day: Option<i64>,
    /// First day of a range (with --to): one line per day.
    #[arg(long, allow_negative_numbers = true, requires = "to")]
    pub from: Option<i64>,
    /// Last day of a range (with --from).
    #[arg(long, allow_negative_numbers = true, requires = "from")]
    pub to: Option<i64>,
    #[arg(long, value_enum, default_value_t = CliFormat::Md)]
    pub format: CliFormat,
    /// Make the report again from what the tables hold now, instead of the kept one.
    #[arg(long)]
    pub refresh: bool,
}

/// The report's text, or the API's error in words.
pub async fn run(args: ReportArgs, default_key: Option<String>) -> anyhow::Result<String> {
    let key = hypercare_http::terminal::key(args.key, default_key)?;
    let mut query = vec![("format", args.format.as_str().to_owned())];
    for (name, value) in [("day", args.day), ("from", args.from), ("to", args.to)] {
        if let Some(value) = value {
            query.push((name, value.to_string()));
        }
    }
    if args.refresh {
        query.push(("refresh", "true".into()));
    }
    let url = format!(
        "{}/v1/launches/{}/report",
        args.url.trim_end_matches('/'),
        args.launch
    );
    let request = reqwest::Client::new()
        .get(&url)
        .bearer_auth(key)
        .query(&query);
    let body = hypercare_http::terminal::answer(&args.url, request).await?;
    Ok(if body.ends_with('\n') {
        body
    } else {
        body + "\n"
    })
}
