//! Group commit: many requests that each need "everything I committed is durable" share one
//! flush. At most one flush runs at a time; requests arriving while it runs are served by the
//! next one, which starts after their commits and so covers them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, OnceLock};

use tokio::sync::oneshot;

use super::meta::{MetaStore, StoreError};

/// Every waiter of one flush gets its outcome; a failure is shared, cause and all.
type Waiter = oneshot::Sender<Result<(), Arc<StoreError>>>;

pub struct GroupCommit {
    meta: Arc<dyn MetaStore>,
    queue: OnceLock<Option<mpsc::Sender<Waiter>>>,
    flushes: Arc<AtomicU64>,
}

impl GroupCommit {
    pub fn new(meta: Arc<dyn MetaStore>) -> Self {
        GroupCommit {
            meta,
            queue: OnceLock::new(),
            flushes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many flushes have run: the number of durable writes.
    pub fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// The flusher's queue: a thread of its own, started on first use, that lives as long as
    /// this value (it ends when the queue closes). A thread rather than a task that hops to
    /// the blocking pool for each flush: a waiter costs one wake-up of the flusher and one of
    /// itself, however busy the server is. `None` when no thread could be started.
    fn queue(&self) -> Option<&mpsc::Sender<Waiter>> {
        self.queue
            .get_or_init(|| {
                let (tx, rx) = mpsc::channel();
                let meta = self.meta.clone();
                let flushes = self.flushes.clone();
                std::thread::Builder::new()
                    .name("metadata flusher".into())
                    .spawn(move || run(meta.as_ref(), &flushes, rx))
                    .ok()
                    .map(|_| tx)
            })
            .as_ref()
    }

    /// Waits until a flush that started after this call has finished.
    pub async fn durable(&self) -> Result<(), StoreError> {
        if self.meta.durable_on_commit() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        let Some(queue) = self.queue() else {
            return self.flush_now();
        };
        if queue.send(tx).is_err() {
            return self.flush_now();
        }
        match rx.await {
            Ok(result) => result.map_err(StoreError::Flush),
            Err(_) => self.flush_now(),
        }
    }

    /// A flush on the calling thread (shutdown, admin commands, a stopped flusher).
    pub fn flush_now(&self) -> Result<(), StoreError> {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.meta.flush()
    }
}

/// The flusher: takes every waiter queued so far, flushes once for all of them, tells each the
/// outcome, and sleeps until the next one comes.
fn run(meta: &dyn MetaStore, flushes: &AtomicU64, rx: mpsc::Receiver<Waiter>) {
    while let Ok(first) = rx.recv() {
        let mut waiters = vec![first];
        waiters.extend(rx.try_iter());
        flushes.fetch_add(1, Ordering::Relaxed);
        let result = meta.flush().map_err(Arc::new);
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled_meta::SledMeta;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let meta: Arc<dyn MetaStore> = Arc::new(SledMeta::open(dir.path(), 1 << 20).unwrap());
        let commits = Arc::new(GroupCommit::new(meta));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let commits = commits.clone();
                tokio::spawn(async move { commits.durable().await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let flushes = commits.flush_count();
        assert!(
            (1..64).contains(&flushes),
            "64 concurrent waiters took {flushes} flushes"
        );
    }
}
