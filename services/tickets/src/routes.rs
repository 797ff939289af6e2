//! The tickets HTTP API (see the crate documentation for the routes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use prometheus::{IntGaugeVec, Opts, Registry};
use serde::{Deserialize, Serialize};

use hypercare_http::auth::{AuthError, Caller, Scope};
use hypercare_http::body::JsonBody;
use hypercare_http::error::ErrorBody;
use hypercare_http::openapi::{BodyChecks, KeyChecks, SecuritySchemes, StoreChecks};
use hypercare_telemetry::metric_name;

use crate::clock::{SharedClock, SystemClock};
use crate::config::TicketSettings;
use crate::model::{Priority, State, TicketRow};
use crate::similar::{Similar, similar};
use crate::sla::{Sla, rfc3339_ms, sla};
use crate::store::{self, Filters, Sort, TicketRef};

/// What the ticket routes share; one per application.
pub struct TicketsState {
    pub settings: TicketSettings,
    pub store: clickhouse::Client,
    clock: SharedClock,
    /// One lock per ticket: its changes are read-check-append sequences.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Ticket numbers come from the highest one stored, one creation at a time.
    numbering: tokio::sync::Mutex<()>,
    gauges: Gauges,
}

#[derive(Clone)]
struct Gauges {
    open: IntGaugeVec,
    breached: IntGaugeVec,
}

impl TicketsState {
    pub fn new(
        settings: TicketSettings,
        store: clickhouse::Client,
        registry: &Registry,
    ) -> prometheus::Result<Self> {
        let open = IntGaugeVec::new(
            Opts::new(
                metric_name("tickets_open"),
                "Tickets not resolved, by priority.",
            ),
            &["priority"],
        )?;
        let breached = IntGaugeVec::new(
            Opts::new(
                metric_name("tickets_sla_breached"),
                "Open tickets past an SLA target, by priority and clock (first_response, resolution): feed for the alert tiers.",
            ),
            &["priority", "clock"],
        )?;
        registry.register(Box::new(open.clone()))?;
        registry.register(Box::new(breached.clone()))?;
        let clock = settings
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(SystemClock));
        Ok(Self {
            settings,
            store,
            clock,
            locks: Mutex::new(HashMap::new()),
            numbering: tokio::sync::Mutex::new(()),
            gauges: Gauges { open, breached },
        })
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn lock_for(&self, ticket_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        // Forget the locks nobody holds, so the map stays as small as the work in flight.
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(ticket_id.to_owned()).or_default().clone()
    }

    /// Recomputes the open and breached gauges from every ticket's current state.
    pub async fn refresh_gauges(&self) -> clickhouse::error::Result<()> {
        let tickets = store::all_current(&self.store).await?;
        let now = self.now_ms();
        self.gauges.open.reset();
        self.gauges.breached.reset();
        for priority in Priority::ALL {
            self.gauges
                .open
                .with_label_values(&[priority.as_str()])
                .set(0);
            for clock in ["first_response", "resolution"] {
                self.gauges
                    .breached
                    .with_label_values(&[priority.as_str(), clock])
                    .set(0);
            }
        }
        for ticket in tickets.iter().filter(|t| !t.state().is_done()) {
            let priority = ticket.priority().as_str();
            self.gauges.open.with_label_values(&[priority]).inc();
            let status = sla(ticket, &self.settings, now);
            if status.first_response.breached && status.first_response.met_at.is_none() {
                self.gauges
                    .breached
                    .with_label_values(&[priority, "first_response"])
                    .inc();
            }
            if status.resolution.breached {
                self.gauges
                    .breached
                    .with_label_values(&[priority, "resolution"])
                    .inc();
            }
        }
        Ok(())
    }

