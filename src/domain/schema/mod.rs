//! The schema layer: every kind of record, its keys and its indexes.
//!
//! One module per record kind owns its key encodings and keeps its indexes and counts. A record
//! is written with [`put`] and removed with [`remove`]; both read the old record inside the same
//! transaction and hand old and new to [`Schema::updated`] (garage's `TableSchema::updated`), so
//! use cases say what changes and never spell an index key. Reads that list things walk an
//! ordered index ([`page`]) and decode only the records of the page they return; totals come from
//! counts kept on write ([`count`]).
//!
//! Nothing outside this module names a [`Table`] or builds a key.

pub mod alias_moves;
pub mod audit_events;
pub mod candidates;
pub mod ci_tokens;
pub mod counters;
pub mod deploy_tokens;
pub mod experiments;
pub mod files;
pub mod groups;
pub mod hooks;
pub mod logged_model_metrics;
pub mod logged_models;
pub mod members;
pub mod metric_history;
pub mod metrics;
pub mod models;
pub mod oci_blobs;
pub mod oci_generated;
pub mod oci_manifests;
pub mod oci_uploads;
pub mod outbox;
pub mod packages;
pub mod params;
pub mod projects;
pub mod resumable_uploads;
pub mod revisions;
pub mod run_links;
pub mod sealed_manifests;
pub mod semver_key;
pub mod sessions;
pub mod tags;
pub mod tokens;
pub mod trusted_publishers;
pub mod upgrade;
pub mod usage;
pub mod users;
pub mod versions;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::store::keys::{self, Key};
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn, TxnExt};

/// A kind of record: where it lives, its primary key, and the upkeep of its indexes.
pub trait Schema {
    type Record: Serialize + DeserializeOwned + 'static;
    const TABLE: Table;

    /// The record's primary key in [`Schema::TABLE`].
    fn key(record: &Self::Record) -> Vec<u8>;

    /// The indexes of this kind; [`Schema::updated`] keeps them by default.
    fn indexes() -> &'static [Index<Self::Record>] {
        &[]
    }

    /// The counts a record adds one to (see [`count`]).
    fn counted(_record: &Self::Record) -> Vec<Vec<u8>> {
        Vec::new()
    }

    /// The parent whose children a record is (see [`revisions`]): its revision is bumped when
    /// such a record is added or removed.
    fn parent(_record: &Self::Record) -> Option<revisions::Parent> {
        None
    }

    /// The webhook event a change of such a record announces (see [`outbox`]); written by
    /// [`put`] and [`remove`], not by index rebuilds.
    fn announce(_record: &Self::Record) -> Option<outbox::Announce> {
        None
    }

    /// What the audit log calls a change of such a record (see [`audit_events`]); `None`:
    /// not audited. Recorded by [`put`] and [`remove`] when the write has an audit context.
    fn audited(_record: &Self::Record) -> Option<audit_events::Target> {
        None
    }

    /// Called inside the writing transaction with the record before and after the change
    /// (`None`: it did not exist / no longer exists).
    fn updated(
        tx: &dyn Txn,
        old: Option<&Self::Record>,
        new: Option<&Self::Record>,
    ) -> Result<(), TxFail> {
        keep_indexes(tx, Self::indexes(), old, new)?;
        keep_counts(tx, old.map(Self::counted), new.map(Self::counted))?;
        bump_parent::<Self>(tx, old, new)
    }
}

/// One index of a record kind: the entry a record has in `table`, if any.
pub struct Index<R: 'static> {
    pub table: Table,
    pub entry: fn(&R) -> Option<IndexEntry>,
}

/// An index entry: its key and the value stored with it.
pub type IndexEntry = (Vec<u8>, Vec<u8>);

/// Moves every index entry from what the old record had to what the new one has.
pub fn keep_indexes<R>(
    tx: &dyn Txn,
    indexes: &[Index<R>],
    old: Option<&R>,
    new: Option<&R>,
) -> Result<(), TxFail> {
    for index in indexes {
        let before = old.and_then(index.entry);
        let after = new.and_then(index.entry);
        if before == after {
            continue;
        }
        if let Some((key, _)) = &before {
            if after.as_ref().is_none_or(|(new_key, _)| new_key != key) {
                tx.delete(index.table, key)?;
            }
        }
        if let Some((key, value)) = &after {
            tx.put(index.table, key, value)?;
        }
    }
    Ok(())
}

/// Bumps the parent's revision when a record is added or removed.
pub fn bump_parent<S: Schema + ?Sized>(
    tx: &dyn Txn,
    old: Option<&S::Record>,
    new: Option<&S::Record>,
) -> Result<(), TxFail> {
    if let (None, Some(record)) | (Some(record), None) = (old, new) {
        if let Some(parent) = S::parent(record) {
            revisions::bump(tx, parent)?;
        }
    }
    Ok(())
}

