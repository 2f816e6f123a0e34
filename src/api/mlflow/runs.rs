//! `runs/*` and `metrics/get-history`: runs are candidates.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::error::{MlflowError, MlflowResult, OrNotFound};
use super::experiments::by_mlflow_id;
use super::request::{metric, model_metric, MlflowParams};
use super::search;
use super::{empty, views, Ctx};
use crate::domain::access::Action;
use crate::domain::candidates::{CandidateChanges, LogBatch, NewCandidate};
use crate::domain::ml_records::{Candidate, KeyValue, Lifecycle, RunStatus, TagOwner};
use crate::domain::paging::PageRequest;
use crate::domain::run_search::{key_token, token_key, RunQuery};
use crate::domain::Registry;
use crate::state::AppState;

/// The run a request names by `run_id` (or `run_uuid`).
pub fn named_run(registry: &Registry, ctx: &Ctx, run_id: &str) -> MlflowResult<Candidate> {
    registry
        .candidate_by_run_id(ctx.access.project.id, run_id)
        .or_not_found(|| format!("Run with id={run_id} not found"))
}

fn run_of(registry: &Registry, ctx: &Ctx, params: &MlflowParams) -> MlflowResult<Candidate> {
    named_run(registry, ctx, &params.run_id()?)
}

pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let experiment = by_mlflow_id(
        &state.registry,
        &ctx,
        &params.str("experiment_id")?.unwrap_or_else(|| "0".into()),
    )
    .await?;
    let new = NewCandidate {
        name: params.str("run_name")?,
        user: params.str("user_id")?.filter(|u| !u.is_empty()),
        start_time: params.i64("start_time")?,
        tags: params.key_values("tags")?,
    };
    let candidate = state
        .registry
        .create_candidate(&ctx.caller, &ctx.access, experiment.id, new)
        .await?;
    Ok(Json(
        json!({ "run": views::run(&state.registry, &candidate)? }),
    ))
}

