//! A ticket: its SLA clocks, the moves its state allows (as buttons), assign
//! and comment, its history and the open tickets that read like it.
//!
//! Each action is a form carrying the CSRF token and the version of the
//! ticket the page showed, so a change made meanwhile by someone else is
//! refused (`version_conflict`) instead of overwritten. The action calls the
//! same service function with the same rule as the API route; a success
//! redirects to the ticket, a refusal shows the ticket with the reason.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use chrono_tz::Tz;
use hypercare_http::ApiError;
use hypercare_http::auth::Scope;
use hypercare_kpis::KpiState;
use hypercare_tickets::TicketError;
use hypercare_tickets::model::{State, Ticket, change};
use hypercare_tickets::request::{self, Comment, Move};
use hypercare_tickets::routes::authorize_read;
use hypercare_tickets::similar::Similar;
use hypercare_tickets::sla::{SlaClock, sla};
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Service, at, field_label, priority_badge, span, state_badge, state_label, zone, zone_note,
};
use crate::error::ConsoleError;
use crate::layout::{self, Section};
use crate::session::{self, Viewer};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ShowQuery {
    created: Option<String>,
}

pub async fn show(
    viewer: Viewer,
    service: Service,
    kpis: Option<web::Data<KpiState>>,
    path: web::Path<String>,
    query: web::Query<ShowQuery>,
) -> Result<HttpResponse, ConsoleError> {
    authorize_read(&viewer.caller)?;
    let notice = query
        .created
        .is_some()
        .then(|| Notice::Done("The ticket was created.".to_owned()));
    render(
        &viewer,
        &service,
        kpis.as_ref(),
        &path,
        notice,
        StatusCode::OK,
    )
    .await
}

/// What the page says above the ticket after an action.
enum Notice {
    Done(String),
    Refused(String),
}

async fn render(
    viewer: &Viewer,
    service: &Service,
    kpis: Option<&web::Data<KpiState>>,
    id: &str,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let (current, history) = service.show(id).await.map_err(ApiError::from)?;
    let similar = service.similar_to(&current).await.map_err(ApiError::from)?;
    let tz = zone(kpis).await;
    let title = format!("{} · {}", current.key(), current.title);
    let content = html! {
        @match &notice {
            Some(Notice::Done(text)) => p.banner.info role="status" { (text) },
            Some(Notice::Refused(text)) => p.banner.critical role="alert" #problem { "Not done: " (text) },
            None => {},
        }
        p.summary data-state=(current.state.as_str()) data-version=(current.version) {
            (state_badge(current.state)) " " (priority_badge(current.priority))
            " " span.muted { (current.category.replace('_', " ")) " · version " (current.version) }
        }
        (zone_note(tz))
        (clocks(service, &current, tz))
        @if viewer.can(Scope::Support) {
            (actions(viewer, &current))
        } @else {
            p.muted #read-only { "Your key can read tickets but not change them." }
        }
        (details(&current, tz))
        (history_table(&history, tz))
        (similar_list(&similar))
    };
    Ok(super::super::html(
        status,
        layout::page(&title, viewer, Section::Tickets, content),
    ))
}

fn clocks(service: &Service, ticket: &Ticket, tz: Tz) -> Markup {
    let now = service.now_ms();
    let clocks = sla(ticket, &service.settings, now);
    html! {
        section.clocks aria-labelledby="sla-heading" {
            h2 #sla-heading { "SLA" }
            div.tiles {
                (clock("First response", &clocks.first_response, ticket.created_ms, ticket.first_response_ms, now, tz))
                (clock("Resolution", &clocks.resolution, ticket.created_ms, ticket.resolved_ms_if_done(), now, tz))
            }
        }
    }
}

fn clock(name: &str, c: &SlaClock, created_ms: u64, met_ms: u64, now: u64, tz: Tz) -> Markup {
    let due_ms = created_ms.saturating_add(c.target_minutes.saturating_mul(60_000));
    let (class, verdict) = match (met_ms > 0, c.breached, c.at_risk) {
        (true, false, _) => ("ok", "Met".to_owned()),
        (true, true, _) => (
            "warning",
            format!("Met {} late", span(met_ms.saturating_sub(due_ms))),
        ),
        (false, true, _) => (
            "critical",
            format!("Breached {} ago", span(now.saturating_sub(due_ms))),
        ),
        (false, false, true) => (
            "warning",
            format!("At risk: {} left", span(due_ms.saturating_sub(now))),
        ),
        (false, false, false) => ("ok", format!("{} left", span(due_ms.saturating_sub(now)))),
    };
    html! {
        div.tile.(class) {
            h3 { (name) }
            p.verdict { span.status.(class) { (verdict) } }
            p.muted {
                "Target " (span(c.target_minutes * 60_000)) ", due " (at(due_ms, tz))
                @if met_ms > 0 { br; "Met at " (at(met_ms, tz)) }
            }
        }
    }
}

