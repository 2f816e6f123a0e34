//! CI identities verified against services outside the registry: GitLab job tokens (a GitLab's
//! `GET /api/v4/job`) and OIDC ID tokens (an issuer's discovery document and JWKS). Each
//! verifier caches what it learns for a short while and turns a credential into a
//! [`crate::domain::access::Machine`]; what a project lets that identity do is the domain's
//! business (`domain::trust`).

pub mod gitlab_jobs;
pub mod oidc;

use std::time::Duration;

pub use gitlab_jobs::GitlabJobs;
pub use oidc::OidcIssuers;

/// How long a call to a GitLab or an issuer may take.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client both verifiers use (rustls, no proxies from the environment).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(UPSTREAM_TIMEOUT)
        .connect_timeout(UPSTREAM_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("modelyard/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Both verifiers, as the API's authentication uses them.
pub struct Identities {
    pub gitlab: GitlabJobs,
    pub oidc: OidcIssuers,
}

impl Identities {
    pub fn new(gitlab_urls: Vec<String>, issuers: Vec<String>, audiences: Vec<String>) -> Self {
        let client = http_client();
        Identities {
            gitlab: GitlabJobs::new(client.clone(), gitlab_urls),
            oidc: OidcIssuers::new(client, issuers, audiences),
        }
    }

    /// No GitLab and no issuer: job tokens and ID tokens are refused.
    pub fn none() -> Self {
        Identities::new(Vec::new(), Vec::new(), Vec::new())
    }
}

/// A small bounded map of entries that expire: what the verifiers cache.
pub(crate) struct ExpiringCache<V> {
    entries: std::collections::HashMap<[u8; 32], (std::time::Instant, V)>,
    capacity: usize,
}

impl<V: Clone> ExpiringCache<V> {
    pub fn new(capacity: usize) -> Self {
        ExpiringCache {
            entries: std::collections::HashMap::new(),
            capacity,
        }
    }

    pub fn get(&mut self, key: &[u8; 32]) -> Option<V> {
        let now = std::time::Instant::now();
        match self.entries.get(key) {
            Some((until, value)) if *until > now => Some(value.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn insert(&mut self, key: [u8; 32], value: V, ttl: Duration) {
        let now = std::time::Instant::now();
        if self.entries.len() >= self.capacity {
            self.entries.retain(|_, (until, _)| *until > now);
            if self.entries.len() >= self.capacity {
                self.entries.clear();
            }
        }
        self.entries.insert(key, (now + ttl, value));
    }
}

/// The cache key of a secret: its sha256, so that no secret is kept in memory longer than the
/// request.
pub(crate) fn secret_key(secret: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_entries_expire_and_the_cache_stays_bounded() {
        let mut cache = ExpiringCache::new(2);
        cache.insert(secret_key("a"), 1, Duration::from_secs(60));
        cache.insert(secret_key("b"), 2, Duration::ZERO);
        assert_eq!(cache.get(&secret_key("a")), Some(1));
        assert_eq!(cache.get(&secret_key("b")), None);
        cache.insert(secret_key("c"), 3, Duration::from_secs(60));
        cache.insert(secret_key("d"), 4, Duration::from_secs(60));
        assert!(cache.entries.len() <= 2);
    }
}
