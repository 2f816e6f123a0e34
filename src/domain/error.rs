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
    #[error("forbidden")]
    Forbidden,
    /// A request parameter is unusable; `problem` completes "<param> ...", e.g. "is invalid".
    #[error("{param} {problem}")]
    InvalidParam { param: String, problem: String },
    /// A rule of the domain refuses the request; the text says which.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("File is too large")]
    TooLarge,
    #[error("Duplicate package is not allowed")]
    DuplicateNotAllowed,
    #[error("no space left on the storage device")]
    StorageFull,
    #[error("the request body ended before it was complete")]
    BodyInterrupted,
    /// A request body (not an uploaded file) larger than its route accepts.
    #[error("the request body is larger than the {limit} bytes this route accepts")]
    RequestTooLarge { limit: u64 },
    #[error(transparent)]
    Store(StoreError),
    #[error("blob store: {0}")]
    Blob(BlobError),
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Full => Error::StorageFull,
            other => Error::Store(other),
        }
    }
}

impl From<BlobError> for Error {
    fn from(error: BlobError) -> Self {
        match error {
            BlobError::TooLarge { .. } => Error::TooLarge,
            BlobError::StorageFull => Error::StorageFull,
            BlobError::BodyInterrupted(_) => Error::BodyInterrupted,
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

    pub fn bad(message: impl Into<String>) -> Error {
        Error::BadRequest(message.into())
    }

    /// Whether this is the server's fault rather than the client's.
    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Store(_) | Error::Blob(_))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
