//! Revisions of parents: a counter per parent record that every transaction adding or removing
//! one of its children bumps. A deletion that must remove a parent with all its children lists
//! the children outside its transaction (sled transactions cannot scan), notes the revisions of
//! the parents it listed, and commits only if they are unchanged inside the transaction: a child
//! written concurrently makes it list again instead of leaving an orphan.

use super::key;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

/// A record whose children are listed by scanning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    /// Packages and members of a project.
    Project(u64),
    /// Versions, tags and aliases of a model.
    Model(u64),
    /// Candidates, logged models and tags of an experiment.
    Experiment(u64),
    /// Params, metrics and tags of a candidate.
    Candidate(u64),
    /// Files of a package.
    Package(u64),
    /// Tags of a version.
    Version(u64),
    /// Tags and params of a logged model.
    LoggedModel(u64),
    /// Members of a group.
    Group(u64),
}

fn revision_key(parent: Parent) -> Vec<u8> {
    let (kind, id) = match parent {
        Parent::Project(id) => (1u8, id),
        Parent::Model(id) => (2, id),
        Parent::Experiment(id) => (3, id),
        Parent::Candidate(id) => (4, id),
        Parent::Package(id) => (5, id),
        Parent::Version(id) => (6, id),
        Parent::LoggedModel(id) => (7, id),
        Parent::Group(id) => (8, id),
    };
    key().raw(&[kind]).id(id).build()
}

fn decode(bytes: Option<Vec<u8>>) -> u64 {
    bytes.and_then(|b| super::trailing_id(&b)).unwrap_or(0)
}

/// Notes that a child of `parent` was added or removed.
pub fn bump(tx: &dyn Txn, parent: Parent) -> Result<(), TxFail> {
    let k = revision_key(parent);
    let next = decode(tx.get(Table::Revisions, &k)?).wrapping_add(1);
    tx.put(Table::Revisions, &k, &super::id_key(next))
}

/// Forgets a parent's revision (it is being deleted).
pub fn forget(tx: &dyn Txn, parent: Parent) -> Result<(), TxFail> {
    tx.delete(Table::Revisions, &revision_key(parent))
}

/// The parents a listing read, with the revisions it saw.
#[derive(Debug, Default)]
pub struct ReadSet(Vec<(Parent, u64)>);

impl ReadSet {
    pub fn new() -> Self {
        ReadSet(Vec::new())
    }

    /// Notes a parent before its children are listed.
    pub fn note(&mut self, meta: &dyn MetaStore, parent: Parent) -> Result<(), StoreError> {
        if !self.0.iter().any(|(p, _)| *p == parent) {
            let seen = decode(meta.get(Table::Revisions, &revision_key(parent))?);
            self.0.push((parent, seen));
        }
        Ok(())
    }

    /// Whether no child of a noted parent changed since it was noted.
    pub fn unchanged(&self, tx: &dyn Txn) -> Result<bool, TxFail> {
        for (parent, seen) in &self.0 {
            if decode(tx.get(Table::Revisions, &revision_key(*parent))?) != *seen {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
