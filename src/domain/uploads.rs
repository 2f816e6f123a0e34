//! Resumable uploads: the domain side of the tus 1.0 protocol. An upload is created for a
//! target (a generic package path: package name, version, file path; for a model version the
//! package `<model>/<version>`), receives its bytes in chunks that each start where the upload
//! ends, and, once complete, becomes a package file through the very function a `PUT` to the
//! same generic path calls ([`Registry::upload_to_generic_path`]): same permissions, names,
//! duplicate rules, digests and limits.
//!
//! Durability: a chunk is acknowledged only once its bytes are fsynced and the upload's record
//! (with the new offset) is durable. The record's offset is the truth: bytes past it (a chunk
//! that was being received when the server stopped) are cut off before the next chunk.
//!
//! Hashing: the md5, sha1 and sha256 of the file are computed while the chunks arrive and kept in
//! memory between chunks. After a restart (or whenever the kept state does not match the recorded
//! offset) they are recomputed once over the staged prefix before the next chunk is appended, so
//! completion never reads the file again and the staged file is moved into the blob store as is.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::access::{Action, Caller};
use super::error::{Error, Result, UploadProblem};
use super::package_paths::{Destination, GenericPath};
use super::packages::{Content, IncomingFile, Staged};
use super::projects::ProjectAccess;
use super::records::{now, PackageFile, Timestamp};
use super::schema::{self, resumable_uploads::ResumableUploads};
use super::Registry;
use crate::store::blobs::{BlobError, ByteStream, StoredBlob};
use crate::store::checksum::{ChunkHasher, Expected, HashState, ResumedHasher};

/// Chunks are regrouped into pieces of this size before they are hashed and written.
const PIECE: usize = 512 << 10;
/// Pieces a hasher or the writer may lag behind the network.
const DEPTH: usize = 4;
/// Expired uploads removed per pass of [`Registry::expire_uploads`].
const EXPIRE_BATCH: usize = 100;

/// An upload in progress, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResumableUpload {
    /// 32 lower-case hex digits: the name of its staged bytes too.
    pub id: String,
    pub project_id: u64,
    /// Who created it (`None` for a CI identity); only they may continue it.
    pub user_id: Option<u64>,
    pub package_name: String,
    pub package_version: String,
    /// The file's path inside the package (`dir/file.bin`).
    pub file_path: String,
    /// The file's size, declared at creation.
    pub length: u64,
    /// How many bytes are durable and acknowledged.
    pub offset: u64,
    /// `Upload-Metadata` as the client sent it, echoed by `HEAD`.
    pub metadata: String,
    /// Digests the complete file must have (declared at creation).
    pub sha256: Option<String>,
    pub sha1: Option<String>,
    pub md5: Option<String>,
    pub sha512: Option<String>,
    pub created_at: Timestamp,
    /// Pushed forward by every chunk; past it the upload is removed.
    pub expires_at: Timestamp,
}

impl ResumableUpload {
    fn expected(&self) -> Expected {
        Expected {
            md5: self.md5.clone(),
            sha1: self.sha1.clone(),
            sha256: self.sha256.clone(),
            sha512: self.sha512.clone(),
        }
    }

    /// The generic package path the finished file goes to.
    pub fn target(&self) -> GenericPath {
        let (path, file_name) = match self.file_path.rsplit_once('/') {
            Some((dir, name)) => (Some(dir.to_string()), name.to_string()),
            None => (None, self.file_path.clone()),
        };
        GenericPath {
            name: self.package_name.clone(),
            version: self.package_version.clone(),
            path,
            file_name,
        }
    }
}

/// What a client asks for when it creates an upload.
pub struct NewUpload {
    pub target: GenericPath,
    pub length: u64,
    pub metadata: String,
    pub expected: Expected,
}

/// A chunk's declared digest (tus `Upload-Checksum`): the algorithm and the raw digest bytes.
pub struct ChunkCheck {
    pub algorithm: String,
    pub digest: Vec<u8>,
}

