//! Short-lived tokens exchanged for OIDC ID tokens: found by the sha256 of their secret, and
//! ordered by expiry so that expired ones are pruned a few at a time.

use super::{id_key, key, Index, IndexEntry, Schema};
use crate::domain::records::CiToken;
use crate::store::meta::{MetaStore, StoreError, Table};

pub struct CiTokens;

fn hash_key(secret_sha256: &str) -> Vec<u8> {
    key().str(secret_sha256).build()
}

fn entry_by_hash(t: &CiToken) -> Option<IndexEntry> {
    Some((hash_key(&t.secret_sha256), id_key(t.id)))
}

fn entry_by_expiry(t: &CiToken) -> Option<IndexEntry> {
    let millis = t.expires_at.timestamp_millis();
    Some((
        key().raw(&super::sortable_i64(millis)).id(t.id).build(),
        Vec::new(),
    ))
}

const INDEXES: &[Index<CiToken>] = &[
    Index {
        table: Table::CiTokensByHash,
        entry: entry_by_hash,
    },
    Index {
        table: Table::CiTokensByExpiry,
        entry: entry_by_expiry,
    },
];

impl Schema for CiTokens {
    type Record = CiToken;
    const TABLE: Table = Table::CiTokens;

    fn key(t: &CiToken) -> Vec<u8> {
        id_key(t.id)
    }

    fn indexes() -> &'static [Index<CiToken>] {
        INDEXES
    }
}

pub fn by_hash_of(
    meta: &dyn MetaStore,
    secret_sha256: &str,
) -> Result<Option<CiToken>, StoreError> {
    super::get_by_index::<CiTokens>(meta, Table::CiTokensByHash, &hash_key(secret_sha256))
}

/// The ids of up to `limit` tokens that expired before `now_millis`, soonest first.
pub fn expired(
    meta: &dyn MetaStore,
    now_millis: i64,
    limit: usize,
) -> Result<Vec<u64>, StoreError> {
    let mut out = Vec::new();
    for entry in meta.scan(Table::CiTokensByExpiry, &[]).take(limit) {
        let (k, _) = entry?;
        let Some(at) = k.get(..8) else { continue };
        if at >= &super::sortable_i64(now_millis)[..] {
            break;
        }
        if let Some(id) = super::trailing_id(&k) {
            out.push(id);
        }
    }
    Ok(out)
}
