//! `hypercare logs`: stored log lines from a terminal, through the API (like
//! `hypercare report`): `--url` (default the local service), a `read` key
//! (`--key`, `HYPERCARE_API_KEY`, or the local development key). One line per
//! log line, or the API's JSON with `--json`. [`get`] is the one HTTP call of
//! the investigation commands.

use clap::Args;
use serde_json::Value;

/// Where the API is and the key to it.
#[derive(Debug, Clone, Args)]
pub struct Api {
    /// Base URL of the Hypercare API.
    #[arg(long, env = "HYPERCARE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API key with the `read` scope.
    #[arg(long, env = "HYPERCARE_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Print the API's JSON answer instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// `GET path?query` on the API: its JSON, or its error in words.
pub async fn get(
    api: &Api,
    default_key: Option<String>,
    path: &str,
    query: &[(&str, String)],
) -> anyhow::Result<Value> {
    let key = hypercare_http::terminal::key(api.key.clone(), default_key)?;
    let url = format!("{}{path}", api.url.trim_end_matches('/'));
    let request = reqwest::Client::new()
        .get(&url)
        .bearer_auth(key)
        .query(query);
    hypercare_http::terminal::answer_json(&api.url, request).await
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub api: Api,
    /// Lines of one request (attribute request_id, request.id or http.request.id).
    #[arg(long)]
    pub request_id: Option<String>,
    /// Lines naming a user (attribute user_id, user.id or enduser.id).
    #[arg(long)]
    pub user_id: Option<String>,
    #[arg(long)]
    pub service: Option<String>,
    /// This level and above: trace, debug, info, warn, error, fatal.
    #[arg(long)]
    pub severity: Option<String>,
    /// Text the body contains, any case.
    #[arg(long)]
    pub q: Option<String>,
    /// RFC 3339; default one day before --to.
    #[arg(long)]
    pub from: Option<String>,
    /// RFC 3339; default now.
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
}

/// One log line as text: time, severity, service, body, its attributes.
pub fn log_line(line: &Value) -> String {
    let attributes: Vec<String> = line["attributes"]
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{}  {:<5}  {}  {}  {}",
        line["time"].as_str().unwrap_or_default(),
        line["severity"].as_str().unwrap_or_default(),
        line["service"].as_str().unwrap_or_default(),
        line["body"].as_str().unwrap_or_default(),
        attributes.join(" ")
    )
    .trim_end()
    .to_owned()
}

/// A `next_cursor` as the command to type for the next page.
pub fn more(answer: &Value) -> String {
    match answer["next_cursor"].as_str() {
        Some(cursor) => format!("(more: --cursor {cursor})\n"),
        None => String::new(),
    }
}

pub async fn run(args: LogsArgs, default_key: Option<String>) -> anyhow::Result<String> {
    let mut query = Vec::new();
    for (name, value) in [
        ("request_id", args.request_id),
        ("user_id", args.user_id),
        ("service", args.service),
        ("severity", args.severity),
        ("q", args.q),
        ("from", args.from),
        ("to", args.to),
        ("limit", args.limit.map(|l| l.to_string())),
        ("cursor", args.cursor),
    ] {
        if let Some(value) = value {
            query.push((name, value));
        }
    }
    let answer = get(&args.api, default_key, "/v1/logs", &query).await?;
    if args.api.json {
        return Ok(format!("{answer:#}\n"));
    }
    let mut out = String::new();
    for line in answer["lines"].as_array().into_iter().flatten() {
        out.push_str(&log_line(line));
        out.push('\n');
    }
    if out.is_empty() {
        out = format!(
            "No log line from {} to {}.\n",
            answer["from"].as_str().unwrap_or_default(),
            answer["to"].as_str().unwrap_or_default()
        );
    }
    out.push_str(&more(&answer));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_reads_left_to_right() {
        let line = serde_json::json!({"time": "2026-11-20T10:00:00.000Z", "severity": "ERROR",
            "service": "checkout", "body": "card declined", "attributes": {"request_id": "r-1"}});
        assert_eq!(
            log_line(&line),
            "2026-11-20T10:00:00.000Z  ERROR  checkout  card declined  request_id=r-1"
        );
        assert_eq!(
            more(&serde_json::json!({"next_cursor": "1.l.2"})),
            "(more: --cursor 1.l.2)\n"
        );
    }
}
