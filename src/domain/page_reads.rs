//! What the views of a page of records show besides the records themselves (a run's params,
//! metrics and tags, a version's candidate, files, downloads and author), read for the whole
//! page with a fixed number of batched reads ([`MetaStore::get_many`],
//! [`MetaStore::scan_many`]) whatever its size. On PostgreSQL each is one round trip; reading
//! them record by record cost ten statements per version of a page.
//!
//! [`MetaStore::get_many`]: crate::store::meta::MetaStore::get_many
//! [`MetaStore::scan_many`]: crate::store::meta::MetaStore::scan_many

use std::collections::HashMap;

use super::error::{Error, Result};
use super::ml_records::{
    Candidate, Experiment, KeyValue, Lifecycle, MetricPoint, Model, ModelVersion, TagOwner,
};
use super::models::ModelSummary;
use super::records::{PackageFile, User};
use super::run_links::{DatasetInput, ModelLink};
use super::schema::{self, usage::Counted};
use super::usage::UsageView;
use super::Registry;

/// A run's params, latest metrics and the tags its view shows.
#[derive(Debug, Clone, Default)]
pub struct RunDetails {
    pub params: Vec<KeyValue>,
    pub latest_metrics: Vec<MetricPoint>,
    pub tags: Vec<KeyValue>,
}

/// The first values of each metric of a run, and the metrics that have more.
#[derive(Debug, Clone, Default)]
pub struct HistoryPreview {
    pub points: Vec<MetricPoint>,
    pub truncated: Vec<String>,
}

/// A run's dataset inputs and logged-model links (MLflow's `inputs` and `outputs`).
#[derive(Debug, Clone, Default)]
pub struct RunLinks {
    pub datasets: Vec<DatasetInput>,
    pub models: Vec<ModelLink>,
}

/// Everything a version's full view shows besides the version record.
#[derive(Debug, Clone)]
pub struct VersionDetails {
    pub candidate: Candidate,
    pub run: RunDetails,
    pub history: HistoryPreview,
    /// The newest file of each path, with its downloads.
    pub files: Vec<(PackageFile, UsageView)>,
    /// The version's downloads (its package's).
    pub usage: UsageView,
}

/// Everything a model's view shows besides the model and its summary.
#[derive(Debug, Clone)]
pub struct ModelDetails {
    pub experiment: Experiment,
    /// The active candidates of the model's experiment (its versions' runs among them).
    pub active_candidates: usize,
    pub tags: Vec<KeyValue>,
    pub author: Option<User>,
    /// The latest version's downloads (its package's) and author.
    pub latest_usage: UsageView,
    pub latest_author: Option<User>,
}

impl Registry {
    /// The details of each model's view, in the order asked: experiments, candidate counts,
    /// tags, authors and the latest versions' downloads, each read once for all of them.
    pub fn model_details(&self, summaries: &[ModelSummary]) -> Result<Vec<ModelDetails>> {
        let meta = self.meta.as_ref();
        let experiment_ids: Vec<u64> = summaries.iter().map(|s| s.model.experiment_id).collect();
        let experiments = self.experiments_by_id(experiment_ids.iter().copied())?;
        let active = schema::candidates::counts_in(meta, &experiment_ids, Lifecycle::Active)?;
        let owners: Vec<TagOwner> = summaries
            .iter()
            .map(|s| TagOwner::Model(s.model.id))
            .collect();
        let tags = self.tags_of(&owners)?;
        let users = self.users_by_id(summaries.iter().flat_map(|s| {
            [
                s.model.author_id,
                s.latest.as_ref().and_then(|v| v.author_id),
            ]
            .into_iter()
            .flatten()
        }))?;
        let counted: Vec<Counted> = summaries
            .iter()
            .filter_map(|s| s.latest.as_ref().map(|v| Counted::Package(v.package_id)))
            .collect();
        let mut usages = self.usages_of(&counted)?.into_iter();
        let user = |id: Option<u64>| id.and_then(|id| users.get(&id)).cloned();
        summaries
            .iter()
            .zip(active)
            .zip(tags)
            .map(|((summary, active_candidates), tags)| {
                let experiment = experiments
                    .get(&summary.model.experiment_id)
                    .cloned()
                    .ok_or(Error::NotFound("Experiment"))?;
                let latest_usage = match &summary.latest {
                    Some(_) => usages.next().unwrap_or_default(),
                    None => UsageView::default(),
                };
                Ok(ModelDetails {
                    experiment,
                    active_candidates,
                    tags,
                    author: user(summary.model.author_id),
                    latest_usage,
                    latest_author: user(summary.latest.as_ref().and_then(|v| v.author_id)),
                })
            })
            .collect()
    }

