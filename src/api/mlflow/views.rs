//! JSON shapes of MLflow's objects, as the reference server sends them. Absent values are left
//! out rather than sent as null; non-finite metric values travel as "NaN"/"Infinity".

use serde_json::{json, Map, Value};

use crate::domain::logged_models::LoggedModel;
use crate::domain::ml_records::{
    Candidate, Experiment, KeyValue, MetricPoint, Model, ModelVersion,
};
use std::collections::HashMap;

use crate::domain::ml_records::TagOwner;
use crate::domain::page_reads::RunLinks;
use crate::domain::records::User;
use crate::domain::run_links::Direction;
use crate::domain::{Error, Registry, Result};

pub fn millis(t: &crate::domain::records::Timestamp) -> i64 {
    t.timestamp_millis()
}

pub fn number(value: f64) -> Value {
    if value.is_nan() {
        json!("NaN")
    } else if value == f64::INFINITY {
        json!("Infinity")
    } else if value == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(value)
    }
}

pub fn key_values(items: &[KeyValue]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|kv| json!({ "key": kv.key, "value": kv.value }))
            .collect(),
    )
}

pub fn metric(point: &MetricPoint) -> Value {
    json!({ "key": point.key, "value": number(point.value), "timestamp": point.timestamp, "step": point.step })
}

pub fn experiment_artifact_location(experiment: &Experiment) -> String {
    format!("mlflow-artifacts:/{}", experiment.iid)
}

pub fn experiment(registry: &Registry, experiment: &Experiment) -> Result<Value> {
    let tags = registry.tags(crate::domain::ml_records::TagOwner::Experiment(
        experiment.id,
    ))?;
    Ok(json!({
        "experiment_id": experiment.iid.to_string(),
        "name": experiment.name,
        "artifact_location": experiment
            .artifact_location
            .clone()
            .unwrap_or_else(|| experiment_artifact_location(experiment)),
        "lifecycle_stage": experiment.lifecycle.as_str(),
        "last_update_time": millis(&experiment.updated_at),
        "creation_time": millis(&experiment.created_at),
        "tags": key_values(&tags),
    }))
}

/// Where a run's artifacts live: its version's package, else its own.
pub fn run_artifact_uri(experiment: &Experiment, candidate: &Candidate) -> String {
    match candidate.model_version_id {
        Some(version_id) => format!("mlflow-artifacts:/versions/{version_id}"),
        None => format!(
            "mlflow-artifacts:/{}/{}/artifacts",
            experiment.iid, candidate.run_id
        ),
    }
}

pub fn run_info(registry: &Registry, candidate: &Candidate) -> Result<Value> {
    let experiment = registry.experiment(candidate.experiment_id)?;
    let user = candidate.user_id.and_then(|id| registry.user(id).ok());
    Ok(run_info_of(candidate, &experiment, user.as_ref()))
}

/// A run's `info`, from its experiment and creator already read.
fn run_info_of(candidate: &Candidate, experiment: &Experiment, user: Option<&User>) -> Value {
    let mut info = Map::new();
    info.insert("run_id".into(), json!(candidate.run_id));
    info.insert("run_uuid".into(), json!(candidate.run_id));
    info.insert("experiment_id".into(), json!(experiment.iid.to_string()));
    info.insert("run_name".into(), json!(candidate.name));
    if let Some(user) = candidate
        .mlflow_user
        .clone()
        .or_else(|| user.map(|u| u.username.clone()))
    {
        info.insert("user_id".into(), json!(user));
    }
    info.insert("status".into(), json!(candidate.status.as_str()));
    info.insert("start_time".into(), json!(candidate.start_time));
    if let Some(end) = candidate.end_time {
        info.insert("end_time".into(), json!(end));
    }
    info.insert(
        "artifact_uri".into(),
        json!(run_artifact_uri(experiment, candidate)),
    );
    info.insert(
        "lifecycle_stage".into(),
        json!(candidate.lifecycle.as_str()),
    );
    Value::Object(info)
}

