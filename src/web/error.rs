//! The web UI's one error type, turned into an HTML page (or a redirect to sign in) in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout;
use crate::domain::Error;

#[derive(Debug)]
pub enum WebError {
    /// What the domain refused or could not do.
    Domain(Error),
    /// A form without this session's CSRF token.
    Csrf,
    /// An anonymous visitor wants something that needs an account: sign in, then come back.
    SignInRequired { return_to: String },
    /// A form that cannot be read at all.
    BadForm(String),
}

impl From<Error> for WebError {
    fn from(error: Error) -> Self {
        WebError::Domain(error)
    }
}

pub type WebResult<T> = Result<T, WebError>;

impl WebError {
    /// Anonymous refusals become a trip to the sign-in page that returns to `path`.
    pub fn signing_in_for(self, path: &str) -> WebError {
        match self {
            WebError::Domain(Error::Unauthorized) => WebError::SignInRequired {
                return_to: path.to_string(),
            },
            other => other,
        }
    }

    fn status_and_message(&self) -> (StatusCode, String) {
        match self {
            WebError::Domain(error) => match error {
                Error::NotFound(_) | Error::NotFoundMessage(_) => (
                    StatusCode::NOT_FOUND,
                    "The page could not be found, or you do not have access to it.".into(),
                ),
                Error::Unauthorized => (
                    StatusCode::UNAUTHORIZED,
                    "You need to sign in to do this.".into(),
                ),
                Error::Forbidden => (
                    StatusCode::FORBIDDEN,
                    "You are not allowed to do this in this project.".into(),
                ),
                Error::Denied(reason) => (StatusCode::FORBIDDEN, reason.clone()),
                Error::TooLarge | Error::RequestTooLarge { .. } => {
                    (StatusCode::PAYLOAD_TOO_LARGE, error.to_string())
                }
                Error::NameTaken(message) | Error::Sealed(message) => {
                    (StatusCode::CONFLICT, message.clone())
                }
                Error::PolicyRefused(refusal) => (StatusCode::CONFLICT, refusal.message.clone()),
                Error::StorageFull => (StatusCode::INSUFFICIENT_STORAGE, error.to_string()),
                Error::Store(_) | Error::Blob(_) => {
                    tracing::error!(
                        error = %crate::domain::error::chain(error),
                        "web page failed"
                    );
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Something went wrong on our side; the error is in the server log.".into(),
                    )
                }
                other => (StatusCode::BAD_REQUEST, other.to_string()),
            },
            WebError::Csrf => (
                StatusCode::FORBIDDEN,
                "The form was rejected: its CSRF token is missing or does not belong to your session. Reload the page and try again.".into(),
            ),
            WebError::SignInRequired { .. } => {
                (StatusCode::SEE_OTHER, "Sign in to continue.".into())
            }
            WebError::BadForm(message) => (StatusCode::BAD_REQUEST, message.clone()),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let WebError::SignInRequired { return_to } = &self {
            return Redirect::to(&sign_in_path(return_to)).into_response();
        }
        let (status, message) = self.status_and_message();
        let title = status.canonical_reason().unwrap_or("Error");
        let body = html! {
            section.error-page {
                h1 { (status.as_u16()) " · " (title) }
                p { (message) }
                nav.error-nav aria-label="Where to go" {
                    a.button href="/" { "Go to the projects list" }
                    @if status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN {
                        a.button href="/users/sign_in" { "Sign in" }
                    }
                    a.button href="/" data-back="1" { "Back" }
                }
            }
        };
        layout::respond(status, layout::bare_page(title, body))
    }
}

/// The sign-in page that comes back to `return_to` (a local path) afterwards.
pub fn sign_in_path(return_to: &str) -> String {
    format!(
        "/users/sign_in?return_to={}",
        percent_encoding::utf8_percent_encode(return_to, percent_encoding::NON_ALPHANUMERIC)
    )
}
