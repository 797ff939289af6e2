//! The report's sections from what the capabilities answered, and the
//! policy's inputs from the sections: pure, so that every rule of the call is
//! tested without a database.
//!
//! `make.rs` reads (board, judge, alerts, tickets, capacity, stages, SLOs);
//! this module shapes; `policy.rs` decides.

use std::collections::BTreeMap;

use hypercare_alerts::stats::SpanAlerts;
use hypercare_capacity::headroom::Headroom;
use hypercare_kpis::board::BoardEntry;
use hypercare_kpis::definition::Status;
use hypercare_tickets::similar::Cluster;
use hypercare_tickets::stats::DayStats;

use crate::document::{
    AlertLine, AlertsSection, CapacitySection, Change, DailyReport, KpiLine, RolloutSection,
    ServiceCapacity, SloLine, StageLine, TicketCluster, TicketsSection, TierLine,
};
use crate::judge::{Judgement, Verdict};
use crate::policy::Input;
use crate::stages::{StageGate, StageState};

/// How many clusters of similar tickets the report lists.
pub const TOP_CLUSTERS: usize = 5;

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Warning => "warning",
        Status::Critical => "critical",
        Status::NoData => "no_data",
    }
}

/// A verdict of "not enough data" for `kpi`, with nothing it rests on.
fn unjudged(kpi: &str) -> Judgement {
    Judgement {
        kpi: kpi.to_owned(),
        verdict: Verdict::NotEnoughData,
        u: None,
        p: None,
        p_adjusted: None,
        method: None,
        shift: None,
        relative_shift: None,
        launch_values: 0,
        baseline_values: 0,
    }
}

/// Each KPI of the board with its verdict. A KPI the judge did not see (it
/// was defined between the two reads) is `not_enough_data`, and so is one
/// whose day had no event at all (`no_data`): its hours read 0 like the
/// baseline's empty nights, and "no change, p = 1" would claim a comparison
/// that never happened.
pub fn kpis(board: &[BoardEntry], judgements: &[Judgement]) -> Vec<KpiLine> {
    board
        .iter()
        .map(|entry| KpiLine {
            id: entry.id.clone(),
            title: entry.title.clone(),
            unit: entry.unit.clone(),
            value: entry.value,
            target: entry.target,
            status: status_name(entry.status).to_owned(),
            baseline: entry.baseline,
            delta_vs_baseline_pct: entry.delta_vs_baseline_pct,
            comparison: entry.comparison.clone(),
            judgement: judgements
                .iter()
                .find(|j| j.kpi == entry.id && entry.status != Status::NoData)
                .cloned()
                .unwrap_or_else(|| unjudged(&entry.id)),
        })
        .collect()
}

fn is_p0_p1(tier: &str) -> bool {
    matches!(tier, "P0" | "P1")
}

/// A UTC time of the alert history, in the launch's zone (as the rest of the report).
fn local_time(utc: &Option<String>, tz: chrono_tz::Tz) -> Option<String> {
    let utc = utc.as_deref()?;
    Some(
        chrono::DateTime::parse_from_rfc3339(utc)
            .map(|t| {
                t.with_timezone(&tz)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            })
            .unwrap_or_else(|_| utc.to_owned()),
    )
}

pub fn alerts(span: &SpanAlerts, tz: chrono_tz::Tz) -> AlertsSection {
    let line = |a: &hypercare_alerts::stats::SpanAlert| AlertLine {
        id: a.id.clone(),
        rule: a.rule.clone(),
        tier: a.tier.clone(),
        summary: a.summary.clone(),
        labels: a.labels.clone(),
        fired_at: local_time(&a.fired_at, tz),
        resolved_at: local_time(&a.resolved_at, tz),
        firing: a.firing_at_end,
        rollback_trigger: a.rollback_trigger,
    };
    AlertsSection {
        tiers: span
            .tiers
            .iter()
            .map(|(tier, t)| {
                (
                    tier.clone(),
                    TierLine {
                        fired: t.fired,
                        acked: t.acked,
                        resolved: t.resolved,
                        mtta_secs: t.mtta_secs,
                        mttr_secs: t.mttr_secs,
                        ack_sla_breaches: t.ack_sla_breaches,
                    },
                )
            })
            .collect(),
        rollback_triggers: span
            .alerts
            .iter()
            .filter(|a| a.rollback_trigger && (a.fired_in_span || a.firing_at_end))
            .map(line)
            .collect(),
        open_p0_p1: span
            .alerts
            .iter()
            .filter(|a| is_p0_p1(&a.tier) && a.firing_at_end)
            .map(line)
            .collect(),
        p0_p1: span
            .alerts
            .iter()
            .filter(|a| is_p0_p1(&a.tier) && a.fired_in_span)
            .map(line)
            .collect(),
    }
}

