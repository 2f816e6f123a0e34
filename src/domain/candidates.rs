//! Candidates (MLflow's runs) of experiments: params, metrics with full history and latest
//! values, tags, lifecycle, and the CI link kept from `gitlab.CI_*` tags.

use super::access::{Action, Caller};
use super::ci;
use super::error::{Error, Result};
use super::experiments::{check_len, now_ms, validate_tag, MAX_METRIC_KEY, MAX_NAME};
use super::experiments::{MAX_PARAM_KEY, MAX_PARAM_VALUE};
use super::logged_models::{LoggedModel, LoggedModelMetric, ModelMetric};
use super::ml_records::{
    Candidate, Experiment, KeyValue, Lifecycle, MetricPoint, RunStatus, TagOwner,
};
use super::packages::PackageContents;
use super::paging::{Page, PageRequest};
use super::projects::ProjectAccess;
use super::records::{now, Package, PackageType};
use super::schema::counters::Sequence;
use super::schema::revisions::{Parent, ReadSet};
use super::schema::{self, candidates::Candidates, logged_models::LoggedModels};
use super::{Attempt, Registry};
use crate::store::meta::{abort, TxError, Txn};

pub use super::schema::candidates::Order as RunOrder;

#[derive(Debug, Clone, Default)]
pub struct NewCandidate {
    pub name: Option<String>,
    /// MLflow's `user_id` of the request, if the client sent one.
    pub user: Option<String>,
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
    /// Metrics of `metrics` sent with a logged model's `model_id` (MLflow 3): also recorded as
    /// that logged model's.
    pub model_metrics: Vec<ModelMetric>,
}

fn new_run_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
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
    let mut seen: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for param in &batch.params {
        if let Some(previous) = seen.insert(&param.key, &param.value) {
            if previous != param.value {
                return Err(Error::bad(format!(
                    "Duplicate parameter keys have been submitted: '{}' with different values",
                    param.key
                )));
            }
        }
    }
    batch.tags.iter().try_for_each(validate_tag)
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
        mlflow_user: new
            .user
            .clone()
            .or_else(|| {
                new.tags
                    .iter()
                    .find(|t| t.key == "mlflow.user")
                    .map(|t| t.value.clone())
            })
            .filter(|u| !u.is_empty() && u != "unknown"),
        lifecycle: Lifecycle::Active,
        model_version_id: None,
        ci: ci::from_tags(new.tags.iter().map(|t| (t.key.as_str(), t.value.as_str()))),
        created_at: now(),
    }
}

/// Where a candidate's params are indexed: its experiment, by its start time.
pub(crate) fn param_run(candidate: &Candidate) -> schema::params::Run {
    schema::params::Run {
        candidate_id: candidate.id,
        experiment_id: candidate.experiment_id,
        start_time: candidate.start_time,
    }
}

/// Records params; a key logged before must keep its value.
pub(crate) fn put_params<E: From<Error>>(
    tx: &dyn Txn,
    candidate: &Candidate,
    params: &[KeyValue],
) -> Result<(), TxError<E>> {
    let run_id = &candidate.run_id;
    for param in params {
        match schema::params::load(tx, candidate.id, &param.key)? {
            Some(old) if old != param.value.as_bytes() => {
                return abort(E::from(Error::bad(format!(
                    "Changing param values is not allowed. Param with key='{}' was already logged with value='{}' for run ID='{run_id}'. Attempted logging new value '{}'.",
                    param.key,
                    String::from_utf8_lossy(&old),
                    param.value
                ))));
            }
            Some(_) => {}
            None => schema::params::insert(tx, param_run(candidate), param)?,
        }
    }
    Ok(())
}

/// Everything a candidate owns, listed before the transaction that removes it.
pub(crate) struct CandidateContents {
    pub candidate: Candidate,
    params: Vec<KeyValue>,
    metrics: schema::metrics::Owned,
    tags: Vec<String>,
    links: schema::run_links::Owned,
    package: Option<PackageContents>,
}

