//! Blobs on the local disk: `<root>/blobs/<aa>/<bb>/<sha256>`, staged in `<root>/tmp/`.

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::blobs::{BlobError, BlobInfo, BlobStore, ByteStream, StoredBlob};
use super::checksum::{Expected, MultiHasher, ParallelHasher, SingleHasher};
use super::chunk_pool::{release_free_heap, Chunk, ChunkPool};

/// Bodies are regrouped into chunks of this size before hashing and writing.
const CHUNK: usize = 512 << 10;
/// Chunks a hasher or the writer may lag behind the network. An upload holds at most this many
/// plus two chunks (the one its slowest reader is on, the one being filled or queued): 3 MiB,
/// whatever the size of the upload.
const QUEUE_DEPTH: usize = 4;
/// Idle chunk buffers kept for reuse: as many as one upload cycles through.
const KEEP_CHUNKS: usize = QUEUE_DEPTH + 2;
/// Written data is handed to the disk in ranges of this size as the upload goes.
const WRITEBACK_WINDOW: u64 = 8 << 20;
/// Downloads read chunks of this size...
const READ_CHUNK: usize = 512 << 10;
/// ...up to this many ahead of the socket.
const READ_AHEAD: usize = 4;
/// How long a reader thread waits for the socket to take a chunk before it hands its thread back.
const READER_PATIENCE: Duration = Duration::from_millis(50);

/// Buffers of downloads, shared by all of them: a download holds at most `READ_AHEAD` + 2
/// chunks (queued, being read, being sent), 3 MiB.
fn read_buffers() -> Arc<ChunkPool> {
    static POOL: OnceLock<Arc<ChunkPool>> = OnceLock::new();
    POOL.get_or_init(|| ChunkPool::new(READ_CHUNK, READ_AHEAD + 2))
        .clone()
}

/// Streams `file`, read up to `READ_AHEAD` chunks ahead of the consumer: reading the disk (and
/// copying out of the page cache) overlaps sending.
pub fn read_ahead(file: impl Read + Send + 'static) -> ByteStream {
    let (sender, mut received) = mpsc::channel::<io::Result<Bytes>>(READ_AHEAD);
    let pool = read_buffers();
    tokio::spawn(async move {
        let (mut file, mut sender) = (file, sender);
        // Wait for room in the queue without a thread, then read on a blocking thread for as
        // long as the socket keeps taking chunks; when it has not taken one for
        // READER_PATIENCE, hand the thread back: a slow client does not hold a blocking thread.
        while let Ok(room) = sender.reserve_owned().await {
            let pool = pool.clone();
            let runtime = tokio::runtime::Handle::current();
            let paused = tokio::task::spawn_blocking(move || {
                let mut room = room;
                loop {
                    let mut chunk = pool.take();
                    let sender = match chunk.read_from(&mut file) {
                        Ok(_) if chunk.is_empty() => return None, // the end of the file
                        Ok(_) => room.send(Ok(chunk.freeze())),
                        Err(error) => {
                            room.send(Err(error));
                            return None;
                        }
                    };
                    match runtime.block_on(tokio::time::timeout(
                        READER_PATIENCE,
                        sender.clone().reserve_owned(),
                    )) {
                        Ok(Ok(next)) => room = next,
                        Ok(Err(_)) => return None, // the client went away
                        Err(_) => return Some((file, sender)),
                    }
                }
            })
            .await;
            match paused {
                Ok(Some(paused)) => (file, sender) = paused,
                _ => break,
            }
        }
    });
    Box::pin(futures_util::stream::poll_fn(move |cx| {
        received.poll_recv(cx)
    }))
}

/// Runs blocking file work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BlobError::Io(io::Error::other(e)))?
}

pub struct LocalBlobs {
    blobs: PathBuf,
    tmp: PathBuf,
    uploads: PathBuf,
    chunks: Arc<ChunkPool>,
}