pub fn tickets(day: DayStats, clusters: Vec<Cluster>) -> TicketsSection {
    TicketsSection {
        opened: day.opened,
        resolved: day.resolved,
        backlog: day.backlog,
        backlog_by_priority: day.backlog_by_priority,
        sla_breaches: day.breaches,
        opened_by_category: day.opened_by_category,
        opened_by_priority: day.opened_by_priority,
        clusters: clusters
            .into_iter()
            .take(TOP_CLUSTERS)
            .map(|c| TicketCluster {
                title: c.title,
                size: c.keys.len() as u64,
                tickets: c.keys,
            })
            .collect(),
    }
}

/// A service without two counter points in the day has no peak, so no
/// headroom: it is listed, and does not count in the minimum.
pub fn capacity(headrooms: &[Headroom]) -> CapacitySection {
    let services: Vec<ServiceCapacity> = headrooms
        .iter()
        .map(|h| {
            let measured = h.peak_at.is_some();
            let plan = &h.scaling_plan;
            ServiceCapacity {
                service: h.service.clone(),
                peak_rps: measured.then_some(h.peak_rps),
                baseline_rps: h.capacity_rps,
                headroom_ratio: measured.then_some(h.headroom_percent / 100.0),
                plan: if !measured {
                    "no traffic measured".to_owned()
                } else if plan.replicas > h.replicas {
                    format!(
                        "scale from {} to {} replicas for a peak of {:.0} req/s at {:.0} % utilisation",
                        h.replicas,
                        plan.replicas,
                        plan.forecast_peak_rps,
                        plan.target_utilisation * 100.0
                    )
                } else {
                    format!("{} replicas are enough", h.replicas)
                },
            }
        })
        .collect();
    let min_headroom_ratio = services
        .iter()
        .filter_map(|s| s.headroom_ratio)
        .min_by(f64::total_cmp);
    CapacitySection {
        services,
        min_headroom_ratio,
    }
}

/// The stages as their gates stood at the report's `as_of`: the one in force
/// is the last that has started; a stage to come is `not_started`.
pub fn rollout(gates: &[StageGate]) -> RolloutSection {
    let started = |g: &&StageGate| g.state != StageState::ToCome;
    let current = gates.iter().rev().find(started);
    RolloutSection {
        current_stage: current.map(|g| g.name.clone()),
        current_percent: current.map(|g| g.percent),
        stages: gates
            .iter()
            .map(|g| {
                let (verdict, failing) = if started(&g) {
                    (g.verdict.as_str().to_owned(), g.failed.clone())
                } else {
                    ("not_started".to_owned(), Vec::new())
                };
                StageLine {
                    name: g.name.clone(),
                    percent: g.percent,
                    starts_at: g.starts_at.clone(),
                    verdict,
                    failing,
                }
            })
            .collect(),
    }
}

/// Each SLO's budget at the report's `as_of`; objectives as fractions.
pub fn slos(statuses: &[hypercare_alerts::burn::SloStatus]) -> Vec<SloLine> {
    statuses
        .iter()
        .map(|s| SloLine {
            name: s.name.clone(),
            objective: s.objective / 100.0,
            window: s.window.clone(),
            sli: s.sli_value,
            budget_remaining: s.budget_remaining,
        })
        .collect()
}

/// The SLOs' input: how many have spent their whole error budget (absent
/// without any SLO measured, so that its rule is `no_data`).
pub fn slo_inputs(slos: &[SloLine], inputs: &mut BTreeMap<Input, f64>) {
    let measured: Vec<f64> = slos.iter().filter_map(|s| s.budget_remaining).collect();
    if !measured.is_empty() {
        let spent = measured.iter().filter(|left| **left <= 0.0).count();
        inputs.insert(Input::SlosOutOfBudget, spent as f64);
    }
}

