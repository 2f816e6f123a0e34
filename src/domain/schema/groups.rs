//! Groups, unique by full path case-insensitively, and their members (listed per group and per
//! user).

use super::revisions::{self, Parent};
use super::{id_key, key, Index, IndexEntry, Schema};
use crate::domain::records::{AccessLevel, Group, GroupMember};
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct Groups;

fn path_key(full_path: &str) -> Vec<u8> {
    key().str(&full_path.to_lowercase()).build()
}

fn entry_by_path(g: &Group) -> Option<IndexEntry> {
    Some((path_key(&g.full_path), id_key(g.id)))
}

const INDEXES: &[Index<Group>] = &[Index {
    table: Table::GroupsByPath,
    entry: entry_by_path,
}];

impl Schema for Groups {
    type Record = Group;
    const TABLE: Table = Table::Groups;

    fn audited(r: &Group) -> Option<super::audit_events::Target> {
        Some(super::audit_events::Target {
            entity_type: "Group",
            entity_id: r.id,
            project_id: None,
            path: r.full_path.clone(),
        })
    }

    fn key(g: &Group) -> Vec<u8> {
        id_key(g.id)
    }

    fn indexes() -> &'static [Index<Group>] {
        INDEXES
    }
}

pub fn get(meta: &dyn MetaStore, id: u64) -> Result<Option<Group>, StoreError> {
    super::get::<Groups>(meta, &id_key(id))
}

pub fn load(tx: &dyn Txn, id: u64) -> Result<Option<Group>, TxFail> {
    super::load::<Groups>(tx, &id_key(id))
}

pub fn by_path(meta: &dyn MetaStore, full_path: &str) -> Result<Option<Group>, StoreError> {
    super::get_by_index::<Groups>(meta, Table::GroupsByPath, &path_key(full_path))
}

pub fn path_taken(tx: &dyn Txn, full_path: &str) -> Result<bool, TxFail> {
    Ok(tx.get(Table::GroupsByPath, &path_key(full_path))?.is_some())
}

/// Every group, by id.
pub fn all(meta: &dyn MetaStore) -> impl Iterator<Item = Result<Group, StoreError>> + '_ {
    meta.scan_json(Table::Groups, &[])
}

pub struct GroupMembers;

fn member_key(group_id: u64, user_id: u64) -> Vec<u8> {
    key().id(group_id).id(user_id).build()
}

fn member_by_user(m: &GroupMember) -> Option<IndexEntry> {
    Some((key().id(m.user_id).id(m.group_id).build(), Vec::new()))
}

const MEMBER_INDEXES: &[Index<GroupMember>] = &[Index {
    table: Table::GroupMembersByUser,
    entry: member_by_user,
}];

fn owners_key(group_id: u64) -> Vec<u8> {
    key().str("group_owners").id(group_id).build()
}

impl Schema for GroupMembers {
    type Record = GroupMember;
    const TABLE: Table = Table::GroupMembers;

    fn audited(r: &GroupMember) -> Option<super::audit_events::Target> {
        Some(super::audit_events::Target {
            entity_type: "GroupMember",
            entity_id: r.user_id,
            project_id: None,
            path: format!("group {} user {}", r.group_id, r.user_id),
        })
    }

    fn key(m: &GroupMember) -> Vec<u8> {
        member_key(m.group_id, m.user_id)
    }

    fn indexes() -> &'static [Index<GroupMember>] {
        MEMBER_INDEXES
    }

    fn counted(m: &GroupMember) -> Vec<Vec<u8>> {
        if m.access_level == AccessLevel::Owner {
            vec![owners_key(m.group_id)]
        } else {
            Vec::new()
        }
    }

    fn updated(
        tx: &dyn Txn,
        old: Option<&GroupMember>,
        new: Option<&GroupMember>,
    ) -> Result<(), TxFail> {
        super::keep_indexes(tx, MEMBER_INDEXES, old, new)?;
        super::keep_counts_of::<GroupMembers>(tx, old, new)?;
        if let (None, Some(m)) | (Some(m), None) = (old, new) {
            revisions::bump(tx, Parent::Group(m.group_id))?;
        }
        Ok(())
    }
}

pub fn member_key_of(group_id: u64, user_id: u64) -> Vec<u8> {
    member_key(group_id, user_id)
}

pub fn member(
    meta: &dyn MetaStore,
    group_id: u64,
    user_id: u64,
) -> Result<Option<GroupMember>, StoreError> {
    super::get::<GroupMembers>(meta, &member_key(group_id, user_id))
}

pub fn load_member(
    tx: &dyn Txn,
    group_id: u64,
    user_id: u64,
) -> Result<Option<GroupMember>, TxFail> {
    super::load::<GroupMembers>(tx, &member_key(group_id, user_id))
}

/// How many Owners a group has, inside the transaction that changes a membership.
pub fn owners_in(tx: &dyn Txn, group_id: u64) -> Result<usize, TxFail> {
    Ok(tx
        .get(Table::Counts, &owners_key(group_id))?
        .and_then(|v| super::trailing_id(&v))
        .unwrap_or(0) as usize)
}

/// Every member of a group, by user id.
pub fn members_of(meta: &dyn MetaStore, group_id: u64) -> Result<Vec<GroupMember>, StoreError> {
    meta.scan_json(Table::GroupMembers, &id_key(group_id))
        .collect()
}

/// The ids of the groups a user is a direct member of.
pub fn group_ids_of_user(meta: &dyn MetaStore, user_id: u64) -> Result<Vec<u64>, StoreError> {
    meta.scan(Table::GroupMembersByUser, &id_key(user_id))
        .map(|entry| entry.map(|(k, _)| super::trailing_id(&k).unwrap_or(0)))
        .collect()
}
