//! The intake form. First the category (a GET form: works without script;
//! htmx swaps the fields in place), then the fields its template requires and
//! the optional ones. The form posts to the same intake check as
//! `POST /v1/tickets` ([`NewTicket::check`]); its refusal names a field, and
//! the form comes back with what was typed and the reason next to that field.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use hypercare_http::ApiError;
use hypercare_http::auth::Scope;
use hypercare_tickets::TicketError;
use hypercare_tickets::config::TEMPLATE_FIELDS;
use hypercare_tickets::intake::{NewTicket, check_category, required_fields};
use hypercare_tickets::model::Priority;
use maud::{Markup, html};
use serde::Deserialize;

use super::{Service, field_label};
use crate::error::ConsoleError;
use crate::layout::{self, Section};
use crate::session::{self, Viewer};

/// What the form sends (and what it shows again after a refusal).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct TicketForm {
    csrf: String,
    category: String,
    title: String,
    impact: String,
    urgency: String,
    description: String,
    affected_user: String,
    release: String,
    launch: String,
    reporter: String,
    channel: String,
    priority: String,
    priority_reason: String,
    /// Comma-separated.
    tags: String,
}

impl TicketForm {
    fn value(&self, field: &str) -> &str {
        match field {
            "title" => &self.title,
            "impact" => &self.impact,
            "urgency" => &self.urgency,
            "description" => &self.description,
            "affected_user" => &self.affected_user,
            "release" => &self.release,
            "launch" => &self.launch,
            "reporter" => &self.reporter,
            "channel" => &self.channel,
            "priority" => &self.priority,
            "priority_reason" => &self.priority_reason,
            "tags" => &self.tags,
            _ => "",
        }
    }

    /// The API's body: a member left empty is a member not given.
    fn into_new_ticket(self) -> NewTicket {
        let given = |s: String| Some(s).filter(|s| !s.trim().is_empty());
        NewTicket {
            title: given(self.title),
            description: given(self.description),
            category: given(self.category),
            impact: given(self.impact),
            urgency: given(self.urgency),
            priority: given(self.priority),
            priority_reason: given(self.priority_reason),
            channel: given(self.channel),
            reporter: given(self.reporter),
            affected_user: given(self.affected_user),
            release: given(self.release),
            launch: given(self.launch),
            tags: self
                .tags
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            links: Vec::new(),
        }
    }
}

/// A refusal of the intake, for the form: the field it names and why.
struct Problem {
    field: String,
    reason: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CategoryQuery {
    category: String,
}

pub async fn show(
    viewer: Viewer,
    service: Service,
    query: web::Query<CategoryQuery>,
) -> Result<HttpResponse, ConsoleError> {
    viewer
        .caller
        .authorize(Scope::Support)
        .map_err(ApiError::from)?;
    let category = query.into_inner().category;
    let form = TicketForm {
        category: category.trim().to_owned(),
        ..TicketForm::default()
    };
    let (status, problem) = match check_category(&service.settings, &form.category) {
        Ok(()) => (StatusCode::OK, None),
        // No category yet is the first step, not a mistake.
        Err(_) if form.category.is_empty() => (StatusCode::OK, None),
        Err(refused) => (StatusCode::BAD_REQUEST, Some(problem_of(refused))),
    };
    Ok(page(&viewer, &service, status, &form, problem.as_ref()))
}

pub async fn submit(
    req: HttpRequest,
    viewer: Viewer,
    service: Service,
    form: web::Form<TicketForm>,
) -> Result<HttpResponse, ConsoleError> {
    session::same_site(&req)?;
    viewer.check_csrf(&form.csrf)?;
    viewer
        .caller
        .authorize(Scope::Support)
        .map_err(ApiError::from)?;
    let typed = form.into_inner();
    let intake = match typed.clone().into_new_ticket().check(&service.settings) {
        Ok(intake) => intake,
        Err(refused) => {
            let problem = problem_of(refused);
            return Ok(page(
                &viewer,
                &service,
                StatusCode::BAD_REQUEST,
                &typed,
                Some(&problem),
            ));
        }
    };
    let (ticket, _similar) = service
        .create(intake, viewer.key_name())
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!("/tickets/{}?created=1", ticket.key()),
        ))
        .finish())
}

fn problem_of(refused: TicketError) -> Problem {
    match refused {
        TicketError::Invalid { field, reason } => Problem { field, reason },
        other => Problem {
            field: String::new(),
            reason: other.to_string(),
        },
    }
}

fn page(
    viewer: &Viewer,
    service: &Service,
    status: StatusCode,
    form: &TicketForm,
    problem: Option<&Problem>,
) -> HttpResponse {
    let settings = &service.settings;
    let known = settings.categories.contains(&form.category);
    let content = html! {
        @if let Some(problem) = problem {
            div.banner.critical role="alert" #problem {
                "The ticket was not created: "
                @if problem.field.is_empty() {
                    (problem.reason)
                } @else {
                    a href=(format!("#{}", problem.field)) { (field_label(&problem.field)) }
                    " " (problem.reason) "."
                }
            }
        }
        div #ticket-form {
            (category_step(service, form, problem))
            @if known {
                (fields(service, viewer, form, problem))
            }
        }
    };
    super::super::html(
        status,
        layout::page("New ticket", viewer, Section::Tickets, content),
    )
}

