//! The embedded metadata store: one sled tree per [`Table`].

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;

use super::meta::{KvIter, MetaStore, StoreError, Table, TransactError, TxFail, TxFailKind, Txn};

/// The sled database and its trees. After an I/O error (a full disk, say) sled keeps that
/// error and fails every later write with it, for as long as the process runs, even once the
/// disk has room again; so the store remembers that it is poisoned and, when a write probe
/// says the disk takes writes again, closes the database and opens it afresh (recovery
/// replays the log up to the last durable write, which is every acknowledged one).
pub struct SledMeta {
    dir: PathBuf,
    cache_bytes: u64,
    open: RwLock<Option<Arc<Open>>>,
    poisoned: AtomicBool,
    last_recovery: Mutex<Option<Instant>>,
}

struct Open {
    db: sled::Db,
    trees: Vec<sled::Tree>,
}

/// How often a poisoned store tries to recover.
const RECOVERY_INTERVAL: Duration = Duration::from_millis(500);
/// How long a recovery waits for reads still holding the old database to end.
const RECOVERY_WAIT: Duration = Duration::from_secs(2);
/// What the write probe writes before a recovery: more than one sled log segment.
const PROBE_BYTES: usize = 1 << 20;

fn open_db(dir: &Path, cache_bytes: u64) -> sled::Result<Open> {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(cache_bytes)
        .flush_every_ms(Some(200))
        .open()?;
    let trees = Table::ALL
        .iter()
        .map(|table| db.open_tree(table.name()))
        .collect::<sled::Result<Vec<_>>>()?;
    Ok(Open { db, trees })
}

impl SledMeta {
    /// Opens (or creates) the store under `dir`. `cache_bytes` bounds sled's page cache, which
    /// otherwise defaults to 1 GiB.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let open = open_db(dir, cache_bytes).map_err(engine)?;
        Ok(SledMeta {
            dir: dir.to_path_buf(),
            cache_bytes,
            open: RwLock::new(Some(Arc::new(open))),
            poisoned: AtomicBool::new(false),
            last_recovery: Mutex::new(None),
        })
    }

    /// The open database, after a recovery attempt when it is poisoned.
    fn current(&self) -> Result<Arc<Open>, StoreError> {
        if self.poisoned.load(Ordering::Acquire) {
            self.try_recover();
        }
        self.open
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                StoreError::Engine(
                    "metadata store is closed: reopening after an I/O error failed".into(),
                )
            })
    }

    fn tree(&self, table: Table) -> Result<sled::Tree, StoreError> {
        Ok(self.current()?.trees[table.index()].clone())
    }

    /// Converts a sled error, noting an I/O error: sled is poisoned by it.
    fn failed(&self, error: sled::Error) -> StoreError {
        if matches!(error, sled::Error::Io(_)) && !self.poisoned.swap(true, Ordering::AcqRel) {
            tracing::error!(%error, "metadata store hit an I/O error; it reopens once writes succeed again");
        }
        engine(error)
    }

    /// Reopens a poisoned database once the disk takes a write again; at most every
    /// [`RECOVERY_INTERVAL`].
    fn try_recover(&self) {
        {
            let mut last = self.last_recovery.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < RECOVERY_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        if let Err(error) = probe_write(&self.dir) {
            tracing::debug!(%error, "metadata store still cannot write");
            return;
        }
        let mut slot = self.open.write().unwrap_or_else(|e| e.into_inner());
        if !self.poisoned.load(Ordering::Acquire) {
            return; // recovered meanwhile
        }
        // Sled holds a lock on its files until every handle is gone: wait for readers.
        if let Some(old) = slot.take() {
            let started = Instant::now();
            let mut old = old;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(open) => {
                        drop(open);
                        break;
                    }
                    Err(still_shared) if started.elapsed() < RECOVERY_WAIT => {
                        old = still_shared;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(still_shared) => {
                        *slot = Some(still_shared);
                        return;
                    }
                }
            }
        }
        let started = Instant::now();
        loop {
            match open_db(&self.dir, self.cache_bytes) {
                Ok(open) => {
                    *slot = Some(Arc::new(open));
                    self.poisoned.store(false, Ordering::Release);
                    tracing::warn!("metadata store reopened after an I/O error; writes resume");
                    return;
                }
                // Iterators of the old database may still hold its lock for a moment.
                Err(_) if started.elapsed() < RECOVERY_WAIT => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(error) => {
                    tracing::error!(%error, "reopening the metadata store failed; trying again later");
                    return;
                }
            }
        }
    }
}

