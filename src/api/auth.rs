//! Credentials on API requests: `PRIVATE-TOKEN`, `Authorization: Bearer`, and HTTP Basic with
//! the token as the password (the user name is ignored) for personal, project and deploy
//! tokens (`DEPLOY-TOKEN` too); GitLab CI job tokens as `JOB-TOKEN`, `job_token=` or Basic
//! `gitlab-ci-token:<token>`; OIDC ID tokens as a Bearer JWT. An administrator's token with the
//! `sudo` scope acts as another user with `Sudo: <username or id>` or `sudo=`.

use axum::http::{header, HeaderMap};
use base64::Engine;

use crate::domain::access::Caller;
use crate::domain::records::Scope;
use crate::domain::Error;
use crate::identity::oidc::looks_like_jwt;
use crate::state::AppState;

/// A credential as presented, before it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A personal, project or deploy token.
    Token(String),
    /// A GitLab CI job token.
    JobToken(String),
    /// An OIDC ID token (a JWT).
    IdToken(String),
}

/// The user name of Basic auth that marks a job token, as GitLab's.
const JOB_TOKEN_USER: &str = "gitlab-ci-token";

fn header_value(headers: &HeaderMap, name: &str) -> Result<Option<String>, Error> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => {
            let value = value.to_str().map_err(|_| Error::Unauthorized)?.trim();
            Ok((!value.is_empty()).then(|| value.to_string()))
        }
    }
}

fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// The credential a request presents: `Ok(None)` for none, `Err` for a malformed header.
pub fn presented(headers: &HeaderMap, query: Option<&str>) -> Result<Option<Credential>, Error> {
    if let Some(token) = header_value(headers, "private-token")? {
        return Ok(Some(Credential::Token(token)));
    }
    if let Some(token) = header_value(headers, "job-token")? {
        return Ok(Some(Credential::JobToken(token)));
    }
    if let Some(token) = header_value(headers, "deploy-token")? {
        return Ok(Some(Credential::Token(token)));
    }
    if let Some(value) = header_value(headers, header::AUTHORIZATION.as_str())? {
        let (scheme, rest) = value.split_once(' ').ok_or(Error::Unauthorized)?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            if looks_like_jwt(rest) {
                return Ok(Some(Credential::IdToken(rest.to_string())));
            }
            return Ok(Some(Credential::Token(rest.to_string())));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| Error::Unauthorized)?;
            let decoded = String::from_utf8(decoded).map_err(|_| Error::Unauthorized)?;
            let (user, password) = decoded.split_once(':').ok_or(Error::Unauthorized)?;
            if user == JOB_TOKEN_USER {
                return Ok(Some(Credential::JobToken(password.to_string())));
            }
            return Ok(Some(Credential::Token(password.to_string())));
        }
        return Err(Error::Unauthorized);
    }
    if let Some(token) = query_value(query, "job_token") {
        return Ok(Some(Credential::JobToken(token)));
    }
    if let Some(token) = query_value(query, "private_token") {
        return Ok(Some(Credential::Token(token)));
    }
    Ok(None)
}

/// The token secret a request presents, for routes about the token itself
/// (`/personal_access_tokens/self`).
pub fn presented_secret(headers: &HeaderMap) -> Result<Option<String>, Error> {
    Ok(match presented(headers, None)? {
        Some(Credential::Token(secret)) => Some(secret),
        _ => None,
    })
}

/// Who is calling: anonymous without credentials, `Unauthorized` for bad ones (recorded in
/// the audit log).
pub async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Caller, Error> {
    match identify(state, headers, query).await {
        Ok(caller) => {
            crate::domain::events::note_actor(&caller);
            Ok(caller)
        }
        Err(error) => {
            if let Some(reason) = refused_credential(&error) {
                if let Err(audit_error) = state.registry.audit_failed_authentication(&reason).await
                {
                    tracing::warn!(error = %audit_error, "recording a failed authentication");
                }
            }
            Err(error)
        }
    }
}

