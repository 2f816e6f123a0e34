//! Models: create, find, list, describe, rename and delete. A model owns a default experiment
//! `[model]<name>`; its versions are in [`super::versions`].

use super::access::{Action, Caller};
use super::error::{Error, Result};
use super::experiments::{validate_tag, MODEL_EXPERIMENT_PREFIX};
use super::ml_records::{Experiment, KeyValue, Lifecycle, Model, ModelVersion, TagOwner};
use super::names;
use super::packages::name_owned_by_generic;
use super::paging::{Page, PageRequest};
use super::projects::ProjectAccess;
use super::records::{now, Package, PackageType};
use super::schema::counters::Sequence;
use super::schema::revisions::Parent;
use super::schema::{self, experiments::Experiments, models::Models, packages::Packages};
use super::semver_rules;
use super::Registry;
use crate::store::meta::abort;

pub use super::versions::{ModelFileOwner, NewVersion};

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
    version: semver::Version,
    version_id: u64,
    candidate_id: u64,
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

    fn index(self) -> schema::models::Order {
        match self {
            ModelOrder::Name => schema::models::Order::Name,
            // Ids are handed out in creation order.
            ModelOrder::CreatedAt | ModelOrder::Id => schema::models::Order::Created,
            ModelOrder::UpdatedAt => schema::models::Order::Updated,
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

pub(crate) fn check_description(description: &str) -> Result<()> {
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(Error::bad(format!(
            "description is too long: at most {MAX_DESCRIPTION} characters"
        )));
    }
    Ok(())
}

pub(crate) fn model_tag_checks(tags: &[KeyValue]) -> Result<()> {
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

/// How many models a name walk ([`Registry::models_named_from`]) reads in one batch.
const MODELS_READ_AT_ONCE: usize = 100;

impl Registry {
    pub async fn create_model(
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
        self.write(|tx| {
            if schema::models::name_taken(tx, project_id, &new.name)? {
                return abort(Error::AlreadyExists(format!(
                    "Model '{}' already exists",
                    new.name
                )));
            }
            // The same rule inside the transaction: a generic upload may have created a package
            // of this name since the check above (or, adopting, one more).
            let generic =
                schema::packages::count_named(tx, project_id, PackageType::Generic, &new.name)?;
            if generic > adoptions.len() as u64 {
                return abort(if adoptions.is_empty() {
                    name_owned_by_generic(&refused, &new.name, &[])
                } else {
                    Error::NameTaken(format!(
                        "{refused}: generic packages named '{}' were uploaded while adopting them; try again",
                        new.name
                    ))
                });
            }
            if schema::experiments::name_taken(tx, project_id, &experiment_name)? {
                return abort(Error::AlreadyExists(format!(
                    "Experiment '{experiment_name}' already exists"
                )));
            }
            let experiment = Experiment {
                id: experiment_id,
                project_id,
                iid: schema::counters::next(tx, project_id, Sequence::ExperimentIid)?,
                name: experiment_name.clone(),
                model_id: Some(model_id),
                creator_id: caller.user_id(),
                lifecycle: Lifecycle::Active,
                artifact_location: None,
                created_at: at,
                updated_at: at,
            };
            let mut model = Model {
                id: model_id,
                project_id,
                name: new.name.clone(),
                description: description.clone(),
                author_id: caller.user_id(),
                experiment_id,
                version_seq: 0,
                latest_version: None,
                latest_release: None,
                protected_aliases: Vec::new(),
                auto_seal: super::ml_records::AutoSeal::Off,
                signature_policy: super::signatures::SignaturePolicy::Off,
                promotion_rules: Vec::new(),
                retention: None,
                created_at: at,
                updated_at: at,
            };
            schema::put::<Experiments>(tx, &experiment)?;
            for adoption in &adoptions {
                model.version_seq += 1;
                adopt_in(tx, &experiment, &mut model, adoption)?;
            }
            schema::put::<Models>(tx, &model)?;
            schema::tags::set(tx, TagOwner::Model(model_id), &new.tags)?;
            Ok(model)
        }).await
    }

    /// The generic packages a new model of this name adopts, oldest first; refused when one
    /// of them is not a SemVer version (it could not be a model version).
    fn adoptions(&self, project_id: u64, name: &str) -> Result<Vec<Adoption>> {
        let packages = self.generic_packages_named(project_id, name)?;
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
                    version: semver_rules::parse_version(&package.version)?,
                    package,
                    version_id: self.new_id()?,
                    candidate_id: self.new_id()?,
                })
            })
            .collect()
    }

    /// Name ownership (DESIGN §2): a name with generic packages is not a model's.
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
        schema::models::get(self.meta.as_ref(), id)?.ok_or(Error::NotFound("Model"))
    }

    pub fn model_by_name(&self, project_id: u64, name: &str) -> Result<Model> {
        schema::models::by_name_in(self.meta.as_ref(), project_id, name)?
            .ok_or(Error::NotFound("Model"))
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

    /// How many models a project has (a kept count).
    pub fn model_count(&self, project_id: u64) -> Result<usize> {
        Ok(schema::models::count_in(self.meta.as_ref(), project_id)?)
    }

    /// The latest version (the highest release; the highest prerelease when there is none)
    /// and the number of versions, from what the model record and the counts keep.
    pub fn model_summary(&self, model: Model) -> Result<ModelSummary> {
        let mut summaries = self.model_summaries(vec![model])?;
        summaries.pop().ok_or(Error::NotFound("Model"))
    }

    /// The summaries of several models, in the order given: their latest versions and
    /// version counts read in batches (a fixed number of reads whatever their number).
    pub fn model_summaries(&self, models: Vec<Model>) -> Result<Vec<ModelSummary>> {
        let meta = self.meta.as_ref();
        let ids: Vec<u64> = models.iter().map(|m| m.id).collect();
        let counts = schema::versions::counts_of(meta, &ids)?;
        let wanted: Vec<(usize, (u64, &str))> = models
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                m.latest_release
                    .as_deref()
                    .or(m.latest_version.as_deref())
                    .map(|version| (i, (m.id, version)))
            })
            .collect();
        let pairs: Vec<(u64, &str)> = wanted.iter().map(|(_, pair)| *pair).collect();
        let mut latest: Vec<Option<ModelVersion>> = vec![None; models.len()];
        for ((i, _), found) in wanted
            .iter()
            .zip(schema::versions::by_strings_in(meta, &pairs)?)
        {
            latest[*i] = found;
        }
        Ok(models
            .into_iter()
            .zip(counts)
            .zip(latest)
            .map(|((model, version_count), latest)| ModelSummary {
                version_count,
                latest,
                model,
            })
            .collect())
    }

    /// A page of a project's models. Without a search this reads the page's index entries
    /// only; a name search reads the project's model names (never its versions).
    pub fn list_models(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        query: &ModelQuery,
        page: PageRequest,
    ) -> Result<Page<ModelSummary>> {
        access.check(caller, Action::ReadRegistry)?;
        let project_id = access.project.id;
        let needle = query
            .search
            .as_deref()
            .map(str::to_lowercase)
            .filter(|n| !n.is_empty());
        let (models, total, next) = match needle {
            None => {
                if let Some(cursor) = page.cursor() {
                    if !schema::models::cursor_fits(project_id, cursor) {
                        return Err(Error::invalid("cursor"));
                    }
                }
                let (ids, next) = schema::models::page(
                    self.meta.as_ref(),
                    project_id,
                    query.order.index(),
                    query.descending,
                    &page.seek(),
                    page.per_page,
                )?;
                let models = schema::models::get_ids(self.meta.as_ref(), &ids)?;
                (models, self.model_count(project_id)?, next)
            }
            Some(needle) => {
                if page.is_keyset() {
                    return Err(Error::bad("keyset pagination is not available with search"));
                }
                let mut ids = Vec::new();
                for entry in schema::models::names_from(self.meta.as_ref(), project_id, "") {
                    let (name, id) = entry?;
                    if name.to_lowercase().contains(&needle) {
                        ids.push(id);
                    }
                }
                let mut found = schema::models::get_ids(self.meta.as_ref(), &ids)?;
                sort_models(&mut found, query);
                let total = found.len();
                let page_of = Page::of(found, page.clone());
                (page_of.items, total, None)
            }
        };
        let items = self.model_summaries(models)?;
        Ok(Page::keyed(items, total, page, next))
    }

    /// Models whose name starts with `prefix`, by name (MLflow's `name LIKE 'prefix%'`), as a
    /// stream the caller pages through. The records are read [`MODELS_READ_AT_ONCE`] at a time
    /// (one batched read each), not one by one.
    pub fn models_named_from<'a>(
        &'a self,
        project_id: u64,
        prefix: &str,
    ) -> impl Iterator<Item = Result<Model>> + 'a {
        let mut names = schema::models::names_from(self.meta.as_ref(), project_id, prefix);
        let mut ready = std::collections::VecDeque::new();
        let mut failed = false;
        std::iter::from_fn(move || {
            if ready.is_empty() && !failed {
                let mut ids = Vec::with_capacity(MODELS_READ_AT_ONCE);
                let mut broken = None;
                for entry in names.by_ref().take(MODELS_READ_AT_ONCE) {
                    match entry {
                        Ok((_, id)) => ids.push(id),
                        Err(error) => {
                            broken = Some(error);
                            break;
                        }
                    }
                }
                // The models before a failure of the walk, then the failure; nothing after.
                match schema::models::get_ids(self.meta.as_ref(), &ids) {
                    Ok(models) => ready.extend(models.into_iter().map(Ok)),
                    Err(error) => broken = Some(error),
                }
                if let Some(error) = broken {
                    failed = true;
                    ready.push_back(Err(error.into()));
                }
            }
            ready.pop_front()
        })
    }

    pub(crate) fn project_model(&self, access: &ProjectAccess, model_id: u64) -> Result<Model> {
        let model = self.model(model_id)?;
        if model.project_id != access.project.id {
            return Err(Error::NotFound("Model"));
        }
        Ok(model)
    }

    pub async fn update_model_description(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        model_id: u64,
        description: &str,
    ) -> Result<Model> {
        access.check(caller, Action::WriteRegistry)?;
        check_description(description)?;
        self.project_model(access, model_id)?;
        self.update_record::<Models>(model_id, "Model", |model| {
            model.description = description.to_string();
            model.updated_at = now();
        })
        .await
    }

    /// Deletes a model with its versions, experiment, candidates and packages, in one
    /// transaction. Blobs stay until `gc`.
    pub async fn delete_model(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        model_id: u64,
    ) -> Result<()> {
        access.check(caller, Action::WriteRegistry)?;
        let model = self.project_model(access, model_id)?;
        self.delete_listed(
            |seen| {
                seen.note(self.meta.as_ref(), Parent::Model(model.id))?;
                let mut versions = Vec::new();
                for id in schema::versions::ids_of(self.meta.as_ref(), model.id)? {
                    versions.push(self.version_contents(seen, id)?);
                }
                let experiment = self.experiment_contents(seen, model.experiment_id)?;
                let model_tags =
                    schema::tags::names(self.meta.as_ref(), TagOwner::Model(model.id))?;
                let aliases =
                    schema::tags::names(self.meta.as_ref(), TagOwner::ModelAlias(model.id))?;
                Ok((versions, experiment, model_tags, aliases))
            },
            |tx, (versions, experiment, model_tags, aliases)| {
                for version in versions {
                    super::versions::remove_version_in(tx, version)?;
                }
                if let Some(experiment) = experiment {
                    super::experiments::remove_experiment_in(tx, experiment)?;
                }
                schema::tags::purge(tx, TagOwner::Model(model.id), model_tags)?;
                schema::tags::purge(tx, TagOwner::ModelAlias(model.id), aliases)?;
                schema::remove::<Models>(tx, &schema::id_key(model.id))?;
                schema::revisions::forget(tx, Parent::Model(model.id))?;
                Ok(())
            },
        )
        .await
    }

    /// Renames a model, its experiment and every package named after it, in one transaction.
    pub async fn rename_model(
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
        let new_experiment_name = format!("{MODEL_EXPERIMENT_PREFIX}{new_name}");
        let project_id = model.project_id;
        self.delete_listed(
            |seen| {
                seen.note(self.meta.as_ref(), Parent::Project(project_id))?;
                self.model_packages(project_id, &model.name)
            },
            |tx, packages| {
                if schema::models::name_taken(tx, project_id, new_name)? {
                    return abort(
                        Error::AlreadyExists(format!("Model '{new_name}' already exists")).into(),
                    );
                }
                if schema::packages::count_named(tx, project_id, PackageType::Generic, new_name)?
                    > 0
                {
                    return abort(name_owned_by_generic(&refused, new_name, &[]).into());
                }
                if schema::experiments::name_taken(tx, project_id, &new_experiment_name)? {
                    return abort(
                        Error::AlreadyExists(format!(
                            "Experiment '{new_experiment_name}' already exists"
                        ))
                        .into(),
                    );
                }
                for package in packages {
                    if schema::packages::load_by_identity(
                        tx,
                        project_id,
                        new_name,
                        &package.version,
                        PackageType::MlModel,
                    )?
                    .is_some()
                    {
                        return abort(
                            Error::AlreadyExists(format!(
                                "A package {new_name}/{} already exists",
                                package.version
                            ))
                            .into(),
                        );
                    }
                    let renamed = super::records::Package {
                        name: new_name.to_string(),
                        ..package.clone()
                    };
                    schema::put::<Packages>(tx, &renamed)?;
                }
                let Some(experiment) = schema::experiments::load(tx, model.experiment_id)? else {
                    return abort(Error::NotFound("Experiment").into());
                };
                schema::put::<Experiments>(
                    tx,
                    &Experiment {
                        name: new_experiment_name.clone(),
                        updated_at: now(),
                        ..experiment
                    },
                )?;
                let Some(current) = schema::models::load(tx, model.id)? else {
                    return abort(Error::NotFound("Model").into());
                };
                let renamed = Model {
                    name: new_name.to_string(),
                    updated_at: now(),
                    ..current
                };
                schema::put::<Models>(tx, &renamed)?;
                Ok(renamed)
            },
        )
        .await
    }

    /// The `ml_model` packages named after a model: its versions', candidates' and logged
    /// models'.
    fn model_packages(&self, project_id: u64, name: &str) -> Result<Vec<super::records::Package>> {
        let names = [name.to_string()];
        let mut out = Vec::new();
        for status in [
            super::records::PackageStatus::Default,
            super::records::PackageStatus::Hidden,
        ] {
            let listing = schema::packages::Listing {
                project_id,
                status,
                package_type: Some(PackageType::MlModel),
                names: Some(&names),
                order: schema::packages::Order::Created,
                descending: false,
            };
            let (ids, _) = schema::packages::page(
                self.meta.as_ref(),
                &listing,
                &schema::Seek::Offset(0),
                usize::MAX,
            )?;
            out.extend(schema::packages::get_ids(self.meta.as_ref(), &ids)?);
        }
        Ok(out)
    }
}