/// Deletes its staging file unless disarmed.
struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl LocalBlobs {
    pub fn open(root: &Path) -> io::Result<Self> {
        let blobs = root.join("blobs");
        let tmp = root.join("tmp");
        let uploads = root.join("uploads");
        fs::create_dir_all(&blobs)?;
        fs::create_dir_all(&tmp)?;
        fs::create_dir_all(&uploads)?;
        Ok(LocalBlobs {
            blobs,
            tmp,
            uploads,
            chunks: ChunkPool::new(CHUNK, KEEP_CHUNKS),
        })
    }

    fn path_of(&self, sha256: &str) -> Result<PathBuf, BlobError> {
        if !is_sha256(sha256) {
            return Err(BlobError::Missing(sha256.to_string()));
        }
        Ok(self
            .blobs
            .join(&sha256[0..2])
            .join(&sha256[2..4])
            .join(sha256))
    }

    /// Removes staging leftovers of an earlier run; returns how many.
    pub fn clean_staging_now(&self) -> Result<usize, BlobError> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.tmp)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// A second handle on the same directories (for blocking tasks).
    fn handle(&self) -> LocalBlobs {
        LocalBlobs {
            blobs: self.blobs.clone(),
            tmp: self.tmp.clone(),
            uploads: self.uploads.clone(),
            chunks: self.chunks.clone(),
        }
    }

    fn upload_path(&self, id: &str) -> Result<PathBuf, BlobError> {
        if !super::blobs::is_upload_id(id) {
            return Err(BlobError::Missing(id.to_string()));
        }
        Ok(self.uploads.join(id))
    }

    fn staging_path(&self) -> PathBuf {
        self.tmp
            .join(format!("{}.part", hex::encode(rand::random::<[u8; 16]>())))
    }

    /// Moves a durable staging file to its address; identical content is kept once.
    fn install(&self, staged: &Path, sha256: &str) -> Result<(), BlobError> {
        let target = self.path_of(sha256)?;
        if target.exists() {
            fs::remove_file(staged).map_err(BlobError::from_io)?;
            // Stored again: its modification time says so, so that a removal of blobs nobody
            // references (retention) leaves it to the upload about to record it.
            if let Ok(file) = File::options().write(true).open(&target) {
                let _ = file.set_modified(std::time::SystemTime::now());
            }
            return Ok(());
        }
        let leaf = target.parent().unwrap_or(&self.blobs);
        if !leaf.exists() {
            fs::create_dir_all(leaf).map_err(BlobError::from_io)?;
            if let Some(mid) = leaf.parent() {
                sync_dir(mid)?;
                sync_dir(&self.blobs)?;
            }
        }
        fs::rename(staged, &target).map_err(BlobError::from_io)?;
        sync_dir(leaf)?;
        Ok(())
    }
}

/// Writes chunks to the staging file on a blocking thread; fsyncs at the end.
fn spawn_writer(mut file: File) -> (mpsc::Sender<Bytes>, JoinHandle<io::Result<()>>) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE_DEPTH);
    let task = tokio::task::spawn_blocking(move || {
        let mut result = Ok(());
        let (mut written, mut flushing_from) = (0u64, 0u64);
        while let Some(chunk) = rx.blocking_recv() {
            if result.is_ok() {
                result = file.write_all(&chunk);
                written += chunk.len() as u64;
                if written - flushing_from >= WRITEBACK_WINDOW {
                    start_writeback(&file, flushing_from, written - flushing_from);
                    flushing_from = written;
                }
            }
        }
        result?;
        file.sync_all()
    });
    (tx, task)
}

/// Asks the kernel to start writing a range of `file` to disk now, without waiting for it: the
/// disk works while the rest of the body arrives, and the final fsync finds little left to do
/// (for 1 GiB, 2-5 ms instead of ~300). Only a hint; the fsync reports any error.
fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: sync_file_range takes a descriptor and a byte range; no memory is passed.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

enum Pipeline {
    /// Nothing beyond the first chunk arrived yet.
    Small,
    Large {
        hasher: ParallelHasher,
        writer: mpsc::Sender<Bytes>,
        writer_task: JoinHandle<io::Result<()>>,
    },
}

