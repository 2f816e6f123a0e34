//! Instance-level routes: version, users and personal access tokens.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{paginated, views, ApiResult, GitlabCaller, Params};
use crate::domain::access::Caller;
use crate::domain::accounts::NewUser;
use crate::domain::paging::{Page, PageRequest};
use crate::domain::records::{now, Scope, User};
use crate::domain::Error;
use crate::state::AppState;

pub async fn version() -> Json<Value> {
    Json(json!({
        "version": "17.5.0",
        "revision": concat!("modelyard-", env!("CARGO_PKG_VERSION")),
        "enterprise": false,
    }))
}

fn signed_in(caller: &Caller) -> Result<&User, Error> {
    caller.user().ok_or(Error::Unauthorized)
}

fn admin(caller: &Caller) -> Result<&User, Error> {
    let user = signed_in(caller)?;
    if user.admin {
        Ok(user)
    } else {
        Err(Error::Forbidden)
    }
}

fn writer(caller: &Caller) -> Result<(), Error> {
    match caller {
        Caller::Anonymous => Err(Error::Unauthorized),
        Caller::User(p) if !p.can_write => Err(Error::Forbidden),
        Caller::User(_) => Ok(()),
        Caller::Machine(m) => Err(Error::denied(format!(
            "{} cannot manage users or tokens",
            m.describe()
        ))),
    }
}

pub async fn current_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
) -> ApiResult<Json<Value>> {
    let user = signed_in(&caller)?;
    Ok(Json(views::user(user, &state.base_url(&headers), true)))
}

pub async fn list_users(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    GitlabCaller(caller): GitlabCaller,
    params: Params,
) -> ApiResult<Response> {
    let me = signed_in(&caller)?;
    let username = params.str("username")?;
    let search = params.str("search")?.map(|s| s.to_lowercase());
    let page = PageRequest::new(params.usize("page")?, params.usize("per_page")?);
    let base = state.base_url(&headers);
    let users = state
        .registry
        .users_page(username.as_deref(), search.as_deref(), page)?
        .map(|u| views::user(&u, &base, me.admin || me.id == u.id));
    Ok(paginated(users, &base, uri.path(), uri.query()))
}

pub async fn get_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let me = signed_in(&caller)?;
    let id: u64 = user_id.parse().map_err(|_| Error::NotFound("User"))?;
    let user = state.registry.user(id)?;
    Ok(Json(views::user(
        &user,
        &state.base_url(&headers),
        me.admin || me.id == id,
    )))
}

pub async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    params: Params,
) -> ApiResult<Response> {
    admin(&caller)?;
    writer(&caller)?;
    let username = params.required_str("username")?;
    let name = params.str("name")?.unwrap_or_default();
    let email = params.str("email")?;
    let password = params.str("password")?;
    let user = state
        .registry
        .create_user(NewUser {
            username: &username,
            name: &name,
            email: email.as_deref(),
            password: password.as_deref(),
            admin: params.bool("admin")?.unwrap_or(false),
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(views::user(&user, &state.base_url(&headers), true)),
    )
        .into_response())
}

