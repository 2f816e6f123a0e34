//! Tags of experiments, candidates, models, versions and logged models, and a model's aliases:
//! `(owner, key) → value`, listed per owner by key.

use super::key;
use super::revisions::{self, Parent};
use crate::domain::ml_records::{KeyValue, TagOwner};
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

fn tag_key(owner: TagOwner, name: &str) -> Vec<u8> {
    key().raw(&owner.key_prefix()).str(name).build()
}

/// The parent whose revision guards an owner's tags.
pub fn parent_of(owner: TagOwner) -> Parent {
    match owner {
        TagOwner::Experiment(id) => Parent::Experiment(id),
        TagOwner::Candidate(id) => Parent::Candidate(id),
        TagOwner::Model(id) | TagOwner::ModelAlias(id) => Parent::Model(id),
        TagOwner::Version(id) => Parent::Version(id),
        TagOwner::LoggedModel(id) => Parent::LoggedModel(id),
    }
}

pub fn set(tx: &dyn Txn, owner: TagOwner, tags: &[KeyValue]) -> Result<(), TxFail> {
    if tags.is_empty() {
        return Ok(());
    }
    for tag in tags {
        tx.put(Table::Tags, &tag_key(owner, &tag.key), tag.value.as_bytes())?;
    }
    revisions::bump(tx, parent_of(owner))
}

/// Removes one tag; whether it existed.
pub fn delete(tx: &dyn Txn, owner: TagOwner, name: &str) -> Result<bool, TxFail> {
    let k = tag_key(owner, name);
    if tx.get(Table::Tags, &k)?.is_none() {
        return Ok(false);
    }
    tx.delete(Table::Tags, &k)?;
    revisions::bump(tx, parent_of(owner))?;
    Ok(true)
}

pub fn exists(tx: &dyn Txn, owner: TagOwner, name: &str) -> Result<bool, TxFail> {
    Ok(tx.get(Table::Tags, &tag_key(owner, name))?.is_some())
}

pub fn get(
    meta: &dyn MetaStore,
    owner: TagOwner,
    name: &str,
) -> Result<Option<String>, StoreError> {
    Ok(meta
        .get(Table::Tags, &tag_key(owner, name))?
        .map(|v| String::from_utf8_lossy(&v).into_owned()))
}

/// Every tag of an owner, by key.
pub fn all(meta: &dyn MetaStore, owner: TagOwner) -> Result<Vec<KeyValue>, StoreError> {
    let prefix = owner.key_prefix();
    meta.scan(Table::Tags, &prefix)
        .map(|entry| {
            let (k, value) = entry?;
            let name = k
                .get(prefix.len()..k.len().saturating_sub(1))
                .unwrap_or_default();
            Ok(KeyValue {
                key: String::from_utf8_lossy(name).into_owned(),
                value: String::from_utf8_lossy(&value).into_owned(),
            })
        })
        .collect()
}

/// The names of an owner's tags (to delete them with the owner).
pub fn names(meta: &dyn MetaStore, owner: TagOwner) -> Result<Vec<String>, StoreError> {
    Ok(all(meta, owner)?.into_iter().map(|kv| kv.key).collect())
}

/// Removes tags by name without bumping the owner's revision (the owner goes too).
pub fn purge(tx: &dyn Txn, owner: TagOwner, names: &[String]) -> Result<(), TxFail> {
    for name in names {
        tx.delete(Table::Tags, &tag_key(owner, name))?;
    }
    Ok(())
}
