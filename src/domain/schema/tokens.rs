//! Personal access tokens: found by the sha256 of their secret; listed per user.

use super::{id_key, key, Index, IndexEntry, Schema};
use crate::domain::records::PersonalAccessToken;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct Tokens;

fn hash_key(secret_sha256: &str) -> Vec<u8> {
    key().str(secret_sha256).build()
}

fn entry_by_hash(t: &PersonalAccessToken) -> Option<IndexEntry> {
    Some((hash_key(&t.secret_sha256), id_key(t.id)))
}

fn entry_by_user(t: &PersonalAccessToken) -> Option<IndexEntry> {
    Some((key().id(t.user_id).id(t.id).build(), Vec::new()))
}

const INDEXES: &[Index<PersonalAccessToken>] = &[
    Index {
        table: Table::TokensByHash,
        entry: entry_by_hash,
    },
    Index {
        table: Table::TokensByUser,
        entry: entry_by_user,
    },
];

impl Schema for Tokens {
    type Record = PersonalAccessToken;
    const TABLE: Table = Table::Tokens;

    fn audited(r: &PersonalAccessToken) -> Option<super::audit_events::Target> {
        Some(super::audit_events::Target {
            entity_type: "PersonalAccessToken",
            entity_id: r.id,
            project_id: None,
            path: format!("user {}: {}", r.user_id, r.name),
        })
    }

    fn key(t: &PersonalAccessToken) -> Vec<u8> {
        id_key(t.id)
    }

    fn indexes() -> &'static [Index<PersonalAccessToken>] {
        INDEXES
    }
}

pub fn get(meta: &dyn MetaStore, id: u64) -> Result<Option<PersonalAccessToken>, StoreError> {
    super::get::<Tokens>(meta, &id_key(id))
}

pub fn by_hash_of(
    meta: &dyn MetaStore,
    secret_sha256: &str,
) -> Result<Option<PersonalAccessToken>, StoreError> {
    super::get_by_index::<Tokens>(meta, Table::TokensByHash, &hash_key(secret_sha256))
}

pub fn hash_taken(tx: &dyn Txn, secret_sha256: &str) -> Result<bool, TxFail> {
    Ok(tx
        .get(Table::TokensByHash, &hash_key(secret_sha256))?
        .is_some())
}

/// Every token id of a user, oldest first.
pub fn ids_of(meta: &dyn MetaStore, user_id: u64) -> Result<Vec<u64>, StoreError> {
    super::all_ids(
        meta,
        Table::TokensByUser,
        &id_key(user_id),
        super::IdIn::Key,
    )
}