    /// Keeps the gauges fresh until the returned task is aborted.
    pub fn spawn_gauge_refresher(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        let every = Duration::from_secs(self.settings.metrics_refresh_secs.max(1));
        tokio::spawn(async move {
            loop {
                if let Err(error) = self.refresh_gauges().await {
                    tracing::warn!(%error, "Could not refresh the ticket gauges.");
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}

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

#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("`{field}` {reason}")]
    Invalid { field: String, reason: String },
    #[error("no ticket `{0}`")]
    NotFound(String),
    #[error("a ticket in state `{}` cannot move to `{}`; allowed: {}", from.as_str(), to.as_str(), allowed_list(*from))]
    IllegalMove { from: State, to: State },
    #[error(
        "the ticket is at version {current}, not {expected}: reload it and apply the change again"
    )]
    VersionConflict { expected: u32, current: u32 },
    #[error("the ClickHouse query failed: {0}; retry later")]
    Query(#[from] clickhouse::error::Error),
}

fn allowed_list(from: State) -> String {
    from.allowed()
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn invalid(field: &str, reason: impl Into<String>) -> TicketError {
    TicketError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

impl ResponseError for TicketError {
    fn status_code(&self) -> StatusCode {
        match self {
            TicketError::Auth(e) => e.status_code(),
            TicketError::Invalid { .. } => StatusCode::BAD_REQUEST,
            TicketError::NotFound(_) => StatusCode::NOT_FOUND,
            TicketError::IllegalMove { .. } | TicketError::VersionConflict { .. } => {
                StatusCode::CONFLICT
            }
            TicketError::Query(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let TicketError::Auth(e) = self {
            return e.error_response();
        }
        let code = match self {
            TicketError::Auth(_) => "unauthorized",
            TicketError::Invalid { .. } => "invalid_request",
            TicketError::NotFound(_) => "not_found",
            TicketError::IllegalMove { .. } => "illegal_transition",
            TicketError::VersionConflict { .. } => "version_conflict",
            TicketError::Query(_) => "query_failed",
        };
        let mut body = serde_json::json!({"error": code, "message": self.to_string()});
        match self {
            TicketError::Invalid { field, .. } => body["field"] = field.as_str().into(),
            TicketError::IllegalMove { from, .. } => {
                body["state"] = from.as_str().into();
                body["allowed"] = from.allowed().iter().map(|s| s.as_str()).collect();
            }
            TicketError::VersionConflict { current, .. } => {
                body["current_version"] = (*current).into();
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        if self.status_code() == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("Retry-After", "1"));
        }
        response.json(body)
    }
}

/// Reading needs `support` or `read`; changing needs `support` (or `admin`).
fn authorize_read(caller: &Caller) -> Result<(), TicketError> {
    let scope = if caller.0.has_scope(Scope::Support) {
        Scope::Support
    } else {
        Scope::Read
    };
    Ok(caller.authorize(scope)?)
}

/// A ticket as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Ticket)]
pub struct TicketView {
    pub id: String,
    pub key: String,
    pub version: u32,
    pub title: String,
    pub description: String,
    pub category: String,
    pub impact: String,
    pub urgency: String,
    pub priority: String,
    pub priority_reason: String,
    pub state: String,
    pub assignee: String,
    pub reporter: String,
    pub channel: String,
    pub affected_user: String,
    pub release: String,
    pub launch: String,
    pub tags: Vec<String>,
    pub links: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub resolution: String,
    pub sla: Sla,
}

impl TicketView {
    fn new(row: &TicketRow, settings: &TicketSettings, now_ms: u64) -> Self {
        Self {
            id: row.ticket_id.clone(),
            key: row.key(),
            version: row.version,
            title: row.title.clone(),
            description: row.description.clone(),
            category: row.category.clone(),
            impact: row.impact.clone(),
            urgency: row.urgency.clone(),
            priority: row.priority.clone(),
            priority_reason: row.priority_reason.clone(),
            state: row.state.clone(),
            assignee: row.assignee.clone(),
            reporter: row.reporter.clone(),
            channel: row.channel.clone(),
            affected_user: row.affected_user.clone(),
            release: row.release.clone(),
            launch: row.launch.clone(),
            tags: row.tags.clone(),
            links: row.links.clone(),
            created_at: rfc3339_ms(row.created_ms),
            updated_at: rfc3339_ms(row.at_ms),
            resolution: row.resolution.clone(),
            sla: sla(row, settings, now_ms),
        }
    }
}

/// One entry of a ticket's history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = TicketChange)]
struct Change {
    version: u32,
    change: String,
    actor: String,
    at: String,
    state: String,
    priority: String,
    assignee: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    comment: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    comment_visibility: String,
}

const MAX_TEXT: usize = 20_000;
const MAX_FIELD: usize = 200;

fn text_field(field: &str, value: Option<String>, max: usize) -> Result<String, TicketError> {
    let value = value.unwrap_or_default().trim().to_owned();
    if value.chars().count() > max {
        return Err(invalid(field, format!("is longer than {max} characters")));
    }
    Ok(value)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTicket {
    title: Option<String>,
    description: Option<String>,
    category: Option<String>,
    impact: Option<String>,
    urgency: Option<String>,
    /// Overrides the matrix; needs `priority_reason`.
    priority: Option<String>,
    priority_reason: Option<String>,
    channel: Option<String>,
    reporter: Option<String>,
    affected_user: Option<String>,
    release: Option<String>,
    launch: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    /// Links to alerts, KPIs, dashboards: free text such as `alert:abc` or a URL.
    #[serde(default)]
    links: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = TicketCreated)]
struct Created {
    ticket: TicketView,
    /// Open tickets of the same category that read alike: maybe the same problem.
    similar: Vec<Similar>,
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, TicketError> {
    serde_json::from_slice(body).map_err(|e| {
        let message = e.to_string();
        // serde names the unknown or mistyped field in its message.
        let field = message
            .split('`')
            .nth(1)
            .filter(|_| message.starts_with("unknown field") || message.contains("invalid type"))
            .unwrap_or("body")
            .to_owned();
        TicketError::Invalid {
            field,
            reason: format!("is not valid: {message}"),
        }
    })
}

/// Impact, urgency and the priority they give (or an override with its reason).
fn priority_of(
    settings: &TicketSettings,
    impact: &str,
    urgency: &str,
    priority: Option<&str>,
    reason: &str,
) -> Result<Priority, TicketError> {
    if !settings.impacts.iter().any(|i| i == impact) {
        return Err(invalid(
            "impact",
            format!("`{impact}` is not one of {}", settings.impacts.join(", ")),
        ));
    }
    if !settings.urgencies.iter().any(|u| u == urgency) {
        return Err(invalid(
            "urgency",
            format!(
                "`{urgency}` is not one of {}",
                settings.urgencies.join(", ")
            ),
        ));
    }
    let derived = settings
        .priority_for(impact, urgency)
        .ok_or_else(|| invalid("impact", "has no priority in the matrix"))?;
    match priority {
        None => Ok(derived),
        Some(text) => {
            let chosen = Priority::parse(text)
                .ok_or_else(|| invalid("priority", format!("`{text}` is not P1, P2, P3 or P4")))?;
            if chosen != derived && reason.is_empty() {
                return Err(invalid(
                    "priority_reason",
                    format!(
                        "is required to set {} where impact `{impact}` and urgency `{urgency}` give {}",
                        chosen.as_str(),
                        derived.as_str()
                    ),
                ));
            }
            Ok(chosen)
        }
    }
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
    state: web::Data<TicketsState>,
) -> Result<HttpResponse, TicketError> {
    caller.authorize(Scope::Support)?;
    let input: NewTicket = json_body(&body)?;
    let settings = &state.settings;
    let title = text_field("title", input.title, MAX_FIELD)?;
    if title.is_empty() {
        return Err(invalid("title", "is required"));
    }
    let category = input.category.unwrap_or_default();
    if category.is_empty() {
        return Err(invalid("category", "is required"));
    }
    if !settings.categories.contains(&category) {
        return Err(invalid(
            "category",
            format!(
                "`{category}` is not one of {}",
                settings.categories.join(", ")
            ),
        ));
    }
    let impact = input
        .impact
        .ok_or_else(|| invalid("impact", "is required"))?;
    let urgency = input
        .urgency
        .ok_or_else(|| invalid("urgency", "is required"))?;
    let priority_reason = text_field("priority_reason", input.priority_reason, MAX_FIELD)?;
    let priority = priority_of(
        settings,
        &impact,
        &urgency,
        input.priority.as_deref(),
        &priority_reason,
    )?;
    let description = text_field("description", input.description, MAX_TEXT)?;
    let affected_user = text_field("affected_user", input.affected_user, MAX_FIELD)?;
    let release = text_field("release", input.release, MAX_FIELD)?;
    let launch = text_field("launch", input.launch, MAX_FIELD)?;
    let reporter = text_field("reporter", input.reporter, MAX_FIELD)?;
    let channel = text_field("channel", input.channel, MAX_FIELD)?;
    if let Some(template) = settings.templates.get(&category) {
        for field in &template.required {
            let value = match field.as_str() {
                "description" => &description,
                "affected_user" => &affected_user,
                "release" => &release,
                "launch" => &launch,
                "reporter" => &reporter,
                _ => &channel,
            };
            if value.is_empty() {
                return Err(invalid(
                    field,
                    format!("is required for a `{category}` ticket (its intake template)"),
                ));
            }
        }
    }

    let candidates = store::open_in_category(&state.store, &category).await?;
    let suggestions = similar(&title, &description, &candidates);
    let now = state.now_ms();
    let row = {
        let _numbering = state.numbering.lock().await;
        let row = TicketRow {
            ticket_id: uuid::Uuid::new_v4().to_string(),
            number: store::next_number(&state.store).await?,
            version: 1,
            change: "created".into(),
            actor: caller.name().to_owned(),
            at_ms: now,
            title,
            description,
            category,
            impact,
            urgency,
            priority: priority.as_str().to_owned(),
            priority_reason,
            state: State::New.as_str().to_owned(),
            assignee: String::new(),
            reporter,
            channel,
            affected_user,
            release,
            launch,
            tags: input.tags,
            links: input.links,
            created_ms: now,
            first_response_ms: 0,
            resolved_ms: 0,
            closed_ms: 0,
            resolution: String::new(),
            comment: String::new(),
            comment_visibility: String::new(),
        };
        store::append(&state.store, &row).await?;
        row
    };
    tracing::info!(ticket = %row.key(), priority = %row.priority, "Ticket created.");
    Ok(HttpResponse::Created().json(Created {
        ticket: TicketView::new(&row, settings, now),
        similar: suggestions,
    }))
}

/// Applies `change` to the current version of a ticket, under its lock, after
/// checking the version the caller saw.
async fn change_ticket(
    state: &TicketsState,
    id: &str,
    expected_version: Option<u32>,
    change: impl FnOnce(&TicketRow, u64) -> Result<TicketRow, TicketError>,
) -> Result<TicketRow, TicketError> {
    let expected = expected_version.ok_or_else(|| {
        invalid(
            "expected_version",
            "is required: the version of the ticket you are changing",
        )
    })?;
    let current = store::latest(&state.store, &TicketRef::parse(id))
        .await?
        .ok_or_else(|| TicketError::NotFound(id.to_owned()))?;
    let lock = state.lock_for(&current.ticket_id);
    let _guard = lock.lock().await;
    // Read again under the lock: another change may have landed meanwhile.
    let current = store::latest(&state.store, &TicketRef::Id(current.ticket_id.clone()))
        .await?
        .ok_or_else(|| TicketError::NotFound(id.to_owned()))?;
    if current.version != expected {
        return Err(TicketError::VersionConflict {
            expected,
            current: current.version,
        });
    }
    let next = change(&current, state.now_ms())?;
    store::append(&state.store, &next).await?;
    Ok(next)
}

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
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),(status = 404, description = "No such ticket (`not_found`)", body = ErrorBody),(status = 409, description = "A move the state machine does not allow (`illegal_transition`, with `state` and `allowed`) or a stale `expected_version` (`version_conflict`, with `current_version`)", body = ErrorBody),
        KeyChecks, BodyChecks,
        StoreChecks,
    ))]
async fn transition(
    caller: Caller,
    path: web::Path<String>,
    body: JsonBody,
    state: web::Data<TicketsState>,
) -> Result<HttpResponse, TicketError> {
    caller.authorize(Scope::Support)?;
    let input: TransitionBody = json_body(&body)?;
    let to = State::parse(&input.to).ok_or_else(|| {
        invalid(
            "to",
            format!(
                "`{}` is not a state: {}",
                input.to,
                State::ALL.map(State::as_str).join(", ")
            ),
        )
    })?;
    let resolution = text_field("resolution", input.resolution, MAX_TEXT)?;
    let actor = caller.name().to_owned();
    let row = change_ticket(&state, &path, input.expected_version, |current, now| {
        let from = current.state();
        if !from.allowed().contains(&to) {
            return Err(TicketError::IllegalMove { from, to });
        }
        if to == State::Resolved && resolution.is_empty() {
            return Err(invalid("resolution", "is required to resolve a ticket"));
        }
        let mut next = current.next("transition", &actor, now);
        next.state = to.as_str().to_owned();
        if from == State::New && next.first_response_ms == 0 {
            next.first_response_ms = now;
        }
        match to {
            State::Resolved => {
                next.resolved_ms = now;
                next.resolution = resolution;
            }
            State::Closed => next.closed_ms = now,
            State::InProgress if from.is_done() => {
                // Reopened: the resolution clock runs again.
                next.resolved_ms = 0;
                next.closed_ms = 0;
                next.resolution = String::new();
            }
            _ => {}
        }
        Ok(next)
    })
    .await?;
    Ok(HttpResponse::Ok().json(TicketView::new(&row, &state.settings, state.now_ms())))
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
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),(status = 404, description = "No such ticket (`not_found`)", body = ErrorBody),(status = 409, description = "A move the state machine does not allow (`illegal_transition`, with `state` and `allowed`) or a stale `expected_version` (`version_conflict`, with `current_version`)", body = ErrorBody),
        KeyChecks, BodyChecks,
        StoreChecks,
    ))]
async fn assign(
    caller: Caller,
    path: web::Path<String>,
    body: JsonBody,
    state: web::Data<TicketsState>,
) -> Result<HttpResponse, TicketError> {
    caller.authorize(Scope::Support)?;
    let input: AssignBody = json_body(&body)?;
    let assignee = text_field("assignee", Some(input.assignee), MAX_FIELD)?;
    let actor = caller.name().to_owned();
    let row = change_ticket(&state, &path, input.expected_version, |current, now| {
        let mut next = current.next("assigned", &actor, now);
        next.assignee = assignee;
        Ok(next)
    })
    .await?;
    Ok(HttpResponse::Ok().json(TicketView::new(&row, &state.settings, state.now_ms())))
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
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),(status = 404, description = "No such ticket (`not_found`)", body = ErrorBody),(status = 409, description = "A move the state machine does not allow (`illegal_transition`, with `state` and `allowed`) or a stale `expected_version` (`version_conflict`, with `current_version`)", body = ErrorBody),
        KeyChecks, BodyChecks,
        StoreChecks,
    ))]
