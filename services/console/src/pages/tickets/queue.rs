//! The queue: tickets filtered, searched, sorted and paged, through a GET form
//! (a filtered queue is a URL to share). The query is checked by the API's
//! own [`ListQuery::check`]; a wrong member shows the form with the reason.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use hypercare_http::ApiError;
use hypercare_http::auth::Scope;
use hypercare_kpis::KpiState;
use hypercare_tickets::TicketError;
use hypercare_tickets::model::{Priority, State, Ticket};
use hypercare_tickets::request::{ListQuery, ListRequest};
use hypercare_tickets::routes::authorize_read;
use hypercare_tickets::sla::sla;
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::{Service, at, priority_badge, state_badge, state_label, zone, zone_note};
use crate::error::ConsoleError;
use crate::layout::{self, Section};
use crate::session::Viewer;

/// The queue's query as the form sends it: an empty member means "any".
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct QueueQuery {
    #[serde(skip_serializing_if = "String::is_empty")]
    q: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    state: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    priority: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    category: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    sort: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    order: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    offset: String,
}

/// Rows per page of the queue.
const PAGE: u64 = 25;

impl QueueQuery {
    fn check(&self) -> Result<ListRequest, TicketError> {
        let given = |s: &String| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let offset = match given(&self.offset) {
            None => None,
            Some(text) => Some(
                text.parse::<u64>()
                    .map_err(|_| TicketError::invalid("offset", "is not a whole number"))?,
            ),
        };
        ListQuery {
            state: given(&self.state),
            priority: given(&self.priority),
            category: given(&self.category),
            q: given(&self.q),
            sort: given(&self.sort),
            order: given(&self.order),
            offset,
            limit: Some(PAGE),
            ..ListQuery::default()
        }
        .check()
    }

    /// This query at another offset, as a URL.
    fn at_offset(&self, offset: u64) -> String {
        let mut query = self.clone();
        query.offset = if offset == 0 {
            String::new()
        } else {
            offset.to_string()
        };
        match serde_urlencoded::to_string(&query) {
            Ok(q) if !q.is_empty() => format!("/tickets?{q}"),
            _ => "/tickets".to_owned(),
        }
    }
}

pub async fn show(
    viewer: Viewer,
    service: Service,
    kpis: Option<web::Data<KpiState>>,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, ConsoleError> {
    authorize_read(&viewer.caller)?;
    let query = query.into_inner();
    let tz = zone(kpis.as_ref()).await;
    let (status, body) = match query.check() {
        Ok(request) => {
            let (rows, total) = service
                .list(
                    &request.filters,
                    request.sort,
                    request.descending,
                    request.offset,
                    request.limit,
                )
                .await
                .map_err(ApiError::from)?;
            (
                StatusCode::OK,
                results(&service, &query, &request, &rows, total, tz),
            )
        }
        Err(refused) => {
            let message = refused.to_string();
            (
                ApiError::from(refused).status_code(),
                html! { p.banner.critical role="alert" { "This queue cannot be shown: " (message) } },
            )
        }
    };
    let content = html! {
        @if viewer.can(Scope::Support) {
            p { a.button href="/tickets/new" { "New ticket" } }
        }
        (filters(&service, &query))
        (zone_note(tz))
        (body)
    };
    Ok(super::super::html(
        status,
        layout::page("Tickets", &viewer, Section::Tickets, content),
    ))
}

fn select(id: &str, label: &str, chosen: &str, any: &str, options: &[(String, String)]) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            select #(id) name=(id) {
                option value="" selected[chosen.is_empty()] { (any) }
                @for (value, text) in options {
                    option value=(value) selected[chosen == value] { (text) }
                }
            }
        }
    }
}

