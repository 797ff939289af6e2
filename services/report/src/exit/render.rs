//! The exit report for people: Markdown ([`markdown`]) and a short standalone
//! HTML page ([`html`]), from the [`ExitReport`] alone. The verdict comes
//! first (ready or not, as of which day), then each criterion with its outcome
//! in words and its evidence. Figures are written by `crate::render`'s
//! helpers, as in the daily report.

use maud::{DOCTYPE, Markup, html as maud_html};

/// Appends one formatted line (writing to a String cannot fail).
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

use super::{Criterion, ExitReport, Outcome};
use crate::render::{day_label, number, percent};

fn outcome_label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Met => "met",
        Outcome::NotMet => "not met",
        Outcome::NoData => "no data",
    }
}

/// The limit as the criterion reads it: days, a count, or a percentage.
fn limit_label(c: &Criterion) -> String {
    match c.id.as_str() {
        "no_p0_p1_alerts" | "kpis_ok" => format!("{} days", number(c.limit)),
        "headroom" => format!("≥ {}", percent(c.limit)),
        _ => format!("≤ {}", number(c.limit)),
    }
}

fn value_label(c: &Criterion) -> String {
    match (c.id.as_str(), c.value) {
        (_, None) => "-".into(),
        ("headroom", Some(v)) => percent(v),
        (_, Some(v)) => number(v),
    }
}

/// `D+1..D+3`, or one day.
fn days_label(days: &[i64]) -> String {
    match (days.first(), days.last()) {
        (Some(first), Some(last)) if first == last => day_label(*first),
        (Some(first), Some(last)) => format!("{}..{}", day_label(*first), day_label(*last)),
        _ => "-".into(),
    }
}

fn heading(r: &ExitReport) -> String {
    match (r.as_of_day, &r.as_of_date) {
        (Some(day), Some(date)) => format!(
            "{}: exit criteria as of {} ({})",
            r.launch.name,
            day_label(day),
            date
        ),
        _ => format!("{}: exit criteria", r.launch.name),
    }
}

/// Escapes what Markdown would read as table or inline syntax.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('\n', " ")
        .replace('*', "\\*")
        .replace('_', "\\_")
        .replace('<', "&lt;")
}

pub fn markdown(r: &ExitReport) -> String {
    let mut out = String::new();
    put!(out, "# {}\n", cell(&heading(r)));
    put!(
        out,
        "Release {} · window {} to {} ({}) · {}\n",
        cell(&r.launch.release),
        r.launch.d0,
        r.launch.last_day,
        r.launch.tz,
        if r.window_over {
            "window over"
        } else {
            "window under way"
        }
    );
    put!(
        out,
        "## Ready for handover: **{}**\n",
        if r.ready { "yes" } else { "no" }
    );
    put!(out, "{}\n", cell(&r.summary));
    put!(out, "| criterion | limit | measured | days | outcome |");
    put!(out, "|---|---|---|---|---|");
    for c in &r.criteria {
        put!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&c.title),
            limit_label(c),
            value_label(c),
            days_label(&c.days),
            match c.outcome {
                Outcome::NotMet => "**not met**",
                other => outcome_label(other),
            }
        );
    }
    for c in &r.criteria {
        put!(
            out,
            "\n### {}: {}\n",
            cell(&c.title),
            outcome_label(c.outcome)
        );
        for line in &c.evidence {
            put!(out, "- {}", cell(line));
        }
    }
    out
}

/// The page's own styles: the daily report page's palette and status classes
/// (render/html.rs), cut to what this page uses.
const STYLE: &str = r#"
:root { color-scheme: light; --ink: #1b1f24; --muted: #545d68; --line: #d0d7de;
  --ok: #116329; --ok-wash: #dafbe1; --critical: #a40e26; --critical-wash: #ffe3e6;
  --none-wash: #eef1f4; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #fff; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .5rem 0; }
h2 { font-size: 1.2rem; margin: 1.5rem 0 .5rem; }
.muted { color: var(--muted); }
.verdict { border: 2px solid var(--line); border-left-width: 10px; border-radius: 6px; padding: .75rem 1rem; margin: 1rem 0; }
.verdict h2 { margin: 0 0 .35rem; font-size: 1.6rem; }
.verdict.ready { border-color: var(--ok); background: var(--ok-wash); color: var(--ok); }
.verdict.not_ready { border-color: var(--critical); background: var(--critical-wash); color: var(--critical); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { text-align: left; padding: .35rem .55rem; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { font-size: .85rem; color: var(--muted); white-space: nowrap; }
td ul { margin: 0; padding-left: 1.1rem; }
.status { display: inline-block; padding: 0 .4rem; border-radius: 4px; font-weight: 600; white-space: nowrap; }
.status.met { background: var(--ok-wash); color: var(--ok); }
.status.not_met { background: var(--critical-wash); color: var(--critical); }
.status.no_data { background: var(--none-wash); color: var(--ink); }
@media (max-width: 600px) { main { padding: .6rem; } h1 { font-size: 1.3rem; } }
@media print { main { max-width: none; padding: 0; } tr, .verdict { break-inside: avoid; } }
"#;

/// The status in words with a symbol; its colour only repeats it.
fn status(outcome: Outcome) -> Markup {
    let symbol = match outcome {
        Outcome::Met => "✓",
        Outcome::NotMet => "✗",
        Outcome::NoData => "?",
    };
    maud_html! {
        span class={ "status " (outcome.as_str()) } {
            span aria-hidden="true" { (symbol) " " } (outcome_label(outcome))
        }
    }
}

pub fn html(r: &ExitReport) -> String {
    let title = heading(r);
    let markup = maud_html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                main {
                    h1 { (title) }
                    p.muted {
                        "Release " (r.launch.release) " · window " (r.launch.d0) " to "
                        (r.launch.last_day) " (" (r.launch.tz) ") · "
                        (if r.window_over { "window over" } else { "window under way" })
                    }
                    section.verdict.ready[r.ready].not_ready[!r.ready] aria-labelledby="verdict" {
                        h2 #verdict {
                            "Ready for handover: " (if r.ready { "yes" } else { "no" })
                        }
                        p { (r.summary) }
                    }
                    h2 #criteria { "Criteria" }
                    div.scroll role="region" aria-labelledby="criteria" tabindex="0" {
                        table {
                            caption.muted { "Each criterion with its limit, the figure measured and what it rests on" }
                            thead {
                                tr {
                                    th scope="col" { "criterion" }
                                    th scope="col" { "limit" }
                                    th scope="col" { "measured" }
                                    th scope="col" { "days" }
                                    th scope="col" { "outcome" }
                                    th scope="col" { "evidence" }
                                }
                            }
                            tbody {
                                @for c in &r.criteria {
                                    tr data-criterion=(c.id) {
                                        th scope="row" { (c.title) }
                                        td { (limit_label(c)) }
                                        td { (value_label(c)) }
                                        td { (days_label(&c.days)) }
                                        td { (status(c.outcome)) }
                                        td {
                                            ul {
                                                @for line in &c.evidence { li { (line) } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    p.muted { "Made " (r.generated_at) " · launch " (r.launch.id) }
                }
            }
        }
    };
    markup.into_string()
}
