//! Each criterion met and not met (and `no_data` where figures are missing),
//! on daily reports built by hand.

use std::collections::BTreeMap;

use super::*;
use crate::document::{
    AlertLine, AlertsSection, CallSection, CapacitySection, KpiLine, RolloutSection,
    ServiceCapacity, TicketsSection, TierLine,
};
use crate::judge::{Judgement, Verdict};
use crate::policy::Call;

fn launch() -> LaunchInfo {
    LaunchInfo {
        id: "l1".into(),
        name: "Spring".into(),
        release: "2.4.0".into(),
        tz: "Europe/Paris".into(),
        d0: "2026-11-16".into(),
        last_day: "2026-11-30".into(),
    }
}

fn kpi(id: &str, status: &str, value: f64) -> KpiLine {
    KpiLine {
        id: id.into(),
        title: id.into(),
        unit: String::new(),
        value: Some(value),
        target: 100.0,
        status: status.into(),
        baseline: None,
        delta_vs_baseline_pct: None,
        comparison: "complete_day".into(),
        judgement: Judgement {
            kpi: id.into(),
            verdict: Verdict::NoChange,
            u: None,
            p: None,
            p_adjusted: None,
            method: None,
            shift: None,
            relative_shift: None,
            launch_values: 24,
            baseline_values: 24,
        },
    }
}

/// A quiet day: one KPI ok, no alert, no ticket, 50 % headroom.
fn day(n: i64) -> DailyReport {
    DailyReport {
        schema: crate::document::SCHEMA_VERSION,
        launch: launch(),
        day: n,
        date: format!("2026-11-{}", 16 + n),
        generated_at: String::new(),
        as_of: String::new(),
        complete: true,
        call: CallSection {
            call: Call::Go,
            reasons: Vec::new(),
            inputs: BTreeMap::new(),
            rules: Vec::new(),
        },
        kpis: vec![kpi("orders", "ok", 120.0)],
        alerts: AlertsSection::default(),
        tickets: TicketsSection::default(),
        capacity: CapacitySection {
            services: vec![ServiceCapacity {
                service: "checkout".into(),
                peak_rps: Some(50.0),
                baseline_rps: 100.0,
                headroom_ratio: Some(0.5),
                plan: String::new(),
            }],
            min_headroom_ratio: Some(0.5),
        },
        rollout: RolloutSection::default(),
        slos: Vec::new(),
        changes: Vec::new(),
    }
}

fn days(n: i64) -> Vec<DailyReport> {
    (0..n).map(day).collect()
}

fn p1_alert(id: &str, rule: &str, firing: bool) -> AlertLine {
    AlertLine {
        id: id.into(),
        rule: rule.into(),
        tier: "P1".into(),
        summary: String::new(),
        labels: BTreeMap::new(),
        fired_at: Some("2026-11-18T10:00:00+01:00".into()),
        resolved_at: None,
        firing,
        rollback_trigger: false,
    }
}

fn fire(report: &mut DailyReport, alert: AlertLine) {
    report.alerts.tiers.insert(
        alert.tier.clone(),
        TierLine {
            fired: 1,
            ..TierLine::default()
        },
    );
    if alert.firing {
        report.alerts.open_p0_p1.push(alert.clone());
    }
    report.alerts.p0_p1.push(alert);
}

fn run(reports: &[DailyReport], open_tickets: &[OpenTicket]) -> ExitReport {
    let last = reports.last();
    evaluate(
        &ExitSettings::default(),
        launch(),
        (last.map(|r| r.day), last.map(|r| r.date.clone())),
        false,
        Evidence {
            reports,
            open_tickets,
        },
        "2026-11-21T08:00:00Z".into(),
    )
}

fn criterion<'a>(report: &'a ExitReport, id: &str) -> &'a Criterion {
    report
        .criteria
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no {id}"))
}

#[test]
fn quiet_days_with_ok_kpis_no_tickets_and_headroom_are_ready() {
    let answer = run(&days(5), &[]);
    assert!(answer.ready, "{answer:#?}");
    for c in &answer.criteria {
        assert_eq!(c.outcome, Outcome::Met, "{c:#?}");
    }
    let quiet = criterion(&answer, "no_p0_p1_alerts");
    assert_eq!(quiet.days, [2, 3, 4]);
    assert_eq!(quiet.value, Some(0.0));
    assert_eq!(
        answer.summary,
        "As of D+4 (2026-11-20), ready: true; the window runs to 2026-11-30."
    );
}