fn token_request(
    params: &Params,
) -> Result<(String, Vec<Scope>, Option<chrono::NaiveDate>), Error> {
    let name = params.required_str("name")?;
    let scopes = params
        .list("scopes")?
        .ok_or_else(|| Error::missing("scopes"))?
        .iter()
        .map(|s| {
            Scope::parse(s).ok_or_else(|| Error::InvalidParam {
                param: "scopes".into(),
                problem: "does not have a valid value".into(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((name, scopes, params.date("expires_at")?))
}

/// How long a token a user creates for themselves lasts when they give no `expires_at`.
const SELF_TOKEN_DAYS: u64 = 365;

async fn issue(
    state: &AppState,
    user_id: u64,
    params: &Params,
    default_expiry: bool,
) -> ApiResult<Response> {
    let (name, scopes, expires_at) = token_request(params)?;
    let expires_at = match expires_at {
        None if default_expiry => Some(now().date_naive() + chrono::Days::new(SELF_TOKEN_DAYS)),
        other => other,
    };
    let issued = state
        .registry
        .create_token(user_id, &name, &scopes, expires_at)
        .await?;
    let body = views::token(&issued.token, now().date_naive(), Some(&issued.secret));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `POST /users/:id/personal_access_tokens`: an administrator issues a token for a user.
pub async fn create_user_token(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path(user_id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    admin(&caller)?;
    writer(&caller)?;
    let id: u64 = user_id.parse().map_err(|_| Error::NotFound("User"))?;
    issue(&state, id, &params, false).await
}

/// `POST /user/personal_access_tokens`: a user issues a token for themselves.
pub async fn create_own_token(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    params: Params,
) -> ApiResult<Response> {
    let me = signed_in(&caller)?.id;
    writer(&caller)?;
    issue(&state, me, &params, true).await
}

pub async fn list_tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    GitlabCaller(caller): GitlabCaller,
    params: Params,
) -> ApiResult<Response> {
    let me = signed_in(&caller)?;
    let owner = match params.u64("user_id")? {
        Some(id) if id != me.id && !me.admin => return Err(Error::Forbidden.into()),
        Some(id) => Some(id),
        None if me.admin => None,
        None => Some(me.id),
    };
    let users = match owner {
        Some(id) => vec![id],
        None => state.registry.users()?.iter().map(|u| u.id).collect(),
    };
    let today = now().date_naive();
    let mut tokens = Vec::new();
    for id in users {
        for token in state.registry.tokens_of(id)? {
            tokens.push(views::token(&token, today, None));
        }
    }
    let page = PageRequest::new(params.usize("page")?, params.usize("per_page")?);
    Ok(paginated(
        Page::of(tokens, page),
        &state.base_url(&headers),
        uri.path(),
        uri.query(),
    ))
}

/// Resolves `self` or a numeric id to a token the caller may manage.
fn owned_token(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    token_id: &str,
) -> Result<crate::domain::records::PersonalAccessToken, Error> {
    let me = signed_in(caller)?;
    let token = if token_id == "self" {
        let secret = crate::api::auth::presented_secret(headers)?.ok_or(Error::Unauthorized)?;
        state
            .registry
            .token_by_secret(&secret)?
            .ok_or(Error::Unauthorized)?
    } else {
        let id: u64 = token_id.parse().map_err(|_| Error::NotFound("Token"))?;
        state.registry.token(id)?
    };
    if token.user_id != me.id && !me.admin {
        return Err(Error::NotFound("Token"));
    }
    Ok(token)
}

pub async fn get_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    Path(token_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let token = owned_token(&state, &caller, &headers, &token_id)?;
    Ok(Json(views::token(&token, now().date_naive(), None)))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    Path(token_id): Path<String>,
) -> ApiResult<StatusCode> {
    let token = owned_token(&state, &caller, &headers, &token_id)?;
    if token_id != "self" {
        writer(&caller)?;
    }
    state.registry.revoke_token(token.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn user_id_of(raw: &str) -> Result<u64, Error> {
    raw.parse().map_err(|_| Error::NotFound("User"))
}

/// `PUT /users/:id` (admin): name, email, admin, password.
pub async fn update_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    GitlabCaller(caller): GitlabCaller,
    Path(user_id): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    admin(&caller)?;
    writer(&caller)?;
    let id = user_id_of(&user_id)?;
    let user = state
        .registry
        .update_user(
            id,
            crate::domain::accounts::UserChanges {
                name: params.str("name")?,
                email: params.str("email")?,
                admin: params.bool("admin")?,
                password: params.str("password")?,
            },
        )
        .await?;
    Ok(Json(views::user(&user, &state.base_url(&headers), true)))
}

/// `DELETE /users/:id` (admin): the user, their tokens and memberships.
pub async fn delete_user(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    let me = admin(&caller)?.id;
    writer(&caller)?;
    let id = user_id_of(&user_id)?;
    if id == me {
        return Err(Error::denied("you cannot delete yourself").into());
    }
    state.registry.delete_user(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /users/:id/projects`: the projects in the user's namespace that the caller sees.
pub async fn user_projects(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    GitlabCaller(caller): GitlabCaller,
    Path(user_id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let user = match user_id.parse::<u64>() {
        Ok(id) => state.registry.user(id)?,
        Err(_) => state.registry.user_by_name(&user_id)?,
    };
    let base = state.base_url(&headers);
    let items = state
        .registry
        .visible_projects(&caller)?
        .iter()
        .filter(|a| a.project.namespace.eq_ignore_ascii_case(&user.username))
        .map(|a| super::projects::project_json(&state, &a.project, &base))
        .collect::<Result<_, _>>()?;
    let page = PageRequest::new(params.usize("page")?, params.usize("per_page")?);
    Ok(paginated(
        Page::of(items, page),
        &base,
        uri.path(),
        uri.query(),
    ))
}

/// `GET /users/:id/memberships` (admin or self): the user's direct project and group
/// memberships.
pub async fn user_memberships(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    GitlabCaller(caller): GitlabCaller,
    Path(user_id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let me = signed_in(&caller)?;
    let id = user_id_of(&user_id)?;
    if id != me.id && !me.admin {
        return Err(Error::Forbidden.into());
    }
    state.registry.user(id)?;
    let wanted = params.str("type")?;
    let mut items = Vec::new();
    if wanted.as_deref().is_none_or(|t| t == "Project") {
        for project in state.registry.all_projects()? {
            if let Some(member) = state.registry.member(project.id, id)? {
                items.push(json!({
                    "source_id": project.id,
                    "source_name": project.name,
                    "source_type": "Project",
                    "access_level": member.access_level as u8,
                    "created_at": views::time(&member.created_at),
                    "expires_at": member.expires_at.map(|d| d.format("%Y-%m-%d").to_string()),
                }));
            }
        }
    }
    if wanted.as_deref().is_none_or(|t| t == "Namespace") {
        for group in state.registry.groups_of_user(id)? {
            if let Some(member) = state.registry.group_member(group.id, id)? {
                items.push(json!({
                    "source_id": group.id,
                    "source_name": group.name,
                    "source_type": "Namespace",
                    "access_level": member.access_level as u8,
                    "created_at": views::time(&member.created_at),
                    "expires_at": member.expires_at.map(|d| d.format("%Y-%m-%d").to_string()),
                }));
            }
        }
    }
    let page = PageRequest::new(params.usize("page")?, params.usize("per_page")?);
    let base = state.base_url(&headers);
    Ok(paginated(
        Page::of(items, page),
        &base,
        uri.path(),
        uri.query(),
    ))
}
