//! Model versions: unique by `(model, version string)`; ordered by SemVer precedence (all
//! versions, and releases alone) through [`super::semver_key`]; found by per-model sequence number
//! (MLflow's `version`); ordered by last update per model and per project (MLflow's default
//! `search_model_versions` order); counted per model.

use semver::Version;

use super::revisions::Parent;
use super::semver_key::{triple_floor, version_key};
use super::{count, id_key, key, Index, IndexEntry, Schema, Seek};
use crate::domain::ml_records::ModelVersion;
use crate::domain::semver_rules::Requirement;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct Versions;

fn string_key(model_id: u64, version: &str) -> Vec<u8> {
    key().id(model_id).str(version).build()
}

fn order_key(model_id: u64, version: &Version) -> Vec<u8> {
    key().id(model_id).raw(&version_key(version)).build()
}

fn entry_by_string(v: &ModelVersion) -> Option<IndexEntry> {
    Some((string_key(v.model_id, &v.version), id_key(v.id)))
}

fn entry_by_precedence(v: &ModelVersion) -> Option<IndexEntry> {
    let parsed = Version::parse(&v.version).ok()?;
    Some((order_key(v.model_id, &parsed), id_key(v.id)))
}

fn entry_releases(v: &ModelVersion) -> Option<IndexEntry> {
    let parsed = Version::parse(&v.version).ok()?;
    parsed
        .pre
        .is_empty()
        .then(|| (order_key(v.model_id, &parsed), id_key(v.id)))
}

fn stage_prefix(model_id: u64, stage: &str) -> Vec<u8> {
    key().id(model_id).str(stage).build()
}

fn entry_by_stage(v: &ModelVersion) -> Option<IndexEntry> {
    let parsed = Version::parse(&v.version).ok()?;
    let k = key()
        .raw(&stage_prefix(
            v.model_id,
            v.stage.as_deref().unwrap_or("None"),
        ))
        .raw(&version_key(&parsed))
        .build();
    Some((k, id_key(v.id)))
}

fn entry_by_seq(v: &ModelVersion) -> Option<IndexEntry> {
    Some((key().id(v.model_id).id(v.seq).build(), id_key(v.id)))
}

/// `(project, run id, version)`: the versions registered from a run (MLflow's `run_id`).
fn source_run_prefix(project_id: u64, run_id: &str) -> Vec<u8> {
    key().id(project_id).str(run_id).build()
}

fn entry_by_source_run(v: &ModelVersion) -> Option<IndexEntry> {
    let run_id = v.source_run_id.as_deref()?;
    Some((
        key()
            .raw(&source_run_prefix(v.project_id, run_id))
            .id(v.id)
            .build(),
        id_key(v.id),
    ))
}

/// The versions of a project registered from a run, oldest first.
pub fn ids_from_run(
    meta: &dyn MetaStore,
    project_id: u64,
    run_id: &str,
) -> Result<Vec<u64>, StoreError> {
    meta.scan_keys(
        Table::VersionsBySourceRun,
        &source_run_prefix(project_id, run_id),
    )
    .map(|k| k.map(|k| super::trailing_id(&k).unwrap_or(0)))
    .collect()
}

/// The version-by-source-run index entry of a version (the upgrade to schema 3 adds them).
pub fn source_run_entry(v: &ModelVersion) -> Option<IndexEntry> {
    entry_by_source_run(v)
}

fn updated_ms(v: &ModelVersion) -> u64 {
    u64::try_from(v.updated_at.timestamp_millis()).unwrap_or(0)
}

/// `(model, updated ms, seq)`: read backwards, the most recently updated first, then the newest
/// number.
fn entry_by_updated(v: &ModelVersion) -> Option<IndexEntry> {
    Some((
        key().id(v.model_id).id(updated_ms(v)).id(v.seq).build(),
        id_key(v.id),
    ))
}

