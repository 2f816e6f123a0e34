//! Experiments and their candidates (MLflow's runs): params, metrics with full history, tags,
//! lifecycle, and the CI link kept from `gitlab.CI_*` tags.

use super::access::{Action, Caller};
use super::ci;
use super::error::{Error, Result};
use super::ml_records::{
    Candidate, Experiment, KeyValue, Lifecycle, MetricPoint, RunStatus, TagOwner,
};
use super::paging::{Page, PageRequest};
use super::projects::ProjectAccess;
use super::records::{now, Package, PackageFile, PackageType};
use super::Registry;
use crate::store::keys::{self, Key};
use crate::store::meta::{abort, Table, TxError, TxFail, Txn, TxnExt};

pub const MAX_NAME: usize = 255;
pub const MAX_PARAM_KEY: usize = 250;
pub const MAX_PARAM_VALUE: usize = 6000;
pub const MAX_TAG_KEY: usize = 250;
pub const MAX_TAG_VALUE: usize = 8000;
pub const MAX_METRIC_KEY: usize = 250;

/// The prefix of a model's default experiment.
pub const MODEL_EXPERIMENT_PREFIX: &str = "[model]";

#[derive(Debug, Clone, Default)]
pub struct NewCandidate {
    pub name: Option<String>,
    /// Milliseconds since the epoch; now when absent.
    pub start_time: Option<i64>,
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Clone, Default)]
pub struct CandidateChanges {
    pub name: Option<String>,
    pub status: Option<RunStatus>,
    pub end_time: Option<i64>,
}

/// Everything logged to a candidate in one call; written in one transaction and one flush.
#[derive(Debug, Clone, Default)]
pub struct LogBatch {
    pub metrics: Vec<MetricPoint>,
    pub params: Vec<KeyValue>,
    pub tags: Vec<KeyValue>,
}

pub fn now_ms() -> i64 {
    now().timestamp_millis()
}

fn new_run_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

pub(crate) fn experiment_name_key(project_id: u64, name: &str) -> Vec<u8> {
    Key::new().id(project_id).str(name).build()
}

fn param_key(candidate_id: u64, key: &str) -> Vec<u8> {
    Key::new().id(candidate_id).str(key).build()
}

fn tag_key(owner: TagOwner, key: &str) -> Vec<u8> {
    Key::new().raw(&owner.key_prefix()).str(key).build()
}

/// An i64 as bytes whose order is the numbers' order.
fn sortable(n: i64) -> [u8; 8] {
    ((n as u64) ^ (1 << 63)).to_be_bytes()
}

/// A metric row's key: candidate, metric name, then step, timestamp and value bits, so that a
/// history scans in step order and logging the same point twice is idempotent (MLflow's rule).
fn metric_key(candidate_id: u64, point: &MetricPoint) -> Vec<u8> {
    Key::new()
        .id(candidate_id)
        .str(&point.key)
        .raw(&sortable(point.step))
        .raw(&sortable(point.timestamp))
        .raw(&point.value.to_bits().to_be_bytes())
        .build()
}

/// A metric row: value bits, timestamp and step, 24 bytes (NaN and infinities survive).
fn encode_metric(point: &MetricPoint) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[..8].copy_from_slice(&point.value.to_bits().to_be_bytes());
    out[8..16].copy_from_slice(&point.timestamp.to_be_bytes());
    out[16..].copy_from_slice(&point.step.to_be_bytes());
    out
}

fn decode_metric(key: &[u8], value: &[u8]) -> Option<MetricPoint> {
    let name_end = key.get(8..)?.iter().position(|b| *b == 0)? + 8;
    let name = String::from_utf8(key[8..name_end].to_vec()).ok()?;
    let field =
        |range: std::ops::Range<usize>| -> Option<[u8; 8]> { value.get(range)?.try_into().ok() };
    Some(MetricPoint {
        key: name,
        value: f64::from_bits(u64::from_be_bytes(field(0..8)?)),
        timestamp: i64::from_be_bytes(field(8..16)?),
        step: i64::from_be_bytes(field(16..24)?),
    })
}

/// The key prefix of one metric's rows.
fn metric_prefix(candidate_id: u64, key: &str) -> Vec<u8> {
    Key::new().id(candidate_id).str(key).build()
}

fn bad_metric_row() -> Error {
    Error::Store(crate::store::meta::StoreError::Decode {
        table: Table::Metrics.name(),
        reason: "bad metric row".into(),
    })
}

fn decoded_metric(key: &[u8], value: &[u8]) -> Result<MetricPoint> {
    decode_metric(key, value).ok_or_else(bad_metric_row)
}

fn check_len(what: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(Error::bad(format!(
            "{what} is too long: at most {max} characters"
        )));
    }
    Ok(())
}

