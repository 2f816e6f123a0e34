//! The OCI Distribution Spec v1.1 surface under `/v2/`: models are repositories
//! (`<namespace>/<project>/<model>`), versions are tags. Pull, push (monolithic, chunked,
//! cross-repository mount), tags, referrers and deletes; the Docker token flow and HTTP Basic
//! with a token as the password. The domain (`domain::oci`) decides everything; this module
//! reads requests and writes the spec's responses.

mod error;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use serde_json::json;

pub use error::{body as error_body, status_and_code, OciError, OciResult};

use crate::domain::access::Caller;
use crate::domain::oci::{BlobSource, Reference, Repository};
use crate::domain::oci_manifest::{self as manifest, OciCode, IMAGE_INDEX};
use crate::domain::Error;
use crate::state::AppState;
use crate::store::blobs::ByteStream;

/// The token the token endpoint gives callers without credentials: it stands for anonymous.
pub const ANONYMOUS_TOKEN: &str = "modelyard-anonymous";
/// How long clients may keep a token (they ask again after).
const TOKEN_SECONDS: u64 = 3600;
/// Tags listed by one `tags/list` answer when the client does not say (`n`), and at most.
const TAGS_PAGE: usize = 1000;
const TAGS_MAX: usize = 10_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v2/", get(base))
        .route("/v2", get(base))
        .route("/v2/token", get(token).post(token_form))
        .route("/v2/{*rest}", any(dispatch))
        .layer(middleware::from_fn(api_version))
}

/// Every answer of the surface says which API it speaks.
async fn api_version(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

/// Who calls, as the OCI surface sees it.
struct OciCaller {
    caller: Caller,
    /// No credentials at all (not even the anonymous token).
    bare: bool,
}

fn oci_caller(state: &AppState, headers: &HeaderMap) -> Result<OciCaller, Error> {
    match crate::api::auth::presented_secret(headers)? {
        None => Ok(OciCaller {
            caller: Caller::Anonymous,
            bare: true,
        }),
        Some(secret) if secret == ANONYMOUS_TOKEN => Ok(OciCaller {
            caller: Caller::Anonymous,
            bare: false,
        }),
        Some(secret) => Ok(OciCaller {
            caller: state.registry.authenticate(&secret)?,
            bare: false,
        }),
    }
}

fn host_of(state: &AppState, headers: &HeaderMap) -> String {
    let base = state.base_url(headers);
    base.split_once("://")
        .map(|(_, host)| host.to_string())
        .unwrap_or(base)
}

/// `Bearer realm="<base>/v2/token",service="<host>"[,scope="repository:<name>:<actions>"]`.
fn challenge(state: &AppState, headers: &HeaderMap, scope: Option<(&str, bool)>) -> String {
    let base = state.base_url(headers);
    let mut value = format!(
        "Bearer realm=\"{base}/v2/token\",service=\"{}\"",
        host_of(state, headers)
    );
    if let Some((name, push)) = scope {
        let actions = if push { "pull,push" } else { "pull" };
        value.push_str(&format!(",scope=\"repository:{name}:{actions}\""));
    }
    value
}

/// `GET /v2/`: 200 for any authenticated caller (the anonymous token included); a bare
/// request gets the challenge that starts the token flow.
async fn base(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let refuse = |error: Error| {
        OciError {
            error,
            challenge: Some(challenge(&state, &headers, None)),
            anonymous: true,
            method: Method::GET,
        }
        .into_response()
    };
    match oci_caller(&state, &headers) {
        Ok(OciCaller { bare: true, .. }) => refuse(Error::Unauthorized),
        Ok(_) => (StatusCode::OK, Json(json!({}))).into_response(),
        Err(error) => refuse(error),
    }
}

fn token_answer(secret: &str) -> Response {
    let issued = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    (
        StatusCode::OK,
        Json(json!({
            "token": secret,
            "access_token": secret,
            "expires_in": TOKEN_SECONDS,
            "issued_at": issued,
        })),
    )
        .into_response()
}

fn token_refused() -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(error_body("UNAUTHORIZED", "invalid credentials")),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"modelyard\""),
    );
    response
}

