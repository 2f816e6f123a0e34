//! `mlflow-artifacts/*`: the artifact proxy. Paths mirror the reference server's layout:
//! `<experiment>/<run_id>/artifacts/...` for runs, `<experiment>/models/<model_id>/artifacts/...`
//! for logged models, plus `versions/<version id>/...` for registered versions.

use axum::extract::{Request, State};
use axum::response::Response;
use axum::Json;
use futures_util::TryStreamExt;
use serde_json::{json, Value};

use super::error::{MlflowError, MlflowResult};
use super::request::MlflowParams;
use super::{empty, Ctx};
use crate::domain::packages::{FileTarget, IncomingFile};
use crate::domain::records::PackageType;
use crate::domain::{names, Error, Registry};
use crate::state::AppState;

/// What an artifact path names: a file target (its `file_name` is the path inside the package,
/// empty for the root) and the run it belongs to, if any.
pub struct Resolved {
    pub target: FileTarget,
    pub run: Option<u64>,
}

fn no_such(path: &str) -> MlflowError {
    MlflowError::not_found(format!("No such artifact: '{path}'"))
}

/// Resolves an artifact path (without the `mlflow-artifacts:/` scheme).
pub fn resolve_artifact_path(registry: &Registry, ctx: &Ctx, path: &str) -> MlflowResult<Resolved> {
    let project_id = ctx.access.project.id;
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest_from = |i: usize| -> MlflowResult<String> {
        let rest = segments.get(i..).map(|s| s.join("/")).unwrap_or_default();
        if !rest.is_empty() {
            names::file_path(&rest)
                .map_err(|_| MlflowError::invalid(format!("Invalid artifact path '{path}'")))?;
        }
        Ok(rest)
    };
    let lost = |e: Error| match e {
        Error::NotFound(_) => no_such(path),
        other => other.into(),
    };
    match segments.as_slice() {
        ["versions", id, ..] => {
            let id: u64 = id.parse().map_err(|_| no_such(path))?;
            let version = registry.version(id).map_err(lost)?;
            if version.project_id != project_id {
                return Err(no_such(path));
            }
            let model = registry.model(version.model_id).map_err(lost)?;
            Ok(Resolved {
                target: FileTarget {
                    package_name: model.name,
                    version: version.version,
                    package_type: PackageType::MlModel,
                    file_name: rest_from(2)?,
                },
                run: Some(version.candidate_id),
            })
        }
        [_, "models", key, tail @ ..] => {
            let logged = registry
                .logged_model_by_key(project_id, key)
                .map_err(lost)?;
            let skip = if tail.first() == Some(&"artifacts") {
                4
            } else {
                3
            };
            let run = logged
                .source_run_id
                .as_deref()
                .and_then(|id| registry.candidate_by_run_id(project_id, id).ok())
                .map(|c| c.id);
            Ok(Resolved {
                target: registry.logged_model_target(&logged, &rest_from(skip)?)?,
                run,
            })
        }
        [_, run_id, tail @ ..] => {
            let run = registry
                .candidate_by_run_id(project_id, run_id)
                .map_err(lost)?;
            let skip = if tail.first() == Some(&"artifacts") {
                3
            } else {
                2
            };
            let (package_name, version) = registry.candidate_package_name(&run)?;
            Ok(Resolved {
                target: FileTarget {
                    package_name,
                    version,
                    package_type: PackageType::MlModel,
                    file_name: rest_from(skip)?,
                },
                run: Some(run.id),
            })
        }
        _ => Err(no_such(path)),
    }
}

/// The artifact path of a request below `/mlflow-artifacts/artifacts/`.
fn request_path(request: &Request) -> MlflowResult<String> {
    let raw = request
        .uri()
        .path()
        .split_once("/mlflow-artifacts/artifacts/")
        .map(|(_, rest)| rest)
        .unwrap_or("");
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| MlflowError::invalid("The artifact path is not valid UTF-8"))
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let path = params.str("path")?.unwrap_or_default();
    let resolved = match resolve_artifact_path(&state.registry, &ctx, &path) {
        Ok(resolved) => resolved,
        Err(MlflowError::Code {
            code: "RESOURCE_DOES_NOT_EXIST",
            ..
        }) => return Ok(empty()),
        Err(other) => return Err(other),
    };
    let package = match state
        .registry
        .find_package(ctx.access.project.id, &resolved.target)
    {
        Ok(package) => package,
        Err(Error::NotFound(_)) => return Ok(empty()),
        Err(other) => return Err(other.into()),
    };
    let files: Vec<Value> = state
        .registry
        .list_dir(package.id, &resolved.target.file_name)?
        .into_iter()
        .map(|entry| match entry.size {
            Some(size) => json!({ "path": entry.name, "is_dir": false, "file_size": size }),
            None => json!({ "path": entry.name, "is_dir": true }),
        })
        .collect();
    if files.is_empty() {
        return Ok(empty());
    }
    Ok(Json(json!({ "files": files })))
}

pub async fn download(
    State(state): State<AppState>,
    ctx: Ctx,
    request: Request,
) -> MlflowResult<Response> {
    let path = request_path(&request)?;
    let resolved = resolve_artifact_path(&state.registry, &ctx, &path)?;
    let file = state
        .registry
        .find_package(ctx.access.project.id, &resolved.target)
        .and_then(|package| {
            state
                .registry
                .newest_file(package.id, &resolved.target.file_name)
        })
        .map_err(|e| match e {
            Error::NotFound(_) => no_such(&path),
            other => other.into(),
        })?;
    Ok(crate::api::download::serve(&state.registry, &file, request).await?)
}

pub async fn upload(
    State(state): State<AppState>,
    ctx: Ctx,
    request: Request,
) -> MlflowResult<Json<Value>> {
    let path = request_path(&request)?;
    let resolved = resolve_artifact_path(&state.registry, &ctx, &path)?;
    let declared_len = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let (expected, deploy) = crate::api::integrity::declared(request.headers())?;
    let _in_progress = state.telemetry.upload_started();
    let incoming = IncomingFile {
        body: Box::pin(
            request
                .into_body()
                .into_data_stream()
                .map_err(std::io::Error::other),
        ),
        declared_len,
        status: None,
        expected,
        deploy,
    };
    state
        .registry
        .upload_artifact(&ctx.caller, &ctx.access, resolved.target, incoming)
        .await?;
    Ok(empty())
}

pub async fn delete(
    State(state): State<AppState>,
    ctx: Ctx,
    request: Request,
) -> MlflowResult<Json<Value>> {
    let path = request_path(&request)?;
    let resolved = resolve_artifact_path(&state.registry, &ctx, &path)?;
    let package = state
        .registry
        .find_package(ctx.access.project.id, &resolved.target)
        .map_err(|_| no_such(&path))?;
    state
        .registry
        .delete_files_under(
            &ctx.caller,
            &ctx.access,
            package.id,
            &resolved.target.file_name,
        )
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => no_such(&path),
            other => other.into(),
        })?;
    Ok(empty())
}

pub async fn multipart_not_implemented() -> MlflowError {
    MlflowError::not_implemented(
        "Multipart upload is not supported for the current artifact repository",
    )
}

pub async fn presigned_not_implemented() -> MlflowError {
    MlflowError::not_implemented(
        "Multipart download is not supported for the current artifact repository",
    )
}
