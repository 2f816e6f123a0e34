//! `registered-models/*` and `model-versions/*`: registered models are models; a version's
//! MLflow `version` is its per-model sequence number; its SemVer string resolves like an alias
//! (`@1.2.0`, `@^1.2`) without being stored or listed as one.

use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::artifacts::resolve_artifact_path;
use super::error::{MlflowError, MlflowResult, OrNotFound};
use super::request::MlflowParams;
use super::search::{self, FieldKind, FieldValue};
use super::{empty, views, Ctx};
use crate::domain::logged_models::LoggedModel;
use crate::domain::ml_records::{Model, ModelVersion, TagOwner};
use crate::domain::models::{NewModel, NewVersion};
use crate::domain::records::PackageFile;
use crate::domain::{semver_rules, Error, Registry};
use crate::state::AppState;

/// The tag that sets the SemVer string of a version created through MLflow.
pub const VERSION_TAG: &str = "gitlab.version";

fn model_named(registry: &Registry, ctx: &Ctx, name: &str) -> MlflowResult<Model> {
    registry
        .model_by_name(ctx.access.project.id, name)
        .or_not_found(|| format!("Registered Model with name={name} not found"))
}

fn model_of(registry: &Registry, ctx: &Ctx, params: &MlflowParams) -> MlflowResult<Model> {
    model_named(registry, ctx, &params.required("name")?)
}

/// A version by MLflow `version`: its per-model sequence number. Anything but an integer is
/// MLflow's INVALID_PARAMETER_VALUE (SemVer strings name versions through aliases).
fn version_by_number(registry: &Registry, model: &Model, raw: &str) -> MlflowResult<ModelVersion> {
    let seq: u64 = raw.trim().parse().map_err(|_| {
        MlflowError::invalid(format!(
            "Parameter 'version' must be an integer, got '{raw}'."
        ))
    })?;
    registry.version_by_seq(model.id, seq).or_not_found(|| {
        format!(
            "Model Version (name={}, version={raw}) not found",
            model.name
        )
    })
}

/// The version a request names by `name` and `version`.
fn version_of(
    registry: &Registry,
    ctx: &Ctx,
    params: &MlflowParams,
) -> MlflowResult<(Model, ModelVersion)> {
    let model = model_of(registry, ctx, params)?;
    let raw = params.required("version")?;
    let version = version_by_number(registry, &model, &raw)?;
    Ok((model, version))
}

fn model_body(registry: &Registry, model: &Model) -> MlflowResult<Json<Value>> {
    Ok(Json(
        json!({ "registered_model": views::registered_model(registry, model)? }),
    ))
}

fn version_body(
    registry: &Registry,
    model: &Model,
    version: &ModelVersion,
) -> MlflowResult<Json<Value>> {
    Ok(Json(
        json!({ "model_version": views::model_version(registry, model, version)? }),
    ))
}

pub async fn create_model(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let name = params.required("name")?;
    let new = NewModel {
        name: name.clone(),
        description: params.str("description")?,
        tags: params.key_values("tags")?,
        adopt_generic_packages: false,
    };
    // A name taken by generic packages answers RESOURCE_ALREADY_EXISTS with the domain's message,
    // which names the conflict (the error mapping does that).
    let model = match state
        .registry
        .create_model(&ctx.caller, &ctx.access, new)
        .await
    {
        Err(Error::AlreadyExists(_)) => {
            return Err(MlflowError::already_exists(format!(
                "Registered Model (name={name}) already exists."
            )))
        }
        other => other?,
    };
    model_body(&state.registry, &model)
}

pub async fn get_model(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let model = model_of(&state.registry, &ctx, &params)?;
    model_body(&state.registry, &model)
}

pub async fn update_model(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let model = model_of(&state.registry, &ctx, &params)?;
    let description = params.str("description")?.unwrap_or_default();
    let updated = state
        .registry
        .update_model_description(&ctx.caller, &ctx.access, model.id, &description)
        .await?;
    model_body(&state.registry, &updated)
}