/// Removes a candidate and everything it owns.
pub(crate) fn remove_candidate_in(
    tx: &dyn Txn,
    contents: &CandidateContents,
) -> Result<(), TxError<Attempt>> {
    let candidate = &contents.candidate;
    let run = schema::metrics::Run {
        candidate_id: candidate.id,
        experiment_id: candidate.experiment_id,
    };
    schema::params::purge(tx, param_run(candidate), &contents.params)?;
    schema::metrics::purge(tx, run, &contents.metrics)?;
    schema::tags::purge(tx, TagOwner::Candidate(candidate.id), &contents.tags)?;
    schema::run_links::purge(tx, &contents.links)?;
    if let Some(package) = &contents.package {
        super::packages::remove_package_in(tx, package)?;
    }
    schema::remove::<Candidates>(tx, &schema::id_key(candidate.id))?;
    schema::revisions::forget(tx, Parent::Candidate(candidate.id))?;
    Ok(())
}

/// Everything a logged model owns, listed before the transaction that removes it.
pub(crate) struct LoggedModelContents {
    model: LoggedModel,
    package: Option<PackageContents>,
    tags: Vec<String>,
    metrics: Vec<Vec<u8>>,
}

pub(crate) fn remove_logged_model_in(
    tx: &dyn Txn,
    contents: &LoggedModelContents,
) -> Result<(), TxError<Attempt>> {
    if let Some(package) = &contents.package {
        super::packages::remove_package_in(tx, package)?;
    }
    schema::tags::purge(tx, TagOwner::LoggedModel(contents.model.id), &contents.tags)?;
    schema::logged_model_metrics::purge(tx, &contents.metrics)?;
    schema::remove::<LoggedModels>(tx, &schema::id_key(contents.model.id))?;
    schema::revisions::forget(tx, Parent::LoggedModel(contents.model.id))?;
    Ok(())
}

impl Registry {
    /// Lists what a candidate owns, noting the parents whose children it read.
    pub(crate) fn candidate_contents(
        &self,
        seen: &mut ReadSet,
        candidate: Candidate,
        with_package: bool,
    ) -> Result<CandidateContents> {
        seen.note(self.meta.as_ref(), Parent::Candidate(candidate.id))?;
        let params = self.params(candidate.id)?;
        let metrics = schema::metrics::owned(self.meta.as_ref(), candidate.id)?;
        let tags = schema::tags::names(self.meta.as_ref(), TagOwner::Candidate(candidate.id))?;
        let links = schema::run_links::owned(self.meta.as_ref(), candidate.id)?;
        let package = if with_package {
            match self.candidate_package(&candidate) {
                Ok(package) => Some(self.package_contents(seen, package)?),
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
            links,
            package,
        })
    }

    /// Lists what a logged model owns.
    pub(crate) fn logged_model_contents(
        &self,
        seen: &mut ReadSet,
        model: LoggedModel,
    ) -> Result<LoggedModelContents> {
        seen.note(self.meta.as_ref(), Parent::LoggedModel(model.id))?;
        let package = match self.logged_model_package(&model) {
            Ok(p) => Some(self.package_contents(seen, p)?),
            Err(Error::NotFound(_)) => None,
            Err(other) => return Err(other),
        };
        let tags = schema::tags::names(self.meta.as_ref(), TagOwner::LoggedModel(model.id))?;
        let metrics = schema::logged_model_metrics::keys_of(self.meta.as_ref(), model.id)?;
        Ok(LoggedModelContents {
            model,
            package,
            tags,
            metrics,
        })
    }

    pub async fn create_candidate(
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
        self.write(|tx| {
            if schema::experiments::load(tx, experiment.id)?.is_none() {
                return abort(Error::NotFound("Experiment"));
            }
            let iid = schema::counters::next(tx, experiment.project_id, Sequence::CandidateIid)?;
            let mut candidate = candidate_record(id, iid, &experiment, caller.user_id(), &new);
            // A run a CI identity creates is linked to its verified job, not to typed tags.
            candidate.ci = ci::merge(candidate.ci.take(), caller.ci().cloned());
            schema::put::<Candidates>(tx, &candidate)?;
            schema::tags::set(tx, TagOwner::Candidate(candidate.id), &new.tags)?;
            Ok(candidate)
        })
        .await
    }

    pub fn candidate(&self, id: u64) -> Result<Candidate> {
        schema::candidates::get(self.meta.as_ref(), id)?.ok_or(Error::NotFound("Candidate"))
    }