async fn comment(
    caller: Caller,
    path: web::Path<String>,
    body: JsonBody,
    state: web::Data<TicketsState>,
) -> Result<HttpResponse, TicketError> {
    caller.authorize(Scope::Support)?;
    let input: CommentBody = json_body(&body)?;
    let text = text_field("body", Some(input.body), MAX_TEXT)?;
    if text.is_empty() {
        return Err(invalid("body", "is required"));
    }
    let visibility = input.visibility.unwrap_or_else(|| "internal".into());
    if visibility != "internal" && visibility != "public" {
        return Err(invalid("visibility", "must be `internal` or `public`"));
    }
    let actor = caller.name().to_owned();
    let row = change_ticket(&state, &path, input.expected_version, |current, now| {
        let mut next = current.next("commented", &actor, now);
        if visibility == "public" && next.first_response_ms == 0 {
            next.first_response_ms = now;
        }
        next.comment = text;
        next.comment_visibility = visibility;
        Ok(next)
    })
    .await?;
    Ok(HttpResponse::Created().json(TicketView::new(&row, &state.settings, state.now_ms())))
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
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),(status = 404, description = "No such ticket (`not_found`)", body = ErrorBody),(status = 409, description = "A move the state machine does not allow (`illegal_transition`, with `state` and `allowed`) or a stale `expected_version` (`version_conflict`, with `current_version`)", body = ErrorBody),
        KeyChecks, BodyChecks,
        StoreChecks,
    ))]
