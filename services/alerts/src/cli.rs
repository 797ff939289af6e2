//! `hypercare rules check`: validate rule files without starting the service.
//! `hypercare rules review`: the noisy-alert review of a span, from a running
//! service (`GET /v1/alerts/review` with a `read` key), as text or JSON.
//! `hypercare rules backtest`: replay rules over a past window through the API
//! (`POST /v1/alerts/backtest`, a `read` key), printed as text or JSON.

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
    /// Replay rules over a past window (talks to a running service): when
    /// each alert would have gone pending, firing and resolved, and what it
    /// would have sent. Nothing is sent or written.
    Backtest(BacktestArgs),
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
    let key = hypercare_http::terminal::key(args.key, default_key)?;
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
    let request = reqwest::Client::new()
        .get(&url)
        .bearer_auth(key)
        .query(&query);
    let value = hypercare_http::terminal::answer_json(&args.url, request).await?;
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

#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    /// A candidate rule file; default the service's loaded rules.
    pub file: Option<PathBuf>,
    /// RFC 3339: the window's start.
    #[arg(long)]
    pub from: String,
    /// RFC 3339: the window's end.
    #[arg(long)]
    pub to: String,
    /// Only this rule (repeat for more).
    #[arg(long)]
    pub rule: Vec<String>,
    /// A sweep: `threshold=0.5,1,2` replaces the rules' numeric `above`/`below`.
    #[arg(long)]
    pub set: Option<String>,
    /// Time between two evaluations, e.g. `1m`; default the evaluator's
    /// interval, widened when the window is long.
    #[arg(long)]
    pub step: Option<String>,
    /// Print the API's JSON answer.
    #[arg(long)]
    pub json: bool,
    /// Base URL of the Hypercare API.
    #[arg(long, env = "HYPERCARE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API key with the `read` scope.
    #[arg(long, env = "HYPERCARE_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
}

/// Why a backtest could not be asked for or answered.
#[derive(Debug, thiserror::Error)]
pub enum BacktestCliError {
    #[error("--set: {0}")]
    Set(String),
    #[error("{0}: {1}")]
    File(String, std::io::Error),
    #[error("no API key: pass --key or set HYPERCARE_API_KEY")]
    NoKey,
    #[error("cannot reach Hypercare at {0}: {1}")]
    Unreachable(String, reqwest::Error),
    #[error("{0}")]
    Api(String),
}

/// The request body of the command's arguments.
pub fn backtest_body(args: &BacktestArgs) -> Result<serde_json::Value, BacktestCliError> {
    let mut body = serde_json::json!({"from": args.from, "to": args.to});
    if let Some(step) = &args.step {
        body["step"] = step.clone().into();
    }
    if let Some(file) = &args.file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| BacktestCliError::File(file.display().to_string(), e))?;
        body["rules"] = text.into();
    }
    if !args.rule.is_empty() {
        body["rule"] = args.rule.clone().into();
    }
    if let Some(set) = &args.set {
        let values = set
            .strip_prefix("threshold=")
            .ok_or_else(|| BacktestCliError::Set("expected `threshold=V1,V2,...`".into()))?;
        let values: Vec<f64> = values
            .split(',')
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| BacktestCliError::Set(format!("`{v}` is not a number")))
            })
            .collect::<Result<_, _>>()?;
        body["set"] = serde_json::json!({ "threshold": values });
    }
    Ok(body)
}

/// Asks the API and answers the text to print.
pub async fn backtest(
    args: BacktestArgs,
    default_key: Option<String>,
) -> Result<String, BacktestCliError> {
    let key = args
        .key
        .clone()
        .or(default_key)
        .ok_or(BacktestCliError::NoKey)?;
    let body = backtest_body(&args)?;
    let url = format!("{}/v1/alerts/backtest", args.url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .map_err(|e| BacktestCliError::Unreachable(args.url.clone(), e))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| BacktestCliError::Unreachable(args.url.clone(), e))?;
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if !status.is_success() {
        let message = value["message"].as_str().unwrap_or(&text);
        return Err(BacktestCliError::Api(match value["field"].as_str() {
            Some(field) => format!("{status}: {field}: {message}"),
            None => format!("{status}: {message}"),
        }));
    }
    Ok(if args.json {
        format!("{text}\n")
    } else {
        backtest_text(&value)
    })
}

