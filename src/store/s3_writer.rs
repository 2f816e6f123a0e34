//! One object written part by part: held in memory until it outgrows a part (then it is one
//! PUT), otherwise a multipart upload with a bounded number of parts on the wire.
//!
//! object_store's own `BufWriter` does the same, but its abort cancels the part requests in
//! flight and aborts the upload at once: a part whose body the server already had can still be
//! stored after the abort, and stays in the bucket as an orphan part (S3's documentation says an
//! abort may have to be repeated for this reason). Here an abort waits for the parts in flight
//! to end first, so that nothing of an aborted upload lands after it.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayloadMut, WriteMultipart};

pub struct PartWriter {
    store: Arc<dyn ObjectStore>,
    path: Path,
    part: usize,
    in_flight: usize,
    state: State,
}

enum State {
    /// Less than a part so far.
    Buffer(PutPayloadMut),
    Upload(Box<WriteMultipart>),
    /// Finished or aborted.
    Done,
}

fn finished() -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: "the upload is already finished".into(),
    }
}

impl PartWriter {
    /// A write to `path` in parts of `part` bytes, at most `in_flight` of them sent at once.
    pub fn new(store: Arc<dyn ObjectStore>, path: Path, part: usize, in_flight: usize) -> Self {
        PartWriter {
            store,
            path,
            part,
            in_flight: in_flight.max(1),
            state: State::Buffer(PutPayloadMut::new()),
        }
    }

    /// Adds `bytes`; waits while the parts in flight are at the bound.
    pub async fn put(&mut self, bytes: Bytes) -> object_store::Result<()> {
        match &mut self.state {
            State::Buffer(buffer) if buffer.content_length() + bytes.len() < self.part => {
                buffer.push(bytes);
                Ok(())
            }
            State::Buffer(buffer) => {
                let buffered = std::mem::take(buffer).freeze();
                let upload = self
                    .store
                    .put_multipart_opts(&self.path, Default::default())
                    .await?;
                let mut upload = WriteMultipart::new_with_chunk_size(upload, self.part);
                for chunk in buffered {
                    upload.put(chunk);
                }
                upload.put(bytes);
                self.state = State::Upload(Box::new(upload));
                Ok(())
            }
            State::Upload(upload) => {
                upload.wait_for_capacity(self.in_flight).await?;
                upload.put(bytes);
                Ok(())
            }
            State::Done => Err(finished()),
        }
    }

    /// Writes what is left and completes the object: it exists once this returns `Ok`.
    pub async fn finish(&mut self) -> object_store::Result<()> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Buffer(buffer) => self
                .store
                .put(&self.path, buffer.freeze())
                .await
                .map(|_| ()),
            State::Upload(upload) => upload.finish().await.map(|_| ()),
            State::Done => Err(finished()),
        }
    }

    /// Abandons the write: waits for the parts in flight to end (whether they were stored or
    /// not), then aborts the multipart upload, so that no part of it stays in the bucket.
    pub async fn abort(&mut self) -> object_store::Result<()> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Upload(mut upload) => {
                // Each failed part ends one wait; the loop ends when none is left in flight.
                while upload.wait_for_capacity(0).await.is_err() {}
                upload.abort().await
            }
            State::Buffer(_) | State::Done => Ok(()),
        }
    }
}