/// Where an upload stands after a chunk.
pub enum Progress {
    /// More bytes are expected.
    Partial(ResumableUpload),
    /// The upload is complete and its file recorded; the upload itself is gone.
    Complete {
        upload: ResumableUpload,
        file: Box<PackageFile>,
    },
}

/// The running digests of an upload and the offset they were computed up to.
struct Running {
    offset: u64,
    hashes: HashState,
}

/// The uploads receiving a chunk, and the digests kept between chunks. A chunk waits for the
/// one before it on the same upload to end.
#[derive(Default)]
pub struct UploadSessions {
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Running>>>>>,
}

impl UploadSessions {
    fn of(&self, id: &str) -> Arc<tokio::sync::Mutex<Option<Running>>> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.entry(id.to_string()).or_default().clone()
    }

    fn forget(&self, id: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.remove(id);
    }
}

fn unknown() -> Error {
    Error::NotFound("Upload")
}

fn expired() -> Error {
    Error::Upload(
        UploadProblem::Expired,
        "the upload expired and its bytes were removed: start a new one".into(),
    )
}

/// Regroups a body into pieces of at least [`PIECE`] bytes (the last one shorter), so that the
/// hashers and the writer each take a few large pieces instead of many small frames. What
/// arrived before an error is passed on before it.
fn regroup(body: ByteStream) -> ByteStream {
    struct State {
        body: ByteStream,
        buffer: BytesMut,
        failed: Option<std::io::Error>,
        done: bool,
    }
    let state = State {
        body,
        buffer: BytesMut::new(),
        failed: None,
        done: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut s| async move {
        if let Some(error) = s.failed.take() {
            s.done = true;
            return Some((Err(error), s));
        }
        if s.done {
            return None;
        }
        loop {
            match s.body.next().await {
                Some(Ok(data)) if s.buffer.is_empty() && data.len() >= PIECE => {
                    return Some((Ok(data), s));
                }
                Some(Ok(data)) => {
                    if s.buffer.capacity() == 0 {
                        s.buffer.reserve(PIECE);
                    }
                    s.buffer.extend_from_slice(&data);
                    if s.buffer.len() >= PIECE {
                        let piece = s.buffer.split().freeze();
                        return Some((Ok(piece), s));
                    }
                }
                Some(Err(error)) => {
                    if s.buffer.is_empty() {
                        s.done = true;
                        return Some((Err(error), s));
                    }
                    s.failed = Some(error);
                    let piece = s.buffer.split().freeze();
                    return Some((Ok(piece), s));
                }
                None => {
                    s.done = true;
                    if s.buffer.is_empty() {
                        return None;
                    }
                    let piece = s.buffer.split().freeze();
                    return Some((Ok(piece), s));
                }
            }
        }
    }))
}

/// Feeds every piece of a body to the file's running digests and the chunk's own digest, and
/// counts the bytes.
struct Tap {
    hasher: ResumedHasher,
    chunk: Option<ChunkHasher>,
    bytes: AtomicU64,
}

