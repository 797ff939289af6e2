//! The alert API (see the crate documentation for the routes). Each handler
//! checks the key, parses, asks [`AlertState`] (the domain calls the console
//! makes too) or a pure module (`rollback`, `stats`), and writes the answer;
//! errors are [`AlertError`]s, converted into the API's error answer once.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::OpenApi;

use hypercare_http::auth::{Caller, Scope};
use hypercare_http::body::JsonBody;
use hypercare_http::error::{ApiError, ErrorBody, parse_json};
use hypercare_http::openapi::{KeyChecks, SecuritySchemes};

use crate::error::{Action, AlertError};
use crate::rule::Tier;
use crate::silence::{SilenceInput, parse_time};
use crate::view::AlertView;

pub use crate::state::AlertState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/alerts", web::get().to(list))
        // A resource of its own, before `{id}`: a GET here is a wrong method
        // (405), not the alert called "backtest" (404). Its own default
        // service, because a resource answers a method it lacks itself.
        .service(
            web::resource("/v1/alerts/backtest")
                .route(web::post().to(backtest))
                .default_service(web::to(hypercare_http::error::no_route)),
        )
        .route("/v1/alerts/history", web::get().to(history))
        .route("/v1/alerts/review", web::get().to(review))
        .route("/v1/alerts/notifications", web::get().to(notifications))
        .route("/v1/alerts/{id}", web::get().to(show))
        .route("/v1/alerts/{id}/ack", web::post().to(ack))
        .route("/v1/alerts/{id}/resolve", web::post().to(resolve))
        .route("/v1/slos", web::get().to(slos))
        .route("/v1/silences", web::get().to(list_silences))
        .route("/v1/silences", web::post().to(create_silence))
        .route("/v1/silences/{id}", web::get().to(show_silence))
        .route("/v1/silences/{id}", web::delete().to(expire_silence));
}

type Answer = Result<HttpResponse, ApiError>;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    tier: Option<String>,
    state: Option<String>,
}

/// Active alerts, most severe first, and whether a rollback is recommended (scope `read`).
#[utoipa::path(get, path = "/v1/alerts", operation_id = "list_alerts", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The alerts and the rollback recommendation", body = crate::schema::AlertBoard),
        (status = 400, description = "A query parameter is wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer (`storage_unavailable`, with Retry-After)", body = ErrorBody),
    ))]
async fn list(
    caller: Caller,
    query: web::Query<ListQuery>,
    state: web::Data<AlertState>,
) -> Answer {
    caller.authorize(Scope::Read)?;
    let tier = match &query.tier {
        Some(tier) => Some(
            Tier::parse(tier)
                .ok_or_else(|| AlertError::invalid("tier", "must be P0, P1, P2 or P3"))?,
        ),
        None => None,
    };
    let open = state.board(tier, query.state.as_deref()).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "rollback": crate::rollback::recommend(&open.alerts, open.rules),
        "alerts": open.alerts,
    })))
}

/// An alert and its changes (scope `read`).
#[utoipa::path(get, path = "/v1/alerts/{id}", operation_id = "show_alert", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The alert id")),
    responses(
        (status = 200, description = "The alert", body = crate::schema::AlertWithHistory),
        (status = 404, description = "No such alert (`not_found`)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer (`storage_unavailable`, with Retry-After)", body = ErrorBody),
    ))]
async fn show(caller: Caller, path: web::Path<String>, state: web::Data<AlertState>) -> Answer {
    caller.authorize(Scope::Read)?;
    let (alert, changes) = state.alert(&path).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "alert": alert,
        "history": changes,
    })))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct ActionBody {
    /// Who acts; default the key's name.
    by: Option<String>,
}

/// Acknowledges or resolves an alert; the body (`by`) is optional.
async fn act(
    action: Action,
    caller: Caller,
    id: &str,
    body: JsonBody,
    state: &AlertState,
) -> Answer {
    caller.authorize(Scope::Admin)?;
    let body: ActionBody = if body.is_empty() {
        ActionBody::default()
    } else {
        parse_json(&body)?
    };
    let by = body
        .by
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| caller.name().to_owned());
    Ok(HttpResponse::Ok().json(state.act(action, id, &by).await?))
}

/// Acknowledges a firing alert: stops repeats and escalation (scope `admin`).
#[utoipa::path(post, path = "/v1/alerts/{id}/ack", operation_id = "ack_alert", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The alert id")),
    request_body(content((ActionBody = "application/json"))),
    responses(
        (status = 200, description = "The alert after the ack", body = AlertView),
        (status = 400, description = "The body is wrong (`invalid_request`, `field` names it; `invalid_json`)", body = ErrorBody),
        (status = 404, description = "No such alert (`not_found`)", body = ErrorBody),
        (status = 409, description = "The alert is not firing (`conflict`; `state` says what it is)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer (`storage_unavailable`, with Retry-After), or this replica does not evaluate alerts (`not_evaluator`)", body = ErrorBody),
    ))]
