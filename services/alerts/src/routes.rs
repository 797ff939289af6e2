//! The alert API (see the crate documentation for the routes).

use hypercare_storage::ReadOnly;
use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use serde::{Deserialize, Serialize};

use hypercare_http::auth::{AuthError, Caller, Scope};
use hypercare_http::error::ErrorBody;
use hypercare_http::openapi::KeyChecks;

use crate::config::Inhibition;
use crate::engine::{ActionError, Engine, muted};
use crate::matcher::{Matcher, Op};
use crate::now_ms;
use crate::rule::Tier;
use crate::store::{self, AlertRow, Silence, SilenceRow};

pub struct AlertState {
    pub store: clickhouse::Client,
    /// Present on the replica that evaluates.
    pub engine: Option<Arc<Engine>>,
    pub settings: crate::config::AlertSettings,
    pub inhibitions: Vec<Inhibition>,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/alerts", web::get().to(list))
        .route("/v1/alerts/history", web::get().to(history))
        .route("/v1/alerts/notifications", web::get().to(notifications))
        .route("/v1/alerts/{id}", web::get().to(show))
        .route("/v1/alerts/{id}/ack", web::post().to(ack))
        .route("/v1/alerts/{id}/resolve", web::post().to(resolve))
        .route("/v1/silences", web::get().to(list_silences))
        .route("/v1/silences", web::post().to(create_silence))
        .route("/v1/silences/{id}", web::get().to(show_silence))
        .route("/v1/silences/{id}", web::delete().to(expire_silence));
}

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("`{field}` {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Action(ActionError),
    #[error(
        "this replica does not run the alert evaluator; send alert actions to the one with [alerts] evaluate = true"
    )]
    NotEvaluator,
    #[error("ClickHouse: {0}")]
    Store(#[from] clickhouse::error::Error),
}

impl From<ActionError> for AlertError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::Store(e) => AlertError::Store(e),
            other => AlertError::Action(other),
        }
    }
}