pub async fn rename_model(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let model = model_of(&state.registry, &ctx, &params)?;
    let new_name = params.required("new_name")?;
    let renamed = state
        .registry
        .rename_model(&ctx.caller, &ctx.access, model.id, &new_name)
        .await?;
    model_body(&state.registry, &renamed)
}

pub async fn delete_model(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let model = model_of(&state.registry, &ctx, &params)?;
    state
        .registry
        .delete_model(&ctx.caller, &ctx.access, model.id)
        .await?;
    Ok(empty())
}

fn model_field(registry: &Registry, model: &Model, field: &search::Field) -> Option<FieldValue> {
    match field.kind {
        FieldKind::Tag => registry
            .tag(TagOwner::Model(model.id), &field.name)
            .ok()
            .flatten()
            .map(FieldValue::Str),
        FieldKind::Attribute => match field.name.as_str() {
            "name" => Some(FieldValue::Str(model.name.clone())),
            "creation_timestamp" | "created_at" => {
                Some(FieldValue::Num(model.created_at.timestamp_millis() as f64))
            }
            "last_updated_timestamp" | "updated_at" => {
                Some(FieldValue::Num(model.updated_at.timestamp_millis() as f64))
            }
            "id" => Some(FieldValue::Num(model.id as f64)),
            _ => None,
        },
        _ => None,
    }
}