pub fn run(registry: &Registry, candidate: &Candidate) -> Result<Value> {
    let mut views = runs(registry, std::slice::from_ref(candidate))?;
    views.pop().ok_or(crate::domain::Error::NotFound("Run"))
}

/// The MLflow objects of a page of runs, what they show read for the whole page at once
/// (params, metrics, tags, inputs and outputs, experiments, creators): a fixed number of reads
/// whatever the page's size.
pub fn runs(registry: &Registry, candidates: &[Candidate]) -> Result<Vec<Value>> {
    let ids: Vec<u64> = candidates.iter().map(|c| c.id).collect();
    let owners: Vec<TagOwner> = ids.iter().map(|id| TagOwner::Candidate(*id)).collect();
    let details = registry.run_details(&ids, &owners)?;
    let links = registry.run_links_of(&ids)?;
    let experiments = registry.experiments_by_id(candidates.iter().map(|c| c.experiment_id))?;
    let users = registry.users_by_id(
        candidates
            .iter()
            .filter(|c| c.mlflow_user.is_none())
            .filter_map(|c| c.user_id),
    )?;
    candidates
        .iter()
        .zip(details)
        .zip(links)
        .map(|((candidate, details), links)| {
            let experiment = experiments
                .get(&candidate.experiment_id)
                .ok_or(crate::domain::Error::NotFound("Experiment"))?;
            let user = candidate.user_id.and_then(|id| users.get(&id));
            let metrics: Vec<Value> = details.latest_metrics.iter().map(metric).collect();
            let mut out = Map::new();
            out.insert("info".into(), run_info_of(candidate, experiment, user));
            out.insert(
                "data".into(),
                json!({ "metrics": metrics, "params": key_values(&details.params), "tags": key_values(&details.tags) }),
            );
            let (inputs, outputs) = run_inputs_outputs(&links);
            out.insert("inputs".into(), inputs);
            // MLflow 3 sends `outputs`; it is left out while empty so that MLflow 2 clients
            // never see it.
            if let Some(outputs) = outputs {
                out.insert("outputs".into(), outputs);
            }
            Ok(Value::Object(out))
        })
        .collect()
}

/// MLflow's `RunInputs` (`dataset_inputs`, `model_inputs`) and `RunOutputs` (`model_outputs`);
/// empty lists are left out, as MLflow's JSON does.
fn run_inputs_outputs(links: &RunLinks) -> (Value, Option<Value>) {
    let datasets: Vec<Value> = links
        .datasets
        .iter()
        .map(|input| {
            let d = &input.dataset;
            let mut dataset = Map::new();
            dataset.insert("name".into(), json!(d.name));
            dataset.insert("digest".into(), json!(d.digest));
            dataset.insert("source_type".into(), json!(d.source_type));
            dataset.insert("source".into(), json!(d.source));
            if let Some(schema) = &d.schema {
                dataset.insert("schema".into(), json!(schema));
            }
            if let Some(profile) = &d.profile {
                dataset.insert("profile".into(), json!(profile));
            }
            json!({ "tags": key_values(&input.tags), "dataset": dataset })
        })
        .collect();
    let model_inputs: Vec<Value> = links
        .models
        .iter()
        .filter(|l| l.direction == Direction::Input)
        .map(|l| json!({ "model_id": l.model_id }))
        .collect();
    let model_outputs: Vec<Value> = links
        .models
        .iter()
        .filter(|l| l.direction == Direction::Output)
        .map(|l| json!({ "model_id": l.model_id, "step": l.step }))
        .collect();
    let mut inputs = Map::new();
    if !datasets.is_empty() {
        inputs.insert("dataset_inputs".into(), Value::Array(datasets));
    }
    if !model_inputs.is_empty() {
        inputs.insert("model_inputs".into(), Value::Array(model_inputs));
    }
    let outputs = (!model_outputs.is_empty()).then(|| json!({ "model_outputs": model_outputs }));
    (Value::Object(inputs), outputs)
}

