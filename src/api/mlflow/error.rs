//! MLflow's wire shape of errors: `{"error_code": "...", "message": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::domain::Error;

#[derive(Debug)]
pub enum MlflowError {
    Domain(Error),
    /// An error the domain does not know: unknown endpoint, unsupported feature, bad JSON.
    Code {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

pub type MlflowResult<T> = Result<T, MlflowError>;

impl From<Error> for MlflowError {
    fn from(error: Error) -> Self {
        MlflowError::Domain(error)
    }
}

impl From<crate::store::meta::StoreError> for MlflowError {
    fn from(error: crate::store::meta::StoreError) -> Self {
        MlflowError::Domain(Error::from(error))
    }
}

impl MlflowError {
    pub fn not_found(message: impl Into<String>) -> MlflowError {
        MlflowError::Code {
            status: StatusCode::NOT_FOUND,
            code: "RESOURCE_DOES_NOT_EXIST",
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> MlflowError {
        MlflowError::Code {
            status: StatusCode::BAD_REQUEST,
            code: "INVALID_PARAMETER_VALUE",
            message: message.into(),
        }
    }

    pub fn already_exists(message: impl Into<String>) -> MlflowError {
        MlflowError::Code {
            status: StatusCode::BAD_REQUEST,
            code: "RESOURCE_ALREADY_EXISTS",
            message: message.into(),
        }
    }

    pub fn malformed(message: impl Into<String>) -> MlflowError {
        MlflowError::Code {
            status: StatusCode::BAD_REQUEST,
            code: "MALFORMED_REQUEST",
            message: message.into(),
        }
    }

    pub fn not_implemented(message: impl Into<String>) -> MlflowError {
        MlflowError::Code {
            status: StatusCode::NOT_IMPLEMENTED,
            code: "NOT_IMPLEMENTED",
            message: message.into(),
        }
    }

    pub fn endpoint_not_found(method: &str, path: &str) -> MlflowError {
        MlflowError::Code {
            status: StatusCode::NOT_FOUND,
            code: "ENDPOINT_NOT_FOUND",
            message: format!("No API found for '{method} {path}'"),
        }
    }
}

/// Replaces a domain "not found" with MLflow's own message for the thing looked up.
pub trait OrNotFound<T> {
    fn or_not_found(self, message: impl FnOnce() -> String) -> MlflowResult<T>;
}

impl<T> OrNotFound<T> for Result<T, Error> {
    fn or_not_found(self, message: impl FnOnce() -> String) -> MlflowResult<T> {
        match self {
            Err(Error::NotFound(_)) => Err(MlflowError::not_found(message())),
            other => other.map_err(MlflowError::from),
        }
    }
}

/// Status, code and message for a domain error: the one place this mapping is made.
fn domain_shape(error: &Error) -> (StatusCode, &'static str, String) {
    match error {
        Error::NotFound(what) => (
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!("{what} not found"),
        ),
        Error::NotFoundMessage(message) => (
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            message.clone(),
        ),
        Error::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Authentication is required: send a token".into(),
        ),
        Error::UnauthorizedBecause(reason) => {
            (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", reason.clone())
        }
        Error::Upstream(reason) => (
            StatusCode::BAD_GATEWAY,
            "TEMPORARILY_UNAVAILABLE",
            reason.clone(),
        ),
        Error::Forbidden => (
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Permission denied: your access level does not allow this".into(),
        ),
        Error::Denied(reason) => (
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            format!("Permission denied: {reason}"),
        ),
        Error::Sealed(message) => (StatusCode::CONFLICT, "INVALID_STATE", message.clone()),
        // The request is well formed; the version's state (its metrics, CI link, prerelease)
        // refuses it, as a seal does. 409, not a 5xx: the client does not retry it.
        Error::PolicyRefused(refusal) => (
            StatusCode::CONFLICT,
            "INVALID_STATE",
            refusal.message.clone(),
        ),
        Error::AlreadyExists(message) | Error::NameTaken(message) | Error::Conflict(message) => (
            StatusCode::BAD_REQUEST,
            "RESOURCE_ALREADY_EXISTS",
            message.clone(),
        ),
        Error::InvalidParam { .. }
        | Error::BadRequest(_)
        | Error::TooLarge
        | Error::DuplicateNotAllowed
        | Error::KeysetUnsupported
        | Error::Upload(..)
        | Error::BodyInterrupted => (
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            error.to_string(),
        ),
        // MLflow itself answers an oversized log-batch with 400 INVALID_PARAMETER_VALUE; the
        // status here says what happened, the code stays the one MLflow clients know.
        Error::RequestTooLarge { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "INVALID_PARAMETER_VALUE",
            error.to_string(),
        ),
        Error::StorageFull => (
            StatusCode::INSUFFICIENT_STORAGE,
            "RESOURCE_EXHAUSTED",
            error.to_string(),
        ),
        Error::Oci(code, message) if code.is_unknown() => (
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            message.clone(),
        ),
        Error::Oci(_, message) => (
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            message.clone(),
        ),
        Error::Store(_) | Error::Blob(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "Internal error".into(),
        ),
    }
}

impl IntoResponse for MlflowError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            MlflowError::Domain(error) => {
                if error.is_internal() || matches!(error, Error::StorageFull) {
                    tracing::error!(
                        error = %crate::domain::error::chain(&error),
                        "MLflow request failed"
                    );
                }
                domain_shape(&error)
            }
            MlflowError::Code {
                status,
                code,
                message,
            } => (status, code, message),
        };
        (
            status,
            Json(json!({ "error_code": code, "message": message })),
        )
            .into_response()
    }
}
