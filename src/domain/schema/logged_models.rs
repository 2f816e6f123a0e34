//! MLflow 3 logged models: found by `(project, model key)`; listed per experiment.

use super::revisions::Parent;
use super::{id_key, key, Index, IndexEntry, Schema};
use crate::domain::logged_models::LoggedModel;
use crate::store::meta::{MetaStore, StoreError, Table};

pub struct LoggedModels;

fn key_index(project_id: u64, model_key: &str) -> Vec<u8> {
    key().id(project_id).str(model_key).build()
}

fn entry_by_key(m: &LoggedModel) -> Option<IndexEntry> {
    Some((key_index(m.project_id, &m.key), id_key(m.id)))
}

fn entry_by_experiment(m: &LoggedModel) -> Option<IndexEntry> {
    Some((key().id(m.experiment_id).id(m.id).build(), Vec::new()))
}

const INDEXES: &[Index<LoggedModel>] = &[
    Index {
        table: Table::LoggedModelsByKey,
        entry: entry_by_key,
    },
    Index {
        table: Table::LoggedModelsByExperiment,
        entry: entry_by_experiment,
    },
];

impl Schema for LoggedModels {
    type Record = LoggedModel;
    const TABLE: Table = Table::LoggedModels;

    fn key(m: &LoggedModel) -> Vec<u8> {
        id_key(m.id)
    }

    fn indexes() -> &'static [Index<LoggedModel>] {
        INDEXES
    }

    fn parent(m: &LoggedModel) -> Option<Parent> {
        Some(Parent::Experiment(m.experiment_id))
    }
}

pub fn get(meta: &dyn MetaStore, id: u64) -> Result<Option<LoggedModel>, StoreError> {
    super::get::<LoggedModels>(meta, &id_key(id))
}

pub fn by_key(
    meta: &dyn MetaStore,
    project_id: u64,
    model_key: &str,
) -> Result<Option<LoggedModel>, StoreError> {
    super::get_by_index::<LoggedModels>(
        meta,
        Table::LoggedModelsByKey,
        &key_index(project_id, model_key),
    )
}

/// Every logged model id of an experiment, oldest first.
pub fn ids_of(meta: &dyn MetaStore, experiment_id: u64) -> Result<Vec<u64>, StoreError> {
    super::all_ids(
        meta,
        Table::LoggedModelsByExperiment,
        &id_key(experiment_id),
        super::IdIn::Key,
    )
}
