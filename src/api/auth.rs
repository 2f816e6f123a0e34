//! Credentials on API requests: `PRIVATE-TOKEN`, `Authorization: Bearer`, and HTTP Basic with
//! the token as the password (the user name is ignored).

use axum::http::{header, HeaderMap};
use base64::Engine;

use crate::domain::access::Caller;
use crate::domain::{Error, Registry};

/// The token secret a request presents: `Ok(None)` for none, `Err` for a malformed header.
pub fn presented_secret(headers: &HeaderMap) -> Result<Option<String>, Error> {
    if let Some(value) = headers.get("private-token") {
        let token = value.to_str().map_err(|_| Error::Unauthorized)?.trim();
        return Ok((!token.is_empty()).then(|| token.to_string()));
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| Error::Unauthorized)?.trim();
    let (scheme, rest) = value.split_once(' ').ok_or(Error::Unauthorized)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Some(rest.to_string()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| Error::Unauthorized)?;
        let decoded = String::from_utf8(decoded).map_err(|_| Error::Unauthorized)?;
        let (_, password) = decoded.split_once(':').ok_or(Error::Unauthorized)?;
        return Ok(Some(password.to_string()));
    }
    Err(Error::Unauthorized)
}

/// Who is calling: anonymous without credentials, `Unauthorized` for bad ones.
pub fn caller(registry: &Registry, headers: &HeaderMap) -> Result<Caller, Error> {
    match presented_secret(headers)? {
        None => Ok(Caller::Anonymous),
        Some(secret) => registry.authenticate(&secret),
    }
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

    #[test]
    fn every_credential_form() {
        assert_eq!(presented_secret(&HeaderMap::new()).unwrap(), None);
        assert_eq!(
            presented_secret(&headers("private-token", "abc"))
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        assert_eq!(
            presented_secret(&headers("authorization", "Bearer abc"))
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("anyone:abc");
        assert_eq!(
            presented_secret(&headers("authorization", &format!("Basic {basic}")))
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        assert!(presented_secret(&headers("authorization", "Basic !!!")).is_err());
        assert!(presented_secret(&headers("authorization", "Digest x")).is_err());
    }
}
