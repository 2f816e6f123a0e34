//! Signing in with username and password, and signing out.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::see_other;
use crate::domain::sessions::{random_token, same_secret, SESSION_LIFETIME_DAYS};
use crate::domain::Error;
use crate::state::AppState;
use crate::web::error::{WebError, WebResult};
use crate::web::form::Form;
use crate::web::layout;
use crate::web::session::{
    cookie, set_cookie, Visitor, CSRF_FIELD, SESSION_COOKIE, SIGN_IN_CSRF_COOKIE,
};
use crate::web::sign_in_guard::Refusal;

#[derive(Debug, Deserialize)]
pub struct SignInQuery {
    return_to: Option<String>,
}

/// Only local paths: never send a browser to another site after signing in.
fn safe_return(return_to: Option<&str>) -> String {
    match return_to {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

fn sign_in_page(
    visitor: &Visitor,
    token: &str,
    return_to: &str,
    username: &str,
    problem: Option<&str>,
) -> Markup {
    let body = html! {
        div.sign-in {
            h1 { "Sign in to modelyard" }
            div.card {
                @if let Some(problem) = problem {
                    div.alert.error role="alert" { (problem) }
                }
                form.form method="post" action="/users/sign_in" {
                    input type="hidden" name=(CSRF_FIELD) value=(token);
                    input type="hidden" name="return_to" value=(return_to);
                    label for="username" { "Username" }
                    input #username type="text" name="username" value=(username) autocomplete="username" required autofocus;
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                    button.primary type="submit" { "Sign in" }
                }
            }
            p.muted { "API clients use personal access tokens instead of passwords." }
        }
    };
    layout::page("Sign in", visitor, &[], body)
}

pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Response {
    let return_to = safe_return(query.return_to.as_deref());
    let visitor = match Visitor::from_headers(&state, &headers) {
        Ok(visitor) => visitor,
        Err(error) => return error.into_response(),
    };
    if visitor.user().is_some() {
        return see_other(&return_to);
    }
    let token = cookie(&headers, SIGN_IN_CSRF_COOKIE).unwrap_or_else(random_token);
    let mut response = layout::ok(sign_in_page(&visitor, &token, &return_to, "", None));
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SIGN_IN_CSRF_COOKIE, &token, 3600, visitor.secure),
    );
    response
}

pub async fn submit(State(state): State<AppState>, request: Request) -> Response {
    match sign_in(&state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn sign_in(state: &AppState, request: Request) -> WebResult<Response> {
    let headers = request.headers().clone();
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let visitor = Visitor::from_headers(state, &headers)?;
    let bytes = axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .map_err(|_| WebError::BadForm("The form is too large or was cut off.".into()))?;
    let form = Form::parse(&bytes);
    let expected = cookie(&headers, SIGN_IN_CSRF_COOKIE).unwrap_or_default();
    let presented = form.get(CSRF_FIELD).unwrap_or_default();
    if expected.is_empty() || !same_secret(&expected, presented) {
        return Err(WebError::Csrf);
    }
    let return_to = safe_return(form.get("return_to"));
    let username = form.text("username").unwrap_or_default();
    let password = form.get("password").unwrap_or_default().to_string();
    let refused = |refusal: Refusal| {
        let mut response = layout::respond(
            StatusCode::TOO_MANY_REQUESTS,
            sign_in_page(
                &visitor,
                &expected,
                &return_to,
                &username,
                Some(refusal.message()),
            ),
        );
        let seconds = refusal.retry_after().as_secs_f64().ceil().max(1.0) as u64;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        response
    };
    if let Err(refusal) = state.sign_in.admit(address, &username) {
        return Ok(refused(refusal));
    }
    let registry = state.registry.clone();
    let attempt = {
        let username = username.clone();
        let checked = state
            .sign_in
            .run_check(move || registry.sign_in(&username, &password))
            .await;
        match checked {
            Ok(attempt) => attempt,
            Err(refusal) => return Ok(refused(refusal)),
        }
    };
    match &attempt {
        Ok(_) => state.sign_in.succeeded(&username),
        Err(Error::Unauthorized) => state.sign_in.failed(&username, address),
        Err(_) => {}
    }
    let signed_in = match &attempt {
        Ok(opened) => Some(opened.user.clone()),
        Err(_) => None,
    };
    if attempt.is_ok() || matches!(attempt, Err(Error::Unauthorized)) {
        state
            .registry
            .audit_sign_in(&username, signed_in, address)
            .await?;
    }
    match attempt {
        Ok(opened) => {
            let mut response = see_other(&return_to);
            let headers = response.headers_mut();
            headers.append(
                header::SET_COOKIE,
                set_cookie(
                    SESSION_COOKIE,
                    &opened.secret,
                    SESSION_LIFETIME_DAYS * 86_400,
                    visitor.secure,
                ),
            );
            headers.append(
                header::SET_COOKIE,
                set_cookie(SIGN_IN_CSRF_COOKIE, "", 0, visitor.secure),
            );
            Ok(response)
        }
        Err(Error::Unauthorized) => Ok(layout::respond(
            StatusCode::UNAUTHORIZED,
            sign_in_page(
                &visitor,
                &expected,
                &return_to,
                &username,
                Some("Invalid username or password."),
            ),
        )),
        Err(other) => Err(other.into()),
    }
}

pub async fn sign_out(State(state): State<AppState>, request: Request) -> Response {
    let result = async {
        let headers = request.headers().clone();
        let visitor = Visitor::from_headers(&state, &headers)?;
        crate::web::form::read(&visitor, request).await?;
        if let Some(secret) = cookie(&headers, SESSION_COOKIE) {
            state.registry.sign_out(&secret)?;
        }
        let mut response = see_other("/");
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(SESSION_COOKIE, "", 0, visitor.secure),
        );
        Ok::<_, WebError>(response)
    };
    match result.await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_return;

    #[test]
    fn return_paths_stay_local() {
        assert_eq!(safe_return(Some("/a/b/-/ml/models")), "/a/b/-/ml/models");
        assert_eq!(safe_return(Some("//evil.example")), "/");
        assert_eq!(safe_return(Some("https://evil.example")), "/");
        assert_eq!(safe_return(Some("/\\evil.example")), "/");
        assert_eq!(safe_return(None), "/");
    }
}
