//! Exit criteria: may the launch be handed over to normal operations?
//!
//! ```text
//! GET /v1/launches/{id}/exit[?format=json|md|html]            (routes.rs)
//!   gather.rs: the last whole day of the window so far (D+N), the daily
//!     reports of D0..D+N (ReportState::report, Freshness::Stored: kept once
//!     made), the P1 tickets open at the end of D+N (to name them)
//!   evaluate (here, pure): each criterion met / not_met / no_data with the
//!     days and figures it rests on, and `ready`
//!   render.rs: the D+14 exit report as Markdown or a standalone HTML page
//! ```
//!
//! The criteria (`[report.exit]`, defaults in brackets):
//! - `no_p0_p1_alerts`: no P0/P1 alert fired in the last `quiet_days` [3] whole
//!   days, and none still firing at the end of the day looked at;
//! - `kpis_ok`: every KPI `ok` on each of the last `kpis_ok_days` [3] whole days;
//! - `open_p0_p1_tickets`: at most `max_open_p0_p1_tickets` [0] P0/P1 tickets
//!   unresolved at the end of the day looked at;
//! - `sla_breaches`: at most `max_sla_breaches` [5] ticket SLA breaches over the
//!   window so far (D0 to the day looked at): a handover takes the support
//!   record of the whole stabilization, not of its quiet end;
//! - `headroom`: the smallest capacity headroom of any service at least
//!   `min_headroom` [0.3] on the day looked at.
//!
//! A criterion whose figures are missing (fewer whole days than it needs, a KPI
//! without data, no load-test baseline) is `no_data`: it is not met, and says
//! why. The launch is `ready` only when every criterion is `met`.

pub mod gather;
pub mod render;
pub mod routes;

use serde::{Deserialize, Serialize};

use crate::document::{DailyReport, LaunchInfo};
use crate::render::{day_label, number, percent};

/// The `[report.exit]` section: the handover's exit criteria.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ExitSettings {
    /// Whole days, ending with the day looked at, in which no P0/P1 alert may fire.
    pub quiet_days: u32,
    /// Whole days, ending with the day looked at, on which every KPI must be `ok`.
    pub kpis_ok_days: u32,
    /// P0/P1 tickets that may still be unresolved at the end of the day looked at.
    pub max_open_p0_p1_tickets: u64,
    /// Ticket SLA breaches allowed over the window so far (D0 to the day looked at).
    pub max_sla_breaches: u64,
    /// The smallest capacity headroom allowed (a fraction: 0.3 = 30 % left).
    pub min_headroom: f64,
}

impl Default for ExitSettings {
    fn default() -> Self {
        Self {
            quiet_days: 3,
            kpis_ok_days: 3,
            max_open_p0_p1_tickets: 0,
            max_sla_breaches: 5,
            min_headroom: 0.3,
        }
    }
}

/// A `[report.exit]` setting out of its range; `field` is its path under `report`.
#[derive(Debug, thiserror::Error)]
#[error("report.{field}: {reason}")]
pub struct ExitSettingsError {
    pub field: &'static str,
    pub reason: &'static str,
}

/// The longest stabilization window a launch may have (`window_days`).
const MAX_DAYS: u32 = 90;

impl ExitSettings {
    pub fn validate(&self) -> Result<(), ExitSettingsError> {
        let days = |field, value: u32| {
            if (1..=MAX_DAYS).contains(&value) {
                Ok(())
            } else {
                Err(ExitSettingsError {
                    field,
                    reason: "must be between 1 and 90 days",
                })
            }
        };
        days("exit.quiet_days", self.quiet_days)?;
        days("exit.kpis_ok_days", self.kpis_ok_days)?;
        if !(0.0..1.0).contains(&self.min_headroom) {
            return Err(ExitSettingsError {
                field: "exit.min_headroom",
                reason: "must be a fraction from 0 to below 1, e.g. 0.3 (30 % left)",
            });
        }
        Ok(())
    }
}

/// One criterion's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = CriterionOutcome)]
pub enum Outcome {
    Met,
    NotMet,
    /// The figures it needs are missing: not met either, but not a failure.
    NoData,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Met => "met",
            Outcome::NotMet => "not_met",
            Outcome::NoData => "no_data",
        }
    }
}

