//! The one error of the tickets domain, and its one conversion into the API's
//! JSON error ([`hypercare_http::error::ApiError`]).
//!
//! | variant | code | status | extra members |
//! |---|---|---|---|
//! | `Invalid` | `invalid_request` | 400 | `field` |
//! | `NotFound` | `not_found` | 404 | |
//! | `IllegalMove` | `conflict` | 409 | `state`, `allowed` |
//! | `VersionConflict` | `version_conflict` | 409 | `current_version` |
//! | `Storage` | `storage_unavailable` | 503 + `Retry-After` | |

use hypercare_http::error::{ApiError, ErrorCode};

use crate::model::State;

#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    /// A field of the request is missing or wrong.
    #[error("`{field}` {reason}")]
    Invalid { field: String, reason: String },
    #[error("no ticket `{0}`")]
    NotFound(String),
    /// The state machine has no such move; `from.allowed()` lists the moves it has.
    #[error("a ticket in state `{from}` cannot move to `{to}`; allowed: {}", allowed_list(*from))]
    IllegalMove { from: State, to: State },
    #[error(
        "the ticket is at version {current}, not {expected}: reload it and apply the change again"
    )]
    VersionConflict { expected: u32, current: u32 },
    /// ClickHouse did not answer, or refused a statement or a stored row.
    #[error("the ClickHouse query failed: {0}; retry later")]
    Storage(#[from] clickhouse::error::Error),
}

impl TicketError {
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        TicketError::Invalid {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

fn allowed_list(from: State) -> String {
    from.allowed()
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<TicketError> for ApiError {
    fn from(error: TicketError) -> Self {
        match error {
            TicketError::Invalid { field, reason } => ApiError::invalid(field, reason),
            TicketError::NotFound(_) => ApiError::not_found(error.to_string()),
            TicketError::IllegalMove { from, .. } => ApiError::conflict(error.to_string())
                .with("state", from.as_str())
                .with(
                    "allowed",
                    from.allowed()
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>(),
                ),
            TicketError::VersionConflict { current, .. } => {
                ApiError::new(ErrorCode::VersionConflict, error.to_string())
                    .with("current_version", current)
            }
            TicketError::Storage(e) => {
                tracing::warn!(error = %e, "A ticket statement failed.");
                ApiError::storage(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;

    #[test]
    fn an_illegal_move_is_a_conflict_naming_the_state_and_the_allowed_moves() {
        let error = ApiError::from(TicketError::IllegalMove {
            from: State::New,
            to: State::Closed,
        });
        let body = error.body();
        assert_eq!(body["error"], "conflict");
        assert_eq!(body["state"], "new");
        assert_eq!(
            body["allowed"],
            serde_json::json!(["triaged", "in_progress", "resolved"])
        );
        assert_eq!(error.error_response().status(), 409);
    }

    #[test]
    fn a_stale_version_keeps_its_code_and_the_current_version() {
        let body = ApiError::from(TicketError::VersionConflict {
            expected: 2,
            current: 3,
        })
        .body();
        assert_eq!(body["error"], "version_conflict");
        assert_eq!(body["current_version"], 3);
    }

    #[test]
    fn storage_failures_are_503_with_retry_after() {
        let error = ApiError::from(TicketError::Storage(clickhouse::error::Error::Custom(
            "connection refused".into(),
        )));
        let response = error.error_response();
        assert_eq!(response.status(), 503);
        assert_eq!(error.body()["error"], "storage_unavailable");
        assert!(response.headers().contains_key("retry-after"));
    }
}
