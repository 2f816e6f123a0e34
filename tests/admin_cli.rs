//! The admin commands on a stopped server's data dir.

mod common;

use common::*;

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "command failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn verify_reports_a_flipped_byte_and_exits_non_zero() {
    let mut server = TestServer::start();
    let project_id = project(&server, "verify", "private");
    let api = Api::root(&server);
    assert_eq!(
        api.put_bytes(
            &format!("/api/v4/projects/{project_id}/packages/generic/v/1.0.0/a.bin"),
            &random_bytes(10_000, 1)
        )
        .status,
        201
    );
    assert_eq!(
        api.put_bytes(
            &format!("/api/v4/projects/{project_id}/packages/generic/v/1.0.0/b.bin"),
            &random_bytes(10_000, 2)
        )
        .status,
        201
    );
    server.stop();

    let clean = server.admin(&["verify"]);
    assert!(stdout(&clean).contains("2 blobs checked, 0 corrupt, 0 missing"));

    let victim = server.blob_paths().into_iter().next().unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[1234] ^= 0x40;
    std::fs::write(&victim, bytes).unwrap();
    let dirty = server.admin(&["verify"]);
    assert!(
        !dirty.status.success(),
        "verify must exit non-zero on a mismatch"
    );
    let report = String::from_utf8_lossy(&dirty.stdout);
    let name = victim.file_name().unwrap().to_str().unwrap();
    assert!(report.contains(&format!("CORRUPT blob {name}")), "{report}");

    std::fs::remove_file(&victim).unwrap();
    let missing = server.admin(&["verify"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stdout).contains(&format!("MISSING blob {name}")));
}

#[test]
fn users_tokens_projects_and_members_from_the_command_line() {
    let mut server = TestServer::start();
    server.stop();
    stdout(&server.admin(&[
        "user",
        "create",
        "alice",
        "--name",
        "Alice",
        "--password",
        "a-long-password",
    ]));
    assert!(stdout(&server.admin(&["user", "list"])).contains("alice\tAlice"));
    let token = stdout(&server.admin(&["token", "create", "alice", "--name", "ci"]))
        .trim()
        .to_string();
    assert!(token.starts_with("glpat-"));
    stdout(&server.admin(&[
        "project",
        "create",
        "ml-team/fraud",
        "--visibility",
        "private",
    ]));
    assert!(stdout(&server.admin(&["project", "list"])).contains("ml-team/fraud\tprivate"));
    stdout(&server.admin(&["member", "add", "ml-team/fraud", "alice", "developer"]));
    let refused = server.admin(&["member", "add", "ml-team/fraud", "alice", "superuser"]);
    assert!(!refused.status.success());

    server.restart();
    let alice = Api::with_token(&server, &token);
    let upload = alice.put_bytes(
        "/api/v4/projects/ml-team%2Ffraud/packages/generic/m/1.0.0/f.txt",
        b"hi",
    );
    assert_eq!(upload.status, 201, "{}", upload.text());
    server.stop();

    let listed = stdout(&server.admin(&["token", "list", "alice"]));
    let id = listed.split('\t').next().unwrap().to_string();
    stdout(&server.admin(&["token", "revoke", &id]));
    server.restart();
    assert_eq!(
        Api::with_token(&server, &token).get("/api/v4/user").status,
        401
    );
}

#[test]
fn a_generated_root_token_is_printed_once_and_saved_privately() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env_remove("MODELYARD_ROOT_TOKEN")
        .env("MODELYARD_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let base = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(base) = line.strip_prefix("modelyard listening on ") {
            break base.to_string();
        }
        printed.push(line);
    };
    let file = data.path().join("initial_root_token");
    let saved = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(
        printed.iter().any(|l| l.trim() == saved),
        "the token is printed: {printed:?}"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let me = raw(
        &base,
        "GET",
        "/api/v4/user",
        &[("PRIVATE-TOKEN", &saved)],
        b"",
    );
    assert_eq!(me.json()["username"], "root");
    assert_eq!(me.json()["is_admin"], true);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_backup_is_a_verified_data_dir_that_serves_the_same_files() {
    if embedded_only(
        "a_backup_is_a_verified_data_dir_that_serves_the_same_files",
        "backup copies an embedded data dir (on PostgreSQL it refuses: pg_dump is the tool)",
    ) {
        return;
    }
    let mut server = TestServer::start();
    let project_id = project(&server, "backup", "private");
    let api = Api::root(&server);
    let kept = random_bytes(300_000, 7);
    let path = format!("/api/v4/projects/{project_id}/packages/generic/kept/1.0.0/kept.bin");
    assert_eq!(api.put_bytes(&path, &kept).status, 201);
    let dropped = format!("/api/v4/projects/{project_id}/packages/generic/dropped/1.0.0/x.bin");
    assert_eq!(api.put_bytes(&dropped, &random_bytes(5_000, 8)).status, 201);
    let packages = api.get(&format!(
        "/api/v4/projects/{project_id}/packages?package_name=dropped"
    ));
    let dropped_id = packages.json()[0]["id"].as_u64().unwrap();
    assert_eq!(
        api.delete(&format!(
            "/api/v4/projects/{project_id}/packages/{dropped_id}"
        ))
        .status,
        204
    );
    server.stop();

    let dest = tempfile::tempdir().unwrap();
    let target = dest.path().join("copy");
    let output = server.admin(&["backup", target.to_str().unwrap()]);
    let report = stdout(&output);
    assert!(
        report.contains("1 blobs (300000 bytes)") && report.contains("verified"),
        "{report}"
    );
    // Refuses to overwrite a backup.
    assert!(!server
        .admin(&["backup", target.to_str().unwrap()])
        .status
        .success());

    let restored = TestServer::start_from(&target);
    let api = Api::root(&restored);
    let fetched = api.get(&path);
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, kept);
    assert_eq!(api.get(&dropped).status, 404);
}