    pub fn candidate_by_run_id(&self, project_id: u64, run_id: &str) -> Result<Candidate> {
        schema::candidates::by_run_id(self.meta.as_ref(), run_id)?
            .filter(|c| c.project_id == project_id)
            .ok_or(Error::NotFound("Run"))
    }

    pub fn candidate_by_iid(&self, project_id: u64, iid: u64) -> Result<Candidate> {
        schema::candidates::by_iid(self.meta.as_ref(), project_id, iid)?
            .ok_or(Error::NotFound("Candidate"))
    }

    /// How many candidates an experiment has in a lifecycle (a kept count).
    pub fn candidate_count(&self, experiment_id: u64, lifecycle: Lifecycle) -> Result<usize> {
        Ok(schema::candidates::count_in(
            self.meta.as_ref(),
            experiment_id,
            lifecycle,
        )?)
    }

    /// A page of an experiment's candidates in `order`: the active ones, or all.
    pub fn candidates_page(
        &self,
        experiment_id: u64,
        order: RunOrder,
        descending: bool,
        include_deleted: bool,
        page: PageRequest,
    ) -> Result<Page<Candidate>> {
        let lifecycles: &[Lifecycle] = if include_deleted {
            &[Lifecycle::Active, Lifecycle::Deleted]
        } else {
            &[Lifecycle::Active]
        };
        let stream = self.candidates_stream(&[experiment_id], lifecycles, order, descending, None);
        let items = stream
            .skip(page.offset())
            .take(page.per_page)
            .map(|entry| entry.map(|(_, candidate)| candidate))
            .collect::<Result<Vec<_>>>()?;
        let mut total = self.candidate_count(experiment_id, Lifecycle::Active)?;
        if include_deleted {
            total += self.candidate_count(experiment_id, Lifecycle::Deleted)?;
        }
        Ok(Page::keyed(items, total, page, None))
    }

