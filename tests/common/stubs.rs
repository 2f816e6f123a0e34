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