/// `(project, updated ms, !model, seq)`: read backwards, the most recently updated first, then
/// the older model (MLflow breaks ties by name; here by model id), then the newest number.
fn entry_in_project_by_updated(v: &ModelVersion) -> Option<IndexEntry> {
    Some((
        key()
            .id(v.project_id)
            .id(updated_ms(v))
            .id(u64::MAX - v.model_id)
            .id(v.seq)
            .build(),
        id_key(v.id),
    ))
}

/// The by-last-update index entries of a version (the upgrade to schema 5 adds them).
pub fn updated_entries(v: &ModelVersion) -> [(Table, Option<IndexEntry>); 2] {
    [
        (Table::VersionsByUpdated, entry_by_updated(v)),
        (
            Table::ProjectVersionsByUpdated,
            entry_in_project_by_updated(v),
        ),
    ]
}

/// A model's version ids, the most recently updated first (then the newest number).
pub fn ids_by_updated<'a>(
    meta: &'a dyn MetaStore,
    model_id: u64,
) -> impl Iterator<Item = Result<u64, StoreError>> + 'a {
    meta.scan_rev(Table::VersionsByUpdated, &id_key(model_id))
        .map(|entry| entry.map(|(_, v)| super::trailing_id(&v).unwrap_or(0)))
}

/// A project's version ids of every model, the most recently updated first.
pub fn ids_in_project_by_updated<'a>(
    meta: &'a dyn MetaStore,
    project_id: u64,
) -> impl Iterator<Item = Result<u64, StoreError>> + 'a {
    meta.scan_rev(Table::ProjectVersionsByUpdated, &id_key(project_id))
        .map(|entry| entry.map(|(_, v)| super::trailing_id(&v).unwrap_or(0)))
}

/// `(model, manifest digest)`: a sealed version found by the digest of its manifest.
fn manifest_key(model_id: u64, digest: &str) -> Vec<u8> {
    key().id(model_id).str(digest).build()
}

fn entry_by_manifest(v: &ModelVersion) -> Option<IndexEntry> {
    let seal = v.seal.as_ref()?;
    Some((
        manifest_key(v.model_id, &seal.manifest_digest),
        id_key(v.id),
    ))
}

/// The sealed version of a model whose manifest has this digest (`sha256:<hex>`).
pub fn by_manifest_digest(
    meta: &dyn MetaStore,
    model_id: u64,
    digest: &str,
) -> Result<Option<ModelVersion>, StoreError> {
    super::get_by_index::<Versions>(
        meta,
        Table::VersionsByManifest,
        &manifest_key(model_id, digest),
    )
}

const INDEXES: &[Index<ModelVersion>] = &[
    Index {
        table: Table::VersionsByModel,
        entry: entry_by_string,
    },
    Index {
        table: Table::VersionsByPrecedence,
        entry: entry_by_precedence,
    },
    Index {
        table: Table::ReleasesByPrecedence,
        entry: entry_releases,
    },
    Index {
        table: Table::VersionsBySeq,
        entry: entry_by_seq,
    },
    Index {
        table: Table::VersionsByStage,
        entry: entry_by_stage,
    },
    Index {
        table: Table::VersionsBySourceRun,
        entry: entry_by_source_run,
    },
    Index {
        table: Table::VersionsByUpdated,
        entry: entry_by_updated,
    },
    Index {
        table: Table::ProjectVersionsByUpdated,
        entry: entry_in_project_by_updated,
    },
    Index {
        table: Table::VersionsByManifest,
        entry: entry_by_manifest,
    },
];

fn count_key(model_id: u64) -> Vec<u8> {
    key().str("versions").id(model_id).build()
}

impl Schema for Versions {
    type Record = ModelVersion;
    const TABLE: Table = Table::Versions;

    fn audited(r: &ModelVersion) -> Option<super::audit_events::Target> {
        Some(super::audit_events::Target {
            entity_type: "ModelVersion",
            entity_id: r.id,
            project_id: Some(r.project_id),
            path: format!("model {} version {}", r.model_id, r.version),
        })
    }

