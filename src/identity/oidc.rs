//! OIDC ID tokens (trusted publishing): a Bearer JWT whose issuer the server trusts
//! (`--oidc-issuer`), signed with RS256 or ES256 by a key of the issuer's JWKS (found through its
//! discovery document, cached), with `exp`, `nbf`, `iss` and `aud` checked. Which project it may
//! publish to is decided by that project's trust rules (`domain::trust`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::domain::access::{Identity, Machine};
use crate::domain::ci;
use crate::domain::trust::same_issuer;
use crate::domain::Error;

/// How long an issuer's keys are used before they are fetched again.
const KEYS_TTL: Duration = Duration::from_secs(600);
/// An unknown key id fetches the keys again, but not more often than this.
const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 60;
/// No ID token is longer than this.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

struct Keys {
    fetched: Instant,
    set: JwkSet,
}

pub struct OidcIssuers {
    client: reqwest::Client,
    issuers: Vec<String>,
    audiences: Vec<String>,
    keys: Mutex<HashMap<String, Keys>>,
}

/// Whether a Bearer credential is a JWT (three base64url parts, a JSON header) rather than one
/// of our tokens.
pub fn looks_like_jwt(credential: &str) -> bool {
    let parts: Vec<&str> = credential.split('.').collect();
    parts.len() == 3 && parts[0].starts_with("eyJ") && parts.iter().all(|p| !p.is_empty())
}

/// The claims of a JWT, unverified: to learn its issuer before checking the signature.
fn unverified_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Claims with text, number or boolean values, as text (what trust rules compare).
fn text_claims(claims: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
    claims
        .iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((k.clone(), text))
        })
        .collect()
}

fn refused(reason: impl Into<String>) -> Error {
    Error::UnauthorizedBecause(format!("the ID token was refused: {}", reason.into()))
}

