//! A model's aliases: list, move several at once, history, rollback.

use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::versions::{model_of, version_of};
use super::{listing, Body, ListPage, QueryParams, Segments};
use crate::api::gitlab::{ApiResult, GitlabCaller};
use crate::domain::access::Action;
use crate::domain::event_records::AliasMove;
use crate::domain::ml_records::Model;
use crate::domain::version_labels::AliasChange;
use crate::domain::{Error, Registry};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasMoveRequest {
    alias: String,
    /// The version's SemVer string or id; `null` deletes the alias.
    version: Option<String>,
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveAliases {
    aliases: Vec<AliasMoveRequest>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    reason: Option<String>,
}

pub fn move_json(m: &AliasMove) -> Value {
    json!({
        "id": m.seq,
        "alias": m.alias,
        "from_version": m.from_version,
        "from_version_id": m.from_version_id,
        "to_version": m.to_version,
        "to_version_id": m.to_version_id,
        "reason": m.reason,
        "user": m.user_id.map(|id| json!({"id": id, "username": m.username})),
        "actor": m.username,
        "created_at": m.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
}

fn aliases_json(registry: &Registry, model: &Model) -> Result<Value, Error> {
    let mut aliases = Vec::new();
    for (alias, version_id) in registry.aliases(model.id)? {
        let version = registry.version(version_id).ok().map(|v| v.version);
        aliases.push(json!({
            "alias": alias,
            "version": version,
            "version_id": version_id,
            "protected": model.protected_aliases.contains(&alias),
        }));
    }
    Ok(json!({
        "aliases": aliases,
        "protected_aliases": model.protected_aliases,
    }))
}

pub async fn list(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
) -> ApiResult<Json<Value>> {
    let (_, model) = model_of(&state.registry, &caller, &path, Action::ReadRegistry)?;
    Ok(Json(aliases_json(&state.registry, &model)?))
}

/// Moves (or deletes) several aliases in one transaction: all or nothing.
pub async fn move_many(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
    Body(body): Body<MoveAliases>,
) -> ApiResult<Json<Value>> {
    let registry = &state.registry;
    let (access, model) = model_of(registry, &caller, &path, Action::WriteRegistry)?;
    let mut changes = Vec::with_capacity(body.aliases.len());
    for request in body.aliases {
        let version = match &request.version {
            Some(reference) => Some(version_of(registry, &model, reference)?),
            None => None,
        };
        changes.push(AliasChange {
            alias: request.alias,
            version,
            reason: request.reason,
        });
    }
    let moves = registry
        .move_aliases(&caller, &access, model.id, changes)
        .await?;
    let model = registry.model(model.id)?;
    let mut body = aliases_json(registry, &model)?;
    body["moves"] = Value::Array(moves.iter().map(move_json).collect());
    Ok(Json(body))
}

pub async fn history(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
    QueryParams(query): QueryParams<ListPage>,
) -> ApiResult<Response> {
    let registry = &state.registry;
    let (_, model) = model_of(registry, &caller, &path, Action::ReadRegistry)?;
    let request = query.request()?;
    if request.is_keyset() {
        return Err(Error::bad("alias history is paginated by page and per_page").into());
    }
    let page = registry.alias_history(model.id, path.get("alias"), request)?;
    listing(&state, &headers, &uri, page, |m| Ok(move_json(m)))
}

pub async fn rollback(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let registry = &state.registry;
    let (access, model) = model_of(registry, &caller, &path, Action::WriteRegistry)?;
    let body: Rollback = if body.iter().all(u8::is_ascii_whitespace) {
        Rollback::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Error::bad(format!("the body is invalid: {e}")))?
    };
    let reason = body.reason;
    let moved = registry
        .rollback_alias(&caller, &access, model.id, path.get("alias"), reason)
        .await?;
    Ok(Json(move_json(&moved)))
}