/// `GET /v2/token` (the Docker token flow): with Basic credentials (a token as the password)
/// the answer's token is that token once verified; without any, the anonymous token. The
/// token does not widen access: every request is decided by the access policy as it comes.
async fn token(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match crate::api::auth::presented_secret(&headers) {
        Ok(None) => token_answer(ANONYMOUS_TOKEN),
        Ok(Some(secret)) if secret == ANONYMOUS_TOKEN => token_answer(ANONYMOUS_TOKEN),
        Ok(Some(secret)) => match state.registry.authenticate(&secret) {
            Ok(_) => token_answer(&secret),
            Err(error) if error.is_internal() => OciError::new(error).into_response(),
            Err(_) => token_refused(),
        },
        Err(_) => token_refused(),
    }
}

/// `POST /v2/token` (OAuth2 password grant, as containerd sends it).
async fn token_form(State(state): State<AppState>, request: Request) -> Response {
    let bytes = match axum::body::to_bytes(request.into_body(), 64 << 10).await {
        Ok(bytes) => bytes,
        Err(_) => return token_refused(),
    };
    let fields: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&bytes).into_owned().collect();
    match fields.get("password").filter(|p| !p.is_empty()) {
        None => token_answer(ANONYMOUS_TOKEN),
        Some(secret) => match state.registry.authenticate(secret) {
            Ok(_) => token_answer(secret),
            Err(error) if error.is_internal() => OciError::new(error).into_response(),
            Err(_) => token_refused(),
        },
    }
}

/// What a path below `/v2/` names.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    Uploads(&'a str),
    Upload(&'a str, &'a str),
    Tags(&'a str),
    Referrers(&'a str, &'a str),
}

/// Splits the path after `/v2/` into the repository name and the route. The name is all that
/// comes before the route's own segments, so it may hold slashes.
fn target(rest: &str) -> Option<Target<'_>> {
    let rest = rest.trim_start_matches('/');
    let split = |suffix: &str| {
        rest.rsplit_once(suffix)
            .filter(|(name, tail)| !name.is_empty() && !tail.contains('/'))
    };
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Target::Tags(name));
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Target::Uploads(name));
    }
    if let Some((name, id)) = split("/blobs/uploads/") {
        return Some(Target::Upload(name, id));
    }
    if let Some((name, reference)) = split("/manifests/") {
        return Some(Target::Manifest(name, reference));
    }
    if let Some((name, digest)) = split("/blobs/") {
        return Some(Target::Blob(name, digest));
    }
    if let Some((name, digest)) = split("/referrers/") {
        return Some(Target::Referrers(name, digest));
    }
    None
}

