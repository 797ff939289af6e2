//! `hypercare rules check`: validate rule files without starting the service.
//! `hypercare rules review`: the noisy-alert review of a span, from a running
//! service (`GET /v1/alerts/review` with a `read` key), as text or JSON.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate alert rule files (or folders of them); print every problem of
    /// every file on stdout as `file:line: rule `name`: field: reason`, exit 1.
    Check {
        /// Files or folders; default: the configured [alerts] rules.
        paths: Vec<PathBuf>,
        /// A KPI file, so that rules naming KPIs are checked against it.
        #[arg(long)]
        kpis: Option<PathBuf>,
    },
    /// Which rules were noisy in a span: firings, noise, flaps, time to ack,
    /// and suggested changes (talks to a running service).
    Review(ReviewArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    /// Base URL of the Hypercare API.
    #[arg(long, env = "HYPERCARE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API key with the `read` scope.
    #[arg(long, env = "HYPERCARE_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Start of the span (RFC 3339); default 24 h ago.
    #[arg(long)]
    pub from: Option<String>,
    /// End of the span (RFC 3339); default now.
    #[arg(long)]
    pub to: Option<String>,
    /// Minutes within which a firing that resolves by itself, unacknowledged, is noise.
    #[arg(long)]
    pub noise_minutes: Option<u64>,
    /// Minutes after a resolution within which firing again is a flap.
    #[arg(long)]
    pub flap_minutes: Option<u64>,
    /// Print the API's JSON answer instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The review's text (or JSON), or the API's error in words.
pub async fn review(args: ReviewArgs, default_key: Option<String>) -> anyhow::Result<String> {
    let key = args
        .key
        .or(default_key)
        .ok_or_else(|| anyhow::anyhow!("no API key: pass --key or set HYPERCARE_API_KEY"))?;
    let mut query: Vec<(&str, String)> = Vec::new();
    for (name, value) in [("from", &args.from), ("to", &args.to)] {
        if let Some(value) = value {
            query.push((name, value.clone()));
        }
    }
    for (name, value) in [
        ("noise_minutes", args.noise_minutes),
        ("flap_minutes", args.flap_minutes),
    ] {
        if let Some(value) = value {
            query.push((name, value.to_string()));
        }
    }
    let url = format!("{}/v1/alerts/review", args.url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(key)
        .query(&query)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach Hypercare at {}: {e}", args.url))?;
    let status = response.status();
    let body = response.text().await?;
    let value = serde_json::from_str::<serde_json::Value>(&body).ok();
    if !status.is_success() {
        let message = value
            .as_ref()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or(body);
        anyhow::bail!("{status}: {message}");
    }
    let value = value.ok_or_else(|| anyhow::anyhow!("the answer is not JSON: {body}"))?;
    if args.json {
        return Ok(format!("{value:#}\n"));
    }
    Ok(review_text(&value)?)
}

/// The review as a table of rules, then the suggestions.
pub fn review_text(review: &serde_json::Value) -> Result<String, std::fmt::Error> {
    use std::fmt::Write as _;
    let mut out = String::new();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    let secs = |v: &serde_json::Value| {
        v.as_f64().map_or("-".to_owned(), |s| {
            crate::duration::format(std::time::Duration::from_millis((s * 1000.0) as u64))
        })
    };
    writeln!(
        out,
        "Alert review {} to {} (noise: resolved by itself within {}m; flap: again within {}m)",
        text(&review["from"]),
        text(&review["to"]),
        review["noise_minutes"],
        review["flap_minutes"]
    )?;
    let rules = review["rules"].as_array().map_or(&[][..], Vec::as_slice);
    if rules.is_empty() {
        out.push_str("No rule fired in this span.\n");
        return Ok(out);
    }
    writeln!(
        out,
        "{:<32} {:<4} {:>7} {:>5} {:>5} {:>9} {:>9} {:>8} {:>8}",
        "RULE", "TIER", "FIRINGS", "NOISE", "FLAPS", "MEDIAN", "TOTAL", "MTTA", "ROLLBACK"
    )?;
    for r in rules {
        writeln!(
            out,
            "{:<32} {:<4} {:>7} {:>5} {:>5} {:>9} {:>9} {:>8} {:>8}",
            text(&r["rule"]),
            text(&r["tier"]),
            r["firings"],
            r["noise"],
            r["flaps"],
            secs(&r["firing_secs_median"]),
            secs(&r["firing_secs_total"]),
            secs(&r["mtta_secs"]),
            r["with_rollback_trigger"],
        )?;
    }
    let suggestions = review["suggestions"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if suggestions.is_empty() {
        out.push_str("\nNo suggestion.\n");
    } else {
        out.push_str("\nSuggestions:\n");
        for s in suggestions {
            writeln!(
                out,
                "  {}: {} ({})",
                text(&s["rule"]),
                text(&s["text"]),
                text(&s["reason"])
            )?;
        }
    }
    Ok(out)
}

/// Runs the command; `configured` are the rule paths of the configuration.
/// Returns the exit code: 0 when every file passes, 1 otherwise.
pub fn run(
    command: RulesCommand,
    configured: &[PathBuf],
    kpi_file: Option<&PathBuf>,
) -> anyhow::Result<u8> {
    // The outcome is decided before anything is printed, so that a reader
    // that leaves early (`hypercare rules check | head`) changes nothing but
    // how much of it is read.
    let mut text = Vec::new();
    let mut summary = Vec::new();
    let code = report(command, configured, kpi_file, &mut text, &mut summary)?;
    print_stdout(&text)?;
    // The count goes to stderr, after the list, so `| head` still shows it.
    std::io::stderr().write_all(&summary).ok();
    Ok(code)
}

/// Writes `text` to stdout; a reader that left (a closed pipe) is not an error.
pub fn print_stdout(text: &[u8]) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes the outcome to `out` (problems, or the rules that passed) and, when
/// there are problems, their count to `summary`; answers the exit code.
pub fn report(
    command: RulesCommand,
    configured: &[PathBuf],
    kpi_file: Option<&PathBuf>,
    out: &mut impl Write,
    summary: &mut impl Write,
) -> std::io::Result<u8> {
    let (paths, kpis) = match command {
        RulesCommand::Check { paths, kpis } => (paths, kpis),
        RulesCommand::Review(_) => {
            writeln!(
                out,
                "`rules review` talks to the service: run it through `hypercare`"
            )?;
            return Ok(2);
        }
    };
    let paths = if paths.is_empty() {
        configured.to_vec()
    } else {
        paths
    };
    let kpi_ids = match kpis.as_ref().or(kpi_file) {
        Some(file) => match hypercare_kpis::definition::load_file(file) {
            Ok(kpis) => Some(kpis.into_iter().map(|k| k.id).collect::<Vec<_>>()),
            Err(e) => {
                writeln!(out, "{}: kpis: {e}", file.display())?;
                return Ok(1);
            }
        },
        None => None,
    };
    let (rules, problems) = crate::check::check(&paths, kpi_ids.as_deref());
    let files = crate::check::files(&paths).map_or(0, |f| f.len());
    if !problems.is_empty() {
        for problem in &problems {
            writeln!(out, "{problem}")?;
        }
        writeln!(
            summary,
            "{} in {}.",
            counted(problems.len(), "problem"),
            counted(files, "file")
        )?;
        return Ok(1);
    }
    writeln!(
        out,
        "{} in {}: OK",
        counted(rules.len(), "rule"),
        counted(files, "file")
    )?;
    for rule in &rules {
        writeln!(
            out,
            "  {:<4} {:<32} for {:<6} {}{}",
            rule.tier.as_str(),
            rule.name,
            crate::duration::format(rule.for_),
            rule.annotations.get("summary").map_or("", String::as_str),
            if rule.rollback_trigger {
                "  [rollback trigger]"
            } else {
                ""
            }
        )?;
    }
    out.flush()?;
    Ok(0)
}

/// `1 rule`, `3 rules`.
fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
