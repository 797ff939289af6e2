//! Runs recorded in ClickHouse as capacity baselines: `loadtest_runs` (one row
//! per run, with the full JSON report) and `loadtest_steps` (one row per step),
//! in Hypercare's database. Recording applies the migrations first, so that it
//! works against a fresh server too.

use anyhow::Context;
use hypercare_storage::catalog::Statement;
use hypercare_storage::{ClickHouseSettings, Store, connect, migrate};
use serde::{Deserialize, Serialize};

use crate::report::Report;

#[derive(Debug, clickhouse::Row, Serialize)]
struct RunRow<'a> {
    run_id: &'a str,
    service: &'a str,
    scenario: &'a str,
    target: &'a str,
    started_at: u32,
    finished_at: u32,
    replicas: u32,
    requests: u64,
    errors: u64,
    error_rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    thresholds_passed: u8,
    slo_p99_ms: f64,
    latency_floor_ms: f64,
    knee_rps: Option<f64>,
    max_sustainable_rps: f64,
    usl_lambda: Option<f64>,
    usl_sigma: Option<f64>,
    usl_kappa: Option<f64>,
    usl_r2: Option<f64>,
    report: String,
}

#[derive(Debug, clickhouse::Row, Serialize)]
struct StepRow<'a> {
    run_id: &'a str,
    step: u16,
    started_at: u32,
    duration_secs: f64,
    offered_rps: f64,
    achieved_rps: f64,
    requests: u64,
    ok: u64,
    errors: u64,
    dropped: u64,
    error_rate: f64,
    mean_ms: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    concurrency: f64,
    cpu_cores: Option<f64>,
    rss_bytes: Option<u64>,
    scraped_names: Vec<String>,
    scraped_values: Vec<f64>,
}

fn unix_secs(rfc3339: &str) -> u32 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| u32::try_from(t.timestamp()).unwrap_or(0))
        .unwrap_or(0)
}

/// Connects to `url` (database and login from `settings`) and applies the migrations.
pub async fn open(url: &str, settings: &ClickHouseSettings) -> anyhow::Result<Store> {
    let store = connect(url, settings)
        .await
        .with_context(|| format!("connecting to ClickHouse at {url}"))?;
    migrate::run(&store)
        .await
        .context("applying the schema migrations")?;
    Ok(store)
}

/// Stores the run and its steps.
pub async fn record(store: &Store, report: &Report) -> anyhow::Result<()> {
    let finite = |v: f64| v.is_finite().then_some(v);
    let usl = report.capacity.usl.as_ref();
    let json = serde_json::to_string(report)?;
    let mut insert = store.client.insert::<RunRow>("loadtest_runs").await?;
    insert
        .write(&RunRow {
            run_id: &report.run_id,
            service: &report.service,
            scenario: &report.scenario,
            target: &report.target,
            started_at: unix_secs(&report.started_at),
            finished_at: unix_secs(&report.finished_at),
            replicas: report.replicas,
            requests: report.totals.due,
            errors: report.totals.errors,
            error_rate: report.totals.error_rate,
            p50_ms: report.totals.latency.p50_ms,
            p99_ms: report.totals.latency.p99_ms,
            thresholds_passed: u8::from(report.passed),
            slo_p99_ms: report.capacity.slo_p99_ms,
            latency_floor_ms: report.capacity.latency_floor_ms,
            knee_rps: report.capacity.knee_offered_rps,
            max_sustainable_rps: report.capacity.max_sustainable_rps.unwrap_or(0.0),
            usl_lambda: usl.and_then(|u| finite(u.lambda)),
            usl_sigma: usl.and_then(|u| finite(u.sigma)),
            usl_kappa: usl.and_then(|u| finite(u.kappa)),
            usl_r2: usl.and_then(|u| finite(u.r2)),
            report: json,
        })
        .await?;
    insert.end().await.context("inserting into loadtest_runs")?;

    let mut insert = store.client.insert::<StepRow>("loadtest_steps").await?;
    for s in &report.steps {
        insert
            .write(&StepRow {
                run_id: &report.run_id,
                step: u16::try_from(s.index + 1).unwrap_or(u16::MAX),
                started_at: u32::try_from(s.started_at_ms / 1000).unwrap_or(0),
                duration_secs: s.duration_secs,
                offered_rps: s.offered_rps,
                achieved_rps: s.achieved_rps,
                requests: s.due,
                ok: s.ok,
                errors: s.errors(),
                dropped: s.dropped,
                error_rate: s.error_rate,
                mean_ms: s.latency.mean_ms,
                p50_ms: s.latency.p50_ms,
                p90_ms: s.latency.p90_ms,
                p99_ms: s.latency.p99_ms,
                p999_ms: s.latency.p999_ms,
                max_ms: s.latency.max_ms,
                concurrency: s.concurrency,
                cpu_cores: s.resources.cpu_cores.and_then(finite),
                rss_bytes: s.resources.rss_bytes,
                scraped_names: s.resources.scraped.keys().cloned().collect(),
                scraped_values: s.resources.scraped.values().copied().collect(),
            })
            .await?;
    }
    insert
        .end()
        .await
        .context("inserting into loadtest_steps")?;
    Ok(())
}

pub const RUN_REPORT_SQL: &str = "SELECT report FROM loadtest_runs WHERE run_id = ? LIMIT 1";

#[derive(Debug, clickhouse::Row, Deserialize)]
struct ReportRow {
    report: String,
}

/// The report of a recorded run, by id.
pub async fn load(store: &Store, run_id: &str) -> anyhow::Result<Option<Report>> {
    let rows: Vec<ReportRow> = store
        .client
        .query(RUN_REPORT_SQL)
        .bind(run_id)
        .fetch_all()
        .await?;
    rows.into_iter()
        .next()
        .map(|row| serde_json::from_str(&row.report).context("reading a recorded report"))
        .transpose()
}

/// The read queries of load tests, with example parameters.
pub fn catalog() -> Vec<Statement> {
    vec![Statement {
        origin: "loadtest: run report by id".into(),
        sql: RUN_REPORT_SQL.replacen('?', "'00000000-0000-0000-0000-000000000000'", 1),
    }]
}
