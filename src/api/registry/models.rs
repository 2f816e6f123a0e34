//! Models: list, create, show, update, delete.

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::views::{self, ErrorView, MetadataView, ModelView};
use super::{listing, Body, QueryParams, Segments};
use crate::api::gitlab::{ApiResult, GitlabCaller};
use crate::domain::access::Action;
use crate::domain::ml_records::{AutoSeal, KeyValue};
use crate::domain::models::{ModelOrder, ModelQuery, ModelSummary, NewModel};
use crate::domain::paging::PageRequest;
use crate::domain::retention::RetentionRules;
use crate::domain::signatures::SignaturePolicy;
use crate::domain::Error;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelOrderBy {
    Name,
    CreatedAt,
    UpdatedAt,
    Id,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    Asc,
    Desc,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListModels {
    /// Case-insensitive part of the name.
    search: Option<String>,
    /// Same as `search`.
    name: Option<String>,
    /// Default `created_at`.
    order_by: Option<ModelOrderBy>,
    /// Default `desc` (newest first).
    sort: Option<Sort>,
    /// 1-based page number.
    page: Option<usize>,
    /// Items per page, 1 to 100 (default 20).
    per_page: Option<usize>,
    /// `keyset` for keyset pagination: follow the `Link: rel="next"` of each page.
    pagination: Option<String>,
    /// Where a keyset page starts: the opaque cursor of the previous page's `rel="next"` link.
    cursor: Option<String>,
}

impl ListModels {
    fn page_request(&self) -> Result<PageRequest, crate::domain::Error> {
        crate::api::gitlab::page_request(
            self.pagination.as_deref(),
            self.cursor.as_deref(),
            self.page,
            self.per_page,
        )
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateModel {
    /// GitLab's ML model name format: letters, digits, `.`, `_`, `-`, `/`-free, at most 255 characters.
    name: String,
    /// Markdown, at most 10,000 characters.
    description: Option<String>,
    #[serde(default)]
    metadata: Vec<MetadataView>,
    /// Maintainers only: turn the generic packages named `name` into the new model's versions
    /// (one transaction; every version must be SemVer). Without it, a name that has generic
    /// packages is refused with 409.
    #[serde(default)]
    adopt_generic_packages: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateModel {
    /// Markdown, at most 10,000 characters.
    description: Option<String>,
    /// The aliases only Maintainers move (setting them takes a Maintainer too).
    protected_aliases: Option<Vec<String>>,
    /// When releases are sealed automatically (Maintainers): `off`, `on_promote` or
    /// `on_create_with_files`.
    auto_seal: Option<String>,
    /// How versions' SemVer bumps are checked against their `MLmodel` signature
    /// (Maintainers): `off`, `warn` or `enforce`.
    signature_policy: Option<String>,
    /// The model's promotion policy (Maintainers; replaces the rules, `[]` clears them): rules a
    /// version passes before a protected alias moves to it or it is sealed. Each is
    /// `metrics.<key> <op> <number>` (op `>=`, `>`, `<=`, `<`, `==` or `!=`; the metric's latest
    /// value on the version's run; a missing metric fails), `ci_link` (the version has a CI job
    /// link) or `no_prerelease`. An unreadable rule is refused with 400 naming it.
    #[schema(example = json!(["metrics.auc >= 0.92", "ci_link", "no_prerelease"]))]
    promotion_rules: Option<Vec<String>>,
    /// The model's retention rules (Maintainers), replacing the ones it had; `{}` removes them.
    retention: Option<RetentionRulesBody>,
}

/// A model's retention rules as the PATCH takes them; each optional, unknown fields refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionRulesBody {
    /// Keep the newest N (at least 1) patch releases of each minor; older releases of it go.
    keep_patches_per_minor: Option<u32>,
    /// Prereleases created more than D days ago go.
    prerelease_max_age_days: Option<u32>,
    /// A version downloaded in the last X days stays, whatever the rules say.
    keep_downloaded_within_days: Option<u32>,
}

pub fn key_values(entries: Vec<MetadataView>) -> Vec<KeyValue> {
    entries
        .into_iter()
        .map(|m| KeyValue {
            key: m.key,
            value: m.value,
        })
        .collect()
}

/// Models of the project.
#[utoipa::path(get, path = "/api/v4/projects/{id}/ml/models", tag = "models",
    params(("id" = String, Path, description = "Project id or URL-encoded path"), ListModels),
    responses(
        (status = 200, description = "A page of models, with GitLab's pagination headers", body = [ModelView]),
        (status = 400, body = ErrorView), (status = 401, body = ErrorView),
        (status = 403, body = ErrorView), (status = 404, body = ErrorView)))]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
    QueryParams(query): QueryParams<ListModels>,
) -> ApiResult<Response> {
    let registry = &state.registry;
    let access = registry.project_for(&caller, path.project())?;
    let order = match query.order_by {
        Some(ModelOrderBy::Name) => ModelOrder::Name,
        Some(ModelOrderBy::UpdatedAt) => ModelOrder::UpdatedAt,
        Some(ModelOrderBy::Id) => ModelOrder::Id,
        Some(ModelOrderBy::CreatedAt) | None => ModelOrder::CreatedAt,
    };
    let page = query.page_request()?;
    let models = registry.list_models(
        &caller,
        &access,
        &ModelQuery {
            search: query.search.or(query.name),
            order,
            descending: !matches!(query.sort, Some(Sort::Asc)),
        },
        page,
    )?;
    listing(
        &state,
        &headers,
        &uri,
        models,
        |items: &[ModelSummary]| views::models(registry, items),
    )
}