impl Pipeline {
    async fn push(&mut self, chunk: Bytes, file: &mut Option<File>) -> Result<(), BlobError> {
        if let Pipeline::Small = self {
            let file = file
                .take()
                .ok_or_else(|| BlobError::Io(io::Error::other("staging file already taken")))?;
            let (writer, writer_task) = spawn_writer(file);
            // A long upload may follow a burst of other requests: hand what the allocator
            // kept from them back first (and again at the end).
            tokio::task::spawn_blocking(release_free_heap);
            *self = Pipeline::Large {
                hasher: ParallelHasher::start(QUEUE_DEPTH),
                writer,
                writer_task,
            };
        }
        if let Pipeline::Large { hasher, writer, .. } = self {
            hasher.feed(&chunk).await;
            if writer.send(chunk).await.is_err() {
                return Err(BlobError::Io(io::Error::other("blob writer stopped")));
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl BlobStore for LocalBlobs {
    async fn put_checked(
        &self,
        body: ByteStream,
        limit: u64,
        expected: &Expected,
    ) -> Result<StoredBlob, BlobError> {
        // A sha-512 is computed only when a client declared one, beside the three kept ones.
        let sha512 = expected
            .sha512
            .is_some()
            .then(|| Arc::new(SingleHasher::sha512(QUEUE_DEPTH)));
        let mut body: ByteStream = match &sha512 {
            None => body,
            Some(hasher) => {
                let hasher = hasher.clone();
                Box::pin(body.then(move |next| {
                    let hasher = hasher.clone();
                    async move {
                        if let Ok(data) = &next {
                            hasher.feed(data).await;
                        }
                        next
                    }
                }))
            }
        };
        let path = self.staging_path();
        let mut guard = TempGuard {
            path: path.clone(),
            armed: true,
        };
        let mut file = Some(File::create(&path).map_err(BlobError::from_io)?);
        let mut pipeline = Pipeline::Small;
        // The chunk being filled; taken from the pool when data arrives for it.
        let mut pending: Option<Chunk> = None;
        let mut size: u64 = 0;

        let streamed: Result<(), BlobError> = async {
            while let Some(next) = body.next().await {
                let data = next.map_err(|e| BlobError::BodyInterrupted(e.to_string()))?;
                size += data.len() as u64;
                if size > limit {
                    return Err(BlobError::TooLarge { limit });
                }
                // Chunks are filled to exactly CHUNK bytes and never grow.
                let mut rest = &data[..];
                while !rest.is_empty() {
                    let chunk = pending.get_or_insert_with(|| self.chunks.take());
                    rest = &rest[chunk.fill_from(rest)..];
                    if chunk.is_full() {
                        if let Some(full) = pending.take() {
                            pipeline.push(full.freeze(), &mut file).await?;
                        }
                    }
                }
            }
            Ok(())
        }
        .await;
        let tail = pending.take().map(Chunk::freeze).unwrap_or_default();

        let digests = match pipeline {
            Pipeline::Small => {
                streamed?;
                let mut file = file
                    .take()
                    .ok_or_else(|| BlobError::Io(io::Error::other("staging file lost")))?;
                tokio::task::spawn_blocking(move || -> io::Result<_> {
                    let mut hasher = MultiHasher::default();
                    hasher.update(&tail);
                    file.write_all(&tail)?;
                    file.sync_all()?;
                    Ok(hasher.finish())
                })
                .await
                .map_err(io::Error::other)?
                .map_err(BlobError::from_io)?
            }
            Pipeline::Large {
                hasher,
                writer,
                writer_task,
            } => {
                if streamed.is_ok() && !tail.is_empty() {
                    hasher.feed(&tail).await;
                    let _ = writer.send(tail).await;
                } else {
                    drop(tail);
                }
                drop(writer);
                let written = writer_task.await.map_err(io::Error::other);
                let digests = hasher.finish().await;
                // Every chunk of this upload is back in the pool: let go of the memory it used.
                tokio::task::spawn_blocking(release_free_heap);
                let (written, digests) = (written?, digests?);
                streamed?;
                written.map_err(BlobError::from_io)?;
                digests
            }
        };

        drop(body);
        let sha512 = match sha512.and_then(Arc::into_inner) {
            Some(hasher) => Some(hasher.finish().await?),
            None => None,
        };
        if let Some(mismatch) = expected.mismatch(&digests, sha512.as_deref()) {
            // The guard removes the staged file: nothing of the body is kept.
            return Err(BlobError::DigestMismatch(mismatch));
        }
        let sha256 = digests.sha256.clone();
        let staged = path.clone();
        let store = self.handle();
        tokio::task::spawn_blocking(move || store.install(&staged, &sha256))
            .await
            .map_err(io::Error::other)??;
        guard.armed = false;
        Ok(StoredBlob { size, digests })
    }

    async fn stat(&self, sha256: &str) -> Result<BlobInfo, BlobError> {
        let path = self.path_of(sha256)?;
        match fs::metadata(&path) {
            Ok(meta) => Ok(BlobInfo {
                size: meta.len(),
                modified: meta.modified().ok(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(BlobError::Missing(sha256.to_string()))
            }
            Err(e) => Err(BlobError::Io(e)),
        }
    }

    async fn open(&self, sha256: &str, range: Option<Range<u64>>) -> Result<ByteStream, BlobError> {
        let path = self.path_of(sha256)?;
        let missing = sha256.to_string();
        let file = blocking(move || {
            let mut file = File::open(&path).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => BlobError::Missing(missing),
                _ => BlobError::Io(e),
            })?;
            if let Some(range) = &range {
                file.seek(io::SeekFrom::Start(range.start))?;
            }
            let len = range.map_or(u64::MAX, |r| r.end.saturating_sub(r.start));
            Ok(file.take(len))
        })
        .await?;
        Ok(read_ahead(file))
    }

    async fn exists(&self, sha256: &str) -> Result<bool, BlobError> {
        Ok(self.path_of(sha256).map(|p| p.exists()).unwrap_or(false))
    }

    async fn list(&self) -> Result<Vec<String>, BlobError> {
        let blobs = self.blobs.clone();
        blocking(move || {
            let mut out = Vec::new();
            for level1 in fs::read_dir(&blobs)? {
                let level1 = level1?.path();
                if !level1.is_dir() {
                    continue;
                }
                for level2 in fs::read_dir(&level1)? {
                    let level2 = level2?.path();
                    if !level2.is_dir() {
                        continue;
                    }
                    for blob in fs::read_dir(&level2)? {
                        if let Some(name) = blob?.file_name().to_str() {
                            if is_sha256(name) {
                                out.push(name.to_string());
                            }
                        }
                    }
                }
            }
            out.sort();
            Ok(out)
        })
        .await
    }

    async fn remove(&self, sha256: &str) -> Result<u64, BlobError> {
        let path = self.path_of(sha256)?;
        let size = fs::metadata(&path)
            .map_err(|_| BlobError::Missing(sha256.to_string()))?
            .len();
        fs::remove_file(&path)?;
        Ok(size)
    }

    async fn remove_unless_stored_since(
        &self,
        sha256: &str,
        since: std::time::SystemTime,
    ) -> Result<Option<u64>, BlobError> {
        let path = self.path_of(sha256)?;
        blocking(move || {
            let Ok(metadata) = fs::metadata(&path) else {
                return Ok(None);
            };
            if metadata.modified().is_ok_and(|at| at >= since) {
                return Ok(None);
            }
            fs::remove_file(&path)?;
            Ok(Some(metadata.len()))
        })
        .await
    }

    async fn rehash(&self, sha256: &str) -> Result<String, BlobError> {
        let path = self.path_of(sha256)?;
        let missing = sha256.to_string();
        blocking(move || {
            let mut file = File::open(&path).map_err(|_| BlobError::Missing(missing))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            Ok(hex::encode(hasher.finalize()))
        })
        .await
    }

    async fn probe_write(&self) -> Result<(), BlobError> {
        use std::io::Write;
        let path = self.staging_path();
        let written = (|| {
            let mut file = File::create(&path)?;
            file.write_all(&[0u8; 4096])?;
            file.sync_all()
        })();
        let removed = fs::remove_file(&path);
        written.and(removed).map_err(BlobError::from_io)
    }

    async fn clean_staging(&self) -> Result<usize, BlobError> {
        self.clean_staging_now()
    }

    async fn start_upload(&self, id: &str) -> Result<(), BlobError> {
        let path = self.upload_path(id)?;
        File::create(&path).map_err(BlobError::from_io)?;
        sync_dir(&self.uploads)?;
        Ok(())
    }

    async fn append_upload(
        &self,
        id: &str,
        mut body: ByteStream,
        limit: u64,
    ) -> Result<u64, BlobError> {
        let path = self.upload_path(id)?;
        let file = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|_| BlobError::Missing(id.to_string()))?;
        let mut size = file.metadata()?.len();
        let (writer, writer_task) = spawn_writer(file);
        let streamed: Result<(), BlobError> = async {
            while let Some(next) = body.next().await {
                let data = next.map_err(|e| BlobError::BodyInterrupted(e.to_string()))?;
                size += data.len() as u64;
                if size > limit {
                    return Err(BlobError::TooLarge { limit });
                }
                if writer.send(data).await.is_err() {
                    return Err(BlobError::Io(io::Error::other("upload writer stopped")));
                }
            }
            Ok(())
        }
        .await;
        drop(writer);
        // What arrived is written and synced whether or not the body completed.
        writer_task
            .await
            .map_err(io::Error::other)?
            .map_err(BlobError::from_io)?;
        streamed?;
        Ok(size)
    }

    async fn upload_size(&self, id: &str) -> Result<Option<u64>, BlobError> {
        let path = self.upload_path(id)?;
        match fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::Io(e)),
        }
    }

    async fn finish_upload(&self, id: &str) -> Result<StoredBlob, BlobError> {
        let path = self.upload_path(id)?;
        let mut file = File::open(&path).map_err(|_| BlobError::Missing(id.to_string()))?;
        let hasher = ParallelHasher::start(QUEUE_DEPTH);
        let (chunks, mut received) = mpsc::channel::<io::Result<Bytes>>(QUEUE_DEPTH);
        let pool = self.chunks.clone();
        let reader = tokio::task::spawn_blocking(move || loop {
            let mut chunk = pool.take();
            match chunk.read_from(&mut file) {
                Ok(_) if chunk.is_empty() => return,
                Ok(_) => {
                    if chunks.blocking_send(Ok(chunk.freeze())).is_err() {
                        return;
                    }
                }
                Err(error) => {
                    let _ = chunks.blocking_send(Err(error));
                    return;
                }
            }
        });
        let mut size = 0u64;
        let mut failed = None;
        while let Some(chunk) = received.recv().await {
            match chunk {
                Ok(chunk) => {
                    size += chunk.len() as u64;
                    hasher.feed(&chunk).await;
                }
                Err(error) => failed = Some(error),
            }
        }
        reader.await.map_err(io::Error::other)?;
        let digests = hasher.finish().await?;
        if let Some(error) = failed {
            return Err(BlobError::Io(error));
        }
        let sha256 = digests.sha256.clone();
        let store = self.handle();
        tokio::task::spawn_blocking(move || store.install(&path, &sha256))
            .await
            .map_err(io::Error::other)??;
        sync_dir(&self.uploads)?;
        Ok(StoredBlob { size, digests })
    }

    async fn discard_upload(&self, id: &str) -> Result<(), BlobError> {
        let path = self.upload_path(id)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BlobError::Io(e)),
        }
    }

    async fn list_uploads(&self) -> Result<Vec<String>, BlobError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.uploads)? {
            if let Some(name) = entry?.file_name().to_str() {
                if super::blobs::is_upload_id(name) {
                    out.push(name.to_string());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    async fn truncate_upload(&self, id: &str, len: u64) -> Result<(), BlobError> {
        let path = self.upload_path(id)?;
        let file = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|_| BlobError::Missing(id.to_string()))?;
        file.set_len(len).map_err(BlobError::from_io)?;
        file.sync_all().map_err(BlobError::from_io)?;
        Ok(())
    }

    async fn read_upload(&self, id: &str) -> Result<ByteStream, BlobError> {
        let path = self.upload_path(id)?;
        let file = File::open(&path).map_err(|_| BlobError::Missing(id.to_string()))?;
        let reader = tokio::fs::File::from_std(file);
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            reader, CHUNK,
        )))
    }

    async fn install_upload(&self, id: &str, sha256: &str) -> Result<(), BlobError> {
        let path = self.upload_path(id)?;
        if !path.exists() {
            return Err(BlobError::Missing(id.to_string()));
        }
        let (store, sha256) = (self.handle(), sha256.to_string());
        tokio::task::spawn_blocking(move || {
            store.install(&path, &sha256)?;
            sync_dir(&store.uploads).map_err(BlobError::from_io)
        })
        .await
        .map_err(io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::checksum::Digests;
    use futures_util::stream;

    fn body(chunks: Vec<Vec<u8>>) -> ByteStream {
        Box::pin(stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))))
    }

    fn tmp_is_empty(root: &Path) -> bool {
        fs::read_dir(root.join("tmp")).unwrap().next().is_none()
    }

    #[tokio::test]
    async fn small_and_large_bodies_are_stored_with_all_digests() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobs::open(dir.path()).unwrap();
        for size in [0usize, 10, CHUNK - 1, CHUNK, 3 * CHUNK + 17] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 % 256) as u8).collect();
            let chunks = data.chunks(65_536).map(|c| c.to_vec()).collect();
            let stored = store.put(body(chunks), u64::MAX).await.unwrap();
            assert_eq!(stored.size, size as u64);
            assert_eq!(stored.digests, Digests::of(&data));
            let path = store.path_of(&stored.digests.sha256).unwrap();
            assert_eq!(fs::read(path).unwrap(), data);
        }
        assert!(tmp_is_empty(dir.path()));
    }

    #[tokio::test]
    async fn a_body_unlike_its_declared_digests_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobs::open(dir.path()).unwrap();
        for size in [5usize, 3 * CHUNK + 1] {
            let data = vec![7u8; size];
            let right = Digests::of(&data);
            let wrong = Expected {
                sha256: Some("0".repeat(64)),
                ..Expected::default()
            };
            let refused = store
                .put_checked(body(vec![data.clone()]), u64::MAX, &wrong)
                .await;
            assert!(matches!(refused, Err(BlobError::DigestMismatch(_))));
            assert!(store.list().await.unwrap().is_empty());
            assert!(tmp_is_empty(dir.path()));
            let sha512 = {
                use sha2::Sha512;
                hex::encode(Sha512::digest(&data))
            };
            let bad512 = Expected {
                sha512: Some("0".repeat(128)),
                ..Expected::default()
            };
            let refused = store
                .put_checked(body(vec![data.clone()]), u64::MAX, &bad512)
                .await;
            assert!(
                matches!(refused, Err(BlobError::DigestMismatch(m)) if m.algorithm == "sha512")
            );
            let good = Expected {
                sha256: Some(right.sha256.clone()),
                sha1: Some(right.sha1.clone()),
                md5: Some(right.md5.clone()),
                sha512: Some(sha512),
            };
            let kept = store
                .put_checked(body(vec![data]), u64::MAX, &good)
                .await
                .unwrap();
            assert_eq!(kept.digests, right);
            store.remove(&right.sha256).await.unwrap();
        }
    }

    #[tokio::test]
    async fn identical_content_is_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobs::open(dir.path()).unwrap();
        let a = store.put(body(vec![b"same".to_vec()]), 100).await.unwrap();
        let b = store
            .put(body(vec![b"sa".to_vec(), b"me".to_vec()]), 100)
            .await
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(store.list().await.unwrap(), vec![a.digests.sha256]);
        assert!(tmp_is_empty(dir.path()));
    }

    #[tokio::test]
    async fn over_limit_and_broken_bodies_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobs::open(dir.path()).unwrap();
        let big = vec![vec![1u8; CHUNK]; 3];
        assert!(matches!(
            store.put(body(big), 2 * CHUNK as u64).await,
            Err(BlobError::TooLarge { .. })
        ));
        let broken: ByteStream = Box::pin(stream::iter(vec![
            Ok(Bytes::from(vec![0u8; 3 * CHUNK])),
            Err(io::Error::other("client went away")),
        ]));
        assert!(matches!(
            store.put(broken, u64::MAX).await,
            Err(BlobError::BodyInterrupted(_))
        ));
        assert!(store.list().await.unwrap().is_empty());
        assert!(tmp_is_empty(dir.path()));
    }

    #[tokio::test]
    async fn rehash_detects_a_flipped_byte() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobs::open(dir.path()).unwrap();
        let stored = store
            .put(body(vec![b"hello world".to_vec()]), 100)
            .await
            .unwrap();
        let sha = stored.digests.sha256;
        assert_eq!(store.rehash(&sha).await.unwrap(), sha);
        let path = store.path_of(&sha).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes[0] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert_ne!(store.rehash(&sha).await.unwrap(), sha);
    }
}
