//! Models and their versions. A version's files are the files of the `ml_model` package
//! `<model name>/<version>`; a version has its own candidate for params, metrics and CI link.

use semver::Version;

use super::access::{Action, Caller};
use super::ci;
use super::error::{Error, Result};
use super::experiments::{
    bump_counter, candidate_record, experiment_name_key, put_experiment, put_metrics,
    put_new_candidate, put_params, put_tags, remove_candidate_in, remove_experiment_in,
    validate_tag, CandidateContents, NewCandidate, MODEL_EXPERIMENT_PREFIX,
};
use super::ml_records::{
    Candidate, CiJob, Experiment, KeyValue, Lifecycle, MetricPoint, Model, ModelVersion, TagOwner,
};
use super::names;
use super::packages::{
    clear_generic_name, generic_name_count, name_owned_by_generic, put_file, FileTarget,
    IncomingFile,
};
use super::paging::{Page, PageRequest};
use super::projects::ProjectAccess;
use super::records::{now, Package, PackageFile, PackageStatus, PackageType};
use super::semver_rules::{self, Requirement};
use super::Registry;
use crate::store::keys::{self, Key};
use crate::store::meta::{abort, Table, TxnExt};

pub const MAX_DESCRIPTION: usize = 10_000;

#[derive(Debug, Clone, Default)]
pub struct NewModel {
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<KeyValue>,
    /// Convert the generic packages of this name into versions of the new model, in the same
    /// transaction (Maintainers only; every version must be SemVer). Without it a name that has
    /// generic packages is refused.
    pub adopt_generic_packages: bool,
}

/// A generic package to adopt as a version, with the ids its version and candidate get.
struct Adoption {
    package: Package,
    version_id: u64,
    candidate_id: u64,
}

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
    /// A run whose params, metrics and CI link the version's new candidate inherits.
    pub source_run: Option<u64>,
    /// Files the version's package references (same blobs, no bytes copied), named as they
    /// will be in the package.
    pub files: Vec<PackageFile>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ModelOrder {
    Name,
    #[default]
    CreatedAt,
    UpdatedAt,
    Id,
}

