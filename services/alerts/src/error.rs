//! The alert capability's one error type, and its one conversion into the
//! API's error answer ([`hypercare_http::error::ApiError`]).

use hypercare_http::auth::AuthError;
use hypercare_http::error::{ApiError, ErrorCode};

use crate::store::AlertStatus;

/// What a person does to an alert through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Ack,
    Resolve,
}

impl Action {
    /// As the conflict message says it ("only a firing alert can be ...").
    pub fn done(self) -> &'static str {
        match self {
            Action::Ack => "acknowledged",
            Action::Resolve => "resolved",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no open alert `{0}`")]
    NotFound(String),
    #[error("alert `{id}` is {state}: only a firing alert can be {}", action.done())]
    WrongState {
        id: String,
        state: AlertStatus,
        action: Action,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Bad input: `field` names it.
    #[error("`{field}` {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0}")]
    NotFound(String),
    /// The alert is in a state that does not allow the action.
    #[error("alert `{id}` is {state}: only a firing alert can be {}", action.done())]
    WrongState {
        id: String,
        state: AlertStatus,
        action: Action,
    },
    #[error(
        "this replica does not run the alert evaluator; send alert actions to the one with [alerts] evaluate = true"
    )]
    NotEvaluator,
    #[error("ClickHouse: {0}")]
    Store(#[from] clickhouse::error::Error),
    /// A backtest ran past its deadline.
    #[error("{0}")]
    TooSlow(String),
    /// An SLI read that ClickHouse could not answer.
    #[error("{0}")]
    Sli(crate::sli::SliError),
}

impl AlertError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        AlertError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<ActionError> for AlertError {
    fn from(error: ActionError) -> Self {
        match error {
            ActionError::NotFound(id) => AlertError::NotFound(format!("no open alert `{id}`")),
            ActionError::WrongState { id, state, action } => {
                AlertError::WrongState { id, state, action }
            }
        }
    }
}

impl From<AlertError> for ApiError {
    fn from(error: AlertError) -> Self {
        let message = error.to_string();
        match error {
            AlertError::Auth(e) => e.into(),
            AlertError::Invalid { field, reason } => ApiError::invalid(field, reason),
            AlertError::NotFound(_) => ApiError::not_found(message),
            // The conflict says what the alert is, so the client need not ask again.
            AlertError::WrongState { state, .. } => {
                ApiError::conflict(message).with("state", state.as_str())
            }
            AlertError::NotEvaluator => ApiError::new(ErrorCode::NotEvaluator, message),
            AlertError::Store(e) => ApiError::storage(e),
            AlertError::TooSlow(_) => ApiError::new(ErrorCode::QueryTooSlow, message),
            AlertError::Sli(crate::sli::SliError::Store(e)) => ApiError::storage(e),
            AlertError::Sli(crate::sli::SliError::Kpi(e)) => e.into(),
            // Not reached: other SLI errors are reported in the SLO's status.
            AlertError::Sli(e) => ApiError::new(ErrorCode::InternalError, e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;

    #[test]
    fn each_error_answers_its_code_and_no_null_field() {
        let body = |e: AlertError| ApiError::from(e).body();
        assert_eq!(
            body(AlertError::invalid("tier", "must be P0, P1, P2 or P3")),
            serde_json::json!({"error": "invalid_request", "message": "`tier` must be P0, P1, P2 or P3", "field": "tier"})
        );
        let conflict = body(AlertError::WrongState {
            id: "a1".into(),
            state: AlertStatus::Resolved,
            action: Action::Ack,
        });
        assert_eq!(conflict["error"], "conflict");
        assert_eq!(conflict["state"], "resolved");
        assert!(conflict.get("field").is_none(), "{conflict}");
        let missing = body(AlertError::NotFound("no alert `x`".into()));
        assert_eq!(missing["error"], "not_found");
        assert!(missing.get("field").is_none());
        let response = ApiError::from(AlertError::NotEvaluator).error_response();
        assert_eq!(response.status(), 503);
    }
}
