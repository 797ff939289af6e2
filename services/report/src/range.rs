//! Several days at a glance: `GET /v1/launches/{id}/report?from=N&to=M` answers
//! one line per day (the call, its reasons, and the figures the call rests on)
//! from the same day reports the single-day route answers, kept ones included.
//! What a weekly review or the handover meeting reads first.

use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::{Deserialize, Serialize};

use crate::document::DailyReport;
use crate::policy::Call;
use crate::render::{call_label, day_label, percent};

/// The most days one range asks for: a stabilization window with its baseline.
pub const MAX_DAYS: i64 = 45;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RangeReport {
    pub launch: String,
    pub name: String,
    pub tz: String,
    pub from: i64,
    pub to: i64,
    pub days: Vec<DayLine>,
}

/// One day of the range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DayLine {
    pub day: i64,
    pub date: String,
    pub complete: bool,
    #[schema(value_type = String, example = "hold")]
    pub call: Call,
    pub reasons: Vec<String>,
    /// KPIs whose status is not `ok` (`orders: critical, worse`).
    pub kpis_not_ok: Vec<String>,
    pub alerts_fired: u64,
    pub p0_p1_fired: u64,
    pub rollback_triggers: u64,
    pub tickets_opened: u64,
    pub ticket_backlog: u64,
    pub sla_breaches: u64,
    pub min_headroom_ratio: Option<f64>,
}

pub fn summarize(reports: &[DailyReport]) -> RangeReport {
    let first = reports.first();
    RangeReport {
        launch: first.map(|r| r.launch.id.clone()).unwrap_or_default(),
        name: first.map(|r| r.launch.name.clone()).unwrap_or_default(),
        tz: first.map(|r| r.launch.tz.clone()).unwrap_or_default(),
        from: first.map_or(0, |r| r.day),
        to: reports.last().map_or(0, |r| r.day),
        days: reports.iter().map(day_line).collect(),
    }
}

fn day_line(r: &DailyReport) -> DayLine {
    let tier = |t: &str| r.alerts.tiers.get(t).map_or(0, |t| t.fired);
    DayLine {
        day: r.day,
        date: r.date.clone(),
        complete: r.complete,
        call: r.call.call,
        reasons: r.call.reasons.clone(),
        kpis_not_ok: r
            .kpis
            .iter()
            .filter(|k| k.status != "ok")
            .map(|k| {
                if k.is_worse() {
                    format!("{}: {}, worse", k.id, k.status)
                } else {
                    format!("{}: {}", k.id, k.status)
                }
            })
            .collect(),
        alerts_fired: r.alerts.tiers.values().map(|t| t.fired).sum(),
        p0_p1_fired: tier("P0") + tier("P1"),
        rollback_triggers: r.alerts.rollback_triggers.len() as u64,
        tickets_opened: r.tickets.opened,
        ticket_backlog: r.tickets.backlog,
        sla_breaches: r.tickets.sla_breaches,
        min_headroom_ratio: r.capacity.min_headroom_ratio,
    }
}

const HEAD: [&str; 9] = [
    "day",
    "call",
    "why",
    "KPIs not ok",
    "alerts (P0/P1)",
    "rollback triggers",
    "tickets opened / backlog",
    "SLA breaches",
    "headroom",
];

fn cells(d: &DayLine) -> [String; 9] {
    [
        format!(
            "{} {}{}",
            day_label(d.day),
            d.date,
            if d.complete { "" } else { " (under way)" }
        ),
        call_label(d.call).to_owned(),
        d.reasons.join("; "),
        d.kpis_not_ok.join(", "),
        format!("{} ({})", d.alerts_fired, d.p0_p1_fired),
        d.rollback_triggers.to_string(),
        format!("{} / {}", d.tickets_opened, d.ticket_backlog),
        d.sla_breaches.to_string(),
        d.min_headroom_ratio.map_or("-".into(), percent),
    ]
}

pub fn markdown(range: &RangeReport) -> String {
    let escape = |t: &str| {
        t.replace('\\', "\\\\")
            .replace('|', "\\|")
            .replace('_', "\\_")
            .replace('*', "\\*")
            .replace('<', "&lt;")
    };
    let mut out = format!(
        "# {} {}..{} ({})\n\n| {} |\n|{}\n",
        escape(&range.name),
        day_label(range.from),
        day_label(range.to),
        range.tz,
        HEAD.join(" | "),
        "---|".repeat(HEAD.len())
    );
    for day in &range.days {
        let row: Vec<String> = cells(day).iter().map(|c| escape(c)).collect();
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}

pub fn html(range: &RangeReport) -> String {
    let title = format!(
        "{} {}..{}: daily reports",
        range.name,
        day_label(range.from),
        day_label(range.to)
    );
    let page: Markup = html! {
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
                    p { "One line per day, in " (range.tz) ". Each day's full report: "
                        code { "?day=N" } "." }
                    div.scroll tabindex="0" role="region" aria-label="Days" {
                        table {
                            caption { "The call of each day and what it rests on" }
                            thead { tr { @for h in HEAD { th scope="col" { (h) } } } }
                            tbody {
                                @for day in &range.days {
                                    @let row = cells(day);
                                    tr {
                                        th scope="row" { (row[0]) }
                                        td { span class={ "status " (day.call.as_str()) } { (row[1]) } }
                                        @for cell in &row[2..] { td { (cell) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page.into_string()
}

const STYLE: &str = r#"
body { margin: 0; font: 16px/1.45 system-ui, sans-serif; color: #1b1f24; background: #fff; }
main { max-width: 80rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.4rem; }
.scroll { overflow-x: auto; }
.scroll:focus-visible { outline: 3px solid #0b5cad; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { text-align: left; padding: .35rem .55rem; border-bottom: 1px solid #d0d7de; vertical-align: top; }
thead th { font-size: .85rem; color: #545d68; }
.status { display: inline-block; padding: 0 .4rem; border-radius: 4px; font-weight: 600; }
.status.go { background: #dafbe1; color: #116329; }
.status.hold { background: #fff1c2; color: #7d4e00; }
.status.roll_back { background: #ffe3e6; color: #a40e26; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_reads_one_line_per_day_and_escapes_names() {
        let line = DayLine {
            day: 1,
            date: "2026-11-17".into(),
            complete: true,
            call: Call::RollBack,
            reasons: vec!["a rollback trigger fired and is still firing".into()],
            kpis_not_ok: vec!["orders: critical, worse".into()],
            alerts_fired: 2,
            p0_p1_fired: 1,
            rollback_triggers: 1,
            tickets_opened: 3,
            ticket_backlog: 5,
            sla_breaches: 0,
            min_headroom_ratio: Some(0.42),
        };
        let range = RangeReport {
            launch: "l".into(),
            name: "<b>Spring|</b>".into(),
            tz: "Europe/Paris".into(),
            from: 1,
            to: 1,
            days: vec![line],
        };
        let md = markdown(&range);
        assert!(md.starts_with("# &lt;b>Spring\\|&lt;/b> D+1..D+1"), "{md}");
        assert!(md.contains("| D+1 2026-11-17 | roll back |"), "{md}");
        assert!(md.contains("| 2 (1) | 1 | 3 / 5 | 0 | 42 % |"), "{md}");
        let page = html(&range);
        assert!(page.contains("&lt;b&gt;Spring|&lt;/b&gt;"));
        assert!(page.contains(r#"<span class="status roll_back">roll back</span>"#));
    }
}
