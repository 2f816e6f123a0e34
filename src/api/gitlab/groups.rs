//! Groups, their members and projects, and namespaces (`/groups`, `/namespaces`).

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::{paginated, views, ApiResult, GitlabCaller, Params};
use crate::domain::access::Caller;
use crate::domain::groups::NewGroup;
use crate::domain::paging::{Page, PageRequest};
use crate::domain::records::{AccessLevel, Visibility};
use crate::domain::Error;
use crate::state::AppState;

fn page_of(params: &Params) -> Result<PageRequest, Error> {
    Ok(PageRequest::new(
        params.usize("page")?,
        params.usize("per_page")?,
    ))
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
    let owned = params.bool("owned")?.unwrap_or(false);
    let top_level = params.bool("top_level_only")?.unwrap_or(false);
    let min_level = params.choice("min_access_level", AccessLevel::parse)?;
    let items = state
        .registry
        .visible_groups(&caller)?
        .into_iter()
        .filter(|g| !owned || g.level == Some(AccessLevel::Owner))
        .filter(|g| min_level.is_none_or(|min| g.level.is_some_and(|l| l >= min)))
        .filter(|g| !top_level || g.group.parent_id.is_none())
        .filter(|g| {
            search.as_deref().is_none_or(|s| {
                g.group.name.to_lowercase().contains(s)
                    || g.group.full_path.to_lowercase().contains(s)
            })
        })
        .map(|g| views::group(&g.group, &base))
        .collect();
    Ok(paginated(
        Page::of(items, page_of(&params)?),
        &base,
        uri.path(),
        uri.query(),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    params: Params,
) -> ApiResult<Response> {
    let group = state
        .registry
        .create_group(
            &caller,
            NewGroup {
                name: params.str("name")?,
                path: params.str("path")?,
                parent_id: params.u64("parent_id")?,
                description: params.str("description")?,
                visibility: params.choice("visibility", Visibility::parse)?,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(views::group(&group, &state.base_url(&headers))),
    )
        .into_response())
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let access = state.registry.group_for(&caller, &id)?;
    let base = state.base_url(&headers);
    let mut body = views::group(&access.group, &base);
    let projects: Vec<Value> = state
        .registry
        .group_projects(&caller, &access.group, false)?
        .iter()
        .map(|p| super::projects::project_json(&state, p, &base))
        .collect::<Result<_, _>>()?;
    body["projects"] = Value::Array(projects);
    Ok(Json(body))
}

pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let access = state.registry.group_for(&caller, &id)?;
    let group = state
        .registry
        .update_group(
            &caller,
            &access,
            params.str("name")?,
            params.str("description")?,
            params.choice("visibility", Visibility::parse)?,
        )
        .await?;
    Ok(Json(views::group(&group, &state.base_url(&headers))))
}

pub async fn delete(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let access = state.registry.group_for(&caller, &id)?;
    state.registry.delete_group(&caller, &access).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "message": "202 Accepted" })),
    )
        .into_response())
}

pub async fn projects(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let access = state.registry.group_for(&caller, &id)?;
    let base = state.base_url(&headers);
    let subgroups = params.bool("include_subgroups")?.unwrap_or(false);
    let items = state
        .registry
        .group_projects(&caller, &access.group, subgroups)?
        .iter()
        .map(|p| super::projects::project_json(&state, p, &base))
        .collect::<Result<_, _>>()?;
    Ok(paginated(
        Page::of(items, page_of(&params)?),
        &base,
        uri.path(),
        uri.query(),
    ))
}

pub async fn subgroups(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let access = state.registry.group_for(&caller, &id)?;
    let base = state.base_url(&headers);
    let items = state
        .registry
        .visible_groups(&caller)?
        .into_iter()
        .filter(|g| g.group.parent_id == Some(access.group.id))
        .map(|g| views::group(&g.group, &base))
        .collect();
    Ok(paginated(
        Page::of(items, page_of(&params)?),
        &base,
        uri.path(),
        uri.query(),
    ))
}

pub async fn list_members(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let access = state.registry.group_for(&caller, &id)?;
    let base = state.base_url(&headers);
    let mut items = Vec::new();
    for member in state.registry.group_members(access.group.id)? {
        let user = state.registry.user(member.user_id)?;
        items.push(views::group_member(&member, &user, &base));
    }
    Ok(paginated(
        Page::of(items, page_of(&params)?),
        &base,
        uri.path(),
        uri.query(),
    ))
}

pub async fn show_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let access = state.registry.group_for(&caller, &id)?;
    let user_id = super::projects::parse_user_id(&user_id)?;
    let member = state
        .registry
        .group_member(access.group.id, user_id)?
        .ok_or(Error::NotFound("Member"))?;
    let user = state.registry.user(user_id)?;
    Ok(Json(views::group_member(
        &member,
        &user,
        &state.base_url(&headers),
    )))
}

async fn save_member(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    id: &str,
    user_id: u64,
    params: &Params,
    must_be_new: bool,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let access = state.registry.group_for(caller, id)?;
    let level = super::projects::access_level(params)?;
    let member = state
        .registry
        .set_group_member(
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
        Json(views::group_member(
            &member,
            &user,
            &state.base_url(headers),
        )),
    ))
}

pub async fn add_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user_id = super::projects::member_user_id(&state, &params)?;
    save_member(&state, &headers, &caller, &id, user_id, &params, true).await
}

pub async fn update_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    Path((id, user_id)): Path<(String, String)>,
    params: Params,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user_id = super::projects::parse_user_id(&user_id)?;
    save_member(&state, &headers, &caller, &id, user_id, &params, false).await
}

pub async fn remove_member(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = state.registry.group_for(&caller, &id)?;
    state
        .registry
        .remove_group_member(&caller, &access, super::projects::parse_user_id(&user_id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /namespaces`: the caller's own namespace and the groups they are a member of (every
/// group for admins).
pub async fn namespaces(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    GitlabCaller(caller): GitlabCaller,
    params: Params,
) -> ApiResult<Response> {
    let me = caller.user().ok_or(Error::Unauthorized)?;
    let base = state.base_url(&headers);
    let search = params.str("search")?.map(|s| s.to_lowercase());
    let mut items = vec![views::user_namespace(me, &base)];
    for access in state.registry.visible_groups(&caller)? {
        if access.level.is_some() || me.admin {
            items.push(views::group_namespace(&access.group, &base));
        }
    }
    items.retain(|ns| {
        search.as_deref().is_none_or(|s| {
            ns["full_path"]
                .as_str()
                .is_some_and(|p| p.to_lowercase().contains(s))
        })
    });
    Ok(paginated(
        Page::of(items, page_of(&params)?),
        &base,
        uri.path(),
        uri.query(),
    ))
}

/// `GET /namespaces/:id`: a user namespace (by the user's id or username) or a group.
pub async fn namespace(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let me = caller.user().ok_or(Error::Unauthorized)?;
    let base = state.base_url(&headers);
    if let Ok(access) = state.registry.group_for(&caller, &id) {
        return Ok(Json(views::group_namespace(&access.group, &base)));
    }
    let user = match id.parse::<u64>() {
        Ok(user_id) => state.registry.user(user_id),
        Err(_) => state.registry.user_by_name(&id),
    }
    .map_err(|_| Error::NotFound("Namespace"))?;
    if user.id != me.id && !me.admin {
        return Err(Error::NotFound("Namespace").into());
    }
    Ok(Json(views::user_namespace(&user, &base)))
}