/// Why credentials were refused, when `error` is such a refusal.
fn refused_credential(error: &Error) -> Option<String> {
    match error {
        Error::Unauthorized => Some("invalid or expired credentials".to_string()),
        Error::UnauthorizedBecause(reason) => Some(reason.clone()),
        _ => None,
    }
}

async fn identify(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Caller, Error> {
    let caller = match presented(headers, query)? {
        None => Caller::Anonymous,
        Some(Credential::Token(secret)) => {
            let caller = state.registry.authenticate(&secret)?;
            return sudo(state, caller, &secret, headers, query);
        }
        Some(Credential::JobToken(token)) => {
            Caller::Machine(Box::new(state.identities.gitlab.verify(&token).await?))
        }
        Some(Credential::IdToken(token)) => {
            if !state.identities.oidc.is_configured() {
                // None are trusted: one of our tokens after all, or nothing.
                return state.registry.authenticate(&token).map_err(|e| match e {
                    Error::Unauthorized => Error::UnauthorizedBecause(
                        "ID tokens are not accepted: the server has no --oidc-issuer".into(),
                    ),
                    other => other,
                });
            }
            Caller::Machine(Box::new(state.identities.oidc.verify(&token).await?))
        }
    };
    if sudo_target(headers, query)?.is_some() {
        return Err(Error::denied("Must be admin to use sudo"));
    }
    Ok(caller)
}

fn sudo_target(headers: &HeaderMap, query: Option<&str>) -> Result<Option<String>, Error> {
    Ok(header_value(headers, "sudo")?.or_else(|| query_value(query, "sudo")))
}

/// `Sudo`: an administrator's token with the `sudo` scope acts as the named user, with the
/// token's other scopes.
fn sudo(
    state: &AppState,
    caller: Caller,
    secret: &str,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Caller, Error> {
    let Some(target) = sudo_target(headers, query)? else {
        return Ok(caller);
    };
    if !caller.is_admin() {
        return Err(Error::denied("Must be admin to use sudo"));
    }
    let scopes = state.registry.scopes_of(secret)?;
    if !scopes.contains(&Scope::Sudo) {
        return Err(Error::denied(
            "Insufficient scope: sudo needs a token with the sudo scope",
        ));
    }
    let user = match target.parse::<u64>() {
        Ok(id) => state.registry.user(id),
        Err(_) => state.registry.user_by_name(&target),
    }
    .map_err(|_| {
        Error::NotFoundMessage(format!("404 User with ID or username '{target}' Not Found"))
    })?;
    Ok(Caller::from_user(user, &scopes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    fn token(s: &str) -> Option<Credential> {
        Some(Credential::Token(s.into()))
    }

    #[test]
    fn every_credential_form() {
        assert_eq!(presented(&HeaderMap::new(), None).unwrap(), None);
        assert_eq!(
            presented(&headers("private-token", "abc"), None).unwrap(),
            token("abc")
        );
        assert_eq!(
            presented(&headers("authorization", "Bearer abc"), None).unwrap(),
            token("abc")
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("anyone:abc");
        assert_eq!(
            presented(&headers("authorization", &format!("Basic {basic}")), None).unwrap(),
            token("abc")
        );
        assert!(presented(&headers("authorization", "Basic !!!"), None).is_err());
        assert!(presented(&headers("authorization", "Digest x"), None).is_err());
        assert_eq!(
            presented(&headers("deploy-token", "gldt-x"), None).unwrap(),
            token("gldt-x")
        );
    }

    #[test]
    fn job_tokens_and_id_tokens() {
        let job = Some(Credential::JobToken("jt".into()));
        assert_eq!(presented(&headers("job-token", "jt"), None).unwrap(), job);
        let basic = base64::engine::general_purpose::STANDARD.encode("gitlab-ci-token:jt");
        assert_eq!(
            presented(&headers("authorization", &format!("Basic {basic}")), None).unwrap(),
            job
        );
        assert_eq!(
            presented(&HeaderMap::new(), Some("a=1&job_token=jt")).unwrap(),
            job
        );
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln";
        assert_eq!(
            presented(&headers("authorization", &format!("Bearer {jwt}")), None).unwrap(),
            Some(Credential::IdToken(jwt.into()))
        );
    }
}
