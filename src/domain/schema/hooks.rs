//! Webhooks: listed per project; each project's hook routes (ids and flags) are kept in one
//! record so that a writing transaction, which cannot scan, finds the hooks an event goes to.

use super::{id_key, key, Index, IndexEntry, Schema};
use crate::domain::event_records::{Hook, HookRoutes};
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn, TxnExt};

pub struct Hooks;

fn entry_by_project(h: &Hook) -> Option<IndexEntry> {
    Some((key().id(h.project_id).id(h.id).build(), Vec::new()))
}

const INDEXES: &[Index<Hook>] = &[Index {
    table: Table::HooksByProject,
    entry: entry_by_project,
}];

/// The count of every hook of the server: an event looks no further when it is zero.
const ALL_HOOKS: &[u8] = b"hooks";

fn project_count(project_id: u64) -> Vec<u8> {
    key().str("hooks_of").id(project_id).build()
}

impl Schema for Hooks {
    type Record = Hook;
    const TABLE: Table = Table::Hooks;

    fn audited(r: &Hook) -> Option<super::audit_events::Target> {
        Some(super::audit_events::Target {
            entity_type: "Hook",
            entity_id: r.id,
            project_id: Some(r.project_id),
            path: r.url.clone(),
        })
    }

    fn key(h: &Hook) -> Vec<u8> {
        id_key(h.id)
    }

    fn indexes() -> &'static [Index<Hook>] {
        INDEXES
    }

    fn counted(h: &Hook) -> Vec<Vec<u8>> {
        vec![ALL_HOOKS.to_vec(), project_count(h.project_id)]
    }

    fn parent(h: &Hook) -> Option<super::revisions::Parent> {
        Some(super::revisions::Parent::Project(h.project_id))
    }

    fn updated(tx: &dyn Txn, old: Option<&Hook>, new: Option<&Hook>) -> Result<(), TxFail> {
        super::keep_indexes(tx, INDEXES, old, new)?;
        super::keep_counts_of::<Hooks>(tx, old, new)?;
        super::bump_parent::<Hooks>(tx, old, new)?;
        let project_id = match new.or(old) {
            Some(h) => h.project_id,
            None => return Ok(()),
        };
        let routes_key = id_key(project_id);
        let mut routes: HookRoutes = tx
            .get_json(Table::ProjectHooks, &routes_key)?
            .unwrap_or_default();
        let id = new.or(old).map(|h| h.id).unwrap_or_default();
        routes.hooks.retain(|(hook, _)| *hook != id);
        if let Some(h) = new {
            routes.hooks.push((h.id, h.events.clone()));
            routes.hooks.sort_by_key(|(hook, _)| *hook);
        }
        if routes.hooks.is_empty() {
            tx.delete(Table::ProjectHooks, &routes_key)
        } else {
            tx.put_json(Table::ProjectHooks, &routes_key, &routes)
        }
    }
}

pub fn get(meta: &dyn MetaStore, id: u64) -> Result<Option<Hook>, StoreError> {
    super::get::<Hooks>(meta, &id_key(id))
}

pub fn load(tx: &dyn Txn, id: u64) -> Result<Option<Hook>, TxFail> {
    super::load::<Hooks>(tx, &id_key(id))
}

/// Whether the server has any hook at all (one read of a kept count).
pub fn any(tx: &dyn Txn) -> Result<bool, TxFail> {
    Ok(tx.get(Table::Counts, ALL_HOOKS)?.is_some())
}

/// The hooks of a project and the flags they have on.
pub fn routes(tx: &dyn Txn, project_id: u64) -> Result<HookRoutes, TxFail> {
    Ok(tx
        .get_json(Table::ProjectHooks, &id_key(project_id))?
        .unwrap_or_default())
}

pub fn count_of(meta: &dyn MetaStore, project_id: u64) -> Result<usize, StoreError> {
    super::count(meta, &project_count(project_id))
}

/// A page of a project's hook ids, oldest first.
pub fn page_of(
    meta: &dyn MetaStore,
    project_id: u64,
    seek: &super::Seek,
    take: usize,
) -> Result<Vec<u64>, StoreError> {
    Ok(super::page_ids(
        meta,
        Table::HooksByProject,
        &id_key(project_id),
        false,
        seek,
        take,
        super::IdIn::Key,
    )?
    .0)
}

/// Every hook id of a project (to delete them with it).
pub fn ids_of(meta: &dyn MetaStore, project_id: u64) -> Result<Vec<u64>, StoreError> {
    super::all_ids(
        meta,
        Table::HooksByProject,
        &id_key(project_id),
        super::IdIn::Key,
    )
}
