//! Versions of a model: list (newest first by SemVer), create, resolve a requirement, show,
//! update, delete.

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::models::key_values;
use super::views::{self, CiJobView, ErrorView, MetadataView, PolicyRefusalView, VersionView};
use super::{listing, Body, ListPage, QueryParams, Segments};
use crate::api::gitlab::{ApiResult, GitlabCaller};
use crate::domain::access::{Action, Caller};
use crate::domain::ml_records::{CiJob, Model, ModelVersion};
use crate::domain::models::NewVersion;
use crate::domain::projects::ProjectAccess;
use crate::domain::{Error, Registry};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Resolve {
    /// A SemVer requirement: `^1.2`, `~1.2`, `1.x`, `>=1.2, <2`, `=1.2.3`, or `latest`.
    /// Prereleases match only when the requirement names one.
    requirement: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CreateVersion {
    /// A Semantic Versioning 2.0.0 string (`1.2.3`, `1.2.3-rc.1`, `1.2.3+build.5`); when absent,
    /// the next patch of the latest version (the first is `1.0.0`).
    version: Option<String>,
    /// Markdown, at most 10,000 characters.
    description: Option<String>,
    #[serde(default)]
    metadata: Vec<MetadataView>,
    /// A candidate (by per-project iid) of the model's experiment to promote to this version.
    candidate_iid: Option<u64>,
    /// The same, by MLflow run id.
    run_id: Option<String>,
    /// The CI/CD job that produced the version.
    ci_job: Option<CiJobView>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateVersion {
    /// Markdown, at most 10,000 characters.
    description: String,
}

/// The model named by the path, readable by the caller.
pub fn model_of(
    registry: &Registry,
    caller: &Caller,
    path: &Segments,
    action: Action,
) -> ApiResult<(ProjectAccess, Model)> {
    let access = registry.project_for_action(caller, path.project(), action)?;
    let model = registry.find_model(access.project.id, path.get("model"))?;
    Ok((access, model))
}

/// A version by its SemVer string, by id (a bare number is never a SemVer version), or, sealed,
/// by `sha256:<manifest digest>`.
pub fn version_of(
    registry: &Registry,
    model: &Model,
    reference: &str,
) -> Result<ModelVersion, Error> {
    if reference.starts_with("sha256:") {
        return registry.version_by_manifest_digest(model, reference);
    }
    match reference.parse::<u64>() {
        Ok(id) => registry
            .version(id)
            .ok()
            .filter(|v| v.model_id == model.id)
            .ok_or(Error::NotFound("Model version")),
        Err(_) => registry.version_by_string(model.id, reference),
    }
}

/// A model's versions, newest (highest SemVer precedence) first.
#[utoipa::path(get, path = "/api/v4/projects/{id}/ml/models/{model}/versions", tag = "versions",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("model" = String, Path, description = "Model id or URL-encoded name"), ListPage),
    responses(
        (status = 200, description = "A page of versions, with GitLab's pagination headers", body = [VersionView]),
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
    let (_, model) = model_of(registry, &caller, &path, Action::ReadRegistry)?;
    let latest_id = registry.latest_version(&model)?.map(|v| v.id);
    let page = registry.versions_page(&model, false, query.request()?)?;
    listing(&state, &headers, &uri, page, |versions| {
        views::versions_given_latest(registry, &model, versions, latest_id)
    })
}

/// Creates a version (Reporter and above): explicit SemVer or the next patch, optionally
/// promoting a candidate and linking a CI job.
#[utoipa::path(post, path = "/api/v4/projects/{id}/ml/models/{model}/versions", tag = "versions",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("model" = String, Path, description = "Model id or URL-encoded name")),
    request_body = CreateVersion,
    responses((status = 201, body = VersionView), (status = 400, body = ErrorView),
              (status = 401, body = ErrorView), (status = 403, body = ErrorView),
              (status = 404, body = ErrorView)))]
