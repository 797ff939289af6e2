//! `hypercare reconcile --ids FILE --event NAME`: sends the ids a source
//! system holds to a running Hypercare (`POST /v1/reconcile`, as CSV: one id
//! per line, or `event,id[,day]` lines) with an `admin` key, and prints what is
//! missing and extra. The file is sent as it is (gzip on the wire when it is
//! large); `-` reads standard input.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;

use super::compare::Reconciliation;

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// File of ids: one per line (`id`), or `event,id[,day]` lines (CSV); `-` for stdin.
    #[arg(long)]
    pub ids: PathBuf,
    /// The event of lines that name none.
    #[arg(long)]
    pub event: Option<String>,
    /// String property of the events that holds the business id (default: ids are event ids).
    #[arg(long)]
    pub id_property: Option<String>,
    /// First UTC day compared (YYYY-MM-DD).
    #[arg(long)]
    pub from: Option<String>,
    /// Last UTC day compared (YYYY-MM-DD), inclusive.
    #[arg(long)]
    pub to: Option<String>,
    /// Ids listed per side at most.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print the JSON answer instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Base URL of the Hypercare API.
    #[arg(long, env = "HYPERCARE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API key with the `admin` scope.
    #[arg(long, env = "HYPERCARE_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
}

/// The answer in words (or JSON), or the API's error.
pub async fn run(args: ReconcileArgs, default_key: Option<String>) -> anyhow::Result<String> {
    let key = hypercare_http::terminal::key(args.key.clone(), default_key)?;
    let mut body = Vec::new();
    if args.ids.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut body)?;
    } else {
        body = std::fs::read(&args.ids)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.ids.display()))?;
    }
    let mut query: Vec<(&str, String)> = Vec::new();
    let options = [
        ("event", &args.event),
        ("id_property", &args.id_property),
        ("from", &args.from),
        ("to", &args.to),
    ];
    for (name, value) in options {
        if let Some(value) = value {
            query.push((name, value.clone()));
        }
    }
    if let Some(limit) = args.limit {
        query.push(("limit", limit.to_string()));
    }
    let url = format!("{}/v1/reconcile", args.url.trim_end_matches('/'));
    let request = reqwest::Client::new()
        .post(&url)
        .bearer_auth(key)
        .query(&query)
        .header("content-type", "text/csv")
        .body(body);
    let text = hypercare_http::terminal::answer(&args.url, request).await?;
    if args.json {
        return Ok(text + "\n");
    }
    let answer: Reconciliation = serde_json::from_str(&text)?;
    Ok(summary(&answer))
}

/// The answer for a terminal: totals, then each listed id, then the counts.
pub fn summary(answer: &Reconciliation) -> String {
    let mut lines = vec![format!(
        "{} ids compared: {} missing in Hypercare, {} extra in Hypercare.",
        answer.source_ids, answer.missing.total, answer.extra.total
    )];
    for (side, listed) in [("missing", &answer.missing), ("extra", &answer.extra)] {
        for id in &listed.ids {
            let day = id.day.as_deref().unwrap_or("-");
            lines.push(format!("{side}\t{}\t{day}\t{}", id.event, id.id));
        }
        let more = listed.total.saturating_sub(listed.ids.len() as u64);
        if more > 0 {
            lines.push(format!("{side}\t... {more} more (--json, or --limit)"));
        }
    }
    for row in &answer.by_event_day {
        let day = row.day.as_deref().unwrap_or("-");
        lines.push(format!(
            "count\t{}\t{day}\tmissing {}\textra {}",
            row.event, row.missing, row.extra
        ));
    }
    lines.join("\n") + "\n"
}
