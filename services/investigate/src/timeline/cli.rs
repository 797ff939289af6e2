//! `hypercare timeline USER --from --to`: a user's timeline from a terminal,
//! through the API; one line per item (events with their properties, log lines
//! as `hypercare logs` prints them), or the API's JSON with `--json`.

use clap::Args;
use serde_json::Value;

use crate::logs::cli::{Api, get, log_line, more};

#[derive(Debug, Args)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub api: Api,
    /// The user's `user_id`.
    pub user: String,
    /// RFC 3339 (the window is at most 7 days).
    #[arg(long)]
    pub from: String,
    /// RFC 3339; default now.
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
}

fn item_line(item: &Value) -> String {
    if item["type"] == "log" {
        return format!("log    {}", log_line(item));
    }
    let properties = item["properties"]
        .as_object()
        .filter(|p| !p.is_empty())
        .map(|p| Value::Object(p.clone()).to_string())
        .unwrap_or_default();
    let value = item["value"]
        .as_f64()
        .map(|v| format!(" value={v}"))
        .unwrap_or_default();
    format!(
        "event  {}  {}{value}  {properties}",
        item["time"].as_str().unwrap_or_default(),
        item["event"].as_str().unwrap_or_default(),
    )
    .trim_end()
    .to_owned()
}

pub async fn run(args: TimelineArgs, default_key: Option<String>) -> anyhow::Result<String> {
    let mut query = vec![("from", args.from)];
    for (name, value) in [
        ("to", args.to),
        ("limit", args.limit.map(|l| l.to_string())),
        ("cursor", args.cursor),
    ] {
        if let Some(value) = value {
            query.push((name, value));
        }
    }
    // The id goes in the path: encode what a path segment cannot hold.
    let mut path = String::from("/v1/users/");
    for byte in args.user.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            path.push(char::from(byte));
        } else {
            path.push_str(&format!("%{byte:02X}"));
        }
    }
    path.push_str("/timeline");
    let answer = get(&args.api, default_key, &path, &query).await?;
    if args.api.json {
        return Ok(format!("{answer:#}\n"));
    }
    let mut out = String::new();
    for item in answer["items"].as_array().into_iter().flatten() {
        out.push_str(&item_line(item));
        out.push('\n');
    }
    if out.is_empty() {
        out = format!(
            "Nothing for user {} from {} to {}.\n",
            args.user,
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
    fn events_show_their_name_value_and_properties() {
        let item = serde_json::json!({"type": "event", "time": "2026-11-20T10:00:00.000Z",
            "event": "payment_failed", "value": 12.5, "properties": {"reason": "card"}});
        assert_eq!(
            item_line(&item),
            r#"event  2026-11-20T10:00:00.000Z  payment_failed value=12.5  {"reason":"card"}"#
        );
    }
}