    fn announce(v: &ModelVersion) -> Option<super::outbox::Announce> {
        Some(super::outbox::Announce {
            flag: "version_events",
            kind: "version",
            project_id: v.project_id,
            path: format!(
                "/api/v4/projects/{}/ml/models/{}/versions/{}",
                v.project_id, v.model_id, v.version
            ),
        })
    }

    fn key(v: &ModelVersion) -> Vec<u8> {
        id_key(v.id)
    }

    fn indexes() -> &'static [Index<ModelVersion>] {
        INDEXES
    }

    fn counted(v: &ModelVersion) -> Vec<Vec<u8>> {
        vec![count_key(v.model_id)]
    }

    fn parent(v: &ModelVersion) -> Option<Parent> {
        Some(Parent::Model(v.model_id))
    }
}

pub fn get(meta: &dyn MetaStore, id: u64) -> Result<Option<ModelVersion>, StoreError> {
    super::get::<Versions>(meta, &id_key(id))
}

/// The records with these ids, in that order, in one batched read (those gone left out).
pub fn get_ids(meta: &dyn MetaStore, ids: &[u64]) -> Result<Vec<ModelVersion>, StoreError> {
    super::get_ids::<Versions>(meta, ids)
}

/// The records a stream of ids names, read a batch at a time (see [`super::of_ids`]).
pub fn of_ids<'a>(
    meta: &'a dyn MetaStore,
    ids: impl Iterator<Item = Result<u64, StoreError>> + 'a,
) -> impl Iterator<Item = Result<ModelVersion, StoreError>> + 'a {
    super::of_ids::<Versions>(meta, ids)
}

pub fn load(tx: &dyn Txn, id: u64) -> Result<Option<ModelVersion>, TxFail> {
    super::load::<Versions>(tx, &id_key(id))
}

pub fn by_string_in(
    meta: &dyn MetaStore,
    model_id: u64,
    version: &str,
) -> Result<Option<ModelVersion>, StoreError> {
    super::get_by_index::<Versions>(meta, Table::VersionsByModel, &string_key(model_id, version))
}

pub fn load_by_string(
    tx: &dyn Txn,
    model_id: u64,
    version: &str,
) -> Result<Option<ModelVersion>, TxFail> {
    super::load_by_index::<Versions>(tx, Table::VersionsByModel, &string_key(model_id, version))
}

pub fn exists(tx: &dyn Txn, model_id: u64, version: &str) -> Result<bool, TxFail> {
    Ok(tx
        .get(Table::VersionsByModel, &string_key(model_id, version))?
        .is_some())
}

pub fn by_seq_in(
    meta: &dyn MetaStore,
    model_id: u64,
    seq: u64,
) -> Result<Option<ModelVersion>, StoreError> {
    super::get_by_index::<Versions>(
        meta,
        Table::VersionsBySeq,
        &key().id(model_id).id(seq).build(),
    )
}

pub fn count_of(meta: &dyn MetaStore, model_id: u64) -> Result<usize, StoreError> {
    count(meta, &count_key(model_id))
}

/// How many versions each model has, in the order asked (one batched read).
pub fn counts_of(meta: &dyn MetaStore, model_ids: &[u64]) -> Result<Vec<usize>, StoreError> {
    let keys: Vec<Vec<u8>> = model_ids.iter().map(|id| count_key(*id)).collect();
    super::counts(meta, &keys)
}

/// Versions by `(model, version string)`, in the order asked (two batched reads).
pub fn by_strings_in(
    meta: &dyn MetaStore,
    wanted: &[(u64, &str)],
) -> Result<Vec<Option<ModelVersion>>, StoreError> {
    let keys: Vec<Vec<u8>> = wanted
        .iter()
        .map(|(model_id, version)| string_key(*model_id, version))
        .collect();
    super::get_many_by_index::<Versions>(meta, Table::VersionsByModel, &keys)
}