fn version_fields(viewer: &Viewer, ticket: &Ticket) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(viewer.csrf);
        input type="hidden" name="expected_version" value=(ticket.version);
    }
}

fn actions(viewer: &Viewer, ticket: &Ticket) -> Markup {
    let key = ticket.key();
    let moves: Vec<State> = ticket
        .state
        .allowed()
        .iter()
        .copied()
        .filter(|s| *s != State::Resolved)
        .collect();
    let can_resolve = ticket.state.allowed().contains(&State::Resolved);
    html! {
        section.actions-panel aria-labelledby="actions-heading" {
            h2 #actions-heading { "Actions" }
            div.action-grid {
                @if !moves.is_empty() {
                    form.card.move method="post" action=(format!("/tickets/{key}/transition")) {
                        (version_fields(viewer, ticket))
                        h3 { "Move" }
                        div.actions {
                            @for to in &moves {
                                button type="submit" name="to" value=(to.as_str()) {
                                    (state_label(*to))
                                }
                            }
                        }
                    }
                }
                @if can_resolve {
                    form.card.resolve.stack method="post" action=(format!("/tickets/{key}/transition")) {
                        (version_fields(viewer, ticket))
                        input type="hidden" name="to" value="resolved";
                        h3 { "Resolve" }
                        div.field {
                            label for="resolution" { "What was done" }
                            textarea #resolution name="resolution" rows="2" {}
                        }
                        div { button type="submit" { "Resolve" } }
                    }
                }
                form.card.assign.stack method="post" action=(format!("/tickets/{key}/assign")) {
                    (version_fields(viewer, ticket))
                    h3 { "Assign" }
                    div.field {
                        label for="assignee" { "Assignee" }
                        input #assignee type="text" name="assignee" value=(ticket.assignee);
                    }
                    div { button type="submit" { "Assign" } }
                }
                form.card.comment.stack method="post" action=(format!("/tickets/{key}/comments")) {
                    (version_fields(viewer, ticket))
                    h3 { "Comment" }
                    div.field {
                        label for="body" { "Comment" }
                        textarea #body name="body" rows="3" {}
                    }
                    div.field {
                        label for="visibility" { "Who sees it" }
                        select #visibility name="visibility" {
                            option value="internal" { "Support only (internal)" }
                            option value="public" { "The user too (public: counts as a response)" }
                        }
                    }
                    div { button type="submit" { "Add comment" } }
                }
            }
        }
    }
}

fn details(ticket: &Ticket, tz: Tz) -> Markup {
    let texts: [(&str, &str); 9] = [
        ("description", &ticket.description),
        ("impact", &ticket.impact),
        ("urgency", &ticket.urgency),
        ("affected_user", &ticket.affected_user),
        ("release", &ticket.release),
        ("launch", &ticket.launch),
        ("reporter", &ticket.reporter),
        ("channel", &ticket.channel),
        ("priority_reason", &ticket.priority_reason),
    ];
    html! {
        section aria-labelledby="details-heading" {
            h2 #details-heading { "Details" }
            dl.details {
                dt { "Assignee" }
                dd #assignee-now { @if ticket.assignee.is_empty() { span.muted { "nobody" } } @else { (ticket.assignee) } }
                dt { "Created" }
                dd { (at(ticket.created_ms, tz)) }
                @for (field, value) in texts {
                    @if !value.is_empty() {
                        dt { (field_label(field)) }
                        dd { (value) }
                    }
                }
                @if !ticket.tags.is_empty() {
                    dt { "Tags" }
                    dd { (ticket.tags.join(", ")) }
                }
                @if !ticket.resolution.is_empty() {
                    dt { "Resolution" }
                    dd { (ticket.resolution) }
                }
            }
        }
    }
}

fn change_text(version: &Ticket, previous: Option<&Ticket>) -> String {
    match version.change.as_str() {
        change::CREATED => "Created".to_owned(),
        change::TRANSITION => match previous {
            Some(p) => format!(
                "Moved from {} to {}",
                state_label(p.state),
                state_label(version.state)
            ),
            None => format!("Moved to {}", state_label(version.state)),
        },
        change::ASSIGNED if version.assignee.is_empty() => "Unassigned".to_owned(),
        change::ASSIGNED => format!("Assigned to {}", version.assignee),
        change::COMMENTED => format!("Commented ({})", version.comment_visibility),
        change::PRIORITY_CHANGED => format!("Priority set to {}", version.priority),
        other => other.to_owned(),
    }
}

