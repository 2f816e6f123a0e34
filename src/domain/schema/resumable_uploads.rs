//! Resumable (tus) uploads in progress, by id, and ordered by expiry so that stale ones are
//! removed a few at a time.

use super::{key, Index, IndexEntry, Schema};
use crate::domain::uploads::ResumableUpload;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct ResumableUploads;

fn upload_key(id: &str) -> Vec<u8> {
    key().str(id).build()
}

fn entry_by_expiry(u: &ResumableUpload) -> Option<IndexEntry> {
    let millis = u.expires_at.timestamp_millis();
    Some((
        key().raw(&super::sortable_i64(millis)).str(&u.id).build(),
        u.id.as_bytes().to_vec(),
    ))
}

const INDEXES: &[Index<ResumableUpload>] = &[Index {
    table: Table::ResumableUploadsByExpiry,
    entry: entry_by_expiry,
}];

impl Schema for ResumableUploads {
    type Record = ResumableUpload;
    const TABLE: Table = Table::ResumableUploads;

    fn key(u: &ResumableUpload) -> Vec<u8> {
        upload_key(&u.id)
    }

    fn indexes() -> &'static [Index<ResumableUpload>] {
        INDEXES
    }
}

pub fn get(meta: &dyn MetaStore, id: &str) -> Result<Option<ResumableUpload>, StoreError> {
    super::get::<ResumableUploads>(meta, &upload_key(id))
}

pub fn remove(tx: &dyn Txn, id: &str) -> Result<Option<ResumableUpload>, TxFail> {
    super::remove::<ResumableUploads>(tx, &upload_key(id))
}

/// The ids of up to `limit` uploads that expired before `now_millis`, soonest first.
pub fn expired(
    meta: &dyn MetaStore,
    now_millis: i64,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for entry in meta.scan(Table::ResumableUploadsByExpiry, &[]).take(limit) {
        let (k, id) = entry?;
        let Some(at) = k.get(..8) else { continue };
        if at >= &super::sortable_i64(now_millis)[..] {
            break;
        }
        out.push(String::from_utf8_lossy(&id).into_owned());
    }
    Ok(out)
}

/// Whether an upload id on disk belongs to an upload in progress (gc keeps its bytes).
pub fn exists(meta: &dyn MetaStore, id: &str) -> Result<bool, StoreError> {
    Ok(get(meta, id)?.is_some())
}
