//! Faults: a full disk, a client that trickles its body, a thousand idle connections. The server
//! answers clearly, keeps what it acknowledged, and keeps serving everyone else.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// A small tmpfs, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u64) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed: the disk-full test needs root (CI runs as root)"
        );
        SmallDisk { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_refuses_uploads_clearly_and_keeps_serving() {
    let disk = SmallDisk::mount(48);
    let server = TestServer::start_from(&disk.path());
    let project_id = project(&server, "full", "private");
    let api = Api::root(&server);
    let path =
        |name: &str| format!("/api/v4/projects/{project_id}/packages/generic/disk/1.0.0/{name}");

    let kept = random_bytes(8 << 20, 1);
    assert_eq!(api.put_bytes(&path("kept.bin"), &kept).status, 201);

    let too_big = random_bytes(64 << 20, 2);
    let refused = api.put_bytes(&path("too-big.bin"), &too_big);
    assert_eq!(refused.status, 507, "{}", refused.text());
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("Insufficient Storage"),
        "{}",
        refused.text()
    );
    assert_eq!(
        server.tmp_entries(),
        0,
        "the partial upload was left in tmp"
    );
    assert_eq!(api.get(&path("too-big.bin")).status, 404);
    let files = api.get(&format!("/api/v4/projects/{project_id}/packages"));
    assert_eq!(files.json()[0]["name"], "disk");

    // What was acknowledged is intact, and the server keeps answering.
    let back = api.get(&path("kept.bin"));
    assert_eq!(back.status, 200);
    assert_eq!(sha256_hex(&back.body), sha256_hex(&kept));
    assert_eq!(api.get("/-/health").status, 200);

    // A file that fits still goes in.
    let small = random_bytes(1 << 20, 3);
    assert_eq!(api.put_bytes(&path("small.bin"), &small).status, 201);
    assert_eq!(api.get(&path("small.bin")).body, small);
    drop(server);
}

#[test]
fn a_trickling_body_is_cut_off_while_others_are_served() {
    let server = TestServer::start_with(&["--body-idle-timeout", "2", "--body-min-rate", "1024"]);
    let project_id = project(&server, "slow", "private");
    let host = server.base.trim_start_matches("http://").to_string();
    let path = format!("/api/v4/projects/{project_id}/packages/generic/slow/1.0.0/slow.bin");

    let mut slow = TcpStream::connect(&host).unwrap();
    write!(
        slow,
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nPRIVATE-TOKEN: {ROOT_TOKEN}\r\nContent-Length: 100\r\n\r\n"
    )
    .unwrap();
    let started = Instant::now();
    let mut cut_off = None;
    slow.set_read_timeout(Some(Duration::from_millis(900)))
        .unwrap();
    while started.elapsed() < Duration::from_secs(20) {
        if slow.write_all(b"x").is_err() {
            cut_off = Some(started.elapsed());
            break;
        }
        // Meanwhile everyone else is served promptly.
        let quick = Instant::now();
        let health = Api::root(&server).get("/-/health");
        assert_eq!(health.status, 200);
        assert!(quick.elapsed() < Duration::from_secs(1));
        let mut answer = [0u8; 512];
        match slow.read(&mut answer) {
            Ok(0) => {
                cut_off = Some(started.elapsed());
                break;
            }
            Ok(n) => {
                let text = String::from_utf8_lossy(&answer[..n]);
                assert!(text.starts_with("HTTP/1.1 4"), "{text}");
                cut_off = Some(started.elapsed());
                break;
            }
            Err(_) => {} // still waiting: send the next byte
        }
    }
    let cut_off = cut_off.expect("a 1 byte/s upload held its connection for 20 s");
    assert!(
        cut_off < Duration::from_secs(8),
        "cut off only after {cut_off:?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(Api::root(&server).get(&path).status, 404);
    assert_eq!(server.tmp_entries(), 0);
}

#[test]
fn headers_trickling_in_are_cut_off_while_others_are_served() {
    let server = TestServer::start_with(&["--header-read-timeout", "2"]);
    let host = server.base.trim_start_matches("http://").to_string();
    // A request head that would be fine if it ever arrived: one byte a second.
    let head = format!(
        "GET /-/health HTTP/1.1\r\nHost: {host}\r\nX-Slow: {}\r\n\r\n",
        "a".repeat(64)
    );
    let mut slow = TcpStream::connect(&host).unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(900)))
        .unwrap();
    let started = Instant::now();
    let mut cut_off = None;
    for byte in head.bytes() {
        if slow.write_all(&[byte]).is_err() {
            cut_off = Some(started.elapsed());
            break;
        }
        // Meanwhile everyone else is served promptly.
        let quick = Instant::now();
        assert_eq!(Api::root(&server).get("/-/health").status, 200);
        assert!(quick.elapsed() < Duration::from_secs(1));
        let mut answer = [0u8; 512];
        match slow.read(&mut answer) {
            Ok(0) => {
                cut_off = Some(started.elapsed());
                break;
            }
            Ok(n) => {
                let text = String::from_utf8_lossy(&answer[..n]);
                panic!("the trickling client got an answer: {text}");
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                cut_off = Some(started.elapsed());
                break;
            }
            Err(_) => {} // still connected: send the next byte
        }
        if started.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    let cut_off = cut_off.expect("a client sending its headers at 1 byte/s kept its connection");
    assert!(
        cut_off >= Duration::from_millis(1500) && cut_off < Duration::from_secs(6),
        "cut off after {cut_off:?} with a 2 s header timeout"
    );

    // A client that sends its headers at once on a new connection is unaffected.
    assert_eq!(Api::root(&server).get("/-/health").status, 200);
}

