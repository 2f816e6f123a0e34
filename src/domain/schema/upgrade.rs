//! The upgrade steps of the schema layer, run on start by `store::upgrade::run`.
//!
//! Version 1 (the first release) had per-kind tables with a few indexes. Version 2 adds the
//! ordered indexes, kept counts, parent revisions, the latest metric values and a model's latest
//! version. The upgrade keeps every record as it is and rebuilds every index from the records, in
//! batches of transactions; it is idempotent (it starts by clearing what it rebuilds), so a crash
//! half way is repaired by the next start. The version is recorded last. Version 3 indexes files
//! by sha256 (the OCI surface), version 4 versions by their source run (MLflow lineage), version 5
//! versions by last update (MLflow's default search order), version 6
//! files by content across projects (deploy by checksum).

use std::collections::HashMap;

use super::{
    candidates::Candidates,
    ci_tokens::CiTokens,
    deploy_tokens::DeployTokens,
    experiments::Experiments,
    files::Files,
    groups::{GroupMembers, Groups},
    logged_models::LoggedModels,
    members::Members,
    models::Models,
    packages::Packages,
    projects::Projects,
    tokens::Tokens,
    trusted_publishers::TrustedPublishers,
    users::Users,
    versions::Versions,
    Schema,
};
use crate::domain::ml_records::{Candidate, Model, ModelVersion};
use crate::store::meta::{
    MetaStore, StoreError, Table, TransactError, TxFail, Txn, TxnExt, RETIRED_TABLES,
};
use crate::store::upgrade::{Progress, Step};

/// The steps from the first release's layout to this one's, run by `store::upgrade::run`.
pub const STEPS: &[Step] = &[
    Step {
        name: "ordered indexes, kept counts, latest metric values and models' latest versions",
        run: rebuild_step,
    },
    Step {
        name: "files by content digest (for the OCI surface)",
        run: files_by_sha256_step,
    },
    Step {
        name: "versions by the run they were registered from",
        run: versions_by_source_run_step,
    },
    Step {
        name: "versions by last update (MLflow's search order)",
        run: versions_by_updated_step,
    },
    Step {
        name: "files by content across projects (deploy by checksum)",
        run: files_by_content_step,
    },
];

/// How many records one upgrade transaction rebuilds.
const BATCH: usize = 500;

/// The tables the upgrade empties and rebuilds from the records.
const DERIVED: [Table; 57] = [
    Table::UsersByName,
    Table::TokensByHash,
    Table::TokensByUser,
    Table::ProjectsByPath,
    Table::MembersByUser,
    Table::PackagesByName,
    Table::PackagesByProject,
    Table::PackagesByCreated,
    Table::PackagesByNameOrder,
    Table::PackagesByVersionOrder,
    Table::FilesByPackage,
    Table::FileHeads,
    Table::ModelsByName,
    Table::ModelsByCreated,
    Table::ModelsByUpdated,
    Table::VersionsByModel,
    Table::VersionsByPrecedence,
    Table::ReleasesByPrecedence,
    Table::VersionsBySeq,
    Table::VersionsByStage,
    Table::ExperimentsByName,
    Table::ExperimentsByProject,
    Table::CandidatesByRunId,
    Table::CandidatesByExperiment,
    Table::CandidatesByIid,
    Table::CandidatesByStart,
    Table::CandidatesByName,
    Table::LatestMetrics,
    Table::MetricsByValue,
    Table::ParamsByValue,
    Table::Counts,
    Table::Revisions,
    Table::LoggedModelsByKey,
    Table::LoggedModelsByExperiment,
    Table::FilesBySha256,
    Table::OciManifestsByTag,
    Table::OciReferrers,
    Table::GroupsByPath,
    Table::GroupMembersByUser,
    Table::DeployTokensByHash,
    Table::DeployTokensByProject,
    Table::TrustedPublishersByProject,
    Table::CiTokensByHash,
    Table::CiTokensByExpiry,
    Table::VersionsBySourceRun,
    Table::VersionsByUpdated,
    Table::ProjectVersionsByUpdated,
    Table::HooksByProject,
    Table::ProjectHooks,
    Table::DeliveriesPending,
    Table::FilesByContent,
    Table::AuditByTime,
    Table::AuditByProject,
    Table::AuditByAuthor,
    Table::AuditByType,
    Table::VersionsByManifest,
    Table::ResumableUploadsByExpiry,
];

