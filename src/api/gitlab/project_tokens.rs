//! A project's machine credentials: deploy tokens, project access tokens (bot members) and
//! trusted publishers (OIDC trust rules).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::{views, ApiResult, GitlabCaller, Params};
use crate::domain::access::Action;
use crate::domain::records::{now, AccessLevel, DeployScope, Scope};
use crate::domain::trust::{NewDeployToken, NewTrustedPublisher};
use crate::domain::Error;
use crate::state::AppState;

fn parse_id(raw: &str, what: &'static str) -> Result<u64, Error> {
    raw.parse().map_err(|_| Error::NotFound(what))
}

fn scopes<T>(params: &Params, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, Error> {
    params
        .list("scopes")?
        .ok_or_else(|| Error::missing("scopes"))?
        .iter()
        .map(|s| {
            parse(s).ok_or_else(|| Error::InvalidParam {
                param: "scopes".into(),
                problem: "does not have a valid value".into(),
            })
        })
        .collect()
}

pub async fn list_deploy_tokens(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let access = state.registry.project_for(&caller, &id)?;
    let today = now().date_naive();
    let tokens = state.registry.deploy_tokens(&caller, &access)?;
    Ok(Json(Value::Array(
        tokens
            .iter()
            .map(|t| views::deploy_token(t, today, None))
            .collect(),
    )))
}

pub async fn create_deploy_token(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let access = state
        .registry
        .project_for_action(&caller, &id, Action::AdminProject)?;
    let issued = state
        .registry
        .create_deploy_token(
            &caller,
            &access,
            NewDeployToken {
                name: params.required_str("name")?,
                username: params.str("username")?,
                scopes: scopes(&params, DeployScope::parse)?,
                package_names: params.list("package_names")?.unwrap_or_default(),
                expires_at: params.date("expires_at")?,
            },
        )
        .await?;
    let body = views::deploy_token(&issued.token, now().date_naive(), Some(&issued.secret));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn show_deploy_token(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path((id, token_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let access = state.registry.project_for(&caller, &id)?;
    let token_id = parse_id(&token_id, "Deploy token")?;
    let token = state
        .registry
        .deploy_tokens(&caller, &access)?
        .into_iter()
        .find(|t| t.id == token_id)
        .ok_or(Error::NotFound("Deploy token"))?;
    Ok(Json(views::deploy_token(&token, now().date_naive(), None)))
}

pub async fn revoke_deploy_token(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path((id, token_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = state
        .registry
        .project_for_action(&caller, &id, Action::AdminProject)?;
    state
        .registry
        .revoke_deploy_token(&caller, &access, parse_id(&token_id, "Deploy token")?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_access_tokens(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let access = state.registry.project_for(&caller, &id)?;
    let today = now().date_naive();
    let tokens = state.registry.project_tokens(&caller, &access)?;
    Ok(Json(Value::Array(
        tokens
            .iter()
            .map(|t| views::project_token(&t.token, t.access_level, today, None))
            .collect(),
    )))
}

pub async fn create_access_token(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let access = state
        .registry
        .project_for_action(&caller, &id, Action::AdminProject)?;
    let level = params
        .choice("access_level", AccessLevel::parse)?
        .unwrap_or(AccessLevel::Maintainer);
    let (token, secret) = state
        .registry
        .create_project_token(
            &caller,
            &access,
            &params.required_str("name")?,
            &scopes(&params, Scope::parse)?,
            level,
            params.date("expires_at")?,
        )
        .await?;
    let body = views::project_token(
        &token.token,
        token.access_level,
        now().date_naive(),
        Some(&secret),
    );
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn show_access_token(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path((id, token_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let access = state.registry.project_for(&caller, &id)?;
    let token_id = parse_id(&token_id, "Project access token")?;
    let token = state
        .registry
        .project_tokens(&caller, &access)?
        .into_iter()
        .find(|t| t.token.id == token_id)
        .ok_or(Error::NotFound("Project access token"))?;
    Ok(Json(views::project_token(
        &token.token,
        token.access_level,
        now().date_naive(),
        None,
    )))
}

pub async fn revoke_access_token(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path((id, token_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = state
        .registry
        .project_for_action(&caller, &id, Action::AdminProject)?;
    state
        .registry
        .revoke_project_token(
            &caller,
            &access,
            parse_id(&token_id, "Project access token")?,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_trusted_publishers(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let access = state.registry.project_for(&caller, &id)?;
    let rules = state.registry.trusted_publishers(&caller, &access)?;
    Ok(Json(Value::Array(
        rules.iter().map(views::trusted_publisher).collect(),
    )))
}

/// `claims` as a JSON object of strings (booleans and numbers are taken as their text).
fn claims(params: &Params) -> Result<BTreeMap<String, String>, Error> {
    params
        .text_map("claims")?
        .ok_or_else(|| Error::missing("claims"))
}

pub async fn add_trusted_publisher(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let access = state
        .registry
        .project_for_action(&caller, &id, Action::AdminProject)?;
    let rule = state
        .registry
        .add_trusted_publisher(
            &caller,
            &access,
            NewTrustedPublisher {
                issuer: params.required_str("issuer")?,
                claims: claims(&params)?,
                access_level: params.choice("access_level", AccessLevel::parse)?,
                description: params.str("description")?,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(views::trusted_publisher(&rule))).into_response())
}

pub async fn remove_trusted_publisher(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path((id, rule_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = state
        .registry
        .project_for_action(&caller, &id, Action::AdminProject)?;
    state
        .registry
        .remove_trusted_publisher(&caller, &access, parse_id(&rule_id, "Trusted publisher")?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /projects/:id/trusted_publishers/token` with `Authorization: Bearer <ID token>`: a
/// token for `PRIVATE-TOKEN` clients that acts as the ID token in this project for 15 minutes.
pub async fn exchange_id_token(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let access = state.registry.project_for(&caller, &id)?;
    let (token, secret) = state.registry.exchange_id_token(&caller, &access).await?;
    let body = serde_json::json!({
        "token": secret,
        "project_id": token.project_id,
        "expires_at": views::time(&token.expires_at),
        "expires_in": crate::domain::trust::CI_TOKEN_MINUTES * 60,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
