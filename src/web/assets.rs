//! The stylesheet and the small script, compiled into the binary and served under `/-/static/`.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Paths carry the version so that browsers may cache them for long.
pub const STYLESHEET: &str = concat!("/-/static/modelyard.css?v=", env!("CARGO_PKG_VERSION"));
pub const SCRIPT: &str = concat!("/-/static/modelyard.js?v=", env!("CARGO_PKG_VERSION"));
pub const FAVICON: &str = concat!("/-/static/favicon.svg?v=", env!("CARGO_PKG_VERSION"));

const CSS: &str = include_str!("static/modelyard.css");
const JS: &str = include_str!("static/modelyard.js");
const ICON: &str = include_str!("static/favicon.svg");

/// `/favicon.ico`, where browsers look first: the same icon.
pub async fn favicon() -> Response {
    serve(Path("favicon.svg".to_string())).await
}

pub async fn serve(Path(file): Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "modelyard.css" => (CSS, "text/css; charset=utf-8"),
        "modelyard.js" => (JS, "text/javascript; charset=utf-8"),
        "favicon.svg" => (ICON, "image/svg+xml"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
