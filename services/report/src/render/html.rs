//! The report as HTML: one standalone page ([`render`]: its own styles, no
//! script) for the API's `format=html`, the folder delivery and a printer;
//! and the same sections as a fragment ([`sections`]) that the web console
//! puts in its own layout, so that both read alike.
//!
//! Everything comes from the [`DailyReport`] alone (a stored report renders
//! as it did the day it was made). maud escapes every text. Times are shown
//! in the launch's time zone, named. A status or a call is always said in
//! words (with a symbol); its colour only repeats it.

use std::collections::BTreeSet;

use chrono::DateTime;
use chrono_tz::Tz;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::document::{AlertLine, DailyReport, KpiLine};
use crate::judge::Verdict;
use crate::policy::{Call, Outcome};
use crate::render::{call_label, day_label, number, percent, pvalue, seconds, verdict_label};

/// The standalone page.
pub fn render(report: &DailyReport) -> String {
    page(report).into_string()
}

/// `Spring D+1 (2026-11-17): daily report`.
pub fn title(report: &DailyReport) -> String {
    format!(
        "{} {} ({}): daily report",
        report.launch.name,
        day_label(report.day),
        report.date
    )
}

/// The page's own styles: readable from 390 px up, printable, colours of at
/// least 4.5:1 against their background.
const STYLE: &str = r#"
:root { color-scheme: light; --ink: #1b1f24; --muted: #545d68; --line: #d0d7de; --paper: #fff;
  --ok: #116329; --ok-wash: #dafbe1; --warning: #7d4e00; --warning-wash: #fff1c2;
  --critical: #a40e26; --critical-wash: #ffe3e6; --none-wash: #eef1f4; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: var(--paper); }
main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .5rem 0; }
h2 { font-size: 1.2rem; margin: 1.75rem 0 .5rem; }
h3 { font-size: 1rem; margin: 1.25rem 0 .4rem; }
a { color: var(--accent); }
.muted { color: var(--muted); }
.scroll { overflow-x: auto; margin: 0 0 .75rem; }
.scroll:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { text-align: left; padding: .35rem .55rem; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { font-size: .85rem; color: var(--muted); white-space: nowrap; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.report .call { border: 2px solid var(--line); border-left-width: 10px; border-radius: 6px; padding: .75rem 1rem; margin: 1rem 0; }
.report .call h2 { margin: 0 0 .35rem; font-size: 1.6rem; }
.report .call ul { margin: .25rem 0 0; padding-left: 1.25rem; font-size: 1.05rem; }
.report .call.go { border-color: var(--ok); background: var(--ok-wash); color: var(--ok); }
.report .call.hold { border-color: var(--warning); background: var(--warning-wash); color: var(--warning); }
.report .call.roll_back { border-color: var(--critical); background: var(--critical-wash); color: var(--critical); }
.status { display: inline-block; padding: 0 .4rem; border-radius: 4px; font-weight: 600; white-space: nowrap; }
.status.ok, .status.pass, .status.better { background: var(--ok-wash); color: var(--ok); }
.status.warning, .status.hold { background: var(--warning-wash); color: var(--warning); }
.status.critical, .status.fail, .status.worse, .status.roll_back, .status.firing { background: var(--critical-wash); color: var(--critical); }
.status.no_data, .status.no_change, .status.not_enough_data, .status.not_started, .status.go { background: var(--none-wash); color: var(--ink); }
tr.holds th, tr.holds td { font-weight: 600; }
dl.counts { display: grid; grid-template-columns: repeat(auto-fill, minmax(9rem, 1fr)); gap: .5rem 1rem; margin: 0 0 .75rem; }
dl.counts dt { font-size: .85rem; color: var(--muted); }
dl.counts dd { margin: 0; font-size: 1.2rem; font-weight: 600; }
@media (max-width: 600px) { main { padding: .6rem; } h1 { font-size: 1.3rem; } .report .call h2 { font-size: 1.35rem; } }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  .scroll { overflow: visible; }
  tr, .call { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  a { color: inherit; text-decoration: none; }
}
"#;

/// The whole page: head, title, the sections.
pub fn page(report: &DailyReport) -> Markup {
    let title = title(report);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                main {
                    h1 { (title) }
                    (sections(report))
                }
            }
        }
    }
}

