//! `PUT|GET /api/v4/projects/:id/packages/generic/:name/:version/(:path/):file_name`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::TryStreamExt;
use percent_encoding::percent_decode_str;
use serde_json::json;

use super::{views, ApiResult, GitlabCaller, Params, ProjectRef};
use crate::domain::package_paths::GenericPath;
use crate::domain::packages::IncomingFile;
use crate::domain::records::PackageStatus;
use crate::domain::Error;
use crate::state::AppState;

/// Splits the raw (still percent-encoded) remainder of the URL after `/packages/generic/`.
/// Splitting happens before decoding, so `%2F` inside a segment never creates a new one.
pub fn split_generic_path(raw: &str) -> Result<GenericPath, Error> {
    let segments: Vec<String> = raw
        .split('/')
        .map(|seg| {
            percent_decode_str(seg)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| Error::invalid("file_name"))
        })
        .collect::<Result<_, _>>()?;
    if segments.len() < 3 {
        return Err(Error::NotFound("Package file"));
    }
    let name = segments[0].clone();
    let version = segments[1].clone();
    let file_name = segments[segments.len() - 1].clone();
    let middle = &segments[2..segments.len() - 1];
    let path = (!middle.is_empty()).then(|| middle.join("/"));
    if name.is_empty() {
        return Err(Error::invalid("package_name"));
    }
    if version.is_empty() {
        return Err(Error::invalid("package_version"));
    }
    if file_name.is_empty() {
        return Err(Error::invalid("file_name"));
    }
    Ok(GenericPath {
        name,
        version,
        path,
        file_name,
    })
}

/// The raw remainder after `/packages/generic/` of this request's path.
fn raw_rest(request_path: &str) -> &str {
    request_path
        .split_once("/packages/generic/")
        .map(|(_, rest)| rest)
        .unwrap_or("")
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

pub async fn upload(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    ProjectRef(id): ProjectRef,
    request: Request,
) -> ApiResult<Response> {
    let parts = split_generic_path(raw_rest(request.uri().path()))?;
    let params = Params::from_query(request.uri().query());
    let status = params.choice("status", PackageStatus::parse)?;
    let select_file = match params.str("select")?.as_deref() {
        None => false,
        Some("package_file") => true,
        Some(_) => {
            return Err(Error::InvalidParam {
                param: "select".into(),
                problem: "does not have a valid value".into(),
            }
            .into())
        }
    };
    crate::domain::access::precheck(&caller, crate::domain::access::Action::WritePackages)?;
    let access = state.registry.project_for(&caller, &id)?;
    let declared_len = declared_length(request.headers());
    let (expected, deploy) = crate::api::integrity::declared(request.headers())?;
    let _in_progress = state.telemetry.upload_started();
    let body: Body = request.into_body();
    let incoming = IncomingFile {
        body: crate::domain::packages::Content::Stream(Box::pin(
            body.into_data_stream().map_err(std::io::Error::other),
        )),
        declared_len,
        status,
        expected,
        deploy,
    };
    let file = state
        .registry
        .upload_to_generic_path(&caller, &access, &parts, incoming)
        .await?;
    if select_file {
        Ok((StatusCode::OK, Json(views::package_file(&file))).into_response())
    } else {
        Ok((
            StatusCode::CREATED,
            Json(json!({ "message": "201 Created" })),
        )
            .into_response())
    }
}

pub async fn download(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    ProjectRef(id): ProjectRef,
    request: Request,
) -> ApiResult<Response> {
    let parts = split_generic_path(raw_rest(request.uri().path()))?;
    let access = state.registry.project_for(&caller, &id)?;
    match state
        .registry
        .download_from_generic_path(&caller, &access, &parts)?
    {
        Err(file) => Ok(crate::api::download::serve(&state.registry, &file, request).await?),
        Ok(found) => {
            let mut response =
                crate::api::download::serve(&state.registry, &found.file, request).await?;
            if let Ok(value) = axum::http::HeaderValue::from_str(&found.version.version) {
                response.headers_mut().insert("x-model-version", value);
            }
            Ok(response)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::packages::{generic_target, FileTarget};

    fn target_of(request_path: &str) -> Result<FileTarget, Error> {
        let parts = split_generic_path(raw_rest(request_path))?;
        generic_target(
            &parts.name,
            &parts.version,
            parts.path.as_deref(),
            &parts.file_name,
        )
    }

    #[test]
    fn splits_before_decoding() {
        let p = split_generic_path("pkg/1.0.0/a/b/model.onnx").unwrap();
        assert_eq!(p.path.as_deref(), Some("a/b"));
        assert_eq!(p.file_name, "model.onnx");
        let p = split_generic_path("pkg/%2e%2e%2f1.2.3/f").unwrap();
        assert_eq!(p.version, "../1.2.3");
        let p = split_generic_path("pkg/1.0/%2e%2e%2f.ssh%2fauthorized_keys").unwrap();
        assert_eq!(p.file_name, "../.ssh/authorized_keys");
        assert_eq!(p.path, None);
        assert!(split_generic_path("pkg/1.0").is_err());
    }

    #[test]
    fn hostile_paths_are_refused_with_the_parameter_named() {
        let cases = [
            ("pkg/..1.2.3/f.txt", "package_version is invalid"),
            (
                "pkg/1.2.3-4/../../f.txt",
                "path should be a valid file path",
            ),
            ("pkg/%2e%2e%2f1.2.3/f.txt", "package_version is invalid"),
            (
                "my-package%2f%2e%2e%2f/1.0/f.txt",
                "package_name should be a valid file path",
            ),
            (
                "pkg/1.0/../.ssh%2fauthorized_keys",
                "path should be a valid file path",
            ),
            (
                "pkg/1.0/%2e%2e%2f.ssh%2fauthorized_keys",
                "file_name should be a valid file path",
            ),
        ];
        for (raw, message) in cases {
            let err = target_of(&format!("/api/v4/projects/1/packages/generic/{raw}")).unwrap_err();
            assert_eq!(err.to_string(), message, "{raw}");
        }
    }
}
