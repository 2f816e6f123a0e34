//! Copying a whole metadata store into another, table by table, raw (`modelyard migrate`).
//!
//! Every engine keeps the same ordered keys and values in every [`Table`], so a copy is a scan
//! of each source table written into the same table of the destination, in transactions of at
//! most [`BATCH_ROWS`] entries or [`BATCH_BYTES`] bytes: memory stays bounded whatever a table
//! holds. [`summarize`] counts a table's entries and digests them (keys and values in key order),
//! so two stores can be compared without holding either.

use sha2::Digest;

use super::meta::{MetaStore, StoreError, Table, TxError};

/// Most entries one copy transaction writes.
pub const BATCH_ROWS: usize = 500;
/// Most key and value bytes one copy transaction writes (a single larger entry goes alone).
pub const BATCH_BYTES: usize = 4 << 20;

/// What a table holds: its entries' number and bytes, and a sha256 over them in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    pub rows: u64,
    pub bytes: u64,
    pub digest: String,
}

/// Running digest of a table's entries: each as its key's and value's lengths and bytes.
struct Summing {
    rows: u64,
    bytes: u64,
    hasher: sha2::Sha256,
}

impl Summing {
    fn new() -> Summing {
        Summing {
            rows: 0,
            bytes: 0,
            hasher: sha2::Sha256::new(),
        }
    }

    fn add(&mut self, key: &[u8], value: &[u8]) {
        self.rows += 1;
        self.bytes += (key.len() + value.len()) as u64;
        self.hasher.update((key.len() as u64).to_be_bytes());
        self.hasher.update(key);
        self.hasher.update((value.len() as u64).to_be_bytes());
        self.hasher.update(value);
    }

    fn finish(self) -> TableSummary {
        TableSummary {
            rows: self.rows,
            bytes: self.bytes,
            digest: hex::encode(self.hasher.finalize()),
        }
    }
}

/// The first table (in [`Table::ALL`] order) that holds any entry, or `None` for an empty store.
pub fn first_nonempty(meta: &dyn MetaStore) -> Result<Option<Table>, StoreError> {
    for table in Table::ALL {
        if meta.scan(table, b"").next().transpose()?.is_some() {
            return Ok(Some(table));
        }
    }
    Ok(None)
}

/// Counts and digests every entry of `table`.
pub fn summarize(meta: &dyn MetaStore, table: Table) -> Result<TableSummary, StoreError> {
    let mut summing = Summing::new();
    for entry in meta.scan(table, b"") {
        let (key, value) = entry?;
        summing.add(&key, &value);
    }
    Ok(summing.finish())
}

/// Copies every entry of `table` from `from` into `to` (entries already there are overwritten),
/// in bounded transactions; `progress` is told the entries copied so far after each one.
/// Returns the source table's summary.
pub fn copy_table(
    from: &dyn MetaStore,
    to: &dyn MetaStore,
    table: Table,
    progress: &mut dyn FnMut(u64),
) -> Result<TableSummary, StoreError> {
    let mut summing = Summing::new();
    let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut batch_bytes = 0usize;
    for entry in from.scan(table, b"") {
        let (key, value) = entry?;
        summing.add(&key, &value);
        batch_bytes += key.len() + value.len();
        batch.push((key, value));
        if batch.len() >= BATCH_ROWS || batch_bytes >= BATCH_BYTES {
            write_batch(to, table, &batch)?;
            batch.clear();
            batch_bytes = 0;
            progress(summing.rows);
        }
    }
    if !batch.is_empty() {
        write_batch(to, table, &batch)?;
        progress(summing.rows);
    }
    Ok(summing.finish())
}

/// A table [`copy_store`] copied, and what the source held.
#[derive(Debug, Clone)]
pub struct CopiedTable {
    table: Table,
    pub name: &'static str,
    pub source: TableSummary,
}

/// Copies every table of [`Table::ALL`] from `from` into `to`; `progress` is told a table's name
/// and the entries copied from it so far, after each transaction.
pub fn copy_store(
    from: &dyn MetaStore,
    to: &dyn MetaStore,
    progress: &mut dyn FnMut(&'static str, u64),
) -> Result<Vec<CopiedTable>, StoreError> {
    Table::ALL
        .iter()
        .map(|&table| {
            let source = copy_table(from, to, table, &mut |rows| progress(table.name(), rows))?;
            Ok(CopiedTable {
                table,
                name: table.name(),
                source,
            })
        })
        .collect()
}

/// A copied table as the source and the destination hold it.
#[derive(Debug, Clone)]
pub struct TableCheck {
    pub name: &'static str,
    pub source: TableSummary,
    pub destination: TableSummary,
}

impl TableCheck {
    pub fn matches(&self) -> bool {
        self.source == self.destination
    }
}

/// Summarizes each copied table again in `to`, beside what the source held.
pub fn check_copy(
    copied: &[CopiedTable],
    to: &dyn MetaStore,
) -> Result<Vec<TableCheck>, StoreError> {
    copied
        .iter()
        .map(|copy| {
            Ok(TableCheck {
                name: copy.name,
                source: copy.source.clone(),
                destination: summarize(to, copy.table)?,
            })
        })
        .collect()
}

fn write_batch(
    to: &dyn MetaStore,
    table: Table,
    batch: &[(Vec<u8>, Vec<u8>)],
) -> Result<(), StoreError> {
    to.transaction(|tx| {
        for (key, value) in batch {
            tx.put(table, key, value)?;
        }
        Ok::<_, TxError<StoreError>>(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled_meta::SledMeta;

    fn store(dir: &tempfile::TempDir) -> SledMeta {
        SledMeta::open(&dir.path().join("meta"), 1 << 20).expect("sled")
    }

    #[test]
    fn a_copy_holds_every_entry_in_several_batches_and_summaries_match() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (from, to) = (store(&a), store(&b));
        let from: &dyn MetaStore = &from;
        let to: &dyn MetaStore = &to;
        assert_eq!(first_nonempty(to).unwrap(), None);
        let rows = BATCH_ROWS * 2 + 7;
        from.transaction(|tx| {
            for i in 0..rows as u64 {
                tx.put(
                    Table::Versions,
                    &i.to_be_bytes(),
                    format!("v{i}").as_bytes(),
                )?;
            }
            tx.put(Table::Counters, b"schema_version", &7u64.to_be_bytes())?;
            Ok::<_, TxError<StoreError>>(())
        })
        .unwrap();
        let mut batches = 0;
        let copied = copy_table(from, to, Table::Versions, &mut |_| batches += 1).unwrap();
        assert_eq!(batches, 3, "two full batches and the rest");
        assert_eq!(copied.rows, rows as u64);
        assert_eq!(copied, summarize(to, Table::Versions).unwrap());
        assert_eq!(first_nonempty(to).unwrap(), Some(Table::Versions));
        // Another table still differs until it is copied too.
        assert_ne!(
            summarize(from, Table::Counters).unwrap(),
            summarize(to, Table::Counters).unwrap()
        );
        copy_table(from, to, Table::Counters, &mut |_| {}).unwrap();
        assert_eq!(
            summarize(from, Table::Counters).unwrap(),
            summarize(to, Table::Counters).unwrap()
        );
        // A changed value changes the digest, not the count.
        to.transaction(|tx| {
            tx.put(Table::Versions, &0u64.to_be_bytes(), b"changed")?;
            Ok::<_, TxError<StoreError>>(())
        })
        .unwrap();
        let changed = summarize(to, Table::Versions).unwrap();
        assert_eq!(changed.rows, copied.rows);
        assert_ne!(changed.digest, copied.digest);
    }
}
