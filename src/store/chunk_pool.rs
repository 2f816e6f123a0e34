//! Buffers for upload chunks, reused across chunks and uploads.
//!
//! An upload regroups its body into fixed-size chunks that a writer thread and three hasher
//! threads read. A chunk's buffer comes back here when the last of them drops it, and the next
//! chunk reuses it: a long upload cycles through the same few buffers instead of allocating (and
//! faulting in) fresh memory for every chunk. At most `keep` idle buffers are kept, and none once
//! no chunk is in use ([`ChunkPool::shrink_if_idle`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

pub struct ChunkPool {
    chunk_size: usize,
    /// Buffers handed back, empty, at most `keep` of them.
    spare: Mutex<Vec<Vec<u8>>>,
    keep: usize,
    in_use: AtomicUsize,
}

/// A chunk being filled; `freeze` turns it into shared `Bytes`. Its buffer goes back to the pool
/// when the last reader drops it.
pub struct Chunk {
    data: Vec<u8>,
    pool: Arc<ChunkPool>,
}

impl ChunkPool {
    /// Chunks of `chunk_size` bytes; up to `keep` buffers handed back are kept for reuse.
    pub fn new(chunk_size: usize, keep: usize) -> Arc<ChunkPool> {
        Arc::new(ChunkPool {
            chunk_size,
            spare: Mutex::new(Vec::new()),
            keep,
            in_use: AtomicUsize::new(0),
        })
    }

    /// An empty chunk: a kept buffer if there is one, else a new one.
    pub fn take(self: &Arc<Self>) -> Chunk {
        let data = self
            .spare
            .lock()
            .ok()
            .and_then(|mut spare| spare.pop())
            .unwrap_or_else(|| Vec::with_capacity(self.chunk_size));
        self.in_use.fetch_add(1, Ordering::AcqRel);
        Chunk {
            data,
            pool: self.clone(),
        }
    }

    /// Chunks handed out and not yet back.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Acquire)
    }

    /// Frees the kept buffers if no chunk is in use: an idle server holds no chunk memory.
    pub fn shrink_if_idle(&self) {
        if let Ok(mut spare) = self.spare.lock() {
            if self.in_use() == 0 {
                *spare = Vec::new();
            }
        }
    }

    fn give_back(&self, mut data: Vec<u8>) {
        if data.capacity() == self.chunk_size {
            data.clear();
            if let Ok(mut spare) = self.spare.lock() {
                if spare.len() < self.keep {
                    spare.push(data);
                }
            }
        }
        self.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Chunk {
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.data.len() >= self.pool.chunk_size
    }

    /// Appends as much of `bytes` as fits; returns how many bytes were taken.
    pub fn fill_from(&mut self, bytes: &[u8]) -> usize {
        let take = bytes
            .len()
            .min(self.pool.chunk_size.saturating_sub(self.data.len()));
        self.data.extend_from_slice(&bytes[..take]);
        take
    }

    /// Shared, read-only bytes; the buffer returns to the pool when the last clone is dropped.
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.data));
    }
}

/// Hands memory the allocator holds but no longer uses back to the operating system. glibc keeps
/// freed memory in its per-thread arenas, and after a burst of concurrent uploads that can be
/// tens of MiB that the next upload, served from another arena, does not reuse.
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_fill_to_their_size_and_come_back_for_reuse() {
        let pool = ChunkPool::new(8, 1);
        let mut chunk = pool.take();
        assert_eq!(chunk.fill_from(b"12345"), 5);
        assert!(!chunk.is_full());
        assert_eq!(chunk.fill_from(b"6789abc"), 3);
        assert!(chunk.is_full());
        assert_eq!(chunk.fill_from(b"x"), 0);
        let bytes = chunk.freeze();
        assert_eq!(&bytes[..], b"12345678");
        let reader = bytes.slice(2..4);
        drop(bytes);
        assert_eq!(pool.in_use(), 1, "a reader still holds the chunk");
        assert_eq!(&reader[..], b"34");
        drop(reader);
        assert_eq!(pool.in_use(), 0);
        assert_eq!(pool.spare.lock().unwrap().len(), 1);

        let again = pool.take();
        assert!(again.is_empty());
        assert_eq!(
            pool.spare.lock().unwrap().len(),
            0,
            "the kept buffer was reused"
        );
        let other = pool.take();
        drop(again);
        drop(other);
        assert_eq!(
            pool.spare.lock().unwrap().len(),
            1,
            "only `keep` buffers are kept"
        );
        pool.shrink_if_idle();
        assert_eq!(pool.spare.lock().unwrap().len(), 0);
    }
}
