//! The report's one error type: what it read failed, or the request named a
//! day the launch does not have. Each capability's own error keeps its
//! answer (its conversion into the API error), so a storage failure reading
//! alerts is the same 503 as anywhere else.

use hypercare_http::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("`{field}` {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Kpis(#[from] hypercare_kpis::KpiError),
    #[error(transparent)]
    Alerts(#[from] hypercare_alerts::error::AlertError),
    #[error(transparent)]
    Tickets(#[from] hypercare_tickets::error::TicketError),
    #[error(transparent)]
    Capacity(#[from] hypercare_capacity::CapacityError),
    #[error(transparent)]
    Stages(#[from] crate::stages::StageError),
    #[error("the report store failed: {0}; retry later")]
    Store(#[from] clickhouse::error::Error),
}

impl ReportError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ReportError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl From<ReportError> for ApiError {
    fn from(error: ReportError) -> Self {
        match error {
            ReportError::Invalid { field, reason } => ApiError::invalid(field, reason),
            ReportError::Kpis(e) => e.into(),
            ReportError::Alerts(e) => e.into(),
            ReportError::Tickets(e) => e.into(),
            ReportError::Capacity(e) => e.into(),
            ReportError::Stages(e) => e.into(),
            ReportError::Store(e) => ApiError::storage(e),
        }
    }
}
