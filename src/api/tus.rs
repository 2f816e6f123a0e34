//! Resumable uploads with the tus 1.0 protocol (core, creation, creation-with-upload,
//! termination, checksum, expiration) under `/api/v4/projects/:id/uploads`:
//!
//! - `OPTIONS .../uploads` advertises the version, extensions, maximum size and checksum
//!   algorithms;
//! - `POST .../uploads` creates an upload for the target named in `Upload-Metadata`
//!   (`package_name`, `package_version`, `filename` with an optional `dir/` path, optional
//!   `sha256`, all base64 as tus wants), optionally with the first chunk as its body;
//! - `HEAD .../uploads/:upload_id` tells the offset to resume from;
//! - `PATCH .../uploads/:upload_id` appends a chunk at `Upload-Offset` (`Upload-Checksum`
//!   optional); the chunk that completes the upload creates the file as a `PUT` of the same
//!   generic package path would;
//! - `DELETE .../uploads/:upload_id` terminates it.
//!
//! Every answer carries `Tus-Resumable: 1.0.0`; errors have GitLab's `{"message"}` body.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use futures_util::TryStreamExt;

use super::gitlab::ApiError;
use crate::domain::error::UploadProblem;
use crate::domain::package_paths::GenericPath;
use crate::domain::uploads::{ChunkCheck, NewUpload, Progress, ResumableUpload};
use crate::domain::Error;
use crate::state::AppState;
use crate::store::blobs::ByteStream;
use crate::store::checksum::CHUNK_ALGORITHMS;

const VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,creation-with-upload,termination,checksum,expiration";
const OFFSET_STREAM: &str = "application/offset+octet-stream";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v4/projects/{id}/uploads",
            post(create).options(options),
        )
        .route(
            "/api/v4/projects/{id}/uploads/{upload_id}",
            axum::routing::head(status)
                .patch(append)
                .delete(terminate)
                .options(options),
        )
}

/// Adds what every tus answer carries.
fn tus(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert("tus-resumable", HeaderValue::from_static(VERSION));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn answer(result: Result<Response, Error>) -> Response {
    match result {
        Ok(response) => tus(response),
        Err(error) => {
            let unsupported = matches!(error, Error::Upload(UploadProblem::UnsupportedVersion, _));
            let mut response = tus(ApiError(error).into_response());
            if unsupported {
                response
                    .headers_mut()
                    .insert("tus-version", HeaderValue::from_static(VERSION));
            }
            response
        }
    }
}

fn set(response: &mut Response, name: &'static str, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn bad_header(name: &str, problem: &str) -> Error {
    Error::bad(format!("The {name} header {problem}"))
}

/// The tus version a request speaks must be ours (412 otherwise).
fn check_version(headers: &HeaderMap) -> Result<(), Error> {
    match text(headers, "tus-resumable") {
        Some(VERSION) => Ok(()),
        Some(other) => Err(Error::Upload(
            UploadProblem::UnsupportedVersion,
            format!("this server speaks tus {VERSION}, not {other}"),
        )),
        None => Err(Error::Upload(
            UploadProblem::UnsupportedVersion,
            format!("a tus request carries Tus-Resumable: {VERSION}"),
        )),
    }
}

fn number(headers: &HeaderMap, name: &str) -> Result<Option<u64>, Error> {
    match text(headers, name) {
        None => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .map(Some)
            .map_err(|_| bad_header(name, "must be a non-negative integer")),
    }
}

/// Whether a request's body is a chunk (`Content-Type: application/offset+octet-stream`).
fn is_chunk(headers: &HeaderMap) -> bool {
    text(headers, "content-type")
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(OFFSET_STREAM))
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs (the value may be absent).
pub fn parse_metadata(raw: &str) -> Result<Vec<(String, Option<String>)>, Error> {
    let mut pairs = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let mut parts = item.split_whitespace();
        let key = parts.next().unwrap_or_default().to_string();
        let value = match parts.next() {
            None => None,
            Some(encoded) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| {
                        bad_header(
                            "Upload-Metadata",
                            &format!("value of '{key}' is not base64"),
                        )
                    })?;
                Some(String::from_utf8(bytes).map_err(|_| {
                    bad_header("Upload-Metadata", &format!("value of '{key}' is not UTF-8"))
                })?)
            }
        };
        if parts.next().is_some() {
            return Err(bad_header(
                "Upload-Metadata",
                &format!("item '{key}' has more than a key and a value"),
            ));
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// The target and declared sha256 an upload's metadata names.
fn target_of(pairs: &[(String, Option<String>)]) -> Result<(GenericPath, Option<String>), Error> {
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let name = get("package_name").ok_or_else(|| Error::missing("package_name"))?;
    let version = get("package_version").ok_or_else(|| Error::missing("package_version"))?;
    let file = get("filename").ok_or_else(|| Error::missing("filename"))?;
    let (path, file_name) = match file.rsplit_once('/') {
        Some((dir, name)) => (Some(dir.to_string()), name.to_string()),
        None => (None, file),
    };
    if file_name.is_empty() {
        return Err(Error::invalid("filename"));
    }
    let sha256 = match get("sha256") {
        None => None,
        Some(hex) => {
            let hex = hex.to_ascii_lowercase();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::InvalidParam {
                    param: "sha256".into(),
                    problem: "must be 64 hexadecimal digits".into(),
                });
            }
            Some(hex)
        }
    };
    Ok((
        GenericPath {
            name,
            version,
            path,
            file_name,
        },
        sha256,
    ))
}