impl ResponseError for AlertError {
    fn status_code(&self) -> StatusCode {
        match self {
            AlertError::Auth(e) => e.status_code(),
            AlertError::Invalid { .. } => StatusCode::BAD_REQUEST,
            AlertError::NotFound(_) | AlertError::Action(ActionError::NotFound(_)) => {
                StatusCode::NOT_FOUND
            }
            AlertError::Action(_) => StatusCode::CONFLICT,
            AlertError::NotEvaluator | AlertError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AlertError::Auth(e) = self {
            return e.error_response();
        }
        let code = match self {
            AlertError::Invalid { .. } => "invalid",
            AlertError::NotFound(_) | AlertError::Action(ActionError::NotFound(_)) => "not_found",
            AlertError::Action(_) => "wrong_state",
            AlertError::NotEvaluator => "not_evaluator",
            _ => "storage_unavailable",
        };
        let field = match self {
            AlertError::Invalid { field, .. } => Some(field.clone()),
            _ => None,
        };
        let mut body = serde_json::json!({
            "error": code,
            "message": self.to_string(),
            "field": field,
        });
        // A conflict says what the alert is, so the client need not ask again.
        if let AlertError::Action(ActionError::WrongState { state, .. }) = self {
            body["state"] = state.as_str().into();
        }
        HttpResponse::build(self.status_code()).json(body)
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> AlertError {
    AlertError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

fn rfc3339(ms: u64) -> Option<String> {
    (ms > 0).then(|| crate::notify::rfc3339_ms(ms))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Alert)]
pub(crate) struct AlertView {
    id: String,
    rule: String,
    tier: String,
    /// pending, firing, acknowledged or resolved.
    state: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    value: f64,
    since: Option<String>,
    fired_at: Option<String>,
    acked_at: Option<String>,
    acked_by: Option<String>,
    resolved_at: Option<String>,
    resolved_by: Option<String>,
    silenced: bool,
    inhibited: bool,
    /// Firing longer than the tier's acknowledge SLA without an ack.
    ack_overdue: bool,
    escalation_level: u8,
    rollback_trigger: bool,
    fingerprint: String,
}

fn view(
    row: &AlertRow,
    open: &[AlertRow],
    silences: &[Silence],
    state: &AlertState,
    now: u64,
) -> AlertView {
    let (silenced, inhibited) = muted(row, open, silences, &state.inhibitions, now);
    let ack_sla = Tier::parse(&row.tier)
        .and_then(|t| state.settings.tiers.get(&t))
        .map(|p| p.ack_sla.as_millis() as u64);
    let policy = Tier::parse(&row.tier).and_then(|t| state.settings.tiers.get(&t));
    let acked = policy.map_or(row.acked_ms > 0, |p| p.ack_holds(row.acked_ms, now));
    let shown_state = match row.state.as_str() {
        "firing" if acked => "acknowledged",
        other => other,
    };
    AlertView {
        id: row.alert_id.clone(),
        rule: row.rule.clone(),
        tier: row.tier.clone(),
        state: shown_state.to_owned(),
        labels: row.labels(),
        annotations: row.annotations(),
        value: row.value,
        since: rfc3339(row.started_ms),
        fired_at: rfc3339(row.fired_ms),
        acked_at: rfc3339(row.acked_ms),
        acked_by: (!row.acked_by.is_empty()).then(|| row.acked_by.clone()),
        resolved_at: rfc3339(row.resolved_ms),
        resolved_by: (!row.resolved_by.is_empty()).then(|| row.resolved_by.clone()),
        silenced,
        inhibited,
        ack_overdue: row.state == "firing"
            && row.acked_ms == 0
            && ack_sla.is_some_and(|sla| now.saturating_sub(row.fired_ms) > sla),
        escalation_level: row.escalation_level,
        rollback_trigger: row.rollback == 1,
        fingerprint: row.fingerprint.clone(),
    }
}

async fn open_alerts(state: &AlertState) -> Result<(Vec<AlertRow>, Vec<Silence>), AlertError> {
    Ok(match &state.engine {
        Some(engine) => engine.open().await,
        None => (
            store::open_alerts(&state.store).await?,
            store::silences(&state.store).await?,
        ),
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    tier: Option<String>,
    state: Option<String>,
}

/// Active alerts, most severe first, and whether a rollback is recommended.
/// Active alerts, most severe first, and whether a rollback is recommended (scope `read`).
#[utoipa::path(get, path = "/v1/alerts", operation_id = "list_alerts", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The alerts and the rollback recommendation", body = crate::api_doc::AlertBoard),
        (status = 400, description = "A field is missing or wrong (`invalid`, `field` names it)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer, or this replica does not evaluate alerts (`not_evaluator`)", body = ErrorBody),
    ))]
async fn list(
    caller: Caller,
    query: web::Query<ListQuery>,
    state: web::Data<AlertState>,
) -> Result<HttpResponse, AlertError> {
    caller.authorize(Scope::Read)?;
    if let Some(tier) = &query.tier
        && Tier::parse(tier).is_none()
    {
        return Err(invalid("tier", "must be P0, P1, P2 or P3"));
    }
    let (open, silences) = open_alerts(&state).await?;
    let now = now_ms();
    let mut alerts: Vec<AlertView> = open
        .iter()
        .map(|row| view(row, &open, &silences, &state, now))
        .filter(|v| query.tier.as_ref().is_none_or(|t| &v.tier == t))
        .filter(|v| query.state.as_ref().is_none_or(|s| &v.state == s))
        .collect();
    alerts.sort_by(|a, b| a.tier.cmp(&b.tier).then(a.since.cmp(&b.since)));
    let triggers: Vec<serde_json::Value> = alerts
        .iter()
        .filter(|a| a.rollback_trigger && (a.state == "firing" || a.state == "acknowledged"))
        .map(|a| {
            serde_json::json!({
                "alert": a.id,
                "rule": a.rule,
                "labels": a.labels,
                "value": a.value,
                "since": a.fired_at,
                "summary": a.annotations.get("summary"),
                "condition": state.engine.as_ref().and_then(|e| e.rules.iter().find(|r| r.name == a.rule)).map(|r| &r.condition),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "rollback": {
            "state": if triggers.is_empty() { "none" } else { "rollback_recommended" },
            "evidence": triggers,
        },
        "alerts": alerts,
    })))
}

const ONE_ALERT_SQL: &str = "SELECT alert_id, version, fingerprint, rule, tier, state, label_keys, \
     label_values, annotation_keys, annotation_values, value, rollback, started_ms, fired_ms, \
     acked_ms, acked_by, resolved_ms, resolved_by, escalation_level, change, at_ms \
     FROM alert_events WHERE alert_id = ? ORDER BY version";

/// An alert and its changes (scope `read`).
#[utoipa::path(get, path = "/v1/alerts/{id}", operation_id = "show_alert", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The alert id")),
    responses(
        (status = 200, description = "The alert", body = crate::api_doc::AlertWithHistory),
        (status = 404, description = "No such alert or silence (`not_found`)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer, or this replica does not evaluate alerts (`not_evaluator`)", body = ErrorBody),
    ))]
