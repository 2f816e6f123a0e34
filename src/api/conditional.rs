//! RFC 9110 §13 preconditions of a download, evaluated against the file's own validators (its
//! strong `ETag`, the sha256, and its `Last-Modified`, when the file was recorded) before the bytes
//! are served: `If-Match`, `If-Unmodified-Since`, `If-None-Match`, `If-Modified-Since`, and
//! `If-Range`, which decides whether a `Range` is honoured or the whole (new) file is sent.
//! tower-http's `ServeFile` ignores `If-Match` and `If-Range`; a resumed download of a file
//! re-uploaded with other content would splice old and new bytes.

use std::time::{Duration, SystemTime};

use axum::http::{header, HeaderMap, Method};

/// What the preconditions decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 412 Precondition Failed.
    Failed,
    /// 304 Not Modified.
    NotModified,
    /// Serve the file; `honour_range` says whether a `Range` header may select part of it.
    Serve { honour_range: bool },
}

/// Whole seconds: HTTP dates have no finer resolution.
fn seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

fn date(headers: &HeaderMap, name: header::HeaderName) -> Option<SystemTime> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
}

/// The entity tags of a list header (`If-Match`, `If-None-Match`): `None` when absent.
fn tags(headers: &HeaderMap, name: header::HeaderName) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut present = false;
    for value in headers.get_all(name) {
        present = true;
        if let Ok(text) = value.to_str() {
            out.extend(
                text.split(',')
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty()),
            );
        }
    }
    present.then_some(out)
}

/// Strong comparison: a weak tag never matches.
fn strong_match(tag: &str, etag: &str) -> bool {
    tag == "*" || (!tag.starts_with("W/") && tag == etag)
}

/// Weak comparison (for `If-None-Match`).
fn weak_match(tag: &str, etag: &str) -> bool {
    tag == "*" || tag.trim_start_matches("W/") == etag.trim_start_matches("W/")
}

/// Evaluates the preconditions of `headers` for a file with `etag` (quoted) and `modified`.
pub fn evaluate(method: &Method, headers: &HeaderMap, etag: &str, modified: SystemTime) -> Outcome {
    let modified = seconds(modified);
    // 1. If-Match, else 2. If-Unmodified-Since.
    if let Some(tags) = tags(headers, header::IF_MATCH) {
        if !tags.iter().any(|t| strong_match(t, etag)) {
            return Outcome::Failed;
        }
    } else if let Some(since) = date(headers, header::IF_UNMODIFIED_SINCE) {
        if modified > seconds(since) {
            return Outcome::Failed;
        }
    }
    let safe = method == Method::GET || method == Method::HEAD;
    // 3. If-None-Match, else 4. If-Modified-Since (GET and HEAD only).
    if let Some(tags) = tags(headers, header::IF_NONE_MATCH) {
        if tags.iter().any(|t| weak_match(t, etag)) {
            return if safe {
                Outcome::NotModified
            } else {
                Outcome::Failed
            };
        }
    } else if safe {
        if let Some(since) = date(headers, header::IF_MODIFIED_SINCE) {
            if modified <= seconds(since) {
                return Outcome::NotModified;
            }
        }
    }
    // 5. If-Range: a Range counts only while the validator still names this file. An entity tag
    // must match strongly; a date must equal Last-Modified exactly and be a strong validator
    // (RFC 9110 §8.8.2.2: at least a second in the past, so no later change shares it).
    let honour_range = match headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(value) => {
            let value = value.trim();
            if value.starts_with('"') || value.starts_with("W/") {
                strong_match(value, etag) && value != "*"
            } else {
                httpdate::parse_http_date(value).is_ok_and(|d| seconds(d) == modified)
                    && seconds(SystemTime::now()) > modified
            }
        }
    };
    Outcome::Serve { honour_range }
}

/// `Last-Modified` of a time.
pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const TAG: &str = "\"abc\"";

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn eval(pairs: &[(header::HeaderName, String)]) -> Outcome {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        evaluate(&Method::GET, &headers, TAG, at(1_000_000_000))
    }

    #[test]
    fn preconditions_follow_rfc_9110() {
        let now = http_date(at(1_000_000_000));
        let earlier = http_date(at(999_999_000));
        let serve = Outcome::Serve { honour_range: true };
        let whole = Outcome::Serve {
            honour_range: false,
        };
        use header::*;
        assert_eq!(eval(&[]), serve);
        assert_eq!(eval(&[(IF_MATCH, TAG.into())]), serve);
        assert_eq!(eval(&[(IF_MATCH, "\"x\", \"abc\"".into())]), serve);
        assert_eq!(eval(&[(IF_MATCH, "*".into())]), serve);
        assert_eq!(eval(&[(IF_MATCH, "\"x\"".into())]), Outcome::Failed);
        assert_eq!(eval(&[(IF_MATCH, "W/\"abc\"".into())]), Outcome::Failed);
        assert_eq!(
            eval(&[(IF_UNMODIFIED_SINCE, earlier.clone())]),
            Outcome::Failed
        );
        assert_eq!(eval(&[(IF_UNMODIFIED_SINCE, now.clone())]), serve);
        // If-Match wins over If-Unmodified-Since.
        assert_eq!(
            eval(&[
                (IF_MATCH, TAG.into()),
                (IF_UNMODIFIED_SINCE, earlier.clone())
            ]),
            serve
        );
        assert_eq!(
            eval(&[(IF_NONE_MATCH, "W/\"abc\"".into())]),
            Outcome::NotModified
        );
        assert_eq!(eval(&[(IF_NONE_MATCH, "\"x\"".into())]), serve);
        assert_eq!(
            eval(&[(IF_MODIFIED_SINCE, now.clone())]),
            Outcome::NotModified
        );
        assert_eq!(eval(&[(IF_MODIFIED_SINCE, earlier.clone())]), serve);
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            eval(&[
                (IF_NONE_MATCH, "\"x\"".into()),
                (IF_MODIFIED_SINCE, now.clone())
            ]),
            serve
        );
        assert_eq!(eval(&[(IF_RANGE, TAG.into())]), serve);
        assert_eq!(eval(&[(IF_RANGE, "\"old\"".into())]), whole);
        assert_eq!(eval(&[(IF_RANGE, "W/\"abc\"".into())]), whole);
        assert_eq!(eval(&[(IF_RANGE, now)]), serve);
        assert_eq!(eval(&[(IF_RANGE, earlier)]), whole);
        assert_eq!(eval(&[(IF_RANGE, "garbage".into())]), whole);
    }
}