#[test]
fn a_p1_alert_in_the_last_three_days_is_not_quiet_and_one_before_them_is() {
    let mut reports = days(5);
    fire(&mut reports[1], p1_alert("a1", "error_rate", false));
    let answer = run(&reports, &[]);
    assert_eq!(
        criterion(&answer, "no_p0_p1_alerts").outcome,
        Outcome::Met,
        "D+1 is before the last three days"
    );

    fire(&mut reports[3], p1_alert("a2", "error_rate", false));
    let answer = run(&reports, &[]);
    let quiet = criterion(&answer, "no_p0_p1_alerts");
    assert_eq!(quiet.outcome, Outcome::NotMet);
    assert_eq!(quiet.value, Some(1.0));
    assert_eq!(
        quiet.evidence,
        ["P1 alert `error_rate` fired on D+3 (2026-11-19)"]
    );
    assert!(!answer.ready);
    assert!(
        answer.summary.contains("not met: no_p0_p1_alerts"),
        "{}",
        answer.summary
    );
}

#[test]
fn an_alert_that_fired_earlier_and_still_fires_is_not_quiet() {
    let mut reports = days(5);
    fire(&mut reports[0], p1_alert("a1", "checkout_down", true));
    reports[4]
        .alerts
        .open_p0_p1
        .push(p1_alert("a1", "checkout_down", true));
    let quiet = run(&reports, &[]).criteria[0].clone();
    assert_eq!(quiet.outcome, Outcome::NotMet);
    assert_eq!(
        quiet.evidence,
        [
            "P1 alert `checkout_down` fired 2026-11-18T10:00:00+01:00 and still fires at the end of D+4 (2026-11-20)"
        ]
    );
}

#[test]
fn fewer_whole_days_than_needed_is_no_data_not_met() {
    let answer = run(&days(2), &[]);
    let quiet = criterion(&answer, "no_p0_p1_alerts");
    assert_eq!(quiet.outcome, Outcome::NoData);
    assert_eq!(quiet.evidence, ["only 2 whole days since D0, 3 needed"]);
    assert_eq!(criterion(&answer, "kpis_ok").outcome, Outcome::NoData);
    assert!(!answer.ready);
    assert!(
        answer.summary.contains("no data: no_p0_p1_alerts, kpis_ok"),
        "{}",
        answer.summary
    );
}

#[test]
fn a_kpi_at_warning_on_one_of_the_last_days_is_not_ok() {
    let mut reports = days(5);
    reports[3].kpis.push(kpi("signups", "warning", 45.0));
    let answer = run(&reports, &[]);
    let kpis = criterion(&answer, "kpis_ok");
    assert_eq!(kpis.outcome, Outcome::NotMet);
    assert_eq!(kpis.value, Some(1.0));
    assert_eq!(
        kpis.evidence,
        ["`signups` warning on D+3 (2026-11-19): 45 against a target of 100"]
    );
}

#[test]
fn a_kpi_without_data_or_no_kpi_at_all_is_no_data() {
    let mut reports = days(5);
    reports[4].kpis[0].status = "no_data".into();
    let kpis = run(&reports, &[]).criteria[1].clone();
    assert_eq!(kpis.outcome, Outcome::NoData);
    assert_eq!(kpis.evidence, ["`orders` has no data on D+4 (2026-11-20)"]);

    let mut reports = days(5);
    reports.iter_mut().for_each(|r| r.kpis.clear());
    assert_eq!(run(&reports, &[]).criteria[1].outcome, Outcome::NoData);
}

#[test]
fn an_open_p1_ticket_at_the_end_of_the_last_day_is_named() {
    let mut reports = days(5);
    reports[4].tickets.backlog_by_priority =
        BTreeMap::from([("P1".to_owned(), 2), ("P3".to_owned(), 7)]);
    let named = [OpenTicket {
        key: "HC-7".into(),
        title: "Checkout fails".into(),
        priority: "P1".into(),
    }];
    let tickets = run(&reports, &named).criteria[2].clone();
    assert_eq!(tickets.outcome, Outcome::NotMet);
    assert_eq!(tickets.value, Some(2.0));
    assert_eq!(tickets.days, [4]);
    assert_eq!(
        tickets.evidence,
        [
            "P1 ticket HC-7 \"Checkout fails\" open at the end of D+4 (2026-11-20)",
            "1 more P0/P1 ticket open at the end of D+4 (2026-11-20)"
        ]
    );

    // Resolved before the last day ended: only the lower priorities are left.
    reports[4].tickets.backlog_by_priority = BTreeMap::from([("P3".to_owned(), 7)]);
    let tickets = run(&reports, &[]).criteria[2].clone();
    assert_eq!(tickets.outcome, Outcome::Met);
    assert_eq!(
        tickets.evidence,
        ["no P0/P1 ticket open at the end of D+4 (2026-11-20)"]
    );
}

