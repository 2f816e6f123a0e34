//! Params of candidates: `(candidate, key) → value`, immutable once logged.

use super::revisions::{self, Parent};
use super::{id_key, key};
use crate::domain::ml_records::KeyValue;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

fn param_key(candidate_id: u64, name: &str) -> Vec<u8> {
    key().id(candidate_id).str(name).build()
}

/// The run a param belongs to, as its by-value index entry needs it.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub candidate_id: u64,
    pub experiment_id: u64,
    pub start_time: i64,
}

/// A value as an index key part: the bytes (length first) when short, else their sha256 (a
/// search for it compares the param itself too).
fn value_part(value: &str) -> Vec<u8> {
    use sha2::Digest;
    let mut out = Vec::with_capacity(value.len().min(200) + 3);
    if value.len() <= 200 {
        out.push(1);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    } else {
        out.push(2);
        out.extend_from_slice(&sha2::Sha256::digest(value.as_bytes()));
    }
    out
}

/// `(experiment, param, value)`: the runs with that param value, by start time.
fn by_value_prefix(experiment_id: u64, name: &str, value: &str) -> Vec<u8> {
    key()
        .id(experiment_id)
        .str(name)
        .raw(&value_part(value))
        .build()
}

fn by_value_key(run: Run, name: &str, value: &str) -> Vec<u8> {
    key()
        .raw(&by_value_prefix(run.experiment_id, name, value))
        .raw(&super::sortable_i64(run.start_time))
        .id(run.candidate_id)
        .build()
}

/// A param's value inside a transaction.
pub fn load(tx: &dyn Txn, candidate_id: u64, name: &str) -> Result<Option<Vec<u8>>, TxFail> {
    tx.get(Table::Params, &param_key(candidate_id, name))
}

/// Records a new param (the caller checked it is not logged with another value), and its
/// entry in the experiment's by-value index.
pub fn insert(tx: &dyn Txn, run: Run, param: &KeyValue) -> Result<(), TxFail> {
    tx.put(
        Table::Params,
        &param_key(run.candidate_id, &param.key),
        param.value.as_bytes(),
    )?;
    tx.put(
        Table::ParamsByValue,
        &by_value_key(run, &param.key, &param.value),
        &[],
    )?;
    revisions::bump(tx, Parent::Candidate(run.candidate_id))
}

/// The runs of an experiment whose param `name` is `value`, by start time, as index entries
/// whose keys end with the candidate id. `after` is a key of this stream for any of the
/// experiments searched together.
pub fn runs_with_value<'a>(
    meta: &'a dyn MetaStore,
    experiment_id: u64,
    name: &str,
    value: &str,
    descending: bool,
    after: Option<&[u8]>,
) -> crate::store::meta::KvIter<'a> {
    let prefix = by_value_prefix(experiment_id, name, value);
    match after {
        Some(after) => {
            let mut from = id_key(experiment_id);
            from.extend_from_slice(after.get(8..).unwrap_or_default());
            meta.scan_after(Table::ParamsByValue, &prefix, &from, descending)
        }
        None if descending => meta.scan_rev(Table::ParamsByValue, &prefix),
        None => meta.scan(Table::ParamsByValue, &prefix),
    }
}

/// The length of the prefix of [`runs_with_value`] keys (what a merge orders after).
pub fn by_value_prefix_len(name: &str, value: &str) -> usize {
    by_value_prefix(0, name, value).len()
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
    Ok(all_of(meta, &[candidate_id])?.pop().unwrap_or_default())
}

/// Every param of each of several candidates, by key, in the order of `candidate_ids`: one
/// batched read for a page of runs.
pub fn all_of(
    meta: &dyn MetaStore,
    candidate_ids: &[u64],
) -> Result<Vec<Vec<KeyValue>>, StoreError> {
    let prefixes: Vec<Vec<u8>> = candidate_ids.iter().map(|id| id_key(*id)).collect();
    Ok(meta
        .scan_many(Table::Params, &prefixes, usize::MAX)?
        .into_iter()
        .map(|entries| {
            entries
                .into_iter()
                .map(|(k, value)| KeyValue {
                    key: String::from_utf8_lossy(
                        k.get(8..k.len().saturating_sub(1)).unwrap_or_default(),
                    )
                    .into_owned(),
                    value: String::from_utf8_lossy(&value).into_owned(),
                })
                .collect()
        })
        .collect())
}

/// Removes params without bumping the candidate's revision (it goes too).
pub fn purge(tx: &dyn Txn, run: Run, params: &[KeyValue]) -> Result<(), TxFail> {
    for param in params {
        tx.delete(Table::Params, &param_key(run.candidate_id, &param.key))?;
        tx.delete(
            Table::ParamsByValue,
            &by_value_key(run, &param.key, &param.value),
        )?;
    }
    Ok(())
}

/// Every param row of the store with its candidate id (the upgrade's index rebuild).
pub fn all_rows(
    meta: &dyn MetaStore,
) -> impl Iterator<Item = Result<(u64, KeyValue), StoreError>> + '_ {
    meta.scan(Table::Params, &[]).map(|entry| {
        let (k, value) = entry?;
        let candidate_id = crate::store::keys::id_at(&k, 0).unwrap_or(0);
        Ok((
            candidate_id,
            KeyValue {
                key: String::from_utf8_lossy(
                    k.get(8..k.len().saturating_sub(1)).unwrap_or_default(),
                )
                .into_owned(),
                value: String::from_utf8_lossy(&value).into_owned(),
            },
        ))
    })
}

/// Writes the by-value entry of a param that is already recorded (the upgrade).
pub fn reindex(tx: &dyn Txn, run: Run, param: &KeyValue) -> Result<(), TxFail> {
    tx.put(
        Table::ParamsByValue,
        &by_value_key(run, &param.key, &param.value),
        &[],
    )
}
