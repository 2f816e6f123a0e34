//! Projects: unique by `namespace/path`, case-insensitively; listed by id.

use super::{id_key, key, Index, IndexEntry, Schema};
use crate::domain::records::Project;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct Projects;

fn path_key(path_with_namespace: &str) -> Vec<u8> {
    key().str(&path_with_namespace.to_lowercase()).build()
}

fn entry_by_path(p: &Project) -> Option<IndexEntry> {
    Some((path_key(&p.path_with_namespace()), id_key(p.id)))
}

const INDEXES: &[Index<Project>] = &[Index {
    table: Table::ProjectsByPath,
    entry: entry_by_path,
}];

impl Schema for Projects {
    type Record = Project;
    const TABLE: Table = Table::Projects;

    fn audited(r: &Project) -> Option<super::audit_events::Target> {
        Some(super::audit_events::Target {
            entity_type: "Project",
            entity_id: r.id,
            project_id: Some(r.id),
            path: format!("{}/{}", r.namespace, r.path),
        })
    }

    fn key(p: &Project) -> Vec<u8> {
        id_key(p.id)
    }

    fn indexes() -> &'static [Index<Project>] {
        INDEXES
    }
}

pub fn get(meta: &dyn MetaStore, id: u64) -> Result<Option<Project>, StoreError> {
    super::get::<Projects>(meta, &id_key(id))
}

pub fn by_path(
    meta: &dyn MetaStore,
    path_with_namespace: &str,
) -> Result<Option<Project>, StoreError> {
    super::get_by_index::<Projects>(meta, Table::ProjectsByPath, &path_key(path_with_namespace))
}

pub fn path_taken(tx: &dyn Txn, path_with_namespace: &str) -> Result<bool, TxFail> {
    Ok(tx
        .get(Table::ProjectsByPath, &path_key(path_with_namespace))?
        .is_some())
}

/// Every project, by id.
pub fn all(meta: &dyn MetaStore) -> impl Iterator<Item = Result<Project, StoreError>> + '_ {
    meta.scan_json(Table::Projects, &[])
}