/// The report's sections, in the morning meeting's order (as in Markdown):
/// the call and its reasons, the policy's rules, KPIs, alerts, tickets,
/// capacity, rollout, SLOs (when there are any), changes since the day
/// before. Headings start at `h2`, under the page's `h1`.
pub fn sections(report: &DailyReport) -> Markup {
    let r = report;
    let tz: Option<Tz> = r.launch.tz.parse().ok();
    html! {
        div.report {
            p.meta #report-meta {
                "Release " strong { (r.launch.release) } " · local day " strong { (r.date) }
                " (" (day_label(r.day)) ") in " strong { (r.launch.tz) } " · "
                @if r.complete { "whole day" } @else { "day under way, as of " (local_time(&r.as_of, tz)) }
                " · made " (local_time(&r.generated_at, tz)) ". Times are in " (r.launch.tz) "."
            }
            (call(r))
            (rules(r))
            (kpis(r))
            (alerts(r, tz))
            (tickets(r))
            (capacity(r))
            (rollout(r, tz))
            @if !r.slos.is_empty() { (slos(r)) }
            (changes(r))
        }
    }
}

/// A time of the report (RFC 3339) in the launch's zone: `17 Nov 21:30 CET`.
pub fn local_time(text: &str, tz: Option<Tz>) -> String {
    match (DateTime::parse_from_rfc3339(text), tz) {
        (Ok(t), Some(tz)) => t.with_timezone(&tz).format("%-d %b %H:%M %Z").to_string(),
        (Ok(t), None) => t.format("%-d %b %H:%M %:z").to_string(),
        (Err(_), _) => text.to_owned(),
    }
}

fn call_symbol(call: Call) -> &'static str {
    match call {
        Call::Go => "✓",
        Call::Hold => "!",
        Call::RollBack => "✕",
    }
}

fn status_text(status: &str) -> (&'static str, &'static str) {
    match status {
        "ok" => ("✓", "OK"),
        "warning" => ("!", "Warning"),
        "critical" => ("✕", "Critical"),
        _ => ("–", "No data"),
    }
}

fn verdict_class(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Better => "better",
        Verdict::Worse => "worse",
        Verdict::NoChange => "no_change",
        Verdict::NotEnoughData => "not_enough_data",
    }
}

/// A table in a region that scrolls sideways on a phone (and can be scrolled
/// with the keyboard), named by its caption.
fn table(id: &str, caption: &str, head: &[&str], rows: Markup) -> Markup {
    let caption_id = format!("{id}-caption");
    html! {
        div.scroll tabindex="0" role="region" aria-labelledby=(caption_id) {
            table #(id) {
                caption #(caption_id) { (caption) }
                thead { tr { @for h in head { th scope="col" { (h) } } } }
                tbody { (rows) }
            }
        }
    }
}

fn call(r: &DailyReport) -> Markup {
    let c = &r.call;
    html! {
        section #call .call.(c.call.as_str()) aria-labelledby="call-heading" {
            h2 #call-heading {
                (call_symbol(c.call)) " Call: " span #call-word { (call_label(c.call)) }
            }
            @if c.reasons.is_empty() {
                p { "No rule of the decision policy holds." }
            } @else {
                ul #call-reasons { @for reason in &c.reasons { li { (reason) } } }
            }
        }
    }
}

fn rules(r: &DailyReport) -> Markup {
    let rows = html! {
        @for rule in &r.call.rules {
            tr.holds[rule.outcome == Outcome::Holds] {
                th scope="row" { (rule.rule) br; span.muted { (rule.why) } }
                td { span.status.(rule.call.as_str()) { (call_label(rule.call)) } }
                td { (rule.conditions.join(" and ")) }
                td {
                    @for (name, value) in &rule.inputs {
                        (name) " = " (value.map_or("no data".into(), number)) br;
                    }
                }
                td {
                    @match rule.outcome {
                        Outcome::Holds => strong { "✓ holds" },
                        Outcome::DoesNotHold => "does not hold",
                        Outcome::NoData => "no data",
                    }
                }
            }
        }
    };
    html! {
        section #rules aria-labelledby="rules-heading" {
            h2 #rules-heading { "Rules of the call" }
            p.muted { "The call is the most severe call among the rules that hold; with none, go. A rule missing an input (no data) does not decide." }
            (table("rules-table", "Every rule of the decision policy, with its inputs for the day",
                &["Rule", "Call", "Conditions (all must hold)", "Inputs", "Result"], rows))
        }
    }
}

