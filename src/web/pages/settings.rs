//! `/<project>/-/settings/ci_cd`: which GitLab projects' CI job tokens the project accepts, the
//! level those jobs act with, and the project's trusted publishers (OIDC trust rules, managed
//! through the API).

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::models::is_input_error;
use super::{see_other, Ctx};
use crate::domain::access::{Action, CI_LEVEL_CEILING};
use crate::domain::projects::ProjectChanges;
use crate::domain::records::AccessLevel;
use crate::web::error::WebResult;
use crate::web::form;
use crate::web::layout::{self, Crumb};

const LEVELS: [(AccessLevel, &str); 4] = [
    (AccessLevel::Guest, "Guest"),
    (AccessLevel::Reporter, "Reporter"),
    (AccessLevel::Developer, "Developer"),
    (AccessLevel::Maintainer, "Maintainer"),
];

fn url(ctx: &Ctx) -> String {
    format!("{}/-/settings/ci_cd", ctx.base)
}

fn page(ctx: &Ctx, trusted: &str, level: AccessLevel, problem: Option<&str>) -> WebResult<Markup> {
    let project = &ctx.access.project;
    let rules = ctx
        .registry()
        .trusted_publishers(&ctx.visitor.caller, &ctx.access)?;
    let body = html! {
        div.page-head { div { h1 { "CI/CD settings" } p.subtitle.mono { (project.path_with_namespace()) } } }
        @if let Some(problem) = problem { p.error { (problem) } }
        form.card method="post" action=(url(ctx)) {
            (layout::csrf_input(&ctx.visitor))
            h2 { "GitLab CI job tokens" }
            p.muted { "Jobs of these GitLab projects may use " code { "CI_JOB_TOKEN" } " here: one GitLab project path, id or URL per line. The server verifies each token with its GitLab (" code { "--gitlab-url" } ")." }
            label for="trusted" { "Trusted GitLab projects" }
            textarea #trusted name="ci_job_token_gitlab_projects" rows="4" { (trusted) }
            label for="level" { "Jobs act as" }
            select #level name="ci_job_token_access_level" {
                @for (option, name) in LEVELS {
                    option value=(option as u8) selected[option == level] { (name) }
                }
            }
            button.button.primary type="submit" { "Save" }
        }
        div.card {
            h2 { "Trusted publishers (OIDC)" }
            @if rules.is_empty() {
                p.muted { "None. Add one with " code { "POST /api/v4/projects/" (project.id) "/trusted_publishers" } "." }
            } @else {
                table.list {
                    thead { tr { th { "Issuer" } th { "Required claims" } th { "Acts as" } } }
                    tbody {
                        @for rule in &rules {
                            tr {
                                td.mono { (rule.issuer) }
                                td.mono { @for (k, v) in &rule.claims { (k) "=" (v) " " } }
                                td { (rule.access_level as u8) }
                            }
                        }
                    }
                }
            }
        }
    };
    let mut crumbs = ctx.project_crumbs();
    crumbs.push(Crumb::new("CI/CD settings", url(ctx)));
    Ok(layout::page("CI/CD settings", &ctx.visitor, &crumbs, body))
}

pub fn show(ctx: &Ctx) -> WebResult<Response> {
    ctx.access
        .check(&ctx.visitor.caller, Action::AdminProject)?;
    let project = &ctx.access.project;
    Ok(layout::ok(page(
        ctx,
        &project.ci_job_token_gitlab_projects.join("\n"),
        project.ci_job_token_access_level,
        None,
    )?))
}

pub async fn update(ctx: &Ctx<'_>, request: Request) -> WebResult<Response> {
    let form = form::read(&ctx.visitor, request).await?;
    ctx.access
        .check(&ctx.visitor.caller, Action::AdminProject)?;
    let text = form
        .get("ci_job_token_gitlab_projects")
        .unwrap_or_default()
        .to_string();
    let trusted: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let level = form
        .get("ci_job_token_access_level")
        .and_then(AccessLevel::parse)
        .filter(|l| *l <= CI_LEVEL_CEILING)
        .unwrap_or(AccessLevel::Developer);
    let changes = ProjectChanges {
        ci_job_token_gitlab_projects: Some(trusted),
        ci_job_token_access_level: Some(level),
        ..ProjectChanges::default()
    };
    match ctx
        .registry()
        .update_project(&ctx.visitor.caller, &ctx.access, changes)
        .await
    {
        Ok(_) => Ok(see_other(&url(ctx))),
        Err(error) if is_input_error(&error) => Ok(layout::respond(
            StatusCode::BAD_REQUEST,
            page(ctx, &text, level, Some(&error.to_string()))?,
        )),
        Err(error) => Err(error.into()),
    }
}