/// Every input the policy can read, from the report's sections. An input the
/// day lacks is absent (the rules reading it are `no_data`).
pub fn inputs(
    kpis: &[KpiLine],
    alerts: &AlertsSection,
    tickets: &TicketsSection,
    capacity: &CapacitySection,
    rollout: &RolloutSection,
) -> BTreeMap<Input, f64> {
    let count = |n: usize| n as f64;
    let kpis_with = |status: &str| kpis.iter().filter(|k| k.status == status).count();
    let tier = |name: &str| alerts.tiers.get(name).map_or(0, |t| t.fired) as f64;
    let mut inputs = BTreeMap::from([
        (
            Input::RollbackTriggersFiring,
            count(alerts.rollback_triggers.iter().filter(|a| a.firing).count()),
        ),
        (
            Input::RollbackTriggersFired,
            count(alerts.rollback_triggers.len()),
        ),
        (Input::KpisCritical, count(kpis_with("critical"))),
        (Input::KpisWarning, count(kpis_with("warning"))),
        (
            Input::KpisCriticalAndWorse,
            count(
                kpis.iter()
                    .filter(|k| k.status == "critical" && k.is_worse())
                    .count(),
            ),
        ),
        (
            Input::KpisWorse,
            count(kpis.iter().filter(|k| k.is_worse()).count()),
        ),
        (Input::AlertsP0, tier("P0")),
        (Input::AlertsP1, tier("P1")),
        (Input::AlertsP0P1Open, count(alerts.open_p0_p1.len())),
        (
            Input::OpenP0P1Tickets,
            ["P0", "P1"]
                .iter()
                .map(|p| tickets.backlog_by_priority.get(*p).copied().unwrap_or(0))
                .sum::<u64>() as f64,
        ),
        (Input::SlaBreaches, tickets.sla_breaches as f64),
        (
            Input::StageGatesFailed,
            count(
                rollout
                    .stages
                    .iter()
                    .filter(|s| s.verdict == "fail")
                    .count(),
            ),
        ),
    ]);
    if let Some(headroom) = capacity.min_headroom_ratio {
        inputs.insert(Input::HeadroomRatio, headroom);
    }
    inputs
}

/// What differs between the day before's report and this one, in the order
/// the report reads: the call, KPI statuses and verdicts, then the counts.
pub fn changes(before: &DailyReport, after: &DailyReport) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut push = |what: String, b: String, a: String| {
        if b != a {
            changes.push(Change {
                what,
                before: b,
                after: a,
            });
        }
    };
    push(
        "call".into(),
        before.call.call.to_string(),
        after.call.call.to_string(),
    );
    for kpi in &after.kpis {
        let Some(old) = before.kpis.iter().find(|k| k.id == kpi.id) else {
            push(
                format!("kpi:{}", kpi.id),
                "not defined".into(),
                kpi.status.clone(),
            );
            continue;
        };
        push(
            format!("kpi:{}", kpi.id),
            kpi_summary(old),
            kpi_summary(kpi),
        );
    }
    let fired = |r: &DailyReport| r.alerts.tiers.values().map(|t| t.fired).sum::<u64>();
    push(
        "alerts".into(),
        format!("{} fired", fired(before)),
        format!("{} fired", fired(after)),
    );
    push(
        "tickets".into(),
        format!("backlog {}", before.tickets.backlog),
        format!("backlog {}", after.tickets.backlog),
    );
    let headroom = |r: &DailyReport| {
        r.capacity
            .min_headroom_ratio
            .map_or("unknown".to_owned(), |h| {
                format!("headroom {:.0} %", h * 100.0)
            })
    };
    push("capacity".into(), headroom(before), headroom(after));
    let stage = |r: &DailyReport| {
        r.rollout
            .current_stage
            .clone()
            .unwrap_or_else(|| "no stage".into())
    };
    push("rollout".into(), stage(before), stage(after));
    changes
}

