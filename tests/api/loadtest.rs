//! The load generator against a local target with a known service time, its
//! records in ClickHouse, and the headroom API that reads them.
//!
//! Runs go through the command line (`loadtest run ...` parsed by clap) and are
//! checked through the JSON report they write, the exit code, the target's own
//! request count and SQL.

use std::path::Path;
use std::time::Duration;

use clap::Parser;
use hypercare_loadtest::target::{TargetConfig, TargetServer};
use hypercare_loadtest::{EXIT_THRESHOLDS_BROKEN, LoadtestArgs};
use hypercare_storage::ClickHouseSettings;
use hypercare_tests::{INGEST_KEY, READ_KEY, clickhouse, spawn_app};
use serde_json::{Value, json};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: LoadtestArgs,
}

/// Runs `loadtest <args>` with reports in `out`; returns the exit code and the report.
async fn loadtest(args: &[&str], out: &Path) -> anyhow::Result<(u8, Value)> {
    let mut argv = vec!["loadtest"];
    argv.extend_from_slice(args);
    let out_arg = out.to_str().unwrap().to_owned();
    let is_run = args.first() == Some(&"run");
    if is_run {
        argv.extend_from_slice(&["--out", &out_arg, "--quiet"]);
    }
    let cli = Cli::try_parse_from(argv)?;
    let code = hypercare_loadtest::run(cli.args, &ClickHouseSettings::default()).await?;
    let report = if is_run {
        let file = std::fs::read_dir(out)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .expect("a JSON report");
        serde_json::from_str(&std::fs::read_to_string(file)?)?
    } else {
        Value::Null
    };
    Ok((code, report))
}