/// One exit criterion, evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Criterion {
    /// `no_p0_p1_alerts`, `kpis_ok`, `open_p0_p1_tickets`, `sla_breaches`, `headroom`.
    pub id: String,
    /// The criterion in words, with its configured limit.
    pub title: String,
    pub outcome: Outcome,
    /// The configured limit (days for the first two, a count, or a fraction).
    pub limit: f64,
    /// The figure measured against it: alerts fired, KPI-days not ok, open
    /// tickets, breaches, the smallest headroom (`None`: no data).
    pub value: Option<f64>,
    /// The launch days (N of D+N) it rests on.
    pub days: Vec<i64>,
    /// What it rests on, in words: each alert, KPI-day, ticket, breach count or
    /// service that decides it, or what is missing.
    pub evidence: Vec<String>,
}

/// The exit criteria of a launch, as of its last whole day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExitReport {
    pub launch: LaunchInfo,
    /// The day looked at: N of the last whole day of the window so far
    /// (`None` while D0 is not over).
    pub as_of_day: Option<i64>,
    /// Its local date, in `launch.tz`.
    pub as_of_date: Option<String>,
    /// Whether the window is over: the day looked at is its last, so this is
    /// the exit report itself rather than a forecast.
    pub window_over: bool,
    /// Every criterion met.
    pub ready: bool,
    /// One sentence: the day looked at, `ready`, and the criteria that keep it false.
    pub summary: String,
    pub criteria: Vec<Criterion>,
    /// When the answer was made (RFC 3339, UTC).
    pub generated_at: String,
}

/// A P0/P1 ticket unresolved at the end of the day looked at, to name it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenTicket {
    pub key: String,
    pub title: String,
    pub priority: String,
}

/// What the criteria are evaluated on.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The reports of D0 to the day looked at, oldest first (empty while D0
    /// is not over).
    pub reports: &'a [DailyReport],
    /// The P0/P1 tickets unresolved at the end of the last report's day.
    pub open_tickets: &'a [OpenTicket],
}

/// `D+3 (2026-11-19)`.
fn day_named(report: &DailyReport) -> String {
    format!("{} ({})", day_label(report.day), report.date)
}

/// The last `n` reports, and what to say when there are fewer.
fn last_days(reports: &[DailyReport], n: u32) -> (&[DailyReport], Option<String>) {
    let n = n as usize;
    let from = reports.len().saturating_sub(n);
    let taken = &reports[from..];
    let short = (taken.len() < n).then(|| {
        format!(
            "only {} whole day{} since D0, {n} needed",
            taken.len(),
            if taken.len() == 1 { "" } else { "s" }
        )
    });
    (taken, short)
}

fn is_p0_p1(tier: &str) -> bool {
    matches!(tier, "P0" | "P1")
}

fn no_p0_p1_alerts(settings: &ExitSettings, reports: &[DailyReport]) -> Criterion {
    let (days, short) = last_days(reports, settings.quiet_days);
    let mut evidence = Vec::new();
    let mut fired = 0u64;
    for report in days {
        let counted: u64 = report
            .alerts
            .tiers
            .iter()
            .filter(|(tier, _)| is_p0_p1(tier))
            .map(|(_, t)| t.fired)
            .sum();
        fired += counted.max(report.alerts.p0_p1.len() as u64);
        for alert in &report.alerts.p0_p1 {
            evidence.push(format!(
                "{} alert `{}` fired on {}{}",
                alert.tier,
                alert.rule,
                day_named(report),
                if alert.firing { ", still firing" } else { "" }
            ));
        }
    }
    // An alert that fired before the days looked at and still fires is no
    // quieter than one that fired within them.
    let mut still_firing = 0u64;
    if let Some(last) = days.last() {
        for alert in &last.alerts.open_p0_p1 {
            let listed = days
                .iter()
                .any(|r| r.alerts.p0_p1.iter().any(|a| a.id == alert.id));
            if !listed {
                still_firing += 1;
                evidence.push(format!(
                    "{} alert `{}` fired {} and still fires at the end of {}",
                    alert.tier,
                    alert.rule,
                    alert.fired_at.as_deref().unwrap_or("earlier"),
                    day_named(last)
                ));
            }
        }
    }
    let value = fired + still_firing;
    let outcome = if value > 0 {
        Outcome::NotMet
    } else if let Some(short) = short {
        evidence.push(short);
        Outcome::NoData
    } else {
        evidence.push(format!(
            "no P0/P1 alert fired on {}",
            span(days).unwrap_or_default()
        ));
        Outcome::Met
    };
    Criterion {
        id: "no_p0_p1_alerts".into(),
        title: format!(
            "No P0/P1 alert in the last {} whole days",
            settings.quiet_days
        ),
        outcome,
        limit: f64::from(settings.quiet_days),
        value: (!days.is_empty()).then_some(value as f64),
        days: days.iter().map(|r| r.day).collect(),
        evidence,
    }
}

