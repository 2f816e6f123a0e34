//! The domain's one error type. Each API surface maps it to its own wire shape in one place.

use crate::store::blobs::BlobError;
use crate::store::meta::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing does not exist, or the caller may not know that it does.
    #[error("{0} Not Found")]
    NotFound(&'static str),
    /// Not found, with a message that says what was looked for.
    #[error("{0}")]
    NotFoundMessage(String),
    #[error("unauthorized")]
    Unauthorized,
    /// Credentials refused for a reason the caller should hear (a job token GitLab does not
    /// know, an expired ID token).
    #[error("{0}")]
    UnauthorizedBecause(String),
    /// A service the server verifies credentials with (a GitLab, an OIDC issuer) failed.
    #[error("{0}")]
    Upstream(String),
    #[error("forbidden")]
    Forbidden,
    /// Refused by a rule the caller should know about (403); the text says which.
    #[error("{0}")]
    Denied(String),
    /// A request parameter is unusable; `problem` completes "<param> ...", e.g. "is invalid".
    #[error("{param} {problem}")]
    InvalidParam { param: String, problem: String },
    /// A rule of the domain refuses the request; the text says which.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// A unique thing exists already where GitLab answers 409 (a taken username, an existing
    /// member).
    #[error("{0}")]
    Conflict(String),
    /// A package name that belongs to something else in the project: generic packages or a
    /// model (DESIGN §2 "Name ownership"). The text names the conflict.
    #[error("{0}")]
    NameTaken(String),
    /// A change to the files of a sealed version (409 on every surface); the text names the
    /// version and its manifest digest.
    #[error("{0}")]
    Sealed(String),
    /// A model's promotion policy refuses a protected alias move or a seal (409); the
    /// refusal names each failed rule.
    #[error("{}", .0.message)]
    PolicyRefused(crate::domain::promotion::Refusal),
    #[error("File is too large")]
    TooLarge,
    #[error("Duplicate package is not allowed")]
    DuplicateNotAllowed,
    /// Keyset pagination was asked for an order or filter it does not serve (GitLab: 405).
    #[error("Keyset pagination is not yet available for this type of request")]
    KeysetUnsupported,
    #[error("no space left on the storage device")]
    StorageFull,
    #[error("the request body ended before it was complete")]
    BodyInterrupted,
    /// A request body (not an uploaded file) larger than its route accepts.
    #[error("the request body is larger than the {limit} bytes this route accepts")]
    RequestTooLarge { limit: u64 },
    /// The server's storage failed: the source says how (log it with [`chain`]).
    #[error("storage failed")]
    Store(#[source] StoreError),
    #[error("storage failed")]
    Blob(#[source] BlobError),
    /// A resumable upload refuses a request for a reason of the upload protocol's own (tus):
    /// its kind decides the status.
    #[error("{1}")]
    Upload(UploadProblem, String),
    /// A refusal of the OCI distribution surface, in the spec's terms (its code decides the
    /// status there; other surfaces answer 404 for unknown things, 400 otherwise).
    #[error("{1}")]
    Oci(crate::domain::oci_manifest::OciCode, String),
}

/// Why a resumable upload refuses a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadProblem {
    /// A chunk that does not start where the upload ends (409).
    OffsetMismatch,
    /// A chunk unlike its `Upload-Checksum` (tus: 460); it was not kept.
    ChecksumMismatch,
    /// The upload expired (410).
    Expired,
    /// A protocol version the server does not speak (412).
    UnsupportedVersion,
    /// A body that is not `application/offset+octet-stream` (415).
    ContentType,
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        if error.is_full() {
            Error::StorageFull
        } else {
            Error::Store(error)
        }
    }
}

impl From<BlobError> for Error {
    fn from(error: BlobError) -> Self {
        match error {
            BlobError::TooLarge { .. } => Error::TooLarge,
            BlobError::StorageFull => Error::StorageFull,
            BlobError::BodyInterrupted(_) => Error::BodyInterrupted,
            BlobError::DigestMismatch(_) => {
                Error::BadRequest(format!("{error}: the file was not stored"))
            }
            other => Error::Blob(other),
        }
    }
}

impl Error {
    pub fn invalid(param: &str) -> Error {
        Error::InvalidParam {
            param: param.to_string(),
            problem: "is invalid".into(),
        }
    }

    pub fn invalid_path(param: &str) -> Error {
        Error::InvalidParam {
            param: param.to_string(),
            problem: "should be a valid file path".into(),
        }
    }

    pub fn missing(param: &str) -> Error {
        Error::InvalidParam {
            param: param.to_string(),
            problem: "is missing".into(),
        }
    }

    pub fn denied(message: impl Into<String>) -> Error {
        Error::Denied(message.into())
    }

    pub fn bad(message: impl Into<String>) -> Error {
        Error::BadRequest(message.into())
    }

    pub fn oci(code: crate::domain::oci_manifest::OciCode, message: impl Into<String>) -> Error {
        Error::Oci(code, message.into())
    }

    /// Whether this is the server's fault rather than the client's.
    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Store(_) | Error::Blob(_))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its causes, outermost first, `": "`-separated: what a log line of a 500 says.
/// A cause whose text its parent already shows (some errors print their source) is not repeated.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut last = text.clone();
    let mut cause = error.source();
    while let Some(error) = cause {
        let next = error.to_string();
        if !last.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        last = next;
        cause = error.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn a_store_error_wrapped_twice_logs_its_whole_chain() {
        let io = io::Error::new(
            io::ErrorKind::PermissionDenied,
            "Permission denied (os error 13)",
        );
        let store = StoreError::Io {
            action: "syncing the metadata files",
            source: io,
        };
        let shared = StoreError::Flush(std::sync::Arc::new(store));
        let error = Error::from(shared);
        assert_eq!(
            chain(&error),
            "storage failed: the shared metadata flush failed: metadata store I/O: syncing the \
             metadata files: Permission denied (os error 13)"
        );
        assert!(error.is_internal());
        // Each layer is the source of the one above it.
        let store = std::error::Error::source(&error).expect("the store error");
        assert!(store.to_string().contains("shared metadata flush"));
    }

    #[test]
    fn json_and_blob_causes_are_kept_and_not_repeated() {
        let json = serde_json::from_slice::<u64>(b"{").unwrap_err();
        let json_text = json.to_string();
        let error = Error::from(StoreError::Json {
            table: "models",
            source: json,
        });
        assert_eq!(
            chain(&error),
            format!("storage failed: metadata record in models is not decodable: {json_text}")
        );
        let blob = Error::from(BlobError::Io(io::Error::other("disk on fire")));
        assert_eq!(chain(&blob), "storage failed: blob store I/O: disk on fire");
        // A message that already quotes its cause is not followed by it again.
        #[derive(Debug, thiserror::Error)]
        #[error("outer: {0}")]
        struct Quoting(#[source] io::Error);
        assert_eq!(chain(&Quoting(io::Error::other("inner"))), "outer: inner");
    }
}
