//! Project members: `(project, user)`; listed per project and per user.

use super::revisions::Parent;
use super::{id_key, key, Index, IndexEntry, Schema};
use crate::domain::records::{AccessLevel, Member};
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct Members;

fn member_key(project_id: u64, user_id: u64) -> Vec<u8> {
    key().id(project_id).id(user_id).build()
}

fn entry_by_user(m: &Member) -> Option<IndexEntry> {
    Some((key().id(m.user_id).id(m.project_id).build(), Vec::new()))
}

const INDEXES: &[Index<Member>] = &[Index {
    table: Table::MembersByUser,
    entry: entry_by_user,
}];

impl Schema for Members {
    type Record = Member;
    const TABLE: Table = Table::Members;

    fn audited(r: &Member) -> Option<super::audit_events::Target> {
        Some(super::audit_events::Target {
            entity_type: "Member",
            entity_id: r.user_id,
            project_id: Some(r.project_id),
            path: format!("user {}", r.user_id),
        })
    }

    fn key(m: &Member) -> Vec<u8> {
        member_key(m.project_id, m.user_id)
    }

    fn indexes() -> &'static [Index<Member>] {
        INDEXES
    }

    fn counted(m: &Member) -> Vec<Vec<u8>> {
        if m.access_level == AccessLevel::Owner {
            vec![owners_key(m.project_id)]
        } else {
            Vec::new()
        }
    }

    fn parent(m: &Member) -> Option<Parent> {
        Some(Parent::Project(m.project_id))
    }
}

fn owners_key(project_id: u64) -> Vec<u8> {
    key().str("owners").id(project_id).build()
}

/// How many Owners a project has, read inside the transaction that changes a membership, so
/// that two Owners demoting each other at once cannot both succeed.
pub fn owners_in(tx: &dyn Txn, project_id: u64) -> Result<usize, TxFail> {
    Ok(tx
        .get(Table::Counts, &owners_key(project_id))?
        .and_then(|v| super::trailing_id(&v))
        .unwrap_or(0) as usize)
}

/// The primary key of a membership.
pub fn key_of(project_id: u64, user_id: u64) -> Vec<u8> {
    member_key(project_id, user_id)
}

pub fn get(
    meta: &dyn MetaStore,
    project_id: u64,
    user_id: u64,
) -> Result<Option<Member>, StoreError> {
    super::get::<Members>(meta, &member_key(project_id, user_id))
}

pub fn load(tx: &dyn Txn, project_id: u64, user_id: u64) -> Result<Option<Member>, TxFail> {
    super::load::<Members>(tx, &member_key(project_id, user_id))
}

/// Every member of a project, by user id.
pub fn of_project(meta: &dyn MetaStore, project_id: u64) -> Result<Vec<Member>, StoreError> {
    meta.scan_json(Table::Members, &id_key(project_id))
        .collect()
}

/// The ids of the projects a user is a direct member of.
pub fn project_ids_of_user(meta: &dyn MetaStore, user_id: u64) -> Result<Vec<u64>, StoreError> {
    meta.scan(Table::MembersByUser, &id_key(user_id))
        .map(|entry| entry.map(|(k, _)| super::trailing_id(&k).unwrap_or(0)))
        .collect()
}
