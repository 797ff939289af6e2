//! What a webhook gets, from the [`DailyReport`] alone: `json` is the report
//! as the API serves it; `slack` an incoming-webhook message (`text` for
//! notifications, `blocks` for the channel); `teams` a message holding an
//! Adaptive Card, which Teams' incoming webhooks (Workflows) accept. The chat
//! bodies are a summary for the morning meeting: the call and its reasons, the
//! KPIs that are not ok, alert and ticket counts, and a link when configured.

use serde_json::{Value, json};

use crate::delivery::HookFormat;
use crate::document::DailyReport;
use crate::render::{call_label, day_label, number, verdict_label};

/// Slack refuses a section's text above 3000 characters.
pub const SLACK_SECTION_MAX: usize = 3000;
/// And a header's above 150.
pub const SLACK_HEADER_MAX: usize = 150;
/// Lines listed per section (reasons, KPIs) before "and N more".
const MAX_LINES: usize = 15;

/// The body of `format` (always JSON), as bytes to POST.
pub fn body(format: HookFormat, report: &DailyReport, link: Option<&str>) -> Vec<u8> {
    match format {
        HookFormat::Json => serde_json::to_vec(report),
        HookFormat::Slack => serde_json::to_vec(&slack(report, link)),
        HookFormat::Teams => serde_json::to_vec(&teams(report, link)),
    }
    .unwrap_or_default()
}

/// `text` cut to at most `max` characters, ending with "…" when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `Spring D+1 (2026-11-17): hold`.
pub fn title(report: &DailyReport) -> String {
    format!(
        "{} {} ({}): {}",
        report.launch.name,
        day_label(report.day),
        report.date,
        call_label(report.call.call)
    )
}

/// The KPIs that are not ok, one line each: `Orders: 5 (target 100), critical, judged worse`.
fn kpis_not_ok(report: &DailyReport) -> Vec<String> {
    report
        .kpis
        .iter()
        .filter(|k| k.status != "ok")
        .map(|k| {
            format!(
                "{}: {} (target {}), {}, judged {}",
                k.title,
                k.value.map_or("no data".into(), number),
                number(k.target),
                k.status.replace('_', " "),
                verdict_label(k.judgement.verdict)
            )
        })
        .collect()
}

/// At most [`MAX_LINES`] lines, then "and N more".
fn capped(lines: Vec<String>) -> Vec<String> {
    let more = lines.len().saturating_sub(MAX_LINES);
    let mut lines: Vec<String> = lines.into_iter().take(MAX_LINES).collect();
    if more > 0 {
        lines.push(format!("and {more} more"));
    }
    lines
}

/// `Alerts: 3 fired (P0 1, P2 2), 1 rollback trigger · Tickets: 4 opened, 10 open, 1 SLA breach`.
pub fn counts(report: &DailyReport) -> String {
    let fired: u64 = report.alerts.tiers.values().map(|t| t.fired).sum();
    let by_tier: Vec<String> = report
        .alerts
        .tiers
        .iter()
        .filter(|(_, t)| t.fired > 0)
        .map(|(tier, t)| format!("{tier} {}", t.fired))
        .collect();
    let mut alerts = format!("Alerts: {fired} fired");
    if !by_tier.is_empty() {
        alerts.push_str(&format!(" ({})", by_tier.join(", ")));
    }
    if !report.alerts.rollback_triggers.is_empty() {
        alerts.push_str(&format!(
            ", {} rollback trigger(s)",
            report.alerts.rollback_triggers.len()
        ));
    }
    let t = &report.tickets;
    format!(
        "{alerts} · Tickets: {} opened, {} resolved, {} open, {} SLA breach(es)",
        t.opened, t.resolved, t.backlog, t.sla_breaches
    )
}

/// Slack's mrkdwn reads `&`, `<` and `>` as markup.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn slack_section(heading: &str, lines: &[String]) -> Value {
    let mut text = format!("*{heading}*");
    for line in lines {
        text.push_str("\n• ");
        text.push_str(&slack_escape(line));
    }
    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&text, SLACK_SECTION_MAX)}})
}

/// A Slack incoming-webhook message.
pub fn slack(report: &DailyReport, link: Option<&str>) -> Value {
    let title = title(report);
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&title, SLACK_HEADER_MAX), "emoji": false},
    })];
    let reasons = if report.call.reasons.is_empty() {
        vec!["No rule of the decision policy holds.".to_owned()]
    } else {
        report.call.reasons.clone()
    };
    blocks.push(slack_section(
        &format!("Call: {}", call_label(report.call.call)),
        &capped(reasons),
    ));
    let kpis = kpis_not_ok(report);
    if kpis.is_empty() {
        blocks.push(slack_section("Every KPI is ok", &[]));
    } else {
        blocks.push(slack_section("KPIs not ok", &capped(kpis)));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": truncate(&slack_escape(&counts(report)), SLACK_SECTION_MAX)}],
    }));
    if let Some(link) = link {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate(&format!("<{}|Open the report>", slack_escape(link)), SLACK_SECTION_MAX)},
        }));
    }
    json!({"text": truncate(&title, SLACK_SECTION_MAX), "blocks": blocks})
}