fn filters(service: &Service, query: &QueueQuery) -> Markup {
    let states: Vec<(String, String)> = State::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), state_label(*s).to_owned()))
        .collect();
    let priorities: Vec<(String, String)> = Priority::ALL
        .iter()
        .map(|p| (p.as_str().to_owned(), p.as_str().to_owned()))
        .collect();
    let categories: Vec<(String, String)> = service
        .settings
        .categories
        .iter()
        .map(|c| (c.clone(), c.replace('_', " ")))
        .collect();
    let sorts = [("updated", "Last change"), ("priority", "Priority")]
        .map(|(v, t)| (v.to_owned(), t.to_owned()));
    let orders = [("asc", "Ascending (oldest first)")].map(|(v, t)| (v.to_owned(), t.to_owned()));
    html! {
        form.filters method="get" action="/tickets" role="search" aria-label="Filter the tickets" {
            div.field.wide {
                label for="q" { "Search" }
                input #q type="search" name="q" value=(query.q)
                    placeholder="Words in the title or description";
            }
            (select("state", "State", &query.state, "Any state", &states))
            (select("priority", "Priority", &query.priority, "Any priority", &priorities))
            (select("category", "Category", &query.category, "Any category", &categories))
            (select("sort", "Sort by", &query.sort, "Created", &sorts))
            (select("order", "Order", &query.order, "Descending (newest first)", &orders))
            div.field.submit { button type="submit" { "Apply" } }
        }
    }
}

fn results(
    service: &Service,
    query: &QueueQuery,
    request: &ListRequest,
    rows: &[Ticket],
    total: u64,
    tz: chrono_tz::Tz,
) -> Markup {
    let now = service.now_ms();
    let first = request.offset + 1;
    let last = request.offset + rows.len() as u64;
    html! {
        @if rows.is_empty() {
            p.card #count { "No ticket matches." }
        } @else {
            p #count aria-live="polite" { "Tickets " (first) "–" (last) " of " (total) }
            div.scroll tabindex="0" role="region" aria-labelledby="count" {
                table.tickets {
                    thead {
                        tr {
                            th scope="col" { "Ticket" }
                            th scope="col" { "Title" }
                            th scope="col" { "State" }
                            th scope="col" { "Priority" }
                            th scope="col" { "Category" }
                            th scope="col" { "Assignee" }
                            th scope="col" { "SLA" }
                            th scope="col" { "Created" }
                        }
                    }
                    tbody {
                        @for ticket in rows {
                            tr {
                                td { a href=(format!("/tickets/{}", ticket.key())) { (ticket.key()) } }
                                td { (ticket.title) }
                                td { (state_badge(ticket.state)) }
                                td { (priority_badge(ticket.priority)) }
                                td { (ticket.category) }
                                td { @if ticket.assignee.is_empty() { span.muted { "nobody" } } @else { (ticket.assignee) } }
                                td { (sla_summary(service, ticket, now)) }
                                td { (at(ticket.created_ms, tz)) }
                            }
                        }
                    }
                }
            }
        }
        @if request.offset > 0 || last < total {
            nav.pager aria-label="Pages" {
                @if request.offset > 0 {
                    a rel="prev" href=(query.at_offset(request.offset.saturating_sub(request.limit))) { "Previous page" }
                }
                @if last < total {
                    a rel="next" href=(query.at_offset(last)) { "Next page" }
                }
            }
        }
    }
}

/// The worst of the two clocks, in words and colour.
fn sla_summary(service: &Service, ticket: &Ticket, now: u64) -> Markup {
    let clocks = sla(ticket, &service.settings, now);
    let both = [&clocks.first_response, &clocks.resolution];
    let (class, text) = if both.iter().any(|c| c.breached && c.met_at.is_none()) {
        ("critical", "Breached")
    } else if both.iter().any(|c| c.breached) {
        ("warning", "Met late")
    } else if both.iter().any(|c| c.at_risk) {
        ("warning", "At risk")
    } else {
        ("ok", "On time")
    };
    html! { span.status.(class) { (text) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_member_means_any_and_paging_keeps_the_filters() {
        let query: QueueQuery =
            serde_urlencoded::from_str("q=payment&state=&priority=P1&category=&sort=&order=")
                .unwrap();
        let request = query.check().unwrap();
        assert_eq!(request.filters.state, None);
        assert_eq!(request.filters.priority, Some(Priority::P1));
        assert_eq!(request.filters.text.as_deref(), Some("payment"));
        assert_eq!(request.limit, PAGE);
        assert_eq!(
            query.at_offset(25),
            "/tickets?q=payment&priority=P1&offset=25"
        );
        assert_eq!(query.at_offset(0), "/tickets?q=payment&priority=P1");
    }

    #[test]
    fn a_wrong_member_is_refused_naming_it() {
        for (text, field) in [("state=asleep", "state"), ("offset=-1", "offset")] {
            let query: QueueQuery = serde_urlencoded::from_str(text).unwrap();
            match query.check() {
                Err(TicketError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