/// Keeps the counts of a record kind (for `updated` implementations that do more).
pub fn keep_counts_of<S: Schema>(
    tx: &dyn Txn,
    old: Option<&S::Record>,
    new: Option<&S::Record>,
) -> Result<(), TxFail> {
    keep_counts(tx, old.map(S::counted), new.map(S::counted))
}

fn keep_counts(
    tx: &dyn Txn,
    old: Option<Vec<Vec<u8>>>,
    new: Option<Vec<Vec<u8>>>,
) -> Result<(), TxFail> {
    let old = old.unwrap_or_default();
    let new = new.unwrap_or_default();
    for key in old.iter().filter(|k| !new.contains(k)) {
        add_to_count(tx, key, -1)?;
    }
    for key in new.iter().filter(|k| !old.contains(k)) {
        add_to_count(tx, key, 1)?;
    }
    Ok(())
}

/// Adds `delta` to a kept count; a count that reaches zero is removed.
pub fn add_to_count(tx: &dyn Txn, key: &[u8], delta: i64) -> Result<(), TxFail> {
    let current = tx
        .get(Table::Counts, key)?
        .and_then(|v| keys::last_id(&v))
        .unwrap_or(0);
    let next = current.saturating_add_signed(delta);
    if next == 0 {
        tx.delete(Table::Counts, key)
    } else {
        tx.put(Table::Counts, key, &keys::id(next))
    }
}

/// The kept counts under several keys, in the order asked (one batched read).
pub fn counts(meta: &dyn MetaStore, keys: &[Vec<u8>]) -> Result<Vec<usize>, StoreError> {
    Ok(meta
        .get_many(Table::Counts, keys)?
        .into_iter()
        .map(|v| v.and_then(|v| keys::last_id(&v)).unwrap_or(0) as usize)
        .collect())
}

/// A kept count (0 when nothing was ever counted under `key`).
pub fn count(meta: &dyn MetaStore, key: &[u8]) -> Result<usize, StoreError> {
    Ok(meta
        .get(Table::Counts, key)?
        .and_then(|v| keys::last_id(&v))
        .unwrap_or(0) as usize)
}

/// The kept counts under a prefix with the rest of their keys: e.g. a count per package name.
pub fn counts_under<'a>(
    meta: &'a dyn MetaStore,
    prefix: &'a [u8],
) -> impl Iterator<Item = Result<(Vec<u8>, usize), StoreError>> + 'a {
    meta.scan(Table::Counts, prefix).map(move |entry| {
        let (key, value) = entry?;
        let rest = key.get(prefix.len()..).unwrap_or_default().to_vec();
        Ok((rest, keys::last_id(&value).unwrap_or(0) as usize))
    })
}

/// Writes a record and keeps its indexes; returns the record it replaced.
pub fn put<S: Schema>(tx: &dyn Txn, record: &S::Record) -> Result<Option<S::Record>, TxFail> {
    let key = S::key(record);
    let old = tx.get_json::<S::Record>(S::TABLE, &key)?;
    tx.put_json(S::TABLE, &key, record)?;
    S::updated(tx, old.as_ref(), Some(record))?;
    if let Some(what) = S::announce(record) {
        let hooks = outbox::targets(tx, &what)?;
        if !hooks.is_empty() {
            let object = serde_json::to_value(record).unwrap_or_default();
            let action = match &old {
                None => Some("created"),
                Some(before) => (serde_json::to_value(before).unwrap_or_default() != object)
                    .then_some("updated"),
            };
            if let Some(action) = action {
                outbox::announce(tx, &what, &hooks, action, object)?;
            }
        }
    }
    audit_change::<S>(tx, old.as_ref(), Some(record))?;
    Ok(old)
}

/// Records the change in the audit log when the kind is audited and the write has an audit
/// context.
fn audit_change<S: Schema>(
    tx: &dyn Txn,
    old: Option<&S::Record>,
    new: Option<&S::Record>,
) -> Result<(), TxFail> {
    let Some(record) = new.or(old) else {
        return Ok(());
    };
    if crate::domain::audit::context().is_none() {
        return Ok(());
    }
    let Some(target) = S::audited(record) else {
        return Ok(());
    };
    let json = |r: &S::Record| serde_json::to_value(r).unwrap_or_default();
    audit_events::changed(tx, target, old.map(json), new.map(json))
}