/// A version's MLflow object: `version` is its per-model sequence number. Its tags and aliases
/// are exactly those clients set; its SemVer string resolves as an alias without being one.
pub fn model_version(registry: &Registry, model: &Model, version: &ModelVersion) -> Result<Value> {
    let mut views = model_versions(registry, &[(model, version)])?;
    views
        .pop()
        .ok_or(crate::domain::Error::NotFound("Model version"))
}

/// The MLflow objects of a page of versions (of one model or several), their tags, aliases,
/// runs and authors read for the whole page at once.
pub fn model_versions(registry: &Registry, page: &[(&Model, &ModelVersion)]) -> Result<Vec<Value>> {
    let owners: Vec<TagOwner> = page.iter().map(|(_, v)| TagOwner::Version(v.id)).collect();
    let tags = registry.tags_of(&owners)?;
    let mut model_ids: Vec<u64> = page.iter().map(|(m, _)| m.id).collect();
    model_ids.sort_unstable();
    model_ids.dedup();
    let aliases: HashMap<u64, Vec<(String, u64)>> = model_ids
        .iter()
        .copied()
        .zip(registry.aliases_of(&model_ids)?)
        .collect();
    let runs = registry.candidates_by_id(
        page.iter()
            .filter(|(_, v)| v.source_run_id.is_none())
            .map(|(_, v)| v.candidate_id),
    )?;
    let users = registry.users_by_id(page.iter().filter_map(|(_, v)| v.author_id))?;
    Ok(page
        .iter()
        .zip(tags)
        .map(|((model, version), tags)| {
            let aliases: Vec<&str> = aliases
                .get(&model.id)
                .into_iter()
                .flatten()
                .filter(|(_, id)| *id == version.id)
                .map(|(alias, _)| alias.as_str())
                .collect();
            let run_id = match &version.source_run_id {
                Some(run_id) => run_id.clone(),
                None => runs
                    .get(&version.candidate_id)
                    .map(|c| c.run_id.clone())
                    .unwrap_or_default(),
            };
            let user = version.author_id.and_then(|id| users.get(&id));
            model_version_of(model, version, &tags, &aliases, &run_id, user)
        })
        .collect())
}

fn model_version_of(
    model: &Model,
    version: &ModelVersion,
    tags: &[KeyValue],
    aliases: &[&str],
    run_id: &str,
    user: Option<&User>,
) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), json!(model.name));
    out.insert("version".into(), json!(version.seq.to_string()));
    out.insert(
        "creation_timestamp".into(),
        json!(millis(&version.created_at)),
    );
    out.insert(
        "last_updated_timestamp".into(),
        json!(millis(&version.updated_at)),
    );
    if let Some(user) = user {
        out.insert("user_id".into(), json!(user.username));
    }
    out.insert(
        "current_stage".into(),
        json!(version.stage.as_deref().unwrap_or("None")),
    );
    out.insert("description".into(), json!(version.description));
    out.insert(
        "source".into(),
        json!(version
            .source
            .clone()
            .unwrap_or_else(|| format!("mlflow-artifacts:/versions/{}", version.id))),
    );
    out.insert("run_id".into(), json!(run_id));
    out.insert("status".into(), json!("READY"));
    out.insert("status_message".into(), json!(""));
    out.insert("run_link".into(), json!(""));
    out.insert("tags".into(), key_values(tags));
    out.insert("aliases".into(), json!(aliases));
    Value::Object(out)
}

/// The newest version of each stage, as MLflow's `latest_versions`.
pub fn latest_per_stage(
    registry: &Registry,
    model: &Model,
    stages: &[String],
) -> Result<Vec<ModelVersion>> {
    let mut latest = registry.latest_per_stage_of(std::slice::from_ref(model), stages)?;
    Ok(latest.pop().unwrap_or_default())
}

pub fn registered_model(registry: &Registry, model: &Model) -> Result<Value> {
    let mut views = registered_models(registry, std::slice::from_ref(model))?;
    views.pop().ok_or(Error::NotFound("Model"))
}