fn transact(
    meta: &dyn MetaStore,
    mut body: impl FnMut(&dyn Txn) -> Result<(), TxFail>,
) -> Result<(), StoreError> {
    match meta.transact(&mut body) {
        Ok(()) => Ok(()),
        Err(TransactError::Store(error)) => Err(error),
        Err(TransactError::Aborted) => {
            Err(StoreError::Engine("upgrade transaction aborted".into()))
        }
    }
}

/// Version 3 indexes every file by `(project, sha256)`: the OCI surface finds a repository's
/// blobs through it. Idempotent: it clears the index first.
fn files_by_sha256_step(meta: &dyn MetaStore, progress: &mut Progress) -> Result<(), StoreError> {
    file_index_step(meta, progress, Table::FilesBySha256)
}

/// Version 6 indexes every file by `(sha256, project)`: deploy by checksum finds content the
/// caller can read in another project through it. Idempotent like version 3.
fn files_by_content_step(meta: &dyn MetaStore, progress: &mut Progress) -> Result<(), StoreError> {
    file_index_step(meta, progress, Table::FilesByContent)
}

/// Rebuilds one index of the files (`FilesBySha256` or `FilesByContent`) from their records.
fn file_index_step(
    meta: &dyn MetaStore,
    progress: &mut Progress,
    table: Table,
) -> Result<(), StoreError> {
    meta.clear(table)?;
    let mut batch: Vec<crate::domain::records::PackageFile> = Vec::with_capacity(BATCH);
    let mut done = 0u64;
    let write = |batch: &mut Vec<crate::domain::records::PackageFile>| {
        if batch.is_empty() {
            return Ok(());
        }
        let result = transact(meta, |tx| {
            for file in batch.iter() {
                super::files::put_index_entry(tx, table, file)?;
            }
            Ok(())
        });
        batch.clear();
        result
    };
    for file in meta.scan_json(Table::PackageFiles, &[]) {
        batch.push(file?);
        done += 1;
        if batch.len() == BATCH {
            write(&mut batch)?;
            progress.advance(BATCH as u64);
        }
    }
    let rest = batch.len() as u64;
    write(&mut batch)?;
    progress.advance(rest);
    tracing::info!(files = done, table = table.name(), "files indexed");
    Ok(())
}

/// Version 4: versions are found by the run they were registered from (the run page's
/// lineage).
fn versions_by_source_run_step(
    meta: &dyn MetaStore,
    progress: &mut Progress,
) -> Result<(), StoreError> {
    index_versions(meta, progress, |version| {
        vec![(
            Table::VersionsBySourceRun,
            super::versions::source_run_entry(version),
        )]
    })
}

/// Version 5: versions by last update, per model and per project (MLflow's search order).
fn versions_by_updated_step(
    meta: &dyn MetaStore,
    progress: &mut Progress,
) -> Result<(), StoreError> {
    index_versions(meta, progress, |version| {
        super::versions::updated_entries(version).to_vec()
    })
}

/// Writes the index entries `entries` gives for every version already there, in batches;
/// idempotent (an entry is a function of its version).
fn index_versions(
    meta: &dyn MetaStore,
    progress: &mut Progress,
    entries: impl Fn(&ModelVersion) -> Vec<(Table, Option<super::IndexEntry>)>,
) -> Result<(), StoreError> {
    let mut batch: Vec<ModelVersion> = Vec::with_capacity(BATCH);
    let flush = |batch: &mut Vec<ModelVersion>| -> Result<(), StoreError> {
        transact(meta, |tx| {
            for version in batch.iter() {
                for (table, entry) in entries(version) {
                    if let Some((key, value)) = entry {
                        tx.put(table, &key, &value)?;
                    }
                }
            }
            Ok(())
        })?;
        batch.clear();
        Ok(())
    };
    for version in meta.scan_json::<ModelVersion>(Table::Versions, &[]) {
        batch.push(version?);
        if batch.len() == BATCH {
            progress.advance(batch.len() as u64);
            flush(&mut batch)?;
        }
    }
    progress.advance(batch.len() as u64);
    flush(&mut batch)
}

