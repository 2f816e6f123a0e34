//! Who is browsing: the session cookie, the CSRF token forms must carry, and the cookies we set.

use axum::http::{header, HeaderMap, HeaderValue};

use super::error::WebError;
use crate::domain::access::Caller;
use crate::domain::records::User;
use crate::domain::sessions::{same_secret, session_caller, Session};
use crate::state::AppState;

/// The cookie holding a signed-in browser's session secret.
pub const SESSION_COOKIE: &str = "modelyard_session";
/// The cookie holding the CSRF token of the sign-in form (before there is a session).
pub const SIGN_IN_CSRF_COOKIE: &str = "modelyard_sign_in_csrf";
/// The form field every form carries its CSRF token in.
pub const CSRF_FIELD: &str = "authenticity_token";

/// The visitor of a page: anonymous, or signed in with a session.
pub struct Visitor {
    pub caller: Caller,
    pub session: Option<Session>,
    /// Whether the browser reached us over https (cookies then get `Secure`).
    pub secure: bool,
}

impl Visitor {
    /// Reads the session cookie; an unknown or expired session is an anonymous visitor.
    pub fn from_headers(state: &AppState, headers: &HeaderMap) -> Result<Visitor, WebError> {
        let secure = is_https(state, headers);
        let Some(secret) = cookie(headers, SESSION_COOKIE) else {
            return Ok(Visitor::anonymous(secure));
        };
        Ok(match state.registry.session(&secret)? {
            Some((session, user)) => {
                let caller = session_caller(user);
                crate::domain::events::note_actor(&caller);
                Visitor {
                    caller,
                    session: Some(session),
                    secure,
                }
            }
            None => Visitor::anonymous(secure),
        })
    }

    pub fn anonymous(secure: bool) -> Visitor {
        Visitor {
            caller: Caller::Anonymous,
            session: None,
            secure,
        }
    }

    pub fn user(&self) -> Option<&User> {
        self.caller.user()
    }

    /// The token the visitor's forms carry; empty for anonymous visitors, who have no forms
    /// but the sign-in form (which has its own cookie).
    pub fn csrf_token(&self) -> &str {
        self.session
            .as_ref()
            .map(|s| s.csrf_token.as_str())
            .unwrap_or("")
    }

    /// Refuses a form without this session's CSRF token.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), WebError> {
        match (&self.session, presented) {
            (Some(session), Some(token)) if same_secret(&session.csrf_token, token) => Ok(()),
            _ => Err(WebError::Csrf),
        }
    }
}

/// Whether the request came over https: the configured external URL says so, or the proxy in
/// front of us does with `X-Forwarded-Proto`.
pub fn is_https(state: &AppState, headers: &HeaderMap) -> bool {
    let external = state
        .settings
        .external_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    external || forwarded
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_string())
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure over https; `max_age` in
/// seconds, 0 to delete.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; modelyard_session=abc; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
        assert_eq!(cookie(&headers, "a").as_deref(), Some("1"));
    }

    #[test]
    fn cookies_we_set_are_locked_down() {
        let value = set_cookie(SESSION_COOKIE, "s3cret", 60, true);
        let value = value.to_str().unwrap();
        assert!(value.contains("HttpOnly"));
        assert!(value.contains("SameSite=Lax"));
        assert!(value.contains("Secure"));
        let plain = set_cookie(SESSION_COOKIE, "s3cret", 60, false);
        assert!(!plain.to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn forms_need_the_session_token() {
        let anonymous = Visitor::anonymous(false);
        assert!(anonymous.check_csrf(Some("")).is_err());
        let visitor = Visitor {
            caller: Caller::Anonymous,
            session: Some(Session {
                user_id: 1,
                csrf_token: "token".into(),
                created_at: crate::domain::records::now(),
                expires_at: crate::domain::records::now(),
            }),
            secure: false,
        };
        assert!(visitor.check_csrf(Some("token")).is_ok());
        assert!(visitor.check_csrf(Some("other")).is_err());
        assert!(visitor.check_csrf(None).is_err());
    }
}
