//! The tickets HTTP API (see the crate documentation for the routes). Each
//! handler authorizes, parses its input, calls [`TicketService`] with a rule
//! of [`crate::lifecycle`], and maps the answer; errors convert into the API's
//! one JSON error through [`TicketError`].

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use hypercare_http::auth::{Caller, Scope};
use hypercare_http::body::JsonBody;
use hypercare_http::error::{ApiError, ErrorBody, parse_json};
use hypercare_http::openapi::{BodyChecks, KeyChecks, SecuritySchemes, StoreChecks};

use crate::config::TicketSettings;
use crate::intake::{MAX_FIELD, NewTicket, text};
use crate::lifecycle::Regrade;
use crate::request::{self, Comment, ListQuery, ListRequest, Move};
use crate::service::TicketService;
use crate::view::{Created, HistoryEntry, Page, Shown, TicketView};

type Service = web::Data<TicketService>;

/// The ticket routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create, list, stats, show, transition, assign, comment, change_priority),
    modifiers(&SecuritySchemes),
    tags((name = "tickets", description = "Feedback tickets: intake, states, SLA, history, stats")))]
pub struct ApiDoc;

/// Puts this deployment's ticket vocabulary (categories, impacts, urgencies
/// from `[tickets]`) into the document as enums, so that clients and API
/// testing tools see what the intake accepts.
pub fn describe_settings(doc: &mut utoipa::openapi::OpenApi, settings: &TicketSettings) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    for (schema, field, values) in [
        ("NewTicket", "category", &settings.categories),
        ("NewTicket", "impact", &settings.impacts),
        ("NewTicket", "urgency", &settings.urgencies),
        ("PriorityBody", "impact", &settings.impacts),
        ("PriorityBody", "urgency", &settings.urgencies),
    ] {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema)
            && let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut(field)
        {
            property.enum_values = Some(values.iter().map(|v| v.as_str().into()).collect());
        }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/tickets", web::post().to(create))
        .route("/v1/tickets", web::get().to(list))
        .route("/v1/tickets/stats", web::get().to(stats))
        .route("/v1/tickets/{id}", web::get().to(show))
        .route("/v1/tickets/{id}/transition", web::post().to(transition))
        .route("/v1/tickets/{id}/assign", web::post().to(assign))
        .route("/v1/tickets/{id}/comments", web::post().to(comment))
        .route("/v1/tickets/{id}/priority", web::post().to(change_priority));
}

/// Reading needs `support` or `read`; changing needs `support` (or `admin`).
pub fn authorize_read(caller: &Caller) -> Result<(), ApiError> {
    let scope = if caller.0.has_scope(Scope::Support) {
        Scope::Support
    } else {
        Scope::Read
    };
    Ok(caller.authorize(scope)?)
}

/// Opens a ticket (scope `support`); priority from the impact x urgency matrix.
#[utoipa::path(post, path = "/v1/tickets", operation_id = "create_ticket", tag = "tickets", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    request_body(content((NewTicket = "application/json"))),
    responses(
        (status = 201, description = "Created, with open tickets that read alike", body = Created),
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        KeyChecks, BodyChecks,
        StoreChecks,
    ))]
async fn create(
    caller: Caller,
    body: JsonBody,
    service: Service,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Support)?;
    let intake = parse_json::<NewTicket>(&body)?.check(&service.settings)?;
    let (ticket, similar) = service.create(intake, caller.name()).await?;
    Ok(HttpResponse::Created().json(Created {
        ticket: service.view(ticket),
        similar,
    }))
}

/// The 409 of the routes that change a ticket.
const CHANGE_CONFLICTS: &str = "A move the state machine does not allow (`conflict`, with `state` and `allowed`) or a stale `expected_version` (`version_conflict`, with `current_version`)";

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TransitionBody {
    to: String,
    expected_version: Option<u32>,
    /// Required to resolve: what was done.
    resolution: Option<String>,
}

/// Moves a ticket to another state (scope `support`).
#[utoipa::path(post, path = "/v1/tickets/{id}/transition", tag = "tickets", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The ticket's id or key (e.g. `HC-12`)")),
    request_body(content((TransitionBody = "application/json"))),
    responses(
        (status = 200, description = "The ticket after the move", body = TicketView),
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        (status = 404, description = "No such ticket (`not_found`)", body = ErrorBody),
        (status = 409, description = CHANGE_CONFLICTS, body = ErrorBody),
        KeyChecks, BodyChecks,
        StoreChecks,
    ))]