async fn change_priority(
    caller: Caller,
    path: web::Path<String>,
    body: JsonBody,
    state: web::Data<TicketsState>,
) -> Result<HttpResponse, TicketError> {
    caller.authorize(Scope::Support)?;
    let input: PriorityBody = json_body(&body)?;
    let reason = text_field("reason", input.reason, MAX_FIELD)?;
    let actor = caller.name().to_owned();
    let settings = &state.settings;
    let row = change_ticket(&state, &path, input.expected_version, |current, now| {
        let impact = input.impact.unwrap_or_else(|| current.impact.clone());
        let urgency = input.urgency.unwrap_or_else(|| current.urgency.clone());
        let priority = priority_of(
            settings,
            &impact,
            &urgency,
            input.priority.as_deref(),
            &reason,
        )
        .map_err(|e| match e {
            TicketError::Invalid { field, reason } if field == "priority_reason" => {
                TicketError::Invalid {
                    field: "reason".into(),
                    reason,
                }
            }
            other => other,
        })?;
        let mut next = current.next("priority_changed", &actor, now);
        next.impact = impact;
        next.urgency = urgency;
        next.priority = priority.as_str().to_owned();
        next.priority_reason = reason;
        Ok(next)
    })
    .await?;
    Ok(HttpResponse::Ok().json(TicketView::new(&row, settings, state.now_ms())))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = TicketWithHistory)]
