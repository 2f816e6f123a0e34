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
