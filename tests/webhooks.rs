//! Webhooks against the real server and a local receiver: every kind of event delivered with a
//! Standard Webhooks signature the test verifies, in order per hook through a receiver outage,
//! after a `kill -9`, resends, test deliveries, the delivery log, Maintainer-only management, and
//! private targets refused without `--webhook-allow-private`.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const SECRET: &str = "s3cret-hook-token";
const FAST: [&str; 5] = [
    "--webhook-allow-private",
    "--webhook-retry-base-ms",
    "50",
    "--webhook-retry-cap-ms",
    "300",
];

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
    fn event(&self) -> String {
        self.json()["event"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// A webhook receiver on 127.0.0.1: records what it gets and answers 200; stopped, its port
/// refuses connections until it is started again on the same port.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Receiver {
        Receiver::on(0, Arc::default())
    }

    fn on(port: u16, got: Arc<Mutex<Vec<Received>>>) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind receiver");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopping) = (got.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Some(request) = read_request(stream) {
                            seen.lock().unwrap().push(request);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Receiver {
            port,
            got,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn down(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }

    fn up(&mut self) {
        let mut again = Receiver::on(self.port, self.got.clone());
        self.stop = again.stop.clone();
        self.thread = again.thread.take();
        // `again` no longer owns the thread: dropping it stops nothing, but its stop flag is
        // ours now, so give it a fresh one first.
        again.stop = Arc::new(AtomicBool::new(false));
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `count` requests arrived (or panics after 20 s).
    fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.received();
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {count} deliveries, got {}: {:?}",
                got.len(),
                got.iter().map(Received::event).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.down();
    }
}

fn read_request(stream: TcpStream) -> Option<Received> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let mut stream = stream;
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        .ok()?;
    Some(Received { headers, body })
}

/// Checks the Standard Webhooks signature and GitLab's headers of a delivery.
fn assert_signed(received: &Received) {
    let id = &received.headers["webhook-id"];
    let timestamp = &received.headers["webhook-timestamp"];
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&received.body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(
        received.headers["webhook-signature"],
        expected,
        "{}",
        received.event()
    );
    let age = chrono::Utc::now().timestamp() - timestamp.parse::<i64>().unwrap();
    assert!((0..120).contains(&age), "timestamp {timestamp}");
    assert_eq!(received.headers["x-gitlab-token"], SECRET);
    let kind = received.json()["object_kind"].as_str().unwrap().to_string();
    assert!(
        received.headers["x-gitlab-event"].ends_with(" Hook"),
        "{:?}",
        received.headers
    );
    assert!(
        received.headers["x-gitlab-event"]
            .to_ascii_lowercase()
            .starts_with(&kind.replace('_', " ")),
        "{:?}",
        received.headers
    );
}

fn mlflow(project_id: u64, rest: &str) -> String {
    format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow/{rest}")
}

fn send_json(api: &Api, method: &str, path: &str, body: Value) -> Reply {
    let bytes = serde_json::to_vec(&body).unwrap();
    api.send(
        method,
        path,
        &[("Content-Type", "application/json")],
        &bytes,
    )
}

fn ok(reply: Reply) -> Reply {
    assert!(reply.status < 300, "{} {}", reply.status, reply.text());
    reply
}

