//! The blob store: file contents, addressed by their sha256.

use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::Stream;

use super::checksum::{Digests, Expected, Mismatch};

/// A request body as the blob store consumes it.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;

/// A blob made durable by [`BlobStore::put`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub size: u64,
    pub digests: Digests,
}

/// What [`BlobStore::stat`] says about a stored blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfo {
    pub size: u64,
    /// When the blob was stored (what `Last-Modified` says when nothing better is known).
    pub modified: Option<SystemTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the body is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the request body ended early: {0}")]
    BodyInterrupted(String),
    #[error("no space left on the blob store's device")]
    StorageFull,
    /// The body is not what the client declared (nothing was kept).
    #[error("the body's {} is {}, but the request declared {}", .0.algorithm, .0.actual, .0.declared)]
    DigestMismatch(Mismatch),
    #[error("blob {0} does not exist")]
    Missing(String),
    #[error("blob store I/O")]
    Io(#[from] io::Error),
}

impl BlobError {
    /// Classifies an I/O error, recognising a full disk.
    pub fn from_io(error: io::Error) -> BlobError {
        if error.kind() == io::ErrorKind::StorageFull || error.raw_os_error() == Some(28) {
            BlobError::StorageFull
        } else {
            BlobError::Io(error)
        }
    }
}

#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Streams `body` to durable storage while hashing it. On success the blob is durable and
    /// addressable by its sha256; on any failure nothing is left behind.
    async fn put(&self, body: ByteStream, limit: u64) -> Result<StoredBlob, BlobError> {
        self.put_checked(body, limit, &Expected::default()).await
    }
    /// [`BlobStore::put`], refusing (and keeping nothing of) a body whose digests differ from
    /// the ones `expected` declares: [`BlobError::DigestMismatch`].
    async fn put_checked(
        &self,
        body: ByteStream,
        limit: u64,
        expected: &Expected,
    ) -> Result<StoredBlob, BlobError>;
    /// A stored blob's size and time; [`BlobError::Missing`] when there is no such blob.
    async fn stat(&self, sha256: &str) -> Result<BlobInfo, BlobError>;
    /// The bytes of a stored blob, streamed: all of them, or those of `range` (which the
    /// caller has checked against [`BlobStore::stat`]'s size). Memory stays bounded whatever
    /// the size; [`BlobError::Missing`] when there is no such blob.
    async fn open(&self, sha256: &str, range: Option<Range<u64>>) -> Result<ByteStream, BlobError>;
    async fn exists(&self, sha256: &str) -> Result<bool, BlobError> {
        match self.stat(sha256).await {
            Ok(_) => Ok(true),
            Err(BlobError::Missing(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }
    /// Every stored blob's sha256, sorted.
    async fn list(&self) -> Result<Vec<String>, BlobError>;
    /// Deletes a blob; returns the bytes freed.
    async fn remove(&self, sha256: &str) -> Result<u64, BlobError>;
    /// Deletes a blob unless it was stored, or stored again (identical content kept once), at
    /// or after `since`: an upload in flight may be about to record it. Returns the bytes
    /// freed, `None` when it was kept or is not there. This default goes by [`BlobStore::stat`]'s
    /// time; a store that does not refresh it on a repeated put keeps a smaller window open.
    async fn remove_unless_stored_since(
        &self,
        sha256: &str,
        since: SystemTime,
    ) -> Result<Option<u64>, BlobError> {
        let info = match self.stat(sha256).await {
            Ok(info) => info,
            Err(BlobError::Missing(_)) => return Ok(None),
            Err(error) => return Err(error),
        };
        if info.modified.is_some_and(|at| at >= since) {
            return Ok(None);
        }
        match self.remove(sha256).await {
            Ok(freed) => Ok(Some(freed)),
            Err(BlobError::Missing(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }
    /// Re-reads a blob and returns its actual sha256.
    async fn rehash(&self, sha256: &str) -> Result<String, BlobError> {
        use futures_util::StreamExt;
        use sha2::Digest;
        let mut stream = self.open(sha256, None).await?;
        let mut hasher = sha2::Sha256::new();
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk?);
        }
        Ok(hex::encode(hasher.finalize()))
    }
    /// Removes staging leftovers of an earlier run; returns how many.
    async fn clean_staging(&self) -> Result<usize, BlobError>;
    /// Whether the store takes a write right now (a small object written, made durable and
    /// removed where uploads are staged).
    async fn probe_write(&self) -> Result<(), BlobError> {
        Ok(())
    }
    /// A URL that serves the blob for `expires` without credentials (the S3 back-end's
    /// presigned GET), when the store offers one and was told to.
    async fn redirect_url(
        &self,
        _sha256: &str,
        _file_name: Option<&str>,
    ) -> Result<Option<String>, BlobError> {
        Ok(None)
    }

    /// Starts an upload received over several requests (OCI chunked uploads), named by `id`
    /// (32 lower-case hex digits). Its bytes survive restarts until finished or discarded.
    async fn start_upload(&self, id: &str) -> Result<(), BlobError>;
    /// Appends a body to an upload and makes it durable; returns the upload's size. A body
    /// that breaks off keeps what arrived: [`BlobStore::upload_size`] says how much.
    async fn append_upload(&self, id: &str, body: ByteStream, limit: u64)
        -> Result<u64, BlobError>;
    /// How many bytes an upload holds; `None` when there is no such upload.
    async fn upload_size(&self, id: &str) -> Result<Option<u64>, BlobError>;
    /// Hashes a complete upload and moves it to its address, like [`BlobStore::put`].
    async fn finish_upload(&self, id: &str) -> Result<StoredBlob, BlobError>;
    /// Removes an upload's bytes (absent ones too).
    async fn discard_upload(&self, id: &str) -> Result<(), BlobError>;
    /// The ids of every upload held, for gc.
    async fn list_uploads(&self) -> Result<Vec<String>, BlobError>;
    /// Cuts an upload back to its first `len` bytes, durably (bytes past an acknowledged offset,
    /// or a chunk refused after it was written, are not kept).
    async fn truncate_upload(&self, id: &str, len: u64) -> Result<(), BlobError>;
    /// The bytes an upload holds, streamed (to hash them again after a restart).
    async fn read_upload(&self, id: &str) -> Result<ByteStream, BlobError>;
    /// Moves a complete upload whose sha256 the caller computed while it arrived to its
    /// address, without reading it again; identical content is kept once.
    async fn install_upload(&self, id: &str, sha256: &str) -> Result<(), BlobError>;
}

/// Whether `id` names an upload: 32 lower-case hex digits.
pub fn is_upload_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