/// Removes the record under `key` and its index entries; returns it if it existed.
pub fn remove<S: Schema>(tx: &dyn Txn, key: &[u8]) -> Result<Option<S::Record>, TxFail> {
    let Some(old) = tx.get_json::<S::Record>(S::TABLE, key)? else {
        return Ok(None);
    };
    tx.delete(S::TABLE, key)?;
    S::updated(tx, Some(&old), None)?;
    if let Some(what) = S::announce(&old) {
        let hooks = outbox::targets(tx, &what)?;
        if !hooks.is_empty() {
            let object = serde_json::to_value(&old).unwrap_or_default();
            outbox::announce(tx, &what, &hooks, "deleted", object)?;
        }
    }
    audit_change::<S>(tx, Some(&old), None)?;
    Ok(Some(old))
}

/// Reads a record inside a transaction.
pub fn load<S: Schema>(tx: &dyn Txn, key: &[u8]) -> Result<Option<S::Record>, TxFail> {
    tx.get_json::<S::Record>(S::TABLE, key)
}

/// Reads a record outside a transaction.
pub fn get<S: Schema>(meta: &dyn MetaStore, key: &[u8]) -> Result<Option<S::Record>, StoreError> {
    meta.get_json::<S::Record>(S::TABLE, key)
}

/// Reads the records under `keys` with one batched read ([`MetaStore::get_many`]), in the order
/// of `keys` (`None` where there is none).
pub fn get_many<S: Schema>(
    meta: &dyn MetaStore,
    keys: &[Vec<u8>],
) -> Result<Vec<Option<S::Record>>, StoreError> {
    meta.get_many(S::TABLE, keys)?
        .into_iter()
        .map(|value| {
            value
                .map(|bytes| crate::store::meta::decode(S::TABLE, &bytes))
                .transpose()
        })
        .collect()
}

/// The records with these ids (kinds keyed by id), in that order, with one batched read;
/// ids whose record is gone are left out.
pub fn get_ids<S: Schema>(meta: &dyn MetaStore, ids: &[u64]) -> Result<Vec<S::Record>, StoreError> {
    let keys: Vec<Vec<u8>> = ids.iter().map(|id| id_key(*id)).collect();
    Ok(get_many::<S>(meta, &keys)?.into_iter().flatten().collect())
}

/// The records keyed under each of several parents' ids (kinds whose key starts with their
/// parent's id), in key order, in the order of `parent_ids`: one [`MetaStore::scan_many`].
pub fn children_of<S: Schema>(
    meta: &dyn MetaStore,
    parent_ids: &[u64],
) -> Result<Vec<Vec<S::Record>>, StoreError> {
    let prefixes: Vec<Vec<u8>> = parent_ids.iter().map(|id| id_key(*id)).collect();
    meta.scan_many(S::TABLE, &prefixes, usize::MAX)?
        .into_iter()
        .map(|entries| {
            entries
                .iter()
                .map(|(_, value)| crate::store::meta::decode(S::TABLE, value))
                .collect()
        })
        .collect()
}

/// The records a stream of ids names (kinds keyed by id), read a batch at a time (see
/// [`records_of`]); ids whose record is gone are left out.
pub fn of_ids<'a, S: Schema>(
    meta: &'a dyn MetaStore,
    ids: impl Iterator<Item = Result<u64, StoreError>> + 'a,
) -> impl Iterator<Item = Result<S::Record, StoreError>> + 'a {
    records_of::<S, u64>(meta, ids, |id| Some(id_key(*id)))
        .map(|found| found.map(|(_, record)| record))
}

/// The first batch [`records_of`] reads; later ones grow up to [`LAST_BATCH`].
const FIRST_BATCH: usize = 32;
const LAST_BATCH: usize = 512;