/// Makes a generic package the next version of a new model: the package becomes an `ml_model`
/// package (same id, files and blobs; its indexes move with it) with a version and a candidate,
/// as [`Registry::create_version`] would have made them.
fn adopt_in(
    tx: &dyn crate::store::meta::Txn,
    experiment: &Experiment,
    model: &mut Model,
    adoption: &Adoption,
) -> std::result::Result<(), crate::store::meta::TxError<Error>> {
    let Some(package) = schema::packages::load(tx, adoption.package.id)? else {
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
    if schema::packages::load_by_identity(
        tx,
        package.project_id,
        &package.name,
        &package.version,
        PackageType::MlModel,
    )?
    .is_some()
    {
        return abort(Error::AlreadyExists(format!(
            "A package {}/{} already exists",
            package.name, package.version
        )));
    }
    let at = now();
    let adopted = Package {
        package_type: PackageType::MlModel,
        updated_at: at,
        ..package.clone()
    };
    schema::put::<Packages>(tx, &adopted)?;
    let iid = schema::counters::next(tx, package.project_id, Sequence::CandidateIid)?;
    let mut candidate = super::candidates::candidate_record(
        adoption.candidate_id,
        iid,
        experiment,
        package.creator_id,
        &super::candidates::NewCandidate {
            name: Some(package.version.clone()),
            ..Default::default()
        },
    );
    candidate.model_version_id = Some(adoption.version_id);
    candidate.status = super::ml_records::RunStatus::Finished;
    candidate.end_time = Some(candidate.start_time);
    schema::put::<schema::candidates::Candidates>(tx, &candidate)?;
    let version = ModelVersion {
        id: adoption.version_id,
        project_id: package.project_id,
        model_id: model.id,
        version: package.version.clone(),
        seq: model.version_seq,
        description: String::new(),
        author_id: package.creator_id,
        candidate_id: candidate.id,
        package_id: package.id,
        source: None,
        source_run_id: None,
        stage: None,
        seal: None,
        signature_check: None,
        created_at: package.created_at,
        updated_at: at,
    };
    schema::put::<schema::versions::Versions>(tx, &version)?;
    super::versions::note_new_version(model, &adoption.version);
    Ok(())
}

fn sort_models(models: &mut [Model], query: &ModelQuery) {
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
}
