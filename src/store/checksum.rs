//! Hashing while streaming: md5, sha1 and sha256 of one body, each on its own blocking thread so
//! that the slowest digest (md5) sets the pace rather than the sum of all three.

use bytes::Bytes;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The checksums of one body, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
}

impl Digests {
    /// All three digests of an in-memory buffer (small bodies, tests, verification).
    pub fn of(data: &[u8]) -> Digests {
        Digests {
            md5: hex::encode(Md5::digest(data)),
            sha1: hex::encode(Sha1::digest(data)),
            sha256: hex::encode(Sha256::digest(data)),
        }
    }
}

/// The digests a client declared for a body (lower-case hex), checked before the body is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub md5: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub sha512: Option<String>,
}

/// A declared digest the body does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub algorithm: &'static str,
    pub declared: String,
    pub actual: String,
}

impl Expected {
    pub fn is_empty(&self) -> bool {
        self.md5.is_none() && self.sha1.is_none() && self.sha256.is_none() && self.sha512.is_none()
    }

    /// The first declared digest that differs from the computed ones (`sha512` computed only
    /// when one was declared).
    pub fn mismatch(&self, digests: &Digests, sha512: Option<&str>) -> Option<Mismatch> {
        let pairs = [
            (
                "sha256",
                self.sha256.as_deref(),
                Some(digests.sha256.as_str()),
            ),
            ("sha512", self.sha512.as_deref(), sha512),
            ("sha1", self.sha1.as_deref(), Some(digests.sha1.as_str())),
            ("md5", self.md5.as_deref(), Some(digests.md5.as_str())),
        ];
        pairs.into_iter().find_map(|(algorithm, declared, actual)| {
            let declared = declared?;
            let actual = actual.unwrap_or_default();
            (declared != actual).then(|| Mismatch {
                algorithm,
                declared: declared.to_string(),
                actual: actual.to_string(),
            })
        })
    }
}

/// One digest on its own blocking thread, fed shared chunks.
pub struct SingleHasher {
    sender: mpsc::Sender<Bytes>,
    task: JoinHandle<String>,
}

impl SingleHasher {
    pub fn sha512(depth: usize) -> Self {
        let (sender, task) = spawn_digest::<sha2::Sha512>(depth);
        SingleHasher { sender, task }
    }

    pub async fn feed(&self, chunk: &Bytes) {
        let _ = self.sender.send(chunk.clone()).await;
    }

    pub async fn finish(self) -> std::io::Result<String> {
        drop(self.sender);
        self.task.await.map_err(std::io::Error::other)
    }
}

/// One pass of three digests, fed chunk by chunk.
#[derive(Default)]
pub struct MultiHasher {
    md5: Md5,
    sha1: Sha1,
    sha256: Sha256,
}

impl MultiHasher {
    pub fn update(&mut self, chunk: &[u8]) {
        self.md5.update(chunk);
        self.sha1.update(chunk);
        self.sha256.update(chunk);
    }

    pub fn finish(self) -> Digests {
        Digests {
            md5: hex::encode(self.md5.finalize()),
            sha1: hex::encode(self.sha1.finalize()),
            sha256: hex::encode(self.sha256.finalize()),
        }
    }
}

/// Three hashers on three blocking threads, fed shared chunks (a `Bytes` clone is a refcount).
pub struct ParallelHasher {
    senders: Vec<mpsc::Sender<Bytes>>,
    tasks: Vec<JoinHandle<String>>,
}

fn spawn_digest<D: Digest + Send + 'static>(
    depth: usize,
) -> (mpsc::Sender<Bytes>, JoinHandle<String>) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(depth);
    let task = tokio::task::spawn_blocking(move || {
        let mut digest = D::new();
        while let Some(chunk) = rx.blocking_recv() {
            digest.update(&chunk);
        }
        hex::encode(digest.finalize())
    });
    (tx, task)
}

