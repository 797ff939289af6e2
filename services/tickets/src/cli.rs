//! `hypercare ticket ...`: the tickets API from a terminal. Talks to a running
//! Hypercare over HTTP (`--url`, default the local service) with a key that has
//! the `support` scope (`--key`, or `HYPERCARE_API_KEY`, or the local
//! development key).

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::io::Write as _;

#[derive(Debug, Args)]
pub struct TicketArgs {
    /// Base URL of the Hypercare API.
    #[arg(
        long,
        env = "HYPERCARE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// API key (scope `support` to change tickets, `read` to look).
    #[arg(long, env = "HYPERCARE_API_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,
    /// Print the API's JSON answer instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: TicketCommand,
}

#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// Log a ticket; prints its key and similar open tickets.
    Create {
        #[arg(long)]
        title: String,
        #[arg(long)]
        category: String,
        #[arg(long)]
        impact: String,
        #[arg(long)]
        urgency: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        channel: Option<String>,
        #[arg(long)]
        reporter: Option<String>,
        #[arg(long)]
        affected_user: Option<String>,
        #[arg(long)]
        release: Option<String>,
        #[arg(long)]
        launch: Option<String>,
        /// Override the matrix (needs --reason).
        #[arg(long)]
        priority: Option<String>,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// Find tickets.
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        priority: Option<String>,
        #[arg(long)]
        category: Option<String>,
        #[arg(long)]
        assignee: Option<String>,
        #[arg(long)]
        release: Option<String>,
        /// Words in the title or description.
        #[arg(long)]
        q: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
    /// One ticket with its SLA and history (`HC-12` or its id).
    Show { ticket: String },
    /// Move a ticket to another state.
    Move {
        ticket: String,
        #[arg(long)]
        to: String,
        /// Required to resolve.
        #[arg(long)]
        resolution: Option<String>,
        /// The version you saw; default the current one.
        #[arg(long)]
        expected_version: Option<u32>,
    },
    /// Give a ticket to someone.
    Assign {
        ticket: String,
        #[arg(long)]
        to: String,
    },
    /// Add a comment (internal unless --public: a public one tells the user).
    Comment {
        ticket: String,
        #[arg(long)]
        body: String,
        #[arg(long)]
        public: bool,
    },
    /// Per-day statistics.
    Stats {
        /// First day (D0), YYYY-MM-DD.
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        tz: Option<String>,
    },
}

struct Api {
    http: reqwest::Client,
    url: String,
    key: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url.trim_end_matches('/')))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {}: {e}", self.url))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = answer["message"].as_str().unwrap_or("no message");
            let allowed = answer
                .get("allowed")
                .map(|a| format!(" (allowed: {a})"))
                .unwrap_or_default();
            anyhow::bail!("{status}: {message}{allowed}");
        }
        Ok(answer)
    }

    async fn version_of(&self, ticket: &str) -> anyhow::Result<u32> {
        let shown = self
            .call(reqwest::Method::GET, &format!("/v1/tickets/{ticket}"), None)
            .await?;
        Ok(shown["ticket"]["version"].as_u64().unwrap_or(0) as u32)
    }
}

fn line(ticket: &Value) -> String {
    format!(
        "{:<7} {:<3} {:<16} {:<12} {:<10} {}",
        ticket["key"].as_str().unwrap_or("?"),
        ticket["priority"].as_str().unwrap_or("?"),
        ticket["state"].as_str().unwrap_or("?"),
        ticket["category"].as_str().unwrap_or("?"),
        ticket["assignee"]
            .as_str()
            .filter(|a| !a.is_empty())
            .unwrap_or("-"),
        ticket["title"].as_str().unwrap_or(""),
    )
}

