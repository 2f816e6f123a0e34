//! Experiments: unique by `(project, name)`; listed per project by iid; counted per project.

use super::{count, id_key, key, Index, IndexEntry, Schema, Seek};
use crate::domain::ml_records::Experiment;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct Experiments;

fn name_key(project_id: u64, name: &str) -> Vec<u8> {
    key().id(project_id).str(name).build()
}

fn iid_key(project_id: u64, iid: u64) -> Vec<u8> {
    key().id(project_id).id(iid).build()
}

fn entry_by_name(e: &Experiment) -> Option<IndexEntry> {
    Some((name_key(e.project_id, &e.name), id_key(e.id)))
}

fn entry_by_iid(e: &Experiment) -> Option<IndexEntry> {
    Some((iid_key(e.project_id, e.iid), id_key(e.id)))
}

const INDEXES: &[Index<Experiment>] = &[
    Index {
        table: Table::ExperimentsByName,
        entry: entry_by_name,
    },
    Index {
        table: Table::ExperimentsByProject,
        entry: entry_by_iid,
    },
];

fn count_key(project_id: u64) -> Vec<u8> {
    key().str("experiments").id(project_id).build()
}

impl Schema for Experiments {
    type Record = Experiment;
    const TABLE: Table = Table::Experiments;

    fn audited(r: &Experiment) -> Option<super::audit_events::Target> {
        Some(super::audit_events::Target {
            entity_type: "Experiment",
            entity_id: r.id,
            project_id: Some(r.project_id),
            path: r.name.clone(),
        })
    }

    fn key(e: &Experiment) -> Vec<u8> {
        id_key(e.id)
    }

    fn indexes() -> &'static [Index<Experiment>] {
        INDEXES
    }

    fn counted(e: &Experiment) -> Vec<Vec<u8>> {
        vec![count_key(e.project_id)]
    }
}

pub fn get(meta: &dyn MetaStore, id: u64) -> Result<Option<Experiment>, StoreError> {
    super::get::<Experiments>(meta, &id_key(id))
}

pub fn load(tx: &dyn Txn, id: u64) -> Result<Option<Experiment>, TxFail> {
    super::load::<Experiments>(tx, &id_key(id))
}

pub fn by_iid(
    meta: &dyn MetaStore,
    project_id: u64,
    iid: u64,
) -> Result<Option<Experiment>, StoreError> {
    super::get_by_index::<Experiments>(meta, Table::ExperimentsByProject, &iid_key(project_id, iid))
}

pub fn by_name_in(
    meta: &dyn MetaStore,
    project_id: u64,
    name: &str,
) -> Result<Option<Experiment>, StoreError> {
    super::get_by_index::<Experiments>(meta, Table::ExperimentsByName, &name_key(project_id, name))
}

pub fn load_by_name(
    tx: &dyn Txn,
    project_id: u64,
    name: &str,
) -> Result<Option<Experiment>, TxFail> {
    super::load_by_index::<Experiments>(tx, Table::ExperimentsByName, &name_key(project_id, name))
}

pub fn name_taken(tx: &dyn Txn, project_id: u64, name: &str) -> Result<bool, TxFail> {
    Ok(tx
        .get(Table::ExperimentsByName, &name_key(project_id, name))?
        .is_some())
}

pub fn count_in(meta: &dyn MetaStore, project_id: u64) -> Result<usize, StoreError> {
    count(meta, &count_key(project_id))
}

/// A page of a project's experiment ids by iid.
pub fn page(
    meta: &dyn MetaStore,
    project_id: u64,
    descending: bool,
    seek: &Seek,
    take: usize,
) -> Result<(Vec<u64>, Option<Vec<u8>>), StoreError> {
    super::page_ids(
        meta,
        Table::ExperimentsByProject,
        &id_key(project_id),
        descending,
        seek,
        take,
        super::IdIn::Value,
    )
}

/// Every experiment id of a project by iid.
pub fn ids_of(meta: &dyn MetaStore, project_id: u64) -> Result<Vec<u64>, StoreError> {
    super::all_ids(
        meta,
        Table::ExperimentsByProject,
        &id_key(project_id),
        super::IdIn::Value,
    )
}
