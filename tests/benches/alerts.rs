//! From data crossing a threshold to the webhook delivery:
//!
//! ```text
//! cargo bench -p hypercare-tests --bench alerts [-- --crossings 40 --interval-ms 1000 --for-ms 1000 --group-wait-ms 1000]
//! ```
//!
//! A P0 rule (`for`, group wait as given) over a gauge; a local receiver. Each
//! round sends a point above the threshold at a different moment of the
//! evaluation cycle, times until the firing notification arrives, then sends one
//! below and waits for the resolved one. The budget is interval + for + group
//! wait: the crossing waits at most one interval for an evaluation, then `for`,
//! then the group's wait. Stages that waited for the next evaluation tick
//! (pending -> firing, the group's flush) are run when they become due.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use hypercare_alerts::config::{Receiver, TierPolicy};
use hypercare_alerts::rule::Tier;
use serde_json::json;

use hypercare_tests::bench::{option, percentile};
use hypercare_tests::spawn_app_with;

const RULES: &str = r#"
groups:
  - name: bench
    rules:
      - name: queue_full
        tier: P0
        annotations: { summary: "queue full" }
        for: FORms
        condition:
          metric: { select: queue, fn: last, window: 10s }
          above: 100
"#;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let crossings = option(&args, "crossings", 20) as usize;
    let interval_ms = option(&args, "interval-ms", 1000);
    let for_ms = option(&args, "for-ms", 1000);
    let group_wait_ms = option(&args, "group-wait-ms", 1000);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let arrivals: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let sink = arrivals.clone();
        let server = HttpServer::new(move || {
            let sink = sink.clone();
            App::new()
                .app_data(web::PayloadConfig::new(16 << 20))
                .default_service(web::to(move |body: web::Json<serde_json::Value>| {
                    let sink = sink.clone();
                    async move {
                        let status = body["status"].as_str().unwrap_or("").to_owned();
                        sink.lock().unwrap().push((Instant::now(), status));
                        HttpResponse::Ok().finish()
                    }
                }))
        })
        .workers(1)
        .bind("127.0.0.1:0")?;
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());

        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("rules.yaml"),
            RULES.replace("FOR", &for_ms.to_string()),
        )?;
        let rules = dir.path().to_owned();
        let app = spawn_app_with(move |s| {
            s.alerts.rules = vec![rules];
            s.alerts.interval = Duration::from_millis(interval_ms);
            s.alerts.receivers = BTreeMap::from([(
                "oncall".to_owned(),
                Receiver {
                    url: format!("http://127.0.0.1:{port}/"),
                    send_resolved: true,
                    max_alerts: 0,
                    timeout: Duration::from_secs(5),
                    bearer_token: None,
                },
            )]);
            s.alerts.tiers = BTreeMap::from([(
                Tier::P0,
                TierPolicy {
                    receivers: vec!["oncall".into()],
                    ack_sla: Duration::from_secs(300),
                    group_wait: Duration::from_millis(group_wait_ms),
                    group_interval: Duration::from_millis(1),
                    repeat_interval: Duration::from_secs(3600),
                    escalation: Vec::new(),
                    ack_timeout: None,
                    digest_at: None,
                },
            )]);
        })
        .await;
        let send = |value: f64| {
            let app = &app;
            async move {
                let now = chrono::Utc::now().timestamp_millis();
                let r = app
                    .post_metrics(&json!([{"name": "queue", "kind": "gauge", "value": value, "timestamp": now}]))
                    .await;
                assert_eq!(r.status(), 202);
            }
        };
        let wait_for = |status: &'static str, since: Instant| {
            let arrivals = arrivals.clone();
            async move {
                loop {
                    if let Some((at, _)) = arrivals.lock().unwrap().iter().find(|(at, s)| *at >= since && s == status) {
                        return *at - since;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        };
        let mut firing = Vec::new();
        let mut resolved = Vec::new();
        for round in 0..crossings {
            // Spread the crossings over the evaluation cycle.
            tokio::time::sleep(Duration::from_millis(interval_ms * (round as u64 % 7) / 7 + 50)).await;
            let t = Instant::now();
            send(500.0).await;
            firing.push(wait_for("firing", t).await);
            // Points of the same second replace each other: the next one goes a
            // second later.
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let t = Instant::now();
            send(0.0).await;
            resolved.push(wait_for("resolved", t).await);
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        firing.sort();
        resolved.sort();
        println!("command: cargo bench -p hypercare-tests --bench alerts -- --crossings {crossings} --interval-ms {interval_ms} --for-ms {for_ms} --group-wait-ms {group_wait_ms}");
        println!("{:<44} {:>8} {:>8} {:>8} {:>8} {:>10} {:>12}", "threshold crossed -> webhook received", "min ms", "p50 ms", "p95 ms", "max ms", "budget ms", "over budget");
        // Resolving has no `for` nor group wait: a group's change goes out at once
        // (group_interval 1 ms here).
        for (name, times, budget) in [
            ("firing", &firing, interval_ms + for_ms + group_wait_ms),
            ("resolved", &resolved, interval_ms),
        ] {
            let over = times.iter().filter(|t| t.as_millis() as u64 > budget).count();
            println!(
                "{name:<44} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>10} {:>12}",
                times[0].as_secs_f64() * 1000.0,
                percentile(times, 0.5),
                percentile(times, 0.95),
                times.last().map_or(0.0, |t| t.as_secs_f64() * 1000.0),
                budget,
                format!("{over}/{}", times.len()),
            );
        }
        app.stop().await?;
        anyhow::Ok(())
    })
}
