//! Errors keep their cause: a storage failure answers 500 without details, and the server's log
//! line of that 500 carries the whole chain down to the I/O error, on each API surface. The
//! failures are provoked from outside (running as root, permissions do not stop the server): the
//! staging directory replaced by a file fails blob writes; the metadata's `blobs/` directory
//! replaced by a file fails the sync that makes metadata durable.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// The release binary with its stderr in a file.
struct Logged {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Logged {
    fn start(dir: &Path, log: &Path) -> Logged {
        let stderr = std::fs::File::create(log).expect("log file");
        let mut child = Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .env("MODELYARD_ROOT_TOKEN", ROOT_TOKEN)
            // The default level: the request's span names it on the error line.
            .env("MODELYARD_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn modelyard");
        let stdout = child.stdout.take().expect("stdout");
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
        Logged {
            child,
            base,
            log: log.to_path_buf(),
        }
    }

    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut all = headers.to_vec();
        all.push(("PRIVATE-TOKEN", ROOT_TOKEN));
        raw(&self.base, method, path, &all, body)
    }

    /// The log line that contains `needle`, waiting a little for it to be written.
    fn log_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(line) = log.lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            if Instant::now() > deadline {
                panic!("no log line with {needle:?} in:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Replaces a directory with a regular file of the same name.
fn break_dir(dir: &Path) {
    std::fs::remove_dir_all(dir).expect("remove dir");
    std::fs::write(dir, b"not a directory").expect("write file");
}

fn restore_dir(dir: &Path) {
    std::fs::remove_file(dir).expect("remove file");
    std::fs::create_dir(dir).expect("create dir");
}

const NOT_A_DIRECTORY: &str = "Not a directory (os error 20)";

#[test]
fn a_failed_blob_write_is_a_bare_500_and_the_log_has_the_io_error() {
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path().join("data");
    let server = Logged::start(&dir, &data.path().join("stderr.log"));
    let created = server.send(
        "POST",
        "/api/v4/projects",
        &[("Content-Type", "application/json")],
        &serde_json::to_vec(&json!({ "name": "broken", "visibility": "private" })).expect("json"),
    );
    assert_eq!(created.status, 201, "{}", created.text());

    break_dir(&dir.join("tmp"));
    let upload = server.send(
        "PUT",
        "/api/v4/projects/root%2Fbroken/packages/generic/model/1.0.0/model.bin",
        &[],
        b"some bytes",
    );
    assert_eq!(upload.status, 500, "{}", upload.text());
    assert_eq!(
        upload.json(),
        json!({ "message": "500 Internal Server Error" })
    );
    let line = server.log_line("request failed");
    assert!(
        line.contains(&format!(
            "storage failed: blob store I/O: {NOT_A_DIRECTORY}"
        )),
        "the log line has the chain down to the I/O error: {line}"
    );
    assert!(line.contains("ERROR"), "{line}");
    assert!(
        !line.contains('\x1b'),
        "no terminal colours in a log file: {line}"
    );
    assert!(
        line.contains("/packages/generic/model/1.0.0/model.bin"),
        "and names the request: {line}"
    );

    // The same through the MLflow artifact proxy, in MLflow's error shape.
    let experiment = server.send(
        "POST",
        "/api/v4/projects/root%2Fbroken/ml/mlflow/api/2.0/mlflow/experiments/create",
        &[("Content-Type", "application/json")],
        br#"{"name": "e"}"#,
    );
    assert_eq!(experiment.status, 200, "{}", experiment.text());
    let experiment_id = experiment.json()["experiment_id"]
        .as_str()
        .expect("id")
        .to_string();
    let run = server.send(
        "POST",
        "/api/v4/projects/root%2Fbroken/ml/mlflow/api/2.0/mlflow/runs/create",
        &[("Content-Type", "application/json")],
        &serde_json::to_vec(&json!({ "experiment_id": experiment_id })).expect("json"),
    );
    assert_eq!(run.status, 200, "{}", run.text());
    let run_id = run.json()["run"]["info"]["run_id"]
        .as_str()
        .expect("run id")
        .to_string();
    let artifact = server.send(
        "PUT",
        &format!("/api/v4/projects/root%2Fbroken/ml/mlflow/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/model.pkl"),
        &[],
        b"pickled",
    );
    assert_eq!(artifact.status, 500, "{}", artifact.text());
    assert_eq!(
        artifact.json(),
        json!({ "error_code": "INTERNAL_ERROR", "message": "Internal error" })
    );
    let line = server.log_line("MLflow request failed");
    assert!(
        line.contains(&format!(
            "storage failed: blob store I/O: {NOT_A_DIRECTORY}"
        )),
        "{line}"
    );

    restore_dir(&dir.join("tmp"));
    let retried = server.send(
        "PUT",
        "/api/v4/projects/root%2Fbroken/packages/generic/model/1.0.0/model.bin",
        &[],
        b"some bytes",
    );
    assert_eq!(retried.status, 201, "{}", retried.text());
}

#[test]
fn a_failed_metadata_sync_is_a_500_not_an_acknowledgement_and_the_log_has_the_chain() {
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path().join("data");
    let server = Logged::start(&dir, &data.path().join("stderr.log"));
    let created = server.send(
        "POST",
        "/api/v4/projects",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"name=unsynced",
    );
    assert_eq!(created.status, 201, "{}", created.text());

    // The metadata cannot be made durable: the write must not be acknowledged.
    break_dir(&dir.join("meta").join("blobs"));
    let upload = server.send(
        "PUT",
        "/api/v4/projects/root%2Funsynced/packages/generic/model/1.0.0/model.bin",
        &[],
        b"some bytes",
    );
    assert_eq!(upload.status, 500, "{}", upload.text());
    assert_eq!(
        upload.json(),
        json!({ "message": "500 Internal Server Error" })
    );
    let line = server.log_line("request failed");
    assert!(
        line.contains(&format!(
            "storage failed: the shared metadata flush failed: metadata store I/O: syncing the \
             metadata files: {NOT_A_DIRECTORY}"
        )),
        "the chain from the I/O error through the group commit: {line}"
    );
    restore_dir(&dir.join("meta").join("blobs"));
    let later = server.send(
        "PUT",
        "/api/v4/projects/root%2Funsynced/packages/generic/model/1.0.1/model.bin",
        &[],
        b"other bytes",
    );
    assert_eq!(later.status, 201, "{}", later.text());
}
