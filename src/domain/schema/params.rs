//! Params of candidates: `(candidate, key) → value`, immutable once logged.

use super::revisions::{self, Parent};
use super::{id_key, key};
use crate::domain::ml_records::KeyValue;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

fn param_key(candidate_id: u64, name: &str) -> Vec<u8> {
    key().id(candidate_id).str(name).build()
}

/// A param's value inside a transaction.
pub fn load(tx: &dyn Txn, candidate_id: u64, name: &str) -> Result<Option<Vec<u8>>, TxFail> {
    tx.get(Table::Params, &param_key(candidate_id, name))
}

/// Records a new param (the caller checked it is not logged with another value).
pub fn insert(tx: &dyn Txn, candidate_id: u64, param: &KeyValue) -> Result<(), TxFail> {
    tx.put(
        Table::Params,
        &param_key(candidate_id, &param.key),
        param.value.as_bytes(),
    )?;
    revisions::bump(tx, Parent::Candidate(candidate_id))
}

pub fn get(
    meta: &dyn MetaStore,
    candidate_id: u64,
    name: &str,
) -> Result<Option<String>, StoreError> {
    Ok(meta
        .get(Table::Params, &param_key(candidate_id, name))?
        .map(|v| String::from_utf8_lossy(&v).into_owned()))
}

/// Every param of a candidate, by key.
pub fn all(meta: &dyn MetaStore, candidate_id: u64) -> Result<Vec<KeyValue>, StoreError> {
    meta.scan(Table::Params, &id_key(candidate_id))
        .map(|entry| {
            let (k, value) = entry?;
            Ok(KeyValue {
                key: String::from_utf8_lossy(
                    k.get(8..k.len().saturating_sub(1)).unwrap_or_default(),
                )
                .into_owned(),
                value: String::from_utf8_lossy(&value).into_owned(),
            })
        })
        .collect()
}

/// Removes params by name without bumping the candidate's revision (it goes too).
pub fn purge(tx: &dyn Txn, candidate_id: u64, names: &[String]) -> Result<(), TxFail> {
    for name in names {
        tx.delete(Table::Params, &param_key(candidate_id, name))?;
    }
    Ok(())
}
