//! What a page or an action answers when it cannot do what was asked: a page
//! a person can read (never a JSON body), with the HTTP status the API would
//! give, or a redirect to the sign-in page.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use hypercare_http::ApiError;
use hypercare_http::auth::Scope;

use crate::shell;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No live session: go and sign in, then come back to `next`.
    #[error("sign in first")]
    SignIn { next: String },
    /// An action without this session's CSRF token, or from another site.
    #[error("this action did not come from a page of this console; reload the page and try again")]
    Forged,
    /// The key lacks the scope.
    #[error("your key `{key}` lacks the `{}` scope this needs", scope.as_str())]
    Denied { key: String, scope: Scope },
    /// What the API would answer.
    #[error("{}", .0.message())]
    Api(#[from] ApiError),
}

impl ConsoleError {
    pub fn denied(key: &str, scope: Scope) -> Self {
        ConsoleError::Denied {
            key: key.to_owned(),
            scope,
        }
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::SignIn { .. } => StatusCode::SEE_OTHER,
            ConsoleError::Forged | ConsoleError::Denied { .. } => StatusCode::FORBIDDEN,
            ConsoleError::Api(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ConsoleError::SignIn { next } = self {
            let query = serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, format!("/sign-in?{query}")))
                // htmx follows this instead of swapping the sign-in page into a fragment.
                .insert_header(("HX-Redirect", format!("/sign-in?{query}")))
                .finish();
        }
        let title = match self {
            ConsoleError::Forged => "Action refused",
            ConsoleError::Denied { .. } => "Not allowed",
            _ => "Something went wrong",
        };
        HttpResponse::build(self.status_code())
            .content_type("text/html; charset=utf-8")
            .body(shell::error_page(title, &self.to_string()).into_string())
    }
}