fn history_table(history: &[Ticket], tz: Tz) -> Markup {
    html! {
        section aria-labelledby="history-heading" {
            h2 #history-heading { "History" }
            div.scroll tabindex="0" role="region" aria-labelledby="history-heading" {
                table.history {
                    thead {
                        tr {
                            th scope="col" { "Version" }
                            th scope="col" { "When" }
                            th scope="col" { "Who" }
                            th scope="col" { "Change" }
                            th scope="col" { "State" }
                        }
                    }
                    tbody {
                        @for (i, version) in history.iter().enumerate() {
                            tr {
                                td { (version.version) }
                                td { (at(version.at_ms, tz)) }
                                td { (version.actor) }
                                td.change {
                                    (change_text(version, i.checked_sub(1).and_then(|p| history.get(p))))
                                    @if !version.comment.is_empty() {
                                        blockquote { (version.comment) }
                                    }
                                }
                                td { (state_label(version.state)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn similar_list(similar: &[Similar]) -> Markup {
    html! {
        section aria-labelledby="similar-heading" {
            h2 #similar-heading { "Similar open tickets" }
            @if similar.is_empty() {
                p.muted { "None of the same category reads alike." }
            } @else {
                ul.similar {
                    @for s in similar {
                        li {
                            a href=(format!("/tickets/{}", s.key)) { (s.key) } " " (s.title)
                            " " span.muted { "(" (state_label(s.state)) ", " (format!("{:.0}", s.score * 100.0)) " % of words in common)" }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActionForm {
    csrf: String,
    expected_version: String,
    to: String,
    resolution: String,
    assignee: String,
    body: String,
    visibility: String,
}

impl ActionForm {
    fn expected_version(&self) -> Result<Option<u32>, TicketError> {
        let text = self.expected_version.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|_| TicketError::invalid("expected_version", "is not a version number"))
    }
}

/// The common path of the three actions: the checks every action needs,
/// then `act`; a refusal of the rules shows the ticket with the reason.
async fn act<F, Fut>(
    req: HttpRequest,
    viewer: Viewer,
    service: Service,
    kpis: Option<web::Data<KpiState>>,
    id: String,
    form: ActionForm,
    act: F,
) -> Result<HttpResponse, ConsoleError>
where
    F: FnOnce(Service, String, ActionForm, String) -> Fut,
    Fut: std::future::Future<Output = Result<Ticket, TicketError>>,
{
    session::same_site(&req)?;
    viewer.check_csrf(&form.csrf)?;
    viewer
        .caller
        .authorize(Scope::Support)
        .map_err(ApiError::from)?;
    let actor = viewer.key_name().to_owned();
    match act(service.clone(), id.clone(), form, actor).await {
        Ok(ticket) => Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/tickets/{}", ticket.key())))
            .finish()),
        Err(refused @ (TicketError::NotFound(_) | TicketError::Storage(_))) => {
            Err(ApiError::from(refused).into())
        }
        Err(refused) => {
            let reason = match &refused {
                TicketError::Invalid { field, reason } => {
                    format!("{} {reason}.", field_label(field))
                }
                other => other.to_string(),
            };
            let status = ApiError::from(refused).status_code();
            render(
                &viewer,
                &service,
                kpis.as_ref(),
                &id,
                Some(Notice::Refused(reason)),
                status,
            )
            .await
        }
    }
}

pub async fn transition(
    req: HttpRequest,
    viewer: Viewer,
    service: Service,
    kpis: Option<web::Data<KpiState>>,
    path: web::Path<String>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, ConsoleError> {
    act(
        req,
        viewer,
        service,
        kpis,
        path.into_inner(),
        form.into_inner(),
        |service, id, form, actor| async move {
            let expected = form.expected_version()?;
            let wanted = Move::parse(&form.to, Some(form.resolution))?;
            service
                .change(&id, expected, |current, now| {
                    current.transition(wanted.to, &wanted.resolution, &actor, now)
                })
                .await
        },
    )
    .await
}

pub async fn assign(
    req: HttpRequest,
    viewer: Viewer,
    service: Service,
    kpis: Option<web::Data<KpiState>>,
    path: web::Path<String>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, ConsoleError> {
    act(
        req,
        viewer,
        service,
        kpis,
        path.into_inner(),
        form.into_inner(),
        |service, id, form, actor| async move {
            let expected = form.expected_version()?;
            let assignee = request::assignee(form.assignee)?;
            service
                .change(&id, expected, |current, now| {
                    Ok(current.assign(&assignee, &actor, now))
                })
                .await
        },
    )
    .await
}

pub async fn comment(
    req: HttpRequest,
    viewer: Viewer,
    service: Service,
    kpis: Option<web::Data<KpiState>>,
    path: web::Path<String>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, ConsoleError> {
    act(
        req,
        viewer,
        service,
        kpis,
        path.into_inner(),
        form.into_inner(),
        |service, id, form, actor| async move {
            let expected = form.expected_version()?;
            let visibility = Some(form.visibility.as_str()).filter(|v| !v.is_empty());
            let comment = Comment::parse(form.body, visibility)?;
            service
                .change(&id, expected, |current, now| {
                    Ok(current.comment(&comment.body, comment.visibility, &actor, now))
                })
                .await
        },
    )
    .await
}
