//! A model's aliases: list, move several at once, history, rollback.

use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::versions::{model_of, version_of};
use super::views::{AliasMoveView, AliasView, AliasesView, ErrorView, PolicyRefusalView};
use super::{each, listing, Body, ListPage, QueryParams, Segments};
use crate::api::gitlab::{ApiResult, GitlabCaller};
use crate::domain::access::Action;
use crate::domain::ml_records::Model;
use crate::domain::version_labels::AliasChange;
use crate::domain::{Error, Registry};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasMoveRequest {
    alias: String,
    /// The version's SemVer string or id; `null` deletes the alias.
    version: Option<String>,
    reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveAliases {
    aliases: Vec<AliasMoveRequest>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    reason: Option<String>,
}

fn aliases_view(registry: &Registry, model: &Model) -> Result<AliasesView, Error> {
    let mut aliases = Vec::new();
    for (alias, version_id) in registry.aliases(model.id)? {
        let version = registry.version(version_id).ok().map(|v| v.version);
        aliases.push(AliasView {
            protected: model.protected_aliases.contains(&alias),
            alias,
            version,
            version_id,
        });
    }
    Ok(AliasesView {
        aliases,
        protected_aliases: model.protected_aliases.clone(),
        moves: None,
    })
}

const ID: &str = "Project id or URL-encoded path";
const MODEL: &str = "Model id or URL-encoded name";

#[utoipa::path(get, path = "/api/v4/projects/{id}/ml/models/{model}/aliases", tag = "aliases",
    params(("id" = String, Path, description = ID), ("model" = String, Path, description = MODEL)),
    responses((status = 200, body = AliasesView), (status = 401, body = ErrorView),
              (status = 404, body = ErrorView)))]
pub async fn list(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
) -> ApiResult<Json<AliasesView>> {
    let (_, model) = model_of(&state.registry, &caller, &path, Action::ReadRegistry)?;
    Ok(Json(aliases_view(&state.registry, &model)?))
}

/// Moves (or deletes) several aliases in one transaction: all or nothing.
#[utoipa::path(put, path = "/api/v4/projects/{id}/ml/models/{model}/aliases", tag = "aliases",
    params(("id" = String, Path, description = ID), ("model" = String, Path, description = MODEL)),
    request_body = MoveAliases,
    responses(
        (status = 200, description = "The aliases after the moves, and the moves", body = AliasesView),
        (status = 400, body = ErrorView), (status = 401, body = ErrorView),
        (status = 403, description = "A protected alias and a caller below Maintainer", body = ErrorView),
        (status = 404, body = ErrorView),
        (status = 409, description = "A promotion rule refused a protected alias's move; nothing moved",
         body = PolicyRefusalView)))]
pub async fn move_many(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
    Body(body): Body<MoveAliases>,
) -> ApiResult<Json<AliasesView>> {
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
    let mut view = aliases_view(registry, &model)?;
    view.moves = Some(moves.iter().map(AliasMoveView::of).collect());
    Ok(Json(view))
}

#[utoipa::path(get, path = "/api/v4/projects/{id}/ml/models/{model}/aliases/{alias}/history",
    tag = "aliases",
    params(("id" = String, Path, description = ID), ("model" = String, Path, description = MODEL),
           ("alias" = String, Path, description = "The alias"), ListPage),
    responses(
        (status = 200, description = "The alias's moves, newest first, with GitLab's pagination headers",
         body = [AliasMoveView]),
        (status = 400, body = ErrorView), (status = 401, body = ErrorView),
        (status = 404, body = ErrorView)))]
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
    listing(
        &state,
        &headers,
        &uri,
        page,
        each(|m| Ok(AliasMoveView::of(m))),
    )
}

/// Moves the alias back to where its last move took it from.
#[utoipa::path(post, path = "/api/v4/projects/{id}/ml/models/{model}/aliases/{alias}/rollback",
    tag = "aliases",
    params(("id" = String, Path, description = ID), ("model" = String, Path, description = MODEL),
           ("alias" = String, Path, description = "The alias")),
    request_body(content = Option<Rollback>, description = "An optional reason"),
    responses((status = 200, description = "The move back", body = AliasMoveView),
              (status = 400, body = ErrorView), (status = 401, body = ErrorView),
              (status = 403, body = ErrorView), (status = 404, body = ErrorView),
              (status = 409, description = "The alias has no earlier position, or a promotion rule refused the move",
               body = ErrorView)))]
pub async fn rollback(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
    body: axum::body::Bytes,
) -> ApiResult<Json<AliasMoveView>> {
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
    Ok(Json(AliasMoveView::of(&moved)))
}
