//! Model versions. A version's files are the files of the `ml_model` package
//! `<model name>/<version>`; a version has its own candidate for params, metrics and CI link.
//! Versions are listed in SemVer precedence from an ordered index; the model record keeps its
//! latest version and latest release, so that "latest" and the next automatic version are
//! read, and allocated, inside the transaction that creates a version.

use semver::Version;

use super::access::{Action, Caller};
use super::candidates::{candidate_record, put_params, CandidateContents, NewCandidate};
use super::ci;
use super::error::{Error, Result};
use super::ml_records::{Candidate, CiJob, KeyValue, MetricPoint, Model, ModelVersion, TagOwner};
use super::models::{check_description, model_tag_checks};
use super::packages::{FileTarget, IncomingFile, PackageContents};
use super::paging::{Page, PageRequest};
use super::projects::ProjectAccess;
use super::records::{now, Package, PackageFile, PackageStatus, PackageType};
use super::schema::counters::Sequence;
use super::schema::revisions::{Parent, ReadSet};
use super::schema::{
    self, candidates::Candidates, files::Files, models::Models, packages::Packages,
    versions::Versions,
};
use super::semver_rules::{self, Requirement};
use super::{Attempt, Registry};
use crate::store::meta::{abort, TxError, Txn};

#[derive(Debug, Clone, Default)]
pub struct NewVersion {
    /// A SemVer string; the next patch of the latest when absent.
    pub version: Option<String>,
    pub description: Option<String>,
    /// The version's metadata.
    pub tags: Vec<KeyValue>,
    /// A candidate of the model's experiment to promote instead of creating a new one.
    pub candidate_id: Option<u64>,
    /// A CI job link for the version's candidate.
    pub ci: Option<CiJob>,
    /// Where the files come from, as the client named it.
    pub source: Option<String>,
    /// A run of this project whose params, metrics and CI link the version's new candidate
    /// inherits (the run the version is linked to).
    pub source_run: Option<u64>,
    /// The MLflow `run_id` the client named, kept as given: the run may live elsewhere (then
    /// nothing is linked or inherited).
    pub run_id: Option<String>,
    /// Files the version's package references (same blobs, no bytes copied), named as they
    /// will be in the package.
    pub files: Vec<PackageFile>,
}

/// Where a model file goes: a version (by id) or a candidate (by per-project iid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFileOwner {
    Version(u64),
    Candidate(u64),
}

/// What a version inherits from the run it was made from.
struct Inheritance {
    run_id: String,
    params: Vec<KeyValue>,
    metrics: Vec<MetricPoint>,
    ci: Option<CiJob>,
}

/// Everything a version owns, listed before the transaction that removes it.
pub(crate) struct VersionContents {
    version: ModelVersion,
    package: Option<PackageContents>,
    candidate: Option<CandidateContents>,
    tags: Vec<String>,
}

/// Whether `candidate` is higher than the version named `current` (absent: anything is).
fn outranks(candidate: &Version, current: Option<&String>) -> bool {
    match current.and_then(|c| Version::parse(c).ok()) {
        Some(current) => candidate
            .cmp_precedence(&current)
            .then_with(|| candidate.cmp(&current))
            .is_gt(),
        None => true,
    }
}

/// Keeps a model's latest version and latest release as a version joins.
pub(crate) fn note_new_version(model: &mut Model, version: &Version) {
    let text = version.to_string();
    if outranks(version, model.latest_version.as_ref()) {
        model.latest_version = Some(text.clone());
    }
    if version.pre.is_empty() && outranks(version, model.latest_release.as_ref()) {
        model.latest_release = Some(text);
    }
}

/// Removes a version and what it owns; a model's latest is recomputed by the caller.
pub(crate) fn remove_version_in(
    tx: &dyn Txn,
    contents: &VersionContents,
) -> Result<(), TxError<Attempt>> {
    super::sealing::ensure_version_unsealed(tx, contents.version.id)?;
    if let Some(package) = &contents.package {
        super::packages::remove_package_in(tx, package)?;
    }
    if let Some(candidate) = &contents.candidate {
        super::candidates::remove_candidate_in(tx, candidate)?;
    }
    schema::tags::purge(tx, TagOwner::Version(contents.version.id), &contents.tags)?;
    schema::remove::<Versions>(tx, &schema::id_key(contents.version.id))?;
    schema::remove::<super::schema::sealed_manifests::SealedManifests>(
        tx,
        &schema::id_key(contents.version.id),
    )?;
    schema::revisions::forget(tx, Parent::Version(contents.version.id))?;
    Ok(())
}

