//! Reading parameter bodies (JSON or form-encoded, never uploaded files): each route has a
//! limit that fits what it takes, a declared `Content-Length` above it is refused before a byte
//! is read, and large bodies are decoded on a blocking thread so that parsing never holds an
//! async worker.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::domain::Error;

/// What most parameter bodies may weigh: names, descriptions, tags, filters.
pub const DEFAULT_LIMIT: usize = 1 << 20;

/// Bodies above this are decoded with `spawn_blocking`. Below it, decoding takes well under a
/// millisecond, less than the two thread hand-offs it would cost (a log-batch of 1,000 metrics
/// weighs about 70 KiB and stays on its worker).
pub const DECODE_OFF_THREAD: usize = 256 << 10;

/// The declared length of a body, when the client sent one.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The whole body, at most `limit` bytes: `RequestTooLarge` as soon as it is known to be
/// larger (from its `Content-Length`, or once more has arrived), `BodyInterrupted` when it
/// cannot be read.
pub async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Error> {
    let too_large = Error::RequestTooLarge {
        limit: limit as u64,
    };
    if declared_length(headers).is_some_and(|n| n > limit as u64) {
        return Err(too_large);
    }
    let mut body = body;
    let mut collected = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Error::BodyInterrupted)?;
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > limit {
                return Err(too_large);
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(collected))
}

/// Runs `decode` on `bytes`, on a blocking thread when they are large.
pub async fn decode_with<T, E>(
    bytes: Bytes,
    decode: impl FnOnce(&[u8]) -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static + From<Error>,
{
    if bytes.len() <= DECODE_OFF_THREAD {
        return decode(&bytes);
    }
    tokio::task::spawn_blocking(move || decode(&bytes))
        .await
        .map_err(|e| {
            E::from(Error::bad(format!(
                "decoding the body was interrupted: {e}"
            )))
        })?
}

/// Decodes a JSON document into `T` (unknown fields are skipped without being kept).
pub async fn json<T: DeserializeOwned + Send + 'static>(
    bytes: Bytes,
) -> Result<T, serde_json::Error> {
    if bytes.len() <= DECODE_OFF_THREAD {
        return serde_json::from_slice(&bytes);
    }
    match tokio::task::spawn_blocking(move || serde_json::from_slice(&bytes)).await {
        Ok(result) => result,
        Err(e) => Err(serde::de::Error::custom(format!(
            "decoding the body was interrupted: {e}"
        ))),
    }
}
