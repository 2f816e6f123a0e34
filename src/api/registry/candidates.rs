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
use super::{each, listing, Body, ListPage, QueryParams, Segments};
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
    // The live runs, as MLflow's default view (ACTIVE_ONLY) lists them.
    let page = registry.candidates_page(
        experiment.id,
        RunOrder::Created,
        true,
        false,
        PageRequest::new(query.page, query.per_page),
    )?;
    listing(
        &state,
        &headers,
        &uri,
        page,
        each(|candidate| views::candidate(registry, candidate)),
    )
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
        model_metrics: Vec::new(),
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
    let candidate = registry
        .create_candidate(
            &caller,
            &access,
            experiment.id,
            NewCandidate {
                name: body.name,
                ..NewCandidate::default()
            },
        )
        .await?;
    if let Err(error) = registry
        .log_batch(&caller, &access, candidate.id, batch)
        .await
    {
        // A storage failure half way: the run goes again rather than stay half-made.
        registry
            .delete_candidate(&caller, &access, candidate.id)
            .await?;
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

/// The page of a metric's history a client asks for.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryPage {
    /// 1-based page number.
    pub page: Option<usize>,
    /// Values per page, 1 to 1000 (default 20).
    pub per_page: Option<usize>,
}

/// The most values a page of a metric's history holds.
pub const MAX_HISTORY_PER_PAGE: usize = 1000;

/// One metric's logged values, by step then timestamp, a page at a time (GitLab's pagination
/// headers, `X-Total` is the number of values logged). A candidate's JSON holds only the first
/// values of each metric; this is where the rest is. For a model version, use its `candidate_iid`.
#[utoipa::path(get, path = "/api/v4/projects/{id}/ml/candidates/{iid}/metrics/{key}/history", tag = "candidates",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("iid" = u64, Path, description = "Per-project candidate iid"),
           ("key" = String, Path, description = "The metric's name, URL-encoded"), HistoryPage),
    responses(
        (status = 200, description = "A page of values, with GitLab's pagination headers", body = [views::MetricView]),
        (status = 400, body = ErrorView), (status = 401, body = ErrorView),
        (status = 404, description = "No such candidate, or no such metric logged to it", body = ErrorView)))]
pub async fn metric_history(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
    QueryParams(query): QueryParams<HistoryPage>,
) -> ApiResult<Response> {
    let registry = &state.registry;
    let access = registry.project_for_action(&caller, path.project(), Action::ReadRegistry)?;
    let candidate =
        registry.candidate_by_iid(access.project.id, path.number("iid", "Candidate")?)?;
    let page = registry.metric_history_page(
        candidate.id,
        path.get("key"),
        PageRequest::up_to(query.page, query.per_page, MAX_HISTORY_PER_PAGE),
    )?;
    if page.total == 0 {
        return Err(crate::domain::Error::NotFound("Metric").into());
    }
    listing(
        &state,
        &headers,
        &uri,
        page,
        each(|point| Ok(views::metric(point))),
    )
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
    registry
        .delete_candidate(&caller, &access, candidate.id)
        .await?;
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
    let version = registry
        .promote_candidate(
            &caller,
            &access,
            candidate.id,
            body.version,
            body.description,
        )
        .await?;
    let model = registry.model(version.model_id)?;
    Ok((
        StatusCode::CREATED,
        Json(views::version(registry, &model, &version)?),
    )
        .into_response())
}
