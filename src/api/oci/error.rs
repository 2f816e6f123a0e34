//! The OCI distribution spec's wire shape of errors: `{"errors": [{"code", "message",
//! "detail"}]}` with its status codes, and the `WWW-Authenticate` challenge that starts the
//! Docker token flow. The one place the OCI surface maps domain errors.

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::domain::oci_manifest::OciCode;
use crate::domain::Error;

/// A domain error on its way out of an OCI route, with what the answer needs to know.
#[derive(Debug)]
pub struct OciError {
    pub error: Error,
    /// The challenge to send with a 401 (`Bearer realm=...`).
    pub challenge: Option<String>,
    /// Whether the caller presented no credentials at all (nor the anonymous token).
    pub anonymous: bool,
    pub method: Method,
}

impl OciError {
    pub fn new(error: Error) -> Self {
        OciError {
            error,
            challenge: None,
            anonymous: false,
            method: Method::GET,
        }
    }
}

impl From<Error> for OciError {
    fn from(error: Error) -> Self {
        OciError::new(error)
    }
}

pub type OciResult<T> = Result<T, OciError>;

/// Status, code and message for a domain error on the OCI surface.
pub fn status_and_code(
    error: &Error,
    anonymous: bool,
    method: &Method,
) -> (StatusCode, &'static str, String) {
    match error {
        // An anonymous caller learns nothing about projects it may not see: it is asked to
        // authenticate, as a registry asks before a pull of a private image.
        Error::NotFound("Project") if anonymous => (
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required".into(),
        ),
        Error::NotFound("Project") | Error::NotFound("Model") => (
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry".into(),
        ),
        Error::NotFound(what) => (
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("{what} not found"),
        ),
        Error::NotFoundMessage(message) => {
            (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", message.clone())
        }
        Error::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required".into(),
        ),
        Error::UnauthorizedBecause(reason) => {
            (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", reason.clone())
        }
        Error::Upstream(reason) => (StatusCode::BAD_GATEWAY, "UNAVAILABLE", reason.clone()),
        Error::Forbidden => (
            StatusCode::FORBIDDEN,
            "DENIED",
            "requested access to the resource is denied".into(),
        ),
        Error::Denied(reason) => (StatusCode::FORBIDDEN, "DENIED", reason.clone()),
        Error::NameTaken(message) | Error::Conflict(message) | Error::Sealed(message) => {
            (StatusCode::CONFLICT, "DENIED", message.clone())
        }
        Error::PolicyRefused(refusal) => (StatusCode::CONFLICT, "DENIED", refusal.message.clone()),
        Error::Oci(code, message) => {
            let status = match code {
                _ if code.is_unknown() => StatusCode::NOT_FOUND,
                OciCode::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
                OciCode::Unsupported if method == Method::DELETE => StatusCode::METHOD_NOT_ALLOWED,
                OciCode::SizeInvalid | OciCode::NameInvalid | OciCode::TagInvalid => {
                    StatusCode::BAD_REQUEST
                }
                _ => StatusCode::BAD_REQUEST,
            };
            (status, code.as_str(), message.clone())
        }
        Error::TooLarge | Error::RequestTooLarge { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "SIZE_INVALID",
            error.to_string(),
        ),
        Error::BodyInterrupted => (
            StatusCode::BAD_REQUEST,
            "BLOB_UPLOAD_INVALID",
            error.to_string(),
        ),
        Error::InvalidParam { .. }
        | Error::BadRequest(_)
        | Error::AlreadyExists(_)
        | Error::DuplicateNotAllowed
        | Error::Upload(..)
        | Error::KeysetUnsupported => (StatusCode::BAD_REQUEST, "DENIED", error.to_string()),
        Error::StorageFull => (
            StatusCode::INSUFFICIENT_STORAGE,
            "UNKNOWN",
            "no space left on the server's storage".into(),
        ),
        Error::Store(_) | Error::Blob(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            "internal server error".into(),
        ),
    }
}

/// An error body of the spec.
pub fn body(code: &str, message: &str) -> serde_json::Value {
    json!({ "errors": [{ "code": code, "message": message, "detail": null }] })
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        if self.error.is_internal() || matches!(self.error, Error::StorageFull) {
            tracing::error!(error = %crate::domain::error::chain(&self.error), "request failed");
        }
        let (status, code, message) = status_and_code(&self.error, self.anonymous, &self.method);
        let mut response = (status, Json(body(code, &message))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            if let Some(value) = self
                .challenge
                .as_deref()
                .and_then(|c| HeaderValue::from_str(c).ok())
            {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_things_are_404_in_the_specs_codes() {
        let get = Method::GET;
        let cases = [
            (Error::NotFound("Model"), false, 404, "NAME_UNKNOWN"),
            (Error::NotFound("Project"), false, 404, "NAME_UNKNOWN"),
            (Error::NotFound("Project"), true, 401, "UNAUTHORIZED"),
            (
                Error::oci(OciCode::ManifestUnknown, "x"),
                false,
                404,
                "MANIFEST_UNKNOWN",
            ),
            (
                Error::oci(OciCode::BlobUnknown, "x"),
                false,
                404,
                "BLOB_UNKNOWN",
            ),
            (
                Error::oci(OciCode::RangeInvalid, "x"),
                false,
                416,
                "BLOB_UPLOAD_INVALID",
            ),
            (
                Error::oci(OciCode::TagInvalid, "x"),
                false,
                400,
                "TAG_INVALID",
            ),
            (Error::Forbidden, false, 403, "DENIED"),
            (Error::Unauthorized, true, 401, "UNAUTHORIZED"),
        ];
        for (error, anonymous, status, code) in cases {
            let (s, c, _) = status_and_code(&error, anonymous, &get);
            assert_eq!((s.as_u16(), c), (status, code), "{error:?}");
        }
        let (s, _, _) = status_and_code(
            &Error::oci(OciCode::Unsupported, "x"),
            false,
            &Method::DELETE,
        );
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    }
}