/// The models a filter can only match: an exact `name = '…'` or a `name LIKE 'prefix%'`
/// narrows the walk to that name prefix of the name index.
fn name_prefix(clauses: &[search::Clause]) -> String {
    clauses
        .iter()
        .filter(|c| c.field.kind == FieldKind::Attribute && c.field.name == "name")
        .find_map(|c| match (&c.op, &c.value) {
            (search::Op::Eq, search::Literal::Str(name)) => Some(name.clone()),
            (search::Op::Like, search::Literal::Str(pattern)) => Some(
                pattern
                    .chars()
                    .take_while(|ch| *ch != '%' && *ch != '_')
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

/// An offset page token (`o<n>`, or a bare number as earlier releases sent).
fn offset_token(params: &MlflowParams) -> MlflowResult<usize> {
    search::page_start(params.str("page_token")?.as_deref())
}

pub async fn search_models(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let registry = &state.registry;
    let clauses = search::parse_filter(&params.str("filter")?.unwrap_or_default())?;
    let order = search::parse_order_by(&params.strings("order_by")?)?;
    let by_name = match order.as_slice() {
        [] => true,
        [one] => {
            one.field.kind == FieldKind::Attribute && one.field.name == "name" && !one.descending
        }
        _ => false,
    };
    let start = offset_token(&params)?;
    let max = params.max_results(100, 1000)?;
    let models = registry.models_named_from(ctx.access.project.id, &name_prefix(&clauses));
    let (page, next) = if by_name {
        // The name index is the order: read matches until the page is full.
        let mut page = Vec::new();
        let mut seen = 0usize;
        let mut more = false;
        for model in models {
            let model = model?;
            if !search::matches(&clauses, |f| model_field(registry, &model, f)) {
                continue;
            }
            seen += 1;
            if seen <= start {
                continue;
            }
            if page.len() == max {
                more = true;
                break;
            }
            page.push(model);
        }
        let next = more.then(|| format!("o{}", start + max));
        (page, next)
    } else {
        let all = models
            .filter(|m| match m {
                Ok(m) => search::matches(&clauses, |f| model_field(registry, m, f)),
                Err(_) => true,
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (page, next) = search::PageQuery::from_params(&params, 100, 200_000)?.apply(
            all,
            |m, f| model_field(registry, m, f),
            |a, b| a.name.cmp(&b.name),
        );
        (page, next.map(|n| format!("o{n}")))
    };
    let items = views::registered_models(registry, &page)?;
    Ok(search::listing("registered_models", items, next))
}

pub async fn latest_versions(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let model = model_of(&state.registry, &ctx, &params)?;
    let stages = params.strings("stages")?;
    let latest = views::latest_per_stage(&state.registry, &model, &stages)?;
    let pairs: Vec<(&Model, &ModelVersion)> = latest.iter().map(|v| (&model, v)).collect();
    let versions = views::model_versions(&state.registry, &pairs)?;
    Ok(Json(json!({ "model_versions": versions })))
}

pub async fn set_model_tag(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let model = model_of(&state.registry, &ctx, &params)?;
    let tag = params.key_value()?;
    state
        .registry
        .set_tags(&ctx.caller, &ctx.access, TagOwner::Model(model.id), &[tag])
        .await?;
    Ok(empty())
}

pub async fn delete_model_tag(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let model = model_of(&state.registry, &ctx, &params)?;
    let key = params.required("key")?;
    state
        .registry
        .delete_tag(&ctx.caller, &ctx.access, TagOwner::Model(model.id), &key)
        .await
        .or_not_found(|| format!("Registered model tag {key} not found"))?;
    Ok(empty())
}

pub async fn set_alias(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let (_, version) = version_of(&state.registry, &ctx, &params)?;
    let alias = params.required("alias")?;
    state
        .registry
        .set_alias(&ctx.caller, &ctx.access, &version, &alias)
        .await?;
    Ok(empty())
}

pub async fn get_alias(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let model = model_of(&state.registry, &ctx, &params)?;
    let alias = params.required("alias")?;
    // The reference server answers a missing alias with 400 INVALID_PARAMETER_VALUE.
    let version = match state.registry.version_by_alias(model.id, &alias) {
        Err(Error::NotFoundMessage(message)) => return Err(MlflowError::invalid(message)),
        other => other?,
    };
    version_body(&state.registry, &model, &version)
}

pub async fn delete_alias(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let model = model_of(&state.registry, &ctx, &params)?;
    let alias = params.required("alias")?;
    state
        .registry
        .delete_alias(&ctx.caller, &ctx.access, model.id, &alias)
        .await?;
    Ok(empty())
}

/// What a version's `source` names: the files it references (each renamed relative to the
/// source), the run of this project it is linked to, the MLflow `run_id` it came from (kept as
/// given, wherever that run lives), and the logged model or registered version it was made from.
#[derive(Default)]
struct Source {
    files: Vec<PackageFile>,
    run: Option<u64>,
    run_id: Option<String>,
    logged_model: Option<LoggedModel>,
    version: Option<(Model, ModelVersion)>,
}

fn source_of(
    registry: &Registry,
    ctx: &Ctx,
    source: &str,
    model_id: Option<&str>,
) -> MlflowResult<Source> {
    let project_id = ctx.access.project.id;
    let from_package = |package: Result<crate::domain::records::Package, Error>,
                        path: &str|
     -> MlflowResult<Vec<PackageFile>> {
        match package {
            Ok(package) => Ok(registry.files_under(package.id, path)?),
            Err(Error::NotFound(_)) => Ok(Vec::new()),
            Err(other) => Err(other.into()),
        }
    };
    let logged = |key: &str| -> MlflowResult<Source> {
        let logged = registry
            .logged_model_by_key(project_id, key)
            .or_not_found(|| format!("Logged model with ID '{key}' not found"))?;
        let files = from_package(registry.logged_model_package(&logged), "")?;
        let run = logged
            .source_run_id
            .as_deref()
            .and_then(|id| registry.candidate_by_run_id(project_id, id).ok())
            .map(|c| c.id);
        Ok(Source {
            files,
            run,
            run_id: logged.source_run_id.clone(),
            logged_model: Some(logged),
            version: None,
        })
    };
    if let Some(rest) = source.strip_prefix("runs:/") {
        let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
        // A run of another project (or of none) is kept as the client named it, as MLflow does;
        // nothing of it is read.
        return match registry.candidate_by_run_id(project_id, run_id) {
            Ok(run) => Ok(Source {
                files: from_package(registry.candidate_package(&run), path)?,
                run: Some(run.id),
                run_id: Some(run.run_id),
                ..Source::default()
            }),
            Err(Error::NotFound(_)) => Ok(Source {
                run_id: (!run_id.is_empty()).then(|| run_id.to_string()),
                ..Source::default()
            }),
            Err(other) => Err(other.into()),
        };
    }
    if let Some(key) = model_id.filter(|k| !k.is_empty()) {
        return logged(key);
    }
    if let Some(rest) = source.strip_prefix("models:/") {
        let key = rest.trim_end_matches('/');
        if key.starts_with("m-") && !key.contains('/') {
            return logged(key);
        }
        // models:/<name>/<version>: the files of another registered version.
        if let Some((name, version)) = rest.rsplit_once('/') {
            let model = model_named(registry, ctx, name)?;
            let version = match version.parse::<u64>() {
                Ok(_) => version_by_number(registry, &model, version)?,
                Err(_) => registry
                    .version_by_string(model.id, version)
                    .or_not_found(|| {
                        format!("Model Version (name={name}, version={version}) not found")
                    })?,
            };
            return Ok(Source {
                files: registry.version_files(&version)?,
                version: Some((model, version)),
                ..Source::default()
            });
        }
        return Err(MlflowError::invalid(format!(
            "Invalid model version source: '{source}'"
        )));
    }
    if let Some(path) = source.strip_prefix("mlflow-artifacts:") {
        let resolved = resolve_artifact_path(registry, ctx, path.trim_start_matches('/'))?;
        let package = registry.find_package(project_id, &resolved.target);
        let files = from_package(package, &resolved.target.file_name)?;
        let run_id = match resolved.run {
            Some(id) => Some(registry.candidate(id)?.run_id),
            None => None,
        };
        return Ok(Source {
            files,
            run: resolved.run,
            run_id,
            ..Source::default()
        });
    }
    Ok(Source::default())
}

pub async fn create_version(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let registry = &state.registry;
    let model = model_of(registry, &ctx, &params)?;
    let tags = params.key_values("tags")?;
    let source = params.str("source")?.unwrap_or_default();
    let found = source_of(registry, &ctx, &source, params.str("model_id")?.as_deref())?;
    // A copy of a version (`copy_model_version`: source `models:/<name>/<version>`) carries the
    // source's tags; its `gitlab.version` names the source's SemVer, not the copy's, so the
    // copy takes the next version instead and does not keep that tag.
    let tags: Vec<_> = match &found.version {
        Some((_, source_version)) => tags
            .into_iter()
            .filter(|t| !(t.key == VERSION_TAG && t.value == source_version.version))
            .collect(),
        None => tags,
    };
    let semver = match tags.iter().find(|t| t.key == VERSION_TAG) {
        Some(tag) => Some(semver_rules::parse_version(&tag.value).map_err(|e| {
            MlflowError::invalid(format!(
                "Invalid value '{}' for tag {VERSION_TAG}: {e}",
                tag.value
            ))
        })?),
        None => None,
    };
    // `run_id` is stored as given (MLflow does); it is linked when it is a run of this project.
    let (source_run, run_id) = match params.str("run_id")?.filter(|r| !r.is_empty()) {
        Some(run_id) => match registry.candidate_by_run_id(ctx.access.project.id, &run_id) {
            Ok(run) => (Some(run.id), Some(run_id)),
            Err(Error::NotFound(_)) => (None, Some(run_id)),
            Err(other) => return Err(other.into()),
        },
        None => (found.run, found.run_id.clone()),
    };
    let new = NewVersion {
        version: semver.map(|v| v.to_string()),
        description: params.str("description")?,
        tags,
        source: (!source.is_empty()).then_some(source),
        source_run,
        run_id,
        files: found.files,
        ..NewVersion::default()
    };
    let version = registry
        .create_version(&ctx.caller, &ctx.access, model.id, new)
        .await
        .map_err(|e| match e {
            Error::AlreadyExists(message) => MlflowError::invalid(message),
            other => other.into(),
        })?;
    if let Some(logged) = &found.logged_model {
        note_model_version(registry, &ctx, logged, &model, &version).await?;
    }
    version_body(registry, &model, &version)
}

/// MLflow's `mlflow.modelVersions` tag of a logged model: the versions registered from it, as a
/// JSON list of `{"name", "version"}` (the number), in the reference server's spelling.
async fn note_model_version(
    registry: &Registry,
    ctx: &Ctx,
    logged: &LoggedModel,
    model: &Model,
    version: &ModelVersion,
) -> MlflowResult<()> {
    const TAG: &str = "mlflow.modelVersions";
    let owner = TagOwner::LoggedModel(logged.id);
    let mut entries: Vec<String> = match registry.tag(owner, TAG)? {
        Some(text) => match serde_json::from_str::<Vec<Value>>(&text) {
            Ok(items) => items.iter().map(python_json).collect(),
            Err(_) => Vec::new(),
        },
        None => Vec::new(),
    };
    entries.push(format!(
        "{{\"name\": {}, \"version\": {}}}",
        Value::String(model.name.clone()),
        version.seq
    ));
    let tag = crate::domain::ml_records::KeyValue {
        key: TAG.into(),
        value: format!("[{}]", entries.join(", ")),
    };
    registry
        .set_tags(&ctx.caller, &ctx.access, owner, &[tag])
        .await?;
    Ok(())
}

/// JSON as Python's `json.dumps` spells it (`", "` and `": "` separators).
fn python_json(value: &Value) -> String {
    match value {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(python_json).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), python_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

pub async fn get_version(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let (model, version) = version_of(&state.registry, &ctx, &params)?;
    version_body(&state.registry, &model, &version)
}

pub async fn update_version(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let (model, version) = version_of(&state.registry, &ctx, &params)?;
    let updated = match params.str("description")? {
        Some(description) => {
            let updated = state
                .registry
                .update_version_description(&ctx.caller, &ctx.access, version.id, &description)
                .await?;
            updated
        }
        None => version,
    };
    version_body(&state.registry, &model, &updated)
}

pub async fn delete_version(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let (_, version) = version_of(&state.registry, &ctx, &params)?;
    state
        .registry
        .delete_version(&ctx.caller, &ctx.access, version.id)
        .await?;
    Ok(empty())
}

fn version_field(
    registry: &Registry,
    model: &Model,
    version: &ModelVersion,
    field: &search::Field,
) -> Option<FieldValue> {
    match field.kind {
        FieldKind::Tag => registry
            .tag(TagOwner::Version(version.id), &field.name)
            .ok()
            .flatten()
            .map(FieldValue::Str),
        FieldKind::Attribute => match field.name.as_str() {
            "name" => Some(FieldValue::Str(model.name.clone())),
            "version" | "version_number" => Some(FieldValue::Num(version.seq as f64)),
            "run_id" => version
                .source_run_id
                .clone()
                .or_else(|| {
                    registry
                        .candidate(version.candidate_id)
                        .ok()
                        .map(|c| c.run_id)
                })
                .map(FieldValue::Str),
            "source" | "source_path" => version.source.clone().map(FieldValue::Str),
            "current_stage" => Some(FieldValue::Str(
                version.stage.clone().unwrap_or_else(|| "None".into()),
            )),
            "creation_timestamp" => {
                Some(FieldValue::Num(version.created_at.timestamp_millis() as f64))
            }
            "last_updated_timestamp" => {
                Some(FieldValue::Num(version.updated_at.timestamp_millis() as f64))
            }
            _ => None,
        },
        _ => None,
    }
}

pub async fn search_versions(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let registry = &state.registry;
    let clauses = search::parse_filter(&params.str("filter")?.unwrap_or_default())?;
    // MLflow's cap on the page (the page itself is read by `PageQuery` below).
    params.max_results(10_000, 200_000)?;
    let query = search::PageQuery::from_params(&params, 10_000, 200_000)?;
    let project_id = ctx.access.project.id;
    let (page, next) = if query.is_ordered() {
        // An explicit order: the matches of the models the filter's name narrows to are read and
        // sorted (ties: name, then newest number).
        let mut found: Vec<(Model, ModelVersion)> = Vec::new();
        for model in registry.models_named_from(project_id, &name_prefix(&clauses)) {
            let model = model?;
            for version in registry.versions_by_seq(&model, true) {
                let version = version?;
                if search::matches(&clauses, |f| version_field(registry, &model, &version, f)) {
                    found.push((model.clone(), version));
                }
            }
        }
        query.apply(
            found,
            |(m, v), f| version_field(registry, m, v, f),
            |a, b| a.0.name.cmp(&b.0.name).then(b.1.seq.cmp(&a.1.seq)),
        )
    } else {
        // MLflow's default order, the most recently updated first, read from the index in that
        // order until the page is full: one model's index when the filter's name names one
        // model, else the project's.
        let mut narrowed = registry.models_named_from(project_id, &name_prefix(&clauses));
        let only = match (narrowed.next().transpose()?, narrowed.next()) {
            (Some(model), None) => Some(model),
            _ => None,
        };
        let versions: Box<dyn Iterator<Item = Result<ModelVersion, _>>> = match &only {
            Some(model) => Box::new(registry.versions_by_updated(model)),
            None => Box::new(registry.project_versions_by_updated(project_id)),
        };
        let mut models: HashMap<u64, Model> = only.iter().map(|m| (m.id, m.clone())).collect();
        let matches = versions.filter_map(|version| {
            let with_model = version.and_then(|version| {
                let model = match models.get(&version.model_id) {
                    Some(model) => model.clone(),
                    None => {
                        let model = registry.model(version.model_id)?;
                        models.insert(model.id, model.clone());
                        model
                    }
                };
                Ok((model, version))
            });
            match with_model {
                Ok((model, version)) => {
                    search::matches(&clauses, |f| version_field(registry, &model, &version, f))
                        .then_some(Ok((model, version)))
                }
                Err(error) => Some(Err(error)),
            }
        });
        query.cut(matches)?
    };
    let next = next.map(|n| format!("o{n}"));
    let pairs: Vec<(&Model, &ModelVersion)> = page.iter().map(|(m, v)| (m, v)).collect();
    let items = views::model_versions(registry, &pairs)?;
    Ok(search::listing("model_versions", items, next))
}

pub async fn set_version_tag(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let (_, version) = version_of(&state.registry, &ctx, &params)?;
    let tag = params.key_value()?;
    state
        .registry
        .set_tags(
            &ctx.caller,
            &ctx.access,
            TagOwner::Version(version.id),
            &[tag],
        )
        .await?;
    Ok(empty())
}

pub async fn delete_version_tag(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let (_, version) = version_of(&state.registry, &ctx, &params)?;
    let key = params.required("key")?;
    state
        .registry
        .delete_tag(
            &ctx.caller,
            &ctx.access,
            TagOwner::Version(version.id),
            &key,
        )
        .await
        .or_not_found(|| format!("Model version tag {key} not found"))?;
    Ok(empty())
}

/// Where a version's files are: its own package, wherever they came from.
pub async fn download_uri(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let (_, version) = version_of(&state.registry, &ctx, &params)?;
    Ok(Json(
        json!({ "artifact_uri": format!("mlflow-artifacts:/versions/{}", version.id) }),
    ))
}

pub async fn transition_stage(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let (model, version) = version_of(&state.registry, &ctx, &params)?;
    let stage = params.required("stage")?;
    let archive = params.bool("archive_existing_versions")?.unwrap_or(false);
    let updated = state
        .registry
        .transition_stage(&ctx.caller, &ctx.access, &version, &stage, archive)
        .await?;
    version_body(&state.registry, &model, &updated)
}
