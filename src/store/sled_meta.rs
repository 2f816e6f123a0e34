//! The embedded metadata store: one sled tree per [`Table`].

use std::cell::RefCell;
use std::path::Path;

use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;

use super::meta::{KvIter, MetaStore, StoreError, Table, TransactError, TxFail, TxFailKind, Txn};

pub struct SledMeta {
    db: sled::Db,
    trees: Vec<sled::Tree>,
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
        Ok(SledMeta { db, trees })
    }

    fn tree(&self, table: Table) -> &sled::Tree {
        &self.trees[table.index()]
    }
}

fn engine(error: sled::Error) -> StoreError {
    StoreError::Engine(error.to_string())
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
            Err(TransactionError::Storage(error)) => Err(TransactError::Store(engine(error))),
        }
    }

    fn next_id(&self) -> Result<u64, StoreError> {
        self.db.generate_id().map(|id| id + 1).map_err(engine)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(engine)
    }
}
