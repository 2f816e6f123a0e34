//! `logged-models/*` (MLflow 3): models logged by runs, with their own artifacts.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::error::{MlflowError, MlflowResult, OrNotFound};
use super::experiments::by_mlflow_id;
use super::request::MlflowParams;
use super::search::{self, FieldKind, FieldValue};
use super::{empty, views, Ctx};
use crate::domain::logged_models::{LoggedModel, NewLoggedModel};
use crate::domain::ml_records::TagOwner;
use crate::domain::Registry;
use crate::state::AppState;

fn named(registry: &Registry, ctx: &Ctx, key: &str) -> MlflowResult<LoggedModel> {
    registry
        .logged_model_by_key(ctx.access.project.id, key)
        .or_not_found(|| format!("Logged model with ID '{key}' not found."))
}

fn body(registry: &Registry, model: &LoggedModel) -> MlflowResult<Json<Value>> {
    Ok(Json(
        json!({ "model": views::logged_model(registry, model)? }),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let experiment =
        by_mlflow_id(&state.registry, &ctx, &params.required("experiment_id")?).await?;
    let new = NewLoggedModel {
        experiment_id: experiment.id,
        name: params
            .str("name")?
            .filter(|n| !n.is_empty())
            .unwrap_or_else(crate::domain::logged_models::generated_name),
        source_run_id: params.str("source_run_id")?.filter(|r| !r.is_empty()),
        model_type: params.str("model_type")?,
        params: params.key_values("params")?,
        tags: params.key_values("tags")?,
    };
    let model = state
        .registry
        .create_logged_model(&ctx.caller, &ctx.access, new)
        .await?;
    body(&state.registry, &model)
}

pub async fn get(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((_, key)): Path<(String, String)>,
) -> MlflowResult<Json<Value>> {
    let model = named(&state.registry, &ctx, &key)?;
    body(&state.registry, &model)
}

/// `PATCH logged-models/:id`: finalize with a status.
pub async fn finalize(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((_, key)): Path<(String, String)>,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let model = named(&state.registry, &ctx, &key)?;
    let status = params.required("status")?;
    let updated = state
        .registry
        .set_logged_model_status(&ctx.caller, &ctx.access, model.id, &status)
        .await?;
    body(&state.registry, &updated)
}

pub async fn delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((_, key)): Path<(String, String)>,
) -> MlflowResult<Json<Value>> {
    let model = named(&state.registry, &ctx, &key)?;
    state
        .registry
        .delete_logged_model(&ctx.caller, &ctx.access, model.id)
        .await?;
    Ok(empty())
}

/// `POST logged-models/:id/params`.
pub async fn log_params(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((_, key)): Path<(String, String)>,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let model = named(&state.registry, &ctx, &key)?;
    let logged = params.key_values("params")?;
    state
        .registry
        .log_logged_model_params(&ctx.caller, &ctx.access, model.id, logged)
        .await?;
    Ok(empty())
}

/// `GET logged-models/:id/artifacts/directories?artifact_directory_path=…`: one directory of a
/// logged model's artifacts, paths relative to the model's artifact root.
pub async fn list_artifacts(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((_, key)): Path<(String, String)>,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let registry = &state.registry;
    let model = named(registry, &ctx, &key)?;
    let dir = params
        .str("artifact_directory_path")?
        .unwrap_or_default()
        .trim_matches('/')
        .to_string();
    if !dir.is_empty() {
        crate::domain::names::file_path(&dir).map_err(|_| {
            MlflowError::invalid(format!("Invalid artifact directory path '{dir}'"))
        })?;
    }
    let files = match registry.logged_model_package(&model) {
        Ok(package) => super::artifacts::listing(registry, package.id, &dir)?,
        Err(crate::domain::Error::NotFound(_)) => Vec::new(),
        Err(other) => return Err(other.into()),
    };
    let view = views::logged_model(registry, &model)?;
    Ok(Json(json!({
        "root_uri": view["info"]["artifact_uri"],
        "files": files,
    })))
}

pub async fn set_tags(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((_, key)): Path<(String, String)>,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let model = named(&state.registry, &ctx, &key)?;
    let tags = params.key_values("tags")?;
    state
        .registry
        .set_tags(
            &ctx.caller,
            &ctx.access,
            TagOwner::LoggedModel(model.id),
            &tags,
        )
        .await?;
    Ok(empty())
}

pub async fn delete_tag(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((_, key, tag)): Path<(String, String, String)>,
) -> MlflowResult<Json<Value>> {
    let model = named(&state.registry, &ctx, &key)?;
    state
        .registry
        .delete_tag(
            &ctx.caller,
            &ctx.access,
            TagOwner::LoggedModel(model.id),
            &tag,
        )
        .await
        .or_not_found(|| format!("No tag with key '{tag}' on logged model '{key}'"))?;
    Ok(empty())
}

/// A logged model's value of a search field; metrics are the latest value on one of
/// `datasets` (any dataset, or none, when empty).
fn field(
    registry: &Registry,
    model: &LoggedModel,
    field: &search::Field,
    datasets: &[(String, Option<String>)],
) -> Option<FieldValue> {
    match field.kind {
        FieldKind::Tag => registry
            .tag(TagOwner::LoggedModel(model.id), &field.name)
            .ok()
            .flatten()
            .map(FieldValue::Str),
        FieldKind::Param => model
            .params
            .iter()
            .find(|p| p.key == field.name)
            .map(|p| FieldValue::Str(p.value.clone())),
        FieldKind::Attribute => match field.name.as_str() {
            "name" => Some(FieldValue::Str(model.name.clone())),
            "model_id" => Some(FieldValue::Str(model.key.clone())),
            "source_run_id" => model.source_run_id.clone().map(FieldValue::Str),
            "status" => Some(FieldValue::Str(model.status.clone())),
            "model_type" => Some(FieldValue::Str(model.model_type.clone())),
            "creation_timestamp" | "creation_time" => {
                Some(FieldValue::Num(model.created_ms as f64))
            }
            "last_updated_timestamp" => Some(FieldValue::Num(model.updated_ms as f64)),
            _ => None,
        },
        FieldKind::Metric => registry
            .logged_model_metric(model.id, &field.name, datasets)
            .ok()
            .flatten()
            .map(FieldValue::Num),
    }
}

/// MLflow's default page of `logged-models/search`; larger pages are cut at 1000.
const SEARCH_MAX_RESULTS: i64 = 100;

pub async fn search(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let registry = &state.registry;
    let clauses = search::parse_filter(&params.str("filter")?.unwrap_or_default())?;
    let datasets = params.dataset_refs("datasets")?;
    let order = params.logged_model_order("order_by")?;
    let start = search::page_start(params.str("page_token")?.as_deref())?;
    let max = params
        .i64("max_results")?
        .unwrap_or(SEARCH_MAX_RESULTS)
        .clamp(1, 1000) as usize;
    let mut found = Vec::new();
    for raw_id in params.strings("experiment_ids")? {
        let experiment = match by_mlflow_id(registry, &ctx, &raw_id).await {
            Ok(e) => e,
            Err(MlflowError::Code {
                code: "RESOURCE_DOES_NOT_EXIST",
                ..
            }) => continue,
            Err(other) => return Err(other),
        };
        for model in registry.logged_models_of(experiment.id)? {
            if search::matches(&clauses, |f| field(registry, &model, f, &datasets)) {
                found.push(model);
            }
        }
    }
    found.sort_by(|a, b| {
        order
            .iter()
            .map(|o| {
                let ds = if o.datasets.is_empty() {
                    &datasets
                } else {
                    &o.datasets
                };
                let ord = search::compare(
                    field(registry, a, &o.order.field, ds).as_ref(),
                    field(registry, b, &o.order.field, ds).as_ref(),
                );
                if o.order.descending {
                    ord.reverse()
                } else {
                    ord
                }
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| b.created_ms.cmp(&a.created_ms).then(b.id.cmp(&a.id)))
    });
    let end = start.saturating_add(max);
    let next = (end < found.len()).then(|| end.to_string());
    let models = found
        .iter()
        .skip(start)
        .take(max)
        .map(|m| views::logged_model(registry, m))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(search::listing("models", models, next))
}
