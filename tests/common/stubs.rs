//! Stand-ins for the services a CI identity is verified with, speaking their real wire format:
//! a GitLab answering `GET /api/v4/job` for job tokens, and an OIDC issuer serving its
//! discovery document and JWKS and minting ID tokens with its own key pair.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// Runs a router on 127.0.0.1 with an ephemeral port in a background runtime; returns its base
/// URL. The runtime lives as long as the test process.
fn serve(router: Router) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("stub runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind stub");
            let addr = listener.local_addr().expect("stub address");
            tx.send(format!("http://{addr}"))
                .expect("send stub address");
            axum::serve(listener, router).await.expect("stub serves");
        });
    });
    rx.recv().expect("stub started")
}

#[derive(Default)]
struct GitlabState {
    /// token → the job document `GET /api/v4/job` answers (absent: 401).
    jobs: Mutex<HashMap<String, Value>>,
    calls: AtomicUsize,
}

/// A GitLab that knows some job tokens.
pub struct StubGitlab {
    pub url: String,
    state: Arc<GitlabState>,
}

async fn job(State(state): State<Arc<GitlabState>>, headers: HeaderMap) -> Response {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let token = headers
        .get("job-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match state.jobs.lock().expect("jobs").get(token) {
        Some(job) => Json(job.clone()).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "401 Unauthorized"})),
        )
            .into_response(),
    }
}

impl StubGitlab {
    pub fn start() -> StubGitlab {
        let state = Arc::new(GitlabState::default());
        let router = Router::new()
            .route("/api/v4/job", get(job))
            .with_state(state.clone());
        StubGitlab {
            url: serve(router),
            state,
        }
    }

    /// Registers a running job of `project_path` (GitLab project `project_id`) for `token`, as
    /// GitLab's `GET /api/v4/job` describes one; returns the document.
    pub fn add_job(&self, token: &str, job_id: u64, project_id: u64, project_path: &str) -> Value {
        let url = &self.url;
        let job = json!({
            "id": job_id,
            "name": "train",
            "stage": "deploy",
            "status": "running",
            "ref": "main",
            "tag": false,
            "web_url": format!("{url}/{project_path}/-/jobs/{job_id}"),
            "pipeline": {
                "id": job_id + 1000,
                "iid": 7,
                "project_id": project_id,
                "sha": "0123456789abcdef0123456789abcdef01234567",
                "ref": "main",
                "status": "running",
                "source": "push",
                "web_url": format!("{url}/{project_path}/-/pipelines/{}", job_id + 1000),
            },
            "user": { "id": 9, "username": "alice", "name": "Alice" },
            "commit": { "id": "0123456789abcdef0123456789abcdef01234567" },
        });
        self.state
            .jobs
            .lock()
            .expect("jobs")
            .insert(token.to_string(), job.clone());
        job
    }

    /// The job of `token` finishes: GitLab answers 401 from now on.
    pub fn finish(&self, token: &str) {
        self.state.jobs.lock().expect("jobs").remove(token);
    }

    /// How many times `/api/v4/job` was asked.
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }
}

/// The test-only RSA key of the stub issuer (`tests/fixtures/oidc-test-rsa.pem`, made with
/// `openssl genpkey -algorithm RSA`; it signs nothing but these tests' ID tokens) and its
/// modulus in hex.
const RSA_PEM: &str = include_str!("../fixtures/oidc-test-rsa.pem");
const RSA_MODULUS_HEX: &str = include_str!("../fixtures/oidc-test-rsa.modulus");

#[derive(Default)]
struct IssuerState {
    issuer: Mutex<String>,
    jwks: Mutex<Value>,
    jwks_fetches: AtomicUsize,
    ec_pkcs8: Mutex<Vec<u8>>,
    /// The claims GitHub's `ACTIONS_ID_TOKEN_REQUEST_URL` answers with (`aud` from the request).
    actions_claims: Mutex<Value>,
}

/// The bearer token a job presents to `ACTIONS_ID_TOKEN_REQUEST_URL`.
pub const ACTIONS_REQUEST_TOKEN: &str = "actions-request-token";

fn sign_es256(pkcs8: &[u8], claims: &Value) -> String {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ec-1".to_string());
    encode(&header, claims, &EncodingKey::from_ec_der(pkcs8)).expect("sign ID token")
}

