//! Serving a stored file: streamed from disk with `Content-Length`, `Content-Disposition`,
//! `ETag`, `Range` (206) and conditional requests.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::domain::records::PackageFile;
use crate::domain::{Error, Registry};
use crate::store::blobs::BlobLocation;

/// Reads from disk in chunks of this size.
const READ_CHUNK: usize = 1 << 20;

fn etag_of(file: &PackageFile) -> String {
    format!("\"{}\"", file.sha256)
}

/// Whether `If-None-Match` names this entity (or `*`).
fn not_modified(request: &Request, etag: &str) -> bool {
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

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

/// Answers `request` with the bytes of `file`.
pub async fn serve(
    registry: &Registry,
    file: &PackageFile,
    request: Request,
) -> Result<Response, Error> {
    let etag = etag_of(file);
    if not_modified(&request, &etag) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(value) = HeaderValue::from_str(&etag) {
            response.headers_mut().insert(header::ETAG, value);
        }
        return Ok(response);
    }
    let BlobLocation::LocalFile(path) = registry.blobs().locate(&file.sha256)?;
    let (parts, _) = request.into_parts();
    let request = Request::from_parts(parts, Body::empty());
    let Ok(response) = ServeFile::new(path)
        .with_buf_chunk_size(READ_CHUNK)
        .oneshot(request)
        .await;
    let mut response = response.map(Body::new);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CONTENT_DISPOSITION,
        content_disposition(file.base_name()),
    );
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        "x-checksum-sha256",
        HeaderValue::from_str(&file.sha256).unwrap_or(HeaderValue::from_static("")),
    );
    Ok(response)
}
