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

#[cfg(test)]
mod tests {
    use super::*;

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
