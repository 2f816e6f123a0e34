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
    let hooks = super::hooks::any(tx)?;
    let audited = crate::domain::audit::context().is_some();
    for tag in tags {
        let k = tag_key(owner, &tag.key);
        let before = if hooks || audited {
            tx.get(Table::Tags, &k)?
        } else {
            None
        };
        tx.put(Table::Tags, &k, tag.value.as_bytes())?;
        if before.as_deref() != Some(tag.value.as_bytes()) {
            let action = if before.is_some() {
                "updated"
            } else {
                "created"
            };
            if hooks {
                announce(tx, owner, &tag.key, Some(&tag.value), action)?;
            }
            if audited {
                let before = before.map(|v| String::from_utf8_lossy(&v).into_owned());
                audit(tx, owner, &tag.key, before.as_deref(), Some(&tag.value))?;
            }
        }
    }
    revisions::bump(tx, parent_of(owner))
}

/// Removes one tag; whether it existed.
pub fn delete(tx: &dyn Txn, owner: TagOwner, name: &str) -> Result<bool, TxFail> {
    let k = tag_key(owner, name);
    let Some(before) = tx.get(Table::Tags, &k)? else {
        return Ok(false);
    };
    tx.delete(Table::Tags, &k)?;
    let value = String::from_utf8_lossy(&before).into_owned();
    if super::hooks::any(tx)? {
        announce(tx, owner, name, Some(&value), "deleted")?;
    }
    audit(tx, owner, name, Some(&value), None)?;
    revisions::bump(tx, parent_of(owner))?;
    Ok(true)
}

/// A tag's value inside a transaction.
pub fn value_in(tx: &dyn Txn, owner: TagOwner, name: &str) -> Result<Option<String>, TxFail> {
    Ok(tx
        .get(Table::Tags, &tag_key(owner, name))?
        .map(|v| String::from_utf8_lossy(&v).into_owned()))
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
    Ok(all_of(meta, &[owner])?.pop().unwrap_or_default())
}

/// Every tag of each of several owners, by key, in the order of `owners`: one batched read for
/// a page of records.
pub fn all_of(meta: &dyn MetaStore, owners: &[TagOwner]) -> Result<Vec<Vec<KeyValue>>, StoreError> {
    let prefixes: Vec<Vec<u8>> = owners.iter().map(|owner| owner.key_prefix()).collect();
    Ok(meta
        .scan_many(Table::Tags, &prefixes, usize::MAX)?
        .into_iter()
        .zip(&prefixes)
        .map(|(entries, prefix)| {
            entries
                .into_iter()
                .map(|(k, value)| KeyValue {
                    key: String::from_utf8_lossy(
                        k.get(prefix.len()..k.len().saturating_sub(1))
                            .unwrap_or_default(),
                    )
                    .into_owned(),
                    value: String::from_utf8_lossy(&value).into_owned(),
                })
                .collect()
        })
        .collect())
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

/// Announces a change of a tag or an alias to the project's hooks (tags purged with their owner
/// are announced by the owner's own deletion).
fn announce(
    tx: &dyn Txn,
    owner: TagOwner,
    name: &str,
    value: Option<&str>,
    action: &str,
) -> Result<(), TxFail> {
    use serde_json::json;
    let (owner_kind, owner_id, project_id) = owner_of(tx, owner)?;
    let Some(project_id) = project_id else {
        return Ok(());
    };
    let (what, object) = if let TagOwner::ModelAlias(model_id) = owner {
        let version_id = value.and_then(|v| v.parse::<u64>().ok());
        let version = match version_id {
            Some(id) => super::versions::load(tx, id)?.map(|v| v.version),
            None => None,
        };
        (
            super::outbox::Announce {
                flag: "alias_events",
                kind: "alias",
                project_id,
                path: format!("/api/v4/projects/{project_id}/ml/models/{model_id}/aliases/{name}"),
            },
            json!({"model_id": model_id, "alias": name, "version_id": version_id, "version": version}),
        )
    } else {
        (
            super::outbox::Announce {
                flag: "tag_events",
                kind: "tag",
                project_id,
                path: format!("/api/v4/projects/{project_id}"),
            },
            json!({"owner": owner_kind, "owner_id": owner_id, "key": name, "value": value}),
        )
    };
    let hooks = super::outbox::targets(tx, &what)?;
    if hooks.is_empty() {
        return Ok(());
    }
    super::outbox::announce(tx, &what, &hooks, action, object)
}

/// The kind, id and project of a tag's owner.
fn owner_of(tx: &dyn Txn, owner: TagOwner) -> Result<(&'static str, u64, Option<u64>), TxFail> {
    Ok(match owner {
        TagOwner::Experiment(id) => (
            "experiment",
            id,
            super::experiments::load(tx, id)?.map(|e| e.project_id),
        ),
        TagOwner::Candidate(id) => (
            "run",
            id,
            super::candidates::load(tx, id)?.map(|c| c.project_id),
        ),
        TagOwner::Model(id) | TagOwner::ModelAlias(id) => (
            "model",
            id,
            super::models::load(tx, id)?.map(|m| m.project_id),
        ),
        TagOwner::Version(id) => (
            "version",
            id,
            super::versions::load(tx, id)?.map(|v| v.project_id),
        ),
        TagOwner::LoggedModel(id) => (
            "logged_model",
            id,
            super::load::<super::logged_models::LoggedModels>(tx, &super::id_key(id))?
                .map(|m| m.project_id),
        ),
    })
}

/// Records the change of a tag or an alias in the audit log (when the write is audited).
fn audit(
    tx: &dyn Txn,
    owner: TagOwner,
    name: &str,
    before: Option<&str>,
    after: Option<&str>,
) -> Result<(), TxFail> {
    use serde_json::json;
    if crate::domain::audit::context().is_none() {
        return Ok(());
    }
    let (owner_kind, owner_id, project_id) = owner_of(tx, owner)?;
    let (entity_type, path, value_of) = if let TagOwner::ModelAlias(model_id) = owner {
        let version_of = |v: Option<&str>| -> Result<serde_json::Value, TxFail> {
            let id = v.and_then(|v| v.parse::<u64>().ok());
            let version = match id {
                Some(id) => super::versions::load(tx, id)?.map(|v| v.version),
                None => None,
            };
            Ok(json!({"model_id": model_id, "alias": name, "version_id": id, "version": version}))
        };
        (
            "Alias",
            format!("model {model_id} alias {name}"),
            [
                before.map(|b| version_of(Some(b))).transpose()?,
                after.map(|a| version_of(Some(a))).transpose()?,
            ],
        )
    } else {
        let value =
            |v: &str| json!({"owner": owner_kind, "owner_id": owner_id, "key": name, "value": v});
        (
            "Tag",
            format!("{owner_kind} {owner_id} tag {name}"),
            [before.map(value), after.map(value)],
        )
    };
    let [old, new] = value_of;
    super::audit_events::changed(
        tx,
        super::audit_events::Target {
            entity_type,
            entity_id: owner_id,
            project_id,
            path,
        },
        old,
        new,
    )
}