/// Creates a model (Reporter and above), with its experiment `[model]<name>`. A name that has
/// generic packages in the project is refused (409) unless a Maintainer adopts them.
#[utoipa::path(post, path = "/api/v4/projects/{id}/ml/models", tag = "models",
    params(("id" = String, Path, description = "Project id or URL-encoded path")),
    request_body = CreateModel,
    responses(
        (status = 201, body = ModelView),
        (status = 400, body = ErrorView), (status = 401, body = ErrorView),
        (status = 403, body = ErrorView), (status = 404, body = ErrorView),
        (status = 409, description = "The name belongs to generic packages", body = ErrorView)))]
pub async fn create(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
    Body(body): Body<CreateModel>,
) -> ApiResult<Response> {
    let registry = &state.registry;
    let access = registry.project_for_action(&caller, path.project(), Action::WriteRegistry)?;
    let model = registry
        .create_model(
            &caller,
            &access,
            NewModel {
                name: body.name,
                description: body.description,
                tags: key_values(body.metadata),
                adopt_generic_packages: body.adopt_generic_packages,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(views::model(registry, &model)?)).into_response())
}

/// A model by id or URL-encoded name, with its latest version and counts.
#[utoipa::path(get, path = "/api/v4/projects/{id}/ml/models/{model}", tag = "models",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("model" = String, Path, description = "Model id or URL-encoded name")),
    responses((status = 200, body = ModelView), (status = 401, body = ErrorView),
              (status = 404, body = ErrorView)))]
pub async fn show(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
) -> ApiResult<Json<ModelView>> {
    let registry = &state.registry;
    let access = registry.project_for(&caller, path.project())?;
    access.check(&caller, Action::ReadRegistry)?;
    let model = registry.find_model(access.project.id, path.get("model"))?;
    Ok(Json(views::model(registry, &model)?))
}

/// Changes a model's description (Reporter and above) and its settings (Maintainers):
/// protected aliases, automatic sealing, signature policy, promotion rules.
#[utoipa::path(patch, path = "/api/v4/projects/{id}/ml/models/{model}", tag = "models",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("model" = String, Path, description = "Model id or URL-encoded name")),
    request_body = UpdateModel,
    responses((status = 200, body = ModelView), (status = 400, body = ErrorView),
              (status = 401, body = ErrorView), (status = 403, body = ErrorView),
              (status = 404, body = ErrorView)))]
pub async fn update(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
    Body(body): Body<UpdateModel>,
) -> ApiResult<Json<ModelView>> {
    let registry = &state.registry;
    let access = registry.project_for_action(&caller, path.project(), Action::WriteRegistry)?;
    let model = registry.find_model(access.project.id, path.get("model"))?;
    let mut model = model;
    if let Some(aliases) = body.protected_aliases {
        model = registry
            .set_protected_aliases(&caller, &access, model.id, aliases)
            .await?;
    }
    if let Some(policy) = &body.auto_seal {
        let policy = AutoSeal::parse(policy).ok_or_else(|| Error::InvalidParam {
            param: "auto_seal".into(),
            problem: "does not have a valid value (off, on_promote or on_create_with_files)".into(),
        })?;
        model = registry
            .set_auto_seal(&caller, &access, model.id, policy)
            .await?;
    }
    if let Some(policy) = &body.signature_policy {
        let policy = SignaturePolicy::parse(policy).ok_or_else(|| Error::InvalidParam {
            param: "signature_policy".into(),
            problem: "does not have a valid value (off, warn or enforce)".into(),
        })?;
        model = registry
            .set_signature_policy(&caller, &access, model.id, policy)
            .await?;
    }
    if let Some(rules) = body.promotion_rules {
        model = registry
            .set_promotion_rules(&caller, &access, model.id, rules)
            .await?;
    }
    if let Some(rules) = body.retention {
        let rules = RetentionRules {
            keep_patches_per_minor: rules.keep_patches_per_minor,
            prerelease_max_age_days: rules.prerelease_max_age_days,
            keep_downloaded_within_days: rules.keep_downloaded_within_days,
        };
        model = registry
            .set_retention(&caller, &access, model.id, Some(rules))
            .await?;
    }
    if let Some(description) = &body.description {
        model = registry
            .update_model_description(&caller, &access, model.id, description)
            .await?;
    }
    Ok(Json(views::model(registry, &model)?))
}

/// Deletes a model with its versions, experiment, candidates and packages (Reporter and above).
#[utoipa::path(delete, path = "/api/v4/projects/{id}/ml/models/{model}", tag = "models",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("model" = String, Path, description = "Model id or URL-encoded name")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorView),
              (status = 403, body = ErrorView), (status = 404, body = ErrorView)))]
pub async fn delete(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    path: Segments,
) -> ApiResult<StatusCode> {
    let registry = &state.registry;
    let access = registry.project_for_action(&caller, path.project(), Action::WriteRegistry)?;
    let model = registry.find_model(access.project.id, path.get("model"))?;
    registry.delete_model(&caller, &access, model.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