async fn show(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AlertState>,
) -> Result<HttpResponse, AlertError> {
    caller.authorize(Scope::Read)?;
    let id = path.into_inner();
    let versions: Vec<AlertRow> = state
        .store
        .query(ONE_ALERT_SQL)
        .bind(id.as_str())
        .read_only()
        .fetch_all()
        .await?;
    let Some(latest) = versions.last() else {
        return Err(AlertError::NotFound(format!("no alert `{id}`")));
    };
    let (open, silences) = open_alerts(&state).await?;
    let changes: Vec<serde_json::Value> = versions
        .iter()
        .map(|v| serde_json::json!({"version": v.version, "change": v.change, "at": rfc3339(v.at_ms), "state": v.state}))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "alert": view(latest, &open, &silences, &state, now_ms()),
        "history": changes,
    })))
}

/// An alert the evaluator no longer keeps: resolved (409 with its state) if
/// `alert_events` knows it, else unknown (404).
async fn closed(
    state: &AlertState,
    id: String,
    action: &'static str,
) -> Result<ActionError, AlertError> {
    let versions: Vec<AlertRow> = state
        .store
        .query(ONE_ALERT_SQL)
        .bind(id.as_str())
        .read_only()
        .fetch_all()
        .await?;
    Ok(match versions.last() {
        Some(latest) => ActionError::WrongState {
            id,
            state: latest.state.clone(),
            action,
        },
        None => ActionError::NotFound(id),
    })
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct ActionBody {
    /// Who acts; default the key's name.
    by: Option<String>,
}

fn actor(caller: &Caller, body: &Option<web::Json<ActionBody>>) -> String {
    body.as_ref()
        .and_then(|b| b.by.clone())
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| caller.name().to_owned())
}

/// Acknowledges a firing alert (scope `admin`).
#[utoipa::path(post, path = "/v1/alerts/{id}/ack", operation_id = "ack_alert", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The alert id")),
    request_body(content((ActionBody = "application/json"))),
    responses(
        (status = 200, description = "The alert after the ack", body = AlertView),
        (status = 404, description = "No such alert or silence (`not_found`)", body = ErrorBody),
        (status = 409, description = "The alert is not in a state that allows this (`wrong_state`)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer, or this replica does not evaluate alerts (`not_evaluator`)", body = ErrorBody),
    ))]
async fn ack(
    caller: Caller,
    path: web::Path<String>,
    body: Option<web::Json<ActionBody>>,
    state: web::Data<AlertState>,
) -> Result<HttpResponse, AlertError> {
    caller.authorize(Scope::Admin)?;
    let engine = state.engine.as_ref().ok_or(AlertError::NotEvaluator)?;
    let row = match engine.ack(&path, &actor(&caller, &body)).await {
        Err(ActionError::NotFound(id)) => Err(closed(&state, id, "acknowledged").await?),
        other => other,
    }?;
    let (open, silences) = engine.open().await;
    Ok(HttpResponse::Ok().json(view(&row, &open, &silences, &state, now_ms())))
}

/// Resolves an alert by hand (scope `admin`).
#[utoipa::path(post, path = "/v1/alerts/{id}/resolve", operation_id = "resolve_alert", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The alert id")),
    request_body(content((ActionBody = "application/json"))),
    responses(
        (status = 200, description = "The alert after the change", body = AlertView),
        (status = 404, description = "No such alert or silence (`not_found`)", body = ErrorBody),
        (status = 409, description = "The alert is not in a state that allows this (`wrong_state`)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer, or this replica does not evaluate alerts (`not_evaluator`)", body = ErrorBody),
    ))]
async fn resolve(
    caller: Caller,
    path: web::Path<String>,
    body: Option<web::Json<ActionBody>>,
    state: web::Data<AlertState>,
) -> Result<HttpResponse, AlertError> {
    caller.authorize(Scope::Admin)?;
    let engine = state.engine.as_ref().ok_or(AlertError::NotEvaluator)?;
    let row = match engine.resolve(&path, &actor(&caller, &body)).await {
        Err(ActionError::NotFound(id)) => Err(closed(&state, id, "resolved").await?),
        other => other,
    }?;
    let (open, silences) = engine.open().await;
    Ok(HttpResponse::Ok().json(view(&row, &open, &silences, &state, now_ms())))
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

/// 9999-12-31T23:59:59.999Z, the last time RFC 3339 can write.
const LAST_RFC3339_MS: u64 = 253_402_300_799_999;

fn parse_time(field: &str, text: &str) -> Result<u64, AlertError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis().max(0) as u64)
        .map_err(|e| invalid(field, format!("must be an RFC 3339 time: {e}")))
}

