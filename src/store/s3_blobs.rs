//! Blobs in an S3-compatible object store (AWS S3, garage, s3s-fs, MinIO...), through the
//! `object_store` crate. A replica keeps nothing of its own: every byte, finished or not, is an
//! object in the bucket, so any replica can continue what another started.
//!
//! Keys under the configured prefix `P`:
//! - `P/blobs/<sha256>`: a stored blob, at its content address.
//! - `P/staging/<random>`: an upload being placed. A body streams through the hashers into a
//!   multipart upload at a staging key (a single PUT when it is smaller than one part); only once
//!   the upload completed and the digests are known is it copied to its content address (a blob
//!   already there is simply kept) and the staging object deleted. Any failure aborts the
//!   multipart upload: nothing becomes visible. Uniqueness never relies on conditional writes
//!   (garage ignores `If-None-Match`); identical content is identical bytes, so two replicas
//!   placing the same blob at once is harmless.
//! - `P/uploads/<id>/started` and `P/uploads/<id>/<offset>`: an upload received over several
//!   requests (OCI chunked, tus). Each appended body is its own object, named by the offset it
//!   starts at (20 digits, so that names sort by offset); the upload's size is the end of its
//!   last part, its bytes the parts in order. Cutting an upload back deletes the parts past the
//!   cut and rewrites the one it falls in.

use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};

use super::blobs::{is_upload_id, BlobError, BlobInfo, BlobStore, ByteStream, StoredBlob};
use super::checksum::{Expected, ParallelHasher, SingleHasher};
use super::chunk_pool::release_free_heap;
use super::s3_writer::PartWriter;

/// Bodies are regrouped into chunks of this size before hashing and writing (as on disk).
const CHUNK: usize = 512 << 10;
/// Chunks a hasher may lag behind the network.
const QUEUE_DEPTH: usize = 4;
/// The size of a multipart upload's parts (S3's minimum); a smaller body is one PUT.
const PART: usize = 5 << 20;
/// Parts of one upload in flight at once: an upload holds at most (this + 1) parts in memory.
const PARTS_IN_FLIGHT: usize = 2;
/// Staging objects older than this are leftovers of a replica that stopped mid-placement.
const STAGING_MAX_AGE: Duration = Duration::from_secs(3600);

/// Where and how to reach the bucket. Credentials come from the usual `AWS_*` variables.
#[derive(Clone, Debug, Default)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix inside the bucket (no leading or trailing `/`; may be empty).
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`) instead of virtual-hosted ones.
    pub path_style: bool,
    pub allow_http: bool,
    /// Downloads answer with a redirect to a URL presigned for this long.
    pub redirect: Option<Duration>,
}

impl S3Config {
    /// Parses `s3://bucket[/prefix]`.
    pub fn from_url(url: &str) -> Result<S3Config, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url} is neither `local` nor an s3://bucket/prefix URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{url} names no bucket (s3://bucket/prefix)"));
        }
        Ok(S3Config {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            ..S3Config::default()
        })
    }
}

pub struct S3Blobs {
    s3: Arc<AmazonS3>,
    store: Arc<dyn ObjectStore>,
    prefix: String,
    redirect: Option<Duration>,
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn io_error(error: object_store::Error) -> BlobError {
    BlobError::Io(io::Error::other(error))
}

/// Object-store errors of a named blob or upload: a missing object is [`BlobError::Missing`].
fn named_error(name: &str) -> impl Fn(object_store::Error) -> BlobError + '_ {
    move |error| match error {
        object_store::Error::NotFound { .. } => BlobError::Missing(name.to_string()),
        other => io_error(other),
    }
}

fn random_name() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// A part's object name: its offset, 20 digits so that names sort by offset.
fn part_name(offset: u64) -> String {
    format!("{offset:020}")
}

/// Regroups a body into `CHUNK`-sized pieces; the last may be shorter.
struct Regroup {
    pending: BytesMut,
}