/// GitHub Actions' token endpoint: `GET <url>&audience=<aud>` with the job's request token.
async fn actions_token(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(&format!("bearer {ACTIONS_REQUEST_TOKEN}")));
    if !authorized {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut claims = state.actions_claims.lock().expect("claims").clone();
    claims["aud"] = json!(query.get("audience").cloned().unwrap_or_default());
    claims["iss"] = json!(state.issuer.lock().expect("issuer").clone());
    let pkcs8 = state.ec_pkcs8.lock().expect("key").clone();
    Json(json!({ "count": 1, "value": sign_es256(&pkcs8, &claims) })).into_response()
}

/// An OIDC issuer: discovery document, JWKS with an ES256 key (made at start) and an RS256
/// key, and ID tokens signed with either.
pub struct StubIssuer {
    pub url: String,
    state: Arc<IssuerState>,
    ec_pkcs8: Vec<u8>,
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn discovery(State(state): State<Arc<IssuerState>>) -> Json<Value> {
    let issuer = state.issuer.lock().expect("issuer").clone();
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/oauth/discovery/keys"),
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
    }))
}

async fn jwks(State(state): State<Arc<IssuerState>>) -> Json<Value> {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    Json(state.jwks.lock().expect("jwks").clone())
}

/// Seconds since the epoch.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

impl StubIssuer {
    pub fn start() -> StubIssuer {
        use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("EC key")
            .as_ref()
            .to_vec();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
            .expect("EC key pair");
        let point = pair.public_key().as_ref();
        let (x, y) = (&point[1..33], &point[33..65]);
        let modulus = hex::decode(RSA_MODULUS_HEX.trim()).expect("modulus hex");
        let state = Arc::new(IssuerState::default());
        *state.jwks.lock().expect("jwks") = json!({ "keys": [
            { "kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y), "kid": "ec-1", "alg": "ES256", "use": "sig" },
            { "kty": "RSA", "n": b64(&modulus), "e": "AQAB", "kid": "rsa-1", "alg": "RS256", "use": "sig" },
        ]});
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/oauth/discovery/keys", get(jwks))
            .route("/actions/token", get(actions_token))
            .with_state(state.clone());
        *state.ec_pkcs8.lock().expect("key") = pkcs8.clone();
        let url = serve(router);
        *state.issuer.lock().expect("issuer") = url.clone();
        StubIssuer {
            url,
            state,
            ec_pkcs8: pkcs8,
        }
    }

    /// An ID token with these claims (`iss` added when absent), signed with the ES256 key, or
    /// the RS256 one when `rsa`.
    pub fn mint(&self, mut claims: Value, rsa: bool) -> String {
        use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
        if claims.get("iss").is_none() {
            claims["iss"] = json!(self.url);
        }
        let (alg, kid, key) = if rsa {
            (
                Algorithm::RS256,
                "rsa-1",
                EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).expect("RSA key"),
            )
        } else {
            (
                Algorithm::ES256,
                "ec-1",
                EncodingKey::from_ec_der(&self.ec_pkcs8),
            )
        };
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_string());
        encode(&header, &claims, &key).expect("sign ID token")
    }

    /// GitLab CI's ID token claims for a job of `project_path` on `git_ref`, for `aud`, valid
    /// for five minutes.
    pub fn gitlab_claims(&self, aud: &str, project_path: &str, git_ref: &str) -> Value {
        let now = now_s();
        json!({
            "iss": self.url,
            "aud": aud,
            "sub": format!("project_path:{project_path}:ref_type:branch:ref:{git_ref}"),
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
            "namespace_path": project_path.split('/').next().unwrap_or(""),
            "project_path": project_path,
            "project_id": "42",
            "user_login": "alice",
            "pipeline_id": "555",
            "pipeline_source": "push",
            "job_id": "5151",
            "ref": git_ref,
            "ref_type": "branch",
            "ref_protected": "true",
            "sha": "fedcba9876543210fedcba9876543210fedcba98",
        })
    }

    /// What `ACTIONS_ID_TOKEN_REQUEST_URL` (`<url>/actions/token?api-version=2.0`) answers
    /// with from now on: these claims, valid for five minutes, for the audience asked for.
    pub fn set_actions_claims(&self, mut claims: Value) {
        let now = now_s();
        claims["iat"] = json!(now);
        claims["nbf"] = json!(now - 5);
        claims["exp"] = json!(now + 300);
        *self.state.actions_claims.lock().expect("claims") = claims;
    }

    pub fn actions_request_url(&self) -> String {
        format!("{}/actions/token?api-version=2.0", self.url)
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }
}