pub async fn create(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
    Body(body): Body<CreateVersion>,
) -> ApiResult<Response> {
    let registry = &state.registry;
    let (access, model) = model_of(registry, &caller, &path, Action::WriteRegistry)?;
    let project_id = access.project.id;
    let candidate_id = match (body.candidate_iid, body.run_id.as_deref()) {
        (Some(iid), _) => Some(registry.candidate_by_iid(project_id, iid)?.id),
        (None, Some(run_id)) => Some(registry.candidate_by_run_id(project_id, run_id)?.id),
        (None, None) => None,
    };
    let version = registry
        .create_version(
            &caller,
            &access,
            model.id,
            NewVersion {
                version: body.version,
                description: body.description,
                tags: key_values(body.metadata),
                candidate_id,
                ci: body.ci_job.map(CiJob::from).filter(|ci| !ci.is_empty()),
                ..NewVersion::default()
            },
        )
        .await?;
    let view = views::version(registry, &model, &version)?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The highest version matching a SemVer requirement.
#[utoipa::path(get, path = "/api/v4/projects/{id}/ml/models/{model}/versions/resolve", tag = "versions",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("model" = String, Path, description = "Model id or URL-encoded name"), Resolve),
    responses((status = 200, body = VersionView),
              (status = 400, description = "Not a valid requirement", body = ErrorView),
              (status = 401, body = ErrorView),
              (status = 404, description = "No version matches, or no such model", body = ErrorView)))]
pub async fn resolve(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
    QueryParams(query): QueryParams<Resolve>,
) -> ApiResult<Json<VersionView>> {
    let registry = &state.registry;
    let (access, model) = model_of(registry, &caller, &path, Action::ReadRegistry)?;
    let version = registry.resolve_version(&caller, &access, &model, &query.requirement)?;
    Ok(Json(views::version(registry, &model, &version)?))
}

/// A version (by SemVer string or id) with files, params, metrics, metadata and CI job.
#[utoipa::path(get, path = "/api/v4/projects/{id}/ml/models/{model}/versions/{version}", tag = "versions",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("model" = String, Path, description = "Model id or URL-encoded name"),
           ("version" = String, Path, description = "SemVer string or version id")),
    responses((status = 200, body = VersionView), (status = 401, body = ErrorView),
              (status = 404, body = ErrorView)))]
pub async fn show(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
) -> ApiResult<Json<VersionView>> {
    let registry = &state.registry;
    let (_, model) = model_of(registry, &caller, &path, Action::ReadRegistry)?;
    let version = version_of(registry, &model, path.get("version"))?;
    Ok(Json(views::version(registry, &model, &version)?))
}

/// Changes a version's description (Reporter and above).
#[utoipa::path(patch, path = "/api/v4/projects/{id}/ml/models/{model}/versions/{version}", tag = "versions",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("model" = String, Path, description = "Model id or URL-encoded name"),
           ("version" = String, Path, description = "SemVer string or version id")),
    request_body = UpdateVersion,
    responses((status = 200, body = VersionView), (status = 400, body = ErrorView),
              (status = 401, body = ErrorView), (status = 403, body = ErrorView),
              (status = 404, body = ErrorView)))]
pub async fn update(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
    Body(body): Body<UpdateVersion>,
) -> ApiResult<Json<VersionView>> {
    let registry = &state.registry;
    let (access, model) = model_of(registry, &caller, &path, Action::WriteRegistry)?;
    let version = version_of(registry, &model, path.get("version"))?;
    let version = registry
        .update_version_description(&caller, &access, version.id, &body.description)
        .await?;
    Ok(Json(views::version(registry, &model, &version)?))
}

/// Deletes a version with its package and candidate (Reporter and above).
#[utoipa::path(delete, path = "/api/v4/projects/{id}/ml/models/{model}/versions/{version}", tag = "versions",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("model" = String, Path, description = "Model id or URL-encoded name"),
           ("version" = String, Path, description = "SemVer string or version id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorView),
              (status = 403, body = ErrorView), (status = 404, body = ErrorView)))]
pub async fn delete(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
) -> ApiResult<StatusCode> {
    let registry = &state.registry;
    let (access, model) = model_of(registry, &caller, &path, Action::WriteRegistry)?;
    let version = version_of(registry, &model, path.get("version"))?;
    registry
        .delete_version(&caller, &access, version.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArchiveQuery {
    /// `tar` (default) or `zip` (stored, zip64 when needed).
    format: Option<String>,
}

/// Every file of a version and its `manifest.json` (every file's path, size and sha256; the
/// model; the version) as one tar or zip, streamed. The version slot resolves as downloads do:
/// a version id, an exact version, or a requirement (`^1.2`, `latest`).
#[utoipa::path(get, path = "/api/v4/projects/{id}/ml/models/{model}/versions/{version}/archive", tag = "versions",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("model" = String, Path, description = "Model id or URL-encoded name"),
           ("version" = String, Path, description = "Version id, SemVer string or requirement"),
           ArchiveQuery),
    responses((status = 200, description = "The archive", content_type = "application/x-tar"),
              (status = 400, body = ErrorView), (status = 401, body = ErrorView),
              (status = 404, body = ErrorView)))]