/// Alerts that fired in a span, with time to acknowledge and to resolve, and
/// MTTA / MTTR per tier.
/// Alerts that fired in a span with time to acknowledge and resolve, MTTA / MTTR per tier (scope `read`).
#[utoipa::path(get, path = "/v1/alerts/history", operation_id = "alert_history", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(HistoryQuery),
    responses(
        (status = 200, description = "The alerts and per-tier times", body = crate::api_doc::AlertHistory),
        (status = 400, description = "A field is missing or wrong (`invalid`, `field` names it)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer, or this replica does not evaluate alerts (`not_evaluator`)", body = ErrorBody),
    ))]
async fn history(
    caller: Caller,
    query: web::Query<HistoryQuery>,
    state: web::Data<AlertState>,
) -> Result<HttpResponse, AlertError> {
    caller.authorize(Scope::Read)?;
    let now = now_ms();
    let (from, to) =
        match (&query.date, &query.from, &query.to) {
            (Some(date), None, None) => {
                use chrono::TimeZone;
                let tz: chrono_tz::Tz =
                    query.tz.as_deref().unwrap_or("UTC").parse().map_err(|_| {
                        invalid("tz", "is not an IANA time zone, e.g. Europe/Paris")
                    })?;
                let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
                    .map_err(|_| invalid("date", "must be YYYY-MM-DD"))?;
                let start = |d: chrono::NaiveDate| {
                    tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
                        .earliest()
                        .map_or(0, |t| t.timestamp_millis().max(0) as u64)
                };
                (start(day), start(day.succ_opt().unwrap_or(day)))
            }
            (None, from, to) => (
                from.as_deref()
                    .map(|f| parse_time("from", f))
                    .transpose()?
                    .unwrap_or(now.saturating_sub(86_400_000)),
                to.as_deref()
                    .map(|t| parse_time("to", t))
                    .transpose()?
                    .unwrap_or(now),
            ),
            _ => return Err(invalid("date", "cannot be combined with from/to")),
        };
    if from >= to {
        return Err(invalid("to", "must be after from"));
    }
    let rows = store::history(&state.store, from, to).await?;
    let mut per_tier: BTreeMap<String, (u64, Vec<u64>, Vec<u64>)> = BTreeMap::new();
    let alerts: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let tta = (r.acked_ms > 0).then(|| r.acked_ms.saturating_sub(r.fired_ms));
            let ttr = (r.resolved_ms > 0).then(|| r.resolved_ms.saturating_sub(r.fired_ms));
            let entry = per_tier.entry(r.tier.clone()).or_default();
            entry.0 += 1;
            entry.1.extend(tta);
            entry.2.extend(ttr);
            serde_json::json!({
                "id": r.alert_id, "rule": r.rule, "tier": r.tier, "state": r.state,
                "labels": r.labels(), "fired_at": rfc3339(r.fired_ms),
                "acked_at": rfc3339(r.acked_ms), "acked_by": r.acked_by,
                "resolved_at": rfc3339(r.resolved_ms), "resolved_by": r.resolved_by,
                "time_to_ack_secs": tta.map(|ms| ms as f64 / 1000.0),
                "time_to_resolve_secs": ttr.map(|ms| ms as f64 / 1000.0),
                "rollback_trigger": r.rollback == 1,
            })
        })
        .collect();
    let mean =
        |v: &[u64]| (!v.is_empty()).then(|| v.iter().sum::<u64>() as f64 / v.len() as f64 / 1000.0);
    let tiers: BTreeMap<String, serde_json::Value> = per_tier
        .iter()
        .map(|(tier, (n, tta, ttr))| {
            (
                tier.clone(),
                serde_json::json!({"alerts": n, "acked": tta.len(), "resolved": ttr.len(),
                                   "mtta_secs": mean(tta), "mttr_secs": mean(ttr)}),
            )
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "from": rfc3339(from), "to": rfc3339(to), "tiers": tiers, "alerts": alerts,
    })))
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
        (status = 200, description = "The deliveries", body = crate::api_doc::Deliveries),
        (status = 400, description = "A field is missing or wrong (`invalid`, `field` names it)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer, or this replica does not evaluate alerts (`not_evaluator`)", body = ErrorBody),
    ))]
