//! The blob store: file contents, addressed by their sha256.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;

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

/// Where the bytes of a blob can be read from.
#[derive(Debug, Clone)]
pub enum BlobLocation {
    LocalFile(PathBuf),
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
    /// Where to read a blob from.
    fn locate(&self, sha256: &str) -> Result<BlobLocation, BlobError>;
    fn exists(&self, sha256: &str) -> bool;
    /// Every stored blob's sha256.
    fn list(&self) -> Result<Vec<String>, BlobError>;
    /// Deletes a blob; returns the bytes freed.
    fn remove(&self, sha256: &str) -> Result<u64, BlobError>;
    /// Deletes a blob unless it was stored, or stored again (identical content kept once), at
    /// or after `since`: an upload in flight may be about to record it. Returns the bytes
    /// freed, `None` when it was kept or is not there.
    fn remove_unless_stored_since(
        &self,
        sha256: &str,
        since: std::time::SystemTime,
    ) -> Result<Option<u64>, BlobError> {
        let _ = since;
        if !self.exists(sha256) {
            return Ok(None);
        }
        self.remove(sha256).map(Some)
    }
    /// Re-reads a blob and returns its actual sha256.
    fn rehash(&self, sha256: &str) -> Result<String, BlobError>;
    /// Removes staging leftovers of an earlier run; returns how many.
    fn clean_staging(&self) -> Result<usize, BlobError>;
    /// Whether the store takes a write right now (a small file written, synced and removed
    /// where uploads are staged).
    fn probe_write(&self) -> Result<(), BlobError> {
        Ok(())
    }

    /// Starts an upload received over several requests (OCI chunked uploads), named by `id`
    /// (32 lower-case hex digits). Its bytes survive restarts until finished or discarded.
    fn start_upload(&self, id: &str) -> Result<(), BlobError>;
    /// Appends a body to an upload and makes it durable; returns the upload's size. A body
    /// that breaks off keeps what arrived: [`BlobStore::upload_size`] says how much.
    async fn append_upload(&self, id: &str, body: ByteStream, limit: u64)
        -> Result<u64, BlobError>;
    /// How many bytes an upload holds; `None` when there is no such upload.
    fn upload_size(&self, id: &str) -> Result<Option<u64>, BlobError>;
    /// Hashes a complete upload and moves it to its address, like [`BlobStore::put`].
    async fn finish_upload(&self, id: &str) -> Result<StoredBlob, BlobError>;
    /// Removes an upload's bytes (absent ones too).
    fn discard_upload(&self, id: &str) -> Result<(), BlobError>;
    /// The ids of every upload on disk, for gc.
    fn list_uploads(&self) -> Result<Vec<String>, BlobError>;
    /// Cuts an upload back to its first `len` bytes, durably (bytes past an acknowledged offset,
    /// or a chunk refused after it was written, are not kept).
    fn truncate_upload(&self, id: &str, len: u64) -> Result<(), BlobError>;
    /// The bytes an upload holds, streamed (to hash them again after a restart).
    fn read_upload(&self, id: &str) -> Result<ByteStream, BlobError>;
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
