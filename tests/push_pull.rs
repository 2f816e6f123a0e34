//! `modelyard push` and `modelyard pull` against the real server, each interrupted in the middle
//! (the client process killed) and run again: the second run resumes and the result verifies.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn client(server: &TestServer, args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .args(args)
        .env("MODELYARD_URL", server.url(""))
        .env("MODELYARD_TOKEN", ROOT_TOKEN)
        .env("MODELYARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn run(server: &TestServer, args: &[&str]) -> Output {
    let out = client(server, args).output().expect("run client");
    assert!(
        out.status.success(),
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Kills `child` once `ready` holds (checked every 20 ms); panics if it ends first.
fn kill_when(mut child: Child, what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("the {what} ended ({status}) before it could be interrupted");
        }
        assert!(Instant::now() < deadline, "{what}: nothing happened");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill");
    let _ = child.wait();
}

fn largest_file_in(dir: &Path, suffix: &str) -> u64 {
    fn walk(dir: &Path, suffix: &str, best: &mut u64) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, suffix, best);
            } else if path.to_string_lossy().ends_with(suffix) {
                *best = (*best).max(entry.metadata().map(|m| m.len()).unwrap_or(0));
            }
        }
    }
    let mut best = 0;
    walk(dir, suffix, &mut best);
    best
}

#[test]
fn push_and_pull_resume_after_an_interruption_and_verify() {
    let server = TestServer::start();
    project(&server, "fraud", "private");
    let source = tempfile::tempdir().unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("weights/model.safetensors", random_bytes(12 << 20, 1)),
        ("weights/extra.bin", random_bytes(3 << 20, 2)),
        ("config.json", b"{\"layers\": 3}".to_vec()),
        ("empty.txt", Vec::new()),
    ];
    for (name, data) in &files {
        let path = source.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    let dir = source.path().to_str().unwrap();
    let target = [
        "--project",
        "root/fraud",
        "--model",
        "fraud",
        "--version",
        "1.4.0",
    ];

    // Push, slowed down, killed once a chunk or two of the big file are on the server.
    let mut first = vec!["push"];
    first.extend_from_slice(&target);
    first.extend_from_slice(&[
        "--chunk-mib",
        "1",
        "--parallel",
        "2",
        "--pause-ms",
        "150",
        dir,
    ]);
    // The largest upload's staged bytes: a file per upload on the local disk, a directory of
    // chunk objects per upload in the S3 bucket.
    let uploads = server.uploads_dir();
    let largest_upload = || {
        std::fs::read_dir(&uploads)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| bytes_under(&entry.path()))
            .max()
            .unwrap_or(0)
    };
    kill_when(
        client(&server, &first).spawn().expect("push"),
        "push",
        || largest_upload() >= 2 << 20,
    );
    let state = source.path().join(".modelyard-push.json");
    assert!(state.exists(), "an interrupted push keeps its upload URLs");

    let mut again = vec!["push"];
    again.extend_from_slice(&target);
    again.extend_from_slice(&["--chunk-mib", "1", dir]);
    let out = run(&server, &again);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Both weights files were in flight (two in parallel); the one with 2 MiB staged resumes
    // past its first chunk (the other may resume at 0).
    let resumed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("resuming weights/"))
        .collect();
    let at = resumed
        .iter()
        .filter_map(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
        .max()
        .unwrap_or_else(|| panic!("the second push did not resume: {stdout}"));
    assert!(at >= 1 << 20, "{resumed:?}");
    assert!(stdout.contains("pushed fraud 1.4.0: 4 files"), "{stdout}");
    assert!(!state.exists(), "a finished push leaves no state behind");

    // The version's manifest lists the files with their digests.
    let manifest = Api::root(&server)
        .get("/api/v4/projects/root%2Ffraud/ml/models/fraud/versions/1.4.0/manifest")
        .json();
    assert_eq!(manifest["files"].as_array().unwrap().len(), 4);

    // Pull by requirement, slowed down, killed once part of the big file is on disk.
    let out_dir = tempfile::tempdir().unwrap();
    let pull_dir = out_dir.path().to_str().unwrap();
    let requirement = [
        "--project",
        "root/fraud",
        "--model",
        "fraud",
        "--version",
        "^1.2",
    ];
    let mut first = vec!["pull"];
    first.extend_from_slice(&requirement);
    first.extend_from_slice(&["--parallel", "2", "--pause-ms", "100", pull_dir]);
    kill_when(
        client(&server, &first).spawn().expect("pull"),
        "pull",
        || largest_file_in(out_dir.path(), ".part") >= 2 << 20,
    );
    let mut again = vec!["pull"];
    again.extend_from_slice(&requirement);
    again.push(pull_dir);
    let out = run(&server, &again);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.starts_with("resuming ")),
        "the second pull did not resume: {stdout}"
    );
    assert!(stdout.contains("pulled fraud 1.4.0: 4 files"), "{stdout}");
    for (name, data) in &files {
        let got = std::fs::read(out_dir.path().join(name)).unwrap();
        assert_eq!(sha256_hex(&got), sha256_hex(data), "{name}");
    }
    assert_eq!(largest_file_in(out_dir.path(), ".part"), 0);

    // A corrupted local file is fetched again; the others are up to date.
    std::fs::write(out_dir.path().join("config.json"), b"{\"layers\": 4}").unwrap();
    let out = run(&server, &again);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("up to date weights/model.safetensors"),
        "{stdout}"
    );
    assert!(stdout.contains("pulled config.json"), "{stdout}");
    assert_eq!(
        std::fs::read(out_dir.path().join("config.json")).unwrap(),
        b"{\"layers\": 3}"
    );
}

#[test]
fn push_and_pull_refuse_clearly() {
    let server = TestServer::start();
    project(&server, "fraud", "private");
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("a.bin"), b"abc").unwrap();
    let dir = source.path().to_str().unwrap();
    // Not SemVer: refused at creation, with the server's message.
    let out = client(
        &server,
        &[
            "push",
            "--project",
            "root/fraud",
            "--model",
            "fraud",
            "--version",
            "v1",
            dir,
        ],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("400"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No token.
    let out = Command::new(binary())
        .args([
            "pull",
            "--url",
            &server.url(""),
            "--project",
            "root/fraud",
            "--model",
            "fraud",
            "--version",
            "1.0.0",
            dir,
        ])
        .env_remove("MODELYARD_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("MODELYARD_TOKEN"));
    // No such version.
    let out = client(
        &server,
        &[
            "pull",
            "--project",
            "root/fraud",
            "--model",
            "fraud",
            "--version",
            "^9",
            dir,
        ],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
}
