//! Deploy tokens: found by the sha256 of their secret; listed per project.

use super::{id_key, key, Index, IndexEntry, Schema};
use crate::domain::records::DeployToken;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct DeployTokens;

fn hash_key(secret_sha256: &str) -> Vec<u8> {
    key().str(secret_sha256).build()
}

fn entry_by_hash(t: &DeployToken) -> Option<IndexEntry> {
    Some((hash_key(&t.secret_sha256), id_key(t.id)))
}

fn entry_by_project(t: &DeployToken) -> Option<IndexEntry> {
    Some((key().id(t.project_id).id(t.id).build(), Vec::new()))
}

const INDEXES: &[Index<DeployToken>] = &[
    Index {
        table: Table::DeployTokensByHash,
        entry: entry_by_hash,
    },
    Index {
        table: Table::DeployTokensByProject,
        entry: entry_by_project,
    },
];

impl Schema for DeployTokens {
    type Record = DeployToken;
    const TABLE: Table = Table::DeployTokens;

    fn audited(r: &DeployToken) -> Option<super::audit_events::Target> {
        Some(super::audit_events::Target {
            entity_type: "DeployToken",
            entity_id: r.id,
            project_id: Some(r.project_id),
            path: r.name.clone(),
        })
    }

    fn key(t: &DeployToken) -> Vec<u8> {
        id_key(t.id)
    }

    fn indexes() -> &'static [Index<DeployToken>] {
        INDEXES
    }

    /// Also a child of its project: a project deletion lists them.
    fn updated(
        tx: &dyn Txn,
        old: Option<&DeployToken>,
        new: Option<&DeployToken>,
    ) -> Result<(), TxFail> {
        super::keep_indexes(tx, INDEXES, old, new)?;
        if let (None, Some(t)) | (Some(t), None) = (old, new) {
            super::revisions::bump(tx, super::revisions::Parent::Project(t.project_id))?;
        }
        Ok(())
    }
}

pub fn get(meta: &dyn MetaStore, id: u64) -> Result<Option<DeployToken>, StoreError> {
    super::get::<DeployTokens>(meta, &id_key(id))
}

pub fn by_hash_of(
    meta: &dyn MetaStore,
    secret_sha256: &str,
) -> Result<Option<DeployToken>, StoreError> {
    super::get_by_index::<DeployTokens>(meta, Table::DeployTokensByHash, &hash_key(secret_sha256))
}

pub fn hash_taken(tx: &dyn Txn, secret_sha256: &str) -> Result<bool, TxFail> {
    Ok(tx
        .get(Table::DeployTokensByHash, &hash_key(secret_sha256))?
        .is_some())
}

/// Every deploy token id of a project, oldest first.
pub fn ids_of(meta: &dyn MetaStore, project_id: u64) -> Result<Vec<u64>, StoreError> {
    meta.scan(Table::DeployTokensByProject, &id_key(project_id))
        .map(|entry| entry.map(|(k, _)| super::trailing_id(&k).unwrap_or(0)))
        .collect()
}