pub async fn archive(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
    QueryParams(query): QueryParams<ArchiveQuery>,
) -> ApiResult<Response> {
    use crate::api::archive::{self, Entry, Format, Source};
    let format = match query.format.as_deref() {
        None => Format::Tar,
        Some(name) => Format::parse(name).ok_or_else(|| Error::InvalidParam {
            param: "format".into(),
            problem: "does not have a valid value (tar or zip)".into(),
        })?,
    };
    let registry = &state.registry;
    let (access, model) = model_of(registry, &caller, &path, Action::ReadRegistry)?;
    let version = registry.version_for_slot(&caller, &access, &model, path.get("version"))?;
    let (files, manifest) = registry.version_manifest(&model, &version)?;
    let manifest_name = if files.iter().any(|f| f.file_name == "manifest.json") {
        ".modelyard/manifest.json"
    } else {
        "manifest.json"
    };
    let manifest = bytes::Bytes::from(manifest.canonical_json());
    let mut entries = vec![Entry {
        name: manifest_name.to_string(),
        size: manifest.len() as u64,
        source: Source::Bytes(manifest),
    }];
    for file in files {
        // A missing blob is refused before the archive starts.
        registry
            .blobs()
            .stat(&file.sha256)
            .await
            .map_err(Error::from)?;
        entries.push(Entry {
            name: file.file_name,
            size: file.size,
            source: Source::Blob(registry.shared_blobs(), file.sha256),
        });
    }
    let mtime = version.created_at.timestamp().max(0) as u64;
    let body = axum::body::Body::from_stream(archive::stream(format, entries, mtime));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(format.content_type()),
    );
    headers.insert(
        axum::http::header::CONTENT_DISPOSITION,
        crate::api::download::content_disposition(&format!(
            "{}-{}.{}",
            model.name,
            version.version,
            format.extension()
        )),
    );
    if let Ok(value) = axum::http::HeaderValue::from_str(&version.version) {
        headers.insert("x-model-version", value);
    }
    Ok(response)
}

/// A version's manifest as canonical JSON (what its archive carries), its sha256 in
/// `X-Manifest-Digest: sha256:<hex>`. The slot resolves as downloads do.
#[utoipa::path(get, path = "/api/v4/projects/{id}/ml/models/{model}/versions/{version}/manifest", tag = "versions",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("model" = String, Path, description = "Model id or URL-encoded name"),
           ("version" = String, Path, description = "Version id, SemVer string or requirement")),
    responses((status = 200, description = "The canonical manifest", content_type = "application/json"),
              (status = 401, body = ErrorView), (status = 404, body = ErrorView)))]
pub async fn manifest(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
) -> ApiResult<Response> {
    use sha2::Digest;
    let registry = &state.registry;
    let (access, model) = model_of(registry, &caller, &path, Action::ReadRegistry)?;
    let version = registry.version_for_slot(&caller, &access, &model, path.get("version"))?;
    let (_, manifest) = registry.version_manifest(&model, &version)?;
    let body = manifest.canonical_json();
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body)));
    let mut response = Response::new(axum::body::Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = axum::http::HeaderValue::from_str(&digest) {
        headers.insert("x-manifest-digest", value);
    }
    if let Ok(value) = axum::http::HeaderValue::from_str(&version.version) {
        headers.insert("x-model-version", value);
    }
    Ok(response)
}

/// Seals a version (Maintainers): its manifest (every file's path, size and sha256; the model
/// and version; who sealed it and when) is frozen, and its files never change again on any
/// surface (409). Idempotent; a body, if any, is ignored. The version slot takes a version id,
/// an exact version or `sha256:<manifest digest>`.
#[utoipa::path(post, path = "/api/v4/projects/{id}/ml/models/{model}/versions/{version}/seal", tag = "versions",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("model" = String, Path, description = "Model id or URL-encoded name"),
           ("version" = String, Path, description = "SemVer string or version id")),
    responses((status = 200, description = "The sealed version", body = VersionView),
              (status = 401, body = ErrorView), (status = 403, body = ErrorView),
              (status = 404, body = ErrorView),
              (status = 409, description = "The model's promotion policy refuses the seal", body = PolicyRefusalView)))]
pub async fn seal(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
) -> ApiResult<Json<VersionView>> {
    let registry = &state.registry;
    let (access, model) = model_of(registry, &caller, &path, Action::SealVersion)?;
    let version = version_of(registry, &model, path.get("version"))?;
    let version = registry.seal_version(&caller, &access, version.id).await?;
    Ok(Json(views::version(registry, &model, &version)?))
}