impl Regroup {
    fn new() -> Self {
        Regroup {
            pending: BytesMut::new(),
        }
    }

    /// Takes `data`; returns the chunks it completed.
    fn push(&mut self, mut data: Bytes) -> Vec<Bytes> {
        let mut out = Vec::new();
        while !data.is_empty() {
            if self.pending.is_empty() && data.len() >= CHUNK {
                out.push(data.split_to(CHUNK));
                continue;
            }
            if self.pending.capacity() < CHUNK {
                self.pending.reserve(CHUNK - self.pending.len());
            }
            let take = data.len().min(CHUNK - self.pending.len());
            self.pending.extend_from_slice(&data.split_to(take));
            if self.pending.len() == CHUNK {
                out.push(self.pending.split().freeze());
            }
        }
        out
    }

    fn finish(self) -> Option<Bytes> {
        (!self.pending.is_empty()).then(|| self.pending.freeze())
    }
}

/// A write in progress. Dropped before it is done (the request was cancelled: its client went
/// away), it aborts the multipart upload and deletes the object it names, in the background:
/// nothing is left behind. Failures that return normally abort and wait for it themselves.
struct Pending {
    writer: Option<PartWriter>,
    /// Deleted when dropped (the staging object), until the write is placed.
    cleanup: Option<(Arc<dyn ObjectStore>, Path)>,
}

impl Pending {
    fn writer(&mut self) -> Result<&mut PartWriter, BlobError> {
        self.writer
            .as_mut()
            .ok_or_else(|| BlobError::Io(io::Error::other("the S3 upload is already finished")))
    }

    /// Aborts the multipart upload (nothing of it stays in the bucket).
    async fn abort(&mut self) {
        if let Some(mut writer) = self.writer.take() {
            let _ = writer.abort().await;
        }
    }

    /// Completes the upload: the object exists once this returns `Ok`.
    async fn complete(&mut self) -> Result<(), BlobError> {
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| BlobError::Io(io::Error::other("the S3 upload is already finished")))?;
        writer.finish().await.map_err(io_error)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let (writer, cleanup) = (self.writer.take(), self.cleanup.take());
        if writer.is_none() && cleanup.is_none() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Some(mut writer) = writer {
                    let _ = writer.abort().await;
                }
                if let Some((store, key)) = cleanup {
                    let _ = store.delete(&key).await;
                }
            });
        }
    }
}

impl S3Blobs {
    /// Connects to the bucket (nothing is sent until the first request) with the credentials
    /// (and any other `AWS_*` setting) of the environment; the explicit options win over them.
    pub fn open(config: &S3Config) -> Result<S3Blobs, BlobError> {
        Self::build(AmazonS3Builder::from_env(), config)
    }

    /// [`S3Blobs::open`] with the given credentials.
    pub fn open_with_credentials(
        config: &S3Config,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Result<S3Blobs, BlobError> {
        let builder = AmazonS3Builder::new()
            .with_access_key_id(access_key_id)
            .with_secret_access_key(secret_access_key);
        Self::build(builder, config)
    }

    fn build(builder: AmazonS3Builder, config: &S3Config) -> Result<S3Blobs, BlobError> {
        let mut builder = builder
            .with_bucket_name(&config.bucket)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        let s3 = Arc::new(builder.build().map_err(io_error)?);
        Ok(S3Blobs {
            store: s3.clone(),
            s3,
            prefix: config.prefix.clone(),
            redirect: config.redirect,
        })
    }

    fn key(&self, relative: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(relative)
        } else {
            Path::from(format!("{}/{relative}", self.prefix))
        }
    }

    fn blob_key(&self, sha256: &str) -> Result<Path, BlobError> {
        if !is_sha256(sha256) {
            return Err(BlobError::Missing(sha256.to_string()));
        }
        Ok(self.key(&format!("blobs/{sha256}")))
    }

