//! Model experiments: the list, and an experiment's runs with their params and metrics.

use std::collections::{BTreeMap, BTreeSet};

use axum::response::Response;
use maud::html;

use super::models::{ci_job_link, status_badge};
use super::{user_name, Ctx};
use crate::domain::candidates::RunOrder;
use crate::domain::ml_records::Lifecycle;
use crate::domain::paging::PageRequest;
use crate::domain::Error;
use crate::web::error::WebResult;
use crate::web::layout::{self, Crumb};

/// At most this many param and metric columns; the candidate page shows the rest.
const MAX_COLUMNS: usize = 8;

pub fn index(ctx: &Ctx) -> WebResult<Response> {
    let registry = ctx.registry();
    let experiments = registry.experiments_page(
        ctx.access.project.id,
        true,
        PageRequest::new(None, Some(PageRequest::MAX_PER_PAGE)),
    )?;
    let experiment_total = experiments.total;
    let mut rows = Vec::with_capacity(experiments.items.len());
    for experiment in experiments.items {
        let runs = registry.candidate_count(experiment.id, Lifecycle::Active)?
            + registry.candidate_count(experiment.id, Lifecycle::Deleted)?;
        rows.push((experiment, runs));
    }
    let body = html! {
        div.page-head {
            div {
                h1 { "Model experiments " span.count { (experiment_total) } }
                p.subtitle { "Experiments group runs (candidates) with their params, metrics and artifacts. Every model has one." }
            }
        }
        @if rows.is_empty() {
            div.empty-state {
                h2 { "No experiments yet" }
                p { "Log runs with the MLflow client pointed at this project:" }
                (layout::snippet(&format!("export MLFLOW_TRACKING_URI=\"{}/ml/mlflow\"\nexport MLFLOW_TRACKING_TOKEN=\"<your personal access token>\"", ctx.api_root())))
            }
        } @else {
            table.list #experiments {
                thead { tr { th { "Experiment" } th.num { "Candidates" } th { "Model" } th { "Creator" } th { "Created" } } }
                tbody {
                    @for (experiment, runs) in &rows {
                        tr {
                            td { a href=(ctx.ml(&format!("experiments/{}", experiment.iid))) { strong { (experiment.name) } } }
                            td.num { (runs) }
                            td {
                                @match experiment.model_id {
                                    Some(id) => a href=(ctx.ml(&format!("models/{id}"))) { "model" },
                                    None => span.muted { "–" },
                                }
                            }
                            td { (user_name(registry, experiment.creator_id).unwrap_or_default()) }
                            td { (layout::time(&experiment.created_at)) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::ok(layout::page(
        "Model experiments",
        &ctx.visitor,
        &ctx.experiment_crumbs(),
        body,
    )))
}

pub fn show(ctx: &Ctx, iid: u64) -> WebResult<Response> {
    let registry = ctx.registry();
    let experiment = registry.experiment_by_iid(ctx.access.project.id, iid)?;
    if experiment.project_id != ctx.access.project.id {
        return Err(Error::NotFound("Experiment").into());
    }
    // The newest runs; the runs table of the web UI issue pages and sorts them.
    let candidates = registry
        .candidates_page(
            experiment.id,
            RunOrder::Created,
            true,
            true,
            PageRequest::new(None, Some(PageRequest::MAX_PER_PAGE)),
        )?
        .items;
    let mut param_keys = BTreeSet::new();
    let mut metric_keys = BTreeSet::new();
    let mut rows = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let params: BTreeMap<String, String> = registry
            .params(candidate.id)?
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect();
        let metrics: BTreeMap<String, f64> = registry
            .latest_metrics(candidate.id)?
            .into_iter()
            .map(|m| (m.key, m.value))
            .collect();
        param_keys.extend(params.keys().cloned());
        metric_keys.extend(metrics.keys().cloned());
        rows.push((candidate, params, metrics));
    }
    let param_keys: Vec<String> = param_keys.into_iter().take(MAX_COLUMNS).collect();
    let metric_keys: Vec<String> = metric_keys.into_iter().take(MAX_COLUMNS).collect();
    let model = experiment
        .model_id
        .map(|id| registry.model(id))
        .transpose()?;
    let body = html! {
        div.page-head {
            div {
                h1 { (experiment.name) }
                p.subtitle {
                    "Experiment created " (layout::time(&experiment.created_at))
                    @if let Some(creator) = user_name(registry, experiment.creator_id) { " by " (creator) }
                    @if let Some(model) = &model { " · runs of model " a href=(ctx.ml(&format!("models/{}", model.id))) { (model.name) } }
                }
            }
        }
        h2 { "Candidates " span.count { (rows.len()) } }
        @if rows.is_empty() {
            p.empty-text { "No runs logged in this experiment." }
        } @else {
            div.scroll {
                table.list #runs {
                    thead {
                        tr {
                            th { "Candidate" } th { "Status" }
                            @for key in &param_keys { th.mono title="param" { (key) } }
                            @for key in &metric_keys { th.mono.num title="metric (last value)" { (key) } }
                            th { "CI job" } th { "Created" }
                        }
                    }
                    tbody {
                        @for (candidate, params, metrics) in &rows {
                            tr {
                                td {
                                    a href=(ctx.ml(&format!("candidates/{}", candidate.iid))) {
                                        (if candidate.name.is_empty() { format!("Candidate {}", candidate.iid) } else { candidate.name.clone() })
                                    }
                                    @if candidate.model_version_id.is_some() { span.badge.latest { "version" } }
                                }
                                td { (status_badge(candidate)) }
                                @for key in &param_keys { td { (params.get(key).map(String::as_str).unwrap_or("")) } }
                                @for key in &metric_keys {
                                    td.num { @if let Some(value) = metrics.get(key) { (format_metric(*value)) } }
                                }
                                td { (ci_job_link(candidate)) }
                                td { (layout::time(&candidate.created_at)) }
                            }
                        }
                    }
                }
            }
        }
    };
    let mut crumbs = ctx.experiment_crumbs();
    crumbs.push(Crumb::new(
        experiment.name.clone(),
        ctx.ml(&format!("experiments/{}", experiment.iid)),
    ));
    Ok(layout::ok(layout::page(
        &experiment.name,
        &ctx.visitor,
        &crumbs,
        body,
    )))
}

fn format_metric(value: f64) -> String {
    if value.is_finite() {
        let text = format!("{value:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        value.to_string()
    }
}
