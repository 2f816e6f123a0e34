//! The MLflow tracking, registry and artifact REST API under a project's tracking URI
//! `/api/v4/projects/:id/ml/mlflow`. Experiments are experiments, runs are candidates,
//! registered models are models; a model version's MLflow `version` is its per-model sequence.

mod artifacts;
mod error;
mod experiments;
mod logged_models;
mod registry;
pub mod request;
mod runs;
pub mod search;
mod views;

use axum::extract::{FromRequestParts, OriginalUri, RawPathParams};
use axum::http::request::Parts;
use axum::http::Method;
use axum::routing::{any, delete, get, patch, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub use error::{MlflowError, MlflowResult};

use crate::domain::access::{Action, Caller};
use crate::domain::projects::ProjectAccess;
use crate::state::AppState;

/// The tracking URI's path; everything below it is MLflow's.
pub const BASE: &str = "/api/v4/projects/{id}/ml/mlflow";

pub fn router() -> Router<AppState> {
    let api = |path: &str| format!("{BASE}/api/2.0/mlflow/{path}");
    let artifacts = |path: &str| format!("{BASE}/api/2.0/mlflow-artifacts/{path}");
    Router::new()
        .route(&api("experiments/create"), post(experiments::create))
        .route(&api("experiments/get"), get(experiments::get))
        .route(
            &api("experiments/get-by-name"),
            get(experiments::get_by_name),
        )
        .route(
            &api("experiments/search"),
            post(experiments::search).get(experiments::search),
        )
        .route(&api("experiments/list"), get(experiments::search))
        .route(&api("experiments/update"), post(experiments::update))
        .route(&api("experiments/delete"), post(experiments::delete))
        .route(&api("experiments/restore"), post(experiments::restore))
        .route(
            &api("experiments/set-experiment-tag"),
            post(experiments::set_tag),
        )
        .route(
            &api("experiments/delete-experiment-tag"),
            post(experiments::delete_tag),
        )
        .route(&api("runs/create"), post(runs::create))
        .route(&api("runs/get"), get(runs::get))
        .route(&api("runs/update"), post(runs::update))
        .route(&api("runs/delete"), post(runs::delete))
        .route(&api("runs/restore"), post(runs::restore))
        .route(&api("runs/search"), post(runs::search))
        .route(&api("runs/log-metric"), post(runs::log_metric))
        .route(&api("runs/log-parameter"), post(runs::log_parameter))
        .route(&api("runs/log-batch"), post(runs::log_batch))
        .route(&api("runs/set-tag"), post(runs::set_tag))
        .route(&api("runs/delete-tag"), post(runs::delete_tag))
        .route(&api("runs/log-inputs"), post(runs::log_inputs))
        .route(&api("runs/outputs"), post(runs::log_outputs))
        .route(&api("runs/log-model"), post(runs::log_model))
        .route(&api("metrics/get-history"), get(runs::metric_history))
        .route(&api("artifacts/list"), get(artifacts::list_run_artifacts))
        .route(
            &api("registered-models/create"),
            post(registry::create_model),
        )
        .route(&api("registered-models/get"), get(registry::get_model))
        .route(
            &api("registered-models/update"),
            patch(registry::update_model),
        )
        .route(
            &api("registered-models/rename"),
            post(registry::rename_model),
        )
        .route(
            &api("registered-models/delete"),
            delete(registry::delete_model),
        )
        .route(
            &api("registered-models/search"),
            get(registry::search_models),
        )
        .route(&api("registered-models/list"), get(registry::search_models))
        .route(
            &api("registered-models/get-latest-versions"),
            post(registry::latest_versions).get(registry::latest_versions),
        )
        .route(
            &api("registered-models/set-tag"),
            post(registry::set_model_tag),
        )
        .route(
            &api("registered-models/delete-tag"),
            delete(registry::delete_model_tag),
        )
        .route(
            &api("registered-models/alias"),
            post(registry::set_alias)
                .get(registry::get_alias)
                .delete(registry::delete_alias),
        )
        .route(
            &api("model-versions/create"),
            post(registry::create_version),
        )
        .route(&api("model-versions/get"), get(registry::get_version))
        .route(
            &api("model-versions/update"),
            patch(registry::update_version),
        )
        .route(
            &api("model-versions/delete"),
            delete(registry::delete_version),
        )
        .route(
            &api("model-versions/search"),
            get(registry::search_versions),
        )
        .route(
            &api("model-versions/set-tag"),
            post(registry::set_version_tag),
        )
        .route(
            &api("model-versions/delete-tag"),
            delete(registry::delete_version_tag),
        )
        .route(
            &api("model-versions/get-download-uri"),
            get(registry::download_uri),
        )
        .route(
            &api("model-versions/transition-stage"),
            post(registry::transition_stage),
        )
        .route(&api("logged-models"), post(logged_models::create))
        .route(&api("logged-models/search"), post(logged_models::search))
        .route(
            &api("logged-models/{model_id}"),
            get(logged_models::get)
                .patch(logged_models::finalize)
                .delete(logged_models::delete),
        )
        .route(
            &api("logged-models/{model_id}/tags"),
            patch(logged_models::set_tags),
        )
        .route(
            &api("logged-models/{model_id}/params"),
            post(logged_models::log_params),
        )
        .route(
            &api("logged-models/{model_id}/artifacts/directories"),
            get(logged_models::list_artifacts),
        )
        .route(
            &api("logged-models/{model_id}/tags/{key}"),
            delete(logged_models::delete_tag),
        )
        .route(
            &format!("{BASE}/api/3.0/mlflow/server-info"),
            get(server_info),
        )
        .route(&artifacts("artifacts"), get(artifacts::list))
        .route(
            &artifacts("artifacts/{*path}"),
            get(artifacts::download)
                .put(artifacts::upload)
                .delete(artifacts::delete),
        )
        .route(
            &artifacts("mpu/{*rest}"),
            any(artifacts::multipart_not_implemented),
        )
        .route(
            &artifacts("presigned/{*rest}"),
            any(artifacts::presigned_not_implemented),
        )
        .route(&format!("{BASE}/{{*rest}}"), any(endpoint_not_found))
}

/// The caller and the project of an MLflow request, with the registry readable by the caller.
pub struct Ctx {
    pub caller: Caller,
    pub access: ProjectAccess,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = MlflowError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = crate::api::auth::caller(state, &parts.headers, parts.uri.query()).await?;
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| MlflowError::not_found("Project not found"))?;
        let id = raw
            .iter()
            .find(|(k, _)| *k == "id")
            .map(|(_, v)| v.to_string())
            .ok_or_else(|| MlflowError::not_found("Project not found"))?;
        let id = percent_encoding::percent_decode_str(&id)
            .decode_utf8()
            .map_err(|_| MlflowError::not_found("Project not found"))?
            .into_owned();
        let path = parts.uri.path();
        let reads_only = parts.method == Method::GET
            || parts.method == Method::HEAD
            || path.ends_with("/search")
            || path.ends_with("/get-latest-versions");
        if !reads_only {
            // An anonymous write is 401 whether or not the project exists.
            crate::domain::access::precheck(&caller, Action::WriteRegistry)?;
        }
        let access = state
            .registry
            .project_for_action(&caller, &id, Action::ReadRegistry)?;
        Ok(Ctx { caller, access })
    }
}

async fn server_info() -> Json<Value> {
    Json(json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "trace_archival_enabled": false,
        "multipart_uploads_enabled": false,
        "multipart_downloads_enabled": false,
        "presigned_upload_run_id_supported": false,
        "presigned_upload_model_id_supported": false,
        "features_enabled": {},
    }))
}

async fn endpoint_not_found(method: Method, OriginalUri(uri): OriginalUri) -> MlflowError {
    let path = uri.path();
    let below = path
        .find("/ml/mlflow")
        .map(|i| &path[i + "/ml/mlflow".len()..])
        .unwrap_or(path);
    MlflowError::endpoint_not_found(method.as_str(), below)
}

/// `{}`: what MLflow answers for a write that returns nothing.
pub fn empty() -> Json<Value> {
    Json(json!({}))
}
