//! The SRE's alert page (`/alerts`, scope `read`) and its actions (scope
//! `admin`): acknowledge, resolve, silence, expire a silence.
//!
//! Reads and actions go through [`AlertState`], the same domain calls as the
//! API's handlers (`hypercare_alerts::routes`): the open alerts with their
//! clocks (`AlertState::board`), the day's history with MTTA/MTTR, the webhook
//! delivery attempts and the silences. Every action is a plain HTML form
//! (works without JavaScript) carrying the session's CSRF token; it is refused
//! when it comes from another site, without the token, or from a key without
//! `admin`, and answers with a redirect back to the page (post/redirect/get),
//! or, for a silence the alert capability refuses, the page again with the
//! reason next to the field.
//!
//! Times are shown in the current launch's time zone, named on the page.

use std::collections::BTreeMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::TimeZone;
use chrono_tz::Tz;
use hypercare_alerts::error::{Action, AlertError};
use hypercare_alerts::rollback::{self, RollbackState};
use hypercare_alerts::rule::Tier;
use hypercare_alerts::silence::{MatcherInput, Silence, SilenceInput, SilenceState};
use hypercare_alerts::stats::History;
use hypercare_alerts::store::DeliveryRow;
use hypercare_alerts::view::{AlertView, Timing};
use hypercare_alerts::{AlertState, config::TierPolicy};
use hypercare_http::ApiError;
use hypercare_http::auth::Scope;
use maud::{Markup, html};
use serde::Deserialize;

use crate::error::ConsoleError;
use crate::layout::{self, Section};
use crate::session::{self, Viewer};

/// Webhook delivery attempts the page lists, newest first.
const DELIVERIES_SHOWN: u64 = 50;

/// A time (epoch ms) in `tz`, zone abbreviation included, in a `<time>`.
pub(crate) fn local_time(ms: u64, tz: Tz) -> Markup {
    match tz.timestamp_millis_opt(i64::try_from(ms).unwrap_or(i64::MAX)) {
        chrono::LocalResult::Single(t) => html! {
            time datetime=(t.to_rfc3339()) { (t.format("%Y-%m-%d %H:%M:%S %Z")) }
        },
        _ => html! { "—" },
    }
}

/// An RFC 3339 time from the API, shown in `tz` like every other time here.
fn rfc3339_local(text: Option<&str>, tz: Tz) -> Markup {
    match text.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
        Some(t) => local_time(u64::try_from(t.timestamp_millis()).unwrap_or(0), tz),
        None => html! { (text.unwrap_or("")) },
    }
}

/// A duration as a person reads it: `45s`, `3m 20s`, `2h 05m`, `3d 4h`.
pub(crate) fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn secs(value: Option<f64>) -> String {
    value.map_or_else(
        || "—".to_owned(),
        |s| duration((s.max(0.0) * 1000.0) as u64),
    )
}

fn status_class(state: &str) -> &'static str {
    match state {
        "firing" => "critical",
        "pending" => "warning",
        "acknowledged" | "resolved" => "ok",
        _ => "no_data",
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    /// The history's local day, `YYYY-MM-DD`; default today.
    #[serde(default)]
    date: Option<String>,
    /// What the last action did (post/redirect/get).
    #[serde(default)]
    done: Option<String>,
    /// Matchers to start a new silence with (from an alert's "Silence" link).
    #[serde(default)]
    silence: Option<String>,
}

/// What the silence form holds, and what was wrong with it.
#[derive(Debug, Default, Deserialize)]
pub struct SilenceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    matchers: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    comment: String,
}

/// A refused silence: which field of the form, and why.
struct FieldError {
    field: &'static str,
    message: String,
}

impl SilenceForm {
    /// As the API takes a silence: one matcher per line, created by the key.
    fn input(&self, created_by: &str) -> SilenceInput {
        SilenceInput {
            matchers: self
                .matchers
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| MatcherInput::Text(l.to_owned()))
                .collect(),
            starts_at: None,
            ends_at: None,
            duration: Some(self.duration.trim().to_owned()).filter(|d| !d.is_empty()),
            created_by: created_by.to_owned(),
            comment: self.comment.clone(),
        }
    }
}

