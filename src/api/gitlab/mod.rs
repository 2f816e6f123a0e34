//! The GitLab-compatible REST surface under `/api/v4`.

mod audit;
mod error;
pub mod generic;
mod groups;
mod hooks;
mod ml_files;
mod packages;
mod params;
mod project_tokens;
mod projects;
mod users;
pub mod views;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::Value;

pub use error::{status_and_body, ApiError, ApiResult};
pub use params::Params;

use crate::domain::access::Caller;
use crate::domain::paging::{Page, PageRequest};
use crate::domain::Error;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v4/version", get(users::version))
        .route("/api/v4/user", get(users::current_user))
        .route(
            "/api/v4/user/personal_access_tokens",
            post(users::create_own_token),
        )
        .route(
            "/api/v4/users",
            get(users::list_users).post(users::create_user),
        )
        .route(
            "/api/v4/users/{user_id}",
            get(users::get_user)
                .put(users::update_user)
                .delete(users::delete_user),
        )
        .route(
            "/api/v4/users/{user_id}/projects",
            get(users::user_projects),
        )
        .route(
            "/api/v4/users/{user_id}/memberships",
            get(users::user_memberships),
        )
        .route("/api/v4/namespaces", get(groups::namespaces))
        .route("/api/v4/namespaces/{id}", get(groups::namespace))
        .route("/api/v4/groups", get(groups::list).post(groups::create))
        .route(
            "/api/v4/groups/{id}",
            get(groups::show).put(groups::update).delete(groups::delete),
        )
        .route("/api/v4/groups/{id}/projects", get(groups::projects))
        .route("/api/v4/groups/{id}/subgroups", get(groups::subgroups))
        .route(
            "/api/v4/groups/{id}/members",
            get(groups::list_members).post(groups::add_member),
        )
        .route("/api/v4/groups/{id}/members/all", get(groups::list_members))
        .route(
            "/api/v4/groups/{id}/members/{user_id}",
            get(groups::show_member)
                .put(groups::update_member)
                .delete(groups::remove_member),
        )
        .route(
            "/api/v4/projects/{id}/deploy_tokens",
            get(project_tokens::list_deploy_tokens).post(project_tokens::create_deploy_token),
        )
        .route(
            "/api/v4/projects/{id}/deploy_tokens/{token_id}",
            get(project_tokens::show_deploy_token).delete(project_tokens::revoke_deploy_token),
        )
        .route(
            "/api/v4/projects/{id}/access_tokens",
            get(project_tokens::list_access_tokens).post(project_tokens::create_access_token),
        )
        .route(
            "/api/v4/projects/{id}/access_tokens/{token_id}",
            get(project_tokens::show_access_token).delete(project_tokens::revoke_access_token),
        )
        .route(
            "/api/v4/projects/{id}/trusted_publishers",
            get(project_tokens::list_trusted_publishers)
                .post(project_tokens::add_trusted_publisher),
        )
        .route(
            "/api/v4/projects/{id}/trusted_publishers/token",
            post(project_tokens::exchange_id_token),
        )
        .route(
            "/api/v4/projects/{id}/trusted_publishers/{rule_id}",
            axum::routing::delete(project_tokens::remove_trusted_publisher),
        )
        .route(
            "/api/v4/users/{user_id}/personal_access_tokens",
            post(users::create_user_token),
        )
        .route("/api/v4/personal_access_tokens", get(users::list_tokens))
        .route(
            "/api/v4/personal_access_tokens/{token_id}",
            get(users::get_token).delete(users::revoke_token),
        )
        .route(
            "/api/v4/projects",
            get(projects::list).post(projects::create),
        )
        .route(
            "/api/v4/projects/{id}",
            get(projects::show)
                .put(projects::update)
                .delete(projects::delete),
        )
        .route(
            "/api/v4/projects/{id}/members",
            get(projects::list_members).post(projects::add_member),
        )
        .route(
            "/api/v4/projects/{id}/members/all",
            get(projects::list_members),
        )
        .route(
            "/api/v4/projects/{id}/members/{user_id}",
            get(projects::show_member)
                .put(projects::update_member)
                .delete(projects::remove_member),
        )
        .route(
            "/api/v4/projects/{id}/audit_events",
            get(audit::project_list),
        )
        .route(
            "/api/v4/projects/{id}/audit_events/{event_id}",
            get(audit::project_show),
        )
        .route("/api/v4/audit_events", get(audit::instance_list))
        .route("/api/v4/audit_events/{event_id}", get(audit::instance_show))
        .route(
            "/api/v4/projects/{id}/hooks",
            get(hooks::list).post(hooks::create),
        )
        .route(
            "/api/v4/projects/{id}/hooks/{hook_id}",
            get(hooks::show).put(hooks::update).delete(hooks::delete),
        )
        .route(
            "/api/v4/projects/{id}/hooks/{hook_id}/events",
            get(hooks::events),
        )
        .route(
            "/api/v4/projects/{id}/hooks/{hook_id}/events/{event_id}/resend",
            post(hooks::resend),
        )
        .route(
            "/api/v4/projects/{id}/hooks/{hook_id}/test/{trigger}",
            post(hooks::test),
        )
        .route("/api/v4/projects/{id}/packages", get(packages::list))
        .route(
            "/api/v4/projects/{id}/packages/{package_id}",
            get(packages::show).delete(packages::delete),
        )
        .route(
            "/api/v4/projects/{id}/packages/{package_id}/package_files",
            get(packages::files),
        )
        .route(
            "/api/v4/projects/{id}/packages/{package_id}/package_files/{file_id}",
            axum::routing::delete(packages::delete_file),
        )
        .route(
            "/api/v4/projects/{id}/packages/ml_models/{*rest}",
            put(ml_files::upload).get(ml_files::download),
        )
        .route(
            "/api/v4/projects/{id}/packages/generic/{*rest}",
            put(generic::upload).get(generic::download),
        )
}

