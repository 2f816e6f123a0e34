//! Group commit: many requests that each need "everything I committed is durable" share one
//! flush. At most one flush runs at a time; requests arriving while it runs are served by the
//! next one, which starts after their commits and so covers them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use super::meta::{MetaStore, StoreError};

type Waiter = oneshot::Sender<Result<(), StoreError>>;

pub struct GroupCommit {
    meta: Arc<dyn MetaStore>,
    queue: OnceLock<mpsc::UnboundedSender<Waiter>>,
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

    fn queue(&self) -> &mpsc::UnboundedSender<Waiter> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(self.meta.clone(), self.flushes.clone(), rx));
            tx
        })
    }

    /// Waits until a flush that started after this call has finished.
    pub async fn durable(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        if self.queue().send(tx).is_err() {
            return self.flush_now();
        }
        match rx.await {
            Ok(result) => result,
            Err(_) => self.flush_now(),
        }
    }

    /// A flush on the calling thread (shutdown, admin commands, a stopped flusher).
    pub fn flush_now(&self) -> Result<(), StoreError> {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.meta.flush()
    }
}

async fn run(
    meta: Arc<dyn MetaStore>,
    flushes: Arc<AtomicU64>,
    mut rx: mpsc::UnboundedReceiver<Waiter>,
) {
    while let Some(first) = rx.recv().await {
        let mut waiters = vec![first];
        while let Ok(more) = rx.try_recv() {
            waiters.push(more);
        }
        let store = meta.clone();
        flushes.fetch_add(1, Ordering::Relaxed);
        let result = match tokio::task::spawn_blocking(move || store.flush()).await {
            Ok(result) => result,
            Err(e) => Err(StoreError::Engine(e.to_string())),
        };
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