/// The form field a refused silence's `field` is about.
fn form_field(field: &str) -> &'static str {
    match field {
        f if f.starts_with("matchers") => "matchers",
        "comment" => "comment",
        _ => "duration",
    }
}

/// Everything the page shows, read before rendering.
struct Page {
    tz: Tz,
    now: u64,
    alerts: Vec<AlertView>,
    timings: std::collections::HashMap<String, Timing>,
    rollback_rules: Vec<(String, Option<String>)>,
    policies: BTreeMap<Tier, TierPolicy>,
    silences: Vec<Silence>,
    date: String,
    history: Result<History, String>,
    deliveries: Vec<DeliveryRow>,
}

async fn read(state: &AlertState, date: Option<&str>) -> Result<Page, ConsoleError> {
    let tz = super::zone::launch_zone(&state.store).await?;
    let open = state.board(None, None).await.map_err(ApiError::from)?;
    let recommendation = rollback::recommend(&open.alerts, open.rules);
    let rollback_rules = match recommendation.state {
        RollbackState::RollbackRecommended => recommendation
            .evidence
            .iter()
            .map(|e| (e.rule.to_owned(), e.summary.map(str::to_owned)))
            .collect(),
        RollbackState::None => Vec::new(),
    };
    let now = open.now;
    let today = tz
        .timestamp_millis_opt(i64::try_from(now).unwrap_or(0))
        .single()
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let date = date.filter(|d| !d.is_empty()).unwrap_or(&today).to_owned();
    let history = match hypercare_alerts::stats::span(Some(&date), Some(tz.name()), None, None, now)
    {
        Ok((from, to)) => Ok(state.history(from, to).await.map_err(ApiError::from)?),
        Err(AlertError::Invalid { reason, .. }) => Err(format!("The date {reason}.")),
        Err(other) => return Err(ApiError::from(other).into()),
    };
    let silences = state
        .silences()
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .filter(|s| s.state(now) != SilenceState::Expired)
        .collect();
    let deliveries = state
        .deliveries(0, DELIVERIES_SHOWN)
        .await
        .map_err(ApiError::from)?;
    Ok(Page {
        tz,
        now,
        alerts: open.alerts,
        timings: open.timings,
        rollback_rules,
        policies: state.settings.tiers.clone(),
        silences,
        date,
        history,
        deliveries,
    })
}

pub async fn show(
    viewer: Viewer,
    state: web::Data<AlertState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(Scope::Read)?;
    let page = read(&state, query.date.as_deref()).await?;
    let form = SilenceForm {
        matchers: query.silence.clone().unwrap_or_default(),
        duration: "2h".into(),
        ..SilenceForm::default()
    };
    Ok(super::ok(render(
        &viewer,
        &page,
        query.done.as_deref(),
        &form,
        None,
    )))
}

fn render(
    viewer: &Viewer,
    page: &Page,
    done: Option<&str>,
    form: &SilenceForm,
    error: Option<&FieldError>,
) -> Markup {
    let admin = viewer.can(Scope::Admin);
    let notice = match done {
        Some("ack") => Some("The alert is acknowledged: its repeats and escalation stop."),
        Some("resolve") => Some("The alert is resolved."),
        Some("silence") => Some("The silence is in force."),
        Some("expire") => Some("The silence is expired."),
        _ => None,
    };
    layout::page(
        "Alerts",
        viewer,
        Section::Alerts,
        html! {
            p.muted { "Times are in " strong { (page.tz.name()) } " (the launch's time zone)." }
            @if let Some(notice) = notice {
                p.banner.info role="status" { (notice) }
            }
            @if !page.rollback_rules.is_empty() {
                div.banner.critical role="alert" {
                    strong { "Rollback recommended. " }
                    "Rollback triggers firing: "
                    @for (i, (rule, summary)) in page.rollback_rules.iter().enumerate() {
                        @if i > 0 { "; " }
                        code { (rule) }
                        @if let Some(summary) = summary { " (" (summary) ")" }
                    }
                }
            }
            section aria-labelledby="open-title" {
                h2 #open-title { "Firing and pending" }
                @if !admin {
                    p.muted { "Your key can read alerts; acting on them needs the " code { "admin" } " scope." }
                }
                @for (tier, policy) in &page.policies {
                    (tier_table(viewer, page, *tier, policy, admin))
                }
            }
            @if admin {
                (silence_form(viewer, form, error))
            }
            (silences(viewer, page, admin))
            (history(page))
            (deliveries(page))
        },
    )
}