    /// Candidates of some experiments in one order, with the index key of each (a cursor to
    /// continue after it); creation order includes every lifecycle and filters here.
    pub fn candidates_stream<'a>(
        &'a self,
        experiments: &[u64],
        lifecycles: &'a [Lifecycle],
        order: RunOrder,
        descending: bool,
        after: Option<&[u8]>,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Candidate)>> + 'a {
        let entries = schema::candidates::stream(
            self.meta.as_ref(),
            experiments,
            lifecycles,
            order,
            descending,
            after,
        );
        schema::records_of::<schema::candidates::Candidates, _>(
            self.meta.as_ref(),
            entries,
            |entry| schema::candidates::candidate_of(entry).map(schema::id_key),
        )
        .filter_map(move |found| match found {
            Ok(((key, _), candidate)) => lifecycles
                .contains(&candidate.lifecycle)
                .then_some(Ok((key, candidate))),
            Err(error) => Some(Err(error.into())),
        })
    }

    /// Candidates of an experiment by their latest value of a metric, within `range`, with the
    /// index key of each; runs without the metric are not in this stream. `after` is a key of
    /// this stream for any of the experiments searched together.
    pub fn candidates_by_metric<'a>(
        &'a self,
        experiment_id: u64,
        metric: &str,
        descending: bool,
        after: Option<&[u8]>,
        range: schema::metrics::ValueRange,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Candidate)>> + 'a {
        let entries = schema::metrics::runs_by_value(
            self.meta.as_ref(),
            experiment_id,
            metric,
            descending,
            after,
            range,
        );
        self.candidates_of_entries(entries)
    }

    /// Candidates of an experiment whose param `key` is `value`, by start time, with the index
    /// key of each.
    pub fn candidates_with_param<'a>(
        &'a self,
        experiment_id: u64,
        key: &str,
        value: &str,
        descending: bool,
        after: Option<&[u8]>,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Candidate)>> + 'a {
        let entries = schema::params::runs_with_value(
            self.meta.as_ref(),
            experiment_id,
            key,
            value,
            descending,
            after,
        );
        self.candidates_of_entries(entries)
    }

    /// The candidates index entries name (their keys end with the candidate id), with the keys.
    fn candidates_of_entries<'a>(
        &'a self,
        entries: impl Iterator<Item = std::result::Result<schema::IndexEntry, crate::store::meta::StoreError>>
            + 'a,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Candidate)>> + 'a {
        schema::records_of::<schema::candidates::Candidates, _>(
            self.meta.as_ref(),
            entries,
            |(key, _)| schema::trailing_id(key).map(schema::id_key),
        )
        .map(|found| {
            let ((key, _), candidate) = found?;
            Ok((key, candidate))
        })
    }

    /// The offset at which keys of [`Self::candidates_with_param`] start ordering.
    pub fn param_stream_prefix_len(key: &str, value: &str) -> usize {
        schema::params::by_value_prefix_len(key, value)
    }

    /// The offset at which keys of [`Self::candidates_by_metric`] start ordering (for merges).
    pub fn metric_stream_prefix_len(metric: &str) -> usize {
        schema::metrics::by_value_prefix_len(metric)
    }

    pub(crate) fn project_candidate(&self, access: &ProjectAccess, id: u64) -> Result<Candidate> {
        let candidate = self.candidate(id)?;
        if candidate.project_id != access.project.id {
            return Err(Error::NotFound("Candidate"));
        }
        Ok(candidate)
    }

    pub async fn update_candidate(
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
        self.update_record::<Candidates>(candidate_id, "Candidate", |candidate| {
            if let Some(name) = changes.name.clone().filter(|n| !n.is_empty()) {
                candidate.name = name;
            }
            if let Some(status) = changes.status {
                candidate.status = status;
            }
            if let Some(end_time) = changes.end_time {
                candidate.end_time = Some(end_time);
            }
        })
        .await
    }

    /// MLflow's soft delete and restore of a run.
    pub async fn set_candidate_lifecycle(
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
        self.update_record::<Candidates>(candidate_id, "Candidate", |c| {
            c.lifecycle = lifecycle;
        })
        .await
    }

    /// Deletes a candidate with its params, metrics, tags and artifacts, in one transaction.
    pub async fn delete_candidate(
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
        self.delete_listed(
            |seen| match schema::candidates::get(self.meta.as_ref(), candidate.id)? {
                Some(c) => Ok(Some(self.candidate_contents(seen, c, true)?)),
                None => Ok(None),
            },
            |tx, contents| {
                if let Some(contents) = contents {
                    remove_candidate_in(tx, contents)?;
                }
                Ok(())
            },
        )
        .await
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
        let chunk_id = self.new_id()?;
        let run = schema::metrics::Run {
            candidate_id,
            experiment_id: candidate.experiment_id,
        };
        let mut model_metrics = Vec::with_capacity(batch.model_metrics.len());
        for m in &batch.model_metrics {
            let logged = self
                .logged_model_by_key(access.project.id, &m.model_id)
                .map_err(|_| {
                    Error::NotFoundMessage(format!(
                        "Logged model with ID '{}' not found.",
                        m.model_id
                    ))
                })?;
            model_metrics.push(LoggedModelMetric {
                logged_model_id: logged.id,
                key: m.point.key.clone(),
                value: m.point.value,
                timestamp: m.point.timestamp,
                step: m.point.step,
                run_id: candidate.run_id.clone(),
                dataset_name: m.dataset_name.clone(),
                dataset_digest: m.dataset_digest.clone(),
            });
        }
        self.write(|tx| {
            for m in &model_metrics {
                schema::put::<schema::logged_model_metrics::LoggedModelMetrics>(tx, m)?;
            }
            let Some(mut current) = schema::candidates::load(tx, candidate_id)? else {
                return abort(Error::NotFound("Run"));
            };
            put_params(tx, &current, &batch.params)?;
            schema::metrics::log(tx, run, &batch.metrics, chunk_id)?;
            if !batch.tags.is_empty() {
                schema::tags::set(tx, TagOwner::Candidate(candidate_id), &batch.tags)?;
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
                    schema::put::<Candidates>(tx, &current)?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Params of a candidate, by key.
    pub fn params(&self, candidate_id: u64) -> Result<Vec<KeyValue>> {
        Ok(schema::params::all(self.meta.as_ref(), candidate_id)?)
    }

    /// One param of a candidate.
    pub fn param(&self, candidate_id: u64, key: &str) -> Result<Option<String>> {
        Ok(schema::params::get(self.meta.as_ref(), candidate_id, key)?)
    }

    /// Every logged value, by metric key and then by step and timestamp; one key's only when
    /// given.
    pub fn metric_history(&self, candidate_id: u64, key: Option<&str>) -> Result<Vec<MetricPoint>> {
        Ok(schema::metrics::history(
            self.meta.as_ref(),
            candidate_id,
            key,
        )?)
    }

    /// The points of one metric after a cursor (the key the previous page ended at), in step
    /// order, and the cursor after this page: MLflow's `metrics/get-history` pages.
    pub fn metric_history_after(
        &self,
        candidate_id: u64,
        key: &str,
        page: PageRequest,
    ) -> Result<(Vec<MetricPoint>, Option<Vec<u8>>)> {
        if let Some(cursor) = page.cursor() {
            if !schema::metrics::history_cursor_fits(cursor) {
                return Err(Error::invalid("page_token"));
            }
        }
        Ok(schema::metrics::history_page(
            self.meta.as_ref(),
            candidate_id,
            key,
            &page.seek(),
            page.per_page,
        )?)
    }

    /// One page of one metric's history, by step then timestamp, with the number of values
    /// recorded (a kept count).
    pub fn metric_history_page(
        &self,
        candidate_id: u64,
        key: &str,
        page: PageRequest,
    ) -> Result<Page<MetricPoint>> {
        let (items, next) = self.metric_history_after(candidate_id, key, page.clone())?;
        let total = schema::metrics::count_of(self.meta.as_ref(), candidate_id, key)?;
        Ok(Page::keyed(items, total, page, next))
    }

    /// Each metric's history thinned to about `max_points` values spread over its steps (then
    /// timestamps), with its first and last: what a chart draws, read by seeking.
    pub fn metric_series(&self, candidate_id: u64, max_points: usize) -> Result<Vec<MetricPoint>> {
        let mut out = Vec::new();
        for latest in self.latest_metrics(candidate_id)? {
            out.extend(schema::metrics::sample(
                self.meta.as_ref(),
                candidate_id,
                &latest.key,
                max_points,
            )?);
        }
        Ok(out)
    }

    /// The latest value of each metric (highest step, then latest timestamp), by key.
    pub fn latest_metrics(&self, candidate_id: u64) -> Result<Vec<MetricPoint>> {
        Ok(schema::metrics::latest_all(
            self.meta.as_ref(),
            candidate_id,
        )?)
    }

    /// The latest value of one metric.
    pub fn latest_metric(&self, candidate_id: u64, key: &str) -> Result<Option<MetricPoint>> {
        Ok(schema::metrics::latest(
            self.meta.as_ref(),
            candidate_id,
            key,
        )?)
    }

    pub fn tags(&self, owner: TagOwner) -> Result<Vec<KeyValue>> {
        Ok(schema::tags::all(self.meta.as_ref(), owner)?)
    }

    pub fn tag(&self, owner: TagOwner, key: &str) -> Result<Option<String>> {
        Ok(schema::tags::get(self.meta.as_ref(), owner, key)?)
    }

    /// Sets tags of an experiment, model or version (candidates go through [`Self::log_batch`]).
    pub async fn set_tags(
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
        self.write(|tx| {
            schema::tags::set(tx, owner, tags)?;
            Ok(())
        })
        .await
    }

    /// Deletes one tag of anything that has tags; a `gitlab.CI_*` tag also clears its CI field.
    pub async fn delete_tag(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        owner: TagOwner,
        key: &str,
    ) -> Result<()> {
        access.check(caller, Action::WriteRegistry)?;
        self.check_tag_owner(access, owner)?;
        if let TagOwner::Candidate(id) = owner {
            let candidate = self.candidate(id)?;
            if candidate.lifecycle == Lifecycle::Deleted {
                return Err(Error::bad(format!(
                    "The run {} must be in the 'active' state. Current state is deleted.",
                    candidate.run_id
                )));
            }
        }
        self.write(|tx| {
            if !schema::tags::delete(tx, owner, key)? {
                return abort(Error::NotFound("Tag"));
            }
            if let TagOwner::Candidate(id) = owner {
                if let Some(mut candidate) = schema::candidates::load(tx, id)? {
                    let mut ci = candidate.ci.clone().unwrap_or_default();
                    if ci::apply_tag(&mut ci, key, None) {
                        candidate.ci = (!ci.is_empty()).then_some(ci);
                        schema::put::<Candidates>(tx, &candidate)?;
                    }
                }
            }
            Ok(())
        })
        .await
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

#[cfg(test)]
mod tests {
    use super::*;

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
