//! The noisy-alert review end to end: the real evaluator every 100 ms at a
//! manual clock's time over gauges sent through the API; one rule made to flap
//! (its gauge toggled above and below the threshold), one that fires once and
//! stays. The review (API and `hypercare rules review`) flags the first only.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use hypercare_tests::{ManualClock, READ_KEY, TestApp, eventually, spawn_app_on};

const RULES: &str = r#"
groups:
  - name: review
    rules:
      - name: flappy
        tier: P2
        annotations: { summary: "pressure over 10" }
        condition:
          metric: { select: review_pressure, fn: last, window: 1h }
          above: 10
      - name: steady
        tier: P2
        annotations: { summary: "depth over 10" }
        condition:
          metric: { select: review_depth, fn: last, window: 1h }
          above: 10
"#;

/// One gauge point at the clock's time.
async fn gauge(app: &TestApp, clock: &ManualClock, name: &str, value: f64) {
    use hypercare_runtime::Clock;
    let body = json!([{"name": name, "kind": "gauge", "labels": {}, "value": value, "timestamp": clock.now_ms()}]);
    let response = app.post_metrics(&body).await;
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
}

/// Waits until rule `rule` is firing (`true`) or not open at all (`false`).
async fn wait_for(app: &TestApp, rule: &str, firing: bool) {
    eventually(
        &format!("{rule} firing = {firing}"),
        Duration::from_secs(20),
        || async {
            let (status, body) = app.get_json_as("/v1/alerts", READ_KEY).await;
            assert_eq!(status, 200, "{body}");
            let open: Vec<&Value> = body["alerts"]
                .as_array()?
                .iter()
                .filter(|a| a["rule"] == rule)
                .collect();
            let now = open.iter().any(|a| a["state"] == "firing");
            (now == firing && (firing || open.is_empty())).then_some(())
        },
    )
    .await;
}

fn rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn rule<'a>(review: &'a Value, name: &str) -> &'a Value {
    review["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == name)
        .unwrap_or_else(|| panic!("no {name} in {review}"))
}

#[tokio::test]
async fn the_review_flags_a_flapping_rule_and_not_a_steady_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), RULES).unwrap();
    let rules: PathBuf = dir.path().to_owned();
    // The wall clock's minute, so that ingest's horizon checks take the points.
    let start = (chrono::Utc::now().timestamp_millis() as u64 / 60_000) * 60_000;
    let clock = ManualClock::starting_at(start);
    let app = spawn_app_on(clock.clone(), move |s| {
        s.alerts.rules = vec![rules];
        s.alerts.interval = Duration::from_millis(100);
    })
    .await;

    gauge(&app, &clock, "review_depth", 50.0).await;
    // Three times: above for a minute, below for two.
    for _ in 0..3 {
        gauge(&app, &clock, "review_pressure", 50.0).await;
        wait_for(&app, "flappy", true).await;
        clock.advance_minutes(1);
        gauge(&app, &clock, "review_pressure", 1.0).await;
        wait_for(&app, "flappy", false).await;
        clock.advance_minutes(2);
    }
    wait_for(&app, "steady", true).await;

    let from = rfc3339(start - 60_000);
    let to = rfc3339(start + 10 * 60_000);
    let (status, review) = app
        .get_json_as(&format!("/v1/alerts/review?from={from}&to={to}"), READ_KEY)
        .await;
    assert_eq!(status, 200, "{review}");
    let flappy = rule(&review, "flappy");
    assert_eq!(flappy["firings"], 3, "{flappy}");
    // Each resolved by itself after a minute, never acknowledged.
    assert_eq!(flappy["noise"], 3, "{flappy}");
    // The second and third fired two minutes after the one before resolved.
    assert_eq!(flappy["flaps"], 2, "{flappy}");
    assert_eq!(flappy["firing_secs_median"], 60.0, "{flappy}");
    assert_eq!(flappy["suggestions"][0]["change"], "longer_for", "{flappy}");
    assert_eq!(flappy["suggestions"][0]["rule"], "flappy");
    assert_eq!(flappy["suggestions"][0]["text"], "longer `for` (e.g. 10m)");

    let steady = rule(&review, "steady");
    assert_eq!(steady["firings"], 1, "{steady}");
    assert_eq!(
        (steady["noise"].clone(), steady["flaps"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(steady["suggestions"], json!([]), "{steady}");
    assert!(
        review["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["rule"] == "flappy"),
        "{review}"
    );
    assert_eq!(review["rules"][0]["rule"], "flappy", "noisiest first");

    // The command prints the same review.
    let text = command(&app.address, &["review", "--from", &from, "--to", &to])
        .await
        .unwrap();
    assert!(
        text.contains("flappy: longer `for` (e.g. 10m) (3 of 3 firings resolved by themselves"),
        "{text}"
    );
    let steady_line = text.lines().find(|l| l.starts_with("steady ")).unwrap();
    assert!(steady_line.contains(" 1 "), "{text}");

    // Bad input names its field.
    for (query, field) in [
        (format!("from={to}&to={from}"), "to"),
        ("noise_minutes=0".to_owned(), "noise_minutes"),
        ("flap_minutes=100000".to_owned(), "flap_minutes"),
        ("busy_per_day=-1".to_owned(), "busy_per_day"),
        ("from=yesterday".to_owned(), "from"),
        (
            "from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z".to_owned(),
            "from",
        ),
    ] {
        let (status, body) = app
            .get_json_as(&format!("/v1/alerts/review?{query}"), READ_KEY)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"], "invalid_request", "{query}: {body}");
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    let response = app.get("/v1/alerts/review", None).await;
    assert_eq!(response.status(), 401);
    let error = command(&app.address, &["review", "--noise-minutes", "0"])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("noise_minutes"), "{error}");
}

/// Runs `hypercare rules <words>` against `address` with the read key.
async fn command(address: &str, words: &[&str]) -> anyhow::Result<String> {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        rules: hypercare_alerts::cli::RulesCommand,
    }
    let mut argv = vec!["rules"];
    argv.extend_from_slice(words);
    argv.extend_from_slice(&["--url", address, "--key", READ_KEY]);
    match Cli::try_parse_from(argv)?.rules {
        hypercare_alerts::cli::RulesCommand::Review(args) => {
            hypercare_alerts::cli::review(args, None).await
        }
        other => anyhow::bail!("not a review: {other:?}"),
    }
}
