//! Projects and their members.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::{paginated, views, ApiResult, GitlabCaller, Params};
use crate::domain::access::Action;
use crate::domain::paging::{Page, PageRequest};
use crate::domain::projects::{NewProject, ProjectChanges};
use crate::domain::records::{AccessLevel, FeatureAccess, Visibility};
use crate::domain::Error;
use crate::state::AppState;

/// A project's JSON, with its namespace (a user's or a group).
pub fn project_json(
    state: &AppState,
    project: &crate::domain::records::Project,
    base: &str,
) -> Result<Value, Error> {
    let namespace = match state.registry.group_by_path(&project.namespace)? {
        Some(group) => views::group_namespace(&group, base),
        None => match state.registry.user_by_name(&project.namespace) {
            Ok(user) => views::user_namespace(&user, base),
            Err(_) => serde_json::json!({
                "id": null, "name": project.namespace, "path": project.namespace,
                "kind": "user", "full_path": project.namespace,
            }),
        },
    };
    Ok(views::project(project, base, namespace))
}

fn visibility(params: &Params) -> Result<Option<Visibility>, Error> {
    params.choice("visibility", Visibility::parse)
}

fn registry_level(params: &Params) -> Result<Option<FeatureAccess>, Error> {
    let level = params.choice("model_registry_access_level", FeatureAccess::parse)?;
    match level {
        Some(level) => Ok(Some(level)),
        None => params.choice("model_experiments_access_level", FeatureAccess::parse),
    }
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    GitlabCaller(caller): GitlabCaller,
    params: Params,
) -> ApiResult<Response> {
    let base = state.base_url(&headers);
    let search = params.str("search")?.map(|s| s.to_lowercase());
    let membership =
        params.bool("membership")?.unwrap_or(false) || params.bool("owned")?.unwrap_or(false);
    let wanted_visibility = visibility(&params)?;
    let mut projects: Vec<_> = state
        .registry
        .visible_projects(&caller)?
        .into_iter()
        .filter(|a| !membership || a.level.is_some())
        .filter(|a| wanted_visibility.is_none_or(|v| a.project.visibility == v))
        .filter(|a| {
            search.as_deref().is_none_or(|s| {
                a.project.name.to_lowercase().contains(s)
                    || a.project.path_with_namespace().to_lowercase().contains(s)
            })
        })
        .collect();
    let ascending = params.str("sort")?.as_deref() == Some("asc");
    match params.str("order_by")?.as_deref() {
        Some("name") => projects.sort_by(|a, b| a.project.name.cmp(&b.project.name)),
        Some("path") => projects.sort_by_key(|a| a.project.path_with_namespace()),
        _ => projects.sort_by_key(|a| a.project.id),
    }
    let descending_default = !matches!(
        params.str("order_by")?.as_deref(),
        Some("name") | Some("path")
    );
    if (descending_default && !ascending) || params.str("sort")?.as_deref() == Some("desc") {
        projects.reverse();
    }
    // The page is cut before its projects are rendered (each with its counts and links).
    let page = Page::of(
        projects,
        PageRequest::new(params.usize("page")?, params.usize("per_page")?),
    )
    .try_map(|a| project_json(&state, &a.project, &base))?;
    Ok(paginated(page, &base, uri.path(), uri.query()))
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    params: Params,
) -> ApiResult<Response> {
    if let crate::domain::access::Caller::User(p) = &caller {
        if !p.can_write {
            return Err(Error::Forbidden.into());
        }
    }
    let namespace = match params.u64("namespace_id")? {
        Some(id) => Some(match state.registry.group(id) {
            Ok(group) => group.full_path,
            Err(_) => {
                state
                    .registry
                    .user(id)
                    .map_err(|_| Error::NotFound("Namespace"))?
                    .username
            }
        }),
        None => params.str("namespace_path")?.or(params.str("namespace")?),
    };
    let project = state
        .registry
        .create_project(
            &caller,
            NewProject {
                name: params.str("name")?,
                path: params.str("path")?,
                namespace,
                description: params.str("description")?,
                visibility: visibility(&params)?,
                model_registry_access_level: registry_level(&params)?,
                generic_duplicates_allowed: params.bool("generic_duplicates_allowed")?,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(project_json(&state, &project, &state.base_url(&headers))?),
    )
        .into_response())
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let access = state.registry.project_for(&caller, &id)?;
    Ok(Json(project_json(
        &state,
        &access.project,
        &state.base_url(&headers),
    )?))
}

pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let access = state
        .registry
        .project_for_action(&caller, &id, Action::AdminProject)?;
    let project = state
        .registry
        .update_project(
            &caller,
            &access,
            ProjectChanges {
                name: params.str("name")?,
                description: params.str("description")?,
                visibility: visibility(&params)?,
                model_registry_access_level: registry_level(&params)?,
                generic_duplicates_allowed: params.bool("generic_duplicates_allowed")?,
                ci_job_token_gitlab_projects: params.list("ci_job_token_gitlab_projects")?,
                ci_job_token_access_level: params
                    .choice("ci_job_token_access_level", AccessLevel::parse)?,
            },
        )
        .await?;
    Ok(Json(project_json(
        &state,
        &project,
        &state.base_url(&headers),
    )?))
}

pub async fn delete(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let access = state
        .registry
        .project_for_action(&caller, &id, Action::DeleteProject)?;
    state.registry.delete_project(&caller, &access).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "message": "202 Accepted" })),
    )
        .into_response())
}

pub async fn list_members(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let access = state.registry.project_for(&caller, &id)?;
    let base = state.base_url(&headers);
    let mut items = Vec::new();
    for member in state.registry.members(access.project.id)? {
        let user = state.registry.user(member.user_id)?;
        items.push(views::member(&member, &user, &base));
    }
    let page = PageRequest::new(params.usize("page")?, params.usize("per_page")?);
    Ok(paginated(
        Page::of(items, page),
        &base,
        uri.path(),
        uri.query(),
    ))
}

/// A member's user id in a path: anything else is a member that does not exist.
pub(super) fn parse_user_id(raw: &str) -> Result<u64, Error> {
    raw.parse().map_err(|_| Error::NotFound("Member"))
}

pub async fn show_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let access = state.registry.project_for(&caller, &id)?;
    let user_id = parse_user_id(&user_id)?;
    let member = state
        .registry
        .member(access.project.id, user_id)?
        .ok_or(Error::NotFound("Member"))?;
    let user = state.registry.user(user_id)?;
    Ok(Json(views::member(
        &member,
        &user,
        &state.base_url(&headers),
    )))
}

pub(super) fn access_level(params: &Params) -> Result<AccessLevel, Error> {
    let raw = params.required_str("access_level")?;
    AccessLevel::parse(&raw).ok_or_else(|| Error::InvalidParam {
        param: "access_level".into(),
        problem: "does not have a valid value".into(),
    })
}

async fn save_member(
    state: &AppState,
    headers: &HeaderMap,
    caller: &crate::domain::access::Caller,
    id: &str,
    user_id: u64,
    params: &Params,
    must_be_new: bool,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let access = state
        .registry
        .project_for_action(caller, id, Action::AdminProject)?;
    let level = access_level(params)?;
    let member = state
        .registry
        .set_member(
            caller,
            &access,
            user_id,
            level,
            params.date("expires_at")?,
            Some(must_be_new),
        )
        .await?;
    let user = state.registry.user(user_id)?;
    let status = if must_be_new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(views::member(&member, &user, &state.base_url(headers))),
    ))
}

/// The user a member request names: `user_id`, or `username`.
pub(super) fn member_user_id(state: &AppState, params: &Params) -> Result<u64, Error> {
    match params.u64("user_id")? {
        Some(user_id) => Ok(user_id),
        None => {
            let username = params
                .required_str("username")
                .map_err(|_| Error::missing("user_id"))?;
            Ok(state.registry.user_by_name(&username)?.id)
        }
    }
}

pub async fn add_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user_id = member_user_id(&state, &params)?;
    save_member(&state, &headers, &caller, &id, user_id, &params, true).await
}

pub async fn update_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    Path((id, user_id)): Path<(String, String)>,
    params: Params,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user_id = parse_user_id(&user_id)?;
    save_member(&state, &headers, &caller, &id, user_id, &params, false).await
}

pub async fn remove_member(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = state
        .registry
        .project_for_action(&caller, &id, Action::AdminProject)?;
    state
        .registry
        .remove_member(&caller, &access, parse_user_id(&user_id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