pub fn validate_tag(tag: &KeyValue) -> Result<()> {
    if tag.key.is_empty() {
        return Err(Error::bad("tag key must not be empty"));
    }
    check_len("tag key", &tag.key, MAX_TAG_KEY)?;
    check_len("tag value", &tag.value, MAX_TAG_VALUE)
}

/// The checks a batch must pass before anything of it is written.
pub fn validate_batch(batch: &LogBatch) -> Result<()> {
    for param in &batch.params {
        if param.key.is_empty() {
            return Err(Error::bad("param key must not be empty"));
        }
        check_len("param key", &param.key, MAX_PARAM_KEY)?;
        check_len("param value", &param.value, MAX_PARAM_VALUE)?;
    }
    for metric in &batch.metrics {
        if metric.key.is_empty() {
            return Err(Error::bad("metric key must not be empty"));
        }
        check_len("metric key", &metric.key, MAX_METRIC_KEY)?;
    }
    for (i, a) in batch.params.iter().enumerate() {
        if batch.params[..i]
            .iter()
            .any(|b| b.key == a.key && b.value != a.value)
        {
            return Err(Error::bad(format!(
                "Duplicate parameter keys have been submitted: '{}' with different values",
                a.key
            )));
        }
    }
    batch.tags.iter().try_for_each(validate_tag)
}

/// Increments a per-project counter inside a transaction; returns the new value.
pub(crate) fn bump_counter(tx: &dyn Txn, project_id: u64, name: &str) -> Result<u64, TxFail> {
    let key = Key::new().id(project_id).str(name).build();
    let next = tx
        .get(Table::Counters, &key)?
        .and_then(|v| keys::last_id(&v))
        .unwrap_or(0)
        + 1;
    tx.put(Table::Counters, &key, &keys::id(next))?;
    Ok(next)
}

/// Writes an experiment and its indexes.
pub(crate) fn put_experiment(tx: &dyn Txn, experiment: &Experiment) -> Result<(), TxFail> {
    tx.put_json(Table::Experiments, &keys::id(experiment.id), experiment)?;
    tx.put(
        Table::ExperimentsByName,
        &experiment_name_key(experiment.project_id, &experiment.name),
        &keys::id(experiment.id),
    )?;
    tx.put(
        Table::ExperimentsByProject,
        &Key::new()
            .id(experiment.project_id)
            .id(experiment.iid)
            .build(),
        &keys::id(experiment.id),
    )
}

pub(crate) fn put_tags(tx: &dyn Txn, owner: TagOwner, tags: &[KeyValue]) -> Result<(), TxFail> {
    for tag in tags {
        tx.put(Table::Tags, &tag_key(owner, &tag.key), tag.value.as_bytes())?;
    }
    Ok(())
}

/// Writes a new candidate and its indexes.
pub(crate) fn put_new_candidate(
    tx: &dyn Txn,
    candidate: &Candidate,
    tags: &[KeyValue],
) -> Result<(), TxFail> {
    tx.put_json(Table::Candidates, &keys::id(candidate.id), candidate)?;
    tx.put(
        Table::CandidatesByRunId,
        &Key::new().str(&candidate.run_id).build(),
        &keys::id(candidate.id),
    )?;
    tx.put(
        Table::CandidatesByIid,
        &Key::new()
            .id(candidate.project_id)
            .id(candidate.iid)
            .build(),
        &keys::id(candidate.id),
    )?;
    tx.put(
        Table::CandidatesByExperiment,
        &Key::new()
            .id(candidate.experiment_id)
            .id(candidate.id)
            .build(),
        &[],
    )?;
    put_tags(tx, TagOwner::Candidate(candidate.id), tags)
}

/// Builds a candidate record; the caller writes it in its transaction.
pub(crate) fn candidate_record(
    id: u64,
    iid: u64,
    experiment: &Experiment,
    user_id: Option<u64>,
    new: &NewCandidate,
) -> Candidate {
    let tag_name = new
        .tags
        .iter()
        .find(|t| t.key == "mlflow.runName")
        .map(|t| t.value.clone());
    Candidate {
        id,
        project_id: experiment.project_id,
        iid,
        run_id: new_run_id(),
        experiment_id: experiment.id,
        name: new
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .or(tag_name)
            .unwrap_or_else(|| format!("candidate-{iid}")),
        status: RunStatus::Running,
        start_time: new.start_time.unwrap_or_else(now_ms),
        end_time: None,
        user_id,
        lifecycle: Lifecycle::Active,
        model_version_id: None,
        ci: ci::from_tags(new.tags.iter().map(|t| (t.key.as_str(), t.value.as_str()))),
        created_at: now(),
    }
}

/// The keys a candidate owns, read before the transaction that removes them.
pub(crate) struct CandidateContents {
    pub candidate: Candidate,
    params: Vec<Vec<u8>>,
    metrics: Vec<Vec<u8>>,
    tags: Vec<Vec<u8>>,
    package: Option<(Package, Vec<PackageFile>)>,
}