fn kpi_value(k: &KpiLine, value: Option<f64>) -> String {
    match value {
        None => "–".into(),
        Some(v) if k.unit.is_empty() => number(v),
        Some(v) => format!("{} {}", number(v), k.unit),
    }
}

fn kpis(r: &DailyReport) -> Markup {
    let pace = r
        .kpis
        .iter()
        .find_map(|k| k.comparison.strip_prefix("pace_to_"));
    let caption = match pace {
        Some(time) => {
            format!("Each KPI up to {time}, against its baseline days at the same pace")
        }
        None => "Each KPI over the whole day, against its baseline days".into(),
    };
    let rows = html! {
        @for k in &r.kpis {
            @let j = &k.judgement;
            @let (symbol, word) = status_text(&k.status);
            tr data-kpi=(k.id) {
                th scope="row" { (k.title) }
                td.num { (kpi_value(k, k.value)) }
                td.num { (kpi_value(k, Some(k.target))) }
                td { span.status.(k.status) { (symbol) " " (word) } }
                td.num { (kpi_value(k, k.baseline)) }
                td.num { (k.delta_vs_baseline_pct.map_or("–".into(), |d| format!("{d:+.1} %"))) }
                td { span.status.(verdict_class(j.verdict)) { (verdict_label(j.verdict)) } }
                td.num { (j.p_adjusted.map_or("–".into(), pvalue)) }
                td.num { (j.relative_shift.map_or("–".into(), |s| format!("{:+.1} %", s * 100.0))) }
            }
        }
    };
    html! {
        section #kpis aria-labelledby="kpis-heading" {
            h2 #kpis-heading { "KPIs" }
            @if r.kpis.is_empty() {
                p { "No KPI is defined." }
            } @else {
                (table("kpis-table", &caption,
                    &["KPI", "Value", "Target", "Status", "Baseline", "vs baseline", "Judge", "p (Holm)", "Shift"], rows))
                p.muted { "Judge: the day's hourly values against the same hours of the baseline days (Mann-Whitney U, Holm's correction across KPIs); shift: Hodges-Lehmann, relative to the baseline's median." }
            }
        }
    }
}

fn alert_table(id: &str, caption: &str, alerts: &[AlertLine], tz: Option<Tz>) -> Markup {
    let rows = html! {
        @for a in alerts {
            tr {
                th scope="row" { (a.rule) }
                td { (a.tier) }
                td { (a.summary) }
                td.num { (a.fired_at.as_deref().map_or("–".into(), |t| local_time(t, tz))) }
                td.num { (a.resolved_at.as_deref().map_or("–".into(), |t| local_time(t, tz))) }
                td {
                    @if a.firing { span.status.firing { "✕ still firing" } } @else { "stopped" }
                }
            }
        }
    };
    table(
        id,
        caption,
        &["Rule", "Tier", "Summary", "Fired", "Resolved", "State"],
        rows,
    )
}

fn alerts(r: &DailyReport, tz: Option<Tz>) -> Markup {
    let a = &r.alerts;
    let rows = html! {
        @for (tier, t) in &a.tiers {
            tr {
                th scope="row" { (tier) }
                td.num { (t.fired) }
                td.num { (t.acked) }
                td.num { (t.resolved) }
                td.num { (t.mtta_secs.map_or("–".into(), seconds)) }
                td.num { (t.mttr_secs.map_or("–".into(), seconds)) }
                td.num { (t.ack_sla_breaches) }
            }
        }
    };
    html! {
        section #alerts aria-labelledby="alerts-heading" {
            h2 #alerts-heading { "Alerts" }
            @if a.tiers.is_empty() {
                p { "No alert fired." }
            } @else {
                (table("alerts-table", "Alerts of the day by tier",
                    &["Tier", "Fired", "Acknowledged", "Resolved", "MTTA", "MTTR", "Ack SLA breaches"], rows))
            }
            section #rollback-triggers aria-labelledby="rollback-heading" {
                h3 #rollback-heading { "Rollback triggers" }
                @if a.rollback_triggers.is_empty() {
                    p { "No rollback trigger fired." }
                } @else {
                    (alert_table("rollback-table", "Rollback-trigger alerts of the day", &a.rollback_triggers, tz))
                }
            }
            section #open-alerts aria-labelledby="open-alerts-heading" {
                h3 #open-alerts-heading { "Open P0 and P1 alerts" }
                @if a.open_p0_p1.is_empty() {
                    p { "No P0 or P1 alert is open." }
                } @else {
                    (alert_table("open-alerts-table", "P0 and P1 alerts still open", &a.open_p0_p1, tz))
                }
            }
        }
    }
}

