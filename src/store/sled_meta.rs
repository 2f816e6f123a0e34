//! The embedded metadata store: one sled tree per [`Table`].

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;

use super::meta::{
    is_disk_full, KvIter, MetaStore, StoreError, Table, TransactError, TxFail, TxFailKind, Txn,
};

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
    files: SledFiles,
}

/// How often a poisoned store tries to recover.
const RECOVERY_INTERVAL: Duration = Duration::from_millis(500);
/// How long a recovery waits for reads still holding the old database to end.
const RECOVERY_WAIT: Duration = Duration::from_secs(2);
/// What the write probe writes before a recovery: more than one sled log segment.
const PROBE_BYTES: usize = 1 << 20;

fn open_db(dir: &Path, cache_bytes: u64) -> Result<Open, StoreError> {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(cache_bytes)
        .flush_every_ms(Some(200))
        .open()
        .map_err(engine)?;
    let trees = Table::ALL
        .iter()
        .map(|table| db.open_tree(table.name()).map_err(engine))
        .collect::<Result<Vec<_>, _>>()?;
    let files = SledFiles::open(dir).map_err(|source| StoreError::Io {
        action: "syncing the metadata files",
        source,
    })?;
    Ok(Open { db, trees, files })
}

impl SledMeta {
    /// Opens (or creates) the store under `dir`. `cache_bytes` bounds sled's page cache, which
    /// otherwise defaults to 1 GiB.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let open = open_db(dir, cache_bytes)?;
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
            .ok_or(StoreError::Invariant(
                "metadata store is closed: reopening after an I/O error failed",
            ))
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

/// sled's errors carry no `source()`; an I/O error inside one becomes the cause itself.
fn engine(error: sled::Error) -> StoreError {
    match error {
        sled::Error::Io(source) if is_disk_full(&source) => StoreError::Full,
        sled::Error::Io(source) => StoreError::Io {
            action: "sled",
            source,
        },
        other => StoreError::engine(other),
    }
}

fn entries(
    iter: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> + 'static,
) -> KvIter<'static> {
    Box::new(iter.map(|entry| entry.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(engine)))
}

/// The first key above every key that starts with `prefix`; `None` when there is none.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
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

    fn scan_after(&self, table: Table, prefix: &[u8], after: &[u8], reverse: bool) -> KvIter<'_> {
        use std::ops::Bound;
        let end = prefix_end(prefix);
        let beyond_end = end.as_deref().is_some_and(|end| after >= end);
        let (lower, upper) = if reverse {
            if after <= prefix {
                return Box::new(std::iter::empty());
            }
            let upper = match end {
                Some(end) if beyond_end => Bound::Excluded(end),
                _ => Bound::Excluded(after.to_vec()),
            };
            (Bound::Included(prefix.to_vec()), upper)
        } else {
            if beyond_end {
                return Box::new(std::iter::empty());
            }
            let lower = if after < prefix {
                Bound::Included(prefix.to_vec())
            } else {
                Bound::Excluded(after.to_vec())
            };
            let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
            (lower, upper)
        };
        let tree = match self.tree(table) {
            Ok(tree) => tree,
            Err(error) => return Box::new(std::iter::once(Err(error))),
        };
        let range = tree.range::<Vec<u8>, _>((lower, upper));
        if reverse {
            entries(range.rev())
        } else {
            entries(range)
        }
    }

    fn scan_from(&self, table: Table, prefix: &[u8], start: &[u8]) -> KvIter<'_> {
        use std::ops::Bound;
        let lower = if start < prefix { prefix } else { start };
        let upper = prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
        if let Bound::Excluded(end) = &upper {
            if lower >= end.as_slice() {
                return Box::new(std::iter::empty());
            }
        }
        match self.tree(table) {
            Ok(tree) => entries(tree.range::<Vec<u8>, _>((Bound::Included(lower.to_vec()), upper))),
            Err(error) => Box::new(std::iter::once(Err(error))),
        }
    }

    fn clear(&self, table: Table) -> Result<(), StoreError> {
        self.tree(table)?.clear().map_err(|e| self.failed(e))
    }

    fn drop_retired(&self, name: &str) -> Result<(), StoreError> {
        self.current()?
            .db
            .drop_tree(name)
            .map(|_| ())
            .map_err(|e| self.failed(e))
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
                                StoreError::Invariant("foreign transaction failure"),
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
        let open = self.current()?;
        open.db.flush().map_err(|e| self.failed(e))?;
        open.files.sync().map_err(|source| {
            if is_disk_full(&source) {
                StoreError::Full
            } else {
                StoreError::Io {
                    action: "syncing the metadata files",
                    source,
                }
            }
        })
    }
}

/// fsync-grade durability for what sled writes. sled 0.34's `flush()` writes its log (`db`) with
/// `sync_file_range` on Linux (`pagecache/iobuf.rs`), which neither persists the file's size and
/// other metadata nor flushes the drive's write cache: an acknowledged write survives `kill -9`
/// but can be lost on power failure. It also never syncs the files it writes for pages too large
/// for the log (`blobs/<lsn>`), nor the directories in which it creates files (`conf`, `db`,
/// `blobs/`, `snap.*`). So after every `db.flush()`, [`SledFiles::sync`] `fdatasync`s the log,
/// syncs blob files that appeared since the last time, and syncs each directory whose entries
/// changed.
struct SledFiles {
    dir: PathBuf,
    /// `db`, the log, kept open: sled never replaces it.
    log: File,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// Entries of the metadata dir (`conf`, `db`, `blobs`, `snap.*`) as of the last sync.
    entries: BTreeSet<OsString>,
    /// Files in `blobs/` as of the last sync.
    blobs: BTreeSet<OsString>,
}

impl SledFiles {
    /// Syncs everything sled may have just created: the files, the metadata dir, and the dir
    /// above it (the data dir, which holds `meta/`).
    fn open(dir: &Path) -> io::Result<SledFiles> {
        let log = File::open(dir.join("db"))?;
        log.sync_all()?;
        File::open(dir.join("conf"))?.sync_all()?;
        let files = SledFiles {
            dir: dir.to_path_buf(),
            log,
            seen: Mutex::new(Seen::default()),
        };
        files.sync()?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(files)
    }

    fn sync(&self) -> io::Result<()> {
        self.log.sync_data()?;
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let blobs_dir = self.dir.join("blobs");
        let blobs = names(&blobs_dir)?;
        if blobs != seen.blobs {
            for name in blobs.difference(&seen.blobs) {
                match File::open(blobs_dir.join(name)) {
                    Ok(blob) => blob.sync_data()?,
                    // Already collected by sled.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            sync_dir(&blobs_dir)?;
            seen.blobs = blobs;
        }
        let entries = names(&self.dir)?;
        if entries != seen.entries {
            sync_dir(&self.dir)?;
            seen.entries = entries;
        }
        Ok(())
    }
}

/// The names in a directory; none when it does not exist (yet).
fn names(dir: &Path) -> io::Result<BTreeSet<OsString>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.map(|e| e.file_name())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