pub async fn get(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let candidate = run_of(&state.registry, &ctx, &params)?;
    Ok(Json(
        json!({ "run": views::run(&state.registry, &candidate)? }),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let candidate = run_of(&state.registry, &ctx, &params)?;
    let status = match params.str("status")? {
        None => None,
        Some(s) => Some(RunStatus::parse(&s).ok_or_else(|| {
            MlflowError::invalid(format!(
                "Invalid run status '{s}': use RUNNING, SCHEDULED, FINISHED, FAILED or KILLED"
            ))
        })?),
    };
    let changes = CandidateChanges {
        name: params.str("run_name")?,
        status,
        end_time: params.i64("end_time")?,
    };
    let updated = state
        .registry
        .update_candidate(&ctx.caller, &ctx.access, candidate.id, changes)
        .await?;
    Ok(Json(
        json!({ "run_info": views::run_info(&state.registry, &updated)? }),
    ))
}

async fn set_lifecycle(
    state: &AppState,
    ctx: &Ctx,
    params: &MlflowParams,
    lifecycle: Lifecycle,
) -> MlflowResult<Json<Value>> {
    let candidate = run_of(&state.registry, ctx, params)?;
    state
        .registry
        .set_candidate_lifecycle(&ctx.caller, &ctx.access, candidate.id, lifecycle)
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

async fn log(
    state: &AppState,
    ctx: &Ctx,
    candidate: &Candidate,
    batch: LogBatch,
) -> MlflowResult<Json<Value>> {
    state
        .registry
        .log_batch(&ctx.caller, &ctx.access, candidate.id, batch)
        .await?;
    Ok(empty())
}

pub async fn log_metric(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let candidate = run_of(&state.registry, &ctx, &params)?;
    let point = metric(&params)?;
    let model_metrics = model_metric(&params, &point)?.into_iter().collect();
    log(
        &state,
        &ctx,
        &candidate,
        LogBatch {
            metrics: vec![point],
            model_metrics,
            ..LogBatch::default()
        },
    )
    .await
}

pub async fn log_parameter(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let candidate = run_of(&state.registry, &ctx, &params)?;
    log(
        &state,
        &ctx,
        &candidate,
        LogBatch {
            params: vec![params.key_value()?],
            ..LogBatch::default()
        },
    )
    .await
}

pub async fn set_tag(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let candidate = run_of(&state.registry, &ctx, &params)?;
    log(
        &state,
        &ctx,
        &candidate,
        LogBatch {
            tags: vec![params.key_value()?],
            ..LogBatch::default()
        },
    )
    .await
}

pub async fn log_batch(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let candidate = run_of(&state.registry, &ctx, &params)?;
    let (metrics, model_metrics) = params.metrics("metrics")?;
    let batch = LogBatch {
        metrics,
        params: params.key_values("params")?,
        tags: params.key_values("tags")?,
        model_metrics,
    };
    if batch.metrics.len() + batch.params.len() + batch.tags.len() > 2000 {
        return Err(MlflowError::invalid(
            "A batch may hold at most 1000 metrics, 100 params and 100 tags",
        ));
    }
    log(&state, &ctx, &candidate, batch).await
}

pub async fn delete_tag(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let candidate = run_of(&state.registry, &ctx, &params)?;
    let key = params.required("key")?;
    state
        .registry
        .delete_tag(
            &ctx.caller,
            &ctx.access,
            TagOwner::Candidate(candidate.id),
            &key,
        )
        .await
        .or_not_found(|| {
            format!(
                "No tag with name: {key} in run with id {}",
                candidate.run_id
            )
        })?;
    Ok(empty())
}

/// `runs/log-inputs`: the datasets a run used and the logged models it took as inputs. A write,
/// like every other one.
pub async fn log_inputs(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let candidate = run_of(&state.registry, &ctx, &params)?;
    ctx.access.check(&ctx.caller, Action::WriteRegistry)?;
    let datasets = params.dataset_inputs("datasets")?;
    let models = params
        .model_refs("models")?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    state
        .registry
        .log_inputs(&ctx.caller, &ctx.access, candidate.id, datasets, models)
        .await?;
    Ok(empty())
}

/// `runs/outputs`: the logged models a run produced, each at a step; each must exist.
pub async fn log_outputs(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let candidate = run_of(&state.registry, &ctx, &params)?;
    ctx.access.check(&ctx.caller, Action::WriteRegistry)?;
    let outputs = params.model_refs("models")?;
    state
        .registry
        .log_outputs(&ctx.caller, &ctx.access, candidate.id, outputs)
        .await?;
    Ok(empty())
}

/// `runs/log-model` (MLflow 2): the model's description is kept in the run's
/// `mlflow.log-model.history` tag, as the reference server does.
pub async fn log_model(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let candidate = run_of(&state.registry, &ctx, &params)?;
    let model_json = params.required("model_json")?;
    let model: Value = serde_json::from_str(&model_json)
        .map_err(|e| MlflowError::invalid(format!("model_json is not valid JSON: {e}")))?;
    let mut history: Vec<Value> = state
        .registry
        .tag(
            TagOwner::Candidate(candidate.id),
            "mlflow.log-model.history",
        )?
        .and_then(|h| serde_json::from_str(&h).ok())
        .unwrap_or_default();
    history.push(model);
    let tag = KeyValue {
        key: "mlflow.log-model.history".into(),
        value: Value::Array(history).to_string(),
    };
    log(
        &state,
        &ctx,
        &candidate,
        LogBatch {
            tags: vec![tag],
            ..LogBatch::default()
        },
    )
    .await
}

pub async fn metric_history(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let candidate = run_of(&state.registry, &ctx, &params)?;
    let key = params.required("metric_key")?;
    let max = params
        .i64("max_results")?
        .unwrap_or(25_000)
        .clamp(1, 25_000) as usize;
    let cursor = token_key(params.str("page_token")?.as_deref())?;
    // A page of the history in step order, read from the metric's rows and no further.
    let request = match cursor {
        Some(c) => PageRequest::keyset(None, Some(c)),
        None => PageRequest::keyset(None, None),
    }
    .with_size(max);
    let (history, next) = state
        .registry
        .metric_history_after(candidate.id, &key, request)?;
    Ok(search::listing(
        "metrics",
        history.iter().map(views::metric).collect(),
        next.map(|k| key_token('k', &k)),
    ))
}

pub async fn search(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let registry = &state.registry;
    let lifecycles = match params
        .enum_name("run_view_type")?
        .unwrap_or_else(|| "ACTIVE_ONLY".into())
        .to_ascii_uppercase()
        .as_str()
    {
        "ALL" | "3" => vec![Lifecycle::Active, Lifecycle::Deleted],
        "DELETED_ONLY" | "2" => vec![Lifecycle::Deleted],
        _ => vec![Lifecycle::Active],
    };
    let mut experiments = Vec::new();
    for raw_id in params.strings("experiment_ids")? {
        experiments.push(by_mlflow_id(registry, &ctx, &raw_id).await?.id);
    }
    let query = RunQuery {
        experiments,
        clauses: search::parse_filter(&params.str("filter")?.unwrap_or_default())?,
        order: search::parse_order_by(&params.strings("order_by")?)?,
        lifecycles,
        max_results: params.max_results(1000, 50_000)?,
        page_token: params.str("page_token")?,
    };
    let page = registry.search_runs(&query)?;
    let runs = views::runs(registry, &page.runs)?;
    Ok(search::listing("runs", runs, page.next_token))
}