fn tier_table(
    viewer: &Viewer,
    page: &Page,
    tier: Tier,
    policy: &TierPolicy,
    admin: bool,
) -> Markup {
    let alerts: Vec<&AlertView> = page
        .alerts
        .iter()
        .filter(|a| a.tier == tier.as_str())
        .collect();
    let title_id = format!("tier-{}", tier.as_str());
    html! {
        h3 #(title_id) {
            (tier.as_str()) " "
            span.muted { "· acknowledge within " (duration(policy.ack_sla.as_millis() as u64)) }
            @for e in &policy.escalation {
                span.muted { " · escalates to " (e.receivers.join(", ")) " after " (duration(e.after.as_millis() as u64)) }
            }
        }
        @if alerts.is_empty() {
            p.muted { "No open " (tier.as_str()) " alert." }
        } @else {
            div.scroll tabindex="0" role="region" aria-label=(format!("Open {} alerts", tier.as_str())) {
                table aria-labelledby=(title_id) {
                    thead { tr {
                        th scope="col" { "Alert" }
                        th scope="col" { "State" }
                        th scope="col" { "Age" }
                        th scope="col" { "Ack SLA" }
                        @if admin { th scope="col" { "Actions" } }
                    } }
                    tbody {
                        @for alert in alerts {
                            (alert_row(viewer, page, alert, admin))
                        }
                    }
                }
            }
        }
    }
}

fn alert_row(viewer: &Viewer, page: &Page, alert: &AlertView, admin: bool) -> Markup {
    let timing = page.timings.get(&alert.id);
    let now = page.now;
    let labels: Vec<String> = alert
        .labels
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "alertname" | "tier"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let silence_link = {
        let matchers: Vec<String> = alert
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != "tier")
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        let query =
            serde_urlencoded::to_string([("silence", matchers.join("\n"))]).unwrap_or_default();
        format!("/alerts?{query}#new-silence")
    };
    html! {
        tr #(format!("alert-{}", alert.id)) data-alert=(alert.id) {
            td {
                strong { (alert.rule) }
                @if let Some(summary) = alert.annotations.get("summary") {
                    br; (summary)
                }
                @if !labels.is_empty() {
                    br; span.muted { (labels.join(" · ")) }
                }
            }
            td {
                span class=(format!("status {}", status_class(&alert.state))) { (alert.state) }
                @if alert.silenced { " " span.status.no_data { "silenced" } }
                @if alert.inhibited { " " span.status.no_data { "inhibited" } }
                @if let Some(by) = &alert.acked_by {
                    br; span.muted { "by " (by) }
                }
            }
            td {
                @if let Some(t) = timing {
                    (duration(now.saturating_sub(t.started_ms)))
                    br; span.muted { "since " (local_time(t.started_ms, page.tz)) }
                }
            }
            td.ack-sla {
                @match timing.and_then(|t| t.ack_due_ms) {
                    Some(due) if due > now => {
                        strong { (duration(due - now)) " left" }
                    }
                    Some(due) => {
                        span.status.critical { "overdue by " (duration(now - due)) }
                    }
                    None if alert.state == "pending" => { span.muted { "not firing yet" } }
                    None => { span.muted { "acknowledged" } }
                }
                @if let Some((at, to)) = timing.and_then(|t| t.next_escalation.as_ref()) {
                    br;
                    span.muted {
                        @if *at > now {
                            "escalates to " (to.join(", ")) " in " (duration(at - now))
                        } @else {
                            "escalating to " (to.join(", "))
                        }
                    }
                }
            }
            @if admin {
                td {
                    div.actions {
                        @if alert.state == "firing" {
                            form method="post" action=(format!("/alerts/{}/ack", alert.id)) {
                                input type="hidden" name="csrf" value=(viewer.csrf);
                                button type="submit" { "Acknowledge" }
                            }
                        }
                        form method="post" action=(format!("/alerts/{}/resolve", alert.id)) {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button.secondary type="submit" { "Resolve" }
                        }
                        a.button.secondary href=(silence_link) { "Silence" }
                    }
                }
            }
        }
    }
}