async fn ack(
    caller: Caller,
    path: web::Path<String>,
    body: JsonBody,
    state: web::Data<AlertState>,
) -> Answer {
    act(Action::Ack, caller, &path, body, &state).await
}

/// Resolves an alert by hand (scope `admin`).
#[utoipa::path(post, path = "/v1/alerts/{id}/resolve", operation_id = "resolve_alert", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The alert id")),
    request_body(content((ActionBody = "application/json"))),
    responses(
        (status = 200, description = "The alert after the change", body = AlertView),
        (status = 400, description = "The body is wrong (`invalid_request`, `field` names it; `invalid_json`)", body = ErrorBody),
        (status = 404, description = "No such alert (`not_found`)", body = ErrorBody),
        (status = 409, description = "The alert is resolved already (`conflict`; `state` says so)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer (`storage_unavailable`, with Retry-After), or this replica does not evaluate alerts (`not_evaluator`)", body = ErrorBody),
    ))]
async fn resolve(
    caller: Caller,
    path: web::Path<String>,
    body: JsonBody,
    state: web::Data<AlertState>,
) -> Answer {
    act(Action::Resolve, caller, &path, body, &state).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// RFC 3339; default 24 h ago.
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339; default now.
    #[param(format = DateTime)]
    to: Option<String>,
    /// A local day, with `tz` (default UTC), instead of from/to.
    #[param(format = Date)]
    date: Option<String>,
    tz: Option<String>,
}

/// Alerts that fired in a span with time to acknowledge and resolve, MTTA / MTTR per tier (scope `read`).
#[utoipa::path(get, path = "/v1/alerts/history", operation_id = "alert_history", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(HistoryQuery),
    responses(
        (status = 200, description = "The alerts and per-tier times", body = crate::schema::AlertHistory),
        (status = 400, description = "A query parameter is wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer (`storage_unavailable`, with Retry-After)", body = ErrorBody),
    ))]
async fn history(
    caller: Caller,
    query: web::Query<HistoryQuery>,
    state: web::Data<AlertState>,
) -> Answer {
    caller.authorize(Scope::Read)?;
    let (from, to) = crate::stats::span(
        query.date.as_deref(),
        query.tz.as_deref(),
        query.from.as_deref(),
        query.to.as_deref(),
        state.now(),
    )?;
    Ok(HttpResponse::Ok().json(state.history(from, to).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReviewQuery {
    /// RFC 3339; default 24 h ago.
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339; default now. At most 92 days after `from`.
    #[param(format = DateTime)]
    to: Option<String>,
    /// A local day, with `tz` (default UTC), instead of from/to.
    #[param(format = Date)]
    date: Option<String>,
    tz: Option<String>,
    /// A firing resolved by its condition within this many minutes, never acknowledged, is noise (1..=1440, default 5).
    noise_minutes: Option<u64>,
    /// A firing within this many minutes of the same alert's resolution is a flap (1..=1440, default 10).
    flap_minutes: Option<u64>,
    /// Firings per day above which a higher threshold is suggested (default 10).
    busy_per_day: Option<f64>,
}

/// Noisy-alert review: per rule, firings, time firing, noise, flaps, time to ack, overlap with rollback triggers, and suggested changes (scope `read`).
#[utoipa::path(get, path = "/v1/alerts/review", operation_id = "alert_review", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(ReviewQuery),
    responses(
        (status = 200, description = "The rules that fired in the span, noisiest first, with suggestions", body = crate::review::Review),
        (status = 400, description = "A query parameter is wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer (`storage_unavailable`, with Retry-After)", body = ErrorBody),
    ))]
async fn review(
    caller: Caller,
    query: web::Query<ReviewQuery>,
    state: web::Data<AlertState>,
) -> Answer {
    caller.authorize(Scope::Read)?;
    let (from, to) = crate::stats::span(
        query.date.as_deref(),
        query.tz.as_deref(),
        query.from.as_deref(),
        query.to.as_deref(),
        state.now(),
    )?;
    let params = crate::review::ReviewParams::parse(
        query.noise_minutes,
        query.flap_minutes,
        query.busy_per_day,
    )?;
    Ok(HttpResponse::Ok().json(state.review(from, to, params).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct NotificationsQuery {
    /// RFC 3339; default the beginning.
    #[param(format = DateTime)]
    since: Option<String>,
    limit: Option<u64>,
}

/// Notification deliveries, newest first (scope `read`).
#[utoipa::path(get, path = "/v1/alerts/notifications", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(NotificationsQuery),
    responses(
        (status = 200, description = "The deliveries", body = crate::schema::Deliveries),
        (status = 400, description = "A query parameter is wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer (`storage_unavailable`, with Retry-After)", body = ErrorBody),
    ))]
async fn notifications(
    caller: Caller,
    query: web::Query<NotificationsQuery>,
    state: web::Data<AlertState>,
) -> Answer {
    caller.authorize(Scope::Read)?;
    let since = query
        .since
        .as_deref()
        .map(|s| parse_time("since", s))
        .transpose()?
        .unwrap_or(0);
    let rows = state.deliveries(since, query.limit.unwrap_or(100)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "deliveries": rows })))
}