fn query_param(request: &Request, name: &str) -> Option<String> {
    let query = request.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn digest_header(sha256: &str) -> HeaderValue {
    header_value(&format!("sha256:{sha256}"))
}

fn body_stream(request: Request) -> ByteStream {
    Box::pin(TryStreamExt::map_err(
        request.into_body().into_data_stream(),
        std::io::Error::other,
    ))
}

/// Whether the request carries a body (a length above zero, or chunked).
fn has_body(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}

/// Every route below `/v2/<name>/`.
async fn dispatch(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let rest = path.strip_prefix("/v2/").unwrap_or("");
    let Some(target) = target(rest) else {
        return OciError::new(Error::oci(OciCode::NameInvalid, "no such route")).into_response();
    };
    let (name, push) = match &target {
        Target::Manifest(name, _) | Target::Blob(name, _) => {
            (*name, !matches!(method, Method::GET | Method::HEAD))
        }
        Target::Uploads(name) | Target::Upload(name, _) => (*name, true),
        Target::Tags(name) | Target::Referrers(name, _) => (*name, false),
    };
    let scope_challenge = challenge(&state, &headers, Some((name, push)));
    let who = match oci_caller(&state, &headers) {
        Ok(who) => who,
        Err(error) => {
            return OciError {
                error,
                challenge: Some(scope_challenge),
                anonymous: true,
                method,
            }
            .into_response()
        }
    };
    let anonymous = matches!(who.caller, Caller::Anonymous);
    let outcome = route(&state, &who.caller, target, push, request).await;
    match outcome {
        Ok(response) => response,
        Err(mut error) => {
            error.challenge = Some(scope_challenge);
            error.anonymous = anonymous;
            error.method = method;
            error.into_response()
        }
    }
}

async fn route(
    state: &AppState,
    caller: &Caller,
    target: Target<'_>,
    push: bool,
    request: Request,
) -> OciResult<Response> {
    let registry = &state.registry;
    let name = match &target {
        Target::Manifest(name, _)
        | Target::Blob(name, _)
        | Target::Uploads(name)
        | Target::Upload(name, _)
        | Target::Tags(name)
        | Target::Referrers(name, _) => *name,
    };
    let repo = registry.oci_repository(caller, name, push)?;
    let method = request.method().clone();
    match (target, method) {
        (Target::Manifest(_, reference), Method::GET | Method::HEAD) => {
            get_manifest(state, &repo, reference, request).await
        }
        (Target::Manifest(_, reference), Method::PUT) => {
            put_manifest(state, caller, &repo, reference, request).await
        }
        (Target::Manifest(_, reference), Method::DELETE) => {
            let reference = Reference::parse(reference)?;
            registry
                .oci_delete_manifest(caller, &repo, &reference)
                .await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (Target::Blob(_, digest), Method::GET | Method::HEAD) => {
            get_blob(state, &repo, digest, request).await
        }
        (Target::Blob(_, digest), Method::DELETE) => {
            let sha256 = manifest::parse_digest(digest)?;
            registry.oci_delete_blob(caller, &repo, &sha256).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (Target::Uploads(_), Method::POST) => start_upload(state, caller, &repo, request).await,
        (Target::Upload(_, id), Method::GET) => {
            let size = registry.oci_upload_size(&repo, id).await?;
            Ok(upload_state(&repo, id, size, StatusCode::NO_CONTENT))
        }
        (Target::Upload(_, id), Method::PATCH) => {
            let start = content_range_start(request.headers())?;
            let size = registry
                .oci_append(&repo, id, start, body_stream(request))
                .await?;
            Ok(upload_state(&repo, id, size, StatusCode::ACCEPTED))
        }
        (Target::Upload(_, id), Method::PUT) => {
            let digest = query_param(&request, "digest").ok_or_else(|| {
                Error::oci(OciCode::DigestInvalid, "the digest parameter is missing")
            })?;
            let sha256 = manifest::parse_digest(&digest)?;
            let body = has_body(request.headers()).then(|| body_stream(request));
            let blob = registry.oci_finish_upload(&repo, id, &sha256, body).await?;
            Ok(blob_created(&repo, &blob.sha256))
        }
        (Target::Upload(_, id), Method::DELETE) => {
            registry.oci_cancel_upload(&repo, id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (Target::Tags(_), Method::GET) => list_tags(state, &repo, &request),
        (Target::Referrers(_, digest), Method::GET) => {
            let subject = manifest::parse_digest(digest)?;
            let artifact_type = query_param(&request, "artifactType");
            let descriptors = registry.oci_referrers(&repo, &subject, artifact_type.as_deref())?;
            let mut response = Response::new(Body::from(manifest::referrers_index(&descriptors)));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(IMAGE_INDEX));
            if artifact_type.is_some() {
                response.headers_mut().insert(
                    "oci-filters-applied",
                    HeaderValue::from_static("artifactType"),
                );
            }
            Ok(response)
        }
        _ => Err(Error::oci(OciCode::Unsupported, "method not allowed here").into()),
    }
}

async fn get_manifest(
    state: &AppState,
    repo: &Repository,
    reference: &str,
    request: Request,
) -> OciResult<Response> {
    let reference = Reference::parse(reference)?;
    let found = state.registry.oci_manifest(repo, &reference).await?;
    let length = found.bytes.len();
    let etag = format!("\"sha256:{}\"", found.digest);
    if request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let mut response = if request.method() == Method::HEAD {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(found.bytes))
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header_value(&found.media_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert("docker-content-digest", digest_header(&found.digest));
    headers.insert(header::ETAG, header_value(&etag));
    Ok(response)
}

async fn put_manifest(
    state: &AppState,
    caller: &Caller,
    repo: &Repository,
    reference: &str,
    request: Request,
) -> OciResult<Response> {
    let reference = Reference::parse(reference)?;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let limited = http_body_util::Limited::new(request.into_body(), manifest::MAX_MANIFEST_BYTES);
    let bytes = match limited.collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(error) => {
            return Err(if error.is::<http_body_util::LengthLimitError>() {
                // 413, as the spec asks of a manifest over the registry's limit.
                Error::TooLarge
            } else {
                Error::BodyInterrupted
            }
            .into());
        }
    };
    let pushed = state
        .registry
        .oci_put_manifest(caller, repo, &reference, bytes, content_type.as_deref())
        .await?;
    let mut response = StatusCode::CREATED.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        header_value(&format!(
            "/v2/{}/manifests/sha256:{}",
            repo.full_name(),
            pushed.digest
        )),
    );
    headers.insert("docker-content-digest", digest_header(&pushed.digest));
    if let Some(subject) = &pushed.subject {
        headers.insert("oci-subject", digest_header(subject));
    }
    Ok(response)
}

async fn get_blob(
    state: &AppState,
    repo: &Repository,
    digest: &str,
    request: Request,
) -> OciResult<Response> {
    let sha256 = manifest::parse_digest(digest)?;
    match state.registry.oci_blob(repo, &sha256)? {
        BlobSource::Stored { sha256, .. } => {
            let mut response =
                crate::api::download::serve_blob(&state.registry, &sha256, request).await?;
            response
                .headers_mut()
                .insert("docker-content-digest", digest_header(&sha256));
            Ok(response)
        }
        BlobSource::Generated(bytes) => {
            let length = bytes.len();
            let mut response = if request.method() == Method::HEAD {
                Response::new(Body::empty())
            } else {
                Response::new(Body::from(bytes))
            };
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert("docker-content-digest", digest_header(&sha256));
            Ok(response)
        }
    }
}

fn blob_created(repo: &Repository, sha256: &str) -> Response {
    let mut response = StatusCode::CREATED.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        header_value(&format!("/v2/{}/blobs/sha256:{sha256}", repo.full_name())),
    );
    headers.insert("docker-content-digest", digest_header(sha256));
    response
}

/// The answer that tells a client where an upload is and how much it holds.
fn upload_state(repo: &Repository, id: &str, size: u64, status: StatusCode) -> Response {
    let mut response = status.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        header_value(&format!("/v2/{}/blobs/uploads/{id}", repo.full_name())),
    );
    headers.insert(
        header::RANGE,
        header_value(&format!("0-{}", size.saturating_sub(1))),
    );
    headers.insert("docker-upload-uuid", header_value(id));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    response
}

/// The first byte of a `Content-Range: <start>-<end>` (some clients prefix `bytes `).
fn content_range_start(headers: &HeaderMap) -> Result<Option<u64>, Error> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .ok()
        .map(|v| {
            v.trim()
                .trim_start_matches("bytes")
                .trim_start_matches(['=', ' '])
        })
        .ok_or_else(|| Error::oci(OciCode::RangeInvalid, "Content-Range is not readable"))?;
    let start = text
        .split_once('-')
        .and_then(|(start, _)| start.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            Error::oci(
                OciCode::RangeInvalid,
                format!("Content-Range '{text}' is not <start>-<end>"),
            )
        })?;
    Ok(Some(start))
}

