//! Download counts: `(kind, id) → Usage` for files and packages (a version's count is its
//! package's). Written in batches by the usage flusher, never on the download path.

use serde::{Deserialize, Serialize};

use super::files::Files;
use super::packages::Packages;
use super::{key, Schema};
use crate::domain::records::Timestamp;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counted {
    File(u64),
    Package(u64),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Usage {
    /// `file` or `package`.
    pub kind: String,
    pub id: u64,
    pub download_count: u64,
    pub last_downloaded_at: Option<Timestamp>,
}

pub struct Usages;

fn usage_key(kind: &str, id: u64) -> Vec<u8> {
    key().str(kind).id(id).build()
}

fn parts(counted: Counted) -> (&'static str, u64) {
    match counted {
        Counted::File(id) => ("file", id),
        Counted::Package(id) => ("package", id),
    }
}

impl Schema for Usages {
    type Record = Usage;
    const TABLE: Table = Table::Usage;

    fn key(u: &Usage) -> Vec<u8> {
        usage_key(&u.kind, u.id)
    }
}

pub fn get(meta: &dyn MetaStore, counted: Counted) -> Result<Option<Usage>, StoreError> {
    let (kind, id) = parts(counted);
    super::get::<Usages>(meta, &usage_key(kind, id))
}

/// The counts of several files or packages, in the order asked (`None` where nothing was
/// downloaded yet): one batched read for a page.
pub fn get_of(meta: &dyn MetaStore, counted: &[Counted]) -> Result<Vec<Option<Usage>>, StoreError> {
    let keys: Vec<Vec<u8>> = counted
        .iter()
        .map(|c| {
            let (kind, id) = parts(*c);
            usage_key(kind, id)
        })
        .collect();
    super::get_many::<Usages>(meta, &keys)
}

/// Adds `count` downloads, the last at `last`; nothing when the file or package was deleted
/// since (its counts went with it).
pub fn add(tx: &dyn Txn, counted: Counted, count: u64, last: Timestamp) -> Result<(), TxFail> {
    let still_there = match counted {
        Counted::File(id) => super::load::<Files>(tx, &super::id_key(id))?.is_some(),
        Counted::Package(id) => super::load::<Packages>(tx, &super::id_key(id))?.is_some(),
    };
    if !still_there {
        return Ok(());
    }
    let (kind, id) = parts(counted);
    let mut usage = super::load::<Usages>(tx, &usage_key(kind, id))?.unwrap_or(Usage {
        kind: kind.to_string(),
        id,
        download_count: 0,
        last_downloaded_at: None,
    });
    usage.download_count = usage.download_count.saturating_add(count);
    usage.last_downloaded_at = Some(match usage.last_downloaded_at {
        Some(before) if before > last => before,
        _ => last,
    });
    super::put::<Usages>(tx, &usage)?;
    Ok(())
}

/// Forgets the counts of something deleted.
pub fn forget(tx: &dyn Txn, counted: Counted) -> Result<(), TxFail> {
    let (kind, id) = parts(counted);
    super::remove::<Usages>(tx, &usage_key(kind, id))?;
    Ok(())
}