    fn upload_dir(&self, id: &str) -> Result<Path, BlobError> {
        if !is_upload_id(id) {
            return Err(BlobError::Missing(id.to_string()));
        }
        Ok(self.key(&format!("uploads/{id}")))
    }

    /// A write to `key`; `staging` ones delete their object too when dropped unfinished.
    fn pending(&self, key: Path, staging: bool) -> Pending {
        Pending {
            writer: Some(PartWriter::new(
                self.store.clone(),
                key.clone(),
                PART,
                PARTS_IN_FLIGHT,
            )),
            cleanup: staging.then(|| (self.store.clone(), key)),
        }
    }

    /// Every object of an upload: whether it was started, and its parts `(offset, size, key)`
    /// in order. `None` when there is no such upload.
    async fn upload_parts(&self, id: &str) -> Result<Option<Vec<(u64, u64, Path)>>, BlobError> {
        let dir = self.upload_dir(id)?;
        let objects: Vec<_> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(io_error)?;
        if objects.is_empty() {
            return Ok(None);
        }
        let mut parts: Vec<(u64, u64, Path)> = objects
            .into_iter()
            .filter_map(|meta| {
                let offset = meta.location.filename()?.parse::<u64>().ok()?;
                Some((offset, meta.size, meta.location))
            })
            .collect();
        parts.sort_by_key(|(offset, _, _)| *offset);
        Ok(Some(parts))
    }

    /// Places a completed staging object at the content address `sha256` (a blob already there
    /// is kept), then deletes the staging object.
    async fn place(&self, staged: &Path, sha256: &str) -> Result<(), BlobError> {
        let target = self.blob_key(sha256)?;
        let placed = match self.store.head(&target).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => {
                self.store.copy(staged, &target).await.map_err(io_error)
            }
            Err(other) => Err(io_error(other)),
        };
        let removed = self.store.delete(staged).await.map_err(io_error);
        placed?;
        if let Err(error) = removed {
            tracing::warn!(%error, "a staging object was left behind (clean_staging removes it)");
        }
        Ok(())
    }

    /// Streams `body` into `writer`, `CHUNK` by `CHUNK`, through the hashers when given; stops
    /// at the first error (the caller aborts or keeps what was written). Returns the bytes written.
    async fn stream_into(
        writer: &mut PartWriter,
        mut body: ByteStream,
        already: u64,
        limit: u64,
        hashers: Option<(&ParallelHasher, Option<&SingleHasher>)>,
    ) -> (u64, Result<(), BlobError>) {
        let mut regroup = Regroup::new();
        let mut written = 0u64;
        let mut size = already;
        async fn send(
            writer: &mut PartWriter,
            chunk: Bytes,
            hashers: Option<(&ParallelHasher, Option<&SingleHasher>)>,
        ) -> Result<(), BlobError> {
            if let Some((hasher, sha512)) = hashers {
                hasher.feed(&chunk).await;
                if let Some(sha512) = sha512 {
                    sha512.feed(&chunk).await;
                }
            }
            writer.put(chunk).await.map_err(io_error)
        }
        while let Some(next) = body.next().await {
            let data = match next {
                Ok(data) => data,
                Err(error) => {
                    // What arrived before the break is still written (multi-request uploads
                    // keep it).
                    if let Some(tail) = regroup.finish() {
                        written += tail.len() as u64;
                        if let Err(error) = send(writer, tail, hashers).await {
                            return (written, Err(error));
                        }
                    }
                    return (written, Err(BlobError::BodyInterrupted(error.to_string())));
                }
            };
            size += data.len() as u64;
            if size > limit {
                return (written, Err(BlobError::TooLarge { limit }));
            }
            for chunk in regroup.push(data) {
                written += chunk.len() as u64;
                if let Err(error) = send(writer, chunk, hashers).await {
                    return (written, Err(error));
                }
            }
        }
        if let Some(tail) = regroup.finish() {
            written += tail.len() as u64;
            if let Err(error) = send(writer, tail, hashers).await {
                return (written, Err(error));
            }
        }
        (written, Ok(()))
    }

    /// The bytes of an upload's parts, streamed in order.
    fn concat(&self, parts: Vec<(u64, u64, Path)>) -> ByteStream {
        let store = self.store.clone();
        Box::pin(
            futures_util::stream::iter(parts)
                .then(move |(_, _, key)| {
                    let store = store.clone();
                    async move { store.get(&key).await.map(|got| got.into_stream()) }
                })
                .try_flatten()
                .map_err(io::Error::from),
        )
    }
}