/// `POST /v2/<name>/blobs/uploads/`: a mount, a monolithic upload (`?digest=`), or a session.
async fn start_upload(
    state: &AppState,
    caller: &Caller,
    repo: &Repository,
    request: Request,
) -> OciResult<Response> {
    let registry = &state.registry;
    if let (Some(mount), Some(from)) = (
        query_param(&request, "mount"),
        query_param(&request, "from"),
    ) {
        let sha256 = manifest::parse_digest(&mount)?;
        // A source the caller may not read is as if it had no such blob: upload instead.
        if let Ok(source) = registry.oci_repository(caller, &from, false) {
            if let Some(blob) = registry.oci_mount(repo, &sha256, &source).await? {
                return Ok(blob_created(repo, &blob.sha256));
            }
        }
    }
    if let Some(digest) = query_param(&request, "digest") {
        let sha256 = manifest::parse_digest(&digest)?;
        let blob = registry
            .oci_put_blob(repo, &sha256, body_stream(request))
            .await?;
        return Ok(blob_created(repo, &blob.sha256));
    }
    let session = registry.oci_start_upload(caller, repo).await?;
    Ok(upload_state(repo, &session.id, 0, StatusCode::ACCEPTED))
}

/// `GET /v2/<name>/tags/list?n=&last=`: versions in byte order, with a `Link` to the next page.
fn list_tags(state: &AppState, repo: &Repository, request: &Request) -> OciResult<Response> {
    let n = match query_param(request, "n") {
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| Error::oci(OciCode::Unsupported, "n must be a number"))?
            .min(TAGS_MAX),
        None => TAGS_PAGE,
    };
    let last = query_param(request, "last");
    let (tags, more) = if n == 0 {
        (Vec::new(), false)
    } else {
        state.registry.oci_tags(repo, last.as_deref(), n)?
    };
    let mut response = Json(json!({ "name": repo.full_name(), "tags": tags })).into_response();
    if more {
        if let Some(last) = tags.last() {
            let link = format!(
                "</v2/{}/tags/list?n={n}&last={}>; rel=\"next\"",
                repo.full_name(),
                url::form_urlencoded::byte_serialize(last.as_bytes()).collect::<String>()
            );
            response
                .headers_mut()
                .insert(header::LINK, header_value(&link));
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_name_and_route() {
        assert_eq!(
            target("ml/fraud/scorer/manifests/1.2"),
            Some(Target::Manifest("ml/fraud/scorer", "1.2"))
        );
        assert_eq!(
            target("ml/fraud/a/manifests/b/manifests/sha256:00"),
            Some(Target::Manifest("ml/fraud/a/manifests/b", "sha256:00"))
        );
        assert_eq!(
            target("ml/fraud/scorer/blobs/uploads/"),
            Some(Target::Uploads("ml/fraud/scorer"))
        );
        assert_eq!(
            target("ml/fraud/scorer/blobs/uploads/abc"),
            Some(Target::Upload("ml/fraud/scorer", "abc"))
        );
        assert_eq!(
            target("ml/fraud/scorer/blobs/sha256:00"),
            Some(Target::Blob("ml/fraud/scorer", "sha256:00"))
        );
        assert_eq!(
            target("ml/fraud/scorer/tags/list"),
            Some(Target::Tags("ml/fraud/scorer"))
        );
        assert_eq!(
            target("ml/fraud/scorer/referrers/sha256:00"),
            Some(Target::Referrers("ml/fraud/scorer", "sha256:00"))
        );
        assert_eq!(target("ml/fraud/scorer"), None);
        assert_eq!(target("/manifests/x"), None);
    }

    #[test]
    fn content_ranges() {
        let mut h = HeaderMap::new();
        assert_eq!(content_range_start(&h).unwrap(), None);
        h.insert(header::CONTENT_RANGE, HeaderValue::from_static("10-19"));
        assert_eq!(content_range_start(&h).unwrap(), Some(10));
        h.insert(header::CONTENT_RANGE, HeaderValue::from_static("bytes 5-9"));
        assert_eq!(content_range_start(&h).unwrap(), Some(5));
        h.insert(header::CONTENT_RANGE, HeaderValue::from_static("x"));
        assert!(content_range_start(&h).is_err());
    }
}