/// `Upload-Checksum: <algorithm> <base64 digest>`.
fn chunk_check(headers: &HeaderMap) -> Result<Option<ChunkCheck>, Error> {
    let Some(value) = text(headers, "upload-checksum") else {
        return Ok(None);
    };
    let (algorithm, encoded) = value
        .split_once(' ')
        .ok_or_else(|| bad_header("Upload-Checksum", "must be '<algorithm> <base64 digest>'"))?;
    let algorithm = algorithm.trim().to_ascii_lowercase();
    if !CHUNK_ALGORITHMS.split(',').any(|a| a == algorithm) {
        return Err(bad_header(
            "Upload-Checksum",
            &format!("names '{algorithm}': the algorithms are {CHUNK_ALGORITHMS}"),
        ));
    }
    let digest = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad_header("Upload-Checksum", "digest is not base64"))?;
    Ok(Some(ChunkCheck { algorithm, digest }))
}

fn body_of(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

fn location(state: &AppState, upload: &ResumableUpload) -> String {
    let path = format!(
        "/api/v4/projects/{}/uploads/{}",
        upload.project_id, upload.id
    );
    match &state.settings.external_url {
        Some(base) => format!("{base}{path}"),
        None => path,
    }
}

fn expires(upload: &ResumableUpload) -> String {
    let at: std::time::SystemTime = upload.expires_at.into();
    httpdate::fmt_http_date(at)
}

/// The headers of an answer to a chunk: where the upload stands, or the file it became.
fn progress_headers(response: &mut Response, progress: &Progress) {
    match progress {
        Progress::Partial(upload) => {
            set(response, "upload-offset", upload.offset.to_string());
            set(response, "upload-expires", expires(upload));
        }
        Progress::Complete { upload, file } => {
            set(response, "upload-offset", upload.offset.to_string());
            set(response, "x-package-file-id", file.id.to_string());
            set(response, "x-checksum-sha256", file.sha256.clone());
        }
    }
}

pub async fn options(State(state): State<AppState>) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    set(&mut response, "tus-version", VERSION.into());
    set(&mut response, "tus-extension", EXTENSIONS.into());
    set(
        &mut response,
        "tus-max-size",
        state.registry.max_upload_size().to_string(),
    );
    set(
        &mut response,
        "tus-checksum-algorithm",
        CHUNK_ALGORITHMS.into(),
    );
    tus(response)
}

async fn caller_and_project(
    state: &AppState,
    request: &Parts,
    id: &str,
    writes: bool,
) -> Result<
    (
        crate::domain::access::Caller,
        crate::domain::projects::ProjectAccess,
    ),
    Error,
> {
    check_version(&request.headers)?;
    let caller = crate::api::auth::caller(state, &request.headers, request.uri.query()).await?;
    if writes {
        // As a PUT: an anonymous writer hears 401 before anything about the project.
        crate::domain::access::precheck(&caller, crate::domain::access::Action::WritePackages)?;
    }
    let access = state.registry.project_for(&caller, id)?;
    Ok((caller, access))
}

fn decoded(id: &str) -> String {
    percent_encoding::percent_decode_str(id)
        .decode_utf8_lossy()
        .into_owned()
}

pub async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    answer(create_upload(&state, &decoded(&id), request).await)
}

