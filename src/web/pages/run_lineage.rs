//! A run's lineage as MLflow records it: the datasets and logged models it read, the logged
//! models it produced, and the model versions registered from it. Kept apart from the rest of the
//! run page so that it can be placed on it with one call.

use maud::{html, Markup};

use super::Ctx;
use crate::domain::ml_records::{Candidate, ModelVersion};
use crate::domain::run_links::Direction;
use crate::web::error::WebResult;

/// The run's dataset inputs (name, digest, source, context) and model inputs and outputs.
pub fn inputs_section(ctx: &Ctx, candidate: &Candidate) -> WebResult<Markup> {
    let registry = ctx.registry();
    let datasets = registry.run_datasets(candidate.id)?;
    let links = registry.run_model_links(candidate.id)?;
    Ok(html! {
        h2 { "Inputs " span.count { (datasets.len() + links.iter().filter(|l| l.direction == Direction::Input).count()) } }
        @if datasets.is_empty() && links.is_empty() {
            p.empty-text { "No datasets or models logged as inputs." }
        }
        @if !datasets.is_empty() {
            table.list #datasets {
                thead { tr { th { "Dataset" } th { "Digest" } th { "Source" } th { "Context" } } }
                tbody {
                    @for input in &datasets {
                        @let context = input.tags.iter().find(|t| t.key == "mlflow.data.context").map(|t| t.value.as_str()).unwrap_or("–");
                        tr {
                            td { (input.dataset.name) }
                            td.mono { (input.dataset.digest) }
                            td { span.muted { (input.dataset.source_type) } " " span.mono { (input.dataset.source) } }
                            td { (context) }
                        }
                    }
                }
            }
        }
        @if !links.is_empty() {
            table.list #logged-models {
                thead { tr { th { "Logged model" } th { "Role" } } }
                tbody {
                    @for link in &links {
                        tr {
                            td.mono { (link.model_id) }
                            td { @match link.direction { Direction::Input => "input", Direction::Output => "output" } }
                        }
                    }
                }
            }
        }
    })
}

/// The model versions registered from the run (MLflow's `run_id` of a version): "registered as
/// model m version 3", each a link to the version's page.
pub fn registered_section(ctx: &Ctx, candidate: &Candidate) -> WebResult<Markup> {
    let registry = ctx.registry();
    let mut registered = Vec::new();
    for version in registry.versions_from_run(ctx.access.project.id, &candidate.run_id)? {
        let model = registry.model(version.model_id)?;
        registered.push((model, version));
    }
    Ok(html! {
        @if !registered.is_empty() {
            ul.lineage #registered {
                @for (model, version) in &registered {
                    li {
                        "Registered as model "
                        a href=(ctx.ml(&format!("models/{}", model.id))) { (model.name) }
                        " version "
                        a href=(ctx.ml(&format!("models/{}/versions/{}", model.id, version.id))) {
                            (version.seq) " (" (version.version) ")"
                        }
                    }
                }
            }
        }
    })
}

/// On a version's page: the run it was registered from, linked when it is a run of this
/// project (another project's run is named, never linked).
pub fn source_run(ctx: &Ctx, version: &ModelVersion) -> Markup {
    let Some(run_id) = &version.source_run_id else {
        return html! {};
    };
    let run = ctx
        .registry()
        .candidate_by_run_id(ctx.access.project.id, run_id)
        .ok();
    html! {
        dt { "Source run" }
        dd #source-run {
            @match &run {
                Some(run) => a href=(ctx.ml(&format!("candidates/{}", run.iid))) { (super::experiments::run_title(run)) },
                None => span.mono { (run_id) },
            }
        }
    }
}