impl ModelOrder {
    pub fn parse(s: &str) -> Option<ModelOrder> {
        match s {
            "name" => Some(ModelOrder::Name),
            "created_at" | "creation_timestamp" => Some(ModelOrder::CreatedAt),
            "updated_at" | "last_updated_timestamp" => Some(ModelOrder::UpdatedAt),
            "id" => Some(ModelOrder::Id),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ModelQuery {
    /// Case-insensitive substring of the name.
    pub search: Option<String>,
    pub order: ModelOrder,
    pub descending: bool,
}

/// A model as lists show it.
#[derive(Debug, Clone)]
pub struct ModelSummary {
    pub model: Model,
    pub latest: Option<ModelVersion>,
    pub version_count: usize,
}

/// Where a model file goes: a version (by id) or a candidate (by per-project iid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFileOwner {
    Version(u64),
    Candidate(u64),
}

pub(crate) fn model_name_key(project_id: u64, name: &str) -> Vec<u8> {
    Key::new().id(project_id).str(name).build()
}

fn version_key(model_id: u64, version: &str) -> Vec<u8> {
    Key::new().id(model_id).str(version).build()
}

fn check_description(description: &str) -> Result<()> {
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(Error::bad(format!(
            "description is too long: at most {MAX_DESCRIPTION} characters"
        )));
    }
    Ok(())
}

fn model_tag_checks(tags: &[KeyValue]) -> Result<()> {
    for tag in tags {
        if tag.key.chars().count() > 255 {
            return Err(Error::bad(
                "metadata key is too long: at most 255 characters",
            ));
        }
        validate_tag(&KeyValue {
            key: tag.key.chars().take(250).collect(),
            value: tag.value.clone(),
        })?;
    }
    Ok(())
}

/// Makes a generic package the `seq`-th version of the model whose experiment is given: the
/// package becomes an `ml_model` package (same id, files and blobs) with a version and its
/// candidate, as [`Registry::create_version`] would have made them.
fn adopt_in(
    tx: &dyn crate::store::meta::Txn,
    experiment: &Experiment,
    adoption: &Adoption,
    seq: u64,
) -> Result<(), crate::store::meta::TxError<Error>> {
    let Some(package) = tx.get_json::<Package>(Table::Packages, &keys::id(adoption.package.id))?
    else {
        return abort(Error::NameTaken(format!(
            "the generic package {}/{} was deleted while adopting it; try again",
            adoption.package.name, adoption.package.version
        )));
    };
    if package.package_type != PackageType::Generic {
        return abort(Error::NameTaken(format!(
            "the package {}/{} changed while adopting it; try again",
            package.name, package.version
        )));
    }
    let model_id = experiment.model_id.unwrap_or_default();
    let package_key = |package_type: PackageType| {
        Key::new()
            .id(package.project_id)
            .str(&package.name)
            .str(&package.version)
            .str(package_type.as_str())
            .build()
    };
    if tx.exists(Table::PackagesByName, &package_key(PackageType::MlModel))? {
        return abort(Error::AlreadyExists(format!(
            "A package {}/{} already exists",
            package.name, package.version
        )));
    }
    let at = now();
    tx.delete(Table::PackagesByName, &package_key(PackageType::Generic))?;
    tx.put(
        Table::PackagesByName,
        &package_key(PackageType::MlModel),
        &keys::id(package.id),
    )?;
    let adopted = Package {
        package_type: PackageType::MlModel,
        updated_at: at,
        ..package.clone()
    };
    tx.put_json(Table::Packages, &keys::id(package.id), &adopted)?;
    let iid = bump_counter(tx, package.project_id, "candidate_iid")?;
    let mut candidate = candidate_record(
        adoption.candidate_id,
        iid,
        experiment,
        package.creator_id,
        &NewCandidate {
            name: Some(package.version.clone()),
            ..NewCandidate::default()
        },
    );
    candidate.model_version_id = Some(adoption.version_id);
    put_new_candidate(tx, &candidate, &[])?;
    let version = ModelVersion {
        id: adoption.version_id,
        project_id: package.project_id,
        model_id,
        version: package.version.clone(),
        seq,
        description: String::new(),
        author_id: package.creator_id,
        candidate_id: candidate.id,
        package_id: package.id,
        source: None,
        source_run_id: None,
        stage: None,
        created_at: package.created_at,
        updated_at: at,
    };
    tx.put_json(Table::Versions, &keys::id(version.id), &version)?;
    tx.put(
        Table::VersionsByModel,
        &version_key(model_id, &version.version),
        &keys::id(version.id),
    )?;
    Ok(())
}

/// What a version inherits from the run it was made from.
struct Inheritance {
    run_id: String,
    params: Vec<KeyValue>,
    metrics: Vec<MetricPoint>,
    ci: Option<CiJob>,
}

/// Sorts versions newest first by SemVer precedence.
pub fn sort_newest_first(versions: &mut [ModelVersion]) {
    versions.sort_by(
        |a, b| match (Version::parse(&a.version), Version::parse(&b.version)) {
            (Ok(va), Ok(vb)) => vb.cmp_precedence(&va).then_with(|| vb.cmp(&va)),
            _ => b.version.cmp(&a.version),
        },
    );
}

impl Registry {
    pub fn create_model(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        new: NewModel,
    ) -> Result<Model> {
        access.check(caller, Action::WriteRegistry)?;
        if new.adopt_generic_packages {
            access.check(caller, Action::AdoptPackages)?;
        }
        names::model_name(&new.name)?;
        let description = new.description.unwrap_or_default();
        check_description(&description)?;
        model_tag_checks(&new.tags)?;
        let project_id = access.project.id;
        let refused = format!("Model '{}' cannot be created", new.name);
        let adoptions = if new.adopt_generic_packages {
            self.adoptions(project_id, &new.name)?
        } else {
            self.check_name_is_not_generic(project_id, &new.name, &refused)?;
            Vec::new()
        };
        let model_id = self.new_id()?;
        let experiment_id = self.new_id()?;
        let experiment_name = format!("{MODEL_EXPERIMENT_PREFIX}{}", new.name);
        let at = now();
        self.meta.transaction(|tx| {
            if tx.exists(Table::ModelsByName, &model_name_key(project_id, &new.name))? {
                return abort(Error::AlreadyExists(format!(
                    "Model '{}' already exists",
                    new.name
                )));
            }
            // The same rule inside the transaction: a generic upload may have created the first
            // package of this name since the check above (or, adopting, one more).
            if generic_name_count(tx, project_id, &new.name)? > adoptions.len() as u64 {
                return abort(if adoptions.is_empty() {
                    name_owned_by_generic(&refused, &new.name, &[])
                } else {
                    Error::NameTaken(format!(
                        "{refused}: generic packages named '{}' were uploaded while adopting them; try again",
                        new.name
                    ))
                });
            }
            if tx.exists(
                Table::ExperimentsByName,
                &experiment_name_key(project_id, &experiment_name),
            )? {
                return abort(Error::AlreadyExists(format!(
                    "Experiment '{experiment_name}' already exists"
                )));
            }
            let experiment = Experiment {
                id: experiment_id,
                project_id,
                iid: bump_counter(tx, project_id, "experiment_iid")?,
                name: experiment_name.clone(),
                model_id: Some(model_id),
                creator_id: caller.user_id(),
                lifecycle: Lifecycle::Active,
                created_at: at,
                updated_at: at,
            };
            let model = Model {
                id: model_id,
                project_id,
                name: new.name.clone(),
                description: description.clone(),
                author_id: caller.user_id(),
                experiment_id,
                version_seq: adoptions.len() as u64,
                created_at: at,
                updated_at: at,
            };
            for (seq, adoption) in (1..).zip(&adoptions) {
                adopt_in(tx, &experiment, adoption, seq)?;
            }
            if !adoptions.is_empty() {
                clear_generic_name(tx, project_id, &new.name)?;
            }
            put_experiment(tx, &experiment)?;
            tx.put_json(Table::Models, &keys::id(model_id), &model)?;
            tx.put(
                Table::ModelsByName,
                &model_name_key(project_id, &model.name),
                &keys::id(model_id),
            )?;
            tx.put(
                Table::ModelsByProject,
                &Key::new().id(project_id).id(model_id).build(),
                &[],
            )?;
            put_tags(tx, TagOwner::Model(model_id), &new.tags)?;
            Ok(model)
        })
    }