fn tickets(r: &DailyReport) -> Markup {
    let t = &r.tickets;
    let priorities: BTreeSet<&String> = t
        .opened_by_priority
        .keys()
        .chain(t.backlog_by_priority.keys())
        .collect();
    let by_priority = html! {
        @for p in &priorities {
            tr {
                th scope="row" { (p) }
                td.num { (t.opened_by_priority.get(*p).copied().unwrap_or(0)) }
                td.num { (t.backlog_by_priority.get(*p).copied().unwrap_or(0)) }
            }
        }
    };
    let by_category = html! {
        @for (category, n) in &t.opened_by_category {
            tr { th scope="row" { (category) } td.num { (n) } }
        }
    };
    let clusters = html! {
        @for c in &t.clusters {
            tr { th scope="row" { (c.title) } td.num { (c.size) } td { (c.tickets.join(", ")) } }
        }
    };
    html! {
        section #tickets aria-labelledby="tickets-heading" {
            h2 #tickets-heading { "Tickets" }
            dl.counts {
                div { dt { "Opened" } dd { (t.opened) } }
                div { dt { "Resolved" } dd { (t.resolved) } }
                div { dt { "Backlog" } dd { (t.backlog) } }
                div { dt { "SLA breaches" } dd { (t.sla_breaches) } }
            }
            @if !priorities.is_empty() {
                (table("tickets-priority", "Tickets by priority", &["Priority", "Opened", "Backlog"], by_priority))
            }
            @if !t.opened_by_category.is_empty() {
                (table("tickets-category", "Tickets opened by category", &["Category", "Opened"], by_category))
            }
            @if !t.clusters.is_empty() {
                (table("tickets-clusters", "Similar tickets opened the same day, biggest group first",
                    &["Like", "Tickets", "Keys"], clusters))
            }
        }
    }
}

fn capacity(r: &DailyReport) -> Markup {
    let c = &r.capacity;
    let rows = html! {
        @for s in &c.services {
            tr {
                th scope="row" { (s.service) }
                td.num { (s.peak_rps.map_or("–".into(), number)) }
                td.num { (number(s.baseline_rps)) }
                td.num { (s.headroom_ratio.map_or("–".into(), percent)) }
                td { (s.plan) }
            }
        }
    };
    html! {
        section #capacity aria-labelledby="capacity-heading" {
            h2 #capacity-heading { "Capacity" }
            @if c.services.is_empty() {
                p { "No load test baseline is recorded: headroom unknown." }
            } @else {
                @if let Some(min) = c.min_headroom_ratio {
                    p { "Smallest headroom: " strong { (percent(min)) } "." }
                }
                (table("capacity-table", "Each service's peak of the day against its load-tested capacity",
                    &["Service", "Peak req/s", "Capacity req/s", "Headroom", "Plan"], rows))
            }
        }
    }
}

fn rollout(r: &DailyReport, tz: Option<Tz>) -> Markup {
    let o = &r.rollout;
    let rows = html! {
        @for s in &o.stages {
            tr {
                th scope="row" { (s.name) }
                td.num { (number(s.percent)) " %" }
                td.num { (local_time(&s.starts_at, tz)) }
                td { span.status.(s.verdict) { (s.verdict.replace('_', " ")) } }
                td { (s.failing.join(", ")) }
            }
        }
    };
    html! {
        section #rollout aria-labelledby="rollout-heading" {
            h2 #rollout-heading { "Rollout" }
            @if o.stages.is_empty() {
                p { "The launch has no rollout stages." }
            } @else {
                @if let (Some(stage), Some(pct)) = (&o.current_stage, o.current_percent) {
                    p { "In force: " strong { (stage) } " (" (number(pct)) " % of traffic)." }
                }
                (table("rollout-table", "Rollout stages and their gates",
                    &["Stage", "Traffic", "Starts", "Gate", "Failing metrics"], rows))
            }
        }
    }
}

