//! The GitLab wire shape of errors: `{"message": "..."}`, or `{"error": "..."}` for a bad parameter.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::domain::Error;

/// A domain error on its way out of a GitLab-compatible route.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error)
    }
}

impl From<crate::store::meta::StoreError> for ApiError {
    fn from(error: crate::store::meta::StoreError) -> Self {
        ApiError(Error::from(error))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Status and body for a domain error, the one place this mapping is made.
pub fn status_and_body(error: &Error) -> (StatusCode, serde_json::Value) {
    let bad = |reason: &str| json!({ "message": format!("400 Bad request - {reason}") });
    match error {
        Error::NotFound(what) => (
            StatusCode::NOT_FOUND,
            json!({ "message": format!("404 {what} Not Found") }),
        ),
        Error::NotFoundMessage(message) => (StatusCode::NOT_FOUND, json!({ "message": message })),
        Error::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            json!({ "message": "401 Unauthorized" }),
        ),
        Error::UnauthorizedBecause(reason) => (
            StatusCode::UNAUTHORIZED,
            json!({ "message": format!("401 Unauthorized - {reason}") }),
        ),
        Error::Upstream(reason) => (
            StatusCode::BAD_GATEWAY,
            json!({ "message": format!("502 Bad Gateway - {reason}") }),
        ),
        Error::Forbidden => (StatusCode::FORBIDDEN, json!({ "message": "403 Forbidden" })),
        Error::Denied(reason) => (
            StatusCode::FORBIDDEN,
            json!({ "message": format!("403 Forbidden - {reason}") }),
        ),
        Error::InvalidParam { .. } => (
            StatusCode::BAD_REQUEST,
            json!({ "error": error.to_string() }),
        ),
        Error::AlreadyExists(message) => (StatusCode::BAD_REQUEST, json!({ "message": message })),
        Error::NameTaken(message) | Error::Conflict(message) => {
            (StatusCode::CONFLICT, json!({ "message": message }))
        }
        Error::Sealed(message) => (
            StatusCode::CONFLICT,
            json!({ "message": format!("409 Conflict - {message}") }),
        ),
        Error::PolicyRefused(refusal) => (
            StatusCode::CONFLICT,
            json!({
                "message": format!("409 Conflict - {}", refusal.message),
                "failed_rules": refusal.failed_rules,
            }),
        ),
        Error::BadRequest(_)
        | Error::TooLarge
        | Error::DuplicateNotAllowed
        | Error::BodyInterrupted => (StatusCode::BAD_REQUEST, bad(&error.to_string())),
        Error::KeysetUnsupported => (
            StatusCode::METHOD_NOT_ALLOWED,
            json!({ "message": "405 Method Not Allowed - Keyset pagination is not yet available for this type of request" }),
        ),
        Error::RequestTooLarge { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({ "message": format!("413 Request Entity Too Large - {error}") }),
        ),
        Error::StorageFull => (
            StatusCode::INSUFFICIENT_STORAGE,
            json!({ "message": "507 Insufficient Storage - no space left on the server's storage" }),
        ),
        Error::Upload(problem, message) => {
            use crate::domain::error::UploadProblem;
            let status = match problem {
                UploadProblem::OffsetMismatch => StatusCode::CONFLICT,
                UploadProblem::ChecksumMismatch => {
                    StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST)
                }
                UploadProblem::Expired => StatusCode::GONE,
                UploadProblem::UnsupportedVersion => StatusCode::PRECONDITION_FAILED,
                UploadProblem::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            };
            let reason = status.canonical_reason().unwrap_or("Checksum Mismatch");
            (
                status,
                json!({ "message": format!("{} {reason} - {message}", status.as_u16()) }),
            )
        }
        Error::Oci(code, message) if code.is_unknown() => {
            (StatusCode::NOT_FOUND, json!({ "message": message }))
        }
        Error::Oci(_, message) => (StatusCode::BAD_REQUEST, bad(message)),
        Error::Store(_) | Error::Blob(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "message": "500 Internal Server Error" }),
        ),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.0.is_internal() || matches!(self.0, Error::StorageFull) {
            tracing::error!(error = %crate::domain::error::chain(&self.0), "request failed");
        }
        let (status, body) = status_and_body(&self.0);
        (status, Json(body)).into_response()
    }
}
