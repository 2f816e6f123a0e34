//! `PUT|GET /api/v4/projects/:id/packages/ml_models/(:model_version_id|candidate::iid)/files/(:path/):file_name`.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::TryStreamExt;
use percent_encoding::percent_decode_str;
use serde_json::json;

use super::{ApiResult, GitlabCaller, Params, ProjectRef};
use crate::domain::access::{precheck, Action};
use crate::domain::models::ModelFileOwner;
use crate::domain::names;
use crate::domain::packages::{join_file_path, IncomingFile};
use crate::domain::records::PackageStatus;
use crate::domain::Error;
use crate::state::AppState;

/// The owner and the stored file path named by the part after `/packages/ml_models/`.
pub fn parse_model_file_path(raw: &str) -> Result<(ModelFileOwner, String), Error> {
    let segments = raw
        .split('/')
        .map(|seg| {
            percent_decode_str(seg)
                .decode_utf8()
                .map(|s| s.into_owned())
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Error::invalid("file_name"))?;
    if segments.len() < 3 || segments[1] != "files" {
        return Err(Error::NotFound("Package file"));
    }
    let owner = match segments[0].strip_prefix("candidate:") {
        Some(iid) => {
            ModelFileOwner::Candidate(iid.parse().map_err(|_| Error::NotFound("Candidate"))?)
        }
        None => ModelFileOwner::Version(
            segments[0]
                .parse()
                .map_err(|_| Error::NotFound("Model version"))?,
        ),
    };
    let file_name = &segments[segments.len() - 1];
    let dirs = &segments[2..segments.len() - 1];
    let path = (!dirs.is_empty()).then(|| dirs.join("/"));
    if let Some(path) = &path {
        names::file_path(path)?;
    }
    names::model_file_name(file_name)?;
    Ok((owner, join_file_path(path.as_deref(), file_name)))
}

fn raw_rest(path: &str) -> &str {
    path.split_once("/packages/ml_models/")
        .map(|(_, rest)| rest)
        .unwrap_or("")
}

pub async fn upload(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    ProjectRef(id): ProjectRef,
    request: Request,
) -> ApiResult<Response> {
    precheck(&caller, Action::WriteRegistry)?;
    let (owner, file_name) = parse_model_file_path(raw_rest(request.uri().path()))?;
    let status =
        Params::from_query(request.uri().query()).choice("status", PackageStatus::parse)?;
    let access = state
        .registry
        .project_for_action(&caller, &id, Action::ReadRegistry)?;
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
        status,
        expected,
        deploy,
    };
    state
        .registry
        .upload_model_file(&caller, &access, owner, &file_name, incoming)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "message": "201 Created" })),
    )
        .into_response())
}

pub async fn download(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    ProjectRef(id): ProjectRef,
    request: Request,
) -> ApiResult<Response> {
    let (owner, file_name) = parse_model_file_path(raw_rest(request.uri().path()))?;
    let access = state
        .registry
        .project_for_action(&caller, &id, Action::ReadRegistry)?;
    let file = state
        .registry
        .model_file(&caller, &access, owner, &file_name)?;
    Ok(crate::api::download::serve(&state.registry, &file, request).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_paths_and_spaces() {
        let (owner, name) = parse_model_file_path("12/files/dir/sub/my%20model.pkl").unwrap();
        assert_eq!(owner, ModelFileOwner::Version(12));
        assert_eq!(name, "dir/sub/my model.pkl");
        let (owner, name) = parse_model_file_path("candidate%3A3/files/model.onnx").unwrap();
        assert_eq!(owner, ModelFileOwner::Candidate(3));
        assert_eq!(name, "model.onnx");
        assert!(parse_model_file_path("12/files/../x").is_err());
        assert!(parse_model_file_path("12/files/%2e%2e%2fx").is_err());
        assert!(parse_model_file_path("12/other/x").is_err());
        assert!(parse_model_file_path("abc/files/x").is_err());
    }
}