fn scenario(dir: &Path, target: &str, body: &str) -> String {
    let path = dir.join(format!("{}.yaml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, format!("target: {target}\n{body}")).unwrap();
    path.to_str().unwrap().to_owned()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_achieved_rate_is_within_two_percent_of_the_offered_rate() {
    // Arrange: a target with a 2 ms service time.
    let target = TargetServer::start(
        "127.0.0.1:0",
        TargetConfig {
            delay: Duration::from_millis(2),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(
        dir.path(),
        &target.url(),
        "requests: [{path: /orders}]\nrate: 400\nduration: 3s\n",
    );

    // Act
    let (code, report) = loadtest(&["run", &file], dir.path()).await.unwrap();

    // Assert: 1,200 requests due and received, ~400/s of successful answers.
    assert_eq!(code, 0);
    let step = &report["steps"][0];
    assert_eq!(step["due"], 1200);
    assert_eq!(target.received(), 1200);
    let achieved = f(&step["achieved_rps"]);
    assert!(
        (achieved - 400.0).abs() / 400.0 < 0.02,
        "achieved {achieved}/s for 400/s offered"
    );
    assert_eq!(report["totals"]["errors"], 0);
    assert!(f(&step["latency"]["p50_ms"]) >= 2.0, "{step}");
    assert!(step["seconds"].as_array().unwrap().len() >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_server_shows_in_the_high_percentiles_measured_from_the_due_time() {
    // Arrange: 1 ms service time, but the server stops for 1 s from t = 1.5 s.
    // At 200/s over 4 s, ~200 of 800 requests arrive in the stall and wait the rest
    // of it: their latencies spread evenly over 0..1000 ms. So p99 is ~960 ms and
    // p90 ~600 ms (the top 80 requests waited more than 1000 - 80 * 5 ms), while
    // p50 stays at the service time.
    let target = TargetServer::start(
        "127.0.0.1:0",
        TargetConfig {
            delay: Duration::from_millis(1),
            stall: Some((Duration::from_millis(1500), Duration::from_secs(1))),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(
        dir.path(),
        &target.url(),
        "requests: [{path: /}]\nrate: 200\nduration: 4s\n",
    );

    // Act
    let (_, report) = loadtest(&["run", &file], dir.path()).await.unwrap();

    // Assert: requests kept going out on schedule during the stall...
    let step = &report["steps"][0];
    assert_eq!(step["due"], 800);
    assert_eq!(target.received(), 800);
    assert!(f(&step["send_lag_p99_ms"]) < 20.0, "{step}");
    // ...and the queueing the stall caused is in the percentiles.
    let latency = &step["latency"];
    assert!(f(&latency["p99_ms"]) >= 850.0, "{latency}");
    assert!(f(&latency["max_ms"]) >= 950.0, "{latency}");
    let p90 = f(&latency["p90_ms"]);
    assert!((450.0..=750.0).contains(&p90), "{latency}");
    assert!(f(&latency["p50_ms"]) < 50.0, "{latency}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_thresholds_make_the_run_exit_non_zero() {
    let slow = TargetServer::start(
        "127.0.0.1:0",
        TargetConfig {
            delay: Duration::from_millis(20),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let failing = TargetServer::start(
        "127.0.0.1:0",
        TargetConfig {
            status: 500,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plan = "requests: [{path: /}]\nrate: 50\nduration: 1s\n";
    let slow_file = scenario(dir.path(), &slow.url(), plan);
    let failing_file = scenario(
        dir.path(),
        &failing.url(),
        &format!("{plan}thresholds: ['error_rate < 1%']\n"),
    );

    let (too_slow, report) = loadtest(&["run", &slow_file, "--threshold", "p50 < 5ms"], dir.path())
        .await
        .unwrap();
    let (fast_enough, _) = loadtest(&["run", &slow_file, "--threshold", "p50 < 2s"], dir.path())
        .await
        .unwrap();
    let (errors, errors_report) = loadtest(&["run", &failing_file], dir.path()).await.unwrap();

    assert_eq!(too_slow, EXIT_THRESHOLDS_BROKEN);
    assert_eq!(report["passed"], false);
    assert!(f(&report["thresholds"][0]["actual"]) >= 20.0, "{report}");
    assert_eq!(fast_enough, 0);
    assert_eq!(errors, EXIT_THRESHOLDS_BROKEN);
    assert_eq!(errors_report["totals"]["error_rate"], 1.0);
}

#[tokio::test]
async fn targets_outside_loopback_are_refused_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(
        dir.path(),
        "http://192.0.2.10:8080",
        "requests: [{path: /}]\nrate: 1\nduration: 1s\n",
    );

    let error = loadtest(&["run", &file], dir.path()).await.unwrap_err();

    assert!(error.to_string().contains("--allow-remote"), "{error}");
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct StepRow {
    step: u16,
    offered_rps: f64,
    achieved_rps: f64,
    requests: u64,
    p99_ms: f64,
    cpu_cores: Option<f64>,
    scraped_names: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_against_ingest_is_recorded_in_clickhouse_and_drives_the_headroom_api() {
    // Arrange: the real service; a ramp of NDJSON batches into its ingest API,
    // recorded into the service's own database as the baseline of `ingest-svc`.
    let app = spawn_app().await;
    let server = clickhouse().await;
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(
        dir.path(),
        &app.address,
        &format!(
            r#"name: ingest-ramp
service: ingest-svc
requests:
  - method: POST
    path: /v1/events
    headers: {{content-type: application/x-ndjson, authorization: "Bearer {INGEST_KEY}"}}
    body: '{{"event":"lt","event_id":"{{{{uuid}}}}","value":{{{{rand_int 1 9}}}}}}'
    repeat: 5
ramp: {{from: 20, to: 60, steps: 3, step_duration: 1s}}
slo: {{p99: 2s, error_rate: 1%}}
"#
        ),
    );

    // Act
    let (code, report) = loadtest(
        &[
            "run",
            &file,
            "--record-to",
            &server.url,
            "--record-database",
            &app.database,
            "--pid",
            &std::process::id().to_string(),
            "--scrape",
            &format!("{}/metrics", app.address),
            "--scrape-metric",
            "hypercare_http_requests_total",
        ],
        dir.path(),
    )
    .await
    .unwrap();

    // Assert: every request was an accepted batch of 5 stored events...
    assert_eq!(code, 0);
    let due = report["totals"]["due"].as_u64().unwrap();
    assert_eq!(due, 20 + 40 + 60);
    assert_eq!(report["totals"]["ok"], due);
    assert_eq!(
        app.sql_u64("SELECT uniqExact(event_id) FROM events WHERE event = 'lt'")
            .await,
        5 * due
    );
    // ...and the run and its steps are in ClickHouse as the report says.
    let run_id = report["run_id"].as_str().unwrap();
    let (service, max_rps): (String, f64) = app
        .db
        .query("SELECT service, max_sustainable_rps FROM loadtest_runs WHERE run_id = ?")
        .bind(run_id)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(service, "ingest-svc");
    assert_eq!(max_rps, f(&report["capacity"]["max_sustainable_rps"]));
    let steps: Vec<StepRow> = app
        .db
        .query("SELECT step, offered_rps, achieved_rps, requests, p99_ms, cpu_cores, scraped_names FROM loadtest_steps WHERE run_id = ? ORDER BY step")
        .bind(run_id)
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(steps.len(), 3);
    for (row, step) in steps.iter().zip(report["steps"].as_array().unwrap()) {
        assert_eq!(u64::from(row.step), step["index"].as_u64().unwrap() + 1);
        assert_eq!(row.offered_rps, f(&step["offered_rps"]));
        assert_eq!(row.achieved_rps, f(&step["achieved_rps"]));
        assert_eq!(row.requests, step["due"].as_u64().unwrap());
        assert_eq!(row.p99_ms, f(&step["latency"]["p99_ms"]));
        assert!(row.cpu_cores.is_some_and(|c| c > 0.0), "{row:?}");
        assert!(
            row.scraped_names
                .contains(&"hypercare_http_requests_total:rate".to_owned()),
            "{row:?}"
        );
    }
    assert_eq!(
        steps.iter().map(|s| s.offered_rps).collect::<Vec<_>>(),
        vec![20.0, 40.0, 60.0]
    );

    // Arrange (headroom): live traffic of ingest-svc: a counter rising 0 -> 600
    // -> 1500 over two minutes, i.e. 10/s then 15/s: the peak is 15/s.
    let now = chrono::Utc::now().timestamp();
    let t0 = now - now % 60 - 170;
    let at = |t: i64| chrono::DateTime::from_timestamp(t, 0).unwrap().to_rfc3339();
    let points: Vec<Value> = [(t0, 0.0), (t0 + 60, 600.0), (t0 + 120, 1500.0)]
        .iter()
        .map(|(t, v)| {
            json!({"name": "http_requests_total", "kind": "counter",
                   "labels": {"service": "ingest-svc", "route": "/v1/events"},
                   "timestamp": at(*t), "value": v})
        })
        .collect();
    assert_eq!(app.post_metrics(&Value::Array(points)).await.status(), 202);

    // Act
    let (status, body) = app
        .get_json_as(
            "/v1/capacity/headroom?service=ingest-svc&forecast_peak_rps=100",
            READ_KEY,
        )
        .await;

    // Assert: headroom = 1 - 15 / max sustainable; replicas = ceil(100 / (max * 0.7)).
    assert_eq!(status, 200, "{body}");
    assert!((f(&body["peak_rps"]) - 15.0).abs() < 1e-9, "{body}");
    assert_eq!(body["baseline"]["run_id"], run_id);
    assert_eq!(f(&body["capacity_rps"]), max_rps);
    let headroom = 100.0 * (1.0 - 15.0 / max_rps);
    assert!(
        (f(&body["headroom_percent"]) - headroom).abs() < 1e-9,
        "{body}"
    );
    assert_eq!(body["warning"], headroom < 30.0);
    assert_eq!(
        body["scaling_plan"]["replicas"].as_u64().unwrap(),
        (100.0 / (max_rps * 0.7)).ceil() as u64
    );

    // A forecast over 70 % of one replica's capacity asks for a second replica,
    // and with 3 replicas running the headroom grows.
    let (status, body) = app
        .get_json_as(
            &format!(
                "/v1/capacity/headroom?service=ingest-svc&replicas=3&forecast_peak_rps={}",
                max_rps * 0.75
            ),
            READ_KEY,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scaling_plan"]["replicas"], 2);
    assert!(
        (f(&body["capacity_rps"]) - 3.0 * max_rps).abs() < 1e-9,
        "{body}"
    );

    // Compare reads both runs back (one from ClickHouse, one from its file).
    let report_file = dir.path().join(format!("{run_id}.json"));
    let (code, _) = loadtest(
        &[
            "compare",
            run_id,
            report_file.to_str().unwrap(),
            "--from",
            &server.url,
            "--database",
            &app.database,
            "--fail-on-slower",
        ],
        dir.path(),
    )
    .await
    .unwrap();
    assert_eq!(code, 0, "a run is never slower than itself");
}

#[tokio::test]
async fn headroom_names_what_is_missing() {
    let app = spawn_app().await;

    let no_service = app.get("/v1/capacity/headroom", Some(READ_KEY)).await;
    let no_baseline = app
        .get("/v1/capacity/headroom?service=nothing", Some(READ_KEY))
        .await;
    let no_key = app.get("/v1/capacity/headroom?service=x", None).await;
    let bad_replicas = app
        .get("/v1/capacity/headroom?service=x&replicas=0", Some(READ_KEY))
        .await;

    assert_eq!(no_service.status(), 400);
    let body: Value = no_service.json().await.unwrap();
    assert_eq!(
        (body["error"].as_str(), body["field"].as_str()),
        (Some("invalid_request"), Some("service"))
    );
    assert_eq!(no_baseline.status(), 404);
    let body: Value = no_baseline.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("--service nothing"),
        "{body}"
    );
    assert_eq!(no_key.status(), 401);
    assert_eq!(bad_replicas.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_finds_the_run_whose_latency_grew() {
    // Arrange: the same plan against a 2 ms and a 8 ms target: before and after a
    // release that made every request 6 ms slower.
    let dir = tempfile::tempdir().unwrap();
    let mut reports = Vec::new();
    for delay in [2, 8] {
        let target = TargetServer::start(
            "127.0.0.1:0",
            TargetConfig {
                delay: Duration::from_millis(delay),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let out = dir.path().join(format!("d{delay}"));
        let file = scenario(
            dir.path(),
            &target.url(),
            "requests: [{path: /}]\nrate: 100\nduration: 6s\n",
        );
        let (code, report) = loadtest(&["run", &file], &out).await.unwrap();
        assert_eq!(code, 0);
        reports.push(out.join(format!("{}.json", report["run_id"].as_str().unwrap())));
    }
    let [before, after] = [&reports[0], &reports[1]].map(|p| p.to_str().unwrap().to_owned());

    // Act
    let (slower, _) = loadtest(
        &["compare", &before, &after, "--fail-on-slower"],
        dir.path(),
    )
    .await
    .unwrap();
    let (faster, _) = loadtest(
        &["compare", &after, &before, "--fail-on-slower"],
        dir.path(),
    )
    .await
    .unwrap();

    // Assert
    assert_eq!(slower, hypercare_loadtest::EXIT_SLOWER);
    assert_eq!(faster, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_in_flight_cap_are_dropped_as_errors_not_delayed() {
    // Arrange: 100/s against a 500 ms target with at most 10 requests in flight.
    // Slots free up only every 500 ms, so most requests find the cap reached.
    let target = TargetServer::start(
        "127.0.0.1:0",
        TargetConfig {
            delay: Duration::from_millis(500),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(
        dir.path(),
        &target.url(),
        "requests: [{path: /}]\nrate: 100\nduration: 1s\nmax_in_flight: 10\n",
    );

    // Act
    let (_, report) = loadtest(&["run", &file], dir.path()).await.unwrap();

    // Assert: every due request is either sent or dropped; drops are errors; the
    // ones sent waited for no slot (latency is the service time, not more).
    let step = &report["steps"][0];
    let (due, sent, dropped) = (
        step["due"].as_u64().unwrap(),
        step["sent"].as_u64().unwrap(),
        step["dropped"].as_u64().unwrap(),
    );
    assert_eq!(due, 100);
    assert_eq!(sent + dropped, due);
    assert_eq!(target.received(), sent);
    assert!((10..=30).contains(&sent), "{step}");
    assert!((f(&step["error_rate"]) - dropped as f64 / 100.0).abs() < 1e-12);
    assert!(f(&step["latency"]["max_ms"]) < 600.0, "{step}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hypercare_loadtest_records_into_the_configured_clickhouse_by_default() {
    // Arrange: Hypercare's settings name a ClickHouse and a database; no --record-to.
    let (settings, _data_dir) = hypercare_tests::test_settings().await;
    let database = settings.clickhouse.database.clone();
    let target = TargetServer::start("127.0.0.1:0", TargetConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_owned();
    let cli = hypercare::cli::Cli::try_parse_from([
        "hypercare",
        "loadtest",
        "run",
        "--target",
        &target.url(),
        "--rate",
        "50",
        "--duration",
        "1s",
        "--service",
        "svc-a",
        "--quiet",
        "--out",
        &out,
    ])
    .unwrap();

    // Act
    hypercare::cli::run(cli, settings.clone()).await.unwrap();

    // Assert: the run is in the configured database (the migrations made its tables).
    let server = clickhouse().await;
    let db = clickhouse::Client::default()
        .with_url(&server.url)
        .with_validation(false)
        .with_database(&database);
    let (service, requests): (String, u64) = db
        .query("SELECT service, requests FROM loadtest_runs")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!((service.as_str(), requests), ("svc-a", 50));
    assert_eq!(target.received(), 50);
}
