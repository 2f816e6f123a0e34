//! `runs/*` and `metrics/get-history`: runs are candidates.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::error::{MlflowError, MlflowResult, OrNotFound};
use super::experiments::by_mlflow_id;
use super::request::{metric, MlflowParams};
use super::search::{self, FieldKind, FieldValue};
use super::{empty, views, Ctx};
use crate::domain::access::Action;
use crate::domain::candidates::{CandidateChanges, LogBatch, NewCandidate, RunOrder};
use crate::domain::ml_records::{Candidate, KeyValue, Lifecycle, RunStatus, TagOwner};
use crate::domain::paging::PageRequest;
use crate::domain::schema::merge_sorted;
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
    log(
        &state,
        &ctx,
        &candidate,
        LogBatch {
            metrics: vec![point],
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
    let batch = LogBatch {
        metrics: params.metrics("metrics")?,
        params: params.key_values("params")?,
        tags: params.key_values("tags")?,
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

/// `runs/log-inputs`: datasets are accepted and not kept. It is still a write to the run, so the
/// caller must be allowed to write runs, as for every other write.
pub async fn log_inputs(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    run_of(&state.registry, &ctx, &params)?;
    ctx.access.check(&ctx.caller, Action::WriteRegistry)?;
    Ok(empty())
}

/// `runs/outputs`: which logged models a run produced; each must exist. A write, like log-inputs.
pub async fn log_outputs(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    run_of(&state.registry, &ctx, &params)?;
    ctx.access.check(&ctx.caller, Action::WriteRegistry)?;
    if let Some(Value::Array(models)) = params.0.get("models") {
        for model in models {
            if let Some(id) = model.get("model_id").and_then(Value::as_str) {
                state
                    .registry
                    .logged_model_by_key(ctx.access.project.id, id)
                    .or_not_found(|| format!("Logged model with ID '{id}' not found"))?;
            }
        }
    }
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
    let cursor = match parse_token(params.str("page_token")?.as_deref())? {
        Token::Start => None,
        Token::Key(k) => Some(k),
        _ => return Err(MlflowError::invalid("Invalid page token")),
    };
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

/// A run's fields as a search reads them: each param, metric or tag on first use, one point
/// read each (never a metric history).
struct RunFields<'a> {
    registry: &'a Registry,
    candidate: Candidate,
}

impl RunFields<'_> {
    fn field(&self, field: &search::Field) -> Option<FieldValue> {
        let text = |s: &str| Some(FieldValue::Str(s.to_string()));
        let id = self.candidate.id;
        match field.kind {
            FieldKind::Param => self
                .registry
                .param(id, &field.name)
                .ok()
                .flatten()
                .map(FieldValue::Str),
            FieldKind::Tag => self
                .registry
                .tag(TagOwner::Candidate(id), &field.name)
                .ok()
                .flatten()
                .map(FieldValue::Str),
            FieldKind::Metric => self
                .registry
                .latest_metric(id, &field.name)
                .ok()
                .flatten()
                .map(|m| FieldValue::Num(m.value)),
            FieldKind::Attribute => match field.name.as_str() {
                "status" => text(self.candidate.status.as_str()),
                "run_name" | "name" => text(&self.candidate.name),
                "run_id" | "run_uuid" => text(&self.candidate.run_id),
                "user_id" => views::username(self.registry, self.candidate.user_id)
                    .as_deref()
                    .and_then(text),
                "start_time" | "created" => Some(FieldValue::Num(self.candidate.start_time as f64)),
                "end_time" => self.candidate.end_time.map(|t| FieldValue::Num(t as f64)),
                "lifecycle_stage" => text(self.candidate.lifecycle.as_str()),
                _ => None,
            },
        }
    }
}

/// How a search walks the runs: an index in the first `order_by`'s order, or (for orders no
/// index keeps: several clauses, params, tags, other attributes) every run, sorted.
enum Walk {
    Index(RunOrder, bool),
    Metric(String, bool),
    Sorted,
}

fn walk_for(order: &[search::OrderBy]) -> Walk {
    match order {
        [] => Walk::Index(RunOrder::StartTime, true),
        [one] => match (one.field.kind, one.field.name.as_str()) {
            (FieldKind::Attribute, "start_time" | "created") => {
                Walk::Index(RunOrder::StartTime, one.descending)
            }
            (FieldKind::Attribute, "run_name" | "name") => {
                Walk::Index(RunOrder::Name, one.descending)
            }
            (FieldKind::Metric, name) => Walk::Metric(name.to_string(), one.descending),
            _ => Walk::Sorted,
        },
        _ => Walk::Sorted,
    }
}

/// A page token: `k` and the index key the page ended at (keyset), `m` the same for the runs
/// without the ordering metric that follow the metric's index, or `o` and an offset.
enum Token {
    Start,
    Key(Vec<u8>),
    MissingMetric(Vec<u8>),
    Offset(usize),
}

fn parse_token(raw: Option<&str>) -> MlflowResult<Token> {
    use base64::Engine;
    let decode = |t: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .map_err(|_| MlflowError::invalid(format!("Invalid page token '{t}'")))
    };
    match raw.filter(|t| !t.is_empty()) {
        None => Ok(Token::Start),
        Some(t) => match t.split_at(1) {
            ("k", rest) => Ok(Token::Key(decode(rest)?)),
            ("m", rest) => Ok(Token::MissingMetric(decode(rest)?)),
            ("o", rest) => rest
                .parse()
                .map(Token::Offset)
                .map_err(|_| MlflowError::invalid(format!("Invalid page token '{t}'"))),
            _ => Err(MlflowError::invalid(format!("Invalid page token '{t}'"))),
        },
    }
}

fn key_token(kind: char, key: &[u8]) -> String {
    use base64::Engine;
    format!(
        "{kind}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
    )
}

/// Takes matching runs from an ordered stream until the page is full; the key of the last one
/// taken when more may follow.
fn fill(
    registry: &Registry,
    stream: impl Iterator<Item = crate::domain::Result<(Vec<u8>, Candidate)>>,
    clauses: &[search::Clause],
    max: usize,
    out: &mut Vec<Candidate>,
) -> MlflowResult<Option<Vec<u8>>> {
    let mut last = None;
    for entry in stream {
        let (key, candidate) = entry?;
        let fields = RunFields {
            registry,
            candidate,
        };
        if search::matches(clauses, |f| fields.field(f)) {
            if out.len() == max {
                return Ok(last);
            }
            out.push(fields.candidate);
            last = Some(key);
        }
    }
    Ok(None)
}

pub async fn search(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let registry = &state.registry;
    let clauses = search::parse_filter(&params.str("filter")?.unwrap_or_default())?;
    let order = search::parse_order_by(&params.strings("order_by")?)?;
    let max = params.i64("max_results")?.unwrap_or(1000).clamp(1, 50_000) as usize;
    let lifecycles: &[Lifecycle] = match params
        .str("run_view_type")?
        .unwrap_or_else(|| "ACTIVE_ONLY".into())
        .to_ascii_uppercase()
        .as_str()
    {
        "ALL" => &[Lifecycle::Active, Lifecycle::Deleted],
        "DELETED_ONLY" => &[Lifecycle::Deleted],
        _ => &[Lifecycle::Active],
    };
    let mut experiments = Vec::new();
    for raw_id in params.strings("experiment_ids")? {
        experiments.push(by_mlflow_id(registry, &ctx, &raw_id).await?.id);
    }
    let token = parse_token(params.str("page_token")?.as_deref())?;
    let mut found = Vec::new();
    let next = match (walk_for(&order), token) {
        (Walk::Index(order, descending), token @ (Token::Start | Token::Key(_))) => {
            let after = match &token {
                Token::Key(k) => Some(k.as_slice()),
                _ => None,
            };
            let stream =
                registry.candidates_stream(&experiments, lifecycles, order, descending, after);
            fill(registry, stream, &clauses, max, &mut found)?.map(|k| key_token('k', &k))
        }
        (
            Walk::Metric(metric, descending),
            token @ (Token::Start | Token::Key(_) | Token::MissingMetric(_)),
        ) => {
            let mut next = None;
            if !matches!(token, Token::MissingMetric(_)) {
                let after = match &token {
                    Token::Key(k) => Some(k.clone()),
                    _ => None,
                };
                let offset = Registry::metric_stream_prefix_len(&metric);
                let streams: Vec<_> = experiments
                    .iter()
                    .map(|e| {
                        let stream = registry.candidates_by_metric(
                            *e,
                            &metric,
                            descending,
                            after.as_deref(),
                        );
                        (offset, stream)
                    })
                    .collect();
                let merged =
                    merge_sorted(streams, |entry: &(Vec<u8>, Candidate)| &entry.0, descending)
                        .filter(|entry| match entry {
                            Ok((_, c)) => lifecycles.contains(&c.lifecycle),
                            Err(_) => true,
                        });
                next =
                    fill(registry, merged, &clauses, max, &mut found)?.map(|k| key_token('k', &k));
            }
            if next.is_none() && found.len() == max && !matches!(token, Token::MissingMetric(_)) {
                // The metric's runs filled the page exactly: the runs without it come next.
                next = Some(key_token('m', &[]));
            } else if next.is_none() && found.len() < max {
                // Runs without the metric come last, newest first.
                let after = match &token {
                    Token::MissingMetric(k) if !k.is_empty() => Some(k.as_slice()),
                    _ => None,
                };
                let without = registry
                    .candidates_stream(&experiments, lifecycles, RunOrder::StartTime, true, after)
                    .filter(|entry| match entry {
                        Ok((_, c)) => matches!(registry.latest_metric(c.id, &metric), Ok(None)),
                        Err(_) => true,
                    });
                let room = max - found.len();
                let mut rest = Vec::new();
                next =
                    fill(registry, without, &clauses, room, &mut rest)?.map(|k| key_token('m', &k));
                found.extend(rest);
            }
            next
        }
        (_, token) => {
            let start = match token {
                Token::Offset(n) => n,
                Token::Start => 0,
                _ => return Err(MlflowError::invalid("Invalid page token for this order_by")),
            };
            let mut all = Vec::new();
            for entry in registry.candidates_stream(
                &experiments,
                lifecycles,
                RunOrder::StartTime,
                true,
                None,
            ) {
                let (_, candidate) = entry?;
                let fields = RunFields {
                    registry,
                    candidate,
                };
                if search::matches(&clauses, |f| fields.field(f)) {
                    all.push(fields);
                }
            }
            all.sort_by(|a, b| {
                order
                    .iter()
                    .map(|o| {
                        let ord =
                            search::compare(a.field(&o.field).as_ref(), b.field(&o.field).as_ref());
                        if o.descending {
                            ord.reverse()
                        } else {
                            ord
                        }
                    })
                    .find(|o| o.is_ne())
                    .unwrap_or_else(|| b.candidate.start_time.cmp(&a.candidate.start_time))
            });
            let end = start.saturating_add(max);
            let next = (end < all.len()).then(|| format!("o{end}"));
            found = all
                .into_iter()
                .skip(start)
                .take(max)
                .map(|f| f.candidate)
                .collect();
            next
        }
    };
    let runs = found
        .iter()
        .map(|c| views::run(registry, c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(search::listing("runs", runs, next))
}