/// The backtest answer as text: transitions, notifications, the sweep.
pub fn backtest_text(outcome: &serde_json::Value) -> String {
    use std::fmt::Write as _;
    let list = |key: &str| outcome[key].as_array().cloned().unwrap_or_default();
    let mut out = String::new();
    writeln!(
        out,
        "{} evaluations every {} from {} to {}: {} firing(s), {:.0} firing minutes.",
        outcome["evaluations"],
        outcome["step"].as_str().unwrap_or("?"),
        outcome["from"].as_str().unwrap_or("?"),
        outcome["to"].as_str().unwrap_or("?"),
        outcome["firings"],
        outcome["firing_minutes"].as_f64().unwrap_or(0.0),
    )
    .ok();
    for t in list("transitions") {
        let labels: Vec<String> = t["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        writeln!(
            out,
            "  {}  {:<8} {:<32} value {}  {{{}}}",
            t["at"].as_str().unwrap_or_default(),
            t["state"].as_str().unwrap_or_default(),
            t["rule"].as_str().unwrap_or_default(),
            t["value"],
            labels.join(", ")
        )
        .ok();
    }
    let notifications = list("notifications");
    if !notifications.is_empty() {
        writeln!(out, "Would have notified:").ok();
        for n in notifications {
            let alerts: Vec<&str> = n["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str())
                .collect();
            writeln!(
                out,
                "  {}  {:<20} {:<10} {}",
                n["at"].as_str().unwrap_or_default(),
                n["receiver"].as_str().unwrap_or_default(),
                n["reason"].as_str().unwrap_or_default(),
                alerts.join(", ")
            )
            .ok();
        }
    }
    let sweep = list("sweep");
    if !sweep.is_empty() {
        writeln!(
            out,
            "Threshold sweep:\n  threshold   firings   firing minutes"
        )
        .ok();
        for s in sweep {
            writeln!(
                out,
                "  {:<11} {:<9} {:.0}",
                s["threshold"].to_string(),
                s["firings"].to_string(),
                s["firing_minutes"].as_f64().unwrap_or(0.0)
            )
            .ok();
        }
    }
    for n in list("not_replayed") {
        writeln!(
            out,
            "Not replayed: {}: {}",
            n["rule"].as_str().unwrap_or_default(),
            n["reason"].as_str().unwrap_or_default()
        )
        .ok();
    }
    if outcome["truncated"] == true {
        writeln!(out, "(lists cut at their limit; the counts are exact)").ok();
    }
    out
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
        RulesCommand::Backtest(_) => {
            writeln!(
                out,
                "`rules backtest` talks to the service: run it through `hypercare`"
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

#[cfg(test)]
mod backtest_tests {
    use super::*;

    fn args(set: Option<&str>) -> BacktestArgs {
        BacktestArgs {
            file: None,
            from: "2026-01-01T00:00:00Z".into(),
            to: "2026-01-08T00:00:00Z".into(),
            rule: vec!["payment-errors".into()],
            set: set.map(str::to_owned),
            step: None,
            json: false,
            url: "http://127.0.0.1:9".into(),
            key: None,
        }
    }

    #[test]
    fn set_is_read_as_a_threshold_list() {
        let body = backtest_body(&args(Some("threshold=0.5,1, 2"))).unwrap();
        assert_eq!(body["set"]["threshold"], serde_json::json!([0.5, 1.0, 2.0]));
        assert_eq!(body["rule"], serde_json::json!(["payment-errors"]));
        assert!(body.get("rules").is_none());
        assert!(matches!(
            backtest_body(&args(Some("for=5m"))),
            Err(BacktestCliError::Set(_))
        ));
        assert!(matches!(
            backtest_body(&args(Some("threshold=1,x"))),
            Err(BacktestCliError::Set(m)) if m.contains("`x`")
        ));
    }

    #[test]
    fn the_text_lists_transitions_and_the_sweep() {
        let outcome = serde_json::json!({
            "evaluations": 3, "step": "5m", "from": "a", "to": "b", "firings": 1, "firing_minutes": 30.0,
            "transitions": [{"rule": "r", "state": "firing", "at": "2026-01-01T00:10:00.000Z", "value": 0.05,
                             "labels": {"alertname": "r", "tier": "P0"}}],
            "notifications": [{"receiver": "oncall", "reason": "notify", "at": "2026-01-01T00:10:00.000Z", "alerts": ["r"]}],
            "sweep": [{"threshold": 0.01, "firings": 2, "firing_minutes": 50.0}],
            "not_replayed": [{"rule": "k", "reason": "the KPI board"}], "truncated": false
        });
        let text = backtest_text(&outcome);
        assert!(
            text.contains("2026-01-01T00:10:00.000Z  firing   r"),
            "{text}"
        );
        assert!(text.contains("{tier=P0}"), "{text}");
        assert!(text.contains("oncall"), "{text}");
        assert!(text.contains("0.01        2         50"), "{text}");
        assert!(text.contains("Not replayed: k"), "{text}");
    }
}