    /// The generic packages a new model of this name adopts, oldest first; refused when one
    /// of them is not a SemVer version (it could not be a model version).
    fn adoptions(&self, project_id: u64, name: &str) -> Result<Vec<Adoption>> {
        let mut packages = self.generic_packages_named(project_id, name)?;
        packages.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        let not_semver: Vec<String> = packages
            .iter()
            .filter(|p| {
                semver_rules::parse_version(&p.version)
                    .map(|v| v.to_string() != p.version)
                    .unwrap_or(true)
            })
            .map(|p| format!("{name}/{}", p.version))
            .collect();
        if !not_semver.is_empty() {
            let shown: Vec<&str> = not_semver.iter().take(10).map(String::as_str).collect();
            return Err(Error::bad(format!(
                "Model '{name}' cannot adopt the generic packages of its name: {} {} not a version that {}; delete those packages first",
                shown.join(", "),
                if not_semver.len() == 1 { "is" } else { "are" },
                semver_rules::SEMVER_RULE
            )));
        }
        packages
            .into_iter()
            .map(|package| {
                Ok(Adoption {
                    package,
                    version_id: self.new_id()?,
                    candidate_id: self.new_id()?,
                })
            })
            .collect()
    }

    /// Name ownership (DESIGN §2): a name with generic packages is not a model's. This finds
    /// them all, including those written before the kept count existed; the transactions that
    /// create a model check the count again.
    fn check_name_is_not_generic(&self, project_id: u64, name: &str, refused: &str) -> Result<()> {
        let generic = self.generic_packages_named(project_id, name)?;
        if generic.is_empty() {
            return Ok(());
        }
        let mut versions: Vec<String> = generic.into_iter().map(|p| p.version).collect();
        versions.sort();
        Err(name_owned_by_generic(refused, name, &versions))
    }

    pub fn model(&self, id: u64) -> Result<Model> {
        self.meta
            .get_json(Table::Models, &keys::id(id))?
            .ok_or(Error::NotFound("Model"))
    }

    pub fn model_by_name(&self, project_id: u64, name: &str) -> Result<Model> {
        let id = self
            .meta
            .get(Table::ModelsByName, &model_name_key(project_id, name))?
            .ok_or(Error::NotFound("Model"))?;
        self.model(keys::last_id(&id).ok_or(Error::NotFound("Model"))?)
    }

