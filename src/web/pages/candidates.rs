//! A candidate (an experiment run): its details, promoting it to a model version, deleting it,
//! and downloading its artifacts with the browser's session.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::experiments::{duration_of, run_title};
use super::models::{is_input_error, status_badge};
use super::run_details::{
    ci_section, files_table, key_value_table, metrics_section, FileLinks, CHART_POINTS,
};
use super::{see_other, user_name, Ctx};
use crate::domain::ml_records::{Candidate, KeyValue, TagOwner};
use crate::domain::{semver_rules, Error};
use crate::web::error::WebResult;
use crate::web::layout::{self, Crumb};
use crate::web::{form, markdown};

/// MLflow's tags for a run's description, user and source.
const NOTE_TAG: &str = "mlflow.note.content";
const USER_TAG: &str = "mlflow.user";
const SOURCE_TAGS: [(&str, &str); 4] = [
    ("mlflow.source.name", "Source"),
    ("mlflow.source.type", "Source type"),
    ("mlflow.source.git.commit", "Git commit"),
    ("mlflow.source.git.branch", "Git branch"),
];

fn candidate_url(ctx: &Ctx, candidate: &Candidate) -> String {
    ctx.ml(&format!("candidates/{}", candidate.iid))
}

/// The page, with the promote form showing `problem` and the typed version when promoting failed.
fn render(
    ctx: &Ctx,
    candidate: &Candidate,
    promote: (&str, Option<&str>),
    query: Option<&str>,
) -> WebResult<maud::Markup> {
    let registry = ctx.registry();
    let experiment = registry.experiment(candidate.experiment_id)?;
    let model = experiment
        .model_id
        .map(|id| registry.model(id))
        .transpose()?;
    let version = candidate
        .model_version_id
        .map(|id| registry.version(id))
        .transpose()?;
    let files = match registry.candidate_package(candidate) {
        Ok(package) => registry.current_files(package.id)?,
        Err(Error::NotFound(_)) => Vec::new(),
        Err(other) => return Err(other.into()),
    };
    let params = registry.params(candidate.id)?;
    let tags = registry.tags(TagOwner::Candidate(candidate.id))?;
    // Charts draw a thinned series, read by seeking: bounded work however much was logged.
    let history = registry.metric_series(candidate.id, CHART_POINTS)?;
    let latest = registry.latest_metrics(candidate.id)?;
    let inputs = super::run_lineage::inputs_section(ctx, candidate)?;
    let registered = super::run_lineage::registered_section(ctx, candidate)?;
    let url = candidate_url(ctx, candidate);
    let title = run_title(candidate);
    let tag = |key: &str| tags.iter().find(|t| t.key == key).map(|t| t.value.clone());
    let note = tag(NOTE_TAG).filter(|n| !n.trim().is_empty());
    let user = user_name(registry, candidate.user_id).or_else(|| tag(USER_TAG));
    let sources: Vec<(&str, String)> = SOURCE_TAGS
        .iter()
        .filter_map(|(key, label)| tag(key).map(|v| (*label, v)))
        .collect();
    let shown_tags: Vec<KeyValue> = tags.iter().filter(|t| t.key != NOTE_TAG).cloned().collect();
    let links = FileLinks {
        page: url.clone(),
        api: format!(
            "{}/packages/ml_models/candidate:{}/files",
            ctx.api_root(),
            candidate.iid
        ),
        delete_action: None,
    };
    let can_write = ctx.can_write();
    let promotable = can_write && model.is_some() && version.is_none();
    let suggested = match &model {
        Some(model) if promotable => {
            let highest = model
                .latest_version
                .as_deref()
                .and_then(|v| semver::Version::parse(v).ok());
            semver_rules::next_patch(highest.as_ref())
                .map(|v| v.to_string())
                .unwrap_or_default()
        }
        _ => String::new(),
    };
    let body = html! {
        div.page-head {
            div {
                h1 { (title) " " (status_badge(candidate)) }
                p.subtitle.mono { "run " (candidate.run_id) }
                (registered)
            }
            div.actions {
                @if can_write && version.is_none() {
                    (layout::post_button(&ctx.visitor, &format!("{url}/delete"), "Delete candidate", "danger",
                        Some("Delete this candidate with its params, metrics and artifacts? This cannot be undone.")))
                }
            }
        }
        div.layout {
            div {
                @if promotable {
                    div.card #promote {
                        h3 { "Promote to a model version" }
                        form.form method="post" action=(format!("{url}/promote")) {
                            (layout::csrf_input(&ctx.visitor))
                            @if let Some(problem) = promote.1 {
                                div.alert.error role="alert" { (problem) }
                            }
                            label for="version" { "Version" }
                            input #version type="text" name="version" value=(promote.0) required placeholder=(suggested);
                            p.hint { "Semantic Versioning 2.0.0, e.g. 1.2.3 or 2.0.0-rc.1. The candidate's params, metrics and artifacts become the version's." }
                            label for="description" { "Description" }
                            textarea #description name="description" {}
                            div.buttons { button.primary type="submit" { "Promote" } }
                        }
                    }
                }
                @if let Some(note) = &note {
                    div.card.markdown #run-description { (layout::trusted(markdown::render(note))) }
                }
                h2 { "Metrics" }
                (metrics_section(&url, query, &latest, &history))
                (inputs)
                h2 { "Artifacts " span.count { (files.len()) } }
                (files_table(ctx, &files, &links))
                h2 { "Parameters" }
                (key_value_table("params", &params, "No parameters logged."))
                h2 { "Metadata" }
                (key_value_table("metadata", &shown_tags, "No metadata."))
            }
            aside.sidebar {
                h3 { "CI/CD" }
                (ci_section(candidate.ci.as_ref()))
                dl {
                    dt { "Experiment" } dd { a href=(ctx.ml(&format!("experiments/{}", experiment.iid))) { (experiment.name) } }
                    @if let Some(model) = &model {
                        dt { "Model" } dd { a href=(ctx.ml(&format!("models/{}", model.id))) { (model.name) } }
                    }
                    @if let (Some(model), Some(version)) = (&model, &version) {
                        dt { "Became version" } dd #lineage { a href=(ctx.ml(&format!("models/{}/versions/{}", model.id, version.id))) { (model.name) " " (version.version) } }
                    }
                    dt { "Started" } dd { (layout::time_ms(candidate.start_time)) }
                    @if let Some(end) = candidate.end_time { dt { "Ended" } dd { (layout::time_ms(end)) } }
                    @if let Some(duration) = duration_of(candidate) { dt { "Duration" } dd #duration { (duration) } }
                    dt { "User" } dd { (user.unwrap_or_else(|| "–".into())) }
                    @for (label, value) in &sources { dt { (label) } dd.mono.wrap { (value) } }
                    dt { "Candidate id" } dd { (candidate.iid) }
                }
            }
        }
    };
    let mut crumbs = ctx.experiment_crumbs();
    crumbs.push(Crumb::new(
        experiment.name.clone(),
        ctx.ml(&format!("experiments/{}", experiment.iid)),
    ));
    crumbs.push(Crumb::new(title.clone(), url));
    Ok(layout::page(&title, &ctx.visitor, &crumbs, body))
}