impl ParallelHasher {
    pub fn start(depth: usize) -> Self {
        let (md5_tx, md5) = spawn_digest::<Md5>(depth);
        let (sha1_tx, sha1) = spawn_digest::<Sha1>(depth);
        let (sha256_tx, sha256) = spawn_digest::<Sha256>(depth);
        ParallelHasher {
            senders: vec![md5_tx, sha1_tx, sha256_tx],
            tasks: vec![md5, sha1, sha256],
        }
    }

    /// Queues a chunk for every digest; waits while a hasher is `depth` chunks behind.
    pub async fn feed(&self, chunk: &Bytes) {
        for sender in &self.senders {
            // A closed channel means the hasher thread died; `finish` reports it.
            let _ = sender.send(chunk.clone()).await;
        }
    }

    pub async fn finish(self) -> std::io::Result<Digests> {
        drop(self.senders);
        let mut hexes = Vec::with_capacity(3);
        for task in self.tasks {
            hexes.push(task.await.map_err(std::io::Error::other)?);
        }
        let sha256 = hexes.pop().unwrap_or_default();
        let sha1 = hexes.pop().unwrap_or_default();
        let md5 = hexes.pop().unwrap_or_default();
        Ok(Digests { md5, sha1, sha256 })
    }
}

/// The running md5, sha1 and sha256 of a body received over several requests (a resumable
/// upload): a value that can be kept between requests, cloned before a chunk that may be taken
/// back, and finished into [`Digests`] once the body is complete.
#[derive(Clone, Default)]
pub struct HashState {
    md5: Md5,
    sha1: Sha1,
    sha256: Sha256,
}

impl HashState {
    pub fn update(&mut self, chunk: &[u8]) {
        self.md5.update(chunk);
        self.sha1.update(chunk);
        self.sha256.update(chunk);
    }

    /// The digests of everything fed so far.
    pub fn digests(&self) -> Digests {
        let state = self.clone();
        Digests {
            md5: hex::encode(state.md5.finalize()),
            sha1: hex::encode(state.sha1.finalize()),
            sha256: hex::encode(state.sha256.finalize()),
        }
    }
}

fn spawn_state<D: Digest + Send + 'static>(
    mut digest: D,
    depth: usize,
) -> (mpsc::Sender<Bytes>, JoinHandle<D>) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(depth);
    let task = tokio::task::spawn_blocking(move || {
        while let Some(chunk) = rx.blocking_recv() {
            digest.update(&chunk);
        }
        digest
    });
    (tx, task)
}

/// A [`HashState`] carried on by three blocking threads while a request's body streams (as
/// [`ParallelHasher`]), handed back by [`ResumedHasher::finish`].
pub struct ResumedHasher {
    senders: [mpsc::Sender<Bytes>; 3],
    md5: JoinHandle<Md5>,
    sha1: JoinHandle<Sha1>,
    sha256: JoinHandle<Sha256>,
}

impl ResumedHasher {
    pub fn resume(state: HashState, depth: usize) -> Self {
        let (md5_tx, md5) = spawn_state(state.md5, depth);
        let (sha1_tx, sha1) = spawn_state(state.sha1, depth);
        let (sha256_tx, sha256) = spawn_state(state.sha256, depth);
        ResumedHasher {
            senders: [md5_tx, sha1_tx, sha256_tx],
            md5,
            sha1,
            sha256,
        }
    }

    pub async fn feed(&self, chunk: &Bytes) {
        for sender in &self.senders {
            let _ = sender.send(chunk.clone()).await;
        }
    }

    pub async fn finish(self) -> std::io::Result<HashState> {
        drop(self.senders);
        Ok(HashState {
            md5: self.md5.await.map_err(std::io::Error::other)?,
            sha1: self.sha1.await.map_err(std::io::Error::other)?,
            sha256: self.sha256.await.map_err(std::io::Error::other)?,
        })
    }
}