fn silence_form(viewer: &Viewer, form: &SilenceForm, error: Option<&FieldError>) -> Markup {
    let error_of = |field: &str| {
        error
            .filter(|e| e.field == field)
            .map(|e| e.message.as_str())
    };
    let field = |name: &'static str, label: &str, hint: &str, textarea: bool, value: &str| {
        let id = format!("silence-{name}");
        let problem = error_of(name);
        let hint_id = format!("{id}-hint");
        let error_id = format!("{id}-error");
        let described = match problem {
            Some(_) => format!("{hint_id} {error_id}"),
            None => hint_id.clone(),
        };
        html! {
            div {
                label for=(id) { (label) }
                p.muted #(hint_id) { (hint) }
                @if textarea {
                    textarea #(id) name=(name) rows="3" required aria-describedby=(described)
                        aria-invalid=[problem.map(|_| "true")] { (value) }
                } @else {
                    input #(id) type="text" name=(name) value=(value) required aria-describedby=(described)
                        aria-invalid=[problem.map(|_| "true")];
                }
                @if let Some(problem) = problem {
                    p.field-error #(error_id) { (problem) }
                }
            }
        }
    };
    html! {
        section #new-silence aria-labelledby="new-silence-title" {
            h2 #new-silence-title { "New silence" }
            form.stack method="post" action="/alerts/silences" {
                input type="hidden" name="csrf" value=(viewer.csrf);
                (field("matchers", "Matchers", r#"One per line, e.g. service="checkout" or alertname=~"slow|down"."#, true, &form.matchers))
                (field("duration", "Duration", "How long, e.g. 30m, 2h, 1h30m.", false, &form.duration))
                (field("comment", "Comment", "Why it is silenced (shown to everyone).", true, &form.comment))
                div { button type="submit" { "Create silence" } }
            }
        }
    }
}