async fn transition(
    caller: Caller,
    path: web::Path<String>,
    body: JsonBody,
    service: Service,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Support)?;
    let input: TransitionBody = parse_json(&body)?;
    let wanted = Move::parse(&input.to, input.resolution)?;
    let ticket = service
        .change(&path, input.expected_version, |current, now| {
            current.transition(wanted.to, &wanted.resolution, caller.name(), now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(service.view(ticket)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    assignee: String,
    expected_version: Option<u32>,
}

/// Assigns a ticket (scope `support`).
#[utoipa::path(post, path = "/v1/tickets/{id}/assign", tag = "tickets", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The ticket's id or key (e.g. `HC-12`)")),
    request_body(content((AssignBody = "application/json"))),
    responses(
        (status = 200, description = "The ticket after the change", body = TicketView),
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        (status = 404, description = "No such ticket (`not_found`)", body = ErrorBody),
        (status = 409, description = CHANGE_CONFLICTS, body = ErrorBody),
        KeyChecks, BodyChecks,
        StoreChecks,
    ))]
async fn assign(
    caller: Caller,
    path: web::Path<String>,
    body: JsonBody,
    service: Service,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Support)?;
    let input: AssignBody = parse_json(&body)?;
    let assignee = request::assignee(input.assignee)?;
    let ticket = service
        .change(&path, input.expected_version, |current, now| {
            Ok(current.assign(&assignee, caller.name(), now))
        })
        .await?;
    Ok(HttpResponse::Ok().json(service.view(ticket)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    body: String,
    /// `internal` (support only) or `public` (told to the user: counts as a response).
    visibility: Option<String>,
    expected_version: Option<u32>,
}

/// Adds a comment (scope `support`); a public one counts as the first response.
#[utoipa::path(post, path = "/v1/tickets/{id}/comments", tag = "tickets", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The ticket's id or key (e.g. `HC-12`)")),
    request_body(content((CommentBody = "application/json"))),
    responses(
        (status = 201, description = "The ticket after the comment", body = TicketView),
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        (status = 404, description = "No such ticket (`not_found`)", body = ErrorBody),
        (status = 409, description = CHANGE_CONFLICTS, body = ErrorBody),
        KeyChecks, BodyChecks,
        StoreChecks,
    ))]
async fn comment(
    caller: Caller,
    path: web::Path<String>,
    body: JsonBody,
    service: Service,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Support)?;
    let input: CommentBody = parse_json(&body)?;
    let comment = Comment::parse(input.body, input.visibility.as_deref())?;
    let ticket = service
        .change(&path, input.expected_version, |current, now| {
            Ok(current.comment(&comment.body, comment.visibility, caller.name(), now))
        })
        .await?;
    Ok(HttpResponse::Created().json(service.view(ticket)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PriorityBody {
    impact: Option<String>,
    urgency: Option<String>,
    priority: Option<String>,
    reason: Option<String>,
    expected_version: Option<u32>,
}

/// Changes impact, urgency or priority (scope `support`).
#[utoipa::path(post, path = "/v1/tickets/{id}/priority", tag = "tickets", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The ticket's id or key (e.g. `HC-12`)")),
    request_body(content((PriorityBody = "application/json"))),
    responses(
        (status = 200, description = "The ticket after the change", body = TicketView),
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        (status = 404, description = "No such ticket (`not_found`)", body = ErrorBody),
        (status = 409, description = CHANGE_CONFLICTS, body = ErrorBody),
        KeyChecks, BodyChecks,
        StoreChecks,
    ))]
async fn change_priority(
    caller: Caller,
    path: web::Path<String>,
    body: JsonBody,
    service: Service,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Support)?;
    let input: PriorityBody = parse_json(&body)?;
    let regrade = Regrade {
        impact: input.impact,
        urgency: input.urgency,
        priority: input.priority,
        reason: text("reason", input.reason, MAX_FIELD)?,
    };
    let settings = &service.settings;
    let ticket = service
        .change(&path, input.expected_version, |current, now| {
            current.regrade(settings, regrade, caller.name(), now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(service.view(ticket)))
}

/// A ticket with its history (scope `support` or `read`).
#[utoipa::path(get, path = "/v1/tickets/{id}", operation_id = "show_ticket", tag = "tickets", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The ticket's id or key (e.g. `HC-12`)")),
    responses(
        (status = 200, description = "The ticket and every change", body = Shown),
        (status = 404, description = "No such ticket (`not_found`)", body = ErrorBody),
        KeyChecks,
        StoreChecks,
    ))]