fn order_table(releases_only: bool) -> Table {
    if releases_only {
        Table::ReleasesByPrecedence
    } else {
        Table::VersionsByPrecedence
    }
}

/// The highest version by precedence (releases only, or all), leaving out `except`: what a
/// model's latest becomes when `except` is deleted.
pub fn highest(
    meta: &dyn MetaStore,
    model_id: u64,
    releases_only: bool,
    except: Option<u64>,
) -> Result<Option<ModelVersion>, StoreError> {
    for entry in meta.scan_rev(order_table(releases_only), &id_key(model_id)) {
        let (_, id) = entry?;
        let Some(id) = super::trailing_id(&id) else {
            continue;
        };
        if Some(id) == except {
            continue;
        }
        return get(meta, id);
    }
    Ok(None)
}

/// The highest version in each `(model, stage)`, in the order asked: one batched reverse
/// scan and one batched read of the records.
pub fn highest_in_stages(
    meta: &dyn MetaStore,
    wanted: &[(u64, &str)],
) -> Result<Vec<Option<ModelVersion>>, StoreError> {
    let prefixes: Vec<Vec<u8>> = wanted
        .iter()
        .map(|(model_id, stage)| stage_prefix(*model_id, stage))
        .collect();
    let ids: Vec<Option<u64>> = meta
        .scan_many_rev(Table::VersionsByStage, &prefixes, 1)?
        .into_iter()
        .map(|entries| entries.first().and_then(|(_, v)| super::trailing_id(v)))
        .collect();
    let found: Vec<u64> = ids.iter().flatten().copied().collect();
    let by_id: std::collections::HashMap<u64, ModelVersion> = get_ids(meta, &found)?
        .into_iter()
        .map(|v| (v.id, v))
        .collect();
    Ok(ids
        .into_iter()
        .map(|id| id.and_then(|id| by_id.get(&id).cloned()))
        .collect())
}

/// The versions of a model in a stage, highest first.
pub fn ids_in_stage(
    meta: &dyn MetaStore,
    model_id: u64,
    stage: &str,
) -> Result<Vec<u64>, StoreError> {
    meta.scan_rev(Table::VersionsByStage, &stage_prefix(model_id, stage))
        .map(|entry| entry.map(|(_, v)| super::trailing_id(&v).unwrap_or(0)))
        .collect()
}

/// A page of a model's version ids by precedence, newest first unless `oldest_first`.
pub fn page(
    meta: &dyn MetaStore,
    model_id: u64,
    oldest_first: bool,
    seek: &Seek,
    take: usize,
) -> Result<(Vec<u64>, Option<Vec<u8>>), StoreError> {
    super::page_ids(
        meta,
        Table::VersionsByPrecedence,
        &id_key(model_id),
        !oldest_first,
        seek,
        take,
        super::IdIn::Value,
    )
}

/// A model's version ids by sequence number (MLflow's version number).
pub fn ids_by_seq<'a>(
    meta: &'a dyn MetaStore,
    model_id: u64,
    descending: bool,
) -> impl Iterator<Item = Result<u64, StoreError>> + 'a {
    let prefix = id_key(model_id);
    let iter = if descending {
        meta.scan_rev(Table::VersionsBySeq, &prefix)
    } else {
        meta.scan(Table::VersionsBySeq, &prefix)
    };
    iter.map(|entry| entry.map(|(_, v)| super::trailing_id(&v).unwrap_or(0)))
}

/// Whether a cursor is a key of a model's version order.
pub fn cursor_fits(model_id: u64, cursor: &[u8]) -> bool {
    cursor.starts_with(&id_key(model_id))
}

/// Every version id of a model (for deleting it), in precedence order.
pub fn ids_of(meta: &dyn MetaStore, model_id: u64) -> Result<Vec<u64>, StoreError> {
    super::all_ids(
        meta,
        Table::VersionsByPrecedence,
        &id_key(model_id),
        super::IdIn::Value,
    )
}