fn tapped(body: ByteStream, tap: Arc<Tap>) -> ByteStream {
    Box::pin(body.then(move |next| {
        let tap = tap.clone();
        async move {
            if let Ok(data) = &next {
                let data: &Bytes = data;
                tap.hasher.feed(data).await;
                if let Some(chunk) = &tap.chunk {
                    chunk.feed(data).await;
                }
                tap.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            next
        }
    }))
}

impl Registry {
    /// Checks what a `PUT` of the target would check before any byte is received: the names,
    /// the caller's right to write there, the size limit, duplicates.
    fn check_upload_target(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        target: &GenericPath,
        length: u64,
    ) -> Result<()> {
        super::trust::check_package_name(caller, &target.name)?;
        match self.generic_destination(access, target)? {
            Destination::Generic(file_target) => {
                access.check(caller, Action::WritePackages)?;
                if length > self.limits.generic_file_bytes {
                    return Err(Error::TooLarge);
                }
                self.refuse_duplicate(&access.project, &file_target)
            }
            Destination::ModelVersion { version, .. } => {
                access.check(caller, Action::WriteRegistry)?;
                super::versions::exact_semver(&version)?;
                if length > self.limits.model_file_bytes {
                    return Err(Error::TooLarge);
                }
                Ok(())
            }
        }
    }

    /// The largest upload a client may create (tus `Tus-Max-Size`).
    pub fn max_upload_size(&self) -> u64 {
        self.limits
            .generic_file_bytes
            .max(self.limits.model_file_bytes)
    }

    fn expiry_from(&self, at: Timestamp) -> Timestamp {
        let hours = chrono::Duration::from_std(self.upload_expiry)
            .unwrap_or_else(|_| chrono::Duration::hours(24));
        at + hours
    }

    /// Creates an upload (tus creation): checked as a `PUT` of its target would be, then
    /// recorded with its staging file, durably.
    pub async fn create_upload(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        new: NewUpload,
    ) -> Result<ResumableUpload> {
        super::access::precheck(caller, Action::WritePackages)?;
        if new.length > self.max_upload_size() {
            return Err(Error::TooLarge);
        }
        self.check_upload_target(caller, access, &new.target, new.length)?;
        let at = now();
        let upload = ResumableUpload {
            id: hex::encode(rand::random::<[u8; 16]>()),
            project_id: access.project.id,
            user_id: caller.user_id(),
            package_name: new.target.name.clone(),
            package_version: new.target.version.clone(),
            file_path: super::packages::join_file_path(
                new.target.path.as_deref(),
                &new.target.file_name,
            ),
            length: new.length,
            offset: 0,
            metadata: new.metadata,
            sha256: new.expected.sha256,
            sha1: new.expected.sha1,
            md5: new.expected.md5,
            sha512: new.expected.sha512,
            created_at: at,
            expires_at: self.expiry_from(at),
        };
        self.blobs.start_upload(&upload.id).await?;
        let recorded = self
            .write(|tx| {
                schema::put::<ResumableUploads>(tx, &upload)?;
                Ok(())
            })
            .await;
        if let Err(error) = recorded {
            let _ = self.blobs.discard_upload(&upload.id).await;
            return Err(error);
        }
        Ok(upload)
    }

    /// The upload `id` of this project that the caller may continue: others' uploads and
    /// unknown ids are not found; an expired one is gone (410).
    pub fn upload_of(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        id: &str,
    ) -> Result<ResumableUpload> {
        if !crate::store::blobs::is_upload_id(id) {
            return Err(unknown());
        }
        let upload = schema::resumable_uploads::get(self.meta.as_ref(), id)?.ok_or_else(unknown)?;
        let own = upload.user_id.is_none() || upload.user_id == caller.user_id();
        if upload.project_id != access.project.id || !(own || caller.is_admin()) {
            return Err(unknown());
        }
        access.check(caller, Action::ReadPackages)?;
        if upload.expires_at <= now() {
            return Err(expired());
        }
        Ok(upload)
    }

    /// Recomputes the digests of an upload's first `offset` bytes, after cutting off anything
    /// past them.
    async fn rehash_prefix(&self, id: &str, offset: u64) -> Result<HashState> {
        self.blobs.truncate_upload(id, offset).await?;
        let hasher = ResumedHasher::resume(HashState::default(), DEPTH);
        let mut stream = self.blobs.read_upload(id).await?;
        let mut read = 0u64;
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(BlobError::Io)?;
            read += piece.len() as u64;
            hasher.feed(&piece).await;
        }
        let state = hasher.finish().await.map_err(BlobError::Io)?;
        if read != offset {
            return Err(Error::Blob(BlobError::Io(std::io::Error::other(format!(
                "upload {id} holds {read} bytes, its record {offset}"
            )))));
        }
        Ok(state)
    }

    /// Appends a chunk that starts at `offset` (tus `PATCH`). The chunk is acknowledged (the
    /// new offset returned) once durable; a chunk unlike its checksum is discarded (460); the
    /// chunk that completes the upload records the file exactly as a `PUT` would, checked
    /// again with the caller's rights at that moment.
    pub async fn append_to_upload(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        id: &str,
        offset: u64,
        body: ByteStream,
        check: Option<ChunkCheck>,
    ) -> Result<Progress> {
        self.upload_of(caller, access, id)?;
        let lock = self.resumable.of(id);
        let mut running = lock.lock().await;
        // The chunk before this one may have moved the offset, or finished the upload.
        let mut upload = self.upload_of(caller, access, id)?;
        if offset != upload.offset {
            return Err(Error::Upload(
                UploadProblem::OffsetMismatch,
                format!(
                    "the upload holds {} bytes: the next chunk starts at that offset, not {offset}",
                    upload.offset
                ),
            ));
        }
        let chunk = match check {
            Some(check) => Some((
                ChunkHasher::start(&check.algorithm, DEPTH).ok_or_else(|| {
                    Error::bad(format!(
                        "Upload-Checksum algorithm '{}' is not supported",
                        check.algorithm
                    ))
                })?,
                check.digest,
            )),
            None => None,
        };
        let before = match running.take() {
            Some(r) if r.offset == upload.offset => r.hashes,
            _ => self.rehash_prefix(id, upload.offset).await?,
        };
        let (chunk_hasher, declared) = match chunk {
            Some((hasher, digest)) => (Some(hasher), Some(digest)),
            None => (None, None),
        };
        let tap = Arc::new(Tap {
            hasher: ResumedHasher::resume(before.clone(), DEPTH),
            chunk: chunk_hasher,
            bytes: AtomicU64::new(0),
        });
        let appended = self
            .blobs
            .append_upload(id, tapped(regroup(body), tap.clone()), upload.length)
            .await;
        let Some(tap) = Arc::into_inner(tap) else {
            return Err(Error::Blob(BlobError::Io(std::io::Error::other(
                "a chunk's body outlived its request",
            ))));
        };
        let fed = tap.bytes.load(Ordering::Relaxed);
        let after = tap.hasher.finish().await.map_err(BlobError::Io)?;
        let chunk_digest = match tap.chunk {
            Some(hasher) => Some(hasher.finish().await.map_err(BlobError::Io)?),
            None => None,
        };
        let refuse = async |error: Error, running: &mut Option<Running>| {
            // Nothing of the chunk is kept: the upload is where it was.
            self.blobs.truncate_upload(id, upload.offset).await?;
            *running = Some(Running {
                offset: upload.offset,
                hashes: before.clone(),
            });
            Err::<Progress, Error>(error)
        };
        let size = match appended {
            Ok(size) => size,
            // A chunk without a checksum that broke off keeps what arrived (tus core): the
            // client asks where to resume with HEAD.
            Err(BlobError::BodyInterrupted(_)) if declared.is_none() => {
                let size = self.blobs.upload_size(id).await?.unwrap_or(upload.offset);
                if size != upload.offset + fed {
                    return refuse(Error::BodyInterrupted, &mut running).await;
                }
                if size > upload.offset {
                    upload.offset = size;
                    upload.expires_at = self.expiry_from(now());
                    self.write(|tx| {
                        schema::put::<ResumableUploads>(tx, &upload)?;
                        Ok(())
                    })
                    .await?;
                    *running = Some(Running {
                        offset: size,
                        hashes: after,
                    });
                }
                return Err(Error::BodyInterrupted);
            }
            Err(BlobError::TooLarge { .. }) => {
                return refuse(
                    Error::bad(format!(
                        "the chunk goes past the upload's length of {} bytes",
                        upload.length
                    )),
                    &mut running,
                )
                .await;
            }
            Err(other) => return refuse(other.into(), &mut running).await,
        };
        if let (Some(declared), Some(actual)) = (&declared, &chunk_digest) {
            if declared != actual {
                return refuse(
                    Error::Upload(
                        UploadProblem::ChecksumMismatch,
                        "the chunk does not have the digest its Upload-Checksum declares: it was discarded".into(),
                    ),
                    &mut running,).await;
            }
        }
        if size != upload.offset + fed {
            return refuse(
                Error::Blob(BlobError::Io(std::io::Error::other(format!(
                    "upload {id}: {fed} bytes hashed, {} written",
                    size - upload.offset
                )))),
                &mut running,
            )
            .await;
        }
        upload.offset = size;
        if size < upload.length {
            upload.expires_at = self.expiry_from(now());
            self.write(|tx| {
                schema::put::<ResumableUploads>(tx, &upload)?;
                Ok(())
            })
            .await?;
            *running = Some(Running {
                offset: size,
                hashes: after,
            });
            return Ok(Progress::Partial(upload));
        }
        let file = self
            .complete_upload(caller, access, &upload, after.digests())
            .await;
        *running = None;
        drop(running);
        self.resumable.forget(id);
        Ok(Progress::Complete {
            upload,
            file: Box::new(file?),
        })
    }

    /// Records a complete upload as its target's file, through the same function a `PUT` of the
    /// target calls; the upload is removed whatever the outcome (a refusal cannot be fixed by
    /// sending the bytes again).
    async fn complete_upload(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        upload: &ResumableUpload,
        digests: crate::store::checksum::Digests,
    ) -> Result<PackageFile> {
        let incoming = IncomingFile {
            body: Content::Staged(Staged {
                upload_id: upload.id.clone(),
                size: upload.offset,
                digests,
            }),
            declared_len: Some(upload.offset),
            status: None,
            expected: upload.expected(),
            deploy: false,
        };
        let recorded = self
            .upload_to_generic_path(caller, access, &upload.target(), incoming)
            .await;
        self.remove_upload(&upload.id).await?;
        recorded
    }

    /// Moves a complete upload's bytes into the blob store (checked against the declared
    /// digests first), as [`crate::store::blobs::BlobStore::put_checked`] stores a body.
    pub(crate) async fn install_staged(
        &self,
        staged: Staged,
        expected: &Expected,
    ) -> Result<StoredBlob> {
        if expected.sha512.is_some() {
            return Err(Error::bad(
                "a resumable upload is checked by sha256, sha1 and md5: leave sha-512 out",
            ));
        }
        if let Some(mismatch) = expected.mismatch(&staged.digests, None) {
            return Err(BlobError::DigestMismatch(mismatch).into());
        }
        self.blobs
            .install_upload(&staged.upload_id, &staged.digests.sha256)
            .await?;
        Ok(StoredBlob {
            size: staged.size,
            digests: staged.digests,
        })
    }

    /// Removes an upload's record and whatever is left of its bytes.
    async fn remove_upload(&self, id: &str) -> Result<()> {
        self.write(|tx| {
            schema::resumable_uploads::remove(tx, id)?;
            Ok(())
        })
        .await?;
        self.blobs.discard_upload(id).await?;
        Ok(())
    }

    /// Terminates an upload (tus termination): its record and bytes are removed.
    pub async fn terminate_upload(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        id: &str,
    ) -> Result<()> {
        self.upload_of(caller, access, id)?;
        let lock = self.resumable.of(id);
        let _held = lock.lock().await;
        self.remove_upload(id).await?;
        self.resumable.forget(id);
        Ok(())
    }

    /// Removes uploads whose expiry passed, with their bytes; returns how many. Called in the
    /// background by the server.
    pub async fn expire_uploads(&self) -> Result<usize> {
        let mut removed = 0;
        loop {
            let ids = schema::resumable_uploads::expired(
                self.meta.as_ref(),
                now().timestamp_millis(),
                EXPIRE_BATCH,
            )?;
            if ids.is_empty() {
                return Ok(removed);
            }
            for id in &ids {
                let lock = self.resumable.of(id);
                let _held = lock.lock().await;
                // A chunk may have pushed the expiry forward while this waited.
                let still = schema::resumable_uploads::get(self.meta.as_ref(), id)?;
                if still.is_some_and(|u| u.expires_at <= now()) {
                    self.remove_upload(id).await?;
                    removed += 1;
                }
                drop(_held);
                self.resumable.forget(id);
            }
            if ids.len() < EXPIRE_BATCH {
                return Ok(removed);
            }
        }
    }
}