/// The views of a page of registered models, from what is read for the whole page at once:
/// tags, the latest version of each stage (with their own views), aliases, authors.
pub fn registered_models(registry: &Registry, models: &[Model]) -> Result<Vec<Value>> {
    let owners: Vec<TagOwner> = models.iter().map(|m| TagOwner::Model(m.id)).collect();
    let tags = registry.tags_of(&owners)?;
    let latest = registry.latest_per_stage_of(models, &[])?;
    let pairs: Vec<(&Model, &ModelVersion)> = models
        .iter()
        .zip(&latest)
        .flat_map(|(model, versions)| versions.iter().map(move |v| (model, v)))
        .collect();
    let mut latest_views = model_versions(registry, &pairs)?.into_iter();
    let ids: Vec<u64> = models.iter().map(|m| m.id).collect();
    let aliases = registry.aliases_of(&ids)?;
    let aliased = registry.versions_by_id(aliases.iter().flatten().map(|(_, id)| *id))?;
    let users = registry.users_by_id(models.iter().filter_map(|m| m.author_id))?;
    Ok(models
        .iter()
        .zip(tags)
        .zip(latest)
        .zip(aliases)
        .map(|(((model, tags), latest), aliases)| {
            let latest: Vec<Value> = latest_views.by_ref().take(latest.len()).collect();
            let aliases: Vec<Value> = aliases
                .into_iter()
                .filter_map(|(alias, id)| {
                    aliased
                        .get(&id)
                        .filter(|v| v.model_id == model.id)
                        .map(|v| json!({ "alias": alias, "version": v.seq.to_string() }))
                })
                .collect();
            let mut out = Map::new();
            out.insert("name".into(), json!(model.name));
            out.insert(
                "creation_timestamp".into(),
                json!(millis(&model.created_at)),
            );
            out.insert(
                "last_updated_timestamp".into(),
                json!(millis(&model.updated_at)),
            );
            if let Some(user) = model.author_id.and_then(|id| users.get(&id)) {
                out.insert("user_id".into(), json!(user.username));
            }
            out.insert("description".into(), json!(model.description));
            out.insert("latest_versions".into(), Value::Array(latest));
            out.insert("tags".into(), key_values(&tags));
            out.insert("aliases".into(), Value::Array(aliases));
            Value::Object(out)
        })
        .collect())
}

pub fn logged_model(registry: &Registry, model: &LoggedModel) -> Result<Value> {
    let experiment = registry.experiment(model.experiment_id)?;
    let tags = registry.tags(crate::domain::ml_records::TagOwner::LoggedModel(model.id))?;
    let mut info = Map::new();
    info.insert("model_id".into(), json!(model.key));
    info.insert("experiment_id".into(), json!(experiment.iid.to_string()));
    info.insert("name".into(), json!(model.name));
    info.insert("creation_timestamp_ms".into(), json!(model.created_ms));
    info.insert("last_updated_timestamp_ms".into(), json!(model.updated_ms));
    info.insert(
        "artifact_uri".into(),
        json!(format!(
            "mlflow-artifacts:/{}/models/{}/artifacts",
            experiment.iid, model.key
        )),
    );
    info.insert("status".into(), json!(model.status));
    info.insert("model_type".into(), json!(model.model_type));
    if let Some(run_id) = &model.source_run_id {
        info.insert("source_run_id".into(), json!(run_id));
    }
    info.insert("tags".into(), key_values(&tags));
    let metrics: Vec<Value> = registry
        .logged_model_metrics(model.id)?
        .iter()
        .map(|m| {
            let mut metric = Map::new();
            metric.insert("key".into(), json!(m.key));
            metric.insert("value".into(), number(m.value));
            metric.insert("timestamp".into(), json!(m.timestamp));
            metric.insert("step".into(), json!(m.step));
            if let Some(name) = &m.dataset_name {
                metric.insert("dataset_name".into(), json!(name));
            }
            if let Some(digest) = &m.dataset_digest {
                metric.insert("dataset_digest".into(), json!(digest));
            }
            metric.insert("model_id".into(), json!(model.key));
            metric.insert("run_id".into(), json!(m.run_id));
            Value::Object(metric)
        })
        .collect();
    Ok(json!({ "info": info, "data": { "params": key_values(&model.params), "metrics": metrics } }))
}