    /// Each model's highest version in every stage that has one (`stages`: only those;
    /// empty: all), by MLflow version number, in the order asked: one batched read for all.
    pub fn latest_per_stage_of(
        &self,
        models: &[Model],
        stages: &[String],
    ) -> Result<Vec<Vec<ModelVersion>>> {
        let chosen: Vec<&str> = super::version_labels::STAGES
            .iter()
            .copied()
            .filter(|stage| {
                stages.is_empty() || stages.iter().any(|s| s.eq_ignore_ascii_case(stage))
            })
            .collect();
        let wanted: Vec<(u64, &str)> = models
            .iter()
            .flat_map(|m| chosen.iter().map(move |stage| (m.id, *stage)))
            .collect();
        let mut found =
            schema::versions::highest_in_stages(self.meta.as_ref(), &wanted)?.into_iter();
        Ok(models
            .iter()
            .map(|_| {
                let mut latest: Vec<ModelVersion> =
                    found.by_ref().take(chosen.len()).flatten().collect();
                latest.sort_by_key(|v| v.seq);
                latest
            })
            .collect())
    }

    /// The versions behind these ids (those that exist), by id.
    pub fn versions_by_id(
        &self,
        ids: impl IntoIterator<Item = u64>,
    ) -> Result<HashMap<u64, ModelVersion>> {
        Ok(
            schema::versions::get_ids(self.meta.as_ref(), &distinct(ids))?
                .into_iter()
                .map(|v| (v.id, v))
                .collect(),
        )
    }

    /// Params, latest metrics and tags of each run, in the order asked; the tags are those of
    /// `tag_owners` (a version's view shows the version's tags, not its run's).
    pub fn run_details(
        &self,
        candidate_ids: &[u64],
        tag_owners: &[TagOwner],
    ) -> Result<Vec<RunDetails>> {
        let meta = self.meta.as_ref();
        let params = schema::params::all_of(meta, candidate_ids)?;
        let latest = schema::metrics::latest_all_of(meta, candidate_ids)?;
        let tags = schema::tags::all_of(meta, tag_owners)?;
        Ok(params
            .into_iter()
            .zip(latest)
            .zip(tags)
            .map(|((params, latest_metrics), tags)| RunDetails {
                params,
                latest_metrics,
                tags,
            })
            .collect())
    }

    /// The first `per_key` values of each metric of each run (whose latest values are given),
    /// and the metrics that have more, in the order asked: what a run's JSON carries.
    pub fn history_previews(
        &self,
        runs: &[(u64, &[MetricPoint])],
        per_key: usize,
    ) -> Result<Vec<HistoryPreview>> {
        let metrics: Vec<(u64, &str)> = runs
            .iter()
            .flat_map(|(id, latest)| latest.iter().map(move |p| (*id, p.key.as_str())))
            .collect();
        let mut heads = schema::metrics::heads_of(self.meta.as_ref(), &metrics, per_key)?
            .into_iter()
            .zip(metrics);
        Ok(runs
            .iter()
            .map(|(_, latest)| {
                let mut preview = HistoryPreview::default();
                for ((points, more), (_, key)) in heads.by_ref().take(latest.len()) {
                    preview.points.extend(points);
                    if more {
                        preview.truncated.push(key.to_string());
                    }
                }
                preview
            })
            .collect())
    }

    /// Dataset inputs and logged-model links of each run, in the order asked.
    pub fn run_links_of(&self, candidate_ids: &[u64]) -> Result<Vec<RunLinks>> {
        let meta = self.meta.as_ref();
        let datasets = schema::run_links::datasets_of_many(meta, candidate_ids)?;
        let models = schema::run_links::models_of_many(meta, candidate_ids)?;
        Ok(datasets
            .into_iter()
            .zip(models)
            .map(|(datasets, models)| RunLinks { datasets, models })
            .collect())
    }