struct Shown {
    ticket: TicketView,
    history: Vec<Change>,
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
    state: web::Data<TicketsState>,
) -> Result<HttpResponse, TicketError> {
    authorize_read(&caller)?;
    let current = store::latest(&state.store, &TicketRef::parse(&path))
        .await?
        .ok_or_else(|| TicketError::NotFound(path.to_string()))?;
    let history = store::history(&state.store, &current.ticket_id)
        .await?
        .into_iter()
        .map(|row| Change {
            version: row.version,
            change: row.change,
            actor: row.actor,
            at: rfc3339_ms(row.at_ms),
            state: row.state,
            priority: row.priority,
            assignee: row.assignee,
            comment: row.comment,
            comment_visibility: row.comment_visibility,
        })
        .collect();
    Ok(HttpResponse::Ok().json(Shown {
        ticket: TicketView::new(&current, &state.settings, state.now_ms()),
        history,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    state: Option<String>,
    priority: Option<String>,
    category: Option<String>,
    assignee: Option<String>,
    release: Option<String>,
    launch: Option<String>,
    /// Words to find in the title or description (case-insensitive).
    q: Option<String>,
    /// `created` (default), `updated` or `priority`.
    sort: Option<String>,
    /// `desc` (default) or `asc`.
    order: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = TicketPage)]
struct Page {
    total: u64,
    offset: u64,
    limit: u64,
    tickets: Vec<TicketView>,
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
    state: web::Data<TicketsState>,
) -> Result<HttpResponse, TicketError> {
    authorize_read(&caller)?;
    let query = query.into_inner();
    if let Some(s) = &query.state
        && State::parse(s).is_none()
    {
        return Err(invalid("state", format!("`{s}` is not a state")));
    }
    if let Some(p) = &query.priority
        && Priority::parse(p).is_none()
    {
        return Err(invalid("priority", format!("`{p}` is not P1..P4")));
    }
    let sort = match query.sort.as_deref() {
        None => Sort::Created,
        Some(text) => Sort::parse(text)
            .ok_or_else(|| invalid("sort", "must be `created`, `updated` or `priority`"))?,
    };
    let descending = match query.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(invalid("order", "must be `asc` or `desc`")),
    };
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(invalid("limit", "must be between 1 and 500"));
    }
    let offset = query.offset.unwrap_or(0);
    let filters = Filters {
        state: query.state,
        priority: query.priority,
        category: query.category,
        assignee: query.assignee,
        release: query.release,
        launch: query.launch,
        text: query.q.filter(|q| !q.trim().is_empty()),
        created_from_ms: None,
        created_to_ms: None,
    };
    let (rows, total) =
        store::list(&state.store, &filters, sort, descending, offset, limit).await?;
    let now = state.now_ms();
    Ok(HttpResponse::Ok().json(Page {
        total,
        offset,
        limit,
        tickets: rows
            .iter()
            .map(|row| TicketView::new(row, &state.settings, now))
            .collect(),
    }))
}

