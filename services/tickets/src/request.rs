//! What a person asks of the tickets, as text (an API body or query, a console
//! form), checked into domain values. The API routes and the console's pages
//! both call these, so a wrong value gets the same refusal naming the same
//! field from either. Pure: no storage, no clock.

use serde::Deserialize;

use crate::error::TicketError;
use crate::intake::{MAX_FIELD, MAX_TEXT, text};
use crate::lifecycle::Visibility;
use crate::model::{Priority, State};
use crate::store::{Filters, Sort};

/// The query of `GET /v1/tickets` (and of the console's queue).
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub state: Option<String>,
    pub priority: Option<String>,
    pub category: Option<String>,
    pub assignee: Option<String>,
    pub release: Option<String>,
    pub launch: Option<String>,
    /// Words to find in the title or description (case-insensitive).
    pub q: Option<String>,
    /// `created` (default), `updated` or `priority`.
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    pub order: Option<String>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

/// A checked list request.
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub filters: Filters,
    pub sort: Sort,
    pub descending: bool,
    pub offset: u64,
    pub limit: u64,
}

/// Rows per page when the request does not say.
pub const DEFAULT_LIMIT: u64 = 50;
/// Most rows a page may ask for.
pub const MAX_LIMIT: u64 = 500;

impl ListQuery {
    /// Checks every member; the error names the first wrong one.
    pub fn check(self) -> Result<ListRequest, TicketError> {
        let state =
            match &self.state {
                None => None,
                Some(s) => Some(State::parse(s).ok_or_else(|| {
                    TicketError::invalid("state", format!("`{s}` is not a state"))
                })?),
            };
        let priority =
            match &self.priority {
                None => None,
                Some(p) => Some(Priority::parse(p).ok_or_else(|| {
                    TicketError::invalid("priority", format!("`{p}` is not P1..P4"))
                })?),
            };
        let sort = match self.sort.as_deref() {
            None => Sort::Created,
            Some(text) => Sort::parse(text).ok_or_else(|| {
                TicketError::invalid("sort", "must be `created`, `updated` or `priority`")
            })?,
        };
        let descending = match self.order.as_deref() {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(_) => return Err(TicketError::invalid("order", "must be `asc` or `desc`")),
        };
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(TicketError::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        Ok(ListRequest {
            filters: Filters {
                state,
                priority,
                category: self.category,
                assignee: self.assignee,
                release: self.release,
                launch: self.launch,
                text: self.q.filter(|q| !q.trim().is_empty()),
                created_from_ms: None,
                created_to_ms: None,
            },
            sort,
            descending,
            offset: self.offset.unwrap_or(0),
            limit,
        })
    }
}

/// A move to another state, with the resolution resolving needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub to: State,
    pub resolution: String,
}

impl Move {
    pub fn parse(to: &str, resolution: Option<String>) -> Result<Move, TicketError> {
        let state = State::parse(to).ok_or_else(|| {
            TicketError::invalid(
                "to",
                format!(
                    "`{to}` is not a state: {}",
                    State::ALL.map(State::as_str).join(", ")
                ),
            )
        })?;
        Ok(Move {
            to: state,
            resolution: text("resolution", resolution, MAX_TEXT)?,
        })
    }
}

/// Who a ticket goes to (may be empty: nobody).
pub fn assignee(given: String) -> Result<String, TicketError> {
    text("assignee", Some(given), MAX_FIELD)
}

/// A comment to add.
#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    pub body: String,
    pub visibility: Visibility,
}

impl Comment {
    /// `visibility` defaults to internal.
    pub fn parse(body: String, visibility: Option<&str>) -> Result<Comment, TicketError> {
        let body = text("body", Some(body), MAX_TEXT)?;
        if body.is_empty() {
            return Err(TicketError::invalid("body", "is required"));
        }
        let visibility = match visibility {
            None => Visibility::Internal,
            Some(given) => Visibility::parse(given).ok_or_else(|| {
                TicketError::invalid("visibility", "must be `internal` or `public`")
            })?,
        };
        Ok(Comment { body, visibility })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of<T: std::fmt::Debug>(result: Result<T, TicketError>) -> String {
        match result {
            Err(TicketError::Invalid { field, .. }) => field,
            other => panic!("not an invalid field: {other:?}"),
        }
    }

    #[test]
    fn a_list_query_defaults_to_the_newest_fifty_and_names_a_wrong_member() {
        let request = ListQuery::default().check().unwrap();
        assert_eq!(request.sort, Sort::Created);
        assert!(request.descending);
        assert_eq!((request.offset, request.limit), (0, DEFAULT_LIMIT));
        let blank_search = ListQuery {
            q: Some("  ".into()),
            ..ListQuery::default()
        };
        assert_eq!(blank_search.check().unwrap().filters.text, None);
        for (query, field) in [
            (
                ListQuery {
                    state: Some("sleeping".into()),
                    ..ListQuery::default()
                },
                "state",
            ),
            (
                ListQuery {
                    priority: Some("P5".into()),
                    ..ListQuery::default()
                },
                "priority",
            ),
            (
                ListQuery {
                    sort: Some("title".into()),
                    ..ListQuery::default()
                },
                "sort",
            ),
            (
                ListQuery {
                    order: Some("up".into()),
                    ..ListQuery::default()
                },
                "order",
            ),
            (
                ListQuery {
                    limit: Some(MAX_LIMIT + 1),
                    ..ListQuery::default()
                },
                "limit",
            ),
        ] {
            assert_eq!(field_of(query.check()), field);
        }
    }

    #[test]
    fn a_move_names_an_unknown_state_and_trims_the_resolution() {
        assert_eq!(field_of(Move::parse("done", None)), "to");
        let m = Move::parse("resolved", Some("  fixed in 2.4.2 ".into())).unwrap();
        assert_eq!(
            (m.to, m.resolution.as_str()),
            (State::Resolved, "fixed in 2.4.2")
        );
        let long = "x".repeat(MAX_TEXT + 1);
        assert_eq!(field_of(Move::parse("resolved", Some(long))), "resolution");
    }

    #[test]
    fn a_comment_needs_a_body_and_a_known_visibility() {
        assert_eq!(field_of(Comment::parse("  ".into(), None)), "body");
        assert_eq!(
            field_of(Comment::parse("hi".into(), Some("everyone"))),
            "visibility"
        );
        let c = Comment::parse("hi".into(), None).unwrap();
        assert_eq!(c.visibility, Visibility::Internal);
        assert_eq!(field_of(assignee("a".repeat(MAX_FIELD + 1))), "assignee");
    }
}
