//! Resource exhaustion, tried as an attacker would against the real server: sign-in floods,
//! huge multipart fields and JSON bodies, a disk that fills and is freed, idle connection
//! floods, and requests refused before their body was read.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// Reads one response (head and a Content-Length body) off a kept-alive connection; `None`
/// when the server closed the connection first.
fn read_one(stream: &mut TcpStream) -> Option<Reply> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let length: usize = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let chunked = text
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        // Chunk sizes and data, up to the last (empty) chunk.
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                stream.read_exact(&mut byte).ok()?;
                line.push(byte[0]);
            }
            let size =
                usize::from_str_radix(String::from_utf8_lossy(&line).trim().split(';').next()?, 16)
                    .ok()?;
            let mut chunk = vec![0u8; size + 2];
            stream.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body = vec![0u8; length];
        stream.read_exact(&mut body).ok()?;
    }
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Reply {
        status,
        headers,
        body,
    })
}

fn host(server: &TestServer) -> String {
    server.base.trim_start_matches("http://").to_string()
}

// ---------------------------------------------------------------------------------------------
// Item 11: a request refused before its body was read says `Connection: close`.

#[test]
fn a_put_refused_before_its_body_is_read_says_connection_close() {
    let server = TestServer::start();
    let project_id = project(&server, "early", "private");
    let host = host(&server);
    let mut stream = TcpStream::connect(&host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = vec![b'x'; 4096];
    let path = format!("/api/v4/projects/{project_id}/packages/generic/early/1.0.0/f.bin");
    write!(
        stream,
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body).unwrap();
    let refused = read_one(&mut stream).expect("an answer to the anonymous upload");
    assert_eq!(refused.status, 401, "{}", refused.text());
    // Either the server says it will close, or it answers the next request on the connection.
    let says_close = refused
        .header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    if !says_close {
        write!(stream, "GET /-/health HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        let next = read_one(&mut stream);
        assert!(
            next.is_some_and(|r| r.status == 200),
            "the 401 had no `Connection: close` and the next request on the connection got no answer"
        );
    }

    // A request whose body was read keeps its connection.
    let token = ROOT_TOKEN;
    let mut stream = TcpStream::connect(&host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nPRIVATE-TOKEN: {token}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body).unwrap();
    let stored = read_one(&mut stream).expect("an answer to the upload");
    assert_eq!(stored.status, 201, "{}", stored.text());
    assert_ne!(stored.header("connection"), Some("close"));
    write!(stream, "GET /-/health HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    assert_eq!(read_one(&mut stream).map(|r| r.status), Some(200));
}

#[test]
fn a_post_to_a_missing_route_with_a_body_says_connection_close() {
    let server = TestServer::start();
    let host = host(&server);
    let mut stream = TcpStream::connect(&host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = vec![b'{'; 2048];
    write!(
        stream,
        "POST /api/v4/no/such/route HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body).unwrap();
    let refused = read_one(&mut stream).expect("an answer");
    assert_eq!(refused.status, 404, "{}", refused.text());
    let says_close = refused
        .header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    if !says_close {
        write!(stream, "GET /-/health HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        assert!(
            read_one(&mut stream).is_some_and(|r| r.status == 200),
            "the 404 had no `Connection: close` and the next request got no answer"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Shared: probing the server while an attack runs.

/// What the server looked like while `attack` ran: the slowest `/-/health` answer, the median
/// one, and the largest RSS seen.
struct Observed {
    slowest_health: Duration,
    median_health: Duration,
    peak_rss: u64,
    probes: usize,
}

/// Runs `attack` on its own thread and probes `/-/health` (and RSS) every 20 ms until it ends.
fn observe_during(server: &TestServer, attack: impl FnOnce() + Send + 'static) -> Observed {
    let attacker = std::thread::spawn(attack);
    let mut times = Vec::new();
    let mut peak_rss = 0;
    while !attacker.is_finished() {
        let started = Instant::now();
        let health = try_raw(&server.base, "GET", "/-/health", &[], b"");
        let took = started.elapsed();
        assert!(
            health.as_ref().is_ok_and(|r| r.status == 200),
            "/-/health failed during the attack: {health:?}"
        );
        times.push(took);
        peak_rss = peak_rss.max(server.rss_bytes());
        std::thread::sleep(Duration::from_millis(20));
    }
    attacker.join().expect("the attack thread panicked");
    peak_rss = peak_rss.max(server.rss_bytes());
    times.sort();
    Observed {
        slowest_health: times.last().copied().unwrap_or_default(),
        median_health: times.get(times.len() / 2).copied().unwrap_or_default(),
        peak_rss,
        probes: times.len(),
    }
}

/// Sends one request with `body` as fast as the server takes it, and returns the status (or
/// `None` when the server refused by closing the connection mid-body, which is fine too).
fn blast(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    chunked: bool,
) -> Option<u16> {
    let mut stream = TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
    } else {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    }
    stream.write_all(head.as_bytes()).ok()?;
    let mut sent_all = true;
    for piece in body.chunks(64 << 10) {
        let written = if chunked {
            stream
                .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                .and_then(|_| stream.write_all(piece))
                .and_then(|_| stream.write_all(b"\r\n"))
        } else {
            stream.write_all(piece)
        };
        if written.is_err() {
            sent_all = false;
            break;
        }
    }
    if sent_all && chunked {
        let _ = stream.write_all(b"0\r\n\r\n");
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

/// One request sent as curl sends a large body (`Expect: 100-continue`), whatever its size,
/// so that a refusal before the body is read arrives intact.
fn send_expecting(server: &TestServer, method: &str, path: &str, body: &[u8]) -> Reply {
    let host = host(server);
    let mut stream = TcpStream::connect(&host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nPRIVATE-TOKEN: {ROOT_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut first = read_one(&mut stream).expect("an answer to the request head");
    if first.status == 100 {
        stream.write_all(body).unwrap();
        first = read_one(&mut stream).expect("an answer to the request");
    }
    first
}

/// `{"x":[0,0,0,…]}` of about `len` bytes: the cheapest body to send, the costliest to parse
/// into a tree of values.
fn zeros_body(len: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(len + 16);
    body.extend_from_slice(b"{\"x\":[0");
    while body.len() < len {
        body.extend_from_slice(b",0");
    }
    body.extend_from_slice(b"]}");
    body
}

// ---------------------------------------------------------------------------------------------
// Item 6: JSON bodies have per-route limits and never become a tree of values.

#[test]
fn eight_concurrent_16_mib_json_bodies_leave_the_server_responsive() {
    let server = TestServer::start();
    let project_id = project(&server, "json-flood", "private");
    let host = host(&server);
    // Just under 16 MiB, what the MLflow routes used to accept.
    let body = std::sync::Arc::new(zeros_body((16 << 20) - 64));
    let statuses = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = statuses.clone();
    let mlflow = format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow");
    let targets = [
        format!("{mlflow}/runs/log-batch"),
        format!("{mlflow}/experiments/create"),
        format!("{mlflow}/registered-models/create"),
        format!("{mlflow}/runs/log-inputs"),
        format!("/api/v4/projects/{project_id}/ml/models"),
        "/api/v4/projects".to_string(),
        format!("{mlflow}/runs/search"),
        format!("{mlflow}/runs/create"),
    ];
    let observed = observe_during(&server, move || {
        // Two rounds of 8 at once: declared lengths first, then chunked bodies that must be
        // counted as they arrive.
        for chunked in [false, true] {
            let senders: Vec<_> = targets
                .iter()
                .cloned()
                .map(|path| {
                    let body = body.clone();
                    let host = host.clone();
                    let seen = seen.clone();
                    std::thread::spawn(move || {
                        let status = blast(
                            &host,
                            "POST",
                            &path,
                            &[
                                ("PRIVATE-TOKEN", ROOT_TOKEN),
                                ("Content-Type", "application/json"),
                            ],
                            &body,
                            chunked,
                        );
                        seen.lock().unwrap().push((path, chunked, status));
                    })
                })
                .collect();
            for sender in senders {
                sender.join().expect("sender");
            }
        }
    });
    eprintln!(
        "16 MiB bodies: {} probes, health median {:?}, slowest {:?}, peak RSS {} MiB",
        observed.probes,
        observed.median_health,
        observed.slowest_health,
        observed.peak_rss >> 20
    );
    assert!(
        observed.peak_rss < 256 << 20,
        "RSS reached {} MiB",
        observed.peak_rss >> 20
    );
    assert!(
        observed.slowest_health < Duration::from_millis(100),
        "/-/health took {:?} during the flood",
        observed.slowest_health
    );
    for (path, chunked, status) in statuses.lock().unwrap().iter() {
        assert!(
            status.is_none_or(|s| s == 413),
            "{path} (chunked: {chunked}) answered {status:?} to a 16 MiB body"
        );
    }
}

#[test]
fn oversized_json_bodies_are_413_in_each_surfaces_error_shape() {
    let server = TestServer::start();
    let project_id = project(&server, "json-limits", "private");
    let api = Api::root(&server);
    let mlflow = format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow");
    let json = [("Content-Type", "application/json")];

    // MLflow: log-batch takes MLflow's own maximum (1,000,000 bytes), other routes 1 MiB.
    let just_over_batch = zeros_body(1_000_100);
    let refused = send_expecting(
        &server,
        "POST",
        &format!("{mlflow}/runs/log-batch"),
        &just_over_batch,
    );
    assert_eq!(refused.status, 413, "{}", refused.text());
    assert_eq!(refused.json()["error_code"], "INVALID_PARAMETER_VALUE");
    assert!(refused.json()["message"]
        .as_str()
        .unwrap()
        .contains("1000000"));
    let two_mib = zeros_body(2 << 20);
    let refused = send_expecting(
        &server,
        "POST",
        &format!("{mlflow}/experiments/create"),
        &two_mib,
    );
    assert_eq!(refused.status, 413, "{}", refused.text());
    assert_eq!(refused.json()["error_code"], "INVALID_PARAMETER_VALUE");

    // GitLab's API and the registry API: GitLab's shape.
    for path in [
        "/api/v4/projects".to_string(),
        format!("/api/v4/projects/{project_id}/ml/models"),
        format!("/api/v4/projects/{project_id}/members"),
    ] {
        let refused = send_expecting(&server, "POST", &path, &two_mib);
        assert_eq!(refused.status, 413, "{path}: {}", refused.text());
        assert!(
            refused.json()["message"]
                .as_str()
                .unwrap()
                .starts_with("413"),
            "{path}: {}",
            refused.text()
        );
    }

    // Bodies under the limits, with a huge unknown field, are read and work.
    let mut experiment = zeros_body(900 << 10);
    experiment.truncate(experiment.len() - 1);
    experiment.extend_from_slice(br#","name":"big-but-fine"}"#);
    let created = api.send(
        "POST",
        &format!("{mlflow}/experiments/create"),
        &json,
        &experiment,
    );
    assert_eq!(created.status, 200, "{}", created.text());

    // A full log-batch as the MLflow client sends it (1000 metrics, 100 params, 100 long
    // tags, about 900 KB) is within the limit.
    let run = api.post_json(
        &format!("{mlflow}/runs/create"),
        serde_json::json!({ "experiment_id": "0" }),
    );
    assert_eq!(run.status, 200, "{}", run.text());
    let run_id = run.json()["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let metrics: Vec<_> = (0..1000)
        .map(|i| serde_json::json!({"key": format!("metric_{:0>40}", i % 50), "value": i as f64 * 0.5, "timestamp": 1_700_000_000_000i64 + i, "step": i}))
        .collect();
    let params: Vec<_> = (0..100)
        .map(|i| serde_json::json!({"key": format!("param_{i}"), "value": "v".repeat(400)}))
        .collect();
    let tags: Vec<_> = (0..100)
        .map(|i| serde_json::json!({"key": format!("tag_{i}"), "value": "t".repeat(7000)}))
        .collect();
    let batch =
        serde_json::json!({"run_id": run_id, "metrics": metrics, "params": params, "tags": tags});
    let batch = serde_json::to_vec(&batch).unwrap();
    assert!(
        batch.len() > 800_000 && batch.len() < 1_000_000,
        "{}",
        batch.len()
    );
    let logged = api.send("POST", &format!("{mlflow}/runs/log-batch"), &json, &batch);
    assert_eq!(logged.status, 200, "{}", logged.text());
}

// ---------------------------------------------------------------------------------------------
// Web UI sessions, for the form tests.

const PASSWORD: &str = "correct horse battery";

/// The value of `name="authenticity_token"` in a page.
fn csrf_token(html: &str) -> String {
    let marker = "name=\"authenticity_token\" value=\"";
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    let end = start + html[start..].find('"').expect("end of value");
    html[start..end].to_string()
}

/// The cookie `name` a response sets.
fn set_cookie(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| v.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_string())
}

/// Signs `username` in through the sign-in form; returns the session's Cookie header value.
fn signed_in(server: &TestServer, username: &str) -> String {
    let form = raw(&server.base, "GET", "/users/sign_in", &[], b"");
    let csrf_cookie = set_cookie(&form, "modelyard_sign_in_csrf").expect("a sign-in cookie");
    let token = csrf_token(&form.text());
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("authenticity_token", token.as_str()),
            ("username", username),
            ("password", PASSWORD),
        ])
        .finish();
    let cookie = format!("modelyard_sign_in_csrf={csrf_cookie}");
    let reply = raw(
        &server.base,
        "POST",
        "/users/sign_in",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    );
    assert_eq!(reply.status, 303, "{}", reply.text());
    let session = set_cookie(&reply, "modelyard_session").expect("a session cookie");
    format!("modelyard_session={session}")
}

/// The CSRF token of the session whose cookie is `cookie`, from a page with a form.
fn session_token(server: &TestServer, cookie: &str, page: &str) -> String {
    let reply = raw(&server.base, "GET", page, &[("Cookie", cookie)], b"");
    assert_eq!(reply.status, 200, "{page}: {}", reply.text());
    csrf_token(&reply.text())
}

/// Request body bytes the server has received, from `/metrics`.
fn bytes_received(server: &TestServer) -> u64 {
    // /metrics answers admins on the main address.
    let metrics = raw(
        &server.base,
        "GET",
        "/metrics",
        &[("PRIVATE-TOKEN", ROOT_TOKEN)],
        b"",
    )
    .text();
    metrics
        .lines()
        .find(|l| l.starts_with("modelyard_http_received_bytes_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .expect("the received bytes counter")
}

/// One part of a multipart form; `big` parts are `size` bytes generated as they are sent.
enum Part<'a> {
    Text(&'a str, &'a str),
    File {
        name: &'a str,
        file_name: &'a str,
        size: usize,
    },
}

/// Posts a multipart form, streaming it with a declared length, and stops sending when the
/// server stops reading. Returns the answer (if any), how long it took and how much was sent.
fn post_multipart_stream(
    server: &TestServer,
    path: &str,
    cookie: Option<&str>,
    parts: &[Part],
) -> (Option<Reply>, Duration, usize) {
    let boundary = "----modelyardAttackBoundary0123456789";
    let mut pieces: Vec<(Vec<u8>, usize)> = Vec::new(); // (bytes, then that many filler bytes)
    for part in parts {
        match part {
            Part::Text(name, value) => pieces.push((
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .into_bytes(),
                0,
            )),
            Part::File {
                name,
                file_name,
                size,
            } => {
                pieces.push((
                    format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                        .into_bytes(),
                    *size,
                ));
                pieces.push((b"\r\n".to_vec(), 0));
            }
        }
    }
    pieces.push((format!("--{boundary}--\r\n").into_bytes(), 0));
    let total: usize = pieces.iter().map(|(b, n)| b.len() + n).sum();
    let host = host(server);
    let mut stream = TcpStream::connect(&host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{cookie}Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {total}\r\n\r\n"
    );
    let started = Instant::now();
    let mut sent = 0;
    let filler = vec![b'A'; 64 << 10];
    let mut send = |bytes: &[u8]| -> bool {
        if stream.write_all(bytes).is_err() {
            return false;
        }
        sent += bytes.len();
        true
    };
    'sending: {
        if !send(head.as_bytes()) {
            break 'sending;
        }
        for (bytes, mut filler_len) in pieces {
            if !send(&bytes) {
                break 'sending;
            }
            while filler_len > 0 {
                let n = filler_len.min(filler.len());
                if !send(&filler[..n]) {
                    break 'sending;
                }
                filler_len -= n;
            }
        }
    }
    let reply = read_one(&mut stream);
    (reply, started.elapsed(), sent)
}

/// A public project with model `fraud` (id returned), and a Maintainer `alice` signed in.
fn model_form_setup(server: &TestServer, name: &str) -> (String, String, String) {
    let project_id = project(server, name, "public");
    let (alice, _) = user_with_token(server, "alice", "api");
    add_member(server, project_id, alice, 40);
    let model = Api::root(server).post_json(
        &format!("/api/v4/projects/{project_id}/ml/models"),
        serde_json::json!({ "name": "fraud" }),
    );
    assert_eq!(model.status, 201, "{}", model.text());
    let model_id = model.json()["id"].as_u64().unwrap();
    let page = format!("/root/{name}/-/ml/models/{model_id}");
    let cookie = signed_in(server, "alice");
    let token = session_token(server, &cookie, &format!("{page}/versions/new"));
    (format!("{page}/versions"), cookie, token)
}

const HUGE: usize = 300 << 20;

// ---------------------------------------------------------------------------------------------
// Item 5: multipart forms are checked before any file part is read, and every text part is
// capped.

#[test]
fn a_300_mb_unknown_form_field_is_refused_quickly_and_unread() {
    let server = TestServer::start();
    let (action, cookie, token) = model_form_setup(&server, "multi-unknown");
    let before = bytes_received(&server);
    let (reply, took, sent) = post_multipart_stream(
        &server,
        &action,
        Some(&cookie),
        &[
            Part::Text("authenticity_token", &token),
            Part::Text("version", "1.0.0"),
            Part::File {
                name: "padding",
                file_name: "",
                size: HUGE,
            },
        ],
    );
    let received = bytes_received(&server) - before;
    let rss = server.rss_bytes();
    let reply = reply.expect("an answer");
    assert!(
        (400..500).contains(&reply.status),
        "{}: {}",
        reply.status,
        reply.text()
    );
    assert!(took < Duration::from_secs(5), "refused after {took:?}");
    assert!(
        received < 32 << 20,
        "the server read {} MiB of the unknown field (client sent {} MiB)",
        received >> 20,
        sent >> 20
    );
    assert!(rss < 128 << 20, "RSS {} MiB", rss >> 20);
    // A text field a few KiB long is refused too.
    let (reply, _, _) = post_multipart_stream(
        &server,
        &action,
        Some(&cookie),
        &[
            Part::Text("authenticity_token", &token),
            Part::Text("version", &"1".repeat(64 << 10)),
        ],
    );
    let reply = reply.expect("an answer");
    assert!((400..500).contains(&reply.status), "{}", reply.status);
    let versions =
        Api::root(&server).get("/api/v4/projects/root%2Fmulti-unknown/ml/models/fraud/versions");
    assert_eq!(
        versions.json(),
        serde_json::json!([]),
        "nothing was created"
    );
}

#[test]
fn a_300_mb_file_before_the_csrf_token_is_refused_quickly_and_unread() {
    let server = TestServer::start();
    let (action, cookie, token) = model_form_setup(&server, "multi-order");
    for name in ["file", "upload"] {
        let before = bytes_received(&server);
        let (reply, took, sent) = post_multipart_stream(
            &server,
            &action,
            Some(&cookie),
            &[
                Part::Text("version", "1.0.0"),
                Part::File {
                    name,
                    file_name: "model.bin",
                    size: HUGE,
                },
                Part::Text("authenticity_token", &token),
            ],
        );
        let received = bytes_received(&server) - before;
        let rss = server.rss_bytes();
        let reply = reply.expect("an answer");
        assert!(
            (400..500).contains(&reply.status),
            "{name}: {}: {}",
            reply.status,
            reply.text()
        );
        assert!(
            took < Duration::from_secs(5),
            "{name}: refused after {took:?}"
        );
        assert!(
            received < 32 << 20,
            "{name}: the server read {} MiB of a file sent before the token (client sent {} MiB)",
            received >> 20,
            sent >> 20
        );
        assert!(rss < 128 << 20, "{name}: RSS {} MiB", rss >> 20);
    }
    // The token in a header lets the file come first.
    let (reply, _, _) = post_multipart_stream(
        &server,
        &format!("{action}?authenticity_token={token}"),
        Some(&cookie),
        &[
            Part::Text("version", "1.0.0"),
            Part::File {
                name: "file",
                file_name: "model.bin",
                size: 1000,
            },
        ],
    );
    assert_eq!(reply.map(|r| r.status), Some(303));
}

#[test]
fn an_anonymous_visitor_of_a_public_project_cannot_make_the_server_read_a_file_part() {
    let server = TestServer::start();
    let (action, _cookie, token) = model_form_setup(&server, "multi-anon");
    for name in ["file", "model"] {
        let before = bytes_received(&server);
        let (reply, took, sent) = post_multipart_stream(
            &server,
            &action,
            None,
            &[
                Part::Text("authenticity_token", &token),
                Part::Text("version", "1.0.0"),
                Part::File {
                    name,
                    file_name: "model.bin",
                    size: HUGE,
                },
            ],
        );
        let received = bytes_received(&server) - before;
        let rss = server.rss_bytes();
        let reply = reply.expect("an answer");
        assert!(
            matches!(reply.status, 303 | 401 | 403 | 404),
            "{name}: {}: {}",
            reply.status,
            reply.text()
        );
        assert!(
            took < Duration::from_secs(5),
            "{name}: answered after {took:?}"
        );
        assert!(
            received < 32 << 20,
            "{name}: the server read {} MiB from an anonymous visitor (who sent {} MiB)",
            received >> 20,
            sent >> 20
        );
        assert!(rss < 128 << 20, "{name}: RSS {} MiB", rss >> 20);
    }
}

// ---------------------------------------------------------------------------------------------
// Item 4: sign-in floods, throttles, lockout, and the time unknown usernames take.

/// One sign-in attempt as an attacker sends it: the double-submit CSRF token is theirs to pick.
fn sign_in_attempt(base: &str, username: &str, password: &str) -> std::io::Result<Reply> {
    let token = "attacker-chosen-token";
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("authenticity_token", token),
            ("username", username),
            ("password", password),
        ])
        .finish();
    let cookie = format!("modelyard_sign_in_csrf={token}");
    try_raw(
        base,
        "POST",
        "/users/sign_in",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    )
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a 429 without Retry-After: {:?}", reply.headers))
}

#[test]
fn a_sign_in_flood_keeps_health_answering_and_rss_bounded() {
    // No address or username throttle: what bounds the flood here is the number of password
    // checks allowed at once.
    let server = TestServer::start_with(&["--sign-in-rate", "0", "--sign-in-lockout", "0"]);
    user_with_token(&server, "alice", "api");
    let base = server.base.clone();
    let answers = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = answers.clone();
    let observed = observe_during(&server, move || {
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let workers: Vec<_> = (0..64)
            .map(|_| {
                let (base, next, seen) = (base.clone(), next.clone(), seen.clone());
                std::thread::spawn(move || loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= 200 {
                        break;
                    }
                    let username = if i % 2 == 0 {
                        "alice".to_string()
                    } else {
                        format!("nobody{i}")
                    };
                    let reply = sign_in_attempt(&base, &username, "wrong password!");
                    seen.lock().unwrap().push(reply.map(|r| {
                        let retry = (r.status == 429).then(|| retry_after(&r));
                        (r.status, retry)
                    }));
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("attacker");
        }
    });
    eprintln!(
        "sign-in flood: {} probes, health median {:?}, slowest {:?}, peak RSS {} MiB",
        observed.probes,
        observed.median_health,
        observed.slowest_health,
        observed.peak_rss >> 20
    );
    assert!(
        observed.peak_rss < 256 << 20,
        "RSS reached {} MiB",
        observed.peak_rss >> 20
    );
    assert!(
        observed.slowest_health < Duration::from_secs(1),
        "/-/health took {:?} during the flood",
        observed.slowest_health
    );
    let answers = answers.lock().unwrap();
    assert_eq!(answers.len(), 200);
    for answer in answers.iter() {
        match answer {
            Ok((401, None)) => {}
            Ok((429, Some(seconds))) => assert!(*seconds >= 1),
            other => panic!("a sign-in attempt got {other:?}"),
        }
    }
    // Afterwards the real user still gets in.
    let ok = sign_in_attempt(&server.base, "alice", PASSWORD).unwrap();
    assert_eq!(ok.status, 303, "{}", ok.text());
}

#[test]
fn sign_ins_from_one_address_are_throttled_with_429_and_retry_after() {
    let server = TestServer::start();
    user_with_token(&server, "alice", "api");
    // The default allows 10 attempts a minute from one address.
    for i in 0..10 {
        let reply = sign_in_attempt(&server.base, &format!("guess{i}"), "wrong password!").unwrap();
        assert_eq!(reply.status, 401, "attempt {i}: {}", reply.text());
    }
    let throttled = sign_in_attempt(&server.base, "alice", PASSWORD).unwrap();
    assert_eq!(throttled.status, 429, "{}", throttled.text());
    let seconds = retry_after(&throttled);
    assert!((1..=60).contains(&seconds), "Retry-After: {seconds}");
    assert!(throttled.text().contains("Too many sign-in attempts"));
    assert_eq!(Api::root(&server).get("/-/health").status, 200);
}

#[test]
fn repeated_failures_lock_a_username_known_or_not() {
    let server = TestServer::start_with(&[
        "--sign-in-rate",
        "1000",
        "--sign-in-lockout",
        "3",
        "--sign-in-lockout-seconds",
        "3",
    ]);
    user_with_token(&server, "alice", "api");
    user_with_token(&server, "bob", "api");
    for name in ["alice", "nobody"] {
        for i in 0..3 {
            let reply = sign_in_attempt(&server.base, name, "wrong password!").unwrap();
            assert_eq!(reply.status, 401, "{name} attempt {i}: {}", reply.text());
        }
        // Locked: even the right password is not checked.
        let locked = sign_in_attempt(&server.base, name, PASSWORD).unwrap();
        assert_eq!(locked.status, 429, "{name}: {}", locked.text());
        assert!((1..=3).contains(&retry_after(&locked)));
        assert!(locked.text().contains("locked"), "{}", locked.text());
    }
    // Others are unaffected, and the lock ends.
    assert_eq!(
        sign_in_attempt(&server.base, "bob", PASSWORD)
            .unwrap()
            .status,
        303
    );
    std::thread::sleep(Duration::from_millis(3200));
    assert_eq!(
        sign_in_attempt(&server.base, "alice", PASSWORD)
            .unwrap()
            .status,
        303
    );
}

#[test]
fn unknown_usernames_take_as_long_as_known_ones() {
    let server = TestServer::start_with(&["--sign-in-rate", "0", "--sign-in-lockout", "0"]);
    user_with_token(&server, "alice", "api");
    let reply = Api::root(&server).post_json(
        "/api/v4/users",
        serde_json::json!({ "username": "nopass", "name": "No Password", "email": "np@example.com" }),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let time = |username: &str| {
        let started = Instant::now();
        let reply = sign_in_attempt(&server.base, username, "wrong password!").unwrap();
        assert_eq!(reply.status, 401);
        started.elapsed()
    };
    // Warm up (the dummy hash is made on first use), then interleave.
    time("nobody-warmup");
    time("alice");
    let (mut known, mut unknown, mut no_password) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..9 {
        known.push(time("alice"));
        unknown.push(time(&format!("nobody{i}")));
        no_password.push(time("nopass"));
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (known, unknown, no_password) = (
        median(&mut known),
        median(&mut unknown),
        median(&mut no_password),
    );
    eprintln!("sign-in medians: known {known:?}, unknown {unknown:?}, no password {no_password:?}");
    for (what, other) in [
        ("an unknown user", unknown),
        ("a user without password", no_password),
    ] {
        let ratio = other.as_secs_f64() / known.as_secs_f64();
        assert!(
            (0.5..2.0).contains(&ratio),
            "{what} took {other:?}, a known one {known:?}: the time tells them apart"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Item 9: idle connections are capped; the longest idle are shed first.

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn idle_connections_beyond_the_cap_are_shed_oldest_first_and_health_answers() {
    let server = TestServer::start_with(&["--max-connections", "200"]);
    let host = host(&server);
    let baseline = open_fds(server.pid());
    // A kept-alive connection that has served a request, then 400 that never send a byte.
    let mut kept = TcpStream::connect(&host).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(kept, "GET /-/health HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    assert_eq!(read_one(&mut kept).map(|r| r.status), Some(200));
    let mut idle: Vec<TcpStream> = (0..400)
        .map(|i| TcpStream::connect(&host).unwrap_or_else(|e| panic!("connection {i}: {e}")))
        .collect();
    // Health on a fresh connection is answered promptly, at the cap.
    for _ in 0..5 {
        let started = Instant::now();
        let health = try_raw(&server.base, "GET", "/-/health", &[], b"");
        assert!(health.as_ref().is_ok_and(|r| r.status == 200), "{health:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    std::thread::sleep(Duration::from_millis(300));
    let fds = open_fds(server.pid());
    assert!(
        fds < baseline + 200 + 20,
        "the server holds {fds} descriptors (from {baseline}) with a cap of 200 connections"
    );
    // The oldest idle connections were the ones closed: the kept-alive one and the first
    // idle ones read end-of-file, the newest are still open.
    let closed = |stream: &mut TcpStream| {
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut byte = [0u8; 1];
        match stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    };
    assert!(closed(&mut kept), "the oldest idle connection was kept");
    assert!(closed(&mut idle[0]), "the first idle connection was kept");
    let newest = idle.last_mut().unwrap();
    write!(newest, "GET /-/health HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    newest
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        read_one(newest).map(|r| r.status),
        Some(200),
        "the newest connection was shed"
    );
}