async fn create_upload(state: &AppState, id: &str, request: Request) -> Result<Response, Error> {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let (caller, access) = caller_and_project(state, &parts, id, true).await?;
    if text(headers, "upload-defer-length").is_some() {
        return Err(bad_header(
            "Upload-Defer-Length",
            "is not supported: declare Upload-Length",
        ));
    }
    let length = number(headers, "upload-length")?
        .ok_or_else(|| bad_header("Upload-Length", "is missing"))?;
    if length > state.registry.max_upload_size() {
        return Err(Error::RequestTooLarge {
            limit: state.registry.max_upload_size(),
        });
    }
    let metadata = text(headers, "upload-metadata").unwrap_or("").to_string();
    let (target, sha256) = target_of(&parse_metadata(&metadata)?)?;
    let (mut expected, deploy) = crate::api::integrity::declared(headers)?;
    if deploy {
        return Err(bad_header(
            "X-Checksum-Deploy",
            "does not apply to a resumable upload: PUT the file instead",
        ));
    }
    if let Some(sha256) = sha256 {
        if expected.sha256.as_ref().is_some_and(|h| *h != sha256) {
            return Err(Error::bad(
                "the sha256 of Upload-Metadata contradicts a digest header of the request",
            ));
        }
        expected.sha256 = Some(sha256);
    }
    let with_chunk = is_chunk(headers);
    let declared_chunk = number(headers, "content-length")?.unwrap_or(0);
    if !with_chunk && declared_chunk > 0 {
        return Err(Error::Upload(
            UploadProblem::ContentType,
            format!("a chunk sent with the creation request is {OFFSET_STREAM}"),
        ));
    }
    let check = chunk_check(headers)?;
    let upload = state
        .registry
        .create_upload(
            &caller,
            &access,
            NewUpload {
                target,
                length,
                metadata,
                expected,
            },
        )
        .await?;
    let mut response = StatusCode::CREATED.into_response();
    set(&mut response, "location", location(state, &upload));
    set(&mut response, "upload-expires", expires(&upload));
    if with_chunk || length == 0 {
        let _in_progress = state.telemetry.upload_started();
        let progress = state
            .registry
            .append_to_upload(&caller, &access, &upload.id, 0, body_of(body), check)
            .await;
        match progress {
            Ok(progress) => progress_headers(&mut response, &progress),
            // The upload exists: the client resumes it from the offset HEAD tells.
            Err(Error::BodyInterrupted) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(response)
}

pub async fn status(
    State(state): State<AppState>,
    Path((id, upload_id)): Path<(String, String)>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let result = async {
        let (caller, access) = caller_and_project(&state, &parts, &decoded(&id), false).await?;
        let upload = state.registry.upload_of(&caller, &access, &upload_id)?;
        let mut response = StatusCode::OK.into_response();
        set(&mut response, "upload-offset", upload.offset.to_string());
        set(&mut response, "upload-length", upload.length.to_string());
        set(&mut response, "upload-expires", expires(&upload));
        if !upload.metadata.is_empty() {
            set(&mut response, "upload-metadata", upload.metadata.clone());
        }
        Ok(response)
    }
    .await;
    // HEAD answers carry no body, errors included.
    let mut response = answer(result);
    *response.body_mut() = Body::empty();
    response
}

pub async fn append(
    State(state): State<AppState>,
    Path((id, upload_id)): Path<(String, String)>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let result = async {
        let (caller, access) = caller_and_project(&state, &parts, &decoded(&id), true).await?;
        let headers = &parts.headers;
        if !is_chunk(headers) {
            return Err(Error::Upload(
                UploadProblem::ContentType,
                format!("a chunk is sent as {OFFSET_STREAM}"),
            ));
        }
        let offset = number(headers, "upload-offset")?
            .ok_or_else(|| bad_header("Upload-Offset", "is missing"))?;
        let check = chunk_check(headers)?;
        let _in_progress = state.telemetry.upload_started();
        let progress = state
            .registry
            .append_to_upload(&caller, &access, &upload_id, offset, body_of(body), check)
            .await?;
        let mut response = StatusCode::NO_CONTENT.into_response();
        progress_headers(&mut response, &progress);
        Ok(response)
    }
    .await;
    answer(result)
}

pub async fn terminate(
    State(state): State<AppState>,
    Path((id, upload_id)): Path<(String, String)>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let result = async {
        let (caller, access) = caller_and_project(&state, &parts, &decoded(&id), true).await?;
        state
            .registry
            .terminate_upload(&caller, &access, &upload_id)
            .await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    answer(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pairs_decode_and_name_the_target() {
        let raw = "package_name bW9kZWw=,package_version MS4yLjM=, filename d2VpZ2h0cy9hLmJpbg==,is_confidential";
        let pairs = parse_metadata(raw).unwrap();
        assert_eq!(pairs.len(), 4);
        assert_eq!(pairs[3], ("is_confidential".to_string(), None));
        let (target, sha) = target_of(&pairs).unwrap();
        assert_eq!(target.name, "model");
        assert_eq!(target.version, "1.2.3");
        assert_eq!(target.path.as_deref(), Some("weights"));
        assert_eq!(target.file_name, "a.bin");
        assert_eq!(sha, None);
        assert!(parse_metadata("filename !!!").is_err());
        assert!(parse_metadata("a b c").is_err());
        let missing = target_of(&parse_metadata("package_name bW9kZWw=").unwrap()).unwrap_err();
        assert_eq!(missing.to_string(), "package_version is missing");
    }

    #[test]
    fn chunk_checksums_parse() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "upload-checksum",
            HeaderValue::from_static("sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0="),
        );
        let check = chunk_check(&headers).unwrap().unwrap();
        assert_eq!(check.algorithm, "sha1");
        assert_eq!(check.digest.len(), 20);
        headers.insert("upload-checksum", HeaderValue::from_static("crc32 AAAA"));
        assert!(chunk_check(&headers).is_err());
        headers.insert("upload-checksum", HeaderValue::from_static("sha1"));
        assert!(chunk_check(&headers).is_err());
    }
}