async fn notifications(
    caller: Caller,
    query: web::Query<NotificationsQuery>,
    state: web::Data<AlertState>,
) -> Result<HttpResponse, AlertError> {
    caller.authorize(Scope::Read)?;
    let since = query
        .since
        .as_deref()
        .map(|s| parse_time("since", s))
        .transpose()?
        .unwrap_or(0);
    let limit = query.limit.unwrap_or(100).clamp(1, 10_000);
    let mut rows = store::deliveries(&state.store, since, limit).await?;
    // Rows recorded before URLs were stored redacted still hold the whole URL.
    for row in &mut rows {
        row.url = crate::notify::redact_url(&row.url);
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "deliveries": rows })))
}

/// Matchers as Alertmanager's API takes them, or as `name="value"` strings.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum MatcherInput {
    Text(String),
    Object {
        name: String,
        value: String,
        #[serde(rename = "isRegex", default)]
        is_regex: bool,
        #[serde(rename = "isEqual", default = "yes")]
        is_equal: bool,
    },
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SilenceInput {
    matchers: Vec<MatcherInput>,
    #[serde(rename = "startsAt", default)]
    #[schema(format = DateTime)]
    starts_at: Option<String>,
    #[serde(rename = "endsAt", default)]
    #[schema(format = DateTime)]
    ends_at: Option<String>,
    /// Instead of endsAt: `2h`, `30m`.
    #[serde(default)]
    duration: Option<String>,
    #[serde(rename = "createdBy")]
    created_by: String,
    comment: String,
}

fn silence_json(s: &Silence, now: u64) -> serde_json::Value {
    serde_json::json!({
        "id": s.id, "status": {"state": s.state(now)},
        "matchers": s.matchers.iter().map(|m| serde_json::json!({
            "name": m.name, "value": m.value,
            "isRegex": matches!(m.op, Op::Re | Op::NotRe),
            "isEqual": matches!(m.op, Op::Eq | Op::Re),
        })).collect::<Vec<_>>(),
        "startsAt": rfc3339(s.starts_ms), "endsAt": rfc3339(s.ends_ms),
        "createdBy": s.created_by, "comment": s.comment,
    })
}

/// Silences alerts whose labels match (scope `admin`), as Alertmanager's API takes it.
#[utoipa::path(post, path = "/v1/silences", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    request_body(content((SilenceInput = "application/json"))),
    responses(
        (status = 201, description = "The new silence's id", body = crate::api_doc::SilenceCreated),
        (status = 413, description = "The body is over the JSON limit (`payload_too_large`)", body = ErrorBody),
        (status = 400, description = "A field is missing or wrong (`invalid`, `field` names it)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer, or this replica does not evaluate alerts (`not_evaluator`)", body = ErrorBody),
    ))]