#[test]
fn sla_breaches_count_over_the_window_so_far() {
    let mut reports = days(5);
    reports[0].tickets.sla_breaches = 3;
    reports[2].tickets.sla_breaches = 2;
    let sla = run(&reports, &[]).criteria[3].clone();
    assert_eq!(
        (sla.outcome, sla.value),
        (Outcome::Met, Some(5.0)),
        "at most 5"
    );
    assert_eq!(sla.days, [0, 1, 2, 3, 4]);

    reports[4].tickets.sla_breaches = 1;
    let sla = run(&reports, &[]).criteria[3].clone();
    assert_eq!((sla.outcome, sla.value), (Outcome::NotMet, Some(6.0)));
    assert_eq!(
        sla.evidence,
        [
            "3 breaches on D0 (2026-11-16)",
            "2 breaches on D+2 (2026-11-18)",
            "1 breach on D+4 (2026-11-20)",
            "6 over D0 (2026-11-16) to D+4 (2026-11-20), at most 5 allowed"
        ]
    );
}

#[test]
fn headroom_under_the_floor_is_not_met_and_unknown_headroom_is_no_data() {
    let mut reports = days(5);
    reports[4].capacity.services[0].peak_rps = Some(80.0);
    reports[4].capacity.services[0].headroom_ratio = Some(0.2);
    reports[4].capacity.min_headroom_ratio = Some(0.2);
    let headroom = run(&reports, &[]).criteria[4].clone();
    assert_eq!(headroom.outcome, Outcome::NotMet);
    assert_eq!(
        headroom.evidence,
        [
            "`checkout` 20 % headroom at its peak of 80 req/s (capacity 100 req/s) on D+4 (2026-11-20)"
        ]
    );

    reports[4].capacity = CapacitySection::default();
    let headroom = run(&reports, &[]).criteria[4].clone();
    assert_eq!((headroom.outcome, headroom.value), (Outcome::NoData, None));
    assert_eq!(
        headroom.evidence,
        ["headroom unknown on D+4 (2026-11-20): no load-test baseline is recorded"]
    );
}

#[test]
fn before_d0_is_over_every_criterion_is_no_data() {
    let answer = run(&[], &[]);
    assert!(!answer.ready);
    assert!(answer.criteria.iter().all(|c| c.outcome == Outcome::NoData));
    assert_eq!(
        answer.summary,
        "D0 (2026-11-16) is not over yet: no whole day to judge, ready: false."
    );
}

#[test]
fn settings_out_of_range_name_their_field() {
    assert!(ExitSettings::default().validate().is_ok());
    for (settings, field) in [
        (
            ExitSettings {
                quiet_days: 0,
                ..ExitSettings::default()
            },
            "exit.quiet_days",
        ),
        (
            ExitSettings {
                kpis_ok_days: 91,
                ..ExitSettings::default()
            },
            "exit.kpis_ok_days",
        ),
        (
            ExitSettings {
                min_headroom: 1.5,
                ..ExitSettings::default()
            },
            "exit.min_headroom",
        ),
        (
            ExitSettings {
                min_headroom: f64::NAN,
                ..ExitSettings::default()
            },
            "exit.min_headroom",
        ),
    ] {
        assert_eq!(settings.validate().unwrap_err().field, field);
    }
}

#[test]
fn the_exit_report_renders_every_criterion_escaped() {
    let mut reports = days(5);
    reports[4].tickets.backlog_by_priority = BTreeMap::from([("P1".to_owned(), 1)]);
    let named = [OpenTicket {
        key: "HC-1".into(),
        title: "<script>alert(1)</script> | pay".into(),
        priority: "P1".into(),
    }];
    let answer = run(&reports, &named);
    let html = render::html(&answer);
    assert!(html.starts_with("<!DOCTYPE html><html lang=\"en\">"));
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("Ready for handover: no"));
    for c in &answer.criteria {
        assert!(
            html.contains(&format!("data-criterion=\"{}\"", c.id)),
            "{}",
            c.id
        );
    }
    let md = render::markdown(&answer);
    assert!(md.starts_with("# Spring: exit criteria as of D+4 (2026-11-20)"));
    assert!(md.contains("## Ready for handover: **no**"));
    assert!(
        md.contains("| No P0/P1 ticket open | ≤ 0 | 1 | D+4 | **not met** |"),
        "{md}"
    );
    assert!(
        md.contains("&lt;script>alert(1)&lt;/script> \\| pay"),
        "{md}"
    );
}
