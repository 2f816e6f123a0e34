//! A project's webhooks in GitLab's shape (`/projects/:id/hooks`), their delivery logs, resends
//! and test deliveries.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{paginated, ApiResult, GitlabCaller, Params};
use crate::domain::event_records::{Delivery, Hook, GITLAB_EVENTS, REGISTRY_EVENTS};
use crate::domain::events::HookInput;
use crate::domain::paging::PageRequest;
use crate::domain::Error;
use crate::state::AppState;

fn parse_id(raw: &str, what: &'static str) -> Result<u64, Error> {
    raw.parse().map_err(|_| Error::NotFound(what))
}

pub fn hook_json(hook: &Hook) -> Value {
    let mut body = json!({
        "id": hook.id,
        "url": hook.url,
        "name": hook.name,
        "description": hook.description,
        "project_id": hook.project_id,
        "created_at": hook.created_at,
        "enable_ssl_verification": hook.enable_ssl_verification,
        "alert_status": "executable",
        "token_set": hook.token.is_some(),
    });
    if let Some(object) = body.as_object_mut() {
        for flag in REGISTRY_EVENTS.iter().chain(GITLAB_EVENTS.iter()) {
            object.insert((*flag).into(), Value::Bool(hook.wants(flag)));
        }
    }
    body
}

pub fn delivery_json(delivery: &Delivery) -> Value {
    json!({
        "id": delivery.seq,
        "webhook_id": delivery.message_id,
        "event": delivery.event,
        "object_kind": delivery.object_kind,
        "trigger": format!("{}_events", delivery.object_kind),
        "status": delivery.status,
        "response_status": delivery.response_code,
        "attempts": delivery.attempts,
        "execution_duration": delivery.duration_ms.map(|ms| ms as f64 / 1000.0),
        "duration_ms": delivery.duration_ms,
        "error": delivery.error,
        "created_at": delivery.created_at,
        "finished_at": delivery.finished_at,
        "next_attempt_at": chrono::DateTime::from_timestamp_millis(delivery.next_attempt_ms),
        "request_data": delivery.payload,
    })
}

fn input(params: &Params) -> Result<HookInput, Error> {
    let mut flags = Vec::new();
    for flag in REGISTRY_EVENTS.iter().chain(GITLAB_EVENTS.iter()) {
        if let Some(on) = params.bool(flag)? {
            flags.push((flag.to_string(), on));
        }
    }
    Ok(HookInput {
        url: params.str("url")?,
        token: if params.has("token") {
            Some(params.str("token")?)
        } else {
            None
        },
        name: params.str("name")?,
        description: params.str("description")?,
        flags,
        enable_ssl_verification: params.bool("enable_ssl_verification")?,
    })
}

fn page_of(params: &Params) -> Result<PageRequest, Error> {
    Ok(PageRequest::new(
        params.usize("page")?,
        params.usize("per_page")?,
    ))
}

pub async fn list(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let params = Params::from_query(uri.query());
    let access = state.registry.project_for(&caller, &id)?;
    let page = state.registry.hooks(&caller, &access, page_of(&params)?)?;
    let base = state.base_url(&headers);
    Ok(paginated(
        page.map(|h| hook_json(&h)),
        &base,
        uri.path(),
        uri.query(),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let access = state.registry.project_for(&caller, &id)?;
    let hook = state
        .registry
        .create_hook(&caller, &access, input(&params)?)
        .await?;
    Ok((StatusCode::CREATED, Json(hook_json(&hook))).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path((id, hook_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let access = state.registry.project_for(&caller, &id)?;
    let hook = state
        .registry
        .hook(&caller, &access, parse_id(&hook_id, "Hook")?)?;
    Ok(Json(hook_json(&hook)))
}

pub async fn update(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path((id, hook_id)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let access = state.registry.project_for(&caller, &id)?;
    let hook = state
        .registry
        .update_hook(
            &caller,
            &access,
            parse_id(&hook_id, "Hook")?,
            input(&params)?,
        )
        .await?;
    Ok(Json(hook_json(&hook)))
}

pub async fn delete(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path((id, hook_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = state.registry.project_for(&caller, &id)?;
    state
        .registry
        .delete_hook(&caller, &access, parse_id(&hook_id, "Hook")?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn events(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path((id, hook_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let params = Params::from_query(uri.query());
    let access = state.registry.project_for(&caller, &id)?;
    let page = state.registry.hook_events(
        &caller,
        &access,
        parse_id(&hook_id, "Hook")?,
        page_of(&params)?,
    )?;
    let base = state.base_url(&headers);
    Ok(paginated(
        page.map(|d| delivery_json(&d)),
        &base,
        uri.path(),
        uri.query(),
    ))
}

pub async fn resend(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path((id, hook_id, event_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let access = state.registry.project_for(&caller, &id)?;
    let delivery = state
        .registry
        .resend_hook_event(
            &caller,
            &access,
            parse_id(&hook_id, "Hook")?,
            parse_id(&event_id, "Hook event")?,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(delivery_json(&delivery))).into_response())
}

pub async fn test(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path((id, hook_id, trigger)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let access = state.registry.project_for(&caller, &id)?;
    let delivery = state
        .registry
        .test_hook(&caller, &access, parse_id(&hook_id, "Hook")?, &trigger)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"message": "201 Created", "event": delivery_json(&delivery)})),
    )
        .into_response())
}
