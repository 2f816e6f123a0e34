//! Metrics logged for an MLflow 3 logged model (a metric sent with a `model_id`, optionally on a
//! dataset): `(logged model, key, dataset name, dataset digest, step, timestamp) → point`, listed
//! per logged model in that order.

use super::revisions::{self, Parent};
use super::{id_key, key, sortable_i64, Schema};
use crate::domain::logged_models::LoggedModelMetric;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct LoggedModelMetrics;

impl Schema for LoggedModelMetrics {
    type Record = LoggedModelMetric;
    const TABLE: Table = Table::LoggedModelMetrics;

    fn key(m: &LoggedModelMetric) -> Vec<u8> {
        key()
            .id(m.logged_model_id)
            .str(&m.key)
            .str(m.dataset_name.as_deref().unwrap_or(""))
            .str(m.dataset_digest.as_deref().unwrap_or(""))
            .raw(&sortable_i64(m.step))
            .raw(&sortable_i64(m.timestamp))
            .build()
    }

    fn updated(
        tx: &dyn Txn,
        old: Option<&LoggedModelMetric>,
        new: Option<&LoggedModelMetric>,
    ) -> Result<(), TxFail> {
        if let (None, Some(m)) = (old, new) {
            revisions::bump(tx, Parent::LoggedModel(m.logged_model_id))?;
        }
        Ok(())
    }
}

/// Every metric value of a logged model, by key, dataset, step and timestamp.
pub fn of(
    meta: &dyn MetaStore,
    logged_model_id: u64,
) -> Result<Vec<LoggedModelMetric>, StoreError> {
    meta.scan_json(Table::LoggedModelMetrics, &id_key(logged_model_id))
        .collect()
}

/// The keys of a logged model's metrics (to remove them with it).
pub fn keys_of(meta: &dyn MetaStore, logged_model_id: u64) -> Result<Vec<Vec<u8>>, StoreError> {
    meta.scan_keys(Table::LoggedModelMetrics, &id_key(logged_model_id))
        .collect()
}

pub fn purge(tx: &dyn Txn, keys: &[Vec<u8>]) -> Result<(), TxFail> {
    for k in keys {
        tx.delete(Table::LoggedModelMetrics, k)?;
    }
    Ok(())
}