/// Runs a ticket command; `default_key` is used when no key is given.
pub async fn run(args: TicketArgs, default_key: Option<String>) -> anyhow::Result<()> {
    let key = args
        .key
        .or(default_key)
        .ok_or_else(|| anyhow::anyhow!("no API key: pass --key or set HYPERCARE_API_KEY"))?;
    let api = Api {
        http: reqwest::Client::new(),
        url: args.url,
        key,
    };
    use reqwest::Method;
    let answer = match args.command {
        TicketCommand::Create {
            title,
            category,
            impact,
            urgency,
            description,
            channel,
            reporter,
            affected_user,
            release,
            launch,
            priority,
            reason,
            tags,
        } => {
            let body = json!({
                "title": title, "category": category, "impact": impact, "urgency": urgency,
                "description": description, "channel": channel, "reporter": reporter,
                "affected_user": affected_user, "release": release, "launch": launch,
                "priority": priority, "priority_reason": reason, "tags": tags,
            });
            let answer = api.call(Method::POST, "/v1/tickets", Some(body)).await?;
            if !args.json {
                writeln!(std::io::stdout().lock(), "{}", line(&answer["ticket"]))?;
                for similar in answer["similar"].as_array().into_iter().flatten() {
                    writeln!(
                        std::io::stdout().lock(),
                        "  similar: {} ({}, score {}) {}",
                        similar["key"].as_str().unwrap_or("?"),
                        similar["state"].as_str().unwrap_or("?"),
                        similar["score"],
                        similar["title"].as_str().unwrap_or("")
                    )?;
                }
            }
            answer
        }
        TicketCommand::List {
            state,
            priority,
            category,
            assignee,
            release,
            q,
            limit,
        } => {
            let mut query = vec![("limit".to_owned(), limit.to_string())];
            for (name, value) in [
                ("state", state),
                ("priority", priority),
                ("category", category),
                ("assignee", assignee),
                ("release", release),
                ("q", q),
            ] {
                if let Some(value) = value {
                    query.push((name.to_owned(), value));
                }
            }
            let encoded = serde_urlencoded(&query);
            let answer = api
                .call(Method::GET, &format!("/v1/tickets?{encoded}"), None)
                .await?;
            if !args.json {
                for ticket in answer["tickets"].as_array().into_iter().flatten() {
                    writeln!(std::io::stdout().lock(), "{}", line(ticket))?;
                }
                writeln!(std::io::stdout().lock(), "({} in all)", answer["total"])?;
            }
            answer
        }
        TicketCommand::Show { ticket } => {
            let answer = api
                .call(Method::GET, &format!("/v1/tickets/{ticket}"), None)
                .await?;
            if !args.json {
                let t = &answer["ticket"];
                writeln!(std::io::stdout().lock(), "{}", line(t))?;
                writeln!(
                    std::io::stdout().lock(),
                    "  {}",
                    t["description"].as_str().unwrap_or("")
                )?;
                for clock in ["first_response", "resolution"] {
                    let c = &t["sla"][clock];
                    writeln!(
                        std::io::stdout().lock(),
                        "  sla {clock}: {:.0} of {} min{}{}",
                        c["elapsed_minutes"].as_f64().unwrap_or(0.0),
                        c["target_minutes"],
                        if c["breached"] == true {
                            ", BREACHED"
                        } else {
                            ""
                        },
                        if c["at_risk"] == true {
                            ", at risk"
                        } else {
                            ""
                        },
                    )?;
                }
                for change in answer["history"].as_array().into_iter().flatten() {
                    writeln!(
                        std::io::stdout().lock(),
                        "  v{} {} {} by {} -> {} {}",
                        change["version"],
                        change["at"].as_str().unwrap_or(""),
                        change["change"].as_str().unwrap_or(""),
                        change["actor"].as_str().unwrap_or(""),
                        change["state"].as_str().unwrap_or(""),
                        change["comment"].as_str().unwrap_or(""),
                    )?;
                }
            }
            answer
        }
        TicketCommand::Move {
            ticket,
            to,
            resolution,
            expected_version,
        } => {
            let version = match expected_version {
                Some(v) => v,
                None => api.version_of(&ticket).await?,
            };
            let body = json!({"to": to, "resolution": resolution, "expected_version": version});
            let answer = api
                .call(
                    Method::POST,
                    &format!("/v1/tickets/{ticket}/transition"),
                    Some(body),
                )
                .await?;
            if !args.json {
                writeln!(std::io::stdout().lock(), "{}", line(&answer))?;
            }
            answer
        }
        TicketCommand::Assign { ticket, to } => {
            let version = api.version_of(&ticket).await?;
            let body = json!({"assignee": to, "expected_version": version});
            let answer = api
                .call(
                    Method::POST,
                    &format!("/v1/tickets/{ticket}/assign"),
                    Some(body),
                )
                .await?;
            if !args.json {
                writeln!(std::io::stdout().lock(), "{}", line(&answer))?;
            }
            answer
        }
        TicketCommand::Comment {
            ticket,
            body,
            public,
        } => {
            let version = api.version_of(&ticket).await?;
            let visibility = if public { "public" } else { "internal" };
            let body = json!({"body": body, "visibility": visibility, "expected_version": version});
            let answer = api
                .call(
                    Method::POST,
                    &format!("/v1/tickets/{ticket}/comments"),
                    Some(body),
                )
                .await?;
            if !args.json {
                writeln!(std::io::stdout().lock(), "{}", line(&answer))?;
            }
            answer
        }
        TicketCommand::Stats { from, to, tz } => {
            let mut query = vec![("from".to_owned(), from)];
            query.extend(to.map(|t| ("to".to_owned(), t)));
            query.extend(tz.map(|t| ("tz".to_owned(), t)));
            let answer = api
                .call(
                    Method::GET,
                    &format!("/v1/tickets/stats?{}", serde_urlencoded(&query)),
                    None,
                )
                .await?;
            if !args.json {
                writeln!(
                    std::io::stdout().lock(),
                    "date        opened resolved closed backlog breaches"
                )?;
                for day in answer["days"].as_array().into_iter().flatten() {
                    writeln!(
                        std::io::stdout().lock(),
                        "{:<11} {:>6} {:>8} {:>6} {:>7} {:>8}",
                        day["date"].as_str().unwrap_or(""),
                        day["opened"],
                        day["resolved"],
                        day["closed"],
                        day["backlog"],
                        day["breaches"]
                    )?;
                }
            }
            answer
        }
    };
    if args.json {
        writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(&answer)?
        )?;
    }
    Ok(())
}

/// `a=1&b=two%20words`.
fn serde_urlencoded(pairs: &[(String, String)]) -> String {
    let mut url = reqwest::Url::parse("http://x/").expect("a valid URL");
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or("").to_owned()
}
