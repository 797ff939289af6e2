//! The report as Markdown (GitHub-flavoured tables): what is pasted into a
//! chat or a wiki page after the morning meeting, and what the folder
//! delivery writes beside the JSON.

use crate::document::{AlertLine, DailyReport};
use crate::policy::Outcome;
use crate::render::{call_label, day_label, number, percent, pvalue, seconds, verdict_label};

/// Appends one formatted line (writing to a String cannot fail).
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

/// Escapes what Markdown would read as table or inline syntax.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('\n', " ")
        .replace('*', "\\*")
        .replace('_', "\\_")
        .replace('`', "\\`")
        .replace('<', "&lt;")
}

pub fn render(report: &DailyReport) -> String {
    let mut out = String::new();
    let r = report;
    put!(
        out,
        "# {} {}: {} ({})\n",
        cell(&r.launch.name),
        day_label(r.day),
        r.date,
        r.launch.tz
    );
    put!(
        out,
        "Release {} · {} · as of {}\n",
        cell(&r.launch.release),
        if r.complete {
            "whole day"
        } else {
            "day under way"
        },
        r.as_of
    );

    put!(out, "## Call: **{}**\n", call_label(r.call.call));
    if r.call.reasons.is_empty() {
        put!(out, "No rule of the decision policy holds.\n");
    } else {
        for reason in &r.call.reasons {
            put!(out, "- {}", cell(reason));
        }
        out.push('\n');
    }
    put!(out, "| rule | call | conditions | inputs | result |");
    put!(out, "|---|---|---|---|---|");
    for rule in &r.call.rules {
        let inputs: Vec<String> = rule
            .inputs
            .iter()
            .map(|(k, v)| format!("{k} = {}", v.map_or("no data".into(), number)))
            .collect();
        put!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&rule.rule),
            call_label(rule.call),
            cell(&rule.conditions.join(" and ")),
            cell(&inputs.join(", ")),
            match rule.outcome {
                Outcome::Holds => "**holds**",
                Outcome::DoesNotHold => "does not hold",
                Outcome::NoData => "no data",
            }
        );
    }

    put!(out, "\n## KPIs\n");
    if r.kpis.is_empty() {
        put!(out, "No KPI is defined.");
    } else {
        put!(
            out,
            "| KPI | value | target | status | baseline | vs baseline | judge | p (Holm) | shift |"
        );
        put!(out, "|---|---|---|---|---|---|---|---|---|");
        for k in &r.kpis {
            let j = &k.judgement;
            put!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(&k.title),
                k.value.map_or("-".into(), number),
                number(k.target),
                k.status,
                k.baseline.map_or("-".into(), number),
                k.delta_vs_baseline_pct
                    .map_or("-".into(), |d| format!("{d:+.1} %")),
                verdict_label(j.verdict),
                j.p_adjusted.map_or("-".into(), pvalue),
                j.relative_shift
                    .map_or("-".into(), |s| format!("{:+.1} %", s * 100.0)),
            );
        }
    }

    put!(out, "\n## Alerts\n");
    if r.alerts.tiers.is_empty() {
        put!(out, "No alert fired.");
    } else {
        put!(
            out,
            "| tier | fired | acknowledged | resolved | MTTA | MTTR | ack SLA breaches |"
        );
        put!(out, "|---|---|---|---|---|---|---|");
        for (tier, t) in &r.alerts.tiers {
            put!(
                out,
                "| {tier} | {} | {} | {} | {} | {} | {} |",
                t.fired,
                t.acked,
                t.resolved,
                t.mtta_secs.map_or("-".into(), seconds),
                t.mttr_secs.map_or("-".into(), seconds),
                t.ack_sla_breaches
            );
        }
    }
    alert_list(&mut out, "Rollback triggers", &r.alerts.rollback_triggers);
    alert_list(&mut out, "P0 and P1 alerts open", &r.alerts.open_p0_p1);

    let t = &r.tickets;
    put!(out, "\n## Tickets\n");
    put!(
        out,
        "Opened {}, resolved {}, backlog {}, SLA breaches {}.\n",
        t.opened,
        t.resolved,
        t.backlog,
        t.sla_breaches
    );
    let join = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{} {v}", cell(k)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !t.backlog_by_priority.is_empty() {
        put!(
            out,
            "- Backlog by priority: {}",
            join(&t.backlog_by_priority)
        );
    }
    if !t.opened_by_priority.is_empty() {
        put!(out, "- Opened by priority: {}", join(&t.opened_by_priority));
    }
    if !t.opened_by_category.is_empty() {
        put!(out, "- Opened by category: {}", join(&t.opened_by_category));
    }
    if !t.clusters.is_empty() {
        put!(out, "\nSimilar tickets:\n");
        for c in &t.clusters {
            put!(
                out,
                "- {} tickets like \"{}\" ({})",
                c.size,
                cell(&c.title),
                c.tickets.join(", ")
            );
        }
    }

    put!(out, "\n## Capacity\n");
    if r.capacity.services.is_empty() {
        put!(out, "No load test baseline is recorded: headroom unknown.");
    } else {
        put!(
            out,
            "| service | peak req/s | capacity req/s | headroom | plan |"
        );
        put!(out, "|---|---|---|---|---|");
        for s in &r.capacity.services {
            put!(
                out,
                "| {} | {} | {} | {} | {} |",
                cell(&s.service),
                s.peak_rps.map_or("-".into(), number),
                number(s.baseline_rps),
                s.headroom_ratio.map_or("-".into(), percent),
                cell(&s.plan)
            );
        }
    }

    put!(out, "\n## Rollout\n");
    if r.rollout.stages.is_empty() {
        put!(out, "The launch has no rollout stages.");
    } else {
        if let (Some(stage), Some(pct)) = (&r.rollout.current_stage, r.rollout.current_percent) {
            put!(out, "In force: {} ({} %).\n", cell(stage), number(pct));
        }
        put!(out, "| stage | traffic | starts | gate | failing |");
        put!(out, "|---|---|---|---|---|");
        for s in &r.rollout.stages {
            put!(
                out,
                "| {} | {} % | {} | {} | {} |",
                cell(&s.name),
                number(s.percent),
                s.starts_at,
                s.verdict,
                cell(&s.failing.join(", "))
            );
        }
    }

    if !r.slos.is_empty() {
        put!(out, "\n## SLOs\n");
        put!(out, "| SLO | objective | window | SLI | budget left |");
        put!(out, "|---|---|---|---|---|");
        for s in &r.slos {
            put!(
                out,
                "| {} | {} | {} | {} | {} |",
                cell(&s.name),
                percent(s.objective),
                s.window,
                s.sli.map_or("-".into(), percent),
                s.budget_remaining.map_or("-".into(), percent)
            );
        }
    }

    put!(out, "\n## Since the day before\n");
    if r.changes.is_empty() {
        put!(out, "Nothing changed.");
    } else {
        for c in &r.changes {
            put!(
                out,
                "- {}: {} → {}",
                cell(&c.what),
                cell(&c.before),
                cell(&c.after)
            );
        }
    }
    out
}

fn alert_list(out: &mut String, title: &str, alerts: &[AlertLine]) {
    if alerts.is_empty() {
        return;
    }
    put!(out, "\n{title}:\n");
    for a in alerts {
        put!(
            out,
            "- {} {} {} (fired {}{}){}",
            a.tier,
            cell(&a.rule),
            cell(&a.summary),
            a.fired_at.as_deref().unwrap_or("-"),
            a.resolved_at
                .as_deref()
                .map(|t| format!(", resolved {t}"))
                .unwrap_or_default(),
            if a.firing { " **still firing**" } else { "" }
        );
    }
}
