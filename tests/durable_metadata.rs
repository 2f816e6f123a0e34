//! Durable metadata: an acknowledged write is on the disk with fsync-grade calls, not only with
//! the `sync_file_range` that sled 0.34's `flush()` makes (which neither persists the log file's
//! size nor flushes the drive's cache). The server runs under `strace`; between the last
//! `sync_file_range` of the metadata log and the response to an upload there must be an
//! `fdatasync` or `fsync` of that log.
//!
//! Needs strace (`apt-get install strace`; `scripts/test.sh` installs it).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Traced {
    strace: Child,
    server_pid: u32,
    base: String,
    log: std::path::PathBuf,
}

fn start_traced(dir: &Path, log: &Path) -> Traced {
    let mut strace = Command::new("strace")
        .args(["-f", "-qq", "-e", "signal=none", "-s", "24", "-o"])
        .arg(log)
        .args([
            "-e",
            "trace=sync_file_range,fsync,fdatasync,write,writev,sendto,sendmsg",
        ])
        .arg(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("MODELYARD_ROOT_TOKEN", ROOT_TOKEN)
        .env("MODELYARD_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("strace is needed for this test: apt-get install strace");
    let stdout = strace.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("the server exited before listening")
            .expect("read stdout");
        if let Some(rest) = line.strip_prefix("modelyard listening on ") {
            break rest.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", strace.id()))
        .expect("strace's children");
    let server_pid = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the traced server's pid");
    Traced {
        strace,
        server_pid,
        base,
        log: log.to_path_buf(),
    }
}

impl Traced {
    /// The server's file descriptors open on `meta/db`, sled's log.
    fn log_fds(&self) -> BTreeSet<String> {
        std::fs::read_dir(format!("/proc/{}/fd", self.server_pid))
            .expect("the server's fds")
            .flatten()
            .filter(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|target| target.ends_with("meta/db"))
            })
            .map(|fd| fd.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// SIGTERM to the server, then waits for strace to write its whole log.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.server_pid.to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.strace.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.strace.kill();
        let _ = self.strace.wait();
        std::fs::read_to_string(&self.log).expect("the strace log")
    }
}

/// The fd a traced call starts with: `123 fdatasync(11) = 0` → ("fdatasync", "11").
fn call(line: &str) -> Option<(&str, &str)> {
    let rest = line.split_once(' ').map_or(line, |(_, r)| r).trim_start();
    let (name, args) = rest.split_once('(')?;
    let fd = args
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .filter(|fd| !fd.is_empty())?;
    Some((name, fd))
}

#[test]
fn an_acknowledged_upload_fdatasyncs_the_metadata_log_before_the_response() {
    let data = tempfile::tempdir().expect("temp dir");
    let log = data.path().join("strace.log");
    let dir = data.path().join("data");
    let traced = start_traced(&dir, &log);
    let server = Server(traced.base.clone());
    let project = server.post("/api/v4/projects", "name=durable");
    assert_eq!(project.status, 201, "{}", project.text());
    let db_fds = traced.log_fds();
    assert!(!db_fds.is_empty(), "the server keeps meta/db open");
    let upload = raw(
        &server.0,
        "PUT",
        "/api/v4/projects/root%2Fdurable/packages/generic/one/1.0.0/one.bin",
        &[("PRIVATE-TOKEN", ROOT_TOKEN)],
        &random_bytes(4096, 1),
    );
    assert_eq!(upload.status, 201, "{}", upload.text());
    let trace = traced.stop();

    let lines: Vec<&str> = trace.lines().collect();
    let response = lines
        .iter()
        .rposition(|l| l.contains("\"HTTP/1.1 201"))
        .unwrap_or_else(|| panic!("no 201 response in the trace:\n{trace}"));
    let on_log = |i: &usize, names: &[&str]| {
        call(lines[*i]).is_some_and(|(name, fd)| names.contains(&name) && db_fds.contains(fd))
    };
    let written = (0..response)
        .rev()
        .find(|i| on_log(i, &["sync_file_range"]))
        .unwrap_or_else(|| {
            panic!("no sync_file_range of meta/db (fds {db_fds:?}) before the response:\n{trace}")
        });
    let synced = (written..response).any(|i| on_log(&i, &["fdatasync", "fsync"]));
    assert!(
        synced,
        "between sled's sync_file_range of meta/db and the response there is no fdatasync/fsync \
         of it (fds {db_fds:?}):\n{}",
        lines[written..=response].join("\n")
    );
}

struct Server(String);

impl Server {
    fn post(&self, path: &str, form: &str) -> Reply {
        raw(
            &self.0,
            "POST",
            path,
            &[
                ("PRIVATE-TOKEN", ROOT_TOKEN),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            form.as_bytes(),
        )
    }
}
