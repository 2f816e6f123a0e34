//! The native model registry API under `/api/v4/projects/:id/ml/`: models, versions (with SemVer
//! resolution), experiments and candidates, in GitLab's error shape, described by an OpenAPI 3
//! document served at `/api/v4/ml/openapi.json`.

mod aliases;
mod candidates;
mod experiments;
mod models;
mod openapi;
pub mod retention;
mod versions;
pub mod views;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;

use crate::api::gitlab::{paginated, ApiError};
use crate::domain::paging::{Page, PageRequest};
use crate::domain::Error;
use crate::state::AppState;

pub use openapi::RegistryApi;

const PROJECT: &str = "/api/v4/projects/{id}/ml";

pub fn router() -> Router<AppState> {
    let at = |path: &str| format!("{PROJECT}/{path}");
    Router::new()
        .route("/api/v4/ml/openapi.json", get(openapi::document))
        .route(&at("models"), get(models::list).post(models::create))
        .route(
            &at("models/{model}"),
            get(models::show)
                .patch(models::update)
                .put(models::update)
                .delete(models::delete),
        )
        .route(
            &at("models/{model}/versions"),
            get(versions::list).post(versions::create),
        )
        .route(
            &at("models/{model}/versions/resolve"),
            get(versions::resolve),
        )
        .route(
            &at("models/{model}/versions/{version}"),
            get(versions::show)
                .patch(versions::update)
                .put(versions::update)
                .delete(versions::delete),
        )
        .route(
            &at("models/{model}/aliases"),
            get(aliases::list).put(aliases::move_many),
        )
        .route(
            &at("models/{model}/aliases/{alias}/history"),
            get(aliases::history),
        )
        .route(
            &at("models/{model}/aliases/{alias}/rollback"),
            post(aliases::rollback),
        )
        .route(
            &at("models/{model}/versions/{version}/archive"),
            get(versions::archive),
        )
        .route(
            &at("models/{model}/versions/{version}/manifest"),
            get(versions::manifest),
        )
        .route(
            &at("models/{model}/versions/{version}/seal"),
            post(versions::seal),
        )
        .route(
            &at("models/{model}/retention/dry_run"),
            post(retention::dry_run),
        )
        .route(
            &at("models/{model}/retention/run"),
            post(retention::run_now),
        )
        .route(&at("experiments"), get(experiments::list))
        .route(
            &at("experiments/{iid}"),
            get(experiments::show).delete(experiments::delete),
        )
        .route(
            &at("experiments/{iid}/candidates"),
            get(candidates::list).post(candidates::create),
        )
        .route(
            &at("candidates/{iid}"),
            get(candidates::show).delete(candidates::delete),
        )
        .route(&at("candidates/{iid}/promote"), post(candidates::promote))
        .route(
            &at("candidates/{iid}/metrics/{key}/history"),
            get(candidates::metric_history),
        )
}

/// The page a listing asks for.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListPage {
    /// 1-based page number.
    pub page: Option<usize>,
    /// Items per page, 1 to 100 (default 20).
    pub per_page: Option<usize>,
    /// `keyset` for keyset pagination: follow the `Link: rel="next"` of each page.
    pub pagination: Option<String>,
    /// Where a keyset page starts: the opaque cursor of the previous page's `rel="next"` link.
    pub cursor: Option<String>,
}

impl ListPage {
    pub fn request(&self) -> Result<PageRequest, Error> {
        crate::api::gitlab::page_request(
            self.pagination.as_deref(),
            self.cursor.as_deref(),
            self.page,
            self.per_page,
        )
    }
}

/// Views one by one, for [`listing`]s whose views read nothing per record.
fn each<T, V>(
    mut view: impl FnMut(&T) -> Result<V, Error>,
) -> impl FnOnce(&[T]) -> Result<Vec<V>, Error> {
    move |items| items.iter().map(&mut view).collect()
}

/// A page of views as GitLab answers a listing: a JSON array with the pagination headers; the
/// views are built for the whole page at once, so that what they read is read in batches.
fn listing<T, V: serde::Serialize>(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    page: Page<T>,
    views: impl FnOnce(&[T]) -> Result<Vec<V>, Error>,
) -> Result<Response, ApiError> {
    let items = views(&page.items)?
        .into_iter()
        .map(|view| serde_json::to_value(view).map_err(|e| Error::bad(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let page = Page {
        items,
        total: page.total,
        request: page.request,
        next_cursor: page.next_cursor,
    };
    Ok(paginated(
        page,
        &state.base_url(headers),
        uri.path(),
        uri.query(),
    ))
}

/// The path parameters of a route, percent-decoded; a malformed one is a GitLab-shaped 404.
pub struct Segments(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Segments {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError(Error::NotFound("Route")))?;
        let mut decoded = Vec::new();
        for (key, value) in &raw {
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| ApiError(Error::NotFound("Route")))?;
            decoded.push((key.to_string(), value.into_owned()));
        }
        Ok(Segments(decoded))
    }
}

impl Segments {
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    pub fn project(&self) -> &str {
        self.get("id")
    }

    /// A numeric parameter; anything else names nothing, so 404.
    pub fn number(&self, name: &str, what: &'static str) -> Result<u64, ApiError> {
        self.get(name)
            .parse()
            .map_err(|_| ApiError(Error::NotFound(what)))
    }
}

/// Request bodies here are small JSON objects (413 above this).
const MAX_BODY: usize = crate::api::body_limit::DEFAULT_LIMIT;

/// A JSON request body; an empty body is `{}`. Whatever the Content-Type (`curl -d` sends a
/// form type), the bytes must be JSON; a bad one is a GitLab-shaped 400 naming the problem.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + Send + 'static, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let bytes = crate::api::body_limit::read(&parts.headers, body, MAX_BODY).await?;
        let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
            axum::body::Bytes::from_static(b"{}")
        } else {
            bytes
        };
        crate::api::body_limit::json(bytes)
            .await
            .map(Body)
            .map_err(|e| ApiError(Error::bad(format!("invalid JSON body: {e}"))))
    }
}

/// Query parameters whose rejection is a GitLab-shaped 400.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(QueryParams(value)),
            Err(rejection) => Err(ApiError(Error::bad(query_problem(&rejection)))),
        }
    }
}

fn query_problem(rejection: &QueryRejection) -> String {
    format!("invalid query parameters: {}", rejection.body_text())
}
