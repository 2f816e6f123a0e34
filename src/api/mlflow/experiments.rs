//! `experiments/*`: experiments are the project's experiments; `experiment_id` is the iid.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::error::{MlflowError, MlflowResult, OrNotFound};
use super::request::MlflowParams;
use super::search::{self, FieldKind, FieldValue};
use super::{empty, views, Ctx};
use crate::domain::ml_records::{Experiment, Lifecycle, TagOwner};
use crate::domain::{Error, Registry};
use crate::state::AppState;

/// The experiment an MLflow `experiment_id` names; "0" is the project's "Default" experiment.
pub async fn by_mlflow_id(registry: &Registry, ctx: &Ctx, raw: &str) -> MlflowResult<Experiment> {
    let missing = || MlflowError::not_found(format!("No Experiment with id={raw} exists"));
    let iid: u64 = raw.trim().parse().map_err(|_| missing())?;
    if iid == 0 {
        return Ok(registry
            .default_experiment(&ctx.caller, &ctx.access)
            .await?);
    }
    registry
        .experiment_by_iid(ctx.access.project.id, iid)
        .map_err(|e| match e {
            Error::NotFound(_) => missing(),
            other => other.into(),
        })
}

pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let name = params.required("name")?;
    let tags = params.key_values("tags")?;
    let location = params.str("artifact_location")?.filter(|l| !l.is_empty());
    if let Some(location) = &location {
        if location.starts_with("runs:") {
            return Err(MlflowError::invalid(format!(
                "Artifact location cannot be a runs:/ URI. Given: '{location}'"
            )));
        }
        if location.contains('#') || location.contains(';') {
            return Err(MlflowError::invalid(
                "'artifact_location' URL can't include fragments or params.",
            ));
        }
    }
    let experiment = match state
        .registry
        .create_experiment_at(&ctx.caller, &ctx.access, &name, &tags, location.as_deref())
        .await
    {
        Err(Error::AlreadyExists(_)) => {
            return Err(MlflowError::already_exists(format!(
                "Experiment(name={name}) already exists."
            )))
        }
        other => other?,
    };
    Ok(Json(json!({ "experiment_id": experiment.iid.to_string() })))
}

pub async fn get(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let experiment =
        by_mlflow_id(&state.registry, &ctx, &params.required("experiment_id")?).await?;
    Ok(Json(
        json!({ "experiment": views::experiment(&state.registry, &experiment)? }),
    ))
}

pub async fn get_by_name(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let name = params.required("experiment_name")?;
    let experiment = state
        .registry
        .experiment_by_name(ctx.access.project.id, &name)
        .or_not_found(|| format!("Could not find experiment with name '{name}'"))?;
    Ok(Json(
        json!({ "experiment": views::experiment(&state.registry, &experiment)? }),
    ))
}

fn view_type_admits(view_type: Option<&str>, lifecycle: Lifecycle) -> bool {
    match view_type
        .unwrap_or("ACTIVE_ONLY")
        .to_ascii_uppercase()
        .as_str()
    {
        "ALL" | "3" => true,
        "DELETED_ONLY" | "2" => lifecycle == Lifecycle::Deleted,
        _ => lifecycle == Lifecycle::Active,
    }
}

pub async fn search(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let registry = &state.registry;
    let clauses = search::parse_filter(&params.str("filter")?.unwrap_or_default())?;
    // MLflow's store refuses more than SEARCH_MAX_RESULTS_THRESHOLD (50,000).
    if let Some(max) = params.i64("max_results")? {
        if max > 50_000 {
            return Err(MlflowError::invalid(format!(
                "Invalid value {max} for parameter 'max_results' supplied. It must be at most 50000"
            )));
        }
    }
    let page = search::PageQuery::from_params(&params, 1000, 50_000)?;
    let view_type = params.enum_name("view_type")?;
    let mut found = Vec::new();
    for experiment in registry.experiments_stream(ctx.access.project.id)? {
        let experiment = experiment?;
        if !view_type_admits(view_type.as_deref(), experiment.lifecycle) {
            continue;
        }
        let tags = registry.tags(TagOwner::Experiment(experiment.id))?;
        let lookup = |field: &search::Field| -> Option<FieldValue> {
            match field.kind {
                FieldKind::Tag => tags
                    .iter()
                    .find(|t| t.key == field.name)
                    .map(|t| FieldValue::Str(t.value.clone())),
                FieldKind::Attribute => attribute(&experiment, &field.name),
                _ => None,
            }
        };
        if search::matches(&clauses, lookup) {
            found.push(experiment);
        }
    }
    let (found, next) = page.apply(
        found,
        |e, f| attribute(e, &f.name),
        |a, b| b.created_at.cmp(&a.created_at).then(b.iid.cmp(&a.iid)),
    );
    let items = found
        .iter()
        .map(|e| views::experiment(registry, e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(search::listing("experiments", items, next))
}

fn attribute(experiment: &Experiment, name: &str) -> Option<FieldValue> {
    match name {
        "name" => Some(FieldValue::Str(experiment.name.clone())),
        "experiment_id" | "id" => Some(FieldValue::Num(experiment.iid as f64)),
        "creation_time" | "created_at" => Some(FieldValue::Num(
            experiment.created_at.timestamp_millis() as f64,
        )),
        "last_update_time" | "updated_at" => Some(FieldValue::Num(
            experiment.updated_at.timestamp_millis() as f64,
        )),
        "lifecycle_stage" => Some(FieldValue::Str(experiment.lifecycle.as_str().into())),
        _ => None,
    }
}

pub async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let experiment =
        by_mlflow_id(&state.registry, &ctx, &params.required("experiment_id")?).await?;
    if let Some(new_name) = params.str("new_name")?.filter(|n| !n.is_empty()) {
        state
            .registry
            .rename_experiment(&ctx.caller, &ctx.access, experiment.id, &new_name)
            .await?;
    }
    Ok(empty())
}

async fn set_lifecycle(
    state: &AppState,
    ctx: &Ctx,
    params: &MlflowParams,
    lifecycle: Lifecycle,
) -> MlflowResult<Json<Value>> {
    let experiment = by_mlflow_id(&state.registry, ctx, &params.required("experiment_id")?).await?;
    state
        .registry
        .set_experiment_lifecycle(&ctx.caller, &ctx.access, experiment.id, lifecycle)
        .await?;
    Ok(empty())
}

pub async fn delete(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    set_lifecycle(&state, &ctx, &params, Lifecycle::Deleted).await
}

pub async fn restore(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    set_lifecycle(&state, &ctx, &params, Lifecycle::Active).await
}

pub async fn set_tag(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let experiment =
        by_mlflow_id(&state.registry, &ctx, &params.required("experiment_id")?).await?;
    let tag = params.key_value()?;
    state
        .registry
        .set_tags(
            &ctx.caller,
            &ctx.access,
            TagOwner::Experiment(experiment.id),
            &[tag],
        )
        .await?;
    Ok(empty())
}

pub async fn delete_tag(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let experiment =
        by_mlflow_id(&state.registry, &ctx, &params.required("experiment_id")?).await?;
    let key = params.required("key")?;
    state
        .registry
        .delete_tag(
            &ctx.caller,
            &ctx.access,
            TagOwner::Experiment(experiment.id),
            &key,
        )
        .await?;
    Ok(empty())
}
