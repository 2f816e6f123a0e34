//! Operations: health, readiness and Prometheus metrics. On the main address `/metrics` is for
//! administrators; `--metrics-listen` serves it to anyone on an address of its own (for a
//! scraper on a private network), see [`metrics_router`].

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::api::gitlab::{ApiError, GitlabCaller};
use crate::domain::access::may_read_instance_metrics;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/-/health", get(health))
        .route("/-/readiness", get(readiness))
        .route("/metrics", get(admin_metrics))
}

/// What the separate metrics address serves: `/metrics` to anyone who can reach it.
pub fn metrics_router() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError(crate::domain::Error::NotFound("Route")) })
}

async fn health() -> impl IntoResponse {
    (StatusCode::OK, "GitLab OK")
}

/// 200 when the server takes requests and its stores take writes; 503 with the reason when
/// shutting down or when a write probe of the blob store or the metadata store fails (a full
/// disk, say).
async fn readiness(State(state): State<AppState>) -> impl IntoResponse {
    let failed = |reason: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "failed", "message": reason, "master_check": [{ "status": "failed", "message": reason }] }),
            ),
        )
    };
    if !state.settings.is_ready() {
        return failed("the server is shutting down".into());
    }
    let registry = state.registry.clone();
    match tokio::task::spawn_blocking(move || registry.storage_writable()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "master_check": [{ "status": "ok" }] })),
        ),
        Ok(Err(reason)) => failed(reason),
        Err(error) => failed(format!("the storage check was interrupted: {error}")),
    }
}

async fn admin_metrics(
    state: State<AppState>,
    GitlabCaller(caller): GitlabCaller,
) -> Result<Response, ApiError> {
    may_read_instance_metrics(&caller)?;
    Ok(metrics(state).await.into_response())
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.telemetry.render();
    text.push_str(&format!(
        "# HELP modelyard_metadata_flushes_total Durable metadata writes (group-committed flushes).\n\
         # TYPE modelyard_metadata_flushes_total counter\n\
         modelyard_metadata_flushes_total {}\n",
        state.registry.flush_count()
    ));
    if let Some(statements) = state.registry.metadata_round_trips() {
        text.push_str(&format!(
            "# HELP modelyard_metadata_statements_total Statements sent to the PostgreSQL metadata database (round trips).\n\
             # TYPE modelyard_metadata_statements_total counter\n\
             modelyard_metadata_statements_total {statements}\n"
        ));
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}