pub fn show(ctx: &Ctx, iid: u64, query: Option<&str>) -> WebResult<Response> {
    let candidate = ctx
        .registry()
        .candidate_by_iid(ctx.access.project.id, iid)?;
    Ok(layout::ok(render(ctx, &candidate, ("", None), query)?))
}

/// A page previewing one of the candidate's artifacts.
pub async fn preview(ctx: &Ctx<'_>, iid: u64, path: &str) -> WebResult<Response> {
    let registry = ctx.registry();
    let candidate = registry.candidate_by_iid(ctx.access.project.id, iid)?;
    let package = registry.candidate_package(&candidate)?;
    let file = registry.newest_file(package.id, path)?;
    let experiment = registry.experiment(candidate.experiment_id)?;
    let url = candidate_url(ctx, &candidate);
    let mut crumbs = ctx.experiment_crumbs();
    crumbs.push(Crumb::new(
        experiment.name.clone(),
        ctx.ml(&format!("experiments/{}", experiment.iid)),
    ));
    crumbs.push(Crumb::new(run_title(&candidate), url.clone()));
    super::artifacts::preview(ctx, &file, &url, crumbs).await
}

/// One of the candidate's images, inline.
pub async fn raw(ctx: &Ctx<'_>, iid: u64, path: &str, request: Request) -> WebResult<Response> {
    let registry = ctx.registry();
    let candidate = registry.candidate_by_iid(ctx.access.project.id, iid)?;
    let package = registry.candidate_package(&candidate)?;
    let file = registry.newest_file(package.id, path)?;
    super::artifacts::raw_image(ctx, &file, request).await
}

pub async fn promote(ctx: &Ctx<'_>, iid: u64, request: Request) -> WebResult<Response> {
    let form = form::read(&ctx.visitor, request).await?;
    let candidate = ctx
        .registry()
        .candidate_by_iid(ctx.access.project.id, iid)?;
    ctx.require_write()?;
    let typed = form.text("version").unwrap_or_default();
    if typed.is_empty() {
        let problem = Error::missing("version").to_string();
        return Ok(layout::respond(
            StatusCode::BAD_REQUEST,
            render(ctx, &candidate, ("", Some(&problem)), None)?,
        ));
    }
    match ctx
        .registry()
        .promote_candidate(
            &ctx.visitor.caller,
            &ctx.access,
            candidate.id,
            Some(typed.clone()),
            form.text("description"),
        )
        .await
    {
        Ok(version) => Ok(see_other(&ctx.ml(&format!(
            "models/{}/versions/{}",
            version.model_id, version.id
        )))),
        Err(error) if is_input_error(&error) => Ok(layout::respond(
            StatusCode::BAD_REQUEST,
            render(ctx, &candidate, (&typed, Some(&error.to_string())), None)?,
        )),
        Err(error) => Err(error.into()),
    }
}

pub async fn delete(ctx: &Ctx<'_>, iid: u64, request: Request) -> WebResult<Response> {
    form::read(&ctx.visitor, request).await?;
    let registry = ctx.registry();
    let candidate = registry.candidate_by_iid(ctx.access.project.id, iid)?;
    let experiment = registry.experiment(candidate.experiment_id)?;
    registry
        .delete_candidate(&ctx.visitor.caller, &ctx.access, candidate.id)
        .await?;
    Ok(see_other(
        &ctx.ml(&format!("experiments/{}", experiment.iid)),
    ))
}

pub async fn download(
    ctx: &Ctx<'_>,
    iid: u64,
    path: &str,
    request: Request,
) -> WebResult<Response> {
    let registry = ctx.registry();
    let candidate = registry.candidate_by_iid(ctx.access.project.id, iid)?;
    let package = registry.candidate_package(&candidate)?;
    let file = registry.newest_file(package.id, path)?;
    Ok(crate::api::download::serve(registry, &file, request).await?)
}
