//! Comparing runs (`/-/ml/experiments/<iid>/compare?runs=<iid>,<iid>`) and versions
//! (`/-/ml/models/<id>/compare?versions=1.2.0,1.3.0`): params side by side with differences
//! marked, final metric values, overlaid metric charts, and for versions their files diffed by
//! sha256.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::experiments::{format_metric, run_title};
use super::models::status_badge;
use super::run_details::{compare_charts, CHART_POINTS};
use super::Ctx;
use crate::domain::ml_records::{Candidate, ModelVersion};
use crate::domain::records::PackageFile;
use crate::domain::Error;
use crate::web::error::WebResult;
use crate::web::form::Form;
use crate::web::layout::{self, Crumb};

/// At most this many runs or versions side by side.
pub const MAX_COMPARED: usize = 10;
const SHORT_SHA: usize = 12;

/// The values of `name` in a query: repeated (`runs=1&runs=2`) or comma-separated
/// (`runs=1,2`), in order, each once.
fn listed(query: Option<&str>, name: &str) -> Vec<String> {
    let form = Form::parse(query.unwrap_or("").as_bytes());
    let mut out: Vec<String> = Vec::new();
    for value in form.all(name).flat_map(|v| v.split(',')) {
        let value = value.trim();
        if !value.is_empty() && !out.iter().any(|v| v == value) {
            out.push(value.to_string());
        }
    }
    out
}

/// One compared column: its header and what the tables read.
struct Compared {
    header: Markup,
    label: String,
    candidate: Candidate,
    params: BTreeMap<String, String>,
    metrics: BTreeMap<String, f64>,
}

fn compared(ctx: &Ctx, header: Markup, label: String, candidate: Candidate) -> WebResult<Compared> {
    let registry = ctx.registry();
    Ok(Compared {
        header,
        label,
        params: registry
            .params(candidate.id)?
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect(),
        metrics: registry
            .latest_metrics(candidate.id)?
            .into_iter()
            .map(|m| (m.key, m.value))
            .collect(),
        candidate,
    })
}