fn rebuild_step(meta: &dyn MetaStore, progress: &mut Progress) -> Result<(), StoreError> {
    let records = rebuild(meta)?;
    progress.advance(records as u64);
    Ok(())
}

/// Writes a record's index entries and counts as if it had just been created.
fn reindex<S: Schema>(tx: &dyn Txn, record: &S::Record) -> Result<(), TxFail> {
    S::updated(tx, None, Some(record))
}

/// Rebuilds the indexes of one kind from its records, in batches; returns how many.
fn rebuild_kind<S: Schema>(meta: &dyn MetaStore) -> Result<usize, StoreError>
where
    S::Record: Clone,
{
    let mut done = 0;
    let mut batch: Vec<S::Record> = Vec::with_capacity(BATCH);
    let flush = |batch: &mut Vec<S::Record>| -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        transact(meta, |tx| {
            for record in batch.iter() {
                reindex::<S>(tx, record)?;
            }
            Ok(())
        })?;
        batch.clear();
        Ok(())
    };
    for record in meta.scan_json::<S::Record>(S::TABLE, &[]) {
        batch.push(record?);
        done += 1;
        if batch.len() == BATCH {
            flush(&mut batch)?;
        }
    }
    flush(&mut batch)?;
    tracing::info!(table = S::TABLE.name(), records = done, "indexes rebuilt");
    Ok(done)
}

fn rebuild(meta: &dyn MetaStore) -> Result<usize, StoreError> {
    for name in RETIRED_TABLES {
        meta.drop_retired(name)?;
    }
    for table in DERIVED {
        meta.clear(table)?;
    }
    let mut records = 0;
    records += rebuild_kind::<Users>(meta)?;
    records += rebuild_kind::<Tokens>(meta)?;
    records += rebuild_kind::<Projects>(meta)?;
    records += rebuild_kind::<Members>(meta)?;
    records += rebuild_kind::<Packages>(meta)?;
    records += rebuild_kind::<Files>(meta)?;
    records += rebuild_kind::<Versions>(meta)?;
    records += rebuild_models(meta)?;
    records += rebuild_kind::<Experiments>(meta)?;
    records += rebuild_kind::<Candidates>(meta)?;
    records += rebuild_kind::<LoggedModels>(meta)?;
    records += convert_metric_rows(meta)?;
    records += rebuild_kind::<super::oci_manifests::OciManifests>(meta)?;
    records += rebuild_kind::<Groups>(meta)?;
    records += rebuild_kind::<GroupMembers>(meta)?;
    records += rebuild_kind::<DeployTokens>(meta)?;
    records += rebuild_kind::<TrustedPublishers>(meta)?;
    records += rebuild_kind::<CiTokens>(meta)?;
    records += rebuild_kind::<super::hooks::Hooks>(meta)?;
    records += rebuild_kind::<super::outbox::Deliveries>(meta)?;
    records += rebuild_kind::<super::alias_moves::AliasMoves>(meta)?;
    records += rebuild_kind::<super::audit_events::AuditEvents>(meta)?;
    records += rebuild_kind::<super::resumable_uploads::ResumableUploads>(meta)?;
    records += rebuild_latest_metrics(meta)?;
    records += rebuild_params_by_value(meta)?;
    Ok(records)
}

/// Models, with the latest version and latest release their versions' indexes now give.
fn rebuild_models(meta: &dyn MetaStore) -> Result<usize, StoreError> {
    let models: Vec<Model> = meta
        .scan_json::<Model>(Table::Models, &[])
        .collect::<Result<_, _>>()?;
    for chunk in models.chunks(BATCH) {
        let mut updated = Vec::with_capacity(chunk.len());
        for model in chunk {
            let highest = |releases_only: bool| -> Result<Option<String>, StoreError> {
                Ok(
                    super::versions::highest(meta, model.id, releases_only, None)?
                        .map(|v: ModelVersion| v.version),
                )
            };
            updated.push(Model {
                latest_version: highest(false)?,
                latest_release: highest(true)?,
                ..model.clone()
            });
        }
        transact(meta, |tx| {
            for model in &updated {
                tx.put_json(Table::Models, &super::id_key(model.id), model)?;
                reindex::<Models>(tx, model)?;
            }
            Ok(())
        })?;
    }
    tracing::info!(records = models.len(), "models' latest versions recorded");
    Ok(models.len())
}

