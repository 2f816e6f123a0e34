//! What a run read and wrote, as MLflow's `run.inputs` and `run.outputs` list them: its dataset
//! inputs `(run, dataset name, digest)`, and the logged models it took as inputs or produced as
//! outputs `(run, direction, model id)`. Listed per run in key order.

use super::revisions::{self, Parent};
use super::{id_key, key, Schema};
use crate::domain::run_links::{DatasetInput, ModelLink};
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct DatasetInputs;

fn dataset_key(candidate_id: u64, name: &str, digest: &str) -> Vec<u8> {
    key().id(candidate_id).str(name).str(digest).build()
}

impl Schema for DatasetInputs {
    type Record = DatasetInput;
    const TABLE: Table = Table::RunDatasetInputs;

    fn key(input: &DatasetInput) -> Vec<u8> {
        dataset_key(
            input.candidate_id,
            &input.dataset.name,
            &input.dataset.digest,
        )
    }

    fn updated(
        tx: &dyn Txn,
        old: Option<&DatasetInput>,
        new: Option<&DatasetInput>,
    ) -> Result<(), TxFail> {
        if let (None, Some(input)) = (old, new) {
            revisions::bump(tx, Parent::Candidate(input.candidate_id))?;
        }
        Ok(())
    }
}

pub struct ModelLinks;

fn link_key(link: &ModelLink) -> Vec<u8> {
    key()
        .id(link.candidate_id)
        .raw(&[link.direction.byte()])
        .str(&link.model_id)
        .build()
}

impl Schema for ModelLinks {
    type Record = ModelLink;
    const TABLE: Table = Table::RunModelLinks;

    fn key(link: &ModelLink) -> Vec<u8> {
        link_key(link)
    }

    fn updated(
        tx: &dyn Txn,
        old: Option<&ModelLink>,
        new: Option<&ModelLink>,
    ) -> Result<(), TxFail> {
        if let (None, Some(link)) = (old, new) {
            revisions::bump(tx, Parent::Candidate(link.candidate_id))?;
        }
        Ok(())
    }
}

/// Whether a run already has this dataset input.
pub fn has_dataset(
    tx: &dyn Txn,
    candidate_id: u64,
    name: &str,
    digest: &str,
) -> Result<bool, TxFail> {
    Ok(tx
        .get(
            Table::RunDatasetInputs,
            &dataset_key(candidate_id, name, digest),
        )?
        .is_some())
}

/// A run's dataset inputs, by name and digest.
pub fn datasets_of(
    meta: &dyn MetaStore,
    candidate_id: u64,
) -> Result<Vec<DatasetInput>, StoreError> {
    Ok(datasets_of_many(meta, &[candidate_id])?
        .pop()
        .unwrap_or_default())
}

/// A run's model inputs and outputs, inputs first, each by model id.
pub fn models_of(meta: &dyn MetaStore, candidate_id: u64) -> Result<Vec<ModelLink>, StoreError> {
    Ok(models_of_many(meta, &[candidate_id])?
        .pop()
        .unwrap_or_default())
}

/// The dataset inputs of each of several runs, in the order asked (one batched read).
pub fn datasets_of_many(
    meta: &dyn MetaStore,
    candidate_ids: &[u64],
) -> Result<Vec<Vec<DatasetInput>>, StoreError> {
    super::children_of::<DatasetInputs>(meta, candidate_ids)
}

/// The model links of each of several runs, in the order asked (one batched read).
pub fn models_of_many(
    meta: &dyn MetaStore,
    candidate_ids: &[u64],
) -> Result<Vec<Vec<ModelLink>>, StoreError> {
    super::children_of::<ModelLinks>(meta, candidate_ids)
}

/// The keys of everything a run has here (to remove them with the run).
#[derive(Debug, Default)]
pub struct Owned {
    datasets: Vec<Vec<u8>>,
    models: Vec<Vec<u8>>,
}

pub fn owned(meta: &dyn MetaStore, candidate_id: u64) -> Result<Owned, StoreError> {
    Ok(Owned {
        datasets: meta
            .scan_keys(Table::RunDatasetInputs, &id_key(candidate_id))
            .collect::<Result<_, _>>()?,
        models: meta
            .scan_keys(Table::RunModelLinks, &id_key(candidate_id))
            .collect::<Result<_, _>>()?,
    })
}

/// Removes a run's inputs and outputs without bumping its revision (the run goes too).
pub fn purge(tx: &dyn Txn, owned: &Owned) -> Result<(), TxFail> {
    for k in &owned.datasets {
        tx.delete(Table::RunDatasetInputs, k)?;
    }
    for k in &owned.models {
        tx.delete(Table::RunModelLinks, k)?;
    }
    Ok(())
}
