//! The web UI: server-rendered pages (maud) for browsing and managing the model registry, with
//! sign-in sessions and CSRF-protected forms. Pages live under GitLab's paths,
//! `/<namespace>/<project>/-/ml/…`; static assets are compiled in.

mod assets;
mod chart;
mod error;
mod form;
mod layout;
mod markdown;
mod pages;
mod session;
pub mod sign_in_guard;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use percent_encoding::percent_decode_str;

pub use error::{WebError, WebResult};
use pages::{auth, candidates, compare, experiments, models, projects, tokens, versions, Ctx};
use session::Visitor;

use crate::domain::Error;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(projects::index))
        .route("/users/sign_in", get(auth::form).post(auth::submit))
        .route("/users/sign_out", post(auth::sign_out))
        .route("/-/static/{file}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
        .route(tokens::PATH, get(tokens::index).post(tokens::create))
        .route(
            &format!("{}/{{id}}/revoke", tokens::PATH),
            post(tokens::revoke),
        )
}

/// A page path split at GitLab's `/-/` marker: the project's path and the segments after it.
#[derive(Debug, PartialEq, Eq)]
pub struct PagePath {
    pub project: String,
    pub segments: Vec<String>,
}

impl PagePath {
    /// `None` when the path cannot name a project page (bad percent-encoding, no project).
    pub fn parse(path: &str) -> Option<PagePath> {
        let (project, rest) = match path.split_once("/-/") {
            Some((project, rest)) => (project, Some(rest)),
            None => (path, None),
        };
        let project = percent_decode_str(project.trim_matches('/'))
            .decode_utf8()
            .ok()?
            .into_owned();
        if project.is_empty() || !project.contains('/') {
            return None;
        }
        let segments = match rest {
            None => Vec::new(),
            Some(rest) => rest
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| percent_decode_str(s).decode_utf8().map(|s| s.into_owned()))
                .collect::<Result<Vec<_>, _>>()
                .ok()?,
        };
        Some(PagePath { project, segments })
    }
}

/// Every page under a project path.
pub async fn project_pages(State(state): State<AppState>, request: Request) -> Response {
    let here = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    match route(&state, request).await {
        Ok(response) => response,
        Err(error) => axum::response::IntoResponse::into_response(error.signing_in_for(&here)),
    }
}

fn number(segment: &str) -> WebResult<u64> {
    segment
        .parse()
        .map_err(|_| WebError::Domain(Error::NotFound("Page")))
}