/// The authenticated caller of a GitLab route; bad credentials answer 401 in GitLab's shape.
pub struct GitlabCaller(pub Caller);

impl FromRequestParts<AppState> for GitlabCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        crate::api::auth::caller(state, &parts.headers, parts.uri.query())
            .await
            .map(GitlabCaller)
            .map_err(ApiError)
    }
}

/// The `{id}` of a project route, percent-decoded by us so that a malformed one is a GitLab-shaped
/// 404 rather than a plain-text rejection.
pub struct ProjectRef(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ProjectRef {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let not_found = || ApiError(crate::domain::Error::NotFound("Project"));
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| not_found())?;
        let id = raw
            .iter()
            .find(|(k, _)| *k == "id")
            .map(|(_, v)| v.to_string())
            .ok_or_else(not_found)?;
        let decoded = percent_encoding::percent_decode_str(&id)
            .decode_utf8()
            .map_err(|_| not_found())?;
        Ok(ProjectRef(decoded.into_owned()))
    }
}

/// The page a GitLab listing asks for: `page`/`per_page`, or keyset pagination
/// (`pagination=keyset`, continued with the opaque `cursor` of the previous page's
/// `Link: rel="next"`).
pub fn page_request(
    pagination: Option<&str>,
    cursor: Option<&str>,
    page: Option<usize>,
    per_page: Option<usize>,
) -> Result<PageRequest, Error> {
    match pagination {
        None | Some("offset") => Ok(PageRequest::new(page, per_page)),
        Some("keyset") => {
            let cursor = cursor
                .map(|c| {
                    use base64::Engine;
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(c)
                        .map_err(|_| Error::invalid("cursor"))
                })
                .transpose()?;
            Ok(PageRequest::keyset(per_page, cursor))
        }
        Some(_) => Err(Error::InvalidParam {
            param: "pagination".into(),
            problem: "does not have a valid value".into(),
        }),
    }
}

/// A page of JSON items with GitLab's pagination headers and `Link`.
pub fn paginated(page: Page<Value>, base: &str, path: &str, query: Option<&str>) -> Response {
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    if page.request.is_keyset() {
        // Keyset pagination: only the next page's link, as GitLab sends it.
        set("x-per-page", page.request.per_page.to_string());
        if let Some(cursor) = &page.next_cursor {
            use base64::Engine;
            let mut query_out = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
                if k != "cursor" && k != "page" {
                    query_out.append_pair(&k, &v);
                }
            }
            query_out.append_pair(
                "cursor",
                &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(cursor),
            );
            set(
                "link",
                format!("<{base}{path}?{}>; rel=\"next\"", query_out.finish()),
            );
        }
        return (headers, Json(Value::Array(page.items))).into_response();
    }
    set("x-total", page.total.to_string());
    set("x-total-pages", page.total_pages().to_string());
    set("x-page", page.request.page.to_string());
    set("x-per-page", page.request.per_page.to_string());
    set(
        "x-next-page",
        page.next_page().map(|p| p.to_string()).unwrap_or_default(),
    );
    set(
        "x-prev-page",
        page.prev_page().map(|p| p.to_string()).unwrap_or_default(),
    );
    let kept: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k != "page" && k != "per_page")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let link_to = |n: usize| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("page", &n.to_string());
        query.append_pair("per_page", &page.request.per_page.to_string());
        for (k, v) in &kept {
            query.append_pair(k, v);
        }
        format!("{base}{path}?{}", query.finish())
    };
    let mut links = Vec::new();
    if let Some(prev) = page.prev_page() {
        links.push(format!("<{}>; rel=\"prev\"", link_to(prev)));
    }
    if let Some(next) = page.next_page() {
        links.push(format!("<{}>; rel=\"next\"", link_to(next)));
    }
    links.push(format!("<{}>; rel=\"first\"", link_to(1)));
    links.push(format!("<{}>; rel=\"last\"", link_to(page.total_pages())));
    set("link", links.join(", "));
    (headers, Json(Value::Array(page.items))).into_response()
}