async fn show(
    caller: Caller,
    path: web::Path<String>,
    service: Service,
) -> Result<HttpResponse, ApiError> {
    authorize_read(&caller)?;
    let (current, history) = service.show(&path).await?;
    Ok(HttpResponse::Ok().json(Shown {
        ticket: service.view(current),
        history: history.into_iter().map(HistoryEntry::from).collect(),
    }))
}

/// Tickets filtered, searched and sorted (scope `support` or `read`).
#[utoipa::path(get, path = "/v1/tickets", operation_id = "list_tickets", tag = "tickets", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of tickets", body = Page),
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        KeyChecks,
        StoreChecks,
    ))]
async fn list(
    caller: Caller,
    query: web::Query<ListQuery>,
    service: Service,
) -> Result<HttpResponse, ApiError> {
    authorize_read(&caller)?;
    let ListRequest {
        filters,
        sort,
        descending,
        offset,
        limit,
    } = query.into_inner().check()?;
    let (rows, total) = service
        .list(&filters, sort, descending, offset, limit)
        .await?;
    Ok(HttpResponse::Ok().json(Page {
        total,
        offset,
        limit,
        tickets: rows.into_iter().map(|row| service.view(row)).collect(),
    }))
}

/// The answer of `GET /v1/tickets/stats`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = TicketStats)]
struct StatsAnswer {
    from: String,
    to: String,
    tz: String,
    days: Vec<crate::stats::DayStats>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct StatsQuery {
    /// First day, `YYYY-MM-DD` (for a launch: D0).
    #[param(format = Date)]
    from: String,
    /// Last day, inclusive; default `from` + 14 days (D+14).
    #[param(format = Date)]
    to: Option<String>,
    /// IANA time zone the days are cut in; default UTC.
    tz: Option<String>,
}

/// Per day: opened, resolved, closed, backlog, SLA breaches (scope `support` or `read`).
#[utoipa::path(get, path = "/v1/tickets/stats", operation_id = "ticket_stats", tag = "tickets", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(StatsQuery),
    responses(
        (status = 200, description = "One entry per day", body = StatsAnswer),
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        KeyChecks,
        StoreChecks,
    ))]
async fn stats(
    caller: Caller,
    query: web::Query<StatsQuery>,
    service: Service,
) -> Result<HttpResponse, ApiError> {
    authorize_read(&caller)?;
    let date = |field: &str, text: &str| {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            ApiError::invalid(field, format!("`{text}` is not a date such as 2026-11-22"))
        })
    };
    let from = date("from", &query.from)?;
    let to = match &query.to {
        Some(text) => date("to", text)?,
        // Checked: `from` may be the last day chrono can represent.
        None => from
            .checked_add_days(chrono::Days::new(14))
            .ok_or_else(|| ApiError::invalid("from", "is too far in the future"))?,
    };
    if to < from || (to - from).num_days() > 366 {
        return Err(ApiError::invalid(
            "to",
            "must be on or after `from`, at most a year later",
        ));
    }
    let tz: chrono_tz::Tz = match &query.tz {
        None => chrono_tz::UTC,
        Some(name) => name
            .parse()
            .map_err(|_| ApiError::invalid("tz", format!("`{name}` is not an IANA time zone")))?,
    };
    let days = service.stats(from, to, tz).await?;
    Ok(HttpResponse::Ok().json(StatsAnswer {
        from: from.to_string(),
        to: to.to_string(),
        tz: tz.name().to_owned(),
        days,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TicketError;

    #[test]
    fn an_unknown_or_mistyped_member_is_named() {
        let error = parse_json::<NewTicket>(br#"{"title": "x", "severity": "high"}"#).unwrap_err();
        assert_eq!(error.field(), Some("severity"), "{error}");
        let error = parse_json::<NewTicket>(br#"{"title": 5}"#).unwrap_err();
        assert_eq!(error.field(), Some("title"), "{error}");
    }

    #[test]
    fn a_domain_refusal_converts_once() {
        let error: ApiError = TicketError::invalid("to", "is not a state").into();
        assert_eq!(error.field(), Some("to"));
    }
}
