//! Candidates (MLflow runs): list an experiment's, create one with its data, show, delete,
//! promote to a model version.

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::models::key_values;
use super::views::{self, CandidateView, ErrorView, MetadataView, VersionView};
use super::{listing, Body, ListPage, QueryParams, Segments};
use crate::api::gitlab::{ApiResult, GitlabCaller};
use crate::domain::access::Action;
use crate::domain::candidates::{validate_batch, LogBatch, NewCandidate, RunOrder};
use crate::domain::experiments::now_ms;
use crate::domain::ml_records::MetricPoint;
use crate::domain::paging::PageRequest;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
pub struct MetricInput {
    key: String,
    value: f64,
    /// Default 0.
    step: Option<i64>,
    /// Milliseconds since the epoch; default now.
    timestamp: Option<i64>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CreateCandidate {
    name: Option<String>,
    /// Parameters; a key's value can never change.
    #[serde(default)]
    params: Vec<MetadataView>,
    #[serde(default)]
    metrics: Vec<MetricInput>,
    /// Metadata tags; `gitlab.CI_*` tags link the CI job.
    #[serde(default)]
    metadata: Vec<MetadataView>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Promote {
    /// SemVer; the next patch of the latest version when absent.
    version: Option<String>,
    description: Option<String>,
}

/// The candidates of an experiment, newest first.
#[utoipa::path(get, path = "/api/v4/projects/{id}/ml/experiments/{iid}/candidates", tag = "candidates",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("iid" = u64, Path, description = "Per-project experiment iid"), ListPage),
    responses(
        (status = 200, description = "A page of candidates, with GitLab's pagination headers", body = [CandidateView]),
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
    let experiment =
        registry.experiment_by_iid(access.project.id, path.number("iid", "Experiment")?)?;
    let page = registry.candidates_page(
        experiment.id,
        RunOrder::Created,
        true,
        true,
        PageRequest::new(query.page, query.per_page),
    )?;
    listing(&state, &headers, &uri, page, |candidate| {
        views::candidate(registry, candidate)
    })
}

/// Creates a candidate in an experiment with its params, metrics and metadata (Reporter and above).
#[utoipa::path(post, path = "/api/v4/projects/{id}/ml/experiments/{iid}/candidates", tag = "candidates",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("iid" = u64, Path, description = "Per-project experiment iid")),
    request_body = CreateCandidate,
    responses((status = 201, body = CandidateView), (status = 400, body = ErrorView),
              (status = 401, body = ErrorView), (status = 403, body = ErrorView),
              (status = 404, body = ErrorView)))]
pub async fn create(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
    Body(body): Body<CreateCandidate>,
) -> ApiResult<Response> {
    let registry = &state.registry;
    let access = registry.project_for_action(&caller, path.project(), Action::WriteRegistry)?;
    let experiment =
        registry.experiment_by_iid(access.project.id, path.number("iid", "Experiment")?)?;
    let now = now_ms();
    let batch = LogBatch {
        metrics: body
            .metrics
            .into_iter()
            .map(|m| MetricPoint {
                key: m.key,
                value: m.value,
                timestamp: m.timestamp.unwrap_or(now),
                step: m.step.unwrap_or(0),
            })
            .collect(),
        params: key_values(body.params),
        tags: key_values(body.metadata),
    };
    // Bad input is refused before the run exists.
    validate_batch(&batch)?;
    let candidate = registry.create_candidate(
        &caller,
        &access,
        experiment.id,
        NewCandidate {
            name: body.name,
            ..NewCandidate::default()
        },
    )?;
    if let Err(error) = registry
        .log_batch(&caller, &access, candidate.id, batch)
        .await
    {
        // A storage failure half way: the run goes again rather than stay half-made.
        registry.delete_candidate(&caller, &access, candidate.id)?;
        registry.persist().await?;
        return Err(error.into());
    }
    let candidate = registry.candidate(candidate.id)?;
    Ok((
        StatusCode::CREATED,
        Json(views::candidate(registry, &candidate)?),
    )
        .into_response())
}

/// A candidate by its per-project iid, with params, metrics, metadata, files and CI job.
#[utoipa::path(get, path = "/api/v4/projects/{id}/ml/candidates/{iid}", tag = "candidates",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("iid" = u64, Path, description = "Per-project candidate iid")),
    responses((status = 200, body = CandidateView), (status = 401, body = ErrorView),
              (status = 404, body = ErrorView)))]
pub async fn show(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
) -> ApiResult<Json<CandidateView>> {
    let registry = &state.registry;
    let access = registry.project_for_action(&caller, path.project(), Action::ReadRegistry)?;
    let candidate =
        registry.candidate_by_iid(access.project.id, path.number("iid", "Candidate")?)?;
    Ok(Json(views::candidate(registry, &candidate)?))
}

/// Deletes a candidate (Reporter and above); a version's candidate → 400.
#[utoipa::path(delete, path = "/api/v4/projects/{id}/ml/candidates/{iid}", tag = "candidates",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("iid" = u64, Path, description = "Per-project candidate iid")),
    responses((status = 204, description = "Deleted"),
              (status = 400, description = "The candidate is a model version's", body = ErrorView),
              (status = 401, body = ErrorView), (status = 403, body = ErrorView),
              (status = 404, body = ErrorView)))]
pub async fn delete(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
) -> ApiResult<StatusCode> {
    let registry = &state.registry;
    let access = registry.project_for_action(&caller, path.project(), Action::WriteRegistry)?;
    let candidate =
        registry.candidate_by_iid(access.project.id, path.number("iid", "Candidate")?)?;
    registry.delete_candidate(&caller, &access, candidate.id)?;
    registry.persist().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Promotes a candidate of a model's experiment to a new version of that model; its files
/// become the version's package (Reporter and above).
#[utoipa::path(post, path = "/api/v4/projects/{id}/ml/candidates/{iid}/promote", tag = "candidates",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("iid" = u64, Path, description = "Per-project candidate iid")),
    request_body = Promote,
    responses((status = 201, body = VersionView), (status = 400, body = ErrorView),
              (status = 401, body = ErrorView), (status = 403, body = ErrorView),
              (status = 404, body = ErrorView)))]
pub async fn promote(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
    Body(body): Body<Promote>,
) -> ApiResult<Response> {
    let registry = &state.registry;
    let access = registry.project_for_action(&caller, path.project(), Action::WriteRegistry)?;
    let candidate =
        registry.candidate_by_iid(access.project.id, path.number("iid", "Candidate")?)?;
    let version = registry.promote_candidate(
        &caller,
        &access,
        candidate.id,
        body.version,
        body.description,
    )?;
    registry.persist().await?;
    let model = registry.model(version.model_id)?;
    Ok((
        StatusCode::CREATED,
        Json(views::version(registry, &model, &version)?),
    )
        .into_response())
}