fn slos(r: &DailyReport) -> Markup {
    let rows = html! {
        @for s in &r.slos {
            tr {
                th scope="row" { (s.name) }
                td.num { (percent(s.objective)) }
                td { (s.window) }
                td.num { (s.sli.map_or("–".into(), percent)) }
                td.num { (s.budget_remaining.map_or("–".into(), percent)) }
            }
        }
    };
    html! {
        section #slos aria-labelledby="slos-heading" {
            h2 #slos-heading { "SLOs" }
            (table("slos-table", "Each SLO's error budget left",
                &["SLO", "Objective", "Window", "SLI", "Budget left"], rows))
        }
    }
}

fn changes(r: &DailyReport) -> Markup {
    let rows = html! {
        @for c in &r.changes {
            tr { th scope="row" { (c.what) } td { (c.before) } td { (c.after) } }
        }
    };
    html! {
        section #changes aria-labelledby="changes-heading" {
            h2 #changes-heading { "Since the day before" }
            @if r.changes.is_empty() {
                p { "Nothing changed." }
            } @else {
                (table("changes-table", &format!("What differs from {}", day_label(r.day - 1)),
                    &["What", "Before", "Now"], rows))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::document::*;
    use crate::judge::Judgement;
    use crate::policy::RuleResult;

    fn alert(rule: &str, tier: &str) -> AlertLine {
        AlertLine {
            id: "a1".into(),
            rule: rule.into(),
            tier: tier.into(),
            summary: "Conversion below 60 %".into(),
            labels: BTreeMap::new(),
            fired_at: Some("2026-11-17T08:30:00Z".into()),
            resolved_at: None,
            firing: true,
            rollback_trigger: true,
        }
    }

    /// A report with something in every section.
    fn report(kpi_title: &str) -> DailyReport {
        DailyReport {
            schema: SCHEMA_VERSION,
            launch: LaunchInfo {
                id: "l1".into(),
                name: "Spring".into(),
                release: "2.4.0".into(),
                tz: "Europe/Paris".into(),
                d0: "2026-11-16".into(),
                last_day: "2026-11-30".into(),
            },
            day: 1,
            date: "2026-11-17".into(),
            generated_at: "2026-11-18T06:00:00Z".into(),
            as_of: "2026-11-18T00:00:00+01:00".into(),
            complete: true,
            call: CallSection {
                call: Call::RollBack,
                reasons: vec!["a rollback trigger fired and is still firing".into()],
                inputs: BTreeMap::from([("rollback_triggers_firing".into(), Some(1.0))]),
                rules: vec![RuleResult {
                    rule: "rollback_trigger_firing".into(),
                    call: Call::RollBack,
                    why: "a rollback trigger fired and is still firing".into(),
                    conditions: vec!["rollback_triggers_firing > 0".into()],
                    inputs: BTreeMap::from([("rollback_triggers_firing".into(), Some(1.0))]),
                    outcome: Outcome::Holds,
                }],
            },
            kpis: vec![KpiLine {
                id: "orders".into(),
                title: kpi_title.into(),
                unit: "%".into(),
                value: Some(42.5),
                target: 50.0,
                status: "critical".into(),
                baseline: Some(51.0),
                delta_vs_baseline_pct: Some(-16.7),
                comparison: "complete_day".into(),
                judgement: Judgement {
                    kpi: "orders".into(),
                    verdict: Verdict::Worse,
                    u: Some(3.0),
                    p: Some(0.001),
                    p_adjusted: Some(0.002),
                    method: None,
                    shift: Some(-8.0),
                    relative_shift: Some(-0.16),
                    launch_values: 24,
                    baseline_values: 168,
                },
            }],
            alerts: AlertsSection {
                tiers: BTreeMap::from([(
                    "P0".into(),
                    TierLine {
                        fired: 1,
                        acked: 1,
                        resolved: 0,
                        mtta_secs: Some(300.0),
                        mttr_secs: None,
                        ack_sla_breaches: 0,
                    },
                )]),
                rollback_triggers: vec![alert("conversion_rollback", "P0")],
                open_p0_p1: vec![alert("conversion_rollback", "P0")],
                p0_p1: vec![alert("conversion_rollback", "P0")],
            },
            tickets: TicketsSection {
                opened: 3,
                resolved: 1,
                backlog: 2,
                backlog_by_priority: BTreeMap::from([("P1".into(), 2)]),
                sla_breaches: 1,
                opened_by_category: BTreeMap::from([("payments".into(), 3)]),
                opened_by_priority: BTreeMap::from([("P1".into(), 3)]),
                clusters: vec![TicketCluster {
                    title: "Card refused".into(),
                    size: 2,
                    tickets: vec!["HC-1".into(), "HC-2".into()],
                }],
            },
            capacity: CapacitySection {
                services: vec![ServiceCapacity {
                    service: "checkout".into(),
                    peak_rps: Some(120.0),
                    baseline_rps: 200.0,
                    headroom_ratio: Some(0.4),
                    plan: "no change".into(),
                }],
                min_headroom_ratio: Some(0.4),
            },
            rollout: RolloutSection {
                current_stage: Some("everyone".into()),
                current_percent: Some(100.0),
                stages: vec![StageLine {
                    name: "everyone".into(),
                    percent: 100.0,
                    starts_at: "2026-11-17T09:00:00+01:00".into(),
                    verdict: "not_enough_data".into(),
                    failing: vec![],
                }],
            },
            slos: vec![SloLine {
                name: "availability".into(),
                objective: 0.999,
                window: "30d".into(),
                sli: Some(0.9995),
                budget_remaining: Some(0.5),
            }],
            changes: vec![Change {
                what: "call".into(),
                before: "go".into(),
                after: "roll_back".into(),
            }],
        }
    }

    #[test]
    fn every_text_is_escaped() {
        let page = render(&report("Orders <script>alert(1)</script> & \"more\""));
        assert!(!page.contains("<script"), "{page}");
        assert!(
            page.contains("Orders &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;more&quot;")
        );
        // A hostile launch name reaches the title escaped too.
        let mut hostile = report("Orders");
        hostile.launch.name = "</title><script>x</script>".into();
        let page = render(&hostile);
        assert!(!page.contains("<script"));
        assert!(page.contains("<title>&lt;/title&gt;&lt;script&gt;x&lt;/script&gt; D+1"));
    }

    #[test]
    fn every_section_is_there_in_the_meetings_order() {
        let page = render(&report("Orders"));
        assert!(page.starts_with("<!DOCTYPE html><html lang=\"en\">"));
        assert!(page.contains("<title>Spring D+1 (2026-11-17): daily report</title>"));
        let ids = [
            "id=\"call\"",
            "id=\"rules\"",
            "id=\"kpis\"",
            "id=\"alerts\"",
            "id=\"rollback-triggers\"",
            "id=\"open-alerts\"",
            "id=\"tickets\"",
            "id=\"capacity\"",
            "id=\"rollout\"",
            "id=\"slos\"",
            "id=\"changes\"",
        ];
        let at: Vec<usize> = ids
            .iter()
            .map(|id| page.find(id).unwrap_or_else(|| panic!("no {id}")))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "out of order: {at:?}");
        // The call in words (not colour alone), with its reason.
        assert!(page.contains("<span id=\"call-word\">roll back</span>"));
        assert!(page.contains("<li>a rollback trigger fired and is still firing</li>"));
        // Figures as the Markdown writes them; times in the launch's zone.
        assert!(page.contains("42.5 %") && page.contains("-16.7 %") && page.contains("0.002"));
        assert!(page.contains("✕ Critical") && page.contains("worse"));
        assert!(page.contains("5 min"), "MTTA");
        assert!(page.contains("17 Nov 09:30 CET"), "fired at, Paris time");
        assert!(page.contains("Card refused") && page.contains("HC-1, HC-2"));
        assert!(page.contains("40 %") && page.contains("99.9 %"));
        // Every table's header cells say what they head.
        assert_eq!(
            page.matches("<th scope=\"col\">").count() + page.matches("<th scope=\"row\">").count(),
            page.matches("<th ").count() + page.matches("<th>").count()
        );
        assert!(!page.contains("<script") && !page.contains(" style="));
    }

    #[test]
    fn a_report_without_slos_or_alerts_says_so_and_leaves_slos_out() {
        let mut quiet = report("Orders");
        quiet.slos.clear();
        quiet.alerts = AlertsSection::default();
        quiet.changes.clear();
        let page = render(&quiet);
        assert!(!page.contains("id=\"slos\""));
        assert!(page.contains("No alert fired."));
        assert!(page.contains("No rollback trigger fired."));
        assert!(page.contains("Nothing changed."));
    }
}