/// A digest of one chunk of a body (tus `Upload-Checksum`), on its own blocking thread; the raw
/// digest bytes come back from [`ChunkHasher::finish`].
pub struct ChunkHasher {
    sender: mpsc::Sender<Bytes>,
    task: JoinHandle<Vec<u8>>,
}

fn spawn_raw<D: Digest + Send + 'static>(
    depth: usize,
) -> (mpsc::Sender<Bytes>, JoinHandle<Vec<u8>>) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(depth);
    let task = tokio::task::spawn_blocking(move || {
        let mut digest = D::new();
        while let Some(chunk) = rx.blocking_recv() {
            digest.update(&chunk);
        }
        digest.finalize().to_vec()
    });
    (tx, task)
}

impl ChunkHasher {
    /// A hasher for one of the algorithms chunks may be checked with (`sha1`, `sha256`,
    /// `sha512`, `md5`); `None` for another.
    pub fn start(algorithm: &str, depth: usize) -> Option<Self> {
        let (sender, task) = match algorithm {
            "sha1" => spawn_raw::<Sha1>(depth),
            "sha256" => spawn_raw::<Sha256>(depth),
            "sha512" => spawn_raw::<sha2::Sha512>(depth),
            "md5" => spawn_raw::<Md5>(depth),
            _ => return None,
        };
        Some(ChunkHasher { sender, task })
    }

    pub async fn feed(&self, chunk: &Bytes) {
        let _ = self.sender.send(chunk.clone()).await;
    }

    pub async fn finish(self) -> std::io::Result<Vec<u8>> {
        drop(self.sender);
        self.task.await.map_err(std::io::Error::other)
    }
}

/// The algorithms [`ChunkHasher`] knows, as tus's `Tus-Checksum-Algorithm` lists them.
pub const CHUNK_ALGORITHMS: &str = "sha1,sha256,sha512,md5";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_resumed_state_hashes_like_one_pass() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut state = HashState::default();
        state.update(&data[..1234]);
        let hasher = ResumedHasher::resume(state.clone(), 2);
        hasher.feed(&Bytes::copy_from_slice(&data[1234..])).await;
        let resumed = hasher.finish().await.unwrap();
        assert_eq!(resumed.digests(), Digests::of(&data));
        assert_eq!(state.digests(), Digests::of(&data[..1234]));
        let chunk = ChunkHasher::start("sha256", 2).unwrap();
        chunk.feed(&Bytes::copy_from_slice(&data)).await;
        assert_eq!(
            hex::encode(chunk.finish().await.unwrap()),
            Digests::of(&data).sha256
        );
        assert!(ChunkHasher::start("crc32", 2).is_none());
    }

    #[test]
    fn known_vectors() {
        let d = Digests::of(b"abc");
        assert_eq!(d.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_declared_digest_that_differs_is_named() {
        let d = Digests::of(b"abc");
        let mut expected = Expected {
            sha256: Some(d.sha256.clone()),
            md5: Some(d.md5.clone()),
            ..Expected::default()
        };
        assert_eq!(expected.mismatch(&d, None), None);
        expected.sha1 = Some("0".repeat(40));
        let found = expected.mismatch(&d, None).expect("mismatch");
        assert_eq!(found.algorithm, "sha1");
        assert_eq!(found.actual, d.sha1);
        let only_512 = Expected {
            sha512: Some("ab".into()),
            ..Expected::default()
        };
        assert_eq!(only_512.mismatch(&d, Some("ab")), None);
        assert_eq!(
            only_512.mismatch(&d, Some("cd")).map(|m| m.algorithm),
            Some("sha512")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_equals_single_pass() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let hasher = ParallelHasher::start(2);
        for chunk in data.chunks(100_003) {
            hasher.feed(&Bytes::copy_from_slice(chunk)).await;
        }
        let mut single = MultiHasher::default();
        single.update(&data);
        assert_eq!(hasher.finish().await.unwrap(), single.finish());
    }
}
