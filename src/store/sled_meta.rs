//! The embedded metadata store: one sled tree per [`Table`].

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;

use super::meta::{KvIter, MetaStore, StoreError, Table, TransactError, TxFail, TxFailKind, Txn};

pub struct SledMeta {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    files: SledFiles,
}

impl SledMeta {
    /// Opens (or creates) the store under `dir`. `cache_bytes` bounds sled's page cache, which
    /// otherwise defaults to 1 GiB.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
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
        Ok(SledMeta { db, trees, files })
    }

    fn tree(&self, table: Table) -> &sled::Tree {
        &self.trees[table.index()]
    }
}

/// sled's errors carry no `source()`; an I/O error inside one becomes the cause itself.
fn engine(error: sled::Error) -> StoreError {
    match error {
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
        self.tree(table)
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(engine)
    }

    fn scan(&self, table: Table, prefix: &[u8]) -> KvIter<'_> {
        entries(self.tree(table).scan_prefix(prefix))
    }

    fn scan_rev(&self, table: Table, prefix: &[u8]) -> KvIter<'_> {
        entries(self.tree(table).scan_prefix(prefix).rev())
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
        let range = self.tree(table).range::<Vec<u8>, _>((lower, upper));
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
        entries(
            self.tree(table)
                .range::<Vec<u8>, _>((Bound::Included(lower.to_vec()), upper)),
        )
    }

    fn clear(&self, table: Table) -> Result<(), StoreError> {
        self.tree(table).clear().map_err(engine)
    }

    fn drop_retired(&self, name: &str) -> Result<(), StoreError> {
        self.db.drop_tree(name).map(|_| ()).map_err(engine)
    }

    fn transact(
        &self,
        body: &mut dyn FnMut(&dyn Txn) -> Result<(), TxFail>,
    ) -> Result<(), TransactError> {
        let body = RefCell::new(body);
        let result = self.trees.as_slice().transaction(
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
            Err(TransactionError::Storage(error)) => Err(TransactError::Store(engine(error))),
        }
    }

    fn next_id(&self) -> Result<u64, StoreError> {
        self.db.generate_id().map(|id| id + 1).map_err(engine)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(engine)?;
        self.files.sync().map_err(|source| StoreError::Io {
            action: "syncing the metadata files",
            source,
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
