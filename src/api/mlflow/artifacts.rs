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

/// Where artifacts go whose path names no experiment run, logged model or version: one package
/// per project holding them by their whole path, as MLflow's proxy is a plain store under its root.
/// (`+` keeps the name from ever being a model's.)
pub const PLAIN_STORE: (&str, &str) = ("mlflow+artifacts", "store");

fn plain_store(path: &str) -> FileTarget {
    FileTarget {
        package_name: PLAIN_STORE.0.into(),
        version: PLAIN_STORE.1.into(),
        package_type: PackageType::MlModel,
        file_name: path.trim_matches('/').to_string(),
    }
}

fn no_such(path: &str) -> MlflowError {
    MlflowError::not_found(format!("No such artifact: '{path}'"))
}

/// Resolves an artifact path (without the `mlflow-artifacts:/` scheme): a run's, a logged
/// model's or a version's artifacts when the path names one of this project, else the project's
/// plain store. Every path must be safe (no empty, `.` or `..` segment).
pub fn resolve_artifact_path(registry: &Registry, ctx: &Ctx, path: &str) -> MlflowResult<Resolved> {
    let trimmed = path.trim_matches('/');
    if !trimmed.is_empty() {
        names::file_path(trimmed)
            .map_err(|_| MlflowError::invalid(format!("Invalid artifact path '{path}'")))?;
    }
    match resolve_known(registry, ctx, trimmed)? {
        Some(resolved) => Ok(resolved),
        None => Ok(Resolved {
            target: plain_store(trimmed),
            run: None,
        }),
    }
}

/// `Some` when found, `None` when not found, the error otherwise.
fn found<T>(result: Result<T, Error>) -> MlflowResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(Error::NotFound(_)) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

/// The run, logged model or version of this project a path names, if any.
fn resolve_known(registry: &Registry, ctx: &Ctx, path: &str) -> MlflowResult<Option<Resolved>> {
    let project_id = ctx.access.project.id;
    let segments: Vec<&str> = path.split('/').collect();
    let rest_from =
        |i: usize| -> String { segments.get(i..).map(|s| s.join("/")).unwrap_or_default() };
    match segments.as_slice() {
        ["versions", id, ..] => {
            let Ok(id) = id.parse::<u64>() else {
                return Ok(None);
            };
            let Some(version) = found(registry.version(id))? else {
                return Ok(None);
            };
            if version.project_id != project_id {
                return Ok(None);
            }
            let model = registry.model(version.model_id)?;
            Ok(Some(Resolved {
                target: FileTarget {
                    package_name: model.name,
                    version: version.version,
                    package_type: PackageType::MlModel,
                    file_name: rest_from(2),
                },
                run: Some(version.candidate_id),
            }))
        }
        [_, "models", key, tail @ ..] => {
            let Some(logged) = found(registry.logged_model_by_key(project_id, key))? else {
                return Ok(None);
            };
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
            Ok(Some(Resolved {
                target: registry.logged_model_target(&logged, &rest_from(skip))?,
                run,
            }))
        }
        [_, run_id, tail @ ..] => {
            let Some(run) = found(registry.candidate_by_run_id(project_id, run_id))? else {
                return Ok(None);
            };
            let skip = if tail.first() == Some(&"artifacts") {
                3
            } else {
                2
            };
            let (package_name, version) = registry.candidate_package_name(&run)?;
            Ok(Some(Resolved {
                target: FileTarget {
                    package_name,
                    version,
                    package_type: PackageType::MlModel,
                    file_name: rest_from(skip),
                },
                run: Some(run.id),
            }))
        }
        _ => Ok(None),
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
    let resolved = resolve_artifact_path(&state.registry, &ctx, &path)?;
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

/// The entries of one directory of a package as MLflow's `FileInfo`s, each path relative to
/// the package's root (`dir/name`).
pub fn listing(registry: &Registry, package_id: u64, dir: &str) -> MlflowResult<Vec<Value>> {
    Ok(registry
        .list_dir(package_id, dir)?
        .into_iter()
        .map(|entry| {
            let path = if dir.is_empty() {
                entry.name
            } else {
                format!("{dir}/{}", entry.name)
            };
            match entry.size {
                Some(size) => json!({ "path": path, "is_dir": false, "file_size": size }),
                None => json!({ "path": path, "is_dir": true }),
            }
        })
        .collect())
}

/// `GET /api/2.0/mlflow/artifacts/list?run_id=…&path=…`: one directory of a run's artifacts,
/// paths relative to the run's artifact root.
pub async fn list_run_artifacts(
    State(state): State<AppState>,
    ctx: Ctx,
    params: MlflowParams,
) -> MlflowResult<Json<Value>> {
    let registry = &state.registry;
    let run = super::runs::named_run(registry, &ctx, &params.run_id()?)?;
    let dir = params
        .str("path")?
        .unwrap_or_default()
        .trim_matches('/')
        .to_string();
    if !dir.is_empty() {
        names::file_path(&dir)
            .map_err(|_| MlflowError::invalid(format!("Invalid artifact path '{dir}'")))?;
    }
    let files = match registry.candidate_package(&run) {
        Ok(package) => listing(registry, package.id, &dir)?,
        Err(Error::NotFound(_)) => Vec::new(),
        Err(other) => return Err(other.into()),
    };
    let experiment = registry.experiment(run.experiment_id)?;
    Ok(Json(json!({
        "root_uri": super::views::run_artifact_uri(&experiment, &run),
        "files": files,
    })))
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
    let mut response = crate::api::download::serve(&state.registry, &file, request).await?;
    // As MLflow's proxy: the type guessed from the file name, and never sniffed.
    let guessed = mime_guess::from_path(file.base_name()).first_or_octet_stream();
    if let Ok(value) = axum::http::HeaderValue::from_str(guessed.as_ref()) {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, value);
    }
    response.headers_mut().insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    Ok(response)
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
        body: crate::domain::packages::Content::Stream(Box::pin(
            request
                .into_body()
                .into_data_stream()
                .map_err(std::io::Error::other),
        )),
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