/// Every SLO of the rule files with its SLI, error budget left and burn rates now (scope `read`).
#[utoipa::path(get, path = "/v1/slos", operation_id = "list_slos", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The SLOs, in the order of the rule files; one that cannot be measured says why in `error`", body = crate::schema::SloList),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer (`storage_unavailable`, with Retry-After)", body = ErrorBody),
    ))]
async fn slos(caller: Caller, state: web::Data<AlertState>) -> Answer {
    caller.authorize(Scope::Read)?;
    let at = state.now();
    let slos = state.slo_status(at).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "at": crate::notify::rfc3339_ms(at),
        "slos": slos,
    })))
}

/// Silences alerts whose labels match (scope `admin`), as Alertmanager's API takes it.
#[utoipa::path(post, path = "/v1/silences", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    request_body(content((SilenceInput = "application/json"))),
    responses(
        (status = 201, description = "The new silence's id", body = crate::schema::SilenceCreated),
        (status = 413, description = "The body is over the JSON limit (`payload_too_large`)", body = ErrorBody),
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it), or the body is not JSON (`invalid_json`, `empty_body`)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer (`storage_unavailable`, with Retry-After)", body = ErrorBody),
    ))]
async fn create_silence(caller: Caller, body: JsonBody, state: web::Data<AlertState>) -> Answer {
    caller.authorize(Scope::Admin)?;
    let input: SilenceInput = parse_json(&body)?;
    let silence = state.create_silence(input).await?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "silenceID": silence.id })))
}

/// Every silence (scope `read`).
#[utoipa::path(get, path = "/v1/silences", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The silences", body = Vec<crate::schema::SilenceView>),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer (`storage_unavailable`, with Retry-After)", body = ErrorBody),
    ))]
async fn list_silences(caller: Caller, state: web::Data<AlertState>) -> Answer {
    caller.authorize(Scope::Read)?;
    let silences = state.silences().await?;
    let now = state.now();
    Ok(HttpResponse::Ok().json(silences.iter().map(|s| s.to_json(now)).collect::<Vec<_>>()))
}

/// One silence (scope `read`).
#[utoipa::path(get, path = "/v1/silences/{id}", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The silence id")),
    responses(
        (status = 200, description = "The silence", body = crate::schema::SilenceView),
        (status = 404, description = "No such silence (`not_found`)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer (`storage_unavailable`, with Retry-After)", body = ErrorBody),
    ))]
async fn show_silence(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AlertState>,
) -> Answer {
    caller.authorize(Scope::Read)?;
    let silence = state.find_silence(&path).await?;
    Ok(HttpResponse::Ok().json(silence.to_json(state.now())))
}

/// Expires a silence now; it is kept, as in Alertmanager (scope `admin`).
#[utoipa::path(delete, path = "/v1/silences/{id}", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The silence id")),
    responses(
        (status = 200, description = "The silence, expired", body = crate::schema::SilenceView),
        (status = 404, description = "No such silence (`not_found`)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer (`storage_unavailable`, with Retry-After)", body = ErrorBody),
    ))]
async fn expire_silence(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AlertState>,
) -> Answer {
    caller.authorize(Scope::Admin)?;
    let shown = state.expire_silence(&path).await?;
    Ok(HttpResponse::Ok().json(shown.to_json(state.now())))
}

/// Replays rules over a past window: when each alert would have gone
/// pending, firing and resolved, and the notifications it would have sent;
/// nothing is written or sent (scope `read`: it reads past data and changes
/// nothing; its cost is bounded by the step and rule limits and a deadline).
#[utoipa::path(post, path = "/v1/alerts/backtest", operation_id = "backtest_alerts", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    request_body = crate::backtest::BacktestRequest,
    responses(
        (status = 200, description = "The transitions, notifications and threshold sweep", body = crate::backtest::Outcome),
        (status = 400, description = "A bad time, rule file, rule name, threshold, or a window over the limits (`invalid_request`, `field` names it)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer (`storage_unavailable`, with Retry-After)", body = ErrorBody),
        (status = 504, description = "The backtest ran past its deadline (`query_too_slow`)", body = ErrorBody),
    ))]
async fn backtest(caller: Caller, body: JsonBody, state: web::Data<AlertState>) -> Answer {
    caller.authorize(Scope::Read)?;
    let request: crate::backtest::BacktestRequest = parse_json(&body)?;
    Ok(HttpResponse::Ok().json(state.backtest(request).await?))
}

/// The alert and silence routes in the OpenAPI document (`GET /v1/openapi.json`).
#[derive(OpenApi)]
#[openapi(
    paths(
        list,
        backtest,
        history,
        review,
        notifications,
        slos,
        show,
        ack,
        resolve,
        list_silences,
        create_silence,
        show_silence,
        expire_silence,
    ),
    modifiers(&SecuritySchemes),
    tags((name = "alerts", description = "Tiered alerts, rollback recommendation, silences, MTTA/MTTR, SLOs and error budgets"))
)]
pub struct ApiDoc;