async fn route(state: &AppState, request: Request) -> WebResult<Response> {
    let page = PagePath::parse(request.uri().path()).ok_or(Error::NotFound("Page"))?;
    let visitor = Visitor::from_headers(state, request.headers())?;
    let ctx = Ctx::new(state, visitor, &page.project, request.headers())?;
    let get = matches!(*request.method(), Method::GET | Method::HEAD);
    let post = *request.method() == Method::POST;
    let segments: Vec<&str> = page.segments.iter().map(String::as_str).collect();
    let query_string = request.uri().query().map(str::to_string);
    let query = query_string.as_deref();
    match segments.as_slice() {
        [] if get => projects::show(&ctx),
        ["settings", "ci_cd"] if get => pages::settings::show(&ctx),
        ["audit_events"] if get => pages::audit::show(&ctx, query),
        ["settings", "ci_cd"] if post => pages::settings::update(&ctx, request).await,
        ["ml", rest @ ..] => {
            ctx.can_read_registry()?;
            match rest {
                ["models"] if get => models::index(&ctx, query),
                ["models"] if post => models::create(&ctx, request).await,
                ["models", "new"] if get => models::new_form(&ctx),
                ["models", id] if get => models::show(&ctx, number(id)?, query),
                ["models", id, "edit"] if get => models::edit_form(&ctx, number(id)?),
                ["models", id, "edit"] if post => models::update(&ctx, number(id)?, request).await,
                ["models", id, "delete"] if post => {
                    models::delete(&ctx, number(id)?, request).await
                }
                ["models", id, "tags"] if post => models::tags(&ctx, number(id)?, request).await,
                ["models", id, "compare"] if get => compare::versions(&ctx, number(id)?, query),
                ["models", id, "versions", "new"] if get => versions::new_form(&ctx, number(id)?),
                ["models", id, "versions"] if post => {
                    versions::create(&ctx, number(id)?, request).await
                }
                ["models", id, "versions", vid] if get => {
                    versions::show(&ctx, number(id)?, number(vid)?, query)
                }
                ["models", id, "versions", vid, action] if post => {
                    let (id, vid) = (number(id)?, number(vid)?);
                    match *action {
                        "delete" => versions::delete(&ctx, id, vid, request).await,
                        "edit" => versions::update(&ctx, id, vid, request).await,
                        "aliases" => versions::set_alias(&ctx, id, vid, request).await,
                        "tags" => versions::tags(&ctx, id, vid, request).await,
                        "files" => versions::add_files(&ctx, id, vid, request).await,
                        _ => Err(Error::NotFound("Page").into()),
                    }
                }
                ["models", id, "versions", vid, "aliases", "delete"] if post => {
                    versions::delete_alias(&ctx, number(id)?, number(vid)?, request).await
                }
                ["models", id, "versions", vid, "files", "delete"] if post => {
                    versions::delete_file(&ctx, number(id)?, number(vid)?, request).await
                }
                ["models", id, "versions", vid, "files", path @ ..] if get && !path.is_empty() => {
                    versions::download(&ctx, number(id)?, number(vid)?, &path.join("/"), request)
                        .await
                }
                ["models", id, "versions", vid, "preview", path @ ..]
                    if get && !path.is_empty() =>
                {
                    versions::preview(&ctx, number(id)?, number(vid)?, &path.join("/")).await
                }
                ["models", id, "versions", vid, "raw", path @ ..] if get && !path.is_empty() => {
                    versions::raw(&ctx, number(id)?, number(vid)?, &path.join("/"), request).await
                }
                ["candidates", iid] if get => candidates::show(&ctx, number(iid)?, query),
                ["candidates", iid, "promote"] if post => {
                    candidates::promote(&ctx, number(iid)?, request).await
                }
                ["candidates", iid, "delete"] if post => {
                    candidates::delete(&ctx, number(iid)?, request).await
                }
                ["candidates", iid, "files", path @ ..] if get && !path.is_empty() => {
                    candidates::download(&ctx, number(iid)?, &path.join("/"), request).await
                }
                ["candidates", iid, "preview", path @ ..] if get && !path.is_empty() => {
                    candidates::preview(&ctx, number(iid)?, &path.join("/")).await
                }
                ["candidates", iid, "raw", path @ ..] if get && !path.is_empty() => {
                    candidates::raw(&ctx, number(iid)?, &path.join("/"), request).await
                }
                ["experiments"] if get => experiments::index(&ctx),
                ["experiments", iid] if get => experiments::show(&ctx, number(iid)?, query),
                ["experiments", iid, "compare"] if get => compare::runs(&ctx, number(iid)?, query),
                _ => Err(Error::NotFound("Page").into()),
            }
        }
        _ => Err(Error::NotFound("Page").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::PagePath;

    #[test]
    fn page_paths_split_at_the_marker() {
        assert_eq!(
            PagePath::parse("/ml-team/fraud/-/ml/models/12"),
            Some(PagePath {
                project: "ml-team/fraud".into(),
                segments: vec!["ml".into(), "models".into(), "12".into()],
            })
        );
        assert_eq!(
            PagePath::parse("/group/sub/proj"),
            Some(PagePath {
                project: "group/sub/proj".into(),
                segments: vec![],
            })
        );
        assert_eq!(
            PagePath::parse("/a/b/-/ml/models/1/versions/2/files/dir/my%20model.bin")
                .unwrap()
                .segments
                .last()
                .map(String::as_str),
            Some("my model.bin")
        );
        assert_eq!(PagePath::parse("/favicon.ico"), None);
        assert_eq!(PagePath::parse("/a/%ff"), None);
    }
}
