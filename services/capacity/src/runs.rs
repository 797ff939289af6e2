//! Recorded load test runs, as the console's capacity page lists them: each
//! run's outcome (knee, maximum sustainable rate, p99 against its SLO) and its
//! steps (offered against achieved rate, latency), for the plot.
//!
//! Data flow: `loadtest run --record-to` writes `loadtest_runs` and
//! `loadtest_steps` (see `loadtest/src/record.rs`); [`recent`] reads the
//! latest runs ([`RECENT_RUNS_SQL`]) and their steps ([`RECENT_STEPS_SQL`], one
//! statement for all of them) and pairs them up.

use hypercare_storage::ReadOnly;
use hypercare_storage::catalog::Statement;
use serde::{Deserialize, Serialize};

/// The latest runs, newest first. Binds: how many.
pub const RECENT_RUNS_SQL: &str = "SELECT run_id, service, scenario, \
     toUInt32(started_at) AS started_at, toUInt32(finished_at) AS finished_at, replicas, \
     requests, error_rate, p99_ms, slo_p99_ms, thresholds_passed, knee_rps, \
     max_sustainable_rps FROM loadtest_runs \
     ORDER BY started_at DESC, run_id DESC LIMIT ?";

/// The steps of the latest runs (the same runs as [`RECENT_RUNS_SQL`]). Binds:
/// how many runs.
pub const RECENT_STEPS_SQL: &str = "SELECT run_id, step, offered_rps, achieved_rps, \
     error_rate, p50_ms, p99_ms FROM loadtest_steps WHERE run_id IN \
     (SELECT run_id FROM loadtest_runs ORDER BY started_at DESC, run_id DESC LIMIT ?) \
     ORDER BY run_id, step";

/// The most runs a page lists.
pub const MAX_RUNS: u32 = 50;

#[derive(Debug, Clone, clickhouse::Row, Deserialize, Serialize, PartialEq)]
pub struct RunSummary {
    pub run_id: String,
    pub service: String,
    pub scenario: String,
    /// Epoch seconds.
    pub started_at: u32,
    pub finished_at: u32,
    pub replicas: u32,
    pub requests: u64,
    pub error_rate: f64,
    pub p99_ms: f64,
    pub slo_p99_ms: f64,
    pub thresholds_passed: u8,
    /// The offered rate past which latency turns up (None: no knee found).
    pub knee_rps: Option<f64>,
    /// 0 when no step met the SLO.
    pub max_sustainable_rps: f64,
}

#[derive(Debug, Clone, clickhouse::Row, Deserialize, Serialize, PartialEq)]
pub struct StepRow {
    pub run_id: String,
    pub step: u16,
    pub offered_rps: f64,
    pub achieved_rps: f64,
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// A run with its steps, in step order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Run {
    pub summary: RunSummary,
    pub steps: Vec<StepRow>,
}

/// Pairs each run with its steps (the rows come ordered by run, then step).
pub fn pair(runs: Vec<RunSummary>, steps: Vec<StepRow>) -> Vec<Run> {
    let mut by_run: std::collections::HashMap<String, Vec<StepRow>> = Default::default();
    for step in steps {
        by_run.entry(step.run_id.clone()).or_default().push(step);
    }
    runs.into_iter()
        .map(|summary| {
            let mut steps = by_run.remove(&summary.run_id).unwrap_or_default();
            steps.sort_by_key(|s| s.step);
            Run { summary, steps }
        })
        .collect()
}

/// The `limit` latest runs (at most [`MAX_RUNS`]), newest first, with their steps.
pub async fn recent(store: &clickhouse::Client, limit: u32) -> clickhouse::error::Result<Vec<Run>> {
    let limit = limit.clamp(1, MAX_RUNS);
    let runs: Vec<RunSummary> = store
        .query(RECENT_RUNS_SQL)
        .bind(limit)
        .read_only()
        .fetch_all()
        .await?;
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let steps: Vec<StepRow> = store
        .query(RECENT_STEPS_SQL)
        .bind(limit)
        .read_only()
        .fetch_all()
        .await?;
    Ok(pair(runs, steps))
}

/// The read queries of recorded runs, with example parameters.
pub fn catalog() -> Vec<Statement> {
    vec![
        Statement {
            origin: "capacity: recent load test runs".into(),
            sql: RECENT_RUNS_SQL.replacen('?', "20", 1),
        },
        Statement {
            origin: "capacity: steps of recent load test runs".into(),
            sql: RECENT_STEPS_SQL.replacen('?', "20", 1),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(run_id: &str) -> RunSummary {
        RunSummary {
            run_id: run_id.into(),
            service: "checkout".into(),
            scenario: "ramp".into(),
            started_at: 0,
            finished_at: 60,
            replicas: 2,
            requests: 100,
            error_rate: 0.0,
            p99_ms: 80.0,
            slo_p99_ms: 500.0,
            thresholds_passed: 1,
            knee_rps: Some(100.0),
            max_sustainable_rps: 120.0,
        }
    }

    fn step(run_id: &str, step: u16) -> StepRow {
        StepRow {
            run_id: run_id.into(),
            step,
            offered_rps: f64::from(step) * 10.0,
            achieved_rps: f64::from(step) * 10.0,
            error_rate: 0.0,
            p50_ms: 1.0,
            p99_ms: 2.0,
        }
    }

    #[test]
    fn each_run_gets_its_own_steps_in_order_and_keeps_its_place() {
        let runs = pair(
            vec![summary("new"), summary("old"), summary("no-steps")],
            vec![step("old", 2), step("new", 1), step("old", 1)],
        );
        let ids: Vec<&str> = runs.iter().map(|r| r.summary.run_id.as_str()).collect();
        assert_eq!(ids, ["new", "old", "no-steps"]);
        let old_steps: Vec<u16> = runs[1].steps.iter().map(|s| s.step).collect();
        assert_eq!(old_steps, [1, 2]);
        assert_eq!(runs[0].steps.len(), 1);
        assert!(runs[2].steps.is_empty());
    }
}