#[async_trait::async_trait]
impl BlobStore for S3Blobs {
    async fn put_checked(
        &self,
        body: ByteStream,
        limit: u64,
        expected: &Expected,
    ) -> Result<StoredBlob, BlobError> {
        let staged = self.key(&format!("staging/{}", random_name()));
        // The parts are buffered in 5 MiB blocks, which glibc keeps in its arenas once freed:
        // hand what earlier uploads left there back first (and again once its body is in).
        tokio::task::spawn_blocking(release_free_heap);
        let hasher = ParallelHasher::start(QUEUE_DEPTH);
        let sha512 = expected
            .sha512
            .is_some()
            .then(|| SingleHasher::sha512(QUEUE_DEPTH));
        let mut pending = self.pending(staged.clone(), true);
        let (size, streamed) = Self::stream_into(
            pending.writer()?,
            body,
            0,
            limit,
            Some((&hasher, sha512.as_ref())),
        )
        .await;
        let digests = hasher.finish().await;
        let sha512 = match sha512 {
            Some(hasher) => Some(hasher.finish().await),
            None => None,
        };
        tokio::task::spawn_blocking(release_free_heap);
        if let Err(error) = streamed {
            // The multipart upload is aborted: no part of it stays in the bucket.
            pending.abort().await;
            return Err(error);
        }
        let (digests, sha512) = match (digests, sha512.transpose()) {
            (Ok(digests), Ok(sha512)) => (digests, sha512),
            (Err(error), _) | (_, Err(error)) => {
                pending.abort().await;
                return Err(BlobError::Io(error));
            }
        };
        if let Some(mismatch) = expected.mismatch(&digests, sha512.as_deref()) {
            pending.abort().await;
            return Err(BlobError::DigestMismatch(mismatch));
        }
        if let Err(error) = pending.complete().await {
            // A failed completion leaves no object; a staging object that did land is removed.
            let _ = self.store.delete(&staged).await;
            pending.cleanup = None;
            return Err(error);
        }
        self.place(&staged, &digests.sha256).await?;
        pending.cleanup = None;
        Ok(StoredBlob { size, digests })
    }

    async fn stat(&self, sha256: &str) -> Result<BlobInfo, BlobError> {
        let meta = self
            .store
            .head(&self.blob_key(sha256)?)
            .await
            .map_err(named_error(sha256))?;
        Ok(BlobInfo {
            size: meta.size,
            modified: Some(SystemTime::from(meta.last_modified)),
        })
    }

    async fn open(&self, sha256: &str, range: Option<Range<u64>>) -> Result<ByteStream, BlobError> {
        let key = self.blob_key(sha256)?;
        if range.as_ref().is_some_and(|r| r.is_empty()) {
            self.stat(sha256).await?;
            return Ok(Box::pin(futures_util::stream::empty::<io::Result<Bytes>>()));
        }
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let got = self
            .store
            .get_opts(&key, options)
            .await
            .map_err(named_error(sha256))?;
        Ok(Box::pin(got.into_stream().map_err(io::Error::from)))
    }

    async fn list(&self) -> Result<Vec<String>, BlobError> {
        let dir = self.key("blobs");
        let mut out: Vec<String> = self
            .store
            .list(Some(&dir))
            .try_filter_map(|meta| async move {
                Ok(meta
                    .location
                    .filename()
                    .filter(|name| is_sha256(name))
                    .map(str::to_string))
            })
            .try_collect()
            .await
            .map_err(io_error)?;
        out.sort();
        Ok(out)
    }