/// `D+1 (2026-11-17) to D+3 (2026-11-19)`, or one day's name.
fn span(days: &[DailyReport]) -> Option<String> {
    let (first, last) = (days.first()?, days.last()?);
    Some(if first.day == last.day {
        day_named(first)
    } else {
        format!("{} to {}", day_named(first), day_named(last))
    })
}

fn kpis_ok(settings: &ExitSettings, reports: &[DailyReport]) -> Criterion {
    let (days, short) = last_days(reports, settings.kpis_ok_days);
    let mut evidence = Vec::new();
    let (mut not_ok, mut missing) = (0u64, Vec::new());
    for report in days {
        if report.kpis.is_empty() {
            missing.push(format!("no KPI is defined on {}", day_named(report)));
        }
        for kpi in report.kpis.iter().filter(|k| k.status != "ok") {
            if kpi.status == "no_data" {
                missing.push(format!("`{}` has no data on {}", kpi.id, day_named(report)));
                continue;
            }
            not_ok += 1;
            evidence.push(format!(
                "`{}` {} on {}: {} against a target of {}",
                kpi.id,
                kpi.status,
                day_named(report),
                kpi.value.map_or("-".into(), number),
                number(kpi.target)
            ));
        }
    }
    let outcome = if not_ok > 0 {
        Outcome::NotMet
    } else if short.is_some() || !missing.is_empty() {
        Outcome::NoData
    } else {
        let kpis = days.last().map_or(0, |r| r.kpis.len());
        evidence.push(format!(
            "{kpis} KPI{} ok on each of {}",
            if kpis == 1 { "" } else { "s" },
            span(days).unwrap_or_default()
        ));
        Outcome::Met
    };
    evidence.extend(missing);
    evidence.extend(short);
    Criterion {
        id: "kpis_ok".into(),
        title: format!(
            "Every KPI ok on each of the last {} whole days",
            settings.kpis_ok_days
        ),
        outcome,
        limit: f64::from(settings.kpis_ok_days),
        value: (!days.is_empty()).then_some(not_ok as f64),
        days: days.iter().map(|r| r.day).collect(),
        evidence,
    }
}

fn open_p0_p1_tickets(
    settings: &ExitSettings,
    reports: &[DailyReport],
    named: &[OpenTicket],
) -> Criterion {
    let mut criterion = Criterion {
        id: "open_p0_p1_tickets".into(),
        title: match settings.max_open_p0_p1_tickets {
            0 => "No P0/P1 ticket open".to_owned(),
            1 => "At most 1 P0/P1 ticket open".to_owned(),
            n => format!("At most {n} P0/P1 tickets open"),
        },
        outcome: Outcome::NoData,
        limit: settings.max_open_p0_p1_tickets as f64,
        value: None,
        days: Vec::new(),
        evidence: Vec::new(),
    };
    let Some(last) = reports.last() else {
        criterion.evidence.push("no whole day since D0".into());
        return criterion;
    };
    let open: u64 = ["P0", "P1"]
        .iter()
        .filter_map(|p| last.tickets.backlog_by_priority.get(*p))
        .sum();
    criterion.value = Some(open as f64);
    criterion.days = vec![last.day];
    for ticket in named
        .iter()
        .take(usize::try_from(open).unwrap_or(usize::MAX))
    {
        criterion.evidence.push(format!(
            "{} ticket {} \"{}\" open at the end of {}",
            ticket.priority,
            ticket.key,
            ticket.title,
            day_named(last)
        ));
    }
    let unnamed = open.saturating_sub(criterion.evidence.len() as u64);
    if unnamed > 0 {
        let more = if criterion.evidence.is_empty() {
            ""
        } else {
            " more"
        };
        criterion.evidence.push(format!(
            "{unnamed}{more} P0/P1 ticket{} open at the end of {}",
            if unnamed == 1 { "" } else { "s" },
            day_named(last)
        ));
    }
    if open == 0 {
        criterion.evidence.push(format!(
            "no P0/P1 ticket open at the end of {}",
            day_named(last)
        ));
    }
    criterion.outcome = if open <= settings.max_open_p0_p1_tickets {
        Outcome::Met
    } else {
        Outcome::NotMet
    };
    criterion
}

