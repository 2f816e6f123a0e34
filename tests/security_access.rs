//! Security hardening of access and operations (issue #10 items 2, 3, 13, 15 and 16): each test
//! performs the attack against the real server.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use common::*;
use serde_json::json;

fn member_path(project_id: u64, user_id: u64) -> String {
    format!("/api/v4/projects/{project_id}/members/{user_id}")
}

fn level_of(server: &TestServer, project_id: u64, user_id: u64) -> Option<u64> {
    let reply = Api::root(server).get(&member_path(project_id, user_id));
    match reply.status {
        200 => reply.json()["access_level"].as_u64(),
        404 => None,
        other => panic!("member lookup answered {other}: {}", reply.text()),
    }
}

fn assert_denied(reply: &Reply, needle: &str) {
    assert_eq!(reply.status, 403, "{}", reply.text());
    let message = reply.json()["message"].as_str().unwrap_or("").to_string();
    assert!(
        message.starts_with("403 Forbidden") && message.contains(needle),
        "message {message:?} should say {needle:?}"
    );
}

/// A project in alice's namespace that she (not an admin) owns, with bob as Maintainer and carol
/// as Developer. Returns (project id, alice, bob, carol) with each user's (id, token).
struct Team {
    project: u64,
    alice: (u64, String),
    bob: (u64, String),
    carol: (u64, String),
}