    async fn remove(&self, sha256: &str) -> Result<u64, BlobError> {
        let key = self.blob_key(sha256)?;
        let meta = self.store.head(&key).await.map_err(named_error(sha256))?;
        self.store.delete(&key).await.map_err(io_error)?;
        Ok(meta.size)
    }

    async fn clean_staging(&self) -> Result<usize, BlobError> {
        // Other replicas may be placing blobs right now: only old leftovers are removed.
        let dir = self.key("staging");
        let cutoff =
            chrono::Utc::now() - chrono::TimeDelta::seconds(STAGING_MAX_AGE.as_secs() as i64);
        let old: Vec<Path> = self
            .store
            .list(Some(&dir))
            .try_filter_map(|meta| async move {
                Ok((meta.last_modified < cutoff).then_some(meta.location))
            })
            .try_collect()
            .await
            .map_err(io_error)?;
        for key in &old {
            self.store.delete(key).await.map_err(io_error)?;
        }
        Ok(old.len())
    }

    async fn probe_write(&self) -> Result<(), BlobError> {
        let key = self.key(&format!("staging/probe-{}", random_name()));
        let written = self
            .store
            .put(&key, PutPayload::from_static(&[0u8; 4096]))
            .await;
        let removed = self.store.delete(&key).await;
        written.map_err(io_error)?;
        removed.map_err(io_error)
    }

    async fn redirect_url(
        &self,
        sha256: &str,
        _file_name: Option<&str>,
    ) -> Result<Option<String>, BlobError> {
        let Some(expires) = self.redirect else {
            return Ok(None);
        };
        let url = self
            .s3
            .signed_url(
                object_store::signer::Method::GET,
                &self.blob_key(sha256)?,
                expires,
            )
            .await
            .map_err(io_error)?;
        Ok(Some(url.to_string()))
    }

    async fn start_upload(&self, id: &str) -> Result<(), BlobError> {
        let key = self.upload_dir(id)?.join("started");
        self.store
            .put(&key, PutPayload::new())
            .await
            .map_err(io_error)?;
        Ok(())
    }

    async fn append_upload(
        &self,
        id: &str,
        body: ByteStream,
        limit: u64,
    ) -> Result<u64, BlobError> {
        let size = self
            .upload_size(id)
            .await?
            .ok_or_else(|| BlobError::Missing(id.to_string()))?;
        let key = self.upload_dir(id)?.join(part_name(size));
        let mut pending = self.pending(key, false);
        let (written, streamed) =
            Self::stream_into(pending.writer()?, body, size, limit, None).await;
        match streamed {
            Ok(()) | Err(BlobError::BodyInterrupted(_)) if written > 0 => {
                // What arrived is kept, whether or not the body completed.
                pending.complete().await?;
                streamed?;
                Ok(size + written)
            }
            Ok(()) => {
                pending.abort().await;
                Ok(size)
            }
            Err(error) => {
                pending.abort().await;
                Err(error)
            }
        }
    }

    async fn upload_size(&self, id: &str) -> Result<Option<u64>, BlobError> {
        Ok(self
            .upload_parts(id)
            .await?
            .map(|parts| parts.last().map_or(0, |(offset, size, _)| offset + size)))
    }

    async fn finish_upload(&self, id: &str) -> Result<StoredBlob, BlobError> {
        let body = self.read_upload(id).await?;
        let stored = self.put(body, u64::MAX).await?;
        self.discard_upload(id).await?;
        Ok(stored)
    }

    async fn discard_upload(&self, id: &str) -> Result<(), BlobError> {
        let dir = self.upload_dir(id)?;
        let keys: Vec<Path> = self
            .store
            .list(Some(&dir))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(io_error)?;
        for key in &keys {
            match self.store.delete(key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(other) => return Err(io_error(other)),
            }
        }
        Ok(())
    }