    /// A model of the project by numeric id, else by name.
    pub fn find_model(&self, project_id: u64, reference: &str) -> Result<Model> {
        if let Ok(id) = reference.parse::<u64>() {
            if let Ok(model) = self.model(id) {
                if model.project_id == project_id {
                    return Ok(model);
                }
            }
        }
        self.model_by_name(project_id, reference)
    }

    pub fn models(&self, project_id: u64) -> Result<Vec<Model>> {
        self.meta
            .scan_keys(Table::ModelsByProject, &keys::id(project_id))
            .map(|key| self.model(keys::last_id(&key?).ok_or(Error::NotFound("Model"))?))
            .collect()
    }

    pub fn model_summary(&self, model: Model) -> Result<ModelSummary> {
        let versions = self.versions_of(model.id)?;
        Ok(ModelSummary {
            version_count: versions.len(),
            latest: versions.into_iter().next(),
            model,
        })
    }

    pub fn list_models(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        query: &ModelQuery,
        page: PageRequest,
    ) -> Result<Page<ModelSummary>> {
        access.check(caller, Action::ReadRegistry)?;
        let needle = query.search.as_deref().map(str::to_lowercase);
        let mut models: Vec<Model> = self
            .models(access.project.id)?
            .into_iter()
            .filter(|m| {
                needle
                    .as_deref()
                    .is_none_or(|n| m.name.to_lowercase().contains(n))
            })
            .collect();
        models.sort_by(|a, b| {
            let order = match query.order {
                ModelOrder::Name => a.name.cmp(&b.name),
                ModelOrder::CreatedAt => a.created_at.cmp(&b.created_at),
                ModelOrder::UpdatedAt => a.updated_at.cmp(&b.updated_at),
                ModelOrder::Id => a.id.cmp(&b.id),
            }
            .then(a.id.cmp(&b.id));
            if query.descending {
                order.reverse()
            } else {
                order
            }
        });
        let page = Page::of(models, page);
        let items = page
            .items
            .into_iter()
            .map(|m| self.model_summary(m))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page {
            items,
            total: page.total,
            request: page.request,
        })
    }

    fn project_model(&self, access: &ProjectAccess, model_id: u64) -> Result<Model> {
        let model = self.model(model_id)?;
        if model.project_id != access.project.id {
            return Err(Error::NotFound("Model"));
        }
        Ok(model)
    }

    pub fn update_model_description(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        model_id: u64,
        description: &str,
    ) -> Result<Model> {
        access.check(caller, Action::WriteRegistry)?;
        check_description(description)?;
        self.project_model(access, model_id)?;
        self.update_record(Table::Models, model_id, "Model", |model: &mut Model| {
            model.description = description.to_string();
            model.updated_at = now();
        })
    }

    /// Deletes a model with its versions, experiment, candidates and packages. Blobs stay until `gc`.
    pub fn delete_model(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        model_id: u64,
    ) -> Result<()> {
        access.check(caller, Action::WriteRegistry)?;
        let model = self.project_model(access, model_id)?;
        let experiment = self.experiment(model.experiment_id)?;
        let versions = self.versions_of(model.id)?;
        let mut packages = Vec::new();
        let mut tag_keys = Vec::new();
        for version in &versions {
            if let Ok(package) = self.package(model.project_id, version.package_id) {
                let files = self.package_files(package.id)?;
                packages.push((package, files));
            }
            tag_keys.extend(self.owned_tag_keys(TagOwner::Version(version.id))?);
        }
        let candidates: Vec<CandidateContents> = self
            .candidates_of(experiment.id)?
            .into_iter()
            .map(|c| {
                let own_package = c.model_version_id.is_none();
                self.candidate_contents(c, own_package)
            })
            .collect::<Result<_>>()?;
        let experiment_tags = self.owned_tag_keys(TagOwner::Experiment(experiment.id))?;
        tag_keys.extend(self.owned_tag_keys(TagOwner::Model(model.id))?);
        tag_keys.extend(self.owned_tag_keys(TagOwner::ModelAlias(model.id))?);
        self.meta.transaction(|tx| {
            for version in &versions {
                tx.delete(
                    Table::VersionsByModel,
                    &version_key(model.id, &version.version),
                )?;
                tx.delete(Table::Versions, &keys::id(version.id))?;
            }
            for (package, files) in &packages {
                super::packages::remove_package_in(tx, package, files)?;
            }
            for contents in &candidates {
                remove_candidate_in(tx, contents)?;
            }
            remove_experiment_in(tx, &experiment, &experiment_tags)?;
            for key in &tag_keys {
                tx.delete(Table::Tags, key)?;
            }
            tx.delete(
                Table::ModelsByName,
                &model_name_key(model.project_id, &model.name),
            )?;
            tx.delete(
                Table::ModelsByProject,
                &Key::new().id(model.project_id).id(model.id).build(),
            )?;
            tx.delete(Table::Models, &keys::id(model.id))?;
            Ok(())
        })
    }

