//! The daily stabilization report of one launch day, as data.
//!
//! The report is made once the day has ended and then stored as this JSON
//! (`store.rs`), so that it reads the same tomorrow whatever arrives late; a
//! day under way is made on demand up to the last whole hour and not stored.
//! The renderers (`render::markdown`, `render::html`) and the delivery read
//! only this type, so a report read back from storage renders exactly as the
//! day it was made.
//!
//! The sections follow the morning meeting's order: the call and its reasons
//! first, then KPIs, alerts, tickets, capacity, rollout, SLOs and what changed
//! since the day before.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::judge::{Judgement, Verdict};
use crate::policy::{Call, RuleResult};

/// The version of this document's shape; a stored report of another version
/// is made again rather than misread.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DailyReport {
    pub schema: u32,
    pub launch: LaunchInfo,
    /// N of D+N (negative: a baseline day).
    pub day: i64,
    /// The local date of D+N, in `launch.tz`.
    pub date: String,
    /// When the report was made (RFC 3339, UTC).
    pub generated_at: String,
    /// The report covers the day up to `as_of` (RFC 3339, the launch's zone):
    /// the day's end once it is over, the last whole hour before.
    pub as_of: String,
    /// Whether the day was over when the report was made (only then is it stored).
    pub complete: bool,
    pub call: CallSection,
    pub kpis: Vec<KpiLine>,
    pub alerts: AlertsSection,
    pub tickets: TicketsSection,
    pub capacity: CapacitySection,
    pub rollout: RolloutSection,
    pub slos: Vec<SloLine>,
    /// What differs from the day before's report (empty on D0 or without one).
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LaunchInfo {
    pub id: String,
    pub name: String,
    pub release: String,
    pub tz: String,
    /// D0's local date.
    pub d0: String,
    /// The stabilization window's last day.
    pub last_day: String,
}

/// The go / hold / roll back call: the rules that decided it first, then
/// every rule of the policy with its inputs, so that the call can be audited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallSection {
    #[schema(value_type = String, example = "hold")]
    pub call: Call,
    /// The `why` of each rule that holds and makes the call.
    pub reasons: Vec<String>,
    /// Every input the policy can read, as gathered for the day (`None`: the
    /// day lacks it, e.g. no load test so no headroom).
    pub inputs: BTreeMap<String, Option<f64>>,
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<RuleResult>,
}

/// One KPI on the day: the board's figures and the judge's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KpiLine {
    pub id: String,
    pub title: String,
    pub unit: String,
    pub value: Option<f64>,
    pub target: f64,
    /// `ok`, `warning`, `critical` or `no_data`.
    pub status: String,
    /// The mean of the baseline days, like for like.
    pub baseline: Option<f64>,
    pub delta_vs_baseline_pct: Option<f64>,
    /// `complete_day` or `pace_to_HH:MM`.
    pub comparison: String,
    #[schema(value_type = Object)]
    pub judgement: Judgement,
}

impl KpiLine {
    pub fn is_worse(&self) -> bool {
        self.judgement.verdict == Verdict::Worse
    }
}

/// Alerts that fired during the day.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertsSection {
    /// Per tier (`P0`..`P3`): how many fired, acknowledged, resolved, MTTA/MTTR
    /// and acknowledgements later than the tier's `ack_sla`.
    pub tiers: BTreeMap<String, TierLine>,
    /// Rollback-trigger alerts that fired during the day.
    pub rollback_triggers: Vec<AlertLine>,
    /// P0 and P1 alerts open at `as_of`, whenever they fired.
    pub open_p0_p1: Vec<AlertLine>,
    /// The day's P0 and P1 alerts (the others are counted in `tiers`).
    pub p0_p1: Vec<AlertLine>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TierLine {
    pub fired: u64,
    pub acked: u64,
    pub resolved: u64,
    pub mtta_secs: Option<f64>,
    pub mttr_secs: Option<f64>,
    /// Acknowledged after the tier's `ack_sla`, or not acknowledged once it passed.
    pub ack_sla_breaches: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertLine {
    pub id: String,
    pub rule: String,
    pub tier: String,
    pub summary: String,
    pub labels: BTreeMap<String, String>,
    pub fired_at: Option<String>,
    pub resolved_at: Option<String>,
    /// Still firing at `as_of`.
    pub firing: bool,
    pub rollback_trigger: bool,
}

/// Feedback tickets of the day.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TicketsSection {
    pub opened: u64,
    pub resolved: u64,
    /// Not resolved at the end of the day.
    pub backlog: u64,
    /// Of the backlog, by priority (`P0`..`P3`).
    pub backlog_by_priority: BTreeMap<String, u64>,
    /// SLA targets that fell due during the day without being met.
    pub sla_breaches: u64,
    pub opened_by_category: BTreeMap<String, u64>,
    pub opened_by_priority: BTreeMap<String, u64>,
    /// Groups of similar tickets opened that day, biggest first.
    pub clusters: Vec<TicketCluster>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TicketCluster {
    /// The first ticket's title, standing for the group.
    pub title: String,
    pub size: u64,
    /// The tickets' keys (`HC-12`), oldest first.
    pub tickets: Vec<String>,
}

/// Capacity: each service's peak against its load-tested baseline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CapacitySection {
    pub services: Vec<ServiceCapacity>,
    /// The smallest headroom of any service (`None` without any baseline).
    pub min_headroom_ratio: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceCapacity {
    pub service: String,
    /// Peak requests per second over the day.
    pub peak_rps: Option<f64>,
    /// The most the load-tested baseline served within its latency objective.
    pub baseline_rps: f64,
    /// 1 - peak / baseline (0.42 = 42 % left).
    pub headroom_ratio: Option<f64>,
    /// The scaling plan's advice, in words.
    pub plan: String,
}

/// The launch's rollout stages and each one's gate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutSection {
    /// The stage in force at `as_of` (its name), if the launch has stages.
    pub current_stage: Option<String>,
    pub current_percent: Option<f64>,
    pub stages: Vec<StageLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StageLine {
    pub name: String,
    pub percent: f64,
    pub starts_at: String,
    /// `pass`, `fail`, `not_enough_data`, or `not_started`.
    pub verdict: String,
    /// The metrics that failed it, with their relative effect, e.g. `error_ratio +420 %`.
    pub failing: Vec<String>,
}

/// One SLO's error budget at `as_of`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SloLine {
    pub name: String,
    pub objective: f64,
    pub window: String,
    /// The SLI over the window (`None` without data).
    pub sli: Option<f64>,
    /// The share of the error budget left (1 = untouched, below 0 = overspent).
    pub budget_remaining: Option<f64>,
}

/// One thing that differs from the day before's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Change {
    /// `call`, `kpi:<id>`, `alerts`, `tickets`, `capacity`, `rollout`.
    pub what: String,
    pub before: String,
    pub after: String,
}
