//! The HTTP layer: one module per surface, each with its own `router()`, composed by [`app`].

pub mod archive;
pub mod auth;
pub mod body_guard;
pub mod body_limit;
pub mod conditional;
pub mod download;
pub mod gitlab;
pub mod integrity;
pub mod loose;
pub mod mlflow;
pub mod oci;
pub mod ops;
pub mod registry;
pub mod tus;
pub mod unread_body;

use std::any::Any;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use http_body_util::BodyExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::state::AppState;

/// The whole application, as the server runs it and as tests drive it.
pub fn app(state: AppState) -> Router {
    with_middleware(routes(), state)
}

/// Every route of the application, without middleware.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(gitlab::router())
        .merge(mlflow::router())
        .merge(registry::router())
        .merge(oci::router())
        .merge(tus::router())
        .merge(ops::router())
        .merge(crate::web::router())
        .fallback(fallback)
}

/// Wraps `routes` in the production middleware, outermost first: tracing, request metrics, a
/// panic in a handler turned into a JSON 500 (the connection and the server carry on), and the
/// pacing of request bodies. `app` is exactly this around [`routes`]; tests wrap their own routes
/// in it to check the real layering.
pub fn with_middleware(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .layer(middleware::from_fn_with_state(
            state.clone(),
            body_guard::pace_bodies,
        ))
        .layer(CatchPanicLayer::custom(answer_panic))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(middleware::from_fn(unread_body::close_if_unread))
        .layer(middleware::from_fn(with_actor))
        .with_state(state)
}

/// Gives each request a slot for its actor, named in the webhook events its changes announce.
/// and the client's address and token, named in the audit events they record.
async fn with_actor(request: Request, next: middleware::Next) -> Response {
    let address = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    crate::domain::audit::with_request(
        address,
        crate::domain::events::with_actor_slot(next.run(request)),
    )
    .await
}

/// The answer to a request whose handler panicked: GitLab's JSON 500, with the panic logged.
fn answer_panic(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = message, "a request handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(serde_json::json!({ "message": "500 Internal Server Error" })),
    )
        .into_response()
}

/// API paths nobody serves get GitLab's JSON 404; every other path may be a project's page.
async fn fallback(state: State<AppState>, request: Request) -> Response {
    let path = request.uri().path();
    if path.starts_with("/api/") || path.starts_with("/-/") {
        return gitlab::ApiError(crate::domain::Error::NotFound("Route")).into_response();
    }
    crate::web::project_pages(state, request).await
}

/// Counts requests, latency and body bytes for `/metrics`.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().to_string();
    let counted_in = state.telemetry.clone();
    let request = request.map(|body| {
        Body::new(body.map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                counted_in.add_bytes_in(data.len() as u64);
            }
            frame
        }))
    });
    let response = next.run(request).await;
    state.telemetry.record_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    let counted_out = state.telemetry.clone();
    response.map(|body| {
        Body::new(body.map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                counted_out.add_bytes_out(data.len() as u64);
            }
            frame
        }))
    })
}
