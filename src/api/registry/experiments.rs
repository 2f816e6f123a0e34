//! Experiments: list, show, delete (a model's own experiment goes only with its model).

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;

use super::views::{self, ErrorView, ExperimentView};
use super::{each, listing, ListPage, QueryParams, Segments};
use crate::api::gitlab::{ApiResult, GitlabCaller};
use crate::domain::access::Action;
use crate::domain::paging::PageRequest;
use crate::state::AppState;

/// The project's experiments, newest first.
#[utoipa::path(get, path = "/api/v4/projects/{id}/ml/experiments", tag = "experiments",
    params(("id" = String, Path, description = "Project id or URL-encoded path"), ListPage),
    responses(
        (status = 200, description = "A page of experiments, with GitLab's pagination headers", body = [ExperimentView]),
        (status = 400, body = ErrorView), (status = 401, body = ErrorView), (status = 404, body = ErrorView)))]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
    QueryParams(query): QueryParams<ListPage>,
) -> ApiResult<Response> {
    let registry = &state.registry;
    let access = registry.project_for_action(&caller, path.project(), Action::ReadRegistry)?;
    let page = registry.experiments_page(
        access.project.id,
        true,
        PageRequest::new(query.page, query.per_page),
    )?;
    listing(
        &state,
        &headers,
        &uri,
        page,
        each(|experiment| views::experiment(registry, experiment)),
    )
}

/// An experiment by its per-project iid.
#[utoipa::path(get, path = "/api/v4/projects/{id}/ml/experiments/{iid}", tag = "experiments",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("iid" = u64, Path, description = "Per-project experiment iid")),
    responses((status = 200, body = ExperimentView), (status = 401, body = ErrorView),
              (status = 404, body = ErrorView)))]
pub async fn show(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
) -> ApiResult<Json<ExperimentView>> {
    let registry = &state.registry;
    let access = registry.project_for_action(&caller, path.project(), Action::ReadRegistry)?;
    let experiment =
        registry.experiment_by_iid(access.project.id, path.number("iid", "Experiment")?)?;
    Ok(Json(views::experiment(registry, &experiment)?))
}

/// Deletes an experiment with its candidates (Reporter and above); a model's experiment → 400.
#[utoipa::path(delete, path = "/api/v4/projects/{id}/ml/experiments/{iid}", tag = "experiments",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("iid" = u64, Path, description = "Per-project experiment iid")),
    responses((status = 204, description = "Deleted"),
              (status = 400, description = "The experiment belongs to a model", body = ErrorView),
              (status = 401, body = ErrorView), (status = 403, body = ErrorView),
              (status = 404, body = ErrorView)))]
pub async fn delete(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
) -> ApiResult<StatusCode> {
    let registry = &state.registry;
    let access = registry.project_for_action(&caller, path.project(), Action::WriteRegistry)?;
    let experiment =
        registry.experiment_by_iid(access.project.id, path.number("iid", "Experiment")?)?;
    registry
        .delete_experiment(&caller, &access, experiment.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