/// Writes, syncs and removes a file of [`PROBE_BYTES`] in `dir`.
fn probe_write(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join(format!(
        ".write-probe-{}",
        hex::encode(rand::random::<[u8; 8]>())
    ));
    let written = (|| {
        let mut file = std::fs::File::create(&path)?;
        file.write_all(&vec![0u8; PROBE_BYTES])?;
        file.sync_all()
    })();
    let removed = std::fs::remove_file(&path);
    written.and(removed)
}

fn engine(error: sled::Error) -> StoreError {
    match &error {
        sled::Error::Io(io)
            if io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28) =>
        {
            StoreError::Full
        }
        _ => StoreError::Engine(error.to_string()),
    }
}

fn entries(
    iter: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> + 'static,
) -> KvIter<'static> {
    Box::new(iter.map(|entry| entry.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(engine)))
}

struct SledTxn<'a> {
    views: &'a [TransactionalTree],
}

fn fail(error: UnabortableTransactionError) -> TxFail {
    TxFail(TxFailKind::Engine(Box::new(error)))
}

impl Txn for SledTxn<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, TxFail> {
        self.views[table.index()]
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(fail)
    }

    fn put(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), TxFail> {
        self.views[table.index()]
            .insert(key, value)
            .map(|_| ())
            .map_err(fail)
    }

    fn delete(&self, table: Table, key: &[u8]) -> Result<(), TxFail> {
        self.views[table.index()]
            .remove(key)
            .map(|_| ())
            .map_err(fail)
    }
}

impl MetaStore for SledMeta {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.tree(table)?
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| self.failed(e))
    }

    fn scan(&self, table: Table, prefix: &[u8]) -> KvIter<'_> {
        match self.tree(table) {
            Ok(tree) => entries(tree.scan_prefix(prefix)),
            Err(error) => Box::new(std::iter::once(Err(error))),
        }
    }

    fn scan_rev(&self, table: Table, prefix: &[u8]) -> KvIter<'_> {
        match self.tree(table) {
            Ok(tree) => entries(tree.scan_prefix(prefix).rev()),
            Err(error) => Box::new(std::iter::once(Err(error))),
        }
    }

    fn transact(
        &self,
        body: &mut dyn FnMut(&dyn Txn) -> Result<(), TxFail>,
    ) -> Result<(), TransactError> {
        let open = self.current().map_err(TransactError::Store)?;
        let body = RefCell::new(body);
        let result = open.trees.as_slice().transaction(
            |views: &Vec<TransactionalTree>| -> Result<(), ConflictableTransactionError<Option<StoreError>>> {
                let mut body = body.borrow_mut();
                match (body)(&SledTxn { views }) {
                    Ok(()) => Ok(()),
                    Err(TxFail(TxFailKind::Abort)) => Err(ConflictableTransactionError::Abort(None)),
                    Err(TxFail(TxFailKind::Decode(e))) => {
                        Err(ConflictableTransactionError::Abort(Some(e)))
                    }
                    Err(TxFail(TxFailKind::Engine(any))) => {
                        match any.downcast::<UnabortableTransactionError>() {
                            Ok(error) => Err((*error).into()),
                            Err(_) => Err(ConflictableTransactionError::Abort(Some(
                                StoreError::Engine("foreign transaction failure".into()),
                            ))),
                        }
                    }
                }
            },
        );
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(None)) => Err(TransactError::Aborted),
            Err(TransactionError::Abort(Some(error))) => Err(TransactError::Store(error)),
            Err(TransactionError::Storage(error)) => Err(TransactError::Store(self.failed(error))),
        }
    }

    fn next_id(&self) -> Result<u64, StoreError> {
        self.current()?
            .db
            .generate_id()
            .map(|id| id + 1)
            .map_err(|e| self.failed(e))
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.current()?
            .db
            .flush()
            .map(|_| ())
            .map_err(|e| self.failed(e))
    }
}