    /// The users behind these ids (those that exist), by id.
    pub fn users_by_id(&self, ids: impl IntoIterator<Item = u64>) -> Result<HashMap<u64, User>> {
        Ok(
            schema::get_ids::<schema::users::Users>(self.meta.as_ref(), &distinct(ids))?
                .into_iter()
                .map(|user| (user.id, user))
                .collect(),
        )
    }

    /// The tags of each owner, in the order asked (one batched read).
    pub fn tags_of(&self, owners: &[TagOwner]) -> Result<Vec<Vec<KeyValue>>> {
        Ok(schema::tags::all_of(self.meta.as_ref(), owners)?)
    }

    /// The aliases of each model (alias, version id), in the order asked (one batched read).
    pub fn aliases_of(&self, model_ids: &[u64]) -> Result<Vec<Vec<(String, u64)>>> {
        let owners: Vec<TagOwner> = model_ids
            .iter()
            .map(|id| TagOwner::ModelAlias(*id))
            .collect();
        Ok(self
            .tags_of(&owners)?
            .into_iter()
            .map(|tags| {
                tags.into_iter()
                    .filter_map(|kv| kv.value.parse().ok().map(|id| (kv.key, id)))
                    .collect()
            })
            .collect())
    }

    /// The candidates behind these ids (those that exist), by id.
    pub fn candidates_by_id(
        &self,
        ids: impl IntoIterator<Item = u64>,
    ) -> Result<HashMap<u64, Candidate>> {
        Ok(
            schema::get_ids::<schema::candidates::Candidates>(self.meta.as_ref(), &distinct(ids))?
                .into_iter()
                .map(|c| (c.id, c))
                .collect(),
        )
    }

    /// The experiments behind these ids (those that exist), by id.
    pub fn experiments_by_id(
        &self,
        ids: impl IntoIterator<Item = u64>,
    ) -> Result<HashMap<u64, Experiment>> {
        Ok(
            schema::get_ids::<schema::experiments::Experiments>(
                self.meta.as_ref(),
                &distinct(ids),
            )?
            .into_iter()
            .map(|e| (e.id, e))
            .collect(),
        )
    }

    /// The details of each version's full view, in the order asked.
    pub fn version_details(
        &self,
        versions: &[ModelVersion],
        per_key: usize,
    ) -> Result<Vec<VersionDetails>> {
        let meta = self.meta.as_ref();
        let candidate_ids: Vec<u64> = versions.iter().map(|v| v.candidate_id).collect();
        let candidates = self.candidates_by_id(candidate_ids.iter().copied())?;
        let owners: Vec<TagOwner> = versions.iter().map(|v| TagOwner::Version(v.id)).collect();
        let runs = self.run_details(&candidate_ids, &owners)?;
        let latest: Vec<(u64, &[MetricPoint])> = candidate_ids
            .iter()
            .zip(&runs)
            .map(|(id, run)| (*id, run.latest_metrics.as_slice()))
            .collect();
        let previews = self.history_previews(&latest, per_key)?;
        let package_ids: Vec<u64> = versions.iter().map(|v| v.package_id).collect();
        let files = schema::files::current_of(meta, &package_ids)?;
        let counted: Vec<Counted> = package_ids
            .iter()
            .map(|id| Counted::Package(*id))
            .chain(files.iter().flatten().map(|f| Counted::File(f.id)))
            .collect();
        let mut usages = self.usages_of(&counted)?.into_iter();
        let package_usage: Vec<UsageView> = usages.by_ref().take(package_ids.len()).collect();
        versions
            .iter()
            .zip(runs)
            .zip(previews)
            .zip(files)
            .zip(package_usage)
            .map(|((((version, run), history), files), usage)| {
                let candidate = candidates
                    .get(&version.candidate_id)
                    .cloned()
                    .ok_or(Error::NotFound("Candidate"))?;
                let files = files.into_iter().zip(usages.by_ref()).collect();
                Ok(VersionDetails {
                    candidate,
                    run,
                    history,
                    files,
                    usage,
                })
            })
            .collect()
    }
}

/// Ids sorted, each once.
fn distinct(ids: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut ids: Vec<u64> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}
