//! A run's lineage as MLflow records it: the datasets and logged models it read, the logged
//! models it produced, and the model versions registered from it. Kept apart from the rest of the
//! run page so that it can be placed on it with one call.

use maud::{html, Markup};

use super::Ctx;
use crate::domain::ml_records::Candidate;
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