/// A Teams message with one Adaptive Card (version 1.4).
pub fn teams(report: &DailyReport, link: Option<&str>) -> Value {
    let text_block = |text: String| json!({"type": "TextBlock", "text": truncate(&text, SLACK_SECTION_MAX), "wrap": true});
    let mut body = vec![json!({
        "type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": true,
        "text": truncate(&title(report), SLACK_HEADER_MAX),
    })];
    let reasons = capped(report.call.reasons.clone());
    if reasons.is_empty() {
        body.push(text_block("No rule of the decision policy holds.".into()));
    } else {
        body.push(text_block(
            reasons
                .iter()
                .map(|r| format!("- {r}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ));
    }
    let kpis = capped(kpis_not_ok(report));
    body.push(json!({"type": "TextBlock", "weight": "Bolder", "text": if kpis.is_empty() { "Every KPI is ok" } else { "KPIs not ok" }}));
    if !kpis.is_empty() {
        body.push(text_block(
            kpis.iter()
                .map(|k| format!("- {k}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ));
    }
    body.push(text_block(counts(report)));
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    });
    if let Some(link) = link {
        card["actions"] =
            json!([{"type": "Action.OpenUrl", "title": "Open the report", "url": link}]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::*;
    use crate::judge::{Judgement, Verdict};
    use crate::policy::Call;
    use std::collections::BTreeMap;

    fn kpi(id: &str, status: &str, verdict: Verdict) -> KpiLine {
        let judgement = Judgement {
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
        };
        KpiLine {
            id: id.into(),
            title: id.to_uppercase(),
            unit: String::new(),
            value: Some(5.0),
            target: 100.0,
            status: status.into(),
            baseline: Some(10.0),
            delta_vs_baseline_pct: Some(-50.0),
            comparison: "complete_day".into(),
            judgement,
        }
    }

    fn report(reasons: Vec<String>, kpis: Vec<KpiLine>) -> DailyReport {
        DailyReport {
            schema: SCHEMA_VERSION,
            launch: LaunchInfo {
                id: "l1".into(),
                name: "Spring <beta>".into(),
                release: "2.4.0".into(),
                tz: "Europe/Paris".into(),
                d0: "2026-11-16".into(),
                last_day: "2026-11-30".into(),
            },
            day: 1,
            date: "2026-11-17".into(),
            generated_at: "2026-11-18T07:30:00Z".into(),
            as_of: "2026-11-18T00:00:00+01:00".into(),
            complete: true,
            call: CallSection {
                call: Call::Hold,
                reasons,
                inputs: BTreeMap::new(),
                rules: Vec::new(),
            },
            kpis,
            alerts: AlertsSection {
                tiers: BTreeMap::from([(
                    "P1".to_owned(),
                    TierLine {
                        fired: 2,
                        ..TierLine::default()
                    },
                )]),
                ..AlertsSection::default()
            },
            tickets: TicketsSection {
                opened: 4,
                backlog: 10,
                ..TicketsSection::default()
            },
            capacity: CapacitySection::default(),
            rollout: RolloutSection::default(),
            slos: Vec::new(),
            changes: Vec::new(),
        }
    }

    #[test]
    fn the_slack_body_starts_with_a_header_naming_launch_day_and_call() {
        let r = report(
            vec!["orders is critical".into()],
            vec![
                kpi("orders", "critical", Verdict::Worse),
                kpi("searches", "ok", Verdict::NoChange),
            ],
        );
        let body = slack(&r, None);
        assert_eq!(body["blocks"][0]["type"], "header");
        let header = body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(
            header.contains("D+1") && header.contains("hold") && header.contains("Spring"),
            "{header}"
        );
        assert_eq!(body["text"], header);
        let all = body.to_string();
        assert!(all.contains("orders is critical"), "{all}");
        assert!(
            all.contains("ORDERS: 5 (target 100), critical, judged worse"),
            "{all}"
        );
        assert!(!all.contains("SEARCHES"), "an ok KPI is not listed: {all}");
        assert!(all.contains("Alerts: 2 fired (P1 2)"), "{all}");
        assert!(all.contains("4 opened"), "{all}");
        assert!(
            !all.contains("Open the report"),
            "no link configured: {all}"
        );
        // mrkdwn markup in a name is escaped in sections.
        let r = report(vec!["<!channel> & co".into()], vec![]);
        let all = slack(&r, Some("https://hc.example/r?day=1")).to_string();
        assert!(all.contains("&lt;!channel&gt; &amp; co"), "{all}");
        assert!(
            all.contains("<https://hc.example/r?day=1|Open the report>"),
            "{all}"
        );
    }

    #[test]
    fn slack_sections_stay_under_3000_characters() {
        let long = "x".repeat(5000);
        let r = report(
            vec![long.clone(); 40],
            (0..40)
                .map(|i| kpi(&format!("k{i}{long}"), "warning", Verdict::NoChange))
                .collect(),
        );
        let body = slack(&r, None);
        for block in body["blocks"].as_array().unwrap() {
            if let Some(text) = block["text"]["text"].as_str() {
                assert!(text.chars().count() <= SLACK_SECTION_MAX, "{}", text.len());
            }
        }
        let section = body["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(section.ends_with('…'), "cut with an ellipsis");
        assert!(
            body["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= SLACK_HEADER_MAX
        );
    }

    #[test]
    fn the_teams_body_is_an_adaptive_card_message() {
        let r = report(
            vec!["orders is critical".into()],
            vec![kpi("orders", "critical", Verdict::Worse)],
        );
        let body = teams(&r, Some("https://hc.example/r"));
        assert_eq!(body["type"], "message");
        let attachment = &body["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &attachment["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert!(card["body"][0]["text"].as_str().unwrap().contains("hold"));
        assert_eq!(card["actions"][0]["url"], "https://hc.example/r");
        assert!(body.to_string().contains("ORDERS: 5"));
    }

    #[test]
    fn the_json_body_is_the_report_itself() {
        let r = report(vec![], vec![]);
        let back: DailyReport = serde_json::from_slice(&body(HookFormat::Json, &r, None)).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn truncation_counts_characters_not_bytes() {
        assert_eq!(truncate("ééé", 3), "ééé");
        assert_eq!(truncate("éééé", 3), "éé…");
    }
}
