//! `GET /v1/users/{user_id}/timeline?from=&to=&limit=&cursor=` (scope `read`):
//! what happened to one user, for support: their events and the stored log
//! lines that name them, in one time order, each item typed `event` or `log`.
//!
//! Data flow: path and query -> [`TimelineParams::check`] (400
//! `invalid_request` naming the field: `from` is required, the window is at
//! most 7 days, `limit` at most 1000) -> [`store::events`] (the `events` rows
//! of the user) and [`crate::logs::store::search`] (log lines whose attribute
//! `user_id`, `user.id` or `enduser.id` is the user), each `limit + 1` after
//! the cursor -> [`merge::merge`] -> one page and `next_cursor`. 503
//! `storage_unavailable` when ClickHouse cannot answer.

pub mod cli;
pub mod merge;
pub mod store;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use hypercare_http::auth::{Caller, Scope};
use hypercare_http::error::{ApiError, ErrorBody};
use hypercare_http::openapi::{KeyChecks, StoreChecks};

use crate::logs::filter::{self, Cursor, LogFilter, USER_ATTRIBUTES, rfc3339_ns};
use crate::{InvestigateError, InvestigateState};
use merge::Item;

pub const DEFAULT_LIMIT: u32 = 200;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/users/{user_id}/timeline", web::get().to(get_timeline));
}

/// What the client sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimelineParams {
    pub user_id: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// A checked timeline request.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub user_id: String,
    pub from_ns: u64,
    pub to_ns: u64,
    pub after: Option<Cursor>,
    pub limit: u32,
}

impl TimelineParams {
    pub fn check(self, now_secs: u64) -> Result<Checked, InvestigateError> {
        let user_id = filter::text("user_id", Some(self.user_id))?.unwrap_or_default();
        let (from, to) = filter::window(self.from.as_deref(), self.to.as_deref(), now_secs, None)?;
        Ok(Checked {
            user_id,
            from_ns: from,
            to_ns: to,
            after: self.cursor.as_deref().map(Cursor::parse).transpose()?,
            limit: filter::limit(
                filter::number("limit", self.limit.as_deref())?,
                DEFAULT_LIMIT,
            )?,
        })
    }
}

/// One page of a user's timeline.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Timeline {
    pub user_id: String,
    /// The window read (RFC 3339, UTC).
    pub from: String,
    pub to: String,
    pub items: Vec<Item>,
    /// Pass it as `cursor` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl InvestigateState {
    /// A page of the user's timeline.
    pub async fn timeline(&self, params: TimelineParams) -> Result<Timeline, InvestigateError> {
        let checked = params.check(self.clock.now_ms() / 1000)?;
        let events = store::events(
            &self.store,
            &store::EventsRequest {
                user_id: &checked.user_id,
                from_ns: checked.from_ns,
                to_ns: checked.to_ns,
                after: checked.after.as_ref(),
                limit: checked.limit,
            },
        )
        .await?;
        let logs = crate::logs::store::search(
            &self.store,
            &LogFilter {
                from_ns: checked.from_ns,
                to_ns: checked.to_ns,
                service: None,
                min_severity: None,
                q: None,
                attributes: vec![(&USER_ATTRIBUTES[..], checked.user_id.clone())],
                after: checked.after.clone(),
                limit: checked.limit,
            },
        )
        .await?;
        let (items, next) = merge::merge(events, logs, checked.limit as usize);
        Ok(Timeline {
            user_id: checked.user_id,
            from: rfc3339_ns(checked.from_ns),
            to: rfc3339_ns(checked.to_ns),
            items,
            next_cursor: next.map(|c| c.encode()),
        })
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TimelineQuery {
    /// RFC 3339 (required). The window is at most 7 days.
    from: Option<String>,
    /// RFC 3339; default now.
    to: Option<String>,
    /// Items per page, 1..=1000; default 200.
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A user's events and the log lines naming them, in time order.
#[utoipa::path(get, path = "/v1/users/{user_id}/timeline", tag = "investigate", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("user_id" = String, Path, description = "The `user_id` of the events"), TimelineQuery),
    responses(
        (status = 200, description = "A page of the timeline", body = Timeline),
        (status = 400, description = "A parameter is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        KeyChecks,
        StoreChecks,
    ))]
#[tracing::instrument(name = "investigate.timeline", skip_all, fields(key = %caller.name()))]
pub(crate) async fn get_timeline(
    caller: Caller,
    user_id: web::Path<String>,
    query: web::Query<TimelineQuery>,
    state: web::Data<InvestigateState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    let TimelineQuery {
        from,
        to,
        limit,
        cursor,
    } = query.into_inner();
    let params = TimelineParams {
        user_id: user_id.into_inner(),
        from,
        to,
        limit,
        cursor,
    };
    Ok(HttpResponse::Ok().json(state.timeline(params).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_is_required_and_the_user_checked() {
        let field = |params: TimelineParams| match params.check(1_795_341_600).unwrap_err() {
            InvestigateError::Invalid { field, .. } => field,
            other => panic!("{other}"),
        };
        let ok = TimelineParams {
            user_id: "u-1".into(),
            from: Some("2026-11-22T09:00:00Z".into()),
            ..TimelineParams::default()
        };
        let checked = ok.clone().check(1_795_341_600).unwrap();
        assert_eq!((checked.to_ns - checked.from_ns) / 1_000_000_000, 3600);
        assert_eq!(checked.limit, DEFAULT_LIMIT);
        assert_eq!(
            field(TimelineParams {
                from: None,
                ..ok.clone()
            }),
            "from"
        );
        assert_eq!(
            field(TimelineParams {
                user_id: "x".repeat(300),
                ..ok.clone()
            }),
            "user_id"
        );
        assert_eq!(
            field(TimelineParams {
                user_id: String::new(),
                ..ok.clone()
            }),
            "user_id"
        );
        assert_eq!(
            field(TimelineParams {
                limit: Some("5000".into()),
                ..ok
            }),
            "limit"
        );
    }
}