/// Rows of `key → value per column`, each marked when the columns differ.
fn side_by_side(
    id: &str,
    what: &str,
    columns: &[Compared],
    value: impl Fn(&Compared, &str) -> Option<String>,
    keys: &BTreeSet<String>,
) -> Markup {
    html! {
        @if keys.is_empty() {
            p.empty-text { "No " (what) "." }
        } @else {
            div.scroll {
                table.list.compare id=(id) {
                    thead { tr { th { (what) } @for c in columns { th { (c.header) } } } }
                    tbody {
                        @for key in keys {
                            @let values: Vec<Option<String>> = columns.iter().map(|c| value(c, key)).collect();
                            @let differs = values.iter().any(|v| *v != values[0]);
                            tr class=(if differs { "diff" } else { "same" }) data-key=(key) {
                                th.mono scope="row" { (key) @if differs { span.diff-mark title="the values differ" { " ≠" } } }
                                @for v in &values {
                                    td { @match v { Some(v) => span.cell title=(v) { (v) }, None => span.muted { "–" } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn page_body(
    ctx: &Ctx,
    title: &str,
    columns: &[Compared],
    page_url: &str,
    query: Option<&str>,
    extra: Markup,
) -> WebResult<Markup> {
    let registry = ctx.registry();
    let params: BTreeSet<String> = columns
        .iter()
        .flat_map(|c| c.params.keys().cloned())
        .collect();
    let metrics: BTreeSet<String> = columns
        .iter()
        .flat_map(|c| c.metrics.keys().cloned())
        .collect();
    let mut histories = Vec::with_capacity(columns.len());
    for c in columns {
        histories.push((
            c.label.clone(),
            registry.metric_series(c.candidate.id, CHART_POINTS)?,
        ));
    }
    let differing = params
        .iter()
        .filter(|k| {
            let first = columns[0].params.get(*k);
            columns.iter().any(|c| c.params.get(*k) != first)
        })
        .count();
    Ok(html! {
        div.page-head { div { h1 { (title) } p.subtitle { (columns.len()) " side by side · " (differing) " of " (params.len()) " params differ" } } }
        div.scroll {
            table.list.compare #compare-runs {
                thead { tr { th { "" } @for c in columns { th { (c.header) } } } }
                tbody {
                    tr { th scope="row" { "Run" } @for c in columns { td { a href=(ctx.ml(&format!("candidates/{}", c.candidate.iid))) { (run_title(&c.candidate)) } } } }
                    tr { th scope="row" { "Status" } @for c in columns { td { (status_badge(&c.candidate)) } } }
                    tr { th scope="row" { "Started" } @for c in columns { td { (layout::time_ms(c.candidate.start_time)) } } }
                    tr { th scope="row" { "Duration" } @for c in columns { td { (super::experiments::duration_of(&c.candidate).unwrap_or_else(|| "–".into())) } } }
                }
            }
        }
        (extra)
        h2 { "Parameters" }
        (side_by_side("compare-params", "Parameters", columns, |c, k| c.params.get(k).cloned(), &params))
        h2 { "Metrics: final values" }
        (side_by_side("compare-metrics", "Metrics", columns, |c, k| c.metrics.get(k).map(|v| format_metric(*v)), &metrics))
        h2 { "Metric charts" }
        (compare_charts(page_url, query, &histories))
    })
}

fn too_few(ctx: &Ctx, title: &str, crumbs: &[Crumb], problem: &str) -> Response {
    let body = html! {
        div.page-head { div { h1 { (title) } } }
        div.alert.error role="alert" { (problem) }
    };
    layout::respond(
        StatusCode::BAD_REQUEST,
        layout::page(title, &ctx.visitor, crumbs, body),
    )
}

pub fn runs(ctx: &Ctx, experiment_iid: u64, query: Option<&str>) -> WebResult<Response> {
    let registry = ctx.registry();
    let project_id = ctx.access.project.id;
    let experiment = registry.experiment_by_iid(project_id, experiment_iid)?;
    let experiment_url = ctx.ml(&format!("experiments/{}", experiment.iid));
    let page_url = format!("{experiment_url}/compare");
    let mut crumbs = ctx.experiment_crumbs();
    crumbs.push(Crumb::new(experiment.name.clone(), experiment_url.clone()));
    crumbs.push(Crumb::new("Compare", page_url.clone()));
    let wanted = listed(query, "runs");
    if wanted.len() < 2 || wanted.len() > MAX_COMPARED {
        return Ok(too_few(
            ctx,
            "Compare runs",
            &crumbs,
            &format!("Choose between 2 and {MAX_COMPARED} runs to compare."),
        ));
    }
    let mut columns = Vec::with_capacity(wanted.len());
    for iid in &wanted {
        let candidate = iid
            .parse::<u64>()
            .ok()
            .and_then(|iid| registry.candidate_by_iid(project_id, iid).ok());
        let Some(candidate) = candidate else {
            return Ok(too_few(
                ctx,
                "Compare runs",
                &crumbs,
                &format!("There is no run {iid} in this project."),
            ));
        };
        let label = run_title(&candidate);
        let header =
            html! { a href=(ctx.ml(&format!("candidates/{}", candidate.iid))) { (label) } };
        columns.push(compared(ctx, header, label, candidate)?);
    }
    let body = page_body(ctx, "Compare runs", &columns, &page_url, query, html! {})?;
    Ok(layout::ok(layout::page(
        "Compare runs",
        &ctx.visitor,
        &crumbs,
        body,
    )))
}

pub fn versions(ctx: &Ctx, model_id: u64, query: Option<&str>) -> WebResult<Response> {
    let registry = ctx.registry();
    let model = ctx.model(model_id)?;
    let model_url = ctx.ml(&format!("models/{}", model.id));
    let page_url = format!("{model_url}/compare");
    let mut crumbs = ctx.registry_crumbs();
    crumbs.push(Crumb::new(model.name.clone(), model_url.clone()));
    crumbs.push(Crumb::new("Compare", page_url.clone()));
    let title = format!("Compare versions of {}", model.name);
    let wanted = listed(query, "versions");
    if wanted.len() < 2 || wanted.len() > MAX_COMPARED {
        return Ok(too_few(
            ctx,
            &title,
            &crumbs,
            &format!("Choose between 2 and {MAX_COMPARED} versions to compare."),
        ));
    }
    let mut versions: Vec<ModelVersion> = Vec::with_capacity(wanted.len());
    for wanted in &wanted {
        match registry.version_by_string(model.id, wanted) {
            Ok(version) => versions.push(version),
            Err(Error::NotFound(_)) => {
                return Ok(too_few(
                    ctx,
                    &title,
                    &crumbs,
                    &format!("Model {} has no version {wanted}.", model.name),
                ));
            }
            Err(other) => return Err(other.into()),
        }
    }
    let mut columns = Vec::with_capacity(versions.len());
    let mut files: Vec<BTreeMap<String, PackageFile>> = Vec::with_capacity(versions.len());
    for version in &versions {
        let candidate = registry.candidate(version.candidate_id)?;
        let header = html! { a href=(ctx.ml(&format!("models/{}/versions/{}", model.id, version.id))) { (version.version) } };
        columns.push(compared(ctx, header, version.version.clone(), candidate)?);
        files.push(
            registry
                .version_files(version)?
                .into_iter()
                .map(|f| (f.file_name.clone(), f))
                .collect(),
        );
    }
    let names: BTreeSet<&String> = files.iter().flat_map(|f| f.keys()).collect();
    let files_table = html! {
        h2 { "Files" }
        @if names.is_empty() {
            p.empty-text { "No files." }
        } @else {
            div.scroll {
                table.list.compare #compare-files {
                    thead { tr { th { "File" } @for c in &columns { th { (c.header) } } th { "Difference" } } }
                    tbody {
                        @for name in &names {
                            @let shas: Vec<Option<&str>> = files.iter().map(|f| f.get(*name).map(|f| f.sha256.as_str())).collect();
                            @let state = if shas.iter().all(|s| *s == shas[0]) { "same" } else if shas.iter().any(Option::is_none) { "added or removed" } else { "changed" };
                            tr class=(if state == "same" { "same" } else { "diff" }) data-file=(name) {
                                th.mono scope="row" { (name) }
                                @for (i, sha) in shas.iter().enumerate() {
                                    td.sha {
                                        @match sha {
                                            Some(sha) => span title=(sha) { (sha.get(..SHORT_SHA).unwrap_or(sha)) " " span.muted { (layout::human_size(files[i][*name].size)) } },
                                            None => span.muted { "–" },
                                        }
                                    }
                                }
                                td { span class=(format!("badge {}", if state == "same" { "vis" } else { "pre" })) { (state) } }
                            }
                        }
                    }
                }
            }
        }
    };
    let body = page_body(ctx, &title, &columns, &page_url, query, files_table)?;
    Ok(layout::ok(layout::page(
        &title,
        &ctx.visitor,
        &crumbs,
        body,
    )))
}

#[cfg(test)]
mod tests {
    use super::listed;

    #[test]
    fn lists_in_either_spelling() {
        assert_eq!(
            listed(Some("runs=3,1&runs=2&runs=3"), "runs"),
            ["3", "1", "2"]
        );
        assert_eq!(
            listed(Some("versions=1.2.0%2C1.3.0"), "versions"),
            ["1.2.0", "1.3.0"]
        );
        assert!(listed(None, "runs").is_empty());
    }
}