impl OidcIssuers {
    pub fn new(client: reqwest::Client, issuers: Vec<String>, audiences: Vec<String>) -> Self {
        OidcIssuers {
            client,
            issuers: issuers
                .into_iter()
                .map(|i| i.trim_end_matches('/').to_string())
                .filter(|i| !i.is_empty())
                .collect(),
            audiences: audiences.into_iter().filter(|a| !a.is_empty()).collect(),
            keys: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_configured(&self) -> bool {
        !self.issuers.is_empty()
    }

    /// Verifies an ID token and returns the identity it proves.
    pub async fn verify(&self, token: &str) -> Result<Machine, Error> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(refused("it is too long"));
        }
        if self.audiences.is_empty() {
            return Err(refused(
                "the server has no audience to check (set --external-url or --oidc-audience)",
            ));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| refused("it is not a JWT"))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(refused(format!(
                "its algorithm {:?} is not RS256 or ES256",
                header.alg
            )));
        }
        let issuer = unverified_claims(token)
            .and_then(|c| c["iss"].as_str().map(str::to_string))
            .ok_or_else(|| refused("it has no iss claim"))?;
        let trusted = self
            .issuers
            .iter()
            .find(|i| same_issuer(i, &issuer))
            .cloned()
            .ok_or_else(|| refused(format!("its issuer {issuer} is not trusted by this server")))?;
        let key = self
            .key_for(&trusted, header.kid.as_deref(), header.alg)
            .await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[issuer.as_str()]);
        validation.set_audience(&self.audiences);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                refused(match e.kind() {
                    ErrorKind::ExpiredSignature => "it has expired".to_string(),
                    ErrorKind::ImmatureSignature => "it is not valid yet (nbf)".to_string(),
                    ErrorKind::InvalidAudience => {
                        format!("its audience (aud) is not {}", self.audiences.join(" or "))
                    }
                    ErrorKind::InvalidIssuer => "its issuer does not match".to_string(),
                    ErrorKind::InvalidSignature => "its signature does not verify".to_string(),
                    ErrorKind::MissingRequiredClaim(claim) => format!("it has no {claim} claim"),
                    other => format!("{other:?}"),
                })
            })?;
        let claims = text_claims(&data.claims);
        Ok(Machine {
            ci: Some(ci::from_oidc_claims(&trusted, &claims)),
            identity: Identity::Oidc {
                issuer: trusted,
                claims,
                project_id: None,
            },
            can_write: true,
        })
    }

    /// The issuer's key for `kid`, from the cached JWKS or a fresh one.
    async fn key_for(
        &self,
        issuer: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, Error> {
        let pick = |set: &JwkSet| -> Option<DecodingKey> {
            let jwk = match kid {
                Some(kid) => set.find(kid),
                None if set.keys.len() == 1 => set.keys.first(),
                None => None,
            }?;
            let fits = match alg {
                Algorithm::RS256 => matches!(
                    jwk.algorithm,
                    jsonwebtoken::jwk::AlgorithmParameters::RSA(_)
                ),
                _ => matches!(
                    jwk.algorithm,
                    jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_)
                ),
            };
            if !fits {
                return None;
            }
            DecodingKey::from_jwk(jwk).ok()
        };
        let (cached, stale) = {
            let keys = self
                .keys
                .lock()
                .map_err(|_| refused("key cache poisoned"))?;
            match keys.get(issuer) {
                Some(k) => (pick(&k.set), k.fetched.elapsed() > KEYS_TTL),
                None => (None, true),
            }
        };
        let may_refetch = {
            let keys = self
                .keys
                .lock()
                .map_err(|_| refused("key cache poisoned"))?;
            keys.get(issuer)
                .is_none_or(|k| k.fetched.elapsed() > REFETCH_AFTER)
        };
        let cached = match cached {
            Some(key) if !stale => return Ok(key),
            other => other,
        };
        if !stale && !may_refetch {
            return Err(refused("its key id is not in the issuer's JWKS"));
        }
        let set = match self.fetch_keys(issuer).await {
            Ok(set) => set,
            // The issuer is down: keys fetched before still verify what they signed.
            Err(error) => return cached.ok_or(error),
        };
        let key = pick(&set);
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(
                issuer.to_string(),
                Keys {
                    fetched: Instant::now(),
                    set,
                },
            );
        }
        key.ok_or_else(|| refused("its key id is not in the issuer's JWKS"))
    }

    async fn fetch_keys(&self, issuer: &str) -> Result<JwkSet, Error> {
        let unreachable = |what: &str| {
            Error::Upstream(format!(
                "the ID token could not be verified: {what} of {issuer} could not be fetched"
            ))
        };
        let discovery_url = format!("{issuer}/.well-known/openid-configuration");
        let discovery = self
            .client
            .get(&discovery_url)
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .ok_or_else(|| unreachable("the discovery document"))?;
        let discovery = super::gitlab_jobs::read_limited(discovery)
            .await
            .ok_or_else(|| unreachable("the discovery document"))?;
        if discovery["issuer"]
            .as_str()
            .is_some_and(|i| !same_issuer(i, issuer))
        {
            return Err(unreachable("a discovery document naming this issuer"));
        }
        let jwks_uri = discovery["jwks_uri"]
            .as_str()
            .ok_or_else(|| unreachable("jwks_uri"))?;
        let jwks = self
            .client
            .get(jwks_uri)
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .ok_or_else(|| unreachable("the JWKS"))?;
        let jwks = super::gitlab_jobs::read_limited(jwks)
            .await
            .ok_or_else(|| unreachable("the JWKS"))?;
        serde_json::from_value(jwks).map_err(|_| unreachable("a readable JWKS"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwts_are_told_from_tokens() {
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"));
        assert!(!looks_like_jwt("glpat-abcdefghijklmnopqrstuvwxyz012345"));
        assert!(!looks_like_jwt("a.b.c"));
    }

    #[test]
    fn claims_become_text() {
        let claims = serde_json::json!({"ref": "main", "ref_protected": true, "project_id": 5, "groups": ["x"]});
        let text = text_claims(claims.as_object().unwrap());
        assert_eq!(text["ref"], "main");
        assert_eq!(text["ref_protected"], "true");
        assert_eq!(text["project_id"], "5");
        assert!(!text.contains_key("groups"));
    }
}