    async fn list_uploads(&self) -> Result<Vec<String>, BlobError> {
        let dir = self.key("uploads");
        let listed = self
            .store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(io_error)?;
        let mut out: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|prefix| prefix.filename())
            .filter(|id| is_upload_id(id))
            .map(str::to_string)
            .collect();
        out.sort();
        Ok(out)
    }

    async fn truncate_upload(&self, id: &str, len: u64) -> Result<(), BlobError> {
        let parts = self
            .upload_parts(id)
            .await?
            .ok_or_else(|| BlobError::Missing(id.to_string()))?;
        for (offset, size, key) in parts.into_iter().rev() {
            if offset >= len {
                self.store.delete(&key).await.map_err(io_error)?;
            } else if offset + size > len {
                // The cut falls inside this part: its head is rewritten through a staging
                // object, so that the part is whole at every moment.
                let keep = len - offset;
                let got = self
                    .store
                    .get_opts(
                        &key,
                        GetOptions {
                            range: Some(GetRange::Bounded(0..keep)),
                            ..GetOptions::default()
                        },
                    )
                    .await
                    .map_err(io_error)?;
                let staged = self.key(&format!("staging/{}", random_name()));
                let mut pending = self.pending(staged.clone(), true);
                let body: ByteStream = Box::pin(got.into_stream().map_err(io::Error::from));
                let (_, streamed) =
                    Self::stream_into(pending.writer()?, body, 0, u64::MAX, None).await;
                if let Err(error) = streamed {
                    pending.abort().await;
                    return Err(error);
                }
                pending.complete().await?;
                let copied = self.store.copy(&staged, &key).await.map_err(io_error);
                let _ = self.store.delete(&staged).await;
                pending.cleanup = None;
                copied?;
            } else {
                break;
            }
        }
        Ok(())
    }

    async fn read_upload(&self, id: &str) -> Result<ByteStream, BlobError> {
        let parts = self
            .upload_parts(id)
            .await?
            .ok_or_else(|| BlobError::Missing(id.to_string()))?;
        Ok(self.concat(parts))
    }

    async fn install_upload(&self, id: &str, sha256: &str) -> Result<(), BlobError> {
        let parts = self
            .upload_parts(id)
            .await?
            .ok_or_else(|| BlobError::Missing(id.to_string()))?;
        if !self.exists(sha256).await? {
            // Written straight to its address: a multipart upload becomes visible only once
            // complete, and its bytes were hashed by the caller as they arrived.
            let mut pending = self.pending(self.blob_key(sha256)?, false);
            let (_, streamed) =
                Self::stream_into(pending.writer()?, self.concat(parts), 0, u64::MAX, None).await;
            if let Err(error) = streamed {
                pending.abort().await;
                return Err(error);
            }
            pending.complete().await?;
        }
        self.discard_upload(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regroup_makes_whole_chunks() {
        let mut regroup = Regroup::new();
        let mut chunks = regroup.push(Bytes::from(vec![1u8; CHUNK / 2]));
        assert!(chunks.is_empty());
        chunks.extend(regroup.push(Bytes::from(vec![2u8; CHUNK * 2])));
        chunks.extend(regroup.finish());
        let sizes: Vec<usize> = chunks.iter().map(Bytes::len).collect();
        assert_eq!(sizes, vec![CHUNK, CHUNK, CHUNK / 2]);
    }

    #[test]
    fn urls_name_a_bucket_and_a_prefix() {
        let config = S3Config::from_url("s3://models/prod/blobs/").unwrap();
        assert_eq!(
            (config.bucket.as_str(), config.prefix.as_str()),
            ("models", "prod/blobs")
        );
        let bare = S3Config::from_url("s3://models").unwrap();
        assert_eq!((bare.bucket.as_str(), bare.prefix.as_str()), ("models", ""));
        assert!(S3Config::from_url("s3:///x").is_err());
        assert!(S3Config::from_url("gs://x").is_err());
    }
}