#[test]
fn a_thousand_idle_connections_do_not_stop_the_server() {
    let server = TestServer::start();
    let project_id = project(&server, "idle", "private");
    let host = server.base.trim_start_matches("http://").to_string();
    let idle: Vec<TcpStream> = (0..1000)
        .map(|i| TcpStream::connect(&host).unwrap_or_else(|e| panic!("connection {i}: {e}")))
        .collect();
    let api = Api::root(&server);
    let started = Instant::now();
    assert_eq!(api.get("/-/health").status, 200);
    let data = random_bytes(2 << 20, 4);
    let path = format!("/api/v4/projects/{project_id}/packages/generic/idle/1.0.0/f.bin");
    assert_eq!(api.put_bytes(&path, &data).status, 201);
    assert_eq!(api.get(&path).body, data);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "with 1000 idle connections: {took:?}"
    );
    drop(idle);
}

/// Writes zeros to `path` until the disk refuses more.
fn fill_disk(path: &std::path::Path) {
    let mut filler = std::fs::File::create(path).expect("create the filler");
    let block = vec![0u8; 1 << 20];
    while filler.write_all(&block).is_ok() {}
    let _ = filler.sync_all();
}

#[test]
fn writes_recover_by_themselves_once_a_full_disk_is_freed() {
    let disk = SmallDisk::mount(48);
    let data = disk.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = TestServer::start_from(&data);
    let project_id = project(&server, "refill", "private");
    let api = Api::root(&server);
    let path =
        |name: &str| format!("/api/v4/projects/{project_id}/packages/generic/refill/1.0.0/{name}");
    let kept = random_bytes(1 << 20, 5);
    assert_eq!(api.put_bytes(&path("kept.bin"), &kept).status, 201);
    assert_eq!(api.get("/-/readiness").status, 200);

    // Something else fills the disk: uploads and metadata writes fail, readiness says so.
    let filler = disk.path().join("filler");
    fill_disk(&filler);
    let small = random_bytes(256 << 10, 6);
    let refused = api.put_bytes(&path("while-full.bin"), &small);
    assert_eq!(refused.status, 507, "{}", refused.text());
    // The refused upload gave its staged bytes back: fill those too.
    let filler_too = disk.path().join("filler-too");
    fill_disk(&filler_too);
    // Metadata writes go into space the store already has, until it needs more.
    let description = "d".repeat(9000);
    let refused = (0..2000)
        .map(|i| {
            api.post_json(
                &format!("/api/v4/projects/{project_id}/ml/models"),
                serde_json::json!({ "name": format!("model-{i}"), "description": description }),
            )
        })
        .find(|reply| reply.status != 201)
        .expect("metadata writes kept succeeding on a full disk");
    assert_eq!(refused.status, 507, "{}", refused.text());
    assert!(refused.json()["message"].is_string(), "{}", refused.text());
    std::thread::sleep(Duration::from_millis(1100)); // past the cached readiness answer
    let readiness = api.get("/-/readiness");
    assert_eq!(readiness.status, 503, "{}", readiness.text());
    assert_eq!(readiness.json()["status"], "failed");
    assert!(
        readiness.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot write")),
        "{}",
        readiness.text()
    );
    // Reads go on.
    assert_eq!(api.get(&path("kept.bin")).body, kept);
    assert_eq!(api.get("/-/health").status, 200);

    // Space comes back: writes recover without a restart.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&filler_too).unwrap();
    let started = Instant::now();
    let stored = loop {
        let reply = api.put_bytes(&path("after.bin"), &small);
        if reply.status == 201 || started.elapsed() > Duration::from_secs(10) {
            break reply;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(stored.status, 201, "after freeing space: {}", stored.text());
    let created = api.post_json(
        "/api/v4/projects",
        serde_json::json!({ "name": "after-full", "visibility": "private" }),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(api.get("/-/readiness").status, 200);
    assert_eq!(api.get(&path("after.bin")).body, small);
    assert_eq!(api.get(&path("kept.bin")).body, kept);
    drop(server);
}
