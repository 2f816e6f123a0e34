//! Users: unique by username, case-insensitively.

use super::{id_key, key, Index, IndexEntry, Schema, Seek};
use crate::domain::records::User;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct Users;

fn name_key(username: &str) -> Vec<u8> {
    key().str(&username.to_lowercase()).build()
}

fn entry_by_name(u: &User) -> Option<IndexEntry> {
    Some((name_key(&u.username), id_key(u.id)))
}

const INDEXES: &[Index<User>] = &[Index {
    table: Table::UsersByName,
    entry: entry_by_name,
}];

impl Schema for Users {
    type Record = User;
    const TABLE: Table = Table::Users;

    fn audited(r: &User) -> Option<super::audit_events::Target> {
        Some(super::audit_events::Target {
            entity_type: "User",
            entity_id: r.id,
            project_id: None,
            path: r.username.clone(),
        })
    }

    fn key(u: &User) -> Vec<u8> {
        id_key(u.id)
    }

    fn indexes() -> &'static [Index<User>] {
        INDEXES
    }

    fn counted(_: &User) -> Vec<Vec<u8>> {
        vec![key().str("users").build()]
    }
}

pub fn get(meta: &dyn MetaStore, id: u64) -> Result<Option<User>, StoreError> {
    super::get::<Users>(meta, &id_key(id))
}

pub fn load(tx: &dyn Txn, id: u64) -> Result<Option<User>, TxFail> {
    super::load::<Users>(tx, &id_key(id))
}

pub fn by_name(meta: &dyn MetaStore, username: &str) -> Result<Option<User>, StoreError> {
    super::get_by_index::<Users>(meta, Table::UsersByName, &name_key(username))
}

pub fn name_taken(tx: &dyn Txn, username: &str) -> Result<bool, TxFail> {
    Ok(tx.get(Table::UsersByName, &name_key(username))?.is_some())
}

pub fn total(meta: &dyn MetaStore) -> Result<usize, StoreError> {
    super::count(meta, &key().str("users").build())
}

/// A page of users by id.
pub fn page(meta: &dyn MetaStore, seek: &Seek, take: usize) -> Result<Vec<User>, StoreError> {
    let page = super::page(meta, Table::Users, &[], false, seek, take)?;
    page.entries
        .iter()
        .map(|(_, v)| crate::store::meta::decode(Table::Users, v))
        .collect()
}