/// Turns a stream of items naming records (index entries, ids) into `(item, record)` pairs,
/// reading the records a batch at a time with one [`MetaStore::get_many`] each, so a listing
/// or search that pages through the stream costs one read per batch, not one per record.
/// Items that name no key, and keys whose record is gone, are left out; an error of the
/// stream is passed on after the records named before it.
pub fn records_of<'a, S: Schema, T: 'a>(
    meta: &'a dyn MetaStore,
    items: impl Iterator<Item = Result<T, StoreError>> + 'a,
    key_of: impl Fn(&T) -> Option<Vec<u8>> + 'a,
) -> impl Iterator<Item = Result<(T, S::Record), StoreError>> + 'a {
    let mut items = items.fuse();
    let mut ready: std::collections::VecDeque<Result<(T, S::Record), StoreError>> =
        std::collections::VecDeque::new();
    let mut batch = FIRST_BATCH;
    let mut failed = false;
    std::iter::from_fn(move || loop {
        if let Some(next) = ready.pop_front() {
            return Some(next);
        }
        if failed {
            return None;
        }
        let mut named = Vec::new();
        let mut keys = Vec::new();
        let mut error = None;
        for item in items.by_ref() {
            match item {
                Ok(item) => {
                    if let Some(key) = key_of(&item) {
                        keys.push(key);
                        named.push(item);
                        if keys.len() == batch {
                            break;
                        }
                    }
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if keys.is_empty() && error.is_none() {
            return None;
        }
        batch = (batch * 4).min(LAST_BATCH);
        match get_many::<S>(meta, &keys) {
            Ok(records) => {
                for (item, record) in named.into_iter().zip(records) {
                    if let Some(record) = record {
                        ready.push_back(Ok((item, record)));
                    }
                }
            }
            Err(e) => {
                ready.push_back(Err(e));
                failed = true;
            }
        }
        if let Some(e) = error {
            ready.push_back(Err(e));
            failed = true;
        }
    })
}

/// Reads a record whose key is the id stored as the value of an index entry.
pub fn get_by_index<S: Schema>(
    meta: &dyn MetaStore,
    index: Table,
    key: &[u8],
) -> Result<Option<S::Record>, StoreError> {
    match meta.get(index, key)? {
        Some(id) => get::<S>(meta, &id),
        None => Ok(None),
    }
}

/// The records an index points to under each of several keys, in the order asked (`None`
/// where a key is absent): two batched reads.
pub fn get_many_by_index<S: Schema>(
    meta: &dyn MetaStore,
    index: Table,
    keys: &[Vec<u8>],
) -> Result<Vec<Option<S::Record>>, StoreError> {
    let ids = meta.get_many(index, keys)?;
    let found: Vec<Vec<u8>> = ids.iter().flatten().cloned().collect();
    let mut records = get_many::<S>(meta, &found)?.into_iter();
    Ok(ids
        .into_iter()
        .map(|id| id.and_then(|_| records.next().flatten()))
        .collect())
}

/// The same inside a transaction.
pub fn load_by_index<S: Schema>(
    tx: &dyn Txn,
    index: Table,
    key: &[u8],
) -> Result<Option<S::Record>, TxFail> {
    match tx.get(index, key)? {
        Some(id) => load::<S>(tx, &id),
        None => Ok(None),
    }
}

/// The primary key of records keyed by their id.
pub fn id_key(id: u64) -> Vec<u8> {
    keys::id(id)
}

/// The id that ends an index key (indexes whose entries end with the record's id).
pub fn trailing_id(key: &[u8]) -> Option<u64> {
    keys::last_id(key)
}

/// Where a page of an ordered index starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seek {
    /// Skip this many entries (page-number pagination walks keys only, decoding nothing).
    Offset(usize),
    /// Start after this index key (keyset pagination: the cursor is the last key of the
    /// previous page).
    After(Vec<u8>),
}

/// A page of index entries, and the key to continue after when there are more.
pub struct IndexPage {
    pub entries: Vec<IndexEntry>,
    pub next: Option<Vec<u8>>,
}

/// Where the id of the record an index entry names is: at the end of its key, or its value.
#[derive(Debug, Clone, Copy)]
pub enum IdIn {
    Key,
    Value,
}

fn id_of(entry: &IndexEntry, at: IdIn) -> Option<u64> {
    match at {
        IdIn::Key => trailing_id(&entry.0),
        IdIn::Value => trailing_id(&entry.1),
    }
}

/// A page of the record ids an index lists under `prefix`, and the cursor after it.
pub fn page_ids(
    meta: &dyn MetaStore,
    table: Table,
    prefix: &[u8],
    reverse: bool,
    seek: &Seek,
    take: usize,
    at: IdIn,
) -> Result<(Vec<u64>, Option<Vec<u8>>), StoreError> {
    let IndexPage { entries, next } = page(meta, table, prefix, reverse, seek, take)?;
    Ok((entries.iter().filter_map(|e| id_of(e, at)).collect(), next))
}

/// Every record id an index lists under `prefix`, in key order (for deletions).
pub fn all_ids(
    meta: &dyn MetaStore,
    table: Table,
    prefix: &[u8],
    at: IdIn,
) -> Result<Vec<u64>, StoreError> {
    let mut ids = Vec::new();
    for entry in meta.scan(table, prefix) {
        if let Some(id) = id_of(&entry?, at) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Reads `take` entries of the index `table` under `prefix`, in key order or reversed.
pub fn page(
    meta: &dyn MetaStore,
    table: Table,
    prefix: &[u8],
    reverse: bool,
    seek: &Seek,
    take: usize,
) -> Result<IndexPage, StoreError> {
    let iter = match seek {
        Seek::Offset(_) if reverse => meta.scan_rev(table, prefix),
        Seek::Offset(_) => meta.scan(table, prefix),
        Seek::After(after) => meta.scan_after(table, prefix, after, reverse),
    };
    let skip = match seek {
        Seek::Offset(n) => *n,
        Seek::After(_) => 0,
    };
    collect_page(iter.skip(skip), take)
}

/// Takes `take` entries of an ordered stream and notes whether one more follows.
pub fn collect_page(
    mut iter: impl Iterator<Item = Result<IndexEntry, StoreError>>,
    take: usize,
) -> Result<IndexPage, StoreError> {
    let mut entries = Vec::with_capacity(take.min(1024));
    for entry in iter.by_ref().take(take) {
        entries.push(entry?);
    }
    let more = match iter.next() {
        Some(entry) => {
            entry?;
            true
        }
        None => false,
    };
    let next = if more {
        entries.last().map(|(key, _)| key.clone())
    } else {
        None
    };
    Ok(IndexPage { entries, next })
}

/// Merges index streams that are each ordered by the part of their keys after their own
/// prefix, into one stream in that order (reversed when `reverse`). Ties keep stream order.
pub fn merge_streams<'a>(
    streams: Vec<(usize, crate::store::meta::KvIter<'a>)>,
    reverse: bool,
) -> impl Iterator<Item = Result<IndexEntry, StoreError>> + 'a {
    merge_sorted(streams, |entry: &IndexEntry| &entry.0, reverse)
}

/// Merges streams of items ordered by `key_of(item)[offset..]` (each stream with its own
/// offset) into one stream in that order; an error is passed on as soon as it is met.
pub fn merge_sorted<'a, T: 'a, E: 'a, I>(
    streams: Vec<(usize, I)>,
    key_of: fn(&T) -> &[u8],
    reverse: bool,
) -> impl Iterator<Item = Result<T, E>> + 'a
where
    I: Iterator<Item = Result<T, E>> + 'a,
{
    let mut offsets = Vec::with_capacity(streams.len());
    let mut iters = Vec::with_capacity(streams.len());
    let mut heads: Vec<Option<Result<T, E>>> = Vec::with_capacity(streams.len());
    for (offset, mut iter) in streams {
        heads.push(iter.next());
        iters.push(iter);
        offsets.push(offset);
    }
    std::iter::from_fn(move || {
        let order_of = |i: usize, item: &T| -> Vec<u8> {
            key_of(item).get(offsets[i]..).unwrap_or_default().to_vec()
        };
        let mut best: Option<(usize, Vec<u8>)> = None;
        for (i, head) in heads.iter().enumerate() {
            match head {
                None => continue,
                Some(Err(_)) => {
                    best = Some((i, Vec::new()));
                    break;
                }
                Some(Ok(item)) => {
                    let order = order_of(i, item);
                    let better = match &best {
                        None => true,
                        Some((_, best_order)) => {
                            if reverse {
                                order > *best_order
                            } else {
                                order < *best_order
                            }
                        }
                    };
                    if better {
                        best = Some((i, order));
                    }
                }
            }
        }
        let (i, _) = best?;
        let next = iters[i].next();
        std::mem::replace(&mut heads[i], next)
    })
}

/// An i64 as bytes whose order is the numbers' order.
pub fn sortable_i64(n: i64) -> [u8; 8] {
    ((n as u64) ^ (1 << 63)).to_be_bytes()
}

/// An f64 as bytes whose order is the numbers' total order (`-inf` … `inf`, NaN last).
pub fn sortable_f64(x: f64) -> [u8; 8] {
    let bits = if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    };
    let flipped = if bits >> 63 == 1 {
        !bits
    } else {
        bits ^ (1 << 63)
    };
    flipped.to_be_bytes()
}

/// A key builder for the modules of this layer.
pub(crate) fn key() -> Key {
    Key::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_numbers_keep_their_order() {
        let ints = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for pair in ints.windows(2) {
            assert!(sortable_i64(pair[0]) < sortable_i64(pair[1]));
        }
        let floats = [
            f64::NEG_INFINITY,
            -1e300,
            -1.5,
            -0.0,
            0.0,
            1e-300,
            2.5,
            f64::INFINITY,
            f64::NAN,
        ];
        for pair in floats.windows(2) {
            assert!(
                sortable_f64(pair[0]) <= sortable_f64(pair[1]),
                "{} {}",
                pair[0],
                pair[1]
            );
        }
        assert!(sortable_f64(-1.0) < sortable_f64(-0.5));
    }
}
