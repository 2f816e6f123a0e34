//! The projects list (the home page) and a project's page.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::Ctx;
use crate::domain::access::Action;
use crate::domain::records::{FeatureAccess, Visibility};
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::layout;
use crate::web::markdown;
use crate::web::session::Visitor;

fn visibility(v: Visibility) -> &'static str {
    match v {
        Visibility::Public => "Public",
        Visibility::Internal => "Internal",
        Visibility::Private => "Private",
    }
}

pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match projects_page(&state, &headers) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn projects_page(state: &AppState, headers: &HeaderMap) -> WebResult<Response> {
    let visitor = Visitor::from_headers(state, headers)?;
    let registry = &state.registry;
    let mut projects = registry.visible_projects(&visitor.caller)?;
    projects.sort_by_key(|p| p.project.path_with_namespace());
    let mut rows = Vec::with_capacity(projects.len());
    for access in &projects {
        let registry_open = access.check(&visitor.caller, Action::ReadRegistry).is_ok();
        let models = if registry_open {
            Some(registry.model_count(access.project.id)?)
        } else {
            None
        };
        rows.push((access, models));
    }
    let body = html! {
        div.page-head {
            div {
                h1 { "Projects " span.count { (rows.len()) } }
                p.subtitle { "Projects you can see, with their model registries." }
            }
        }
        @if rows.is_empty() {
            div.empty-state {
                h2 { "No projects to show" }
                @if visitor.user().is_none() {
                    p { "There are no public projects. " a href="/users/sign_in" { "Sign in" } " to see yours." }
                } @else {
                    p { "Create one with the API:" }
                    (layout::snippet(&format!("curl -H \"PRIVATE-TOKEN: $TOKEN\" -X POST {}/api/v4/projects \\\n  -d name=fraud -d visibility=private", state.base_url(headers))))
                    p.muted { "Create a token for " code { "$TOKEN" } " on your " a href="/-/user_settings/personal_access_tokens" { "access tokens page" } "." }
                }
            }
        } @else {
            table.list {
                thead { tr { th { "Project" } th { "Visibility" } th.num { "Models" } th { "Created" } } }
                tbody {
                    @for (access, models) in &rows {
                        @let project = &access.project;
                        @let base = format!("/{}", project.path_with_namespace());
                        tr {
                            td {
                                a href=(base) { strong { (project.path_with_namespace()) } }
                                @if !project.description.is_empty() {
                                    div.muted { (project.description) }
                                }
                            }
                            td { span.badge.vis { (visibility(project.visibility)) } }
                            td.num {
                                @match models {
                                    Some(n) => a href=(format!("{base}/-/ml/models")) { (n) },
                                    None => span.muted { "–" },
                                }
                            }
                            td { (layout::time(&project.created_at)) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::ok(layout::page("Projects", &visitor, &[], body)))
}

pub fn show(ctx: &Ctx) -> WebResult<Response> {
    let project = &ctx.access.project;
    let registry_open = ctx.can_read_registry().is_ok();
    let (models, experiments) = if registry_open {
        (
            ctx.registry().model_count(project.id)?,
            ctx.registry().experiment_count(project.id)?,
        )
    } else {
        (0, 0)
    };
    let crumbs = ctx.project_crumbs();
    let body = html! {
        div.page-head {
            div {
                h1 { (project.name) " " span.badge.vis { (visibility(project.visibility)) } }
                p.subtitle.mono { (project.path_with_namespace()) " · project id " (project.id) }
            }
            @if ctx.access.check(&ctx.visitor.caller, crate::domain::access::Action::AdminProject).is_ok() {
                a.button href=(format!("{}/-/settings/ci_cd", ctx.base)) { "CI/CD settings" }
            }
        }
        @if !project.description.is_empty() {
            div.card.markdown { (layout::trusted(markdown::render(&project.description))) }
        }
        @if registry_open {
            table.list {
                tbody {
                    tr {
                        td { a href=(ctx.ml("models")) { strong { "Model registry" } } }
                        td.muted { "Models, their versions and files" }
                        td.num { (models) " models" }
                    }
                    tr {
                        td { a href=(ctx.ml("experiments")) { strong { "Model experiments" } } }
                        td.muted { "Runs (candidates) with params, metrics and artifacts" }
                        td.num { (experiments) " experiments" }
                    }
                }
            }
        } @else {
            p.muted {
                @if project.model_registry_access_level == FeatureAccess::Disabled {
                    "The model registry is disabled in this project."
                } @else {
                    "The model registry of this project is visible to its members only."
                }
            }
        }
    };
    Ok(layout::ok(layout::page(
        &project.name,
        &ctx.visitor,
        &crumbs,
        body,
    )))
}
