//! Serving a stored file: streamed from disk with `Content-Length`, `Content-Disposition`,
//! `ETag`, `Range` (206) and conditional requests.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use super::conditional::{self, Outcome};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::domain::records::PackageFile;
use crate::domain::{Error, Registry};
use crate::store::blobs::{BlobError, BlobLocation};
use crate::store::chunk_pool::ChunkPool;

/// Ranges and conditional requests (`ServeFile`) read from disk in chunks of this size.
const READ_CHUNK: usize = 1 << 20;
/// Whole-file downloads read chunks of this size...
const WHOLE_FILE_CHUNK: usize = 512 << 10;
/// ...up to this many ahead of the socket.
const READ_AHEAD: usize = 4;
/// How long a reader thread waits for the socket to take a chunk before it hands its thread back.
const READER_PATIENCE: Duration = Duration::from_millis(50);

/// Buffers of whole-file downloads, shared by all of them: a download holds at most
/// `READ_AHEAD` + 2 chunks (queued, being read, being sent), 3 MiB.
fn read_buffers() -> Arc<ChunkPool> {
    static POOL: OnceLock<Arc<ChunkPool>> = OnceLock::new();
    POOL.get_or_init(|| ChunkPool::new(WHOLE_FILE_CHUNK, READ_AHEAD + 2))
        .clone()
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

/// A plain `GET` of the whole file: no range (ranges and `HEAD` are left to `ServeFile`).
fn whole_file_get(request: &Request) -> bool {
    request.method() == Method::GET
        && ![
            header::RANGE,
            header::IF_RANGE,
            header::IF_MATCH,
            header::IF_MODIFIED_SINCE,
            header::IF_UNMODIFIED_SINCE,
        ]
        .iter()
        .any(|name| request.headers().contains_key(name))
}

/// `200 OK` with the whole file, read up to `READ_AHEAD` chunks ahead of the socket: reading the
/// disk (and copying out of the page cache) overlaps sending, where `ServeFile` reads a chunk
/// only once the previous one is sent.
async fn stream_whole_file(path: PathBuf) -> Result<Response, Error> {
    let opened = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let file = std::fs::File::open(&path)?;
        let meta = file.metadata()?;
        Ok((file, meta))
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|opened| opened)
    .map_err(|e| Error::from(BlobError::Io(e)))?;
    let (file, meta) = opened;
    let (sender, mut received) = mpsc::channel::<std::io::Result<Bytes>>(READ_AHEAD);
    let pool = read_buffers();
    tokio::spawn(async move {
        let (mut file, mut sender) = (file, sender);
        // Wait for room in the queue without a thread, then read on a blocking thread for as
        // long as the socket keeps taking chunks; when it has not taken one for
        // READER_PATIENCE, hand the thread back: a slow client does not hold a blocking thread.
        while let Ok(room) = sender.reserve_owned().await {
            let pool = pool.clone();
            let runtime = tokio::runtime::Handle::current();
            let paused = tokio::task::spawn_blocking(move || {
                let mut room = room;
                loop {
                    let mut chunk = pool.take();
                    let sender = match chunk.read_from(&mut file) {
                        Ok(_) if chunk.is_empty() => return None, // the end of the file
                        Ok(_) => room.send(Ok(chunk.freeze())),
                        Err(error) => {
                            room.send(Err(error));
                            return None;
                        }
                    };
                    match runtime.block_on(tokio::time::timeout(
                        READER_PATIENCE,
                        sender.clone().reserve_owned(),
                    )) {
                        Ok(Ok(next)) => room = next,
                        Ok(Err(_)) => return None, // the client went away
                        Err(_) => return Some((file, sender)),
                    }
                }
            })
            .await;
            match paused {
                Ok(Some(paused)) => (file, sender) = paused,
                _ => break,
            }
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| received.poll_recv(cx));
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(modified) = meta.modified() {
        let modified: chrono::DateTime<chrono::Utc> = modified.into();
        if let Ok(value) =
            HeaderValue::from_str(&modified.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        {
            headers.insert(header::LAST_MODIFIED, value);
        }
    }
    Ok(response)
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
/// (see [`conditional`]); `ServeFile` then only sees a `Range` that still applies.
async fn serve_validated(
    registry: &Registry,
    sha256: &str,
    modified: Option<SystemTime>,
    request: Request,
) -> Result<Response, Error> {
    let etag = format!("\"{sha256}\"");
    let BlobLocation::LocalFile(path) = registry.blobs().locate(sha256)?;
    let modified = match modified {
        Some(at) => at,
        None => tokio::fs::metadata(&path)
            .await
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH),
    };
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
    let (mut parts, _) = request.into_parts();
    for name in [
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
        header::IF_RANGE,
    ] {
        parts.headers.remove(name);
    }
    if !honour_range {
        // The client's copy is of another file: it gets the whole of this one (200).
        parts.headers.remove(header::RANGE);
    }
    let request = Request::from_parts(parts, Body::empty());
    let mut response = if whole_file_get(&request) {
        stream_whole_file(path).await?
    } else {
        let Ok(response) = ServeFile::new(path)
            .with_buf_chunk_size(READ_CHUNK)
            .oneshot(request)
            .await;
        response.map(Body::new)
    };
    let headers = response.headers_mut();
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