fn team(server: &TestServer) -> Team {
    let alice = user_with_token(server, "alice", "api");
    let bob = user_with_token(server, "bob", "api");
    let carol = user_with_token(server, "carol", "api");
    let created = Api::with_token(server, &alice.1).post_json(
        "/api/v4/projects",
        json!({ "name": "fraud", "visibility": "private" }),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let project = created.json()["id"].as_u64().unwrap();
    let owner = Api::with_token(server, &alice.1);
    for (id, level) in [(bob.0, 40), (carol.0, 30)] {
        let added = owner.post_json(
            &format!("/api/v4/projects/{project}/members"),
            json!({ "user_id": id, "access_level": level }),
        );
        assert_eq!(added.status, 201, "{}", added.text());
    }
    Team {
        project,
        alice,
        bob,
        carol,
    }
}

// ---- item 2: Maintainer → Owner escalation ----

#[test]
fn a_maintainer_cannot_make_themselves_owner() {
    let server = TestServer::start();
    let t = team(&server);
    let bob = Api::with_token(&server, &t.bob.1);
    let reply = bob.put_json(
        &member_path(t.project, t.bob.0),
        json!({ "access_level": 50 }),
    );
    assert_denied(&reply, "above your own");
    assert_eq!(level_of(&server, t.project, t.bob.0), Some(40));
    // ... and so cannot go on to delete the project.
    assert_eq!(
        bob.delete(&format!("/api/v4/projects/{}", t.project))
            .status,
        403
    );
    assert_eq!(
        Api::root(&server)
            .get(&format!("/api/v4/projects/{}", t.project))
            .status,
        200
    );
}

#[test]
fn a_maintainer_cannot_promote_another_member_to_owner() {
    let server = TestServer::start();
    let t = team(&server);
    let bob = Api::with_token(&server, &t.bob.1);
    let reply = bob.put_json(
        &member_path(t.project, t.carol.0),
        json!({ "access_level": 50 }),
    );
    assert_denied(&reply, "above your own");
    assert_eq!(level_of(&server, t.project, t.carol.0), Some(30));
    // Up to their own level is still theirs to give.
    let reply = bob.put_json(
        &member_path(t.project, t.carol.0),
        json!({ "access_level": 40 }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(level_of(&server, t.project, t.carol.0), Some(40));
}

#[test]
fn a_maintainer_cannot_add_an_owner_or_anyone_above_their_level() {
    let server = TestServer::start();
    let t = team(&server);
    let (dave, _) = user_with_token(&server, "dave", "api");
    let bob = Api::with_token(&server, &t.bob.1);
    let members = format!("/api/v4/projects/{}/members", t.project);
    let reply = bob.post_json(&members, json!({ "user_id": dave, "access_level": 50 }));
    assert_denied(&reply, "above your own");
    let reply = bob.post_json(
        &members,
        json!({ "username": "dave", "access_level": "owner" }),
    );
    assert_denied(&reply, "above your own");
    assert_eq!(level_of(&server, t.project, dave), None);
    // A Developer adds nobody at all (unchanged: 403).
    let carol = Api::with_token(&server, &t.carol.1);
    let reply = carol.post_json(&members, json!({ "user_id": dave, "access_level": 10 }));
    assert_eq!(reply.status, 403, "{}", reply.text());
    // A Maintainer still adds members up to Maintainer.
    let reply = bob.post_json(&members, json!({ "user_id": dave, "access_level": 40 }));
    assert_eq!(reply.status, 201, "{}", reply.text());
}

#[test]
fn a_maintainer_cannot_demote_or_remove_the_owner_and_then_delete_the_project() {
    let server = TestServer::start();
    let t = team(&server);
    let bob = Api::with_token(&server, &t.bob.1);
    let reply = bob.put_json(
        &member_path(t.project, t.alice.0),
        json!({ "access_level": 10 }),
    );
    assert_denied(&reply, "Only Owners");
    let reply = bob.delete(&member_path(t.project, t.alice.0));
    assert_denied(&reply, "Only Owners");
    assert_eq!(level_of(&server, t.project, t.alice.0), Some(50));
    let reply = bob.delete(&format!("/api/v4/projects/{}", t.project));
    assert_eq!(reply.status, 403, "{}", reply.text());
}

#[test]
fn a_maintainer_cannot_demote_or_remove_a_second_owner_either() {
    let server = TestServer::start();
    let t = team(&server);
    let (dave, _) = user_with_token(&server, "dave", "api");
    let alice = Api::with_token(&server, &t.alice.1);
    let reply = alice.post_json(
        &format!("/api/v4/projects/{}/members", t.project),
        json!({ "user_id": dave, "access_level": 50 }),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let bob = Api::with_token(&server, &t.bob.1);
    let reply = bob.put_json(&member_path(t.project, dave), json!({ "access_level": 30 }));
    assert_denied(&reply, "Only Owners");
    let reply = bob.delete(&member_path(t.project, dave));
    assert_denied(&reply, "Only Owners");
    assert_eq!(level_of(&server, t.project, dave), Some(50));
}

#[test]
fn owners_manage_owners_but_the_last_owner_stays() {
    let server = TestServer::start();
    let t = team(&server);
    let alice = Api::with_token(&server, &t.alice.1);
    let root = Api::root(&server);
    let me = member_path(t.project, t.alice.0);
    // The last Owner can neither step down nor leave, and not even an admin can do it to them.
    for api in [&alice, &root] {
        let reply = api.put_json(&me, json!({ "access_level": 40 }));
        assert_denied(&reply, "last Owner");
        let reply = api.delete(&me);
        assert_denied(&reply, "last Owner");
    }
    assert_eq!(level_of(&server, t.project, t.alice.0), Some(50));
    // Setting the last Owner to Owner again is no demotion.
    assert_eq!(
        alice.put_json(&me, json!({ "access_level": 50 })).status,
        200
    );

    // An Owner promotes a Maintainer to Owner; then either may step down.
    let reply = alice.put_json(
        &member_path(t.project, t.bob.0),
        json!({ "access_level": 50 }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = alice.put_json(&me, json!({ "access_level": 40 }));
    assert_eq!(reply.status, 200, "{}", reply.text());
    // bob is now the last Owner: alice, a Maintainer again, can't touch him.
    let reply = alice.delete(&member_path(t.project, t.bob.0));
    assert_denied(&reply, "Only Owners");
    let reply = root.delete(&member_path(t.project, t.bob.0));
    assert_denied(&reply, "last Owner");
    // An admin may change Owners while another one remains.
    let reply = root.put_json(&me, json!({ "access_level": 50 }));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = root.delete(&member_path(t.project, t.bob.0));
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert_eq!(level_of(&server, t.project, t.alice.0), Some(50));
}

#[test]
fn the_admin_cli_keeps_the_last_owner() {
    let mut server = TestServer::start();
    server.stop();
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(server.admin(&["user", "create", "alice", "--password", "a-long-password"]));
    ok(server.admin(&["project", "create", "ml-team/fraud", "--owner", "alice"]));
    for attempt in [
        vec!["member", "add", "ml-team/fraud", "alice", "developer"],
        vec!["member", "remove", "ml-team/fraud", "alice"],
    ] {
        let refused = server.admin(&attempt);
        assert!(!refused.status.success(), "{attempt:?} succeeded");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("last Owner"), "{attempt:?}: {stderr}");
    }
    // The CLI is an admin: it adds and removes Owners while one remains.
    ok(server.admin(&["member", "add", "ml-team/fraud", "root", "owner"]));
    ok(server.admin(&["member", "remove", "ml-team/fraud", "alice"]));
    server.restart();
    let members = Api::root(&server).get("/api/v4/projects/ml-team%2Ffraud/members");
    let members = members.json();
    let members = members.as_array().unwrap();
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0]["username"], "root");
    assert_eq!(members[0]["access_level"], 50);
}

// ---- item 3: namespace squatting ----

#[test]
fn a_user_cannot_create_projects_in_someone_elses_namespace() {
    let server = TestServer::start();
    let (alice_id, _) = user_with_token(&server, "alice", "api");
    let (_, mallory) = user_with_token(&server, "mallory", "api");
    let mallory = Api::with_token(&server, &mallory);
    let attempts = [
        json!({ "name": "fraud", "namespace": "alice" }),
        json!({ "name": "fraud", "namespace": "ALICE" }),
        json!({ "name": "fraud", "namespace_path": "alice" }),
        json!({ "name": "fraud", "namespace_id": alice_id }),
        json!({ "name": "prod-models", "namespace": "root" }),
        json!({ "name": "prod-models", "namespace_id": 1 }),
        json!({ "name": "fraud", "namespace": "ml-team" }),
        json!({ "name": "fraud", "namespace": "mallory/sub" }),
    ];
    for attempt in attempts {
        let reply = mallory.post_json("/api/v4/projects", attempt.clone());
        assert_denied(&reply, "own namespace");
    }
    let root = Api::root(&server);
    for path in ["alice%2Ffraud", "root%2Fprod-models", "ml-team%2Ffraud"] {
        assert_eq!(
            root.get(&format!("/api/v4/projects/{path}")).status,
            404,
            "{path} was created"
        );
    }
    // A namespace id that is nobody's stays a 404.
    let reply = mallory.post_json(
        "/api/v4/projects",
        json!({ "name": "x", "namespace_id": 999_999 }),
    );
    assert_eq!(reply.status, 404, "{}", reply.text());
}

#[test]
fn users_create_in_their_own_namespace_and_admins_anywhere() {
    let server = TestServer::start();
    let (alice_id, alice) = user_with_token(&server, "alice", "api");
    let alice = Api::with_token(&server, &alice);
    for (body, path) in [
        (json!({ "name": "one" }), "alice/one"),
        (json!({ "name": "two", "namespace": "alice" }), "alice/two"),
        (
            json!({ "name": "three", "namespace": "Alice" }),
            "alice/three",
        ),
        (
            json!({ "name": "four", "namespace_id": alice_id }),
            "alice/four",
        ),
    ] {
        let reply = alice.post_json("/api/v4/projects", body);
        assert_eq!(reply.status, 201, "{}", reply.text());
        assert_eq!(reply.json()["path_with_namespace"], path);
    }
    let root = Api::root(&server);
    for body in [
        json!({ "name": "by-admin", "namespace": "alice" }),
        json!({ "name": "fraud", "namespace": "ml-team" }),
    ] {
        let reply = root.post_json("/api/v4/projects", body);
        assert_eq!(reply.status, 201, "{}", reply.text());
    }
}

// ---- item 13: a private data dir ----

/// The binary started by hand, for what TestServer does not show: stderr, and the lines before
/// the listening address.
struct Spawned {
    child: Child,
    /// stdout lines up to and including `modelyard listening on ...`.
    lines: Vec<String>,
    base: String,
}

impl Spawned {
    fn start(data_dir: &Path, args: &[&str], stderr: Stdio) -> Spawned {
        let child = Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("MODELYARD_ROOT_TOKEN", ROOT_TOKEN)
            .env("MODELYARD_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn modelyard");
        Spawned::from_child(child)
    }

    /// Waits for a started server to print its address.
    fn from_child(mut child: Child) -> Spawned {
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout).lines();
        let mut lines = Vec::new();
        let base = loop {
            let line = reader
                .next()
                .expect("server exited before listening")
                .expect("read stdout");
            lines.push(line.clone());
            if let Some(rest) = line.strip_prefix("modelyard listening on ") {
                break rest.trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in reader {});
        Spawned { child, lines, base }
    }

    fn printed(&self, prefix: &str) -> Option<String> {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|s| s.trim().to_string())
    }

    /// Stops the server and returns what it wrote to stderr (when piped).
    fn stop_and_read_stderr(mut self) -> String {
        let _ = self.child.kill();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let _ = self.child.wait();
        stderr
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every entry under `dir` (itself included) with its mode.
fn modes_under(dir: &Path) -> Vec<(std::path::PathBuf, u32)> {
    let mut out = vec![(dir.to_path_buf(), mode(dir))];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(modes_under(&path));
        } else {
            out.push((path.clone(), mode(&path)));
        }
    }
    out
}

#[test]
fn a_fresh_data_dir_is_private_to_the_server_user() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("modelyard-data");
    let server = Spawned::start(&data, &[], Stdio::piped());
    let project_id = {
        let api = |path: &str, body: serde_json::Value| {
            raw(
                &server.base,
                "POST",
                path,
                &[
                    ("PRIVATE-TOKEN", ROOT_TOKEN),
                    ("Content-Type", "application/json"),
                ],
                body.to_string().as_bytes(),
            )
        };
        let created = api("/api/v4/projects", json!({ "name": "p" }));
        assert_eq!(created.status, 201, "{}", created.text());
        let user = api(
            "/api/v4/users",
            json!({ "username": "alice", "name": "A", "password": "correct horse battery" }),
        );
        assert_eq!(user.status, 201, "{}", user.text());
        created.json()["id"].as_u64().unwrap()
    };
    let upload = raw(
        &server.base,
        "PUT",
        &format!("/api/v4/projects/{project_id}/packages/generic/p/1.0.0/f.bin"),
        &[("PRIVATE-TOKEN", ROOT_TOKEN)],
        b"some bytes",
    );
    assert_eq!(upload.status, 201, "{}", upload.text());
    let stderr = server.stop_and_read_stderr();
    assert!(
        !stderr.contains("chmod 700"),
        "warned about a fresh dir: {stderr}"
    );

    assert_eq!(mode(&data), 0o700);
    let entries = modes_under(&data);
    assert!(
        entries
            .iter()
            .any(|(p, _)| p.starts_with(data.join("blobs"))),
        "{entries:?}"
    );
    assert!(entries.len() > 5, "{entries:?}");
    for (path, mode) in &entries {
        assert_eq!(
            mode & 0o077,
            0,
            "{} has mode {mode:o}: readable by others",
            path.display()
        );
    }

    // Admin commands on a new data dir create it private too.
    let other = parent.path().join("made-by-admin");
    let out = Command::new(binary())
        .args(["user", "list", "--data-dir"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (path, mode) in modes_under(&other) {
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", path.display());
    }
}

#[test]
fn serve_warns_about_a_data_dir_others_can_read() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("shared-data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = Spawned::start(&data, &[], Stdio::piped());
    let stderr = server.stop_and_read_stderr();
    assert!(
        stderr.contains("has mode 755")
            && stderr.contains(&format!("chmod 700 {}", data.display())),
        "no warning on stderr: {stderr}"
    );
    assert!(stderr.contains("WARN"), "no tracing warning: {stderr}");

    // With warnings filtered out of the log, it still reaches stderr.
    let quiet = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("MODELYARD_ROOT_TOKEN", ROOT_TOKEN)
        .env("MODELYARD_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let server = Spawned::from_child(quiet);
    let stderr = server.stop_and_read_stderr();
    assert!(
        stderr.contains("warning: the data dir") && stderr.contains("chmod 700"),
        "no warning on stderr: {stderr}"
    );
    // The operator's choice is theirs to change: the mode is left alone.
    assert_eq!(mode(&data), 0o755);
}

// ---- item 15: /metrics ----

#[test]
fn metrics_on_the_main_address_are_for_admins() {
    let server = TestServer::start();
    let anonymous = Api::anonymous(&server).get("/metrics");
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    assert_eq!(anonymous.json()["message"], "401 Unauthorized");
    let (_, user) = user_with_token(&server, "alice", "api");
    let reply = Api::with_token(&server, &user).get("/metrics");
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert_eq!(reply.json()["message"], "403 Forbidden");
    let bad = Api::with_token(&server, "not-a-token").get("/metrics");
    assert_eq!(bad.status, 401);
    let admin = Api::root(&server).get("/metrics");
    assert_eq!(admin.status, 200, "{}", admin.text());
    assert!(admin.text().contains("modelyard_http_requests_total"));
    // A read-only token of an admin reads metrics too.
    let token = Api::root(&server).post_json(
        "/api/v4/users/1/personal_access_tokens",
        json!({ "name": "scraper", "scopes": ["read_api"] }),
    );
    assert_eq!(token.status, 201, "{}", token.text());
    let token = token.json()["token"].as_str().unwrap().to_string();
    assert_eq!(Api::with_token(&server, &token).get("/metrics").status, 200);
}

#[test]
fn a_separate_metrics_address_serves_anyone() {
    let data = tempfile::tempdir().unwrap();
    let server = Spawned::start(
        data.path(),
        &["--metrics-listen", "127.0.0.1:0"],
        Stdio::inherit(),
    );
    let metrics_base = server
        .printed("modelyard metrics on ")
        .expect("the metrics address is printed");
    assert_ne!(metrics_base, server.base);
    let reply = raw(&metrics_base, "GET", "/metrics", &[], b"");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.text().contains("modelyard_metadata_flushes_total"));
    // Only metrics: the API is not on that address.
    let reply = raw(&metrics_base, "GET", "/api/v4/projects", &[], b"");
    assert_eq!(reply.status, 404, "{}", reply.text());
    // The main address still keeps them from anonymous callers.
    assert_eq!(raw(&server.base, "GET", "/metrics", &[], b"").status, 401);

    // The same through the environment variable.
    let data = tempfile::tempdir().unwrap();
    let child = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("MODELYARD_METRICS_LISTEN", "127.0.0.1:0")
        .env("MODELYARD_ROOT_TOKEN", ROOT_TOKEN)
        .env("MODELYARD_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let server = Spawned::from_child(child);
    let metrics_base = server
        .printed("modelyard metrics on ")
        .expect("the metrics address is printed");
    let reply = raw(&metrics_base, "GET", "/metrics", &[], b"");
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[test]
fn shutdown_stops_the_metrics_address_too() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Spawned::start(
        data.path(),
        &["--metrics-listen", "127.0.0.1:0"],
        Stdio::inherit(),
    );
    let started = std::time::Instant::now();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(server.child.id().to_string())
        .status();
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

// ---- item 16: a panicking handler ----

/// Stands for any handler bug; only this test's router has it.
async fn buggy_handler() -> &'static str {
    panic!("a handler bug")
}

#[tokio::test]
async fn a_panicking_handler_answers_json_500_through_the_production_layers() {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use modelyard::domain::Limits;
    use modelyard::state::{AppState, Settings};
    use tower::ServiceExt;

    let dir = tempfile::tempdir().unwrap();
    let registry = modelyard::server::open_registry(dir.path(), Limits::default(), 8).unwrap();
    let state = AppState::new(Arc::new(registry), Settings::new(None));
    let routes = modelyard::api::routes().route("/test-only/panic", get(buggy_handler));
    let app = modelyard::api::with_middleware(routes, state.clone());

    let response = app
        .clone()
        .oneshot(
            Request::get("/test-only/panic")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{:?}",
        response.headers()
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body, json!({ "message": "500 Internal Server Error" }));

    // The same router keeps serving, and the request metrics saw the 500.
    let health = app
        .oneshot(Request::get("/-/health").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let metrics = state.telemetry.render();
    assert!(
        metrics.contains("route=\"/test-only/panic\",method=\"GET\",status=\"500\"} 1"),
        "{metrics}"
    );
}
