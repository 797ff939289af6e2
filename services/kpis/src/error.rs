//! The KPI engine's one error, and its one conversion into the API's answer:
//! bad input is 400 `invalid_request` naming the field, an unknown KPI or
//! launch 404 `not_found`, ClickHouse down or failing 503
//! `storage_unavailable` with `Retry-After`, a query past its deadline 504
//! `query_too_slow`.

use hypercare_http::error::{ApiError, ErrorCode};

use crate::definition::Invalid;
use crate::query::QueryError;

#[derive(Debug, thiserror::Error)]
pub enum KpiError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("the ClickHouse query failed: {0}; retry later")]
    Store(#[from] clickhouse::error::Error),
}

impl KpiError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        KpiError::Invalid(Invalid::new(field, reason))
    }
}

impl From<KpiError> for ApiError {
    fn from(error: KpiError) -> Self {
        match error {
            KpiError::Invalid(Invalid { field, reason }) => ApiError::invalid(field, reason),
            KpiError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            KpiError::Query(QueryError::TooSlow) => {
                ApiError::new(ErrorCode::QueryTooSlow, QueryError::TooSlow.to_string())
            }
            KpiError::Query(QueryError::ClickHouse(e)) | KpiError::Store(e) => {
                tracing::warn!(error = %e, "A KPI query failed.");
                ApiError::storage(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_code_and_field() {
        let error = ApiError::from(KpiError::invalid("date", "is not a YYYY-MM-DD date"));
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
        assert_eq!(error.field(), Some("date"));
        assert_eq!(error.message(), "`date` is not a YYYY-MM-DD date");
        let error = ApiError::from(KpiError::NotFound("KPI `x`".into()));
        assert_eq!(
            (error.code(), error.message()),
            (ErrorCode::NotFound, "KPI `x` not found")
        );
        let error = ApiError::from(KpiError::Query(QueryError::TooSlow));
        assert_eq!(error.code(), ErrorCode::QueryTooSlow);
        let down = clickhouse::error::Error::Custom("connection refused".into());
        let error = ApiError::from(KpiError::Store(down));
        assert_eq!(error.code(), ErrorCode::StorageUnavailable);
        assert!(error.message().contains("connection refused"));
    }
}
