//! Trusted publishers (OIDC trust rules), listed per project.

use super::{id_key, key, Index, IndexEntry, Schema};
use crate::domain::records::TrustedPublisher;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct TrustedPublishers;

fn entry_by_project(t: &TrustedPublisher) -> Option<IndexEntry> {
    Some((key().id(t.project_id).id(t.id).build(), Vec::new()))
}

const INDEXES: &[Index<TrustedPublisher>] = &[Index {
    table: Table::TrustedPublishersByProject,
    entry: entry_by_project,
}];

impl Schema for TrustedPublishers {
    type Record = TrustedPublisher;
    const TABLE: Table = Table::TrustedPublishers;

    fn audited(r: &TrustedPublisher) -> Option<super::audit_events::Target> {
        Some(super::audit_events::Target {
            entity_type: "TrustedPublisher",
            entity_id: r.id,
            project_id: Some(r.project_id),
            path: r.issuer.clone(),
        })
    }

    fn key(t: &TrustedPublisher) -> Vec<u8> {
        id_key(t.id)
    }

    fn indexes() -> &'static [Index<TrustedPublisher>] {
        INDEXES
    }

    /// Also a child of its project: a project deletion lists them.
    fn updated(
        tx: &dyn Txn,
        old: Option<&TrustedPublisher>,
        new: Option<&TrustedPublisher>,
    ) -> Result<(), TxFail> {
        super::keep_indexes(tx, INDEXES, old, new)?;
        if let (None, Some(t)) | (Some(t), None) = (old, new) {
            super::revisions::bump(tx, super::revisions::Parent::Project(t.project_id))?;
        }
        Ok(())
    }
}

pub fn get(meta: &dyn MetaStore, id: u64) -> Result<Option<TrustedPublisher>, StoreError> {
    super::get::<TrustedPublishers>(meta, &id_key(id))
}

/// Every rule of a project, oldest first.
pub fn of_project(
    meta: &dyn MetaStore,
    project_id: u64,
) -> Result<Vec<TrustedPublisher>, StoreError> {
    let ids: Vec<u64> = meta
        .scan(Table::TrustedPublishersByProject, &id_key(project_id))
        .map(|entry| entry.map(|(k, _)| super::trailing_id(&k).unwrap_or(0)))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(rule) = get(meta, id)? {
            out.push(rule);
        }
    }
    Ok(out)
}
