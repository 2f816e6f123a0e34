//! Buffers for upload chunks, reused across chunks and uploads.
//!
//! An upload regroups its body into fixed-size chunks that a writer thread and three hasher
//! threads read; a download reads the file in chunks that the connection sends. A chunk's buffer
//! comes back here when the last reader drops it, and the next chunk reuses it: a long transfer
//! cycles through the same few buffers instead of allocating (and faulting in) fresh memory for
//! every chunk. At most `keep` idle buffers are kept, and none once no chunk is in use: an idle
//! server holds no chunk memory.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

pub struct ChunkPool {
    chunk_size: usize,
    keep: usize,
    buffers: Mutex<Buffers>,
}

#[derive(Default)]
struct Buffers {
    /// Handed back, empty, at most `keep` of them.
    spare: Vec<Vec<u8>>,
    /// Chunks handed out and not yet back.
    in_use: usize,
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
            keep,
            buffers: Mutex::new(Buffers::default()),
        })
    }

    fn buffers(&self) -> std::sync::MutexGuard<'_, Buffers> {
        // The lock guards plain bookkeeping that a panic cannot leave half-done.
        self.buffers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An empty chunk: a kept buffer if there is one, else a new one.
    pub fn take(self: &Arc<Self>) -> Chunk {
        let spare = {
            let mut buffers = self.buffers();
            buffers.in_use += 1;
            buffers.spare.pop()
        };
        Chunk {
            data: spare.unwrap_or_else(|| Vec::with_capacity(self.chunk_size)),
            pool: self.clone(),
        }
    }

    /// Chunks handed out and not yet back.
    pub fn in_use(&self) -> usize {
        self.buffers().in_use
    }

    fn give_back(&self, mut data: Vec<u8>) {
        let mut buffers = self.buffers();
        buffers.in_use -= 1;
        if buffers.in_use == 0 {
            // Idle: free what was kept (outside the lock), and this one.
            let spare = std::mem::take(&mut buffers.spare);
            drop(buffers);
            drop(spare);
        } else if data.capacity() == self.chunk_size && buffers.spare.len() < self.keep {
            data.clear();
            buffers.spare.push(data);
        }
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

    /// Reads from `reader` until the chunk is full or the reader is at its end; returns how many
    /// bytes were read.
    pub fn read_from(&mut self, reader: &mut impl Read) -> io::Result<usize> {
        let room = self.pool.chunk_size.saturating_sub(self.data.len());
        // `take` keeps `read_to_end` within the buffer's capacity: it never reallocates.
        reader.take(room as u64).read_to_end(&mut self.data)
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

    fn spares(pool: &ChunkPool) -> usize {
        pool.buffers().spare.len()
    }

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

        // While another chunk is out, a buffer handed back is kept, and reused.
        let busy = pool.take();
        drop(reader);
        assert_eq!(pool.in_use(), 1);
        assert_eq!(spares(&pool), 1);
        let again = pool.take();
        assert!(again.is_empty());
        assert_eq!(again.data.capacity(), 8, "the kept buffer was reused");
        assert_eq!(spares(&pool), 0);
        let third = pool.take();
        drop(again);
        drop(third);
        assert_eq!(spares(&pool), 1, "only `keep` buffers are kept");
        // Once none is in use, nothing is kept.
        drop(busy);
        assert_eq!(pool.in_use(), 0);
        assert_eq!(spares(&pool), 0);
    }

    #[test]
    fn reads_fill_a_chunk_without_growing_it() {
        let pool = ChunkPool::new(4, 1);
        let mut source: &[u8] = b"abcdefghij";
        let mut chunks = Vec::new();
        loop {
            let mut chunk = pool.take();
            let n = chunk.read_from(&mut source).unwrap();
            assert_eq!(chunk.data.capacity(), 4);
            if n == 0 {
                break;
            }
            chunks.push(chunk.freeze());
        }
        assert_eq!(chunks, [&b"abcd"[..], b"efgh", b"ij"]);
    }
}
