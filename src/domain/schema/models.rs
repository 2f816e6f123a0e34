//! Models: unique by `(project, name)`; listed by name, by creation and by last update, counted
//! per project. The model record also carries what its versions' indexes would otherwise be
//! asked for on every read: the latest version and the latest release (kept by [`super::versions`]).

use super::{count, id_key, key, Index, IndexEntry, IndexPage, Schema, Seek};
use crate::domain::ml_records::Model;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct Models;

/// The orders a project's models are listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Name,
    Created,
    Updated,
}

fn name_key(project_id: u64, name: &str) -> Vec<u8> {
    key().id(project_id).str(name).build()
}

fn micros(at: &chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_micros()
}

fn entry_by_name(model: &Model) -> Option<IndexEntry> {
    Some((name_key(model.project_id, &model.name), id_key(model.id)))
}

fn entry_by_created(model: &Model) -> Option<IndexEntry> {
    let k = key()
        .id(model.project_id)
        .raw(&super::sortable_i64(micros(&model.created_at)))
        .id(model.id)
        .build();
    Some((k, Vec::new()))
}

fn entry_by_updated(model: &Model) -> Option<IndexEntry> {
    let k = key()
        .id(model.project_id)
        .raw(&super::sortable_i64(micros(&model.updated_at)))
        .id(model.id)
        .build();
    Some((k, Vec::new()))
}

const INDEXES: &[Index<Model>] = &[
    Index {
        table: Table::ModelsByName,
        entry: entry_by_name,
    },
    Index {
        table: Table::ModelsByCreated,
        entry: entry_by_created,
    },
    Index {
        table: Table::ModelsByUpdated,
        entry: entry_by_updated,
    },
];

fn count_key(project_id: u64) -> Vec<u8> {
    key().str("models").id(project_id).build()
}

impl Schema for Models {
    type Record = Model;
    const TABLE: Table = Table::Models;

    fn audited(r: &Model) -> Option<super::audit_events::Target> {
        Some(super::audit_events::Target {
            entity_type: "Model",
            entity_id: r.id,
            project_id: Some(r.project_id),
            path: r.name.clone(),
        })
    }

    fn announce(m: &Model) -> Option<super::outbox::Announce> {
        Some(super::outbox::Announce {
            flag: "model_events",
            kind: "model",
            project_id: m.project_id,
            path: format!("/api/v4/projects/{}/ml/models/{}", m.project_id, m.id),
        })
    }

    fn key(model: &Model) -> Vec<u8> {
        id_key(model.id)
    }

    fn indexes() -> &'static [Index<Model>] {
        INDEXES
    }

    fn counted(model: &Model) -> Vec<Vec<u8>> {
        vec![count_key(model.project_id)]
    }
}

pub fn get(meta: &dyn MetaStore, id: u64) -> Result<Option<Model>, StoreError> {
    super::get::<Models>(meta, &id_key(id))
}

/// The records with these ids, in that order, in one batched read (those gone left out).
pub fn get_ids(meta: &dyn MetaStore, ids: &[u64]) -> Result<Vec<Model>, StoreError> {
    super::get_ids::<Models>(meta, ids)
}

pub fn load(tx: &dyn Txn, id: u64) -> Result<Option<Model>, TxFail> {
    super::load::<Models>(tx, &id_key(id))
}

pub fn by_name_in(
    meta: &dyn MetaStore,
    project_id: u64,
    name: &str,
) -> Result<Option<Model>, StoreError> {
    super::get_by_index::<Models>(meta, Table::ModelsByName, &name_key(project_id, name))
}

/// A project's model by name, inside a transaction.
pub fn load_by_name(tx: &dyn Txn, project_id: u64, name: &str) -> Result<Option<Model>, TxFail> {
    super::load_by_index::<Models>(tx, Table::ModelsByName, &name_key(project_id, name))
}

/// Whether the project has a model of this name (inside the transaction that would add one).
pub fn name_taken(tx: &dyn Txn, project_id: u64, name: &str) -> Result<bool, TxFail> {
    Ok(tx
        .get(Table::ModelsByName, &name_key(project_id, name))?
        .is_some())
}

pub fn count_in(meta: &dyn MetaStore, project_id: u64) -> Result<usize, StoreError> {
    count(meta, &count_key(project_id))
}

fn table_of(order: Order) -> Table {
    match order {
        Order::Name => Table::ModelsByName,
        Order::Created => Table::ModelsByCreated,
        Order::Updated => Table::ModelsByUpdated,
    }
}

/// A page of a project's model ids in `order`.
pub fn page(
    meta: &dyn MetaStore,
    project_id: u64,
    order: Order,
    descending: bool,
    seek: &Seek,
    take: usize,
) -> Result<(Vec<u64>, Option<Vec<u8>>), StoreError> {
    let IndexPage { entries, next } = super::page(
        meta,
        table_of(order),
        &id_key(project_id),
        descending,
        seek,
        take,
    )?;
    let ids = entries
        .iter()
        .filter_map(|(k, v)| match order {
            Order::Name => super::trailing_id(v),
            _ => super::trailing_id(k),
        })
        .collect();
    Ok((ids, next))
}

/// Whether a cursor is a key of the index `order` lists a project's models by.
pub fn cursor_fits(project_id: u64, cursor: &[u8]) -> bool {
    cursor.starts_with(&id_key(project_id))
}

/// The `(name, id)` of the project's models whose name starts with `prefix`, by name.
pub fn names_from<'a>(
    meta: &'a dyn MetaStore,
    project_id: u64,
    prefix: &str,
) -> impl Iterator<Item = Result<(String, u64), StoreError>> + 'a {
    let scan_prefix = {
        let mut k = id_key(project_id);
        k.extend_from_slice(prefix.as_bytes());
        k
    };
    meta.scan(Table::ModelsByName, &scan_prefix).map(|entry| {
        let (k, v) = entry?;
        let name = k.get(8..k.len().saturating_sub(1)).unwrap_or_default();
        Ok((
            String::from_utf8_lossy(name).into_owned(),
            super::trailing_id(&v).unwrap_or(0),
        ))
    })
}
