//! The packages API: list, show, delete packages and their files.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde_json::Value;

use super::{paginated, views, ApiResult, GitlabCaller, Params};
use crate::domain::access::Action;
use crate::domain::packages::{PackageFilter, PackageOrder};
use crate::domain::paging::PageRequest;
use crate::domain::records::{PackageStatus, PackageType};
use crate::domain::Error;
use crate::state::AppState;

fn parse_id(raw: &str, what: &'static str) -> Result<u64, Error> {
    raw.parse().map_err(|_| Error::NotFound(what))
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let access = state.registry.project_for(&caller, &id)?;
    let filter = PackageFilter {
        package_type: params.choice("package_type", PackageType::parse)?,
        package_name: params.str("package_name")?,
        package_version: params.str("package_version")?,
        status: params.choice("status", PackageStatus::parse)?,
        order_by: params
            .choice("order_by", PackageOrder::parse)?
            .unwrap_or_default(),
        descending: params
            .choice("sort", |s| match s {
                "asc" => Some(false),
                "desc" => Some(true),
                _ => None,
            })?
            .unwrap_or(false),
    };
    let page = super::page_request(
        params.str("pagination")?.as_deref(),
        params.str("cursor")?.as_deref(),
        params.usize("page")?,
        params.usize("per_page")?,
    )?;
    let packages = state
        .registry
        .list_packages(&caller, &access, &filter, page)?;
    let base = state.base_url(&headers);
    let page = packages.map(|p| views::package(&p, &access.project, &base));
    Ok(paginated(page, &base, uri.path(), uri.query()))
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    Path((id, package_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let access = state.registry.project_for(&caller, &id)?;
    let package =
        state
            .registry
            .visible_package(&caller, &access, parse_id(&package_id, "Package")?)?;
    Ok(Json(views::package(
        &package,
        &access.project,
        &state.base_url(&headers),
    )))
}

pub async fn delete(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path((id, package_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = state
        .registry
        .project_for_action(&caller, &id, Action::DeletePackages)?;
    state
        .registry
        .delete_package(&caller, &access, parse_id(&package_id, "Package")?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn files(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    GitlabCaller(caller): GitlabCaller,
    Path((id, package_id)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Response> {
    let access = state.registry.project_for(&caller, &id)?;
    let package =
        state
            .registry
            .visible_package(&caller, &access, parse_id(&package_id, "Package")?)?;
    let page = PageRequest::new(params.usize("page")?, params.usize("per_page")?);
    let files = state
        .registry
        .package_files_page(package.id, page)?
        .map(|f| views::package_file(&f));
    Ok(paginated(
        files,
        &state.base_url(&headers),
        uri.path(),
        uri.query(),
    ))
}

pub async fn delete_file(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path((id, package_id, file_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let access = state
        .registry
        .project_for_action(&caller, &id, Action::DeletePackages)?;
    state
        .registry
        .delete_package_file(
            &caller,
            &access,
            parse_id(&package_id, "Package")?,
            parse_id(&file_id, "Package file")?,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