    /// Renames a model, its experiment and every package named after it.
    pub fn rename_model(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        model_id: u64,
        new_name: &str,
    ) -> Result<Model> {
        access.check(caller, Action::WriteRegistry)?;
        names::model_name(new_name)?;
        let model = self.project_model(access, model_id)?;
        if model.name == new_name {
            return Ok(model);
        }
        let refused = format!("Model '{}' cannot be renamed to '{new_name}'", model.name);
        self.check_name_is_not_generic(model.project_id, new_name, &refused)?;
        let experiment = self.experiment(model.experiment_id)?;
        let packages: Vec<Package> = self
            .packages_of(model.project_id)?
            .into_iter()
            .filter(|p| p.name == model.name && p.package_type == PackageType::MlModel)
            .collect();
        let new_experiment_name = format!("{MODEL_EXPERIMENT_PREFIX}{new_name}");
        let package_key = |name: &str, version: &str| -> Vec<u8> {
            Key::new()
                .id(model.project_id)
                .str(name)
                .str(version)
                .str(PackageType::MlModel.as_str())
                .build()
        };
        self.meta.transaction(|tx| {
            if tx.exists(
                Table::ModelsByName,
                &model_name_key(model.project_id, new_name),
            )? {
                return abort(Error::AlreadyExists(format!(
                    "Model '{new_name}' already exists"
                )));
            }
            if generic_name_count(tx, model.project_id, new_name)? > 0 {
                return abort(name_owned_by_generic(&refused, new_name, &[]));
            }
            if tx.exists(
                Table::ExperimentsByName,
                &experiment_name_key(model.project_id, &new_experiment_name),
            )? {
                return abort(Error::AlreadyExists(format!(
                    "Experiment '{new_experiment_name}' already exists"
                )));
            }
            for package in &packages {
                if tx.exists(
                    Table::PackagesByName,
                    &package_key(new_name, &package.version),
                )? {
                    return abort(Error::AlreadyExists(format!(
                        "A package {new_name}/{} already exists",
                        package.version
                    )));
                }
                tx.delete(
                    Table::PackagesByName,
                    &package_key(&package.name, &package.version),
                )?;
                tx.put(
                    Table::PackagesByName,
                    &package_key(new_name, &package.version),
                    &keys::id(package.id),
                )?;
                let renamed = Package {
                    name: new_name.to_string(),
                    ..package.clone()
                };
                tx.put_json(Table::Packages, &keys::id(package.id), &renamed)?;
            }
            tx.delete(
                Table::ExperimentsByName,
                &experiment_name_key(model.project_id, &experiment.name),
            )?;
            put_experiment(
                tx,
                &Experiment {
                    name: new_experiment_name.clone(),
                    updated_at: now(),
                    ..experiment.clone()
                },
            )?;
            tx.delete(
                Table::ModelsByName,
                &model_name_key(model.project_id, &model.name),
            )?;
            tx.put(
                Table::ModelsByName,
                &model_name_key(model.project_id, new_name),
                &keys::id(model.id),
            )?;
            let renamed = Model {
                name: new_name.to_string(),
                updated_at: now(),
                ..model.clone()
            };
            tx.put_json(Table::Models, &keys::id(model.id), &renamed)?;
            Ok(renamed)
        })
    }