fn kpi_summary(kpi: &KpiLine) -> String {
    let verdict = match kpi.judgement.verdict {
        Verdict::Worse => ", significantly worse",
        Verdict::Better => ", significantly better",
        Verdict::NoChange | Verdict::NotEnoughData => "",
    };
    format!("{}{verdict}", kpi.status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::TicketsSection;
    use crate::gate::GateVerdict;

    fn kpi(id: &str, status: &str, verdict: Verdict) -> KpiLine {
        KpiLine {
            id: id.into(),
            title: id.into(),
            unit: String::new(),
            value: Some(1.0),
            target: 1.0,
            status: status.into(),
            baseline: None,
            delta_vs_baseline_pct: None,
            comparison: "complete_day".into(),
            judgement: Judgement {
                kpi: id.into(),
                verdict,
                u: None,
                p: None,
                p_adjusted: None,
                method: None,
                shift: None,
                relative_shift: None,
                launch_values: 0,
                baseline_values: 0,
            },
        }
    }

    fn alert(tier: &str, firing: bool, rollback: bool) -> AlertLine {
        AlertLine {
            id: "a".into(),
            rule: "r".into(),
            tier: tier.into(),
            summary: String::new(),
            labels: BTreeMap::new(),
            fired_at: None,
            resolved_at: None,
            firing,
            rollback_trigger: rollback,
        }
    }

    #[test]
    fn a_kpi_without_any_event_on_the_day_is_not_judged() {
        let entry = |id: &str, status: Status| BoardEntry {
            id: id.into(),
            title: id.into(),
            unit: String::new(),
            owner: String::new(),
            date: "2026-11-17".into(),
            comparison: "complete_day".into(),
            value: None,
            target: 100.0,
            warning: 50.0,
            critical: 20.0,
            status,
            baseline: None,
            delta_vs_baseline_pct: None,
            trend: hypercare_kpis::board::Trend::Unknown,
            trend_is_good: None,
            pace: None,
        };
        // The judge saw two samples of zeros: "no change, p = 1".
        let mut same = kpi("x", "ok", Verdict::NoChange).judgement;
        same.p = Some(1.0);
        let judged = [
            Judgement {
                kpi: "quiet".into(),
                ..same.clone()
            },
            Judgement {
                kpi: "busy".into(),
                ..same
            },
        ];
        let lines = kpis(
            &[entry("quiet", Status::NoData), entry("busy", Status::Ok)],
            &judged,
        );
        assert_eq!(lines[0].judgement.verdict, Verdict::NotEnoughData);
        assert_eq!(lines[0].judgement.p, None);
        assert_eq!(lines[1].judgement.verdict, Verdict::NoChange);
    }

    #[test]
    fn inputs_count_what_each_rule_reads() {
        let kpis = [
            kpi("orders", "critical", Verdict::Worse),
            kpi("signups", "critical", Verdict::NoChange),
            kpi("searches", "warning", Verdict::Worse),
        ];
        let alerts = AlertsSection {
            rollback_triggers: vec![alert("P0", false, true), alert("P0", true, true)],
            open_p0_p1: vec![alert("P1", true, false)],
            ..AlertsSection::default()
        };
        let tickets = TicketsSection {
            backlog_by_priority: BTreeMap::from([("P1".into(), 2), ("P3".into(), 5)]),
            sla_breaches: 1,
            ..TicketsSection::default()
        };
        let inputs = inputs(
            &kpis,
            &alerts,
            &tickets,
            &CapacitySection::default(),
            &RolloutSection::default(),
        );
        assert_eq!(inputs[&Input::KpisCritical], 2.0);
        assert_eq!(inputs[&Input::KpisCriticalAndWorse], 1.0);
        assert_eq!(inputs[&Input::KpisWorse], 2.0);
        assert_eq!(inputs[&Input::KpisWarning], 1.0);
        assert_eq!(inputs[&Input::RollbackTriggersFired], 2.0);
        assert_eq!(inputs[&Input::RollbackTriggersFiring], 1.0);
        assert_eq!(inputs[&Input::AlertsP0P1Open], 1.0);
        assert_eq!(inputs[&Input::OpenP0P1Tickets], 2.0);
        // No load test baseline: no headroom, so its rule is no_data.
        assert!(!inputs.contains_key(&Input::HeadroomRatio));
        let decision = crate::policy::Policy::default().decide(&inputs);
        assert_eq!(decision.call, crate::policy::Call::RollBack);
    }

    #[test]
    fn the_stage_in_force_is_the_last_started_and_later_ones_have_not_started() {
        let gate = |name: &str, percent: f64, state: StageState, verdict: GateVerdict| StageGate {
            name: name.into(),
            percent,
            starts_at: String::new(),
            from: String::new(),
            to: String::new(),
            state,
            interval_secs: 300,
            intervals: 0,
            compared_with: Vec::new(),
            verdict,
            failed: if verdict == GateVerdict::Fail {
                vec!["error_ratio".to_owned()]
            } else {
                Vec::new()
            },
            metrics: Vec::new(),
            unmeasured: Vec::new(),
        };
        let gates = [
            gate("canary", 1.0, StageState::Over, GateVerdict::Fail),
            gate(
                "wave",
                10.0,
                StageState::UnderWay,
                GateVerdict::NotEnoughData,
            ),
            gate("all", 100.0, StageState::ToCome, GateVerdict::NotEnoughData),
        ];
        let rollout = rollout(&gates);
        assert_eq!(rollout.current_stage.as_deref(), Some("wave"));
        assert_eq!(rollout.current_percent, Some(10.0));
        let verdicts: Vec<&str> = rollout.stages.iter().map(|s| s.verdict.as_str()).collect();
        assert_eq!(verdicts, ["fail", "not_enough_data", "not_started"]);
        assert_eq!(rollout.stages[0].failing, ["error_ratio"]);
    }
}