impl Registry {
    pub fn version(&self, id: u64) -> Result<ModelVersion> {
        schema::versions::get(self.meta.as_ref(), id)?.ok_or(Error::NotFound("Model version"))
    }

    pub fn version_by_string(&self, model_id: u64, version: &str) -> Result<ModelVersion> {
        schema::versions::by_string_in(self.meta.as_ref(), model_id, version)?
            .ok_or(Error::NotFound("Model version"))
    }

    /// The versions of a project registered from a run (by MLflow `run_id`), oldest first.
    pub fn versions_from_run(&self, project_id: u64, run_id: &str) -> Result<Vec<ModelVersion>> {
        let ids = schema::versions::ids_from_run(self.meta.as_ref(), project_id, run_id)?;
        Ok(schema::versions::get_ids(self.meta.as_ref(), &ids)?)
    }

    /// A version by its per-model sequence number (MLflow's `version`).
    pub fn version_by_seq(&self, model_id: u64, seq: u64) -> Result<ModelVersion> {
        schema::versions::by_seq_in(self.meta.as_ref(), model_id, seq)?
            .ok_or(Error::NotFound("Model version"))
    }

    /// A model's latest version: its highest release, or its highest prerelease when it has
    /// no release.
    pub fn latest_version(&self, model: &Model) -> Result<Option<ModelVersion>> {
        match model
            .latest_release
            .as_ref()
            .or(model.latest_version.as_ref())
        {
            Some(v) => Ok(schema::versions::by_string_in(
                self.meta.as_ref(),
                model.id,
                v,
            )?),
            None => Ok(None),
        }
    }

    /// A page of a model's versions by SemVer precedence, newest first unless `oldest_first`.
    pub fn versions_page(
        &self,
        model: &Model,
        oldest_first: bool,
        page: PageRequest,
    ) -> Result<Page<ModelVersion>> {
        if let Some(cursor) = page.cursor() {
            if !schema::versions::cursor_fits(model.id, cursor) {
                return Err(Error::invalid("cursor"));
            }
        }
        let (ids, next) = schema::versions::page(
            self.meta.as_ref(),
            model.id,
            oldest_first,
            &page.seek(),
            page.per_page,
        )?;
        let items = schema::versions::get_ids(self.meta.as_ref(), &ids)?;
        let total = schema::versions::count_of(self.meta.as_ref(), model.id)?;
        Ok(Page::keyed(items, total, page, next))
    }