    fn owned_tag_keys(&self, owner: TagOwner) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .meta
            .scan_keys(Table::Tags, &owner.key_prefix())
            .collect::<Result<_, _>>()?)
    }

    pub fn version(&self, id: u64) -> Result<ModelVersion> {
        self.meta
            .get_json(Table::Versions, &keys::id(id))?
            .ok_or(Error::NotFound("Model version"))
    }

    /// A model's versions, newest (highest SemVer precedence) first.
    pub fn versions_of(&self, model_id: u64) -> Result<Vec<ModelVersion>> {
        let mut versions = self
            .meta
            .scan(Table::VersionsByModel, &keys::id(model_id))
            .map(|entry| {
                let (_, id) = entry?;
                self.version(keys::last_id(&id).ok_or(Error::NotFound("Model version"))?)
            })
            .collect::<Result<Vec<_>>>()?;
        sort_newest_first(&mut versions);
        Ok(versions)
    }

    pub fn version_by_string(&self, model_id: u64, version: &str) -> Result<ModelVersion> {
        let id = self
            .meta
            .get(Table::VersionsByModel, &version_key(model_id, version))?
            .ok_or(Error::NotFound("Model version"))?;
        self.version(keys::last_id(&id).ok_or(Error::NotFound("Model version"))?)
    }

    /// A version by its per-model sequence number (MLflow's `version`).
    pub fn version_by_seq(&self, model_id: u64, seq: u64) -> Result<ModelVersion> {
        self.versions_of(model_id)?
            .into_iter()
            .find(|v| v.seq == seq)
            .ok_or(Error::NotFound("Model version"))
    }

    /// A version of the project by id, checking it belongs there.
    pub fn project_version(&self, access: &ProjectAccess, version_id: u64) -> Result<ModelVersion> {
        let version = self.version(version_id)?;
        if version.project_id != access.project.id {
            return Err(Error::NotFound("Model version"));
        }
        Ok(version)
    }

    /// The highest version matching a requirement; 404 with the requirement named when none does.
    pub fn resolve_version(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        model: &Model,
        requirement: &str,
    ) -> Result<ModelVersion> {
        access.check(caller, Action::ReadRegistry)?;
        let requirement_parsed: Requirement = semver_rules::parse_requirement(requirement)?;
        let versions = self.versions_of(model.id)?;
        let parsed: Vec<(Version, &ModelVersion)> = versions
            .iter()
            .filter_map(|v| Version::parse(&v.version).ok().map(|p| (p, v)))
            .collect();
        let best = requirement_parsed
            .resolve(parsed.iter().map(|(p, _)| p))
            .ok_or_else(|| {
                Error::NotFoundMessage(format!(
                    "No version of model '{}' matches '{requirement}'",
                    model.name
                ))
            })?;
        parsed
            .iter()
            .find(|(p, _)| p == best)
            .map(|(_, v)| (*v).clone())
            .ok_or(Error::NotFound("Model version"))
    }

    pub fn create_version(
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
        // An automatic version can race another; try the next patch again a few times.
        for _attempt in 0..5 {
            let version = match &explicit {
                Some(v) => v.to_string(),
                None => {
                    let existing: Vec<Version> = self
                        .versions_of(model.id)?
                        .iter()
                        .filter_map(|v| Version::parse(&v.version).ok())
                        .collect();
                    semver_rules::next_patch(semver_rules::latest(existing.iter()))?.to_string()
                }
            };
            match self.insert_version(
                caller,
                &model,
                &experiment,
                &version,
                &description,
                &new,
                promoted.as_ref(),
            ) {
                Err(Error::AlreadyExists(_)) if explicit.is_none() => continue,
                other => return other,
            }
        }
        Err(Error::bad(
            "could not pick a free version number; give one explicitly",
        ))
    }

    fn inheritance_from(&self, candidate_id: u64) -> Result<Inheritance> {
        let run = self.candidate(candidate_id)?;
        let metrics = self.metric_history(run.id, None)?;
        Ok(Inheritance {
            params: self.params(run.id)?,
            metrics,
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

    #[allow(clippy::too_many_arguments)]
    fn insert_version(
        &self,
        caller: &Caller,
        model: &Model,
        experiment: &Experiment,
        version: &str,
        description: &str,
        new: &NewVersion,
        promoted: Option<&Candidate>,
    ) -> Result<ModelVersion> {
        let version_id = self.new_id()?;
        let fresh_candidate_id = self.new_id()?;
        let fresh_package_id = self.new_id()?;
        let file_ids = (0..new.files.len())
            .map(|_| self.new_id())
            .collect::<Result<Vec<_>>>()?;
        let inherited = match (new.source_run, promoted) {
            (Some(run_id), None) => Some(self.inheritance_from(run_id)?),
            _ => None,
        };
        let at = now();
        let candidate_package = match promoted {
            Some(c) => match self.candidate_package(c) {
                Ok(package) => Some(package),
                Err(Error::NotFound(_)) => None,
                Err(other) => return Err(other),
            },
            None => None,
        };
        let package_key = |name: &str, version: &str| -> Vec<u8> {
            Key::new()
                .id(model.project_id)
                .str(name)
                .str(version)
                .str(PackageType::MlModel.as_str())
                .build()
        };
        self.meta.transaction(|tx| {
            if tx.exists(Table::VersionsByModel, &version_key(model.id, version))? {
                return abort(Error::AlreadyExists(format!(
                    "Version {version} already exists for model '{}'",
                    model.name
                )));
            }
            let Some(mut current_model) =
                tx.get_json::<Model>(Table::Models, &keys::id(model.id))?
            else {
                return abort(Error::NotFound("Model"));
            };
            current_model.version_seq += 1;
            current_model.updated_at = at;
            // The candidate: the promoted one, or a new one in the model's experiment.
            let mut candidate = match promoted {
                Some(c) => match tx.get_json::<Candidate>(Table::Candidates, &keys::id(c.id))? {
                    Some(c) if c.model_version_id.is_none() => c,
                    _ => return abort(Error::bad("the candidate is gone or already a version")),
                },
                None => {
                    let iid = bump_counter(tx, model.project_id, "candidate_iid")?;
                    let new_candidate = NewCandidate {
                        name: Some(version.to_string()),
                        ..NewCandidate::default()
                    };
                    let c = candidate_record(
                        fresh_candidate_id,
                        iid,
                        experiment,
                        caller.user_id(),
                        &new_candidate,
                    );
                    put_new_candidate(tx, &c, &[])?;
                    c
                }
            };
            candidate.model_version_id = Some(version_id);
            if let Some(run) = &inherited {
                put_params(tx, candidate.id, &candidate.run_id, &run.params)?;
                put_metrics(tx, candidate.id, &run.metrics)?;
                candidate.ci = ci::merge(candidate.ci.take(), run.ci.clone());
            }
            candidate.ci = ci::merge(candidate.ci.take(), new.ci.clone());
            tx.put_json(Table::Candidates, &keys::id(candidate.id), &candidate)?;
            // The package: the promoted candidate's, renamed; else a new one (or one left by uploads).
            let target_key = package_key(&model.name, version);
            let package = match &candidate_package {
                Some(p) => {
                    if tx.exists(Table::PackagesByName, &target_key)? {
                        return abort(Error::AlreadyExists(format!(
                            "A package {}/{version} already exists",
                            model.name
                        )));
                    }
                    tx.delete(Table::PackagesByName, &package_key(&p.name, &p.version))?;
                    Package {
                        version: version.to_string(),
                        updated_at: at,
                        ..p.clone()
                    }
                }
                None => match tx.get(Table::PackagesByName, &target_key)? {
                    Some(id) => match tx.get_json::<Package>(Table::Packages, &id)? {
                        Some(p) => p,
                        None => return abort(Error::NotFound("Package")),
                    },
                    None => {
                        tx.put(
                            Table::PackagesByProject,
                            &Key::new().id(model.project_id).id(fresh_package_id).build(),
                            &[],
                        )?;
                        Package {
                            id: fresh_package_id,
                            project_id: model.project_id,
                            name: model.name.clone(),
                            version: version.to_string(),
                            package_type: PackageType::MlModel,
                            status: PackageStatus::Default,
                            creator_id: caller.user_id(),
                            created_at: at,
                            updated_at: at,
                        }
                    }
                },
            };
            tx.put_json(Table::Packages, &keys::id(package.id), &package)?;
            tx.put(Table::PackagesByName, &target_key, &keys::id(package.id))?;
            for (file, id) in new.files.iter().zip(&file_ids) {
                let referenced = PackageFile {
                    id: *id,
                    package_id: package.id,
                    project_id: model.project_id,
                    created_at: at,
                    ..file.clone()
                };
                put_file(tx, &referenced)?;
            }
            let record = ModelVersion {
                id: version_id,
                project_id: model.project_id,
                model_id: model.id,
                version: version.to_string(),
                seq: current_model.version_seq,
                description: description.to_string(),
                author_id: caller.user_id(),
                candidate_id: candidate.id,
                package_id: package.id,
                source: new.source.clone(),
                source_run_id: inherited.as_ref().map(|run| run.run_id.clone()),
                stage: None,
                created_at: at,
                updated_at: at,
            };
            tx.put_json(Table::Versions, &keys::id(version_id), &record)?;
            tx.put(
                Table::VersionsByModel,
                &version_key(model.id, version),
                &keys::id(version_id),
            )?;
            tx.put_json(Table::Models, &keys::id(model.id), &current_model)?;
            put_tags(tx, TagOwner::Version(version_id), &new.tags)?;
            Ok(record)
        })
    }

    pub fn update_version_description(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        version_id: u64,
        description: &str,
    ) -> Result<ModelVersion> {
        access.check(caller, Action::WriteRegistry)?;
        check_description(description)?;
        self.project_version(access, version_id)?;
        self.update_record(
            Table::Versions,
            version_id,
            "Model version",
            |version: &mut ModelVersion| {
                version.description = description.to_string();
                version.updated_at = now();
            },
        )
    }

    /// Deletes a version with its package, its candidate and their data. Blobs stay until `gc`.
    pub fn delete_version(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        version_id: u64,
    ) -> Result<()> {
        access.check(caller, Action::WriteRegistry)?;
        let version = self.project_version(access, version_id)?;
        let package = match self.package(version.project_id, version.package_id) {
            Ok(package) => {
                let files = self.package_files(package.id)?;
                Some((package, files))
            }
            Err(Error::NotFound(_)) => None,
            Err(other) => return Err(other),
        };
        let candidate = match self.candidate(version.candidate_id) {
            Ok(c) => Some(self.candidate_contents(c, false)?),
            Err(Error::NotFound(_)) => None,
            Err(other) => return Err(other),
        };
        let mut tags = self.owned_tag_keys(TagOwner::Version(version.id))?;
        for (alias, target) in self.aliases(version.model_id)? {
            if target == version.id {
                tags.push(
                    Key::new()
                        .raw(&TagOwner::ModelAlias(version.model_id).key_prefix())
                        .str(&alias)
                        .build(),
                );
            }
        }
        self.meta.transaction(|tx| {
            if let Some((package, files)) = &package {
                super::packages::remove_package_in(tx, package, files)?;
            }
            if let Some(contents) = &candidate {
                remove_candidate_in(tx, contents)?;
            }
            for key in &tags {
                tx.delete(Table::Tags, key)?;
            }
            tx.delete(
                Table::VersionsByModel,
                &version_key(version.model_id, &version.version),
            )?;
            tx.delete(Table::Versions, &keys::id(version.id))?;
            if let Some(mut model) =
                tx.get_json::<Model>(Table::Models, &keys::id(version.model_id))?
            {
                model.updated_at = now();
                tx.put_json(Table::Models, &keys::id(model.id), &model)?;
            }
            Ok(())
        })
    }

    /// Promotes a candidate of a model's experiment to a new version of that model.
    pub fn promote_candidate(
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
            .store_package_file(&access.project, caller.user_id(), target, incoming, limit)
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
        let parsed = semver_rules::parse_version(version)?.to_string();
        if parsed != version {
            return Err(Error::bad(format!(
                "version '{version}' {}",
                semver_rules::SEMVER_RULE
            )));
        }
        let record = match self.version_by_string(model.id, version) {
            Ok(v) => v,
            Err(Error::NotFound(_)) => {
                let created = self.create_version(
                    caller,
                    access,
                    model.id,
                    NewVersion {
                        version: Some(version.to_string()),
                        ..NewVersion::default()
                    },
                );
                match created {
                    Ok(v) => v,
                    // A concurrent upload created it first.
                    Err(Error::AlreadyExists(_)) => self.version_by_string(model.id, version)?,
                    Err(other) => return Err(other),
                }
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

    /// The newest record of each file name in a package, sorted by name.
    pub fn current_files(&self, package_id: u64) -> Result<Vec<PackageFile>> {
        let mut newest: std::collections::BTreeMap<String, PackageFile> =
            std::collections::BTreeMap::new();
        for file in self.package_files(package_id)? {
            newest.insert(file.file_name.clone(), file);
        }
        Ok(newest.into_values().collect())
    }
}
