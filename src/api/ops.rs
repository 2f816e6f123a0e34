//! Operations: health, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/-/health", get(health))
        .route("/-/readiness", get(readiness))
        .route("/metrics", get(metrics))
}

async fn health() -> impl IntoResponse {
    (StatusCode::OK, "GitLab OK")
}

async fn readiness(State(state): State<AppState>) -> impl IntoResponse {
    if state.settings.is_ready() && state.registry.storage_ok() {
        (
            StatusCode::OK,
            Json(json!({ "status": "ok", "master_check": [{ "status": "ok" }] })),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "failed" })),
        )
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.telemetry.render();
    text.push_str(&format!(
        "# HELP modelyard_metadata_flushes_total Durable metadata writes (group-committed flushes).\n\
         # TYPE modelyard_metadata_flushes_total counter\n\
         modelyard_metadata_flushes_total {}\n",
        state.registry.flush_count()
    ));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}