fn create_hook(api: &Api, project_id: u64, url: &str) -> u64 {
    let reply = api.post_json(
        &format!("/api/v4/projects/{project_id}/hooks"),
        json!({ "url": url, "token": SECRET }),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let hook = reply.json();
    assert!(
        hook.get("token").is_none(),
        "the token is never shown: {hook}"
    );
    assert_eq!(hook["model_events"], true);
    hook["id"].as_u64().unwrap()
}

#[test]
fn every_kind_of_event_is_delivered_signed_with_actor_project_and_link() {
    let server = TestServer::start_with(&FAST);
    let receiver = Receiver::start();
    let project_id = project(&server, "hooked", "private");
    let api = Api::root(&server);
    create_hook(&api, project_id, &receiver.url());

    // Models, versions, files, packages.
    ok(api.post_json(&ml(project_id, "models"), json!({ "name": "m" })));
    ok(send_json(
        &api,
        "PATCH",
        &ml(project_id, "models/m"),
        json!({ "description": "d" }),
    ));
    ok(api.post_json(
        &ml(project_id, "models/m/versions"),
        json!({ "version": "1.0.0" }),
    ));
    ok(api.post_json(
        &ml(project_id, "models/m/versions"),
        json!({ "version": "1.1.0" }),
    ));
    ok(send_json(
        &api,
        "PATCH",
        &ml(project_id, "models/m/versions/1.0.0"),
        json!({ "description": "first" }),
    ));
    ok(api.put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/generic/m/1.0.0/w.bin"),
        b"weights",
    ));
    ok(api.put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/generic/gen/1.0/a.txt"),
        b"a",
    ));
    ok(api.put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/generic/gen/1.0/b.txt"),
        b"b",
    ));
    // Tags and aliases through MLflow.
    let tag = json!({ "name": "m", "key": "team", "value": "fraud" });
    ok(api.post_json(&mlflow(project_id, "registered-models/set-tag"), tag));
    let tag = json!({ "name": "m", "key": "team", "value": "risk" });
    ok(api.post_json(&mlflow(project_id, "registered-models/set-tag"), tag));
    ok(send_json(
        &api,
        "DELETE",
        &mlflow(project_id, "registered-models/delete-tag"),
        json!({ "name": "m", "key": "team" }),
    ));
    let alias = |version: &str| json!({ "name": "m", "alias": "champion", "version": version });
    ok(api.post_json(
        &mlflow(project_id, "registered-models/alias"),
        alias("1"), // MLflow's number of 1.0.0
    ));
    ok(api.post_json(&mlflow(project_id, "registered-models/alias"), alias("2")));
    ok(send_json(
        &api,
        "DELETE",
        &mlflow(project_id, "registered-models/alias"),
        json!({ "name": "m", "alias": "champion" }),
    ));
    // Runs.
    let model = api.get(&ml(project_id, "models/m")).json();
    let experiment = model["experiment_iid"].as_u64().unwrap();
    let run = ok(api.post_json(
        &ml(project_id, &format!("experiments/{experiment}/candidates")),
        json!({ "name": "try" }),
    ))
    .json();
    let run_id = run["run_id"].as_str().unwrap().to_string();
    ok(api.post_json(
        &mlflow(project_id, "runs/update"),
        json!({ "run_id": run_id, "status": "FINISHED" }),
    ));
    ok(api.delete(&ml(project_id, &format!("candidates/{}", run["iid"]))));
    // Deletions.
    let packages = api
        .get(&format!(
            "/api/v4/projects/{project_id}/packages?package_name=gen"
        ))
        .json();
    let gen = packages[0]["id"].as_u64().unwrap();
    ok(api.delete(&format!("/api/v4/projects/{project_id}/packages/{gen}")));
    ok(api.delete(&ml(project_id, "models/m/versions/1.1.0")));
    ok(api.delete(&ml(project_id, "models/m")));

    let mut expected: Vec<String> = Vec::new();
    for kind in ["model", "version", "package", "tag", "alias", "run"] {
        for action in ["created", "updated", "deleted"] {
            expected.push(format!("{kind}.{action}"));
        }
    }
    expected.extend(["file.created".to_string(), "file.deleted".to_string()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let got = loop {
        let got = receiver.received();
        let events: Vec<String> = got.iter().map(Received::event).collect();
        if expected.iter().all(|e| events.contains(e)) {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "missing {:?} in {events:?}",
            expected
                .iter()
                .filter(|e| !events.contains(e))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut ids = std::collections::HashSet::new();
    for received in &got {
        assert_signed(received);
        assert!(ids.insert(received.headers["webhook-id"].clone()));
        let body = received.json();
        assert_eq!(body["user"]["username"], "root", "{body}");
        assert_eq!(body["project"]["id"], project_id, "{body}");
        assert!(
            body["url"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{}/api/v4/projects/{project_id}", server.base)),
            "{body}"
        );
        assert!(body["object_attributes"].is_object(), "{body}");
    }
    let first = got.iter().find(|r| r.event() == "model.created").unwrap();
    assert_eq!(first.json()["object_attributes"]["name"], "m");
    let moved = got.iter().find(|r| r.event() == "alias.updated").unwrap();
    assert_eq!(moved.json()["object_attributes"]["version"], "1.1.0");
    assert_eq!(moved.json()["object_attributes"]["alias"], "champion");

    // The delivery log: each delivered once, with code, duration and attempts; paginated.
    let hooks = api
        .get(&format!("/api/v4/projects/{project_id}/hooks"))
        .json();
    let hook_id = hooks[0]["id"].as_u64().unwrap();
    let log = api.get(&format!(
        "/api/v4/projects/{project_id}/hooks/{hook_id}/events?per_page=5"
    ));
    assert_eq!(log.status, 200);
    assert_eq!(log.json().as_array().unwrap().len(), 5);
    let total: usize = log.header("x-total").unwrap().parse().unwrap();
    assert!(total >= got.len(), "{total} < {}", got.len());
    let newest = &log.json()[0];
    assert_eq!(newest["status"], "delivered", "{newest}");
    assert_eq!(newest["response_status"], 200);
    assert_eq!(newest["attempts"], 1);
    assert!(newest["duration_ms"].is_u64());
}

#[test]
fn a_receiver_that_is_down_gets_every_event_in_order_once_it_is_back() {
    let server = TestServer::start_with(&FAST);
    let mut receiver = Receiver::start();
    let project_id = project(&server, "outage", "private");
    let api = Api::root(&server);
    let hook_id = create_hook(&api, project_id, &receiver.url());
    receiver.down();
    ok(api.post_json(&ml(project_id, "models"), json!({ "name": "m" })));
    for minor in 0..8 {
        ok(api.post_json(
            &ml(project_id, "models/m/versions"),
            json!({ "version": format!("1.{minor}.0") }),
        ));
    }
    // Let a few retries fail.
    std::thread::sleep(Duration::from_millis(800));
    let log = api
        .get(&format!(
            "/api/v4/projects/{project_id}/hooks/{hook_id}/events?per_page=100"
        ))
        .json();
    let oldest = log.as_array().unwrap().last().unwrap().clone();
    assert_eq!(oldest["status"], "pending", "{oldest}");
    assert!(oldest["attempts"].as_u64().unwrap() >= 2, "{oldest}");
    assert!(oldest["error"].is_string(), "{oldest}");
    // Only the head of the queue is tried while it fails: the next ones wait their turn.
    let second = &log.as_array().unwrap()[log.as_array().unwrap().len() - 2];
    assert_eq!(second["attempts"], 0, "{second}");
    receiver.up();
    let deadline = Instant::now() + Duration::from_secs(20);
    let got = loop {
        let got = receiver.received();
        if got
            .iter()
            .filter(|r| r.event() == "version.created")
            .count()
            >= 8
        {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "{:?}",
            got.iter().map(Received::event).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let versions: Vec<String> = got
        .iter()
        .filter(|r| r.event() == "version.created")
        .map(|r| {
            r.json()["object_attributes"]["version"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let wanted: Vec<String> = (0..8).map(|m| format!("1.{m}.0")).collect();
    assert_eq!(versions, wanted);
    assert_eq!(got[0].event(), "model.created");
    for received in &got {
        assert_signed(received);
    }
}

#[test]
fn an_event_of_a_change_right_before_kill_9_is_delivered_after_the_restart() {
    let mut server = TestServer::start_with(&FAST);
    let mut receiver = Receiver::start();
    let project_id = project(&server, "crashy", "private");
    let api = Api::root(&server);
    create_hook(&api, project_id, &receiver.url());
    receiver.down();
    ok(api.post_json(&ml(project_id, "models"), json!({ "name": "survivor" })));
    server.kill9();
    receiver.up();
    server.restart();
    let got = receiver.wait_for(1);
    assert_eq!(got[0].event(), "model.created");
    assert_eq!(got[0].json()["object_attributes"]["name"], "survivor");
    assert_signed(&got[0]);
}

#[test]
fn resend_and_test_deliveries_and_hook_management() {
    let server = TestServer::start_with(&FAST);
    let receiver = Receiver::start();
    let project_id = project(&server, "resend", "private");
    let api = Api::root(&server);
    let hook_id = create_hook(&api, project_id, &receiver.url());
    let hooks = format!("/api/v4/projects/{project_id}/hooks");

    ok(api.post_json(&ml(project_id, "models"), json!({ "name": "m" })));
    let first = receiver.wait_for(1)[0].clone();
    let log = api.get(&format!("{hooks}/{hook_id}/events")).json();
    let event_id = log[0]["id"].as_u64().unwrap();
    let resent = api.post_json(
        &format!("{hooks}/{hook_id}/events/{event_id}/resend"),
        json!({}),
    );
    assert_eq!(resent.status, 201, "{}", resent.text());
    let got = receiver.wait_for(2);
    assert_eq!(got[1].body, first.body, "the same event again");
    assert_eq!(got[1].headers["webhook-id"], first.headers["webhook-id"]);
    assert_signed(&got[1]);
    assert_eq!(
        api.post_json(&format!("{hooks}/{hook_id}/events/999/resend"), json!({}))
            .status,
        404
    );

    // GitLab's test delivery.
    let tested = api.post_json(&format!("{hooks}/{hook_id}/test/version_events"), json!({}));
    assert_eq!(tested.status, 201, "{}", tested.text());
    let got = receiver.wait_for(3);
    assert_eq!(got[2].event(), "version.test");
    assert_eq!(got[2].headers["x-gitlab-event"], "Version Hook");
    let pushed = api.post_json(&format!("{hooks}/{hook_id}/test/push_events"), json!({}));
    assert_eq!(pushed.status, 201);
    assert_eq!(
        receiver.wait_for(4)[3].headers["x-gitlab-event"],
        "Push Hook"
    );
    let bad = api.post_json(&format!("{hooks}/{hook_id}/test/nonsense"), json!({}));
    assert_eq!(bad.status, 400, "{}", bad.text());

    // Flags: a hook without model events gets none; show, update, delete.
    let updated = api.put_json(
        &format!("{hooks}/{hook_id}"),
        json!({ "model_events": false, "name": "ci" }),
    );
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_eq!(updated.json()["model_events"], false);
    assert_eq!(updated.json()["version_events"], true);
    assert_eq!(updated.json()["name"], "ci");
    ok(api.post_json(&ml(project_id, "models"), json!({ "name": "quiet" })));
    ok(api.post_json(
        &ml(project_id, "models/quiet/versions"),
        json!({ "version": "1.0.0" }),
    ));
    let got = receiver.wait_for(5);
    assert!(got
        .iter()
        .all(|r| !r.event().starts_with("model.")
            || r.json()["object_attributes"]["name"] != "quiet"));
    assert_eq!(api.get(&format!("{hooks}/{hook_id}")).json()["name"], "ci");
    assert_eq!(api.delete(&format!("{hooks}/{hook_id}")).status, 204);
    assert_eq!(api.get(&format!("{hooks}/{hook_id}")).status, 404);
    assert_eq!(api.get(&hooks).json(), json!([]));
}

#[test]
fn hooks_are_for_maintainers() {
    let server = TestServer::start_with(&FAST);
    let project_id = project(&server, "guarded", "private");
    let (developer_id, developer) = user_with_token(&server, "dev", "api");
    add_member(&server, project_id, developer_id, 30);
    let (maintainer_id, maintainer) = user_with_token(&server, "boss", "api");
    add_member(&server, project_id, maintainer_id, 40);
    let (_, stranger) = user_with_token(&server, "stranger", "api");
    let hooks = format!("/api/v4/projects/{project_id}/hooks");
    let body = json!({ "url": "http://127.0.0.1:9/x" });
    let dev = Api::with_token(&server, &developer);
    assert_eq!(dev.post_json(&hooks, body.clone()).status, 403);
    assert_eq!(dev.get(&hooks).status, 403);
    assert_eq!(Api::with_token(&server, &stranger).get(&hooks).status, 404);
    assert_eq!(Api::anonymous(&server).get(&hooks).status, 404);
    let made = Api::with_token(&server, &maintainer).post_json(&hooks, body);
    assert_eq!(made.status, 201, "{}", made.text());
    assert_eq!(
        Api::with_token(&server, &maintainer)
            .get(&hooks)
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn private_targets_are_refused_without_the_flag() {
    let server = TestServer::start();
    let project_id = project(&server, "strict", "private");
    let api = Api::root(&server);
    let hooks = format!("/api/v4/projects/{project_id}/hooks");
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.0.0.5/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
    ] {
        let refused = api.post_json(&hooks, json!({ "url": url }));
        assert_eq!(refused.status, 400, "{url}: {}", refused.text());
        let message = refused.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(message.contains("--webhook-allow-private"), "{message}");
    }
    for url in ["ftp://example.com/x", "not a url"] {
        assert_eq!(
            api.post_json(&hooks, json!({ "url": url })).status,
            400,
            "{url}"
        );
    }
    assert_eq!(api.post_json(&hooks, json!({})).status, 400);
    assert_eq!(api.get(&hooks).json(), json!([]));
}
