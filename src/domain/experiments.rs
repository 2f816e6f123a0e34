//! Experiments: create, find, list, rename, soft-delete and delete. Their candidates (MLflow's
//! runs) are in [`super::candidates`].

use super::access::{Action, Caller};
use super::candidates::{CandidateContents, LoggedModelContents};
use super::error::{Error, Result};
use super::ml_records::{Experiment, KeyValue, Lifecycle, TagOwner};
use super::paging::{Page, PageRequest};
use super::projects::ProjectAccess;
use super::records::now;
use super::schema::counters::Sequence;
use super::schema::revisions::{Parent, ReadSet};
use super::schema::{self, experiments::Experiments};
use super::{Attempt, Registry};
use crate::store::meta::{abort, TxError, Txn};

pub const MAX_NAME: usize = 255;
pub const MAX_PARAM_KEY: usize = 250;
pub const MAX_PARAM_VALUE: usize = 6000;
pub const MAX_TAG_KEY: usize = 250;
pub const MAX_TAG_VALUE: usize = 8000;
pub const MAX_METRIC_KEY: usize = 250;

/// The prefix of a model's default experiment.
pub const MODEL_EXPERIMENT_PREFIX: &str = "[model]";

pub fn now_ms() -> i64 {
    now().timestamp_millis()
}

/// MLflow's experiment `0`.
pub const DEFAULT_EXPERIMENT: &str = "Default";

/// The record of a project's "Default" experiment: iid 0, MLflow's experiment `0`.
pub(crate) fn default_experiment_record(
    id: u64,
    project_id: u64,
    creator: Option<u64>,
) -> Experiment {
    Experiment {
        id,
        project_id,
        iid: 0,
        name: DEFAULT_EXPERIMENT.to_string(),
        model_id: None,
        creator_id: creator,
        lifecycle: Lifecycle::Active,
        artifact_location: None,
        created_at: now(),
        updated_at: now(),
    }
}

