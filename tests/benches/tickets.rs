//! Listing and filtering 10,000 tickets through the HTTP API:
//!
//! ```text
//! cargo bench -p hypercare-tests --bench tickets [-- --tickets 10000 --calls 50]
//! ```
//!
//! Loads N tickets with 3 versions each (created, triaged, in progress or resolved:
//! 3N rows of `ticket_events`) with one `INSERT ... SELECT FROM numbers()`, then
//! times the API's reads from a client on the same machine: p50 / p95 / max over
//! repeated calls.

use std::time::Instant;

use hypercare_tests::bench::{option, percentile};
use hypercare_tests::{READ_KEY, spawn_app};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tickets = option(&args, "tickets", 10_000);
    let calls = option(&args, "calls", 50) as usize;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let app = spawn_app().await;
        let started = Instant::now();
        app.db
            .query(
                "INSERT INTO ticket_events SELECT \
                 concat('t-', toString(intDiv(number, 3))) AS ticket_id, intDiv(number, 3) + 1 AS number, \
                 toUInt32(number % 3 + 1) AS version, \
                 arrayElement(['created', 'transition', 'transition'], number % 3 + 1) AS change, \
                 'bench' AS actor, toUInt64(1795161600000 + intDiv(number, 3) * 60000 + (number % 3) * 600000) AS at_ms, \
                 concat(arrayElement(['Payment fails', 'Slow export', 'Login loop', 'Wrong totals', 'How to invite'], intDiv(number, 3) % 5 + 1), ' #', toString(intDiv(number, 3))) AS title, \
                 'seen by several users since the release' AS description, \
                 arrayElement(['bug', 'performance', 'access', 'data', 'question'], intDiv(number, 3) % 5 + 1) AS category, \
                 'high' AS impact, 'medium' AS urgency, \
                 arrayElement(['P1', 'P2', 'P3', 'P4'], intDiv(number, 3) % 4 + 1) AS priority, '' AS priority_reason, \
                 arrayElement(['new', 'triaged', if(intDiv(number, 3) % 2 = 0, 'in_progress', 'resolved')], number % 3 + 1) AS state, \
                 concat('agent-', toString(intDiv(number, 3) % 7)) AS assignee, 'support' AS reporter, 'chat' AS channel, \
                 '' AS affected_user, '2.4.1' AS release, 'spring' AS launch, [] AS tags, [] AS links, \
                 toUInt64(1795161600000 + intDiv(number, 3) * 60000) AS created_ms, 0 AS first_response_ms, \
                 0 AS resolved_ms, 0 AS closed_ms, '' AS resolution, '' AS comment, '' AS comment_visibility \
                 FROM system.numbers LIMIT ?",
            )
            .bind(tickets * 3)
            .execute()
            .await?;
        println!("command: cargo bench -p hypercare-tests --bench tickets");
        println!(
            "loaded {tickets} tickets ({} change rows) in {:.1} s",
            tickets * 3,
            started.elapsed().as_secs_f64()
        );
        let middle = tickets / 2;
        let cases = [
            ("list, newest first (page of 50)", "/v1/tickets?limit=50".to_owned()),
            ("filter state+priority+category", "/v1/tickets?state=in_progress&priority=P1&category=bug&limit=50".to_owned()),
            ("filter assignee, sort priority", "/v1/tickets?assignee=agent-3&sort=priority&order=asc&limit=50".to_owned()),
            ("text search", "/v1/tickets?q=wrong%20totals&limit=50".to_owned()),
            ("deep page (offset 5000)", "/v1/tickets?limit=50&offset=5000".to_owned()),
            ("one ticket with history", format!("/v1/tickets/HC-{middle}")),
            ("stats, 15 days", "/v1/tickets/stats?from=2026-11-20&tz=Europe/Paris".to_owned()),
        ];
        println!("{:<34} {:>8} {:>8} {:>8}", "call", "p50 ms", "p95 ms", "max ms");
        for (name, path) in cases {
            let first = app.get(&path, Some(READ_KEY)).await;
            assert_eq!(first.status(), 200, "{path}");
            let mut times = Vec::with_capacity(calls);
            for _ in 0..calls {
                let started = Instant::now();
                let response = app.get(&path, Some(READ_KEY)).await;
                let _ = response.bytes().await?;
                times.push(started.elapsed());
            }
            times.sort();
            println!(
                "{name:<34} {:>8.1} {:>8.1} {:>8.1}",
                percentile(&times, 0.5),
                percentile(&times, 0.95),
                times.last().map_or(0.0, |t| t.as_secs_f64() * 1000.0)
            );
        }
        app.stop().await?;
        anyhow::Ok(())
    })
}
