//! The page shell every page shares: head, top bar with the visitor, breadcrumbs, and the
//! headers every HTML answer carries.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::assets;
use super::session::{Visitor, CSRF_FIELD};

/// A link in the breadcrumb trail.
pub struct Crumb {
    pub label: String,
    pub href: String,
}

impl Crumb {
    pub fn new(label: impl Into<String>, href: impl Into<String>) -> Crumb {
        Crumb {
            label: label.into(),
            href: href.into(),
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · modelyard" }
            link rel="icon" type="image/svg+xml" href=(assets::FAVICON);
            link rel="stylesheet" href=(assets::STYLESHEET);
            script src=(assets::SCRIPT) defer {}
        }
    }
}

fn brand() -> Markup {
    html! { a.brand href="/" { span.logo { "◆" } " modelyard" } }
}

/// A full page for `visitor`.
pub fn page(title: &str, visitor: &Visitor, crumbs: &[Crumb], body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip-link href="#main" { "Skip to content" }
                header.topbar {
                    (brand())
                    nav.topnav aria-label="Main" { a href="/" { "Projects" } }
                    div.account {
                        @if let Some(user) = visitor.user() {
                            a.tokens-link href="/-/user_settings/personal_access_tokens" { "Access tokens" }
                            span.who { (user.name) " " span.muted { "@" (user.username) } }
                            form.inline method="post" action="/users/sign_out" {
                                (csrf_input(visitor))
                                button.link-button type="submit" { "Sign out" }
                            }
                        } @else {
                            a.button.small href="/users/sign_in" { "Sign in" }
                        }
                    }
                }
                main.content #main tabindex="-1" {
                    @if !crumbs.is_empty() {
                        nav.crumbs aria-label="Breadcrumb" {
                            @for (i, crumb) in crumbs.iter().enumerate() {
                                @if i > 0 { span.sep { "/" } }
                                a href=(crumb.href) { (crumb.label) }
                            }
                        }
                    }
                    (body)
                }
            }
        }
    }
}

/// A page without the visitor's details (error pages).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip-link href="#main" { "Skip to content" }
                header.topbar {
                    (brand())
                    nav.topnav aria-label="Main" { a href="/" { "Projects" } }
                    div.account { a.button.small href="/users/sign_in" { "Sign in" } }
                }
                main.content #main tabindex="-1" { (body) }
            }
        }
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_input(visitor: &Visitor) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(visitor.csrf_token()); }
}

/// A POST button in its own small form, with an optional confirmation question.
pub fn post_button(
    visitor: &Visitor,
    action: &str,
    label: &str,
    class: &str,
    confirm: Option<&str>,
) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=[confirm] {
            (csrf_input(visitor))
            button class=(class) type="submit" { (label) }
        }
    }
}

/// A code block with a copy button.
pub fn snippet(code: &str) -> Markup {
    html! {
        div.snippet {
            pre { code { (code) } }
            button.copy type="button" data-copy=(code) title="Copy to clipboard" { "Copy" }
        }
    }
}

/// `<time>` with the full timestamp as tooltip.
pub fn time(at: &chrono::DateTime<chrono::Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) title=(at.format("%Y-%m-%d %H:%M:%S UTC")) {
            (at.format("%Y-%m-%d %H:%M"))
        }
    }
}

/// A time given in milliseconds since the epoch.
pub fn time_ms(ms: i64) -> Markup {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(at) => time(&at),
        None => html! { span.muted { "–" } },
    }
}

/// Bytes as people read them.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Raw HTML that has already been sanitized.
pub fn trusted(html: String) -> Markup {
    PreEscaped(html)
}

/// An HTML answer with the headers every page carries: no framing, no sniffing, scripts and
/// styles only from us, and no caching of pages that show private data.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// A 200 page.
pub fn ok(markup: Markup) -> Response {
    respond(StatusCode::OK, markup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