fn sla_breaches(settings: &ExitSettings, reports: &[DailyReport]) -> Criterion {
    let total: u64 = reports.iter().map(|r| r.tickets.sla_breaches).sum();
    let mut evidence: Vec<String> = reports
        .iter()
        .filter(|r| r.tickets.sla_breaches > 0)
        .map(|r| {
            format!(
                "{} breach{} on {}",
                r.tickets.sla_breaches,
                if r.tickets.sla_breaches == 1 {
                    ""
                } else {
                    "es"
                },
                day_named(r)
            )
        })
        .collect();
    let outcome = match span(reports) {
        None => {
            evidence.push("no whole day since D0".into());
            Outcome::NoData
        }
        Some(span) => {
            evidence.push(format!(
                "{total} over {span}, at most {} allowed",
                settings.max_sla_breaches
            ));
            if total <= settings.max_sla_breaches {
                Outcome::Met
            } else {
                Outcome::NotMet
            }
        }
    };
    Criterion {
        id: "sla_breaches".into(),
        title: format!(
            "At most {} ticket SLA breaches since D0",
            settings.max_sla_breaches
        ),
        outcome,
        limit: settings.max_sla_breaches as f64,
        value: (!reports.is_empty()).then_some(total as f64),
        days: reports.iter().map(|r| r.day).collect(),
        evidence,
    }
}

fn headroom(settings: &ExitSettings, reports: &[DailyReport]) -> Criterion {
    let mut criterion = Criterion {
        id: "headroom".into(),
        title: format!(
            "Capacity headroom at least {}",
            percent(settings.min_headroom)
        ),
        outcome: Outcome::NoData,
        limit: settings.min_headroom,
        value: None,
        days: Vec::new(),
        evidence: Vec::new(),
    };
    let Some(last) = reports.last() else {
        criterion.evidence.push("no whole day since D0".into());
        return criterion;
    };
    criterion.days = vec![last.day];
    let Some(min) = last.capacity.min_headroom_ratio else {
        criterion.evidence.push(format!(
            "headroom unknown on {}: {}",
            day_named(last),
            if last.capacity.services.is_empty() {
                "no load-test baseline is recorded"
            } else {
                "no traffic was measured"
            }
        ));
        return criterion;
    };
    criterion.value = Some(min);
    for service in &last.capacity.services {
        let Some(ratio) = service.headroom_ratio else {
            continue;
        };
        criterion.evidence.push(format!(
            "`{}` {} headroom at its peak of {} req/s (capacity {} req/s) on {}",
            service.service,
            percent(ratio),
            service.peak_rps.map_or("-".into(), number),
            number(service.baseline_rps),
            day_named(last)
        ));
    }
    criterion.outcome = if min >= settings.min_headroom {
        Outcome::Met
    } else {
        Outcome::NotMet
    };
    criterion
}

/// The criteria on `evidence`; `as_of` names the day looked at when there is
/// no report of it yet (D0 under way).
pub fn evaluate(
    settings: &ExitSettings,
    launch: LaunchInfo,
    as_of: (Option<i64>, Option<String>),
    window_over: bool,
    evidence: Evidence<'_>,
    generated_at: String,
) -> ExitReport {
    let reports = evidence.reports;
    let criteria = vec![
        no_p0_p1_alerts(settings, reports),
        kpis_ok(settings, reports),
        open_p0_p1_tickets(settings, reports, evidence.open_tickets),
        sla_breaches(settings, reports),
        headroom(settings, reports),
    ];
    let ready = criteria.iter().all(|c| c.outcome == Outcome::Met);
    let summary = summary(&launch, &as_of, window_over, ready, &criteria);
    ExitReport {
        launch,
        as_of_day: as_of.0,
        as_of_date: as_of.1,
        window_over,
        ready,
        summary,
        criteria,
        generated_at,
    }
}

fn summary(
    launch: &LaunchInfo,
    as_of: &(Option<i64>, Option<String>),
    window_over: bool,
    ready: bool,
    criteria: &[Criterion],
) -> String {
    let Some(day) = as_of.0 else {
        return format!(
            "D0 ({}) is not over yet: no whole day to judge, ready: false.",
            launch.d0
        );
    };
    let mut text = format!(
        "As of {} ({}), ready: {ready}",
        day_label(day),
        as_of.1.as_deref().unwrap_or_default()
    );
    for (outcome, words) in [(Outcome::NotMet, "not met"), (Outcome::NoData, "no data")] {
        let ids: Vec<&str> = criteria
            .iter()
            .filter(|c| c.outcome == outcome)
            .map(|c| c.id.as_str())
            .collect();
        if !ids.is_empty() {
            text.push_str(&format!("; {words}: {}", ids.join(", ")));
        }
    }
    if !window_over {
        text.push_str(&format!("; the window runs to {}", launch.last_day));
    }
    text.push('.');
    text
}

#[cfg(test)]
mod tests;