fn silences(viewer: &Viewer, page: &Page, admin: bool) -> Markup {
    html! {
        section aria-labelledby="silences-title" {
            h2 #silences-title { "Silences in force or to come" }
            @if page.silences.is_empty() {
                p.muted { "No silence." }
            } @else {
                div.scroll tabindex="0" role="region" aria-label="Silences" {
                    table aria-labelledby="silences-title" {
                        thead { tr {
                            th scope="col" { "Matchers" }
                            th scope="col" { "State" }
                            th scope="col" { "Ends" }
                            th scope="col" { "By" }
                            th scope="col" { "Comment" }
                            @if admin { th scope="col" { "Actions" } }
                        } }
                        tbody {
                            @for s in &page.silences {
                                tr data-silence=(s.id) {
                                    td { @for m in &s.matchers { code { (matcher_text(m)) } " " } }
                                    td { (s.state(page.now).as_str()) }
                                    td { (local_time(s.ends_ms, page.tz)) }
                                    td { (s.created_by) }
                                    td.comment { (s.comment) }
                                    @if admin {
                                        td {
                                            form method="post" action=(format!("/alerts/silences/{}/expire", s.id)) {
                                                input type="hidden" name="csrf" value=(viewer.csrf);
                                                button.secondary type="submit" { "Expire" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn history(page: &Page) -> Markup {
    html! {
        section aria-labelledby="history-title" {
            h2 #history-title { "History of " (page.date) }
            form.inline method="get" action="/alerts" {
                label for="history-date" { "Day" }
                input #history-date type="date" name="date" value=(page.date)
                    aria-describedby=[page.history.is_err().then_some("history-date-error")]
                    aria-invalid=[page.history.is_err().then_some("true")];
                button.secondary type="submit" { "Show" }
            }
            @match &page.history {
                Err(problem) => { p.field-error #history-date-error { (problem) } }
                Ok(history) if history.alerts.is_empty() => {
                    p.muted { "No alert fired that day." }
                }
                Ok(history) => {
                    div.scroll tabindex="0" role="region" aria-label="Times per tier" {
                        table #mtta aria-label="Time to acknowledge and resolve per tier" {
                            thead { tr {
                                th scope="col" { "Tier" }
                                th scope="col" { "Fired" }
                                th scope="col" { "Acknowledged" }
                                th scope="col" { "Resolved" }
                                th scope="col" { abbr title="mean time to acknowledge" { "MTTA" } }
                                th scope="col" { abbr title="mean time to resolve" { "MTTR" } }
                            } }
                            tbody {
                                @for (tier, t) in &history.tiers {
                                    tr {
                                        th scope="row" { (tier) }
                                        td { (t.alerts) }
                                        td { (t.acked) }
                                        td { (t.resolved) }
                                        td { (secs(t.mtta_secs)) }
                                        td { (secs(t.mttr_secs)) }
                                    }
                                }
                            }
                        }
                    }
                    div.scroll tabindex="0" role="region" aria-label="Alerts that fired that day" {
                        table aria-label="Alerts that fired that day" {
                            thead { tr {
                                th scope="col" { "Alert" }
                                th scope="col" { "Tier" }
                                th scope="col" { "State" }
                                th scope="col" { "Time to ack" }
                                th scope="col" { "Time to resolve" }
                            } }
                            tbody {
                                @for a in &history.alerts {
                                    tr {
                                        td { (a.rule) br; span.muted { (rfc3339_local(a.fired_at.as_deref(), page.tz)) } }
                                        td { (a.tier) }
                                        td { (a.state.as_str()) }
                                        td { (secs(a.time_to_ack_secs)) @if !a.acked_by.is_empty() { " by " (a.acked_by) } }
                                        td { (secs(a.time_to_resolve_secs)) @if !a.resolved_by.is_empty() { " by " (a.resolved_by) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn deliveries(page: &Page) -> Markup {
    html! {
        section aria-labelledby="deliveries-title" {
            h2 #deliveries-title { "Webhook deliveries" }
            @if page.deliveries.is_empty() {
                p.muted { "No notification sent yet." }
            } @else {
                div.scroll tabindex="0" role="region" aria-label="Webhook deliveries" {
                    table #deliveries aria-labelledby="deliveries-title" {
                        thead { tr {
                            th scope="col" { "At" }
                            th scope="col" { "Receiver" }
                            th scope="col" { "Why" }
                            th scope="col" { "Outcome" }
                            th scope="col" { "Attempt" }
                            th scope="col" { "Answer" }
                        } }
                        tbody {
                            @for d in &page.deliveries {
                                tr {
                                    td { (local_time(d.at_ms, page.tz)) }
                                    td { (d.receiver) br; span.muted { (d.url) } }
                                    td { (d.reason) }
                                    td { span class=(format!("status {}", if d.status == "delivered" { "ok" } else { "critical" })) { (d.status) } }
                                    td { (d.attempt) }
                                    td {
                                        @if d.http_status > 0 { "HTTP " (d.http_status) }
                                        @if !d.error.is_empty() { " " span.muted { (d.error) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A matcher as it is typed: `name="value"`, `name=~"re"`.
fn matcher_text(m: &hypercare_alerts::matcher::Matcher) -> String {
    use hypercare_alerts::matcher::Op;
    let op = match m.op {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Re => "=~",
        Op::NotRe => "!~",
    };
    format!("{}{op}\"{}\"", m.name, m.value)
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Every action's gate: same site, this session's token, then the scope.
fn gate(req: &HttpRequest, viewer: &Viewer, csrf: &str) -> Result<(), ConsoleError> {
    session::same_site(req)?;
    viewer.check_csrf(csrf)?;
    viewer.require(Scope::Admin)
}

fn back(done: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/alerts?done={done}")))
        .finish()
}

async fn act(
    action: Action,
    req: HttpRequest,
    viewer: Viewer,
    state: web::Data<AlertState>,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    gate(&req, &viewer, &form.csrf)?;
    state
        .act(action, &id, viewer.key_name())
        .await
        .map_err(ApiError::from)?;
    tracing::info!(key = %viewer.key_name(), alert = %id, action = action.done(), "Alert changed from the console.");
    Ok(back(match action {
        Action::Ack => "ack",
        Action::Resolve => "resolve",
    }))
}

pub async fn ack(
    req: HttpRequest,
    viewer: Viewer,
    state: web::Data<AlertState>,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    act(Action::Ack, req, viewer, state, id, form).await
}

pub async fn resolve(
    req: HttpRequest,
    viewer: Viewer,
    state: web::Data<AlertState>,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    act(Action::Resolve, req, viewer, state, id, form).await
}

pub async fn silence(
    req: HttpRequest,
    viewer: Viewer,
    state: web::Data<AlertState>,
    form: web::Form<SilenceForm>,
) -> Result<HttpResponse, ConsoleError> {
    gate(&req, &viewer, &form.csrf)?;
    match state.create_silence(form.input(viewer.key_name())).await {
        Ok(silence) => {
            tracing::info!(key = %viewer.key_name(), silence = %silence.id, "Silence created from the console.");
            Ok(back("silence"))
        }
        Err(AlertError::Invalid { field, reason }) => {
            let error = FieldError {
                field: form_field(&field),
                message: format!("{} {reason}.", field_label(&field)),
            };
            let page = read(&state, None).await?;
            Ok(super::html(
                StatusCode::BAD_REQUEST,
                render(&viewer, &page, None, &form, Some(&error)),
            ))
        }
        Err(other) => Err(ApiError::from(other).into()),
    }
}

/// How the form names what the API calls `field`.
fn field_label(field: &str) -> String {
    match field.strip_prefix("matchers[") {
        Some(rest) => {
            let line = rest
                .trim_end_matches(']')
                .parse::<usize>()
                .map_or(0, |i| i + 1);
            format!("Matcher on line {line}:")
        }
        None => match field {
            "matchers" => "Matchers:".into(),
            "comment" => "Comment:".into(),
            _ => "Duration:".into(),
        },
    }
}

pub async fn expire(
    req: HttpRequest,
    viewer: Viewer,
    state: web::Data<AlertState>,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    gate(&req, &viewer, &form.csrf)?;
    state.expire_silence(&id).await.map_err(ApiError::from)?;
    Ok(back("expire"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_a_person_says_them() {
        assert_eq!(duration(45_000), "45s");
        assert_eq!(duration(200_000), "3m 20s");
        assert_eq!(duration(7_500_000), "2h 05m");
        assert_eq!(duration(3 * 86_400_000 + 4 * 3_600_000), "3d 4h");
    }

    #[test]
    fn the_silence_form_becomes_the_apis_input_and_errors_find_their_field() {
        let form = SilenceForm {
            matchers: "alertname=\"hot\"\n\n  service=\"a\"  \n".into(),
            duration: " 2h ".into(),
            comment: "deploying a fix".into(),
            ..SilenceForm::default()
        };
        let silence = form
            .input("admin-key")
            .into_silence("s".into(), 1_795_000_000_000)
            .unwrap();
        assert_eq!(silence.matchers.len(), 2);
        assert_eq!(silence.created_by, "admin-key");
        assert_eq!(silence.ends_ms - silence.starts_ms, 7_200_000);
        assert_eq!(form_field("matchers[1]"), "matchers");
        assert_eq!(field_label("matchers[1]"), "Matcher on line 2:");
        assert_eq!(form_field("endsAt"), "duration");
        assert_eq!(form_field("comment"), "comment");
    }
}