pub(crate) fn check_len(what: &str, value: &str, max: usize) -> Result<()> {
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

/// Everything an experiment owns, listed before the transaction that removes it.
pub(crate) struct ExperimentContents {
    experiment: Experiment,
    candidates: Vec<CandidateContents>,
    logged_models: Vec<LoggedModelContents>,
    tags: Vec<String>,
}

/// Removes an experiment with everything it owns.
pub(crate) fn remove_experiment_in(
    tx: &dyn Txn,
    contents: &ExperimentContents,
) -> Result<(), TxError<Attempt>> {
    for candidate in &contents.candidates {
        super::candidates::remove_candidate_in(tx, candidate)?;
    }
    for logged in &contents.logged_models {
        super::candidates::remove_logged_model_in(tx, logged)?;
    }
    let id = contents.experiment.id;
    schema::tags::purge(tx, TagOwner::Experiment(id), &contents.tags)?;
    schema::remove::<Experiments>(tx, &schema::id_key(id))?;
    schema::revisions::forget(tx, Parent::Experiment(id))?;
    Ok(())
}

impl Registry {
    pub async fn create_experiment(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        name: &str,
        tags: &[KeyValue],
    ) -> Result<Experiment> {
        self.create_experiment_at(caller, access, name, tags, None)
            .await
    }

    /// Creates an experiment; `artifact_location` is what an MLflow client asked for, recorded
    /// and returned (artifacts are stored here whatever it says).
    pub async fn create_experiment_at(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        name: &str,
        tags: &[KeyValue],
        artifact_location: Option<&str>,
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
        if let Some(location) = artifact_location {
            check_len("artifact_location", location, 2048)?;
        }
        let id = self.new_id()?;
        let project_id = access.project.id;
        self.write(|tx| {
            if schema::experiments::name_taken(tx, project_id, name)? {
                return abort(Error::AlreadyExists(format!(
                    "Experiment '{name}' already exists"
                )));
            }
            let experiment = Experiment {
                id,
                project_id,
                iid: schema::counters::next(tx, project_id, Sequence::ExperimentIid)?,
                name: name.to_string(),
                model_id: None,
                creator_id: caller.user_id(),
                lifecycle: Lifecycle::Active,
                artifact_location: artifact_location.map(str::to_string),
                created_at: now(),
                updated_at: now(),
            };
            schema::put::<Experiments>(tx, &experiment)?;
            schema::tags::set(tx, TagOwner::Experiment(id), tags)?;
            Ok(experiment)
        })
        .await
    }

    /// The project's "Default" experiment, MLflow's experiment `0`: made with the project; a
    /// project of an earlier release gets it on first use (one already named "Default" is it).
    pub async fn default_experiment(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
    ) -> Result<Experiment> {
        let project_id = access.project.id;
        if let Some(found) = schema::experiments::by_iid(self.meta.as_ref(), project_id, 0)? {
            return Ok(found);
        }
        if let Some(found) =
            schema::experiments::by_name_in(self.meta.as_ref(), project_id, DEFAULT_EXPERIMENT)?
        {
            return Ok(found);
        }
        access.check(caller, Action::WriteRegistry)?;
        let record = default_experiment_record(self.new_id()?, project_id, caller.user_id());
        self.write(|tx| {
            if let Some(found) =
                schema::experiments::load_by_name(tx, project_id, DEFAULT_EXPERIMENT)?
            {
                return Ok(found);
            }
            schema::put::<Experiments>(tx, &record)?;
            Ok(record.clone())
        })
        .await
    }

    pub fn experiment(&self, id: u64) -> Result<Experiment> {
        schema::experiments::get(self.meta.as_ref(), id)?.ok_or(Error::NotFound("Experiment"))
    }

    pub fn experiment_by_iid(&self, project_id: u64, iid: u64) -> Result<Experiment> {
        schema::experiments::by_iid(self.meta.as_ref(), project_id, iid)?
            .ok_or(Error::NotFound("Experiment"))
    }

    pub fn experiment_by_name(&self, project_id: u64, name: &str) -> Result<Experiment> {
        schema::experiments::by_name_in(self.meta.as_ref(), project_id, name)?
            .ok_or(Error::NotFound("Experiment"))
    }

    /// How many experiments a project has (a kept count).
    pub fn experiment_count(&self, project_id: u64) -> Result<usize> {
        Ok(schema::experiments::count_in(
            self.meta.as_ref(),
            project_id,
        )?)
    }

    /// A page of a project's experiments by iid.
    pub fn experiments_page(
        &self,
        project_id: u64,
        descending: bool,
        page: PageRequest,
    ) -> Result<Page<Experiment>> {
        let (ids, next) = schema::experiments::page(
            self.meta.as_ref(),
            project_id,
            descending,
            &page.seek(),
            page.per_page,
        )?;
        let items = ids
            .into_iter()
            .map(|id| self.experiment(id))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::keyed(
            items,
            self.experiment_count(project_id)?,
            page,
            next,
        ))
    }

    /// A project's experiments in creation order, as a stream the caller pages through.
    pub fn experiments_stream(
        &self,
        project_id: u64,
    ) -> Result<impl Iterator<Item = Result<Experiment>> + '_> {
        let ids = schema::experiments::ids_of(self.meta.as_ref(), project_id)?;
        Ok(ids.into_iter().map(move |id| self.experiment(id)))
    }

    pub(crate) fn project_experiment(&self, access: &ProjectAccess, id: u64) -> Result<Experiment> {
        let experiment = self.experiment(id)?;
        if experiment.project_id != access.project.id {
            return Err(Error::NotFound("Experiment"));
        }
        Ok(experiment)
    }

    pub async fn rename_experiment(
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
        self.write(|tx| {
            if new_name != experiment.name
                && schema::experiments::name_taken(tx, experiment.project_id, new_name)?
            {
                return abort(Error::AlreadyExists(format!(
                    "Experiment '{new_name}' already exists"
                )));
            }
            let Some(current) = schema::experiments::load(tx, experiment.id)? else {
                return abort(Error::NotFound("Experiment"));
            };
            let renamed = Experiment {
                name: new_name.to_string(),
                updated_at: now(),
                ..current
            };
            schema::put::<Experiments>(tx, &renamed)?;
            Ok(renamed)
        })
        .await
    }

    /// MLflow's soft delete and restore. A model's experiment cannot be deleted on its own.
    pub async fn set_experiment_lifecycle(
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
        self.update_record::<Experiments>(experiment.id, "Experiment", |e| {
            e.lifecycle = lifecycle;
            e.updated_at = now();
        })
        .await
    }

    /// Lists what an experiment owns, noting the parents whose children it read. `None` when
    /// the experiment is gone.
    pub(crate) fn experiment_contents(
        &self,
        seen: &mut ReadSet,
        experiment_id: u64,
    ) -> Result<Option<ExperimentContents>> {
        seen.note(self.meta.as_ref(), Parent::Experiment(experiment_id))?;
        let Some(experiment) = schema::experiments::get(self.meta.as_ref(), experiment_id)? else {
            return Ok(None);
        };
        let mut candidates = Vec::new();
        for id in schema::candidates::ids_of(self.meta.as_ref(), experiment.id)? {
            if let Some(c) = schema::candidates::get(self.meta.as_ref(), id)? {
                // A version's candidate goes with its version; a model's other candidates take
                // their artifact packages with them.
                let own_package = c.model_version_id.is_none();
                candidates.push(self.candidate_contents(seen, c, own_package)?);
            }
        }
        let mut logged_models = Vec::new();
        for id in schema::logged_models::ids_of(self.meta.as_ref(), experiment.id)? {
            if let Some(m) = schema::logged_models::get(self.meta.as_ref(), id)? {
                logged_models.push(self.logged_model_contents(seen, m)?);
            }
        }
        let tags = schema::tags::names(self.meta.as_ref(), TagOwner::Experiment(experiment.id))?;
        Ok(Some(ExperimentContents {
            experiment,
            candidates,
            logged_models,
            tags,
        }))
    }

    /// Deletes an experiment with all its candidates, their data and artifacts, in one
    /// transaction.
    pub async fn delete_experiment(
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
        self.delete_listed(
            |seen| self.experiment_contents(seen, experiment.id),
            |tx, contents| {
                if let Some(contents) = contents {
                    remove_experiment_in(tx, contents)?;
                }
                Ok(())
            },
        )
        .await
    }
}