async fn create_silence(
    caller: Caller,
    body: web::Json<SilenceInput>,
    state: web::Data<AlertState>,
) -> Result<HttpResponse, AlertError> {
    caller.authorize(Scope::Admin)?;
    let input = body.into_inner();
    if input.matchers.is_empty() {
        return Err(invalid(
            "matchers",
            "needs at least one matcher (a silence of everything is refused)",
        ));
    }
    let mut matchers = Vec::new();
    for (i, m) in input.matchers.iter().enumerate() {
        let parsed = match m {
            MatcherInput::Text(text) => Matcher::parse(text),
            MatcherInput::Object {
                name,
                value,
                is_regex,
                is_equal,
            } => {
                let op = match (is_regex, is_equal) {
                    (false, true) => Op::Eq,
                    (false, false) => Op::Ne,
                    (true, true) => Op::Re,
                    (true, false) => Op::NotRe,
                };
                Matcher::new(name, op, value)
            }
        };
        matchers.push(parsed.map_err(|e| invalid(&format!("matchers[{i}]"), e))?);
    }
    if input.created_by.trim().is_empty() {
        return Err(invalid("createdBy", "is required: who silenced this"));
    }
    if input.comment.trim().is_empty() {
        return Err(invalid("comment", "is required: why it is silenced"));
    }
    let now = now_ms();
    let starts = input
        .starts_at
        .as_deref()
        .map(|s| parse_time("startsAt", s))
        .transpose()?
        .unwrap_or(now);
    let ends = match (&input.ends_at, &input.duration) {
        (Some(e), None) => parse_time("endsAt", e)?,
        (None, Some(d)) => {
            let d = crate::duration::parse(d).map_err(|reason| invalid("duration", reason))?;
            // Checked: `18446744073709551615s` overflowed the sum and panicked.
            u64::try_from(d.as_millis())
                .ok()
                .and_then(|ms| starts.checked_add(ms))
                .filter(|&end| end <= LAST_RFC3339_MS)
                .ok_or_else(|| invalid("duration", "is too long: a silence ends by year 9999"))?
        }
        _ => return Err(invalid("endsAt", "give either endsAt or duration")),
    };
    if ends <= starts || ends <= now {
        return Err(invalid(
            "endsAt",
            "must be after startsAt and in the future",
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let row = SilenceRow {
        silence_id: id.clone(),
        version: 1,
        matchers: serde_json::to_string(&matchers).unwrap_or_default(),
        starts_ms: starts,
        ends_ms: ends,
        created_by: input.created_by,
        comment: input.comment,
        at_ms: now,
    };
    store::save_silence(&state.store, &row).await?;
    if let Some(engine) = &state.engine {
        engine.reload_silences().await?;
    }
    Ok(HttpResponse::Created().json(serde_json::json!({ "silenceID": id })))
}

/// Every silence (scope `read`).
#[utoipa::path(get, path = "/v1/silences", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The silences", body = Vec<crate::api_doc::SilenceView>),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer, or this replica does not evaluate alerts (`not_evaluator`)", body = ErrorBody),
    ))]
async fn list_silences(
    caller: Caller,
    state: web::Data<AlertState>,
) -> Result<HttpResponse, AlertError> {
    caller.authorize(Scope::Read)?;
    let now = now_ms();
    let silences = store::silences(&state.store).await?;
    Ok(HttpResponse::Ok().json(
        silences
            .iter()
            .map(|s| silence_json(s, now))
            .collect::<Vec<_>>(),
    ))
}

async fn find_silence(state: &AlertState, id: &str) -> Result<Silence, AlertError> {
    store::silences(&state.store)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| AlertError::NotFound(format!("no silence `{id}`")))
}

/// One silence (scope `read`).
#[utoipa::path(get, path = "/v1/silences/{id}", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The silence id")),
    responses(
        (status = 200, description = "The silence", body = crate::api_doc::SilenceView),
        (status = 404, description = "No such alert or silence (`not_found`)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer, or this replica does not evaluate alerts (`not_evaluator`)", body = ErrorBody),
    ))]
async fn show_silence(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AlertState>,
) -> Result<HttpResponse, AlertError> {
    caller.authorize(Scope::Read)?;
    let silence = find_silence(&state, &path).await?;
    Ok(HttpResponse::Ok().json(silence_json(&silence, now_ms())))
}

/// Expires a silence now (it is kept, as in Alertmanager).
/// Expires a silence now; it is kept, as in Alertmanager (scope `admin`).
#[utoipa::path(delete, path = "/v1/silences/{id}", tag = "alerts", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The silence id")),
    responses(
        (status = 200, description = "The silence, expired", body = crate::api_doc::SilenceView),
        (status = 404, description = "No such alert or silence (`not_found`)", body = ErrorBody),
        KeyChecks,
        (status = 503, description = "ClickHouse cannot answer, or this replica does not evaluate alerts (`not_evaluator`)", body = ErrorBody),
    ))]
async fn expire_silence(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AlertState>,
) -> Result<HttpResponse, AlertError> {
    caller.authorize(Scope::Admin)?;
    let silence = find_silence(&state, &path).await?;
    let now = now_ms();
    if silence.state(now) == "expired" {
        return Ok(HttpResponse::Ok().json(silence_json(&silence, now)));
    }
    let row = SilenceRow {
        silence_id: silence.id.clone(),
        version: silence.version + 1,
        matchers: serde_json::to_string(&silence.matchers).unwrap_or_default(),
        starts_ms: silence.starts_ms.min(now),
        ends_ms: now,
        created_by: silence.created_by.clone(),
        comment: silence.comment.clone(),
        at_ms: now,
    };
    store::save_silence(&state.store, &row).await?;
    if let Some(engine) = &state.engine {
        engine.reload_silences().await?;
    }
    let expired = Silence {
        ends_ms: now,
        version: row.version,
        ..silence
    };
    Ok(HttpResponse::Ok().json(silence_json(&expired, now)))
}