/// Every param in its experiment's by-value index.
fn rebuild_params_by_value(meta: &dyn MetaStore) -> Result<usize, StoreError> {
    let mut runs: HashMap<u64, Option<super::params::Run>> = HashMap::new();
    let mut pending = Vec::with_capacity(BATCH);
    let mut done = 0;
    let write = |pending: &mut Vec<(super::params::Run, crate::domain::ml_records::KeyValue)>| {
        let result = transact(meta, |tx| {
            for (run, param) in pending.iter() {
                super::params::reindex(tx, *run, param)?;
            }
            Ok(())
        });
        pending.clear();
        result
    };
    for row in super::params::all_rows(meta) {
        let (candidate_id, param) = row?;
        let run = match runs.get(&candidate_id) {
            Some(run) => *run,
            None => {
                let run = super::get::<Candidates>(meta, &super::id_key(candidate_id))?.map(
                    |c: Candidate| super::params::Run {
                        candidate_id,
                        experiment_id: c.experiment_id,
                        start_time: c.start_time,
                    },
                );
                runs.insert(candidate_id, run);
                run
            }
        };
        if let Some(run) = run {
            pending.push((run, param));
            done += 1;
            if pending.len() == BATCH {
                write(&mut pending)?;
            }
        }
    }
    write(&mut pending)?;
    tracing::info!(params = done, "params indexed by value");
    Ok(done)
}

/// The first release kept one row per metric point: those become chunks (a transaction per
/// chunk, each removing the rows it converts, so an interrupted upgrade resumes).
fn convert_metric_rows(meta: &dyn MetaStore) -> Result<usize, StoreError> {
    let moved = super::metric_history::convert_point_rows(
        meta,
        1000,
        |body| transact(meta, body),
        || meta.next_id(),
    )?;
    if moved > 0 {
        tracing::info!(points = moved, "metric histories stored in chunks");
    }
    Ok(moved)
}

/// The latest value, the count and the by-value entry of every metric of every run, from the
/// histories' chunks.
fn rebuild_latest_metrics(meta: &dyn MetaStore) -> Result<usize, StoreError> {
    let mut experiments: HashMap<u64, Option<u64>> = HashMap::new();
    let metrics = super::metric_history::all_metrics(meta)?;
    let mut pending = Vec::with_capacity(BATCH);
    let write = |pending: &mut Vec<(
        super::metrics::Run,
        String,
        usize,
        crate::domain::ml_records::MetricPoint,
    )>| {
        let result = transact(meta, |tx| {
            for (run, name, count, latest) in pending.iter() {
                super::metrics::reindex(tx, *run, name, *count, latest)?;
            }
            Ok(())
        });
        pending.clear();
        result
    };
    for (candidate_id, name) in &metrics {
        let experiment_id = match experiments.get(candidate_id) {
            Some(known) => *known,
            None => {
                let found = super::get::<Candidates>(meta, &super::id_key(*candidate_id))?
                    .map(|c: Candidate| c.experiment_id);
                experiments.insert(*candidate_id, found);
                found
            }
        };
        let Some(experiment_id) = experiment_id else {
            continue;
        };
        let (latest, count) = super::metric_history::last_and_count(meta, *candidate_id, name)?;
        if let Some(latest) = latest {
            let run = super::metrics::Run {
                candidate_id: *candidate_id,
                experiment_id,
            };
            pending.push((run, name.clone(), count, latest));
            if pending.len() == BATCH {
                write(&mut pending)?;
            }
        }
    }
    write(&mut pending)?;
    tracing::info!(metrics = metrics.len(), "latest metric values recorded");
    Ok(metrics.len())
}