/// The answer of `GET /v1/tickets/stats`.
#[derive(utoipa::ToSchema)]
#[schema(as = TicketStats)]
#[allow(dead_code)] // Only describes the JSON the handler writes.
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
    state: web::Data<TicketsState>,
) -> Result<HttpResponse, TicketError> {
    authorize_read(&caller)?;
    let date = |field: &str, text: &str| {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| invalid(field, format!("`{text}` is not a date such as 2026-11-22")))
    };
    let from = date("from", &query.from)?;
    let to = match &query.to {
        Some(text) => date("to", text)?,
        // Checked: `from` may be the last day chrono can represent.
        None => from
            .checked_add_days(chrono::Days::new(14))
            .ok_or_else(|| invalid("from", "is too far in the future"))?,
    };
    if to < from || (to - from).num_days() > 366 {
        return Err(invalid(
            "to",
            "must be on or after `from`, at most a year later",
        ));
    }
    let tz: chrono_tz::Tz = match &query.tz {
        None => chrono_tz::UTC,
        Some(name) => name
            .parse()
            .map_err(|_| invalid("tz", format!("`{name}` is not an IANA time zone")))?,
    };
    let tickets = store::all_current(&state.store).await?;
    let days = crate::stats::per_day(&tickets, from, to, tz, &state.settings, state.now_ms());
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "from": from.to_string(),
        "to": to.to_string(),
        "tz": tz.name(),
        "days": days,
    })))
}
