//! `POST /v1/reconcile`: parse, compare, answer. Scope `admin`: the answer
//! lists raw ids (event ids, business ids) that no read route shows, and one
//! request loads up to `max_ids` rows into ClickHouse and scans every event of
//! the names it carries; read keys go to dashboards and viewers.
//!
//! Answers: 200 [`Reconciliation`]; 400 `invalid_request` naming the field
//! (`event`, `ids[3]`, `line 12`, `from`, `limit`), `empty_body`,
//! `invalid_json`; 413 `payload_too_large` (body) or `too_many_records`
//! (field `ids`, over `max_ids`); 415 for another content type or encoding;
//! 401/403/429 from the key checks; 503 `storage_unavailable`; 504
//! `query_too_slow` past the deadline.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use hypercare_http::auth::{AuthError, Caller, Scope};
use hypercare_http::body::{BodyError, BodyLimit, read_body};
use hypercare_http::error::{ApiError, ErrorBody, ErrorCode, parse_json};
use hypercare_http::openapi::{BodyChecks, KeyChecks, QueryChecks};

use super::compare::{CompareError, Reconciliation};
use super::input::{self, Framing, InputError, JsonUpload, Options};
use super::{CHUNK_ROWS, ReconcileState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/reconcile", web::post().to(post_reconcile));
}

/// Why a reconciliation was not answered.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Compare(#[from] CompareError),
    #[error(
        "Content-Type `{0}` is not read here: send application/json, application/x-ndjson or text/csv"
    )]
    UnsupportedContentType(String),
    /// A JSON body that does not parse (already in the API's words).
    #[error("{}", .0.message())]
    Json(ApiError),
}

impl From<ReconcileError> for ApiError {
    fn from(error: ReconcileError) -> Self {
        let message = error.to_string();
        match error {
            ReconcileError::Auth(e) => e.into(),
            ReconcileError::Body(e) => e.into(),
            ReconcileError::Json(e) => e,
            ReconcileError::Input(InputError::TooManyIds { .. }) => {
                ApiError::new(ErrorCode::TooManyRecords, message).with_field("ids")
            }
            ReconcileError::Input(InputError::NoIds) => {
                ApiError::new(ErrorCode::InvalidRequest, message).with_field("ids")
            }
            ReconcileError::Input(InputError::Invalid { field, .. }) => {
                ApiError::new(ErrorCode::InvalidRequest, message).with_field(field)
            }
            ReconcileError::Compare(CompareError::TooSlow { .. }) => {
                ApiError::new(ErrorCode::QueryTooSlow, message)
            }
            ReconcileError::Compare(CompareError::Query(e)) => ApiError::storage(e),
            ReconcileError::UnsupportedContentType(_) => {
                ApiError::new(ErrorCode::UnsupportedContentType, message)
            }
        }
    }
}

/// The query string: the options of NDJSON and CSV uploads, and `limit`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReconcileQuery {
    event: Option<String>,
    id_property: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

/// Compares the ids a source system holds with the events Hypercare stored.
#[utoipa::path(post, path = "/v1/reconcile", tag = "ingest", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(
        ("event" = Option<String>, Query, description = "NDJSON/CSV: the event of rows that name none"),
        ("id_property" = Option<String>, Query, description = "NDJSON/CSV: string property holding the business id; default: ids are event ids"),
        ("from" = Option<String>, Query, description = "NDJSON/CSV: first UTC day (YYYY-MM-DD)"),
        ("to" = Option<String>, Query, description = "NDJSON/CSV: last UTC day (YYYY-MM-DD), inclusive"),
        ("limit" = Option<usize>, Query, description = "ids listed per side at most (default and maximum: ingest.reconcile.max_listed)"),
    ),
    request_body(description = "JSON `{\"event\", \"ids\": [...], \"id_property\"?, \"from\"?, \"to\"?}`, or NDJSON lines `{\"id\", \"event\"?, \"day\"?}`, or CSV lines `id`, `event,id` or `event,id,day`",
        content((String = "application/json"), (String = "application/x-ndjson"), (String = "text/csv"))),
    responses(
        (status = 200, description = "Missing and extra ids, counted per event and day", body = Reconciliation),
        (status = 400, description = "A bad option or id (`invalid_request`, `field` names it: `event`, `ids[3]`, `line 12`, `from`), `empty_body` or `invalid_json`", body = ErrorBody),
        (status = 413, description = "Over `max_body_bytes` (`payload_too_large`) or `max_ids` (`too_many_records`, field `ids`)", body = ErrorBody),
        KeyChecks, BodyChecks, QueryChecks,
    ))]
#[tracing::instrument(name = "ingest.reconcile", skip_all, fields(key = %caller.name()))]
pub async fn post_reconcile(
    req: HttpRequest,
    payload: web::Payload,
    caller: Caller,
    state: web::Data<ReconcileState>,
) -> Result<HttpResponse, ApiError> {
    Ok(reconcile(req, payload, caller, state).await?)
}

async fn reconcile(
    req: HttpRequest,
    payload: web::Payload,
    caller: Caller,
    state: web::Data<ReconcileState>,
) -> Result<HttpResponse, ReconcileError> {
    caller.authorize(Scope::Admin)?;
    let settings = &state.settings;
    let query = web::Query::<ReconcileQuery>::from_query(req.query_string())
        .map_err(|e| InputError::Invalid {
            field: "query".into(),
            reason: format!("is not understood ({e}): use event, id_property, from, to, limit"),
        })?
        .into_inner();
    let limit = match query.limit {
        None => settings.max_listed,
        Some(n) if (1..=settings.max_listed).contains(&n) => n,
        Some(_) => {
            return Err(InputError::Invalid {
                field: "limit".into(),
                reason: format!(
                    "must be from 1 to {} (ingest.reconcile.max_listed)",
                    settings.max_listed
                ),
            }
            .into());
        }
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let framing = match media.as_str() {
        "application/json" => None,
        "application/x-ndjson" => Some(Framing::Ndjson),
        "text/csv" => Some(Framing::Csv),
        _ => return Err(ReconcileError::UnsupportedContentType(content_type.into())),
    };
    let body = read_body(
        &req,
        payload,
        BodyLimit {
            max_bytes: settings.max_body_bytes,
            read_timeout: state.body_read_timeout,
        },
    )
    .await?;
    caller.take_bytes(body.len())?;
    let max_ids = settings.max_ids;
    // Checking a million ids takes a CPU for a fraction of a second: off the
    // worker that serves other requests.
    let parsed = match framing {
        None => {
            let upload: JsonUpload = parse_json(&body).map_err(ReconcileError::Json)?;
            web::block(move || input::parse_json(upload, max_ids, CHUNK_ROWS)).await
        }
        Some(framing) => {
            let options = Options::new(
                query.event,
                query.id_property,
                query.from.as_deref(),
                query.to.as_deref(),
            )?;
            web::block(move || {
                input::parse_lines(&body, framing, &options, max_ids, CHUNK_ROWS)
                    .map(|rows| (options, rows))
            })
            .await
        }
    };
    let (options, rows) = parsed.map_err(|e| {
        ReconcileError::Json(ApiError::new(ErrorCode::InternalError, e.to_string()))
    })??;
    let now = i64::try_from(state.clock.now_ms() / 1000).unwrap_or(0);
    let answer = state.comparer.reconcile(now, &options, rows, limit).await?;
    Ok(HttpResponse::Ok().json(answer))
}