impl Registry {
    pub(crate) fn candidate_contents(
        &self,
        candidate: Candidate,
        with_package: bool,
    ) -> Result<CandidateContents> {
        let keys_of = |table: Table, prefix: &[u8]| -> Result<Vec<Vec<u8>>> {
            Ok(self
                .meta
                .scan_keys(table, prefix)
                .collect::<Result<_, _>>()?)
        };
        let params = keys_of(Table::Params, &keys::id(candidate.id))?;
        let metrics = keys_of(Table::Metrics, &keys::id(candidate.id))?;
        let tags = keys_of(Table::Tags, &TagOwner::Candidate(candidate.id).key_prefix())?;
        let package = if with_package {
            match self.candidate_package(&candidate) {
                Ok(package) => {
                    let files = self.package_files(package.id)?;
                    Some((package, files))
                }
                Err(Error::NotFound(_)) => None,
                Err(other) => return Err(other),
            }
        } else {
            None
        };
        Ok(CandidateContents {
            candidate,
            params,
            metrics,
            tags,
            package,
        })
    }

    pub fn create_experiment(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        name: &str,
        tags: &[KeyValue],
    ) -> Result<Experiment> {
        access.check(caller, Action::WriteRegistry)?;
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::bad("experiment name must not be empty"));
        }
        check_len("experiment name", name, MAX_NAME)?;
        if name.starts_with(MODEL_EXPERIMENT_PREFIX) {
            return Err(Error::bad(
                "experiment names starting with [model] are reserved for models",
            ));
        }
        tags.iter().try_for_each(validate_tag)?;
        let id = self.new_id()?;
        let project_id = access.project.id;
        let experiment = self.meta.transaction(|tx| {
            if tx.exists(
                Table::ExperimentsByName,
                &experiment_name_key(project_id, name),
            )? {
                return abort(Error::AlreadyExists(format!(
                    "Experiment '{name}' already exists"
                )));
            }
            let experiment = Experiment {
                id,
                project_id,
                iid: bump_counter(tx, project_id, "experiment_iid")?,
                name: name.to_string(),
                model_id: None,
                creator_id: caller.user_id(),
                lifecycle: Lifecycle::Active,
                created_at: now(),
                updated_at: now(),
            };
            put_experiment(tx, &experiment)?;
            put_tags(tx, TagOwner::Experiment(id), tags)?;
            Ok(experiment)
        })?;
        Ok(experiment)
    }

    pub fn experiment(&self, id: u64) -> Result<Experiment> {
        self.meta
            .get_json(Table::Experiments, &keys::id(id))?
            .ok_or(Error::NotFound("Experiment"))
    }

    pub fn experiment_by_iid(&self, project_id: u64, iid: u64) -> Result<Experiment> {
        let id = self
            .meta
            .get(
                Table::ExperimentsByProject,
                &Key::new().id(project_id).id(iid).build(),
            )?
            .ok_or(Error::NotFound("Experiment"))?;
        self.experiment(keys::last_id(&id).ok_or(Error::NotFound("Experiment"))?)
    }

    pub fn experiment_by_name(&self, project_id: u64, name: &str) -> Result<Experiment> {
        let id = self
            .meta
            .get(
                Table::ExperimentsByName,
                &experiment_name_key(project_id, name),
            )?
            .ok_or(Error::NotFound("Experiment"))?;
        self.experiment(keys::last_id(&id).ok_or(Error::NotFound("Experiment"))?)
    }

    /// A project's experiments in creation order.
    pub fn experiments(&self, project_id: u64) -> Result<Vec<Experiment>> {
        self.meta
            .scan(Table::ExperimentsByProject, &keys::id(project_id))
            .map(|entry| {
                let (_, id) = entry?;
                self.experiment(keys::last_id(&id).ok_or(Error::NotFound("Experiment"))?)
            })
            .collect()
    }

    fn project_experiment(&self, access: &ProjectAccess, id: u64) -> Result<Experiment> {
        let experiment = self.experiment(id)?;
        if experiment.project_id != access.project.id {
            return Err(Error::NotFound("Experiment"));
        }
        Ok(experiment)
    }

    pub fn rename_experiment(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        experiment_id: u64,
        new_name: &str,
    ) -> Result<Experiment> {
        access.check(caller, Action::WriteRegistry)?;
        let experiment = self.project_experiment(access, experiment_id)?;
        if experiment.model_id.is_some() {
            return Err(Error::bad(
                "Cannot rename an experiment associated to a model",
            ));
        }
        let new_name = new_name.trim();
        if new_name.is_empty() || new_name.starts_with(MODEL_EXPERIMENT_PREFIX) {
            return Err(Error::bad("experiment name is invalid"));
        }
        check_len("experiment name", new_name, MAX_NAME)?;
        self.meta.transaction(|tx| {
            let new_key = experiment_name_key(experiment.project_id, new_name);
            if new_name != experiment.name && tx.exists(Table::ExperimentsByName, &new_key)? {
                return abort(Error::AlreadyExists(format!(
                    "Experiment '{new_name}' already exists"
                )));
            }
            tx.delete(
                Table::ExperimentsByName,
                &experiment_name_key(experiment.project_id, &experiment.name),
            )?;
            let renamed = Experiment {
                name: new_name.to_string(),
                updated_at: now(),
                ..experiment.clone()
            };
            put_experiment(tx, &renamed)?;
            Ok(renamed)
        })
    }

    /// MLflow's soft delete and restore. A model's experiment cannot be deleted on its own.
    pub fn set_experiment_lifecycle(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        experiment_id: u64,
        lifecycle: Lifecycle,
    ) -> Result<Experiment> {
        access.check(caller, Action::WriteRegistry)?;
        let experiment = self.project_experiment(access, experiment_id)?;
        if experiment.model_id.is_some() && lifecycle == Lifecycle::Deleted {
            return Err(Error::bad(
                "Cannot delete an experiment associated to a model",
            ));
        }
        let updated = Experiment {
            lifecycle,
            updated_at: now(),
            ..experiment
        };
        self.meta.transaction(|tx| -> Result<(), TxError<Error>> {
            tx.put_json(Table::Experiments, &keys::id(updated.id), &updated)?;
            Ok(())
        })?;
        Ok(updated)
    }

    /// Deletes an experiment with all its candidates, their data and artifacts.
    pub fn delete_experiment(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        experiment_id: u64,
    ) -> Result<()> {
        access.check(caller, Action::WriteRegistry)?;
        let experiment = self.project_experiment(access, experiment_id)?;
        if experiment.model_id.is_some() {
            return Err(Error::bad(
                "Cannot delete an experiment associated to a model",
            ));
        }
        let contents = self
            .candidates_of(experiment.id)?
            .into_iter()
            .map(|c| self.candidate_contents(c, true))
            .collect::<Result<Vec<_>>>()?;
        let tags = self
            .meta
            .scan_keys(
                Table::Tags,
                &TagOwner::Experiment(experiment.id).key_prefix(),
            )
            .collect::<Result<Vec<_>, _>>()?;
        self.meta.transaction(|tx| {
            for c in &contents {
                remove_candidate_in(tx, c)?;
            }
            remove_experiment_in(tx, &experiment, &tags)?;
            Ok(())
        })
    }

    pub fn create_candidate(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        experiment_id: u64,
        new: NewCandidate,
    ) -> Result<Candidate> {
        access.check(caller, Action::WriteRegistry)?;
        let experiment = self.project_experiment(access, experiment_id)?;
        if experiment.lifecycle == Lifecycle::Deleted {
            return Err(Error::bad(format!(
                "Experiment {} is deleted",
                experiment.iid
            )));
        }
        if let Some(name) = &new.name {
            check_len("run name", name, MAX_NAME)?;
        }
        new.tags.iter().try_for_each(validate_tag)?;
        let id = self.new_id()?;
        self.meta.transaction(|tx| {
            let iid = bump_counter(tx, experiment.project_id, "candidate_iid")?;
            let candidate = candidate_record(id, iid, &experiment, caller.user_id(), &new);
            put_new_candidate(tx, &candidate, &new.tags)?;
            Ok(candidate)
        })
    }

    pub fn candidate(&self, id: u64) -> Result<Candidate> {
        self.meta
            .get_json(Table::Candidates, &keys::id(id))?
            .ok_or(Error::NotFound("Candidate"))
    }

    pub fn candidate_by_run_id(&self, project_id: u64, run_id: &str) -> Result<Candidate> {
        let id = self
            .meta
            .get(Table::CandidatesByRunId, &Key::new().str(run_id).build())?
            .ok_or(Error::NotFound("Run"))?;
        let candidate = self.candidate(keys::last_id(&id).ok_or(Error::NotFound("Run"))?)?;
        if candidate.project_id != project_id {
            return Err(Error::NotFound("Run"));
        }
        Ok(candidate)
    }

    pub fn candidate_by_iid(&self, project_id: u64, iid: u64) -> Result<Candidate> {
        let id = self
            .meta
            .get(
                Table::CandidatesByIid,
                &Key::new().id(project_id).id(iid).build(),
            )?
            .ok_or(Error::NotFound("Candidate"))?;
        self.candidate(keys::last_id(&id).ok_or(Error::NotFound("Candidate"))?)
    }

    /// An experiment's candidates in creation order.
    pub fn candidates_of(&self, experiment_id: u64) -> Result<Vec<Candidate>> {
        self.meta
            .scan_keys(Table::CandidatesByExperiment, &keys::id(experiment_id))
            .map(|key| self.candidate(keys::last_id(&key?).ok_or(Error::NotFound("Candidate"))?))
            .collect()
    }

    fn project_candidate(&self, access: &ProjectAccess, id: u64) -> Result<Candidate> {
        let candidate = self.candidate(id)?;
        if candidate.project_id != access.project.id {
            return Err(Error::NotFound("Candidate"));
        }
        Ok(candidate)
    }

    pub fn update_candidate(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        candidate_id: u64,
        changes: CandidateChanges,
    ) -> Result<Candidate> {
        access.check(caller, Action::WriteRegistry)?;
        self.project_candidate(access, candidate_id)?;
        if let Some(name) = &changes.name {
            check_len("run name", name, MAX_NAME)?;
        }
        self.update_record(
            Table::Candidates,
            candidate_id,
            "Candidate",
            |candidate: &mut Candidate| {
                if let Some(name) = changes.name.clone().filter(|n| !n.is_empty()) {
                    candidate.name = name;
                }
                if let Some(status) = changes.status {
                    candidate.status = status;
                }
                if let Some(end_time) = changes.end_time {
                    candidate.end_time = Some(end_time);
                }
            },
        )
    }

    /// MLflow's soft delete and restore of a run.
    pub fn set_candidate_lifecycle(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        candidate_id: u64,
        lifecycle: Lifecycle,
    ) -> Result<Candidate> {
        access.check(caller, Action::WriteRegistry)?;
        let candidate = self.project_candidate(access, candidate_id)?;
        if candidate.model_version_id.is_some() && lifecycle == Lifecycle::Deleted {
            return Err(Error::bad(
                "Cannot delete a candidate associated to a model version",
            ));
        }
        let updated = Candidate {
            lifecycle,
            ..candidate
        };
        self.meta.transaction(|tx| -> Result<(), TxError<Error>> {
            tx.put_json(Table::Candidates, &keys::id(updated.id), &updated)?;
            Ok(())
        })?;
        Ok(updated)
    }

    /// Deletes a candidate with its params, metrics, tags and artifacts.
    pub fn delete_candidate(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        candidate_id: u64,
    ) -> Result<()> {
        access.check(caller, Action::WriteRegistry)?;
        let candidate = self.project_candidate(access, candidate_id)?;
        if candidate.model_version_id.is_some() {
            return Err(Error::bad(
                "Cannot delete a candidate associated to a model version",
            ));
        }
        let contents = self.candidate_contents(candidate, true)?;
        self.meta
            .transaction(|tx| remove_candidate_in(tx, &contents))
    }

    /// Logs params, metrics and tags to a candidate in one transaction, then one flush.
    pub async fn log_batch(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        candidate_id: u64,
        batch: LogBatch,
    ) -> Result<()> {
        access.check(caller, Action::WriteRegistry)?;
        let candidate = self.project_candidate(access, candidate_id)?;
        if candidate.lifecycle == Lifecycle::Deleted {
            return Err(Error::bad(format!(
                "The run {} must be in the 'active' state. Current state is deleted.",
                candidate.run_id
            )));
        }
        validate_batch(&batch)?;
        let run_id = candidate.run_id.clone();
        self.meta.transaction(|tx| {
            put_params(tx, candidate_id, &run_id, &batch.params)?;
            put_metrics(tx, candidate_id, &batch.metrics)?;
            if !batch.tags.is_empty() {
                put_tags(tx, TagOwner::Candidate(candidate_id), &batch.tags)?;
                let Some(mut current) =
                    tx.get_json::<Candidate>(Table::Candidates, &keys::id(candidate_id))?
                else {
                    return abort(Error::NotFound("Run"));
                };
                let mut ci = current.ci.clone().unwrap_or_default();
                let mut touched = false;
                for tag in &batch.tags {
                    touched |= ci::apply_tag(&mut ci, &tag.key, Some(&tag.value));
                    if tag.key == "mlflow.runName" && !tag.value.is_empty() {
                        current.name = tag.value.clone();
                        touched = true;
                    }
                }
                if touched {
                    current.ci = (!ci.is_empty()).then_some(ci);
                    tx.put_json(Table::Candidates, &keys::id(candidate_id), &current)?;
                }
            }
            Ok(())
        })?;
        self.persist().await
    }

    /// Params of a candidate, by key.
    pub fn params(&self, candidate_id: u64) -> Result<Vec<KeyValue>> {
        self.meta
            .scan(Table::Params, &keys::id(candidate_id))
            .map(|entry| {
                let (key, value) = entry?;
                Ok(KeyValue {
                    key: String::from_utf8_lossy(
                        key.get(8..key.len().saturating_sub(1)).unwrap_or_default(),
                    )
                    .into_owned(),
                    value: String::from_utf8_lossy(&value).into_owned(),
                })
            })
            .collect()
    }

    /// Every logged value, by metric key and then by step and timestamp; one key's only when given.
    pub fn metric_history(&self, candidate_id: u64, key: Option<&str>) -> Result<Vec<MetricPoint>> {
        let prefix = match key {
            Some(key) => Key::new().id(candidate_id).str(key).build(),
            None => keys::id(candidate_id),
        };
        self.meta
            .scan(Table::Metrics, &prefix)
            .map(|entry| {
                let (k, v) = entry?;
                decode_metric(&k, &v).ok_or_else(|| {
                    Error::Store(crate::store::meta::StoreError::Decode {
                        table: Table::Metrics.name(),
                        reason: "bad metric row".into(),
                    })
                })
            })
            .collect()
    }

    /// The latest value of each metric: highest step, then latest timestamp (the last row of
    /// each key, read from its end, so a long history is not read).
    pub fn latest_metrics(&self, candidate_id: u64) -> Result<Vec<MetricPoint>> {
        let mut latest = Vec::new();
        for key in self.metric_keys(candidate_id)? {
            let prefix = metric_prefix(candidate_id, &key);
            if let Some(entry) = self.meta.scan_rev(Table::Metrics, &prefix).next() {
                let (k, v) = entry?;
                latest.push(decoded_metric(&k, &v)?);
            }
        }
        Ok(latest)
    }

    /// The names of a candidate's metrics, in order. Each name costs one seek past its rows,
    /// however many values were logged.
    pub fn metric_keys(&self, candidate_id: u64) -> Result<Vec<String>> {
        let prefix = keys::id(candidate_id);
        let mut names = Vec::new();
        let mut start = prefix.clone();
        while let Some(entry) = self.meta.scan_from(Table::Metrics, &prefix, &start).next() {
            let (key, _) = entry?;
            let name = key
                .get(8..)
                .and_then(|rest| rest.iter().position(|b| *b == 0))
                .and_then(|end| String::from_utf8(key[8..8 + end].to_vec()).ok())
                .ok_or_else(bad_metric_row)?;
            // The smallest key after every row of this name: names never hold NUL.
            start = Key::new()
                .id(candidate_id)
                .raw(name.as_bytes())
                .raw(&[1])
                .build();
            names.push(name);
        }
        Ok(names)
    }

    /// One page of one metric's history, by step then timestamp, with the number of values
    /// logged (that count reads the metric's keys, without decoding them).
    pub fn metric_history_page(
        &self,
        candidate_id: u64,
        key: &str,
        page: PageRequest,
    ) -> Result<Page<MetricPoint>> {
        let prefix = metric_prefix(candidate_id, key);
        let mut total = 0usize;
        for entry in self.meta.scan(Table::Metrics, &prefix) {
            entry?;
            total += 1;
        }
        let skip = (page.page - 1).saturating_mul(page.per_page);
        let items = self
            .meta
            .scan(Table::Metrics, &prefix)
            .skip(skip)
            .take(page.per_page)
            .map(|entry| {
                let (k, v) = entry?;
                decoded_metric(&k, &v)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page {
            items,
            total,
            request: page,
        })
    }

    /// The first `per_key` values of each metric, and the names of the metrics that have more:
    /// what a candidate's JSON carries, bounded whatever was logged.
    pub fn metric_history_preview(
        &self,
        candidate_id: u64,
        per_key: usize,
    ) -> Result<(Vec<MetricPoint>, Vec<String>)> {
        let mut points = Vec::new();
        let mut truncated = Vec::new();
        for key in self.metric_keys(candidate_id)? {
            let prefix = metric_prefix(candidate_id, &key);
            let mut rows = self.meta.scan(Table::Metrics, &prefix).take(per_key + 1);
            for entry in rows.by_ref().take(per_key) {
                let (k, v) = entry?;
                points.push(decoded_metric(&k, &v)?);
            }
            if rows.next().is_some() {
                truncated.push(key);
            }
        }
        Ok((points, truncated))
    }

    /// Each metric's history thinned to about `max_points` values spread evenly over its steps
    /// (then timestamps), always with its first and last: what a chart draws. A history of at
    /// most `max_points` values is read whole; a longer one is sampled by seeking, so at most
    /// about `2 * max_points` rows are read per metric however many were logged.
    pub fn metric_series(&self, candidate_id: u64, max_points: usize) -> Result<Vec<MetricPoint>> {
        let max_points = max_points.max(2);
        let mut out = Vec::new();
        for key in self.metric_keys(candidate_id)? {
            let prefix = metric_prefix(candidate_id, &key);
            let head: Vec<(Vec<u8>, Vec<u8>)> = self
                .meta
                .scan(Table::Metrics, &prefix)
                .take(max_points + 1)
                .collect::<Result<_, _>>()?;
            if head.len() <= max_points {
                for (k, v) in &head {
                    out.push(decoded_metric(k, v)?);
                }
                continue;
            }
            let Some(last) = self.meta.scan_rev(Table::Metrics, &prefix).next() else {
                continue;
            };
            let (last_key, last_value) = last?;
            let position = |key: &[u8]| -> u128 {
                let mut bytes = [0u8; 16];
                if let Some(order) = key.get(prefix.len()..prefix.len() + 16) {
                    bytes.copy_from_slice(order);
                }
                u128::from_be_bytes(bytes)
            };
            let first = position(&head[0].0);
            let span = position(&last_key).saturating_sub(first);
            let parts = (max_points - 1) as u128;
            let mut previous: Option<Vec<u8>> = None;
            for i in 0..parts {
                // first + span * i / parts, without overflowing.
                let target = first + span / parts * i + span % parts * i / parts;
                let start = Key::new().raw(&prefix).raw(&target.to_be_bytes()).build();
                let Some(entry) = self.meta.scan_from(Table::Metrics, &prefix, &start).next()
                else {
                    break;
                };
                let (k, v) = entry?;
                if previous.as_ref() == Some(&k) || k >= last_key {
                    continue;
                }
                out.push(decoded_metric(&k, &v)?);
                previous = Some(k);
            }
            out.push(decoded_metric(&last_key, &last_value)?);
        }
        Ok(out)
    }

    pub fn tags(&self, owner: TagOwner) -> Result<Vec<KeyValue>> {
        let prefix = owner.key_prefix();
        self.meta
            .scan(Table::Tags, &prefix)
            .map(|entry| {
                let (key, value) = entry?;
                let name = key
                    .get(prefix.len()..key.len().saturating_sub(1))
                    .unwrap_or_default();
                Ok(KeyValue {
                    key: String::from_utf8_lossy(name).into_owned(),
                    value: String::from_utf8_lossy(&value).into_owned(),
                })
            })
            .collect()
    }

    pub fn tag(&self, owner: TagOwner, key: &str) -> Result<Option<String>> {
        Ok(self
            .meta
            .get(Table::Tags, &tag_key(owner, key))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Sets tags of an experiment, model or version (candidates go through [`Self::log_batch`]).
    pub fn set_tags(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        owner: TagOwner,
        tags: &[KeyValue],
    ) -> Result<()> {
        access.check(caller, Action::WriteRegistry)?;
        self.check_tag_owner(access, owner)?;
        tags.iter().try_for_each(validate_tag)?;
        if let TagOwner::Candidate(id) = owner {
            return Err(Error::bad(format!(
                "tags of candidate {id} are logged with log_batch"
            )));
        }
        self.meta.transaction(|tx| {
            put_tags(tx, owner, tags)?;
            Ok(())
        })
    }

    /// Deletes one tag of anything that has tags; a `gitlab.CI_*` tag also clears its CI field.
    pub fn delete_tag(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        owner: TagOwner,
        key: &str,
    ) -> Result<()> {
        access.check(caller, Action::WriteRegistry)?;
        self.check_tag_owner(access, owner)?;
        let tag = tag_key(owner, key);
        self.meta.transaction(|tx| {
            if !tx.exists(Table::Tags, &tag)? {
                return abort(Error::NotFound("Tag"));
            }
            tx.delete(Table::Tags, &tag)?;
            if let TagOwner::Candidate(id) = owner {
                if let Some(mut candidate) =
                    tx.get_json::<Candidate>(Table::Candidates, &keys::id(id))?
                {
                    let mut ci = candidate.ci.clone().unwrap_or_default();
                    if ci::apply_tag(&mut ci, key, None) {
                        candidate.ci = (!ci.is_empty()).then_some(ci);
                        tx.put_json(Table::Candidates, &keys::id(id), &candidate)?;
                    }
                }
            }
            Ok(())
        })
    }

    fn check_tag_owner(&self, access: &ProjectAccess, owner: TagOwner) -> Result<()> {
        let project_id = match owner {
            TagOwner::Experiment(id) => self.experiment(id)?.project_id,
            TagOwner::Candidate(id) => self.candidate(id)?.project_id,
            TagOwner::Model(id) | TagOwner::ModelAlias(id) => self.model(id)?.project_id,
            TagOwner::Version(id) => self.version(id)?.project_id,
            TagOwner::LoggedModel(id) => self.logged_model(id)?.project_id,
        };
        if project_id != access.project.id {
            return Err(Error::NotFound("Tag owner"));
        }
        Ok(())
    }

    /// Where a candidate's artifacts are kept: its version's package, else
    /// `<model name or ml_experiment_<iid>>/candidate_<iid>`.
    pub fn candidate_package_name(&self, candidate: &Candidate) -> Result<(String, String)> {
        if let Some(version_id) = candidate.model_version_id {
            let version = self.version(version_id)?;
            let model = self.model(version.model_id)?;
            return Ok((model.name, version.version));
        }
        let experiment = self.experiment(candidate.experiment_id)?;
        let name = match experiment.model_id {
            Some(model_id) => self.model(model_id)?.name,
            None => format!("ml_experiment_{}", experiment.iid),
        };
        Ok((name, format!("candidate_{}", candidate.iid)))
    }

    pub fn candidate_package(&self, candidate: &Candidate) -> Result<Package> {
        let (name, version) = self.candidate_package_name(candidate)?;
        self.find_package(
            candidate.project_id,
            &super::packages::FileTarget {
                package_name: name,
                version,
                package_type: PackageType::MlModel,
                file_name: String::new(),
            },
        )
    }
}

/// Records params; a key logged before must keep its value.
pub(crate) fn put_params(
    tx: &dyn Txn,
    candidate_id: u64,
    run_id: &str,
    params: &[KeyValue],
) -> Result<(), TxError<Error>> {
    for param in params {
        let key = param_key(candidate_id, &param.key);
        match tx.get(Table::Params, &key)? {
            Some(old) if old != param.value.as_bytes() => {
                return abort(Error::bad(format!(
                    "Changing param values is not allowed. Param with key='{}' was already logged with value='{}' for run ID='{run_id}'. Attempted logging new value '{}'.",
                    param.key,
                    String::from_utf8_lossy(&old),
                    param.value
                )));
            }
            Some(_) => {}
            None => tx.put(Table::Params, &key, param.value.as_bytes())?,
        }
    }
    Ok(())
}

/// Records metric values; a point logged twice is kept once.
pub(crate) fn put_metrics(
    tx: &dyn Txn,
    candidate_id: u64,
    points: &[MetricPoint],
) -> Result<(), TxFail> {
    for point in points {
        tx.put(
            Table::Metrics,
            &metric_key(candidate_id, point),
            &encode_metric(point),
        )?;
    }
    Ok(())
}

/// Removes a candidate and everything it owns.
pub(crate) fn remove_candidate_in(
    tx: &dyn Txn,
    contents: &CandidateContents,
) -> Result<(), TxError<Error>> {
    let candidate = &contents.candidate;
    for key in contents.params.iter() {
        tx.delete(Table::Params, key)?;
    }
    for key in contents.metrics.iter() {
        tx.delete(Table::Metrics, key)?;
    }
    for key in contents.tags.iter() {
        tx.delete(Table::Tags, key)?;
    }
    if let Some((package, files)) = &contents.package {
        super::packages::remove_package_in(tx, package, files)?;
    }
    tx.delete(
        Table::CandidatesByRunId,
        &Key::new().str(&candidate.run_id).build(),
    )?;
    tx.delete(
        Table::CandidatesByIid,
        &Key::new()
            .id(candidate.project_id)
            .id(candidate.iid)
            .build(),
    )?;
    tx.delete(
        Table::CandidatesByExperiment,
        &Key::new()
            .id(candidate.experiment_id)
            .id(candidate.id)
            .build(),
    )?;
    tx.delete(Table::Candidates, &keys::id(candidate.id))?;
    Ok(())
}

pub(crate) fn remove_experiment_in(
    tx: &dyn Txn,
    experiment: &Experiment,
    tags: &[Vec<u8>],
) -> Result<(), TxFail> {
    for key in tags {
        tx.delete(Table::Tags, key)?;
    }
    tx.delete(
        Table::ExperimentsByName,
        &experiment_name_key(experiment.project_id, &experiment.name),
    )?;
    tx.delete(
        Table::ExperimentsByProject,
        &Key::new()
            .id(experiment.project_id)
            .id(experiment.iid)
            .build(),
    )?;
    tx.delete(Table::Experiments, &keys::id(experiment.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_rows_round_trip_non_finite_values() {
        for value in [1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0] {
            let point = MetricPoint {
                key: "loss".into(),
                value,
                timestamp: 1_700_000_000_000,
                step: -3,
            };
            let key = metric_key(9, &point);
            let back = decode_metric(&key, &encode_metric(&point)).unwrap();
            assert_eq!(back.key, "loss");
            assert_eq!(back.value.to_bits(), value.to_bits());
            assert_eq!((back.timestamp, back.step), (point.timestamp, point.step));
        }
    }

    #[test]
    fn batches_refuse_conflicting_params_and_long_keys() {
        let kv = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: v.into(),
        };
        let ok = LogBatch {
            params: vec![kv("a", "1"), kv("a", "1")],
            ..Default::default()
        };
        assert!(validate_batch(&ok).is_ok());
        let conflicting = LogBatch {
            params: vec![kv("a", "1"), kv("a", "2")],
            ..Default::default()
        };
        assert!(validate_batch(&conflicting).is_err());
        let long = LogBatch {
            tags: vec![kv(&"k".repeat(251), "v")],
            ..Default::default()
        };
        assert!(validate_batch(&long).is_err());
    }
}