    /// A model's versions by MLflow version number, as a stream the caller pages through.
    pub fn versions_by_seq<'a>(
        &'a self,
        model: &Model,
        descending: bool,
    ) -> impl Iterator<Item = Result<ModelVersion>> + 'a {
        let ids = schema::versions::ids_by_seq(self.meta.as_ref(), model.id, descending);
        schema::versions::of_ids(self.meta.as_ref(), ids).map(|found| Ok(found?))
    }

    /// A model's versions, the most recently updated first (then the newest number).
    pub fn versions_by_updated<'a>(
        &'a self,
        model: &Model,
    ) -> impl Iterator<Item = Result<ModelVersion>> + 'a {
        let ids = schema::versions::ids_by_updated(self.meta.as_ref(), model.id);
        schema::versions::of_ids(self.meta.as_ref(), ids).map(|found| Ok(found?))
    }

    /// The versions of every model of a project, the most recently updated first.
    pub fn project_versions_by_updated<'a>(
        &'a self,
        project_id: u64,
    ) -> impl Iterator<Item = Result<ModelVersion>> + 'a {
        let ids = schema::versions::ids_in_project_by_updated(self.meta.as_ref(), project_id);
        schema::versions::of_ids(self.meta.as_ref(), ids).map(|found| Ok(found?))
    }

    /// Versions whose SemVer string starts with `prefix`, by string (the UI's filter).
    pub fn versions_with_prefix(
        &self,
        model: &Model,
        prefix: &str,
        page: PageRequest,
    ) -> Result<Page<ModelVersion>> {
        let (ids, next) = schema::versions::ids_with_prefix(
            self.meta.as_ref(),
            model.id,
            prefix,
            &page.seek(),
            page.per_page,
        )?;
        let items = schema::versions::get_ids(self.meta.as_ref(), &ids)?;
        let total = page.offset() + items.len() + usize::from(next.is_some());
        Ok(Page::keyed(items, total, page, next))
    }

    /// A page of the versions matching a SemVer requirement (`^2.2`, `~2.2`, `2.*`), highest
    /// first (the UI's version filter). The total counts the pages read so far and one more
    /// when another follows.
    pub fn versions_matching(
        &self,
        model: &Model,
        requirement: &str,
        page: PageRequest,
    ) -> Result<Page<ModelVersion>> {
        let parsed = semver_rules::parse_requirement(requirement)?;
        let (items, more) = schema::versions::ids_matching(
            self.meta.as_ref(),
            model.id,
            &parsed,
            page.offset(),
            page.per_page,
        )?;
        let total = page.offset() + items.len() + usize::from(more);
        Ok(Page::keyed(items, total, page, None))
    }

    /// How many versions a model has (a kept count).
    pub fn version_count(&self, model: &Model) -> Result<usize> {
        Ok(schema::versions::count_of(self.meta.as_ref(), model.id)?)
    }

    /// A version of the project by id, checking it belongs there.
    pub fn project_version(&self, access: &ProjectAccess, version_id: u64) -> Result<ModelVersion> {
        let version = self.version(version_id)?;
        if version.project_id != access.project.id {
            return Err(Error::NotFound("Model version"));
        }
        Ok(version)
    }

    /// The highest version matching a requirement; 404 with the requirement named when none
    /// does. Seeks the requirement's upper bound in the precedence index. `sha256:<manifest
    /// digest>` names the sealed version with that manifest.
    pub fn resolve_version(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        model: &Model,
        requirement: &str,
    ) -> Result<ModelVersion> {
        access.check(caller, Action::ReadRegistry)?;
        if requirement.starts_with("sha256:") {
            // A sealed version pinned by its manifest digest: exactly that content.
            return self.version_by_manifest_digest(model, requirement);
        }
        let parsed: Requirement = semver_rules::parse_requirement(requirement)?;
        schema::versions::resolve(self.meta.as_ref(), model.id, &parsed)?.ok_or_else(|| {
            Error::NotFoundMessage(format!(
                "No version of model '{}' matches '{requirement}'",
                model.name
            ))
        })
    }

    pub async fn create_version(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        model_id: u64,
        new: NewVersion,
    ) -> Result<ModelVersion> {
        access.check(caller, Action::WriteRegistry)?;
        let model = self.project_model(access, model_id)?;
        let description = new.description.clone().unwrap_or_default();
        check_description(&description)?;
        model_tag_checks(&new.tags)?;
        if let Some(run_id) = &new.run_id {
            super::experiments::check_len("run_id", run_id, 256)?;
        }
        let explicit = new
            .version
            .as_deref()
            .map(semver_rules::parse_version)
            .transpose()?;
        let promoted = match new.candidate_id {
            Some(candidate_id) => Some(self.promotable_candidate(&model, candidate_id)?),
            None => None,
        };
        let experiment = self.experiment(model.experiment_id)?;
        let inherited = match (new.source_run, &promoted) {
            (Some(run_id), None) => Some(self.inheritance_from(run_id)?),
            _ => None,
        };
        let candidate_package = match &promoted {
            Some(c) => match self.candidate_package(c) {
                Ok(package) => Some(package),
                Err(Error::NotFound(_)) => None,
                Err(other) => return Err(other),
            },
            None => None,
        };
        // A version created with its MLmodel (MLflow's create_model_version from a source, an
        // OCI push): its signature against the release it follows, for the version it will
        // most likely get (the explicit one, or the next patch).
        let signature_check = match new
            .files
            .iter()
            .find(|f| super::signatures::is_mlmodel(&f.file_name))
        {
            Some(mlmodel) => {
                let planned = match &explicit {
                    Some(v) => Some(v.clone()),
                    None => semver_rules::next_patch(
                        model
                            .latest_version
                            .as_deref()
                            .and_then(|v| Version::parse(v).ok())
                            .as_ref(),
                    )
                    .ok(),
                };
                match planned {
                    Some(planned) => {
                        self.signature_verdict(
                            model.project_id,
                            &model.name,
                            &planned.to_string(),
                            &mlmodel.file_name,
                            &mlmodel.sha256,
                        )
                        .await?
                    }
                    None => None,
                }
            }
            None => None,
        };
        let promoted_files = match &candidate_package {
            Some(package) => schema::files::count_of(self.meta.as_ref(), package.id)? > 0,
            None => false,
        };
        let with_files = promoted_files || !new.files.is_empty();
        let version_id = self.new_id()?;
        let fresh_candidate_id = self.new_id()?;
        let fresh_package_id = self.new_id()?;
        let metrics_chunk_id = self.new_id()?;
        let file_ids = (0..new.files.len())
            .map(|_| self.new_id())
            .collect::<Result<Vec<_>>>()?;
        let at = now();
        let record = self
            .write(|tx| {
                let Some(mut current_model) = schema::models::load(tx, model.id)? else {
                    return abort(Error::NotFound("Model"));
                };
                // The automatic version is allocated here, from the latest the model record keeps:
                // concurrent creators are serialized by the transaction and get distinct numbers.
                let version = match &explicit {
                    Some(v) => v.clone(),
                    None => {
                        let latest = current_model
                            .latest_version
                            .as_deref()
                            .and_then(|v| Version::parse(v).ok());
                        match semver_rules::next_patch(latest.as_ref()) {
                            Ok(next) => next,
                            Err(refused) => return abort(refused),
                        }
                    }
                };
                let version_text = version.to_string();
                if schema::versions::exists(tx, model.id, &version_text)? {
                    return abort(Error::AlreadyExists(format!(
                        "Version {version_text} already exists for model '{}'",
                        model.name
                    )));
                }
                current_model.version_seq += 1;
                current_model.updated_at = at;
                note_new_version(&mut current_model, &version);
                // The candidate: the promoted one, or a new one in the model's experiment.
                let mut candidate = match &promoted {
                    Some(c) => match schema::candidates::load(tx, c.id)? {
                        Some(c) if c.model_version_id.is_none() => c,
                        _ => {
                            return abort(Error::bad("the candidate is gone or already a version"))
                        }
                    },
                    None => candidate_record(
                        fresh_candidate_id,
                        schema::counters::next(tx, model.project_id, Sequence::CandidateIid)?,
                        &experiment,
                        caller.user_id(),
                        &NewCandidate {
                            name: Some(version_text.clone()),
                            ..NewCandidate::default()
                        },
                    ),
                };
                candidate.model_version_id = Some(version_id);
                if promoted.is_none() {
                    // The version's own record of its run is complete: it never stays running.
                    candidate.status = super::ml_records::RunStatus::Finished;
                    candidate.end_time = Some(candidate.start_time);
                }
                let run = schema::metrics::Run {
                    candidate_id: candidate.id,
                    experiment_id: candidate.experiment_id,
                };
                if let Some(source) = &inherited {
                    put_params(tx, &candidate, &source.params)?;
                    schema::metrics::log(tx, run, &source.metrics, metrics_chunk_id)?;
                    candidate.ci = ci::merge(candidate.ci.take(), source.ci.clone());
                }
                candidate.ci = ci::merge(candidate.ci.take(), new.ci.clone());
                // What a CI identity creates records its verified link, whatever was typed.
                candidate.ci = ci::merge(candidate.ci.take(), caller.ci().cloned());
                schema::put::<Candidates>(tx, &candidate)?;
                // The package: the promoted candidate's, renamed; else a new one (or one left by
                // uploads).
                let existing = schema::packages::load_by_identity(
                    tx,
                    model.project_id,
                    &model.name,
                    &version_text,
                    PackageType::MlModel,
                )?;
                let package = match (&candidate_package, existing) {
                    (Some(_), Some(_)) => {
                        return abort(Error::AlreadyExists(format!(
                            "A package {}/{version_text} already exists",
                            model.name
                        )))
                    }
                    (Some(p), None) => Package {
                        version: version_text.clone(),
                        updated_at: at,
                        ..p.clone()
                    },
                    (None, Some(p)) => p,
                    (None, None) => Package {
                        id: fresh_package_id,
                        project_id: model.project_id,
                        name: model.name.clone(),
                        version: version_text.clone(),
                        package_type: PackageType::MlModel,
                        status: PackageStatus::Default,
                        creator_id: caller.user_id(),
                        created_at: at,
                        updated_at: at,
                        ci: caller.ci().cloned(),
                    },
                };
                schema::put::<Packages>(tx, &package)?;
                for (file, id) in new.files.iter().zip(&file_ids) {
                    let referenced = PackageFile {
                        id: *id,
                        package_id: package.id,
                        project_id: model.project_id,
                        created_at: at,
                        ..file.clone()
                    };
                    schema::put::<Files>(tx, &referenced)?;
                }
                let record = ModelVersion {
                    id: version_id,
                    project_id: model.project_id,
                    model_id: model.id,
                    version: version_text.clone(),
                    seq: current_model.version_seq,
                    description: description.clone(),
                    author_id: caller.user_id(),
                    candidate_id: candidate.id,
                    package_id: package.id,
                    source: new.source.clone(),
                    source_run_id: inherited
                        .as_ref()
                        .map(|run| run.run_id.clone())
                        .or_else(|| new.run_id.clone()),
                    stage: None,
                    seal: None,
                    signature_check: signature_check.clone(),
                    created_at: at,
                    updated_at: at,
                };
                schema::put::<Versions>(tx, &record)?;
                schema::put::<Models>(tx, &current_model)?;
                schema::tags::set(tx, TagOwner::Version(version_id), &new.tags)?;
                Ok(record)
            })
            .await?;
        let promoted = new.candidate_id.is_some();
        if super::sealing::auto_seals(model.auto_seal, &record.version, promoted, with_files) {
            // A version the promotion policy refuses to seal is created unsealed; the refusal
            // is in the audit log, and a Maintainer seals it once it passes.
            return match self.check_seal_policy(caller, &model, &record).await {
                Ok(()) => self.seal_now(caller, record.id).await,
                Err(Error::PolicyRefused(refusal)) => {
                    tracing::info!(version_id = record.id, "{}", refusal.message);
                    Ok(record)
                }
                Err(other) => Err(other),
            };
        }
        Ok(record)
    }

    fn inheritance_from(&self, candidate_id: u64) -> Result<Inheritance> {
        let run = self.candidate(candidate_id)?;
        Ok(Inheritance {
            params: self.params(run.id)?,
            metrics: self.metric_history(run.id, None)?,
            ci: run.ci,
            run_id: run.run_id,
        })
    }

    fn promotable_candidate(&self, model: &Model, candidate_id: u64) -> Result<Candidate> {
        let candidate = self.candidate(candidate_id)?;
        if candidate.project_id != model.project_id {
            return Err(Error::NotFound("Candidate"));
        }
        if candidate.experiment_id != model.experiment_id {
            return Err(Error::bad(format!(
                "Candidate {} is not a run of model '{}' (its experiment is not [model]{})",
                candidate.iid, model.name, model.name
            )));
        }
        if candidate.model_version_id.is_some() {
            return Err(Error::bad(format!(
                "Candidate {} is already a model version",
                candidate.iid
            )));
        }
        Ok(candidate)
    }

    pub async fn update_version_description(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        version_id: u64,
        description: &str,
    ) -> Result<ModelVersion> {
        access.check(caller, Action::WriteRegistry)?;
        check_description(description)?;
        self.project_version(access, version_id)?;
        self.update_record::<Versions>(version_id, "Model version", |version| {
            version.description = description.to_string();
            version.updated_at = now();
        })
        .await
    }

    /// Lists what a version owns, noting the parents whose children it read.
    pub(crate) fn version_contents(
        &self,
        seen: &mut ReadSet,
        version_id: u64,
    ) -> Result<VersionContents> {
        let version = self.version(version_id)?;
        seen.note(self.meta.as_ref(), Parent::Version(version.id))?;
        let package = match schema::packages::get(self.meta.as_ref(), version.package_id)? {
            Some(package) => Some(self.package_contents(seen, package)?),
            None => None,
        };
        let candidate = match schema::candidates::get(self.meta.as_ref(), version.candidate_id)? {
            Some(c) => Some(self.candidate_contents(seen, c, false)?),
            None => None,
        };
        let tags = schema::tags::names(self.meta.as_ref(), TagOwner::Version(version.id))?;
        Ok(VersionContents {
            version,
            package,
            candidate,
            tags,
        })
    }

    /// Deletes a version with its package, its candidate and their data, in one transaction.
    /// Blobs stay until `gc`.
    pub async fn delete_version(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        version_id: u64,
    ) -> Result<()> {
        self.delete_version_unless(caller, access, version_id, |_, _| None)
            .await
    }

    /// [`Registry::delete_version`], unless `keep` (given the version and the aliases naming
    /// it, as the deleting transaction sees them) says why not: then nothing changes and the
    /// answer is [`Error::Conflict`] with that reason. A version aliased meanwhile is listed
    /// again (aliases are children of the model, whose revision the transaction checks).
    pub(crate) async fn delete_version_unless(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        version_id: u64,
        keep: impl Fn(&ModelVersion, &[String]) -> Option<String>,
    ) -> Result<()> {
        access.check(caller, Action::WriteRegistry)?;
        let version = self.project_version(access, version_id)?;
        let model_id = version.model_id;
        self.delete_listed(
            |seen| {
                seen.note(self.meta.as_ref(), Parent::Model(model_id))?;
                let contents = self.version_contents(seen, version.id)?;
                let aliases: Vec<String> = self
                    .aliases(model_id)?
                    .into_iter()
                    .filter(|(_, target)| *target == version.id)
                    .map(|(alias, _)| alias)
                    .collect();
                if let Some(why) = keep(&contents.version, &aliases) {
                    return Err(Error::Conflict(why));
                }
                // What the model's latest become without this version.
                let latest = schema::versions::highest(
                    self.meta.as_ref(),
                    model_id,
                    false,
                    Some(version.id),
                )?;
                let latest_release = schema::versions::highest(
                    self.meta.as_ref(),
                    model_id,
                    true,
                    Some(version.id),
                )?;
                Ok((contents, aliases, latest, latest_release))
            },
            |tx, (contents, aliases, latest, latest_release)| {
                remove_version_in(tx, contents)?;
                schema::tags::purge(tx, TagOwner::ModelAlias(model_id), aliases)?;
                if let Some(mut model) = schema::models::load(tx, model_id)? {
                    model.latest_version = latest.as_ref().map(|v| v.version.clone());
                    model.latest_release = latest_release.as_ref().map(|v| v.version.clone());
                    model.updated_at = now();
                    schema::put::<Models>(tx, &model)?;
                }
                Ok(())
            },
        )
        .await
    }

    /// Promotes a candidate of a model's experiment to a new version of that model.
    pub async fn promote_candidate(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        candidate_id: u64,
        version: Option<String>,
        description: Option<String>,
    ) -> Result<ModelVersion> {
        access.check(caller, Action::WriteRegistry)?;
        let candidate = self.candidate(candidate_id)?;
        if candidate.project_id != access.project.id {
            return Err(Error::NotFound("Candidate"));
        }
        let experiment = self.experiment(candidate.experiment_id)?;
        let model_id = experiment.model_id.ok_or_else(|| {
            Error::bad(format!(
                "Candidate {} belongs to experiment '{}', not to a model: only a model's candidates can be promoted",
                candidate.iid, experiment.name
            ))
        })?;
        self.create_version(
            caller,
            access,
            model_id,
            NewVersion {
                version,
                description,
                candidate_id: Some(candidate_id),
                ..NewVersion::default()
            },
        )
        .await
    }

    /// The package and target a model file goes to, with the permission checked.
    fn model_file_target(
        &self,
        access: &ProjectAccess,
        owner: ModelFileOwner,
        file_name: &str,
    ) -> Result<FileTarget> {
        let (package_name, version) = match owner {
            ModelFileOwner::Version(id) => {
                let version = self.project_version(access, id)?;
                let model = self.model(version.model_id)?;
                (model.name, version.version)
            }
            ModelFileOwner::Candidate(iid) => {
                let candidate = self.candidate_by_iid(access.project.id, iid)?;
                self.candidate_package_name(&candidate)?
            }
        };
        Ok(FileTarget {
            package_name,
            version,
            package_type: PackageType::MlModel,
            file_name: file_name.to_string(),
        })
    }

    /// `PUT /packages/ml_models/:owner/files/(:path/):file_name`.
    pub async fn upload_model_file(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        owner: ModelFileOwner,
        file_name: &str,
        incoming: IncomingFile,
    ) -> Result<PackageFile> {
        access.check(caller, Action::WriteRegistry)?;
        let target = self.model_file_target(access, owner, file_name)?;
        let limit = self.limits.model_file_bytes;
        let (_, file) = self
            .store_package_file(&access.project, caller, target, incoming, limit)
            .await?;
        Ok(file)
    }

    /// `GET /packages/ml_models/:owner/files/(:path/):file_name`.
    pub fn model_file(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        owner: ModelFileOwner,
        file_name: &str,
    ) -> Result<PackageFile> {
        access.check(caller, Action::ReadRegistry)?;
        let target = self.model_file_target(access, owner, file_name)?;
        super::trust::check_package_name(caller, &target.package_name)?;
        let package = self.find_package(access.project.id, &target)?;
        self.newest_file(package.id, file_name)
    }

    /// `PUT /packages/generic/<model>/<version>/<file>` on an existing model: the version is
    /// created if absent, then the file is added to its package.
    pub async fn upload_version_file(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        model: &Model,
        version: &str,
        file_name: &str,
        incoming: IncomingFile,
    ) -> Result<(ModelVersion, PackageFile)> {
        access.check(caller, Action::WriteRegistry)?;
        exact_semver(version)?;
        let record = match self.version_by_string(model.id, version) {
            Ok(v) => v,
            Err(Error::NotFound(_)) => {
                // The body is received and checked first: a refused upload creates no version.
                super::trust::check_package_name(caller, &model.name)?;
                let limit = self.limits.model_file_bytes;
                let received = self
                    .receive(caller, &access.project, incoming, limit)
                    .await?;
                if super::signatures::is_mlmodel(file_name) {
                    // An enforced signature check refuses before the version exists.
                    self.signature_verdict(
                        access.project.id,
                        &model.name,
                        version,
                        file_name,
                        &received.stored.digests.sha256,
                    )
                    .await?;
                }
                let created = self
                    .create_version(
                        caller,
                        access,
                        model.id,
                        NewVersion {
                            version: Some(version.to_string()),
                            ..NewVersion::default()
                        },
                    )
                    .await;
                let record = match created {
                    Ok(v) => v,
                    // A concurrent upload created it first.
                    Err(Error::AlreadyExists(_)) => self.version_by_string(model.id, version)?,
                    Err(other) => return Err(other),
                };
                let target =
                    self.model_file_target(access, ModelFileOwner::Version(record.id), file_name)?;
                let (_, file) = self
                    .record_package_file(&access.project, caller, target, received)
                    .await?;
                return Ok((record, file));
            }
            Err(other) => return Err(other),
        };
        let file = self
            .upload_model_file(
                caller,
                access,
                ModelFileOwner::Version(record.id),
                file_name,
                incoming,
            )
            .await?;
        Ok((record, file))
    }

    /// The file a version serves under a path: the newest of that name in its package.
    pub fn version_file(&self, version: &ModelVersion, file_name: &str) -> Result<PackageFile> {
        self.newest_file(version.package_id, file_name)
    }

    /// Every file of a version's package, newest record per name, by name.
    pub fn version_files(&self, version: &ModelVersion) -> Result<Vec<PackageFile>> {
        self.current_files(version.package_id)
    }
}

/// A model version's string as uploads name it: a SemVer 2.0.0 version, spelled canonically.
pub(crate) fn exact_semver(version: &str) -> Result<()> {
    let parsed = semver_rules::parse_version(version)?.to_string();
    if parsed != version {
        return Err(Error::bad(format!(
            "version '{version}' {}",
            semver_rules::SEMVER_RULE
        )));
    }
    Ok(())
}