/// Versions whose string starts with `prefix`, by string (the UI's version filter).
pub fn ids_with_prefix(
    meta: &dyn MetaStore,
    model_id: u64,
    prefix: &str,
    seek: &Seek,
    take: usize,
) -> Result<(Vec<u64>, Option<Vec<u8>>), StoreError> {
    let mut scan_prefix = id_key(model_id);
    scan_prefix.extend_from_slice(prefix.as_bytes());
    super::page_ids(
        meta,
        Table::VersionsByModel,
        &scan_prefix,
        false,
        seek,
        take,
        super::IdIn::Value,
    )
}

/// How many entries a resolution may walk past before giving up: prereleases that a
/// prerelease-naming requirement does not admit are the only entries it steps over.
const RESOLVE_WALK_LIMIT: usize = 10_000;

/// The highest version matching `requirement`: a seek to the requirement's upper bound in the
/// precedence index, then a walk down to the first match, stopping below its lower bound.
pub fn resolve(
    meta: &dyn MetaStore,
    model_id: u64,
    requirement: &Requirement,
) -> Result<Option<ModelVersion>, StoreError> {
    let (mut found, _) = ids_matching(meta, model_id, requirement, 0, 1)?;
    Ok(found.pop())
}

/// A model's version strings in byte order, after `after` when given: at most `take`, read from
/// the keys of the by-string index alone (the OCI tag list); and whether more follow.
pub fn strings_after(
    meta: &dyn MetaStore,
    model_id: u64,
    after: Option<&str>,
    take: usize,
) -> Result<(Vec<String>, bool), StoreError> {
    let prefix = id_key(model_id);
    let seek = match after {
        Some(version) => Seek::After(string_key(model_id, version)),
        None => Seek::Offset(0),
    };
    let page = super::page(meta, Table::VersionsByModel, &prefix, false, &seek, take)?;
    let strings = page
        .entries
        .iter()
        .map(|(k, _)| {
            let rest = k
                .get(prefix.len()..k.len().saturating_sub(1))
                .unwrap_or_default();
            String::from_utf8_lossy(rest).into_owned()
        })
        .collect();
    Ok((strings, page.next.is_some()))
}

/// A page of the versions matching `requirement`, highest first: a seek to the requirement's
/// upper bound in the precedence index, a walk down that stops below its lower bound (or after
/// [`RESOLVE_WALK_LIMIT`] entries), skipping the first `skip` matches. Whether more follow.
pub fn ids_matching(
    meta: &dyn MetaStore,
    model_id: u64,
    requirement: &Requirement,
    skip: usize,
    take: usize,
) -> Result<(Vec<ModelVersion>, bool), StoreError> {
    let prefix = id_key(model_id);
    let (lower, upper) = requirement.bounds();
    let table = order_table(!requirement.admits_prereleases());
    let iter = match &upper {
        Some(bound) => {
            let mut after = prefix.clone();
            after.extend_from_slice(&triple_floor(bound.0, bound.1, bound.2));
            meta.scan_after(table, &prefix, &after, true)
        }
        None => meta.scan_rev(table, &prefix),
    };
    let floor = lower.map(|(major, minor, patch)| {
        let mut k = prefix.clone();
        k.extend_from_slice(&triple_floor(major, minor, patch));
        k
    });
    let mut matched = 0;
    let mut found = Vec::new();
    for entry in iter.take(RESOLVE_WALK_LIMIT) {
        let (k, id) = entry?;
        if floor.as_ref().is_some_and(|floor| &k < floor) {
            break;
        }
        let Some(version) = super::trailing_id(&id)
            .map(|id| get(meta, id))
            .transpose()?
            .flatten()
        else {
            continue;
        };
        if !Version::parse(&version.version).is_ok_and(|v| requirement.matches(&v)) {
            continue;
        }
        matched += 1;
        if matched <= skip {
            continue;
        }
        if found.len() == take {
            return Ok((found, true));
        }
        found.push(version);
    }
    Ok((found, false))
}