/// The first step: the category, whose template decides the fields.
fn category_step(service: &Service, form: &TicketForm, problem: Option<&Problem>) -> Markup {
    let error = problem.filter(|p| p.field == "category");
    html! {
        form.stack.step method="get" action="/tickets/new"
            hx-get="/tickets/new" hx-trigger="change from:#category" hx-target="#ticket-form"
            hx-select="#ticket-form" hx-swap="outerHTML" hx-push-url="true" {
            div.field {
                label for="category" { "Category " span.req { "(required)" } }
                select #category name="category" aria-required="true"
                    aria-describedby=[error.map(|_| "category-error")]
                    aria-invalid=[error.map(|_| "true")] {
                    option value="" selected[form.category.is_empty()] { "Choose a category" }
                    @for category in &service.settings.categories {
                        option value=(category) selected[*category == form.category] {
                            (category.replace('_', " "))
                        }
                    }
                }
                @if let Some(error) = error {
                    p.field-error #category-error { (error.reason) }
                }
            }
            div { button.secondary type="submit" { "Show its fields" } }
        }
    }
}

fn fields(
    service: &Service,
    viewer: &Viewer,
    form: &TicketForm,
    problem: Option<&Problem>,
) -> Markup {
    let settings = &service.settings;
    let required = required_fields(settings, &form.category);
    let template: Vec<&str> = required
        .iter()
        .copied()
        .filter(|f| TEMPLATE_FIELDS.contains(f))
        .collect();
    let optional: Vec<&str> = TEMPLATE_FIELDS
        .iter()
        .copied()
        .filter(|f| !template.contains(f))
        .collect();
    let priorities: Vec<(String, String)> = Priority::ALL
        .iter()
        .map(|p| (p.as_str().to_owned(), p.as_str().to_owned()))
        .collect();
    let levels = |values: &[String]| {
        values
            .iter()
            .map(|v| (v.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    html! {
        form.stack.intake method="post" action="/tickets/new" novalidate {
            input type="hidden" name="csrf" value=(viewer.csrf);
            input type="hidden" name="category" value=(form.category);
            fieldset {
                legend { "Required for a " strong { (form.category.replace('_', " ")) } " ticket" }
                (text_field("title", form, problem, true))
                (select_field("impact", form, problem, true, "Choose the impact", &levels(&settings.impacts)))
                (select_field("urgency", form, problem, true, "Choose the urgency", &levels(&settings.urgencies)))
                @for field in &template {
                    (text_field(field, form, problem, true))
                }
            }
            fieldset {
                legend { "Optional" }
                @for field in &optional {
                    (text_field(field, form, problem, false))
                }
                (text_field("tags", form, problem, false))
                (select_field("priority", form, problem, false, "From impact and urgency", &priorities))
                (text_field("priority_reason", form, problem, false))
            }
            div { button type="submit" { "Create ticket" } }
        }
    }
}

/// The error of `field`, if the refusal names it.
fn error_of<'a>(field: &str, problem: Option<&'a Problem>) -> Option<&'a Problem> {
    problem.filter(|p| p.field == field)
}

fn label(field: &str, required: bool) -> Markup {
    html! {
        label for=(field) {
            (field_label(field))
            @if required { " " span.req { "(required)" } }
        }
    }
}

fn error_line(field: &str, error: Option<&Problem>) -> Markup {
    html! {
        @if let Some(error) = error {
            p.field-error id=(format!("{field}-error")) { (field_label(field)) " " (error.reason) "." }
        }
    }
}

fn text_field(field: &str, form: &TicketForm, problem: Option<&Problem>, required: bool) -> Markup {
    let error = error_of(field, problem);
    let described = error.map(|_| format!("{field}-error"));
    let value = form.value(field);
    html! {
        div.field {
            (label(field, required))
            @if field == "description" {
                textarea id=(field) name=(field) rows="5" required[required]
                    aria-describedby=[described.as_deref()] aria-invalid=[error.map(|_| "true")]
                    autofocus[error.is_some()] { (value) }
            } @else {
                input id=(field) type="text" name=(field) value=(value) required[required]
                    aria-describedby=[described.as_deref()] aria-invalid=[error.map(|_| "true")]
                    autofocus[error.is_some()];
            }
            @if field == "tags" && error.is_none() {
                p.hint.muted { "Separate tags with commas." }
            }
            (error_line(field, error))
        }
    }
}

fn select_field(
    field: &str,
    form: &TicketForm,
    problem: Option<&Problem>,
    required: bool,
    none: &str,
    options: &[(String, String)],
) -> Markup {
    let error = error_of(field, problem);
    let chosen = form.value(field);
    html! {
        div.field {
            (label(field, required))
            select id=(field) name=(field) required[required]
                aria-describedby=[error.map(|_| format!("{field}-error"))]
                aria-invalid=[error.map(|_| "true")] autofocus[error.is_some()] {
                option value="" selected[chosen.is_empty()] { (none) }
                @for (value, text) in options {
                    option value=(value) selected[chosen == value] { (text) }
                }
            }
            (error_line(field, error))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_members_are_not_given_and_tags_are_split() {
        let form: TicketForm = serde_urlencoded::from_str(
            "csrf=x&category=bug&title=Pay+fails&impact=high&urgency=&release=&tags=web,+eu,,",
        )
        .unwrap();
        let new = form.into_new_ticket();
        assert_eq!(new.title.as_deref(), Some("Pay fails"));
        assert_eq!((new.urgency, new.release), (None, None));
        assert_eq!(new.tags, ["web", "eu"]);
    }
}
