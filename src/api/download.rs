//! Serving a stored file: streamed from disk with `Content-Length`, `Content-Disposition`,
//! `ETag`, `Range` (206) and conditional requests.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

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

/// A plain `GET` of the whole file: no range, no date or `If-Match` condition (those, and `HEAD`,
/// are left to `ServeFile`).
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

/// Answers `request` with the bytes of `file`.
pub async fn serve(
    registry: &Registry,
    file: &PackageFile,
    request: Request,
) -> Result<Response, Error> {
    let mut response = serve_blob(registry, &file.sha256, request).await?;
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
/// conditional requests included): the one download path of every surface.
pub async fn serve_blob(
    registry: &Registry,
    sha256: &str,
    request: Request,
) -> Result<Response, Error> {
    let etag = format!("\"{sha256}\"");
    if not_modified(&request, &etag) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(value) = HeaderValue::from_str(&etag) {
            response.headers_mut().insert(header::ETAG, value);
        }
        return Ok(response);
    }
    let BlobLocation::LocalFile(path) = registry.blobs().locate(sha256)?;
    let mut response = if whole_file_get(&request) {
        stream_whole_file(path).await?
    } else {
        let (parts, _) = request.into_parts();
        let request = Request::from_parts(parts, Body::empty());
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
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}
