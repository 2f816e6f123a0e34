//! What every handler can reach.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::api::body_guard::BodyPace;
use crate::domain::Registry;
use crate::identity::Identities;
use crate::telemetry::Telemetry;
use crate::web::sign_in_guard::{SignInGuard, SignInPolicy};

#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub telemetry: Arc<Telemetry>,
    pub settings: Arc<Settings>,
    /// Throttles and locks of the sign-in form.
    pub sign_in: Arc<SignInGuard>,
    /// The verifiers of CI identities (GitLab job tokens, OIDC ID tokens).
    pub identities: Arc<Identities>,
}

#[derive(Debug, Default)]
pub struct Settings {
    /// The URL clients reach us at, for links in responses; else taken from `Host`.
    pub external_url: Option<String>,
    /// False once shutdown has begun: `/-/readiness` answers 503.
    pub ready: AtomicBool,
    /// How fast request bodies must arrive.
    pub body_pace: BodyPace,
    /// How many sign-in attempts are let through to a password check.
    pub sign_in: SignInPolicy,
}

impl Settings {
    pub fn new(external_url: Option<String>) -> Self {
        Settings {
            external_url: external_url.map(|u| u.trim_end_matches('/').to_string()),
            ready: AtomicBool::new(true),
            body_pace: BodyPace::default(),
            sign_in: SignInPolicy::default(),
        }
    }

    pub fn with_body_pace(self, body_pace: BodyPace) -> Self {
        Settings { body_pace, ..self }
    }

    pub fn with_sign_in(self, sign_in: SignInPolicy) -> Self {
        Settings { sign_in, ..self }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn stop_accepting(&self) {
        self.ready.store(false, Ordering::Relaxed);
    }
}

impl AppState {
    pub fn new(registry: Arc<Registry>, settings: Settings) -> Self {
        AppState {
            registry,
            telemetry: Arc::new(Telemetry::default()),
            sign_in: Arc::new(SignInGuard::new(settings.sign_in)),
            settings: Arc::new(settings),
            identities: Arc::new(Identities::none()),
        }
    }

    pub fn with_identities(self, identities: Identities) -> Self {
        AppState {
            identities: Arc::new(identities),
            ..self
        }
    }

    /// The base URL for links: the configured external URL, else `http://<Host>`.
    pub fn base_url(&self, headers: &axum::http::HeaderMap) -> String {
        if let Some(url) = &self.settings.external_url {
            return url.clone();
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}")
    }
}
