//! Serving a stored file: streamed from the blob store (local disk or S3) with `Content-Length`,
//! `Content-Disposition`, `ETag`, `Range` (206) and conditional requests.

use std::time::SystemTime;

use super::conditional::{self, Outcome};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::domain::records::PackageFile;
use crate::domain::{Error, Registry};

/// `attachment; filename="name"` with an RFC 5987 form for names that are not plain ASCII.
pub fn content_disposition(name: &str) -> HeaderValue {
    let plain: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'.')
        .remove(b'-')
        .remove(b'_');
    let encoded = percent_encoding::utf8_percent_encode(name, KEEP);
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Answers `request` with the bytes of `file`; its validators are its sha256 (`ETag`) and the
/// time it was recorded (`Last-Modified`).
pub async fn serve(
    registry: &Registry,
    file: &PackageFile,
    request: Request,
) -> Result<Response, Error> {
    let recorded: SystemTime = file.created_at.into();
    // A download is a GET of the file from its start (a resumed or parallel range does not
    // count again).
    let counted = request.method() == Method::GET
        && request
            .headers()
            .get(header::RANGE)
            .is_none_or(|r| r.to_str().is_ok_and(|r| r.trim().starts_with("bytes=0-")));
    let mut response = serve_validated(registry, &file.sha256, Some(recorded), request).await?;
    if counted && response.status().is_success() {
        registry.count_download(file);
        registry.audit_download(file).await?;
    }
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_DISPOSITION,
        content_disposition(file.base_name()),
    );
    headers.insert(
        "x-checksum-sha256",
        HeaderValue::from_str(&file.sha256).unwrap_or(HeaderValue::from_static("")),
    );
    if let Some(digest) = crate::api::integrity::repr_digest(&file.sha256) {
        headers.insert("repr-digest", digest);
    }
    Ok(response)
}

/// Answers `request` with the bytes of the blob `sha256` (`ETag`, `Range`, `HEAD` and
/// conditional requests included; `Last-Modified` is the blob's): the one download path of
/// every surface.
pub async fn serve_blob(
    registry: &Registry,
    sha256: &str,
    request: Request,
) -> Result<Response, Error> {
    serve_validated(registry, sha256, None, request).await
}

/// The preconditions of the request are evaluated here against the file's own validators
/// (see [`conditional`]); a `Range` that still applies is then served from the blob store.
async fn serve_validated(
    registry: &Registry,
    sha256: &str,
    modified: Option<SystemTime>,
    request: Request,
) -> Result<Response, Error> {
    let etag = format!("\"{sha256}\"");
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        // `--blobs-redirect`: the object store serves the bytes itself.
        if let Some(url) = registry.blobs().redirect_url(sha256, None).await? {
            let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
            if let Ok(value) = HeaderValue::from_str(&url) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            if let Ok(value) = HeaderValue::from_str(&etag) {
                response.headers_mut().insert(header::ETAG, value);
            }
            return Ok(response);
        }
    }
    let info = registry.blobs().stat(sha256).await?;
    let modified = modified.or(info.modified).unwrap_or(SystemTime::UNIX_EPOCH);
    let last_modified = HeaderValue::from_str(&conditional::http_date(modified)).ok();
    let outcome = conditional::evaluate(request.method(), request.headers(), &etag, modified);
    let honour_range = match outcome {
        Outcome::Serve { honour_range } => honour_range,
        Outcome::Failed | Outcome::NotModified => {
            let status = if outcome == Outcome::Failed {
                StatusCode::PRECONDITION_FAILED
            } else {
                StatusCode::NOT_MODIFIED
            };
            let mut response = status.into_response();
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&etag) {
                headers.insert(header::ETAG, value);
            }
            if let Some(value) = last_modified {
                headers.insert(header::LAST_MODIFIED, value);
            }
            return Ok(response);
        }
    };
    let head = request.method() == Method::HEAD;
    // A `Range` still applies only when the client's copy is of this file; otherwise it gets
    // the whole of it (200). A header that is not text is ignored.
    let range = if honour_range {
        request
            .headers()
            .get(header::RANGE)
            .and_then(|value| value.to_str().ok())
            .map(|value| {
                http_range_header::parse_range_header(value)
                    .and_then(|parsed| parsed.validate(info.size))
            })
    } else {
        None
    };
    let size = info.size;
    let mut response = match range {
        None => {
            let body = if head {
                Body::empty()
            } else {
                Body::from_stream(registry.blobs().open(sha256, None).await?)
            };
            let mut response = Response::new(body);
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            response
        }
        Some(Ok(ranges)) if ranges.len() == 1 => {
            let (start, end) = (*ranges[0].start(), *ranges[0].end());
            let body = if head {
                Body::empty()
            } else {
                let stream = registry.blobs().open(sha256, Some(start..end + 1)).await?;
                Body::from_stream(stream)
            };
            let mut response = Response::new(body);
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let headers = response.headers_mut();
            let length = if size == 0 { 0 } else { end - start + 1 };
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")) {
                headers.insert(header::CONTENT_RANGE, value);
            }
            response
        }
        Some(parsed) => {
            let body = if parsed.is_ok() {
                Body::from("Cannot serve multipart range requests")
            } else {
                Body::empty()
            };
            let mut response = Response::new(body);
            *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            response
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if let Some(value) = last_modified {
        headers.insert(header::LAST_MODIFIED, value);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}
