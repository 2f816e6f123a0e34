//! `modelyard migrate`: an embedded data dir (sled + local blobs) that a real server filled moves
//! into a fresh PostgreSQL database and an s3s-fs bucket prefix; `serve` on those stores, with an
//! empty data dir of its own, then serves everything the old server did, takes new writes with
//! fresh ids, and `verify` is clean. A non-empty destination is refused with nothing written,
//! and the committed v0.1 fixture data dir migrates too.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use common::fixture::*;
use common::postgres;
use common::s3::S3Server;
use common::*;
use serde_json::{json, Value};

/// `modelyard migrate` of `data_dir` into `database` and the bucket's `prefix`.
fn migrate(data_dir: &Path, database: &str, s3: &S3Server, prefix: &str) -> Output {
    Command::new(binary())
        .arg("migrate")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--metadata", database])
        .args(s3.flags(prefix))
        .envs(S3Server::env())
        .env_remove("MODELYARD_METADATA")
        .env_remove("MODELYARD_BLOBS")
        .env("MODELYARD_LOG", "warn")
        .output()
        .expect("run modelyard migrate")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A server on the migrated stores, with a new empty data dir.
fn serve_moved(database: &str, s3: &S3Server, prefix: &str, extra: &[&str]) -> TestServer {
    let mut args = vec!["--metadata".to_string(), database.to_string()];
    args.extend(s3.flags(prefix));
    args.extend(extra.iter().map(|s| s.to_string()));
    TestServer::start_with_env(&args, &S3Server::env())
}

/// `modelyard verify` on the migrated stores (from another empty data dir).
fn verify_moved(database: &str, s3: &S3Server, prefix: &str) -> Output {
    let dir = private_tempdir();
    Command::new(binary())
        .arg("verify")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--metadata", database])
        .args(s3.flags(prefix))
        .envs(S3Server::env())
        .env_remove("MODELYARD_METADATA")
        .output()
        .expect("run modelyard verify")
}

fn ok(reply: Reply, what: &str) -> Value {
    assert_eq!(reply.status, 200, "{what}: {}", reply.text());
    reply.json()
}

fn mlflow(project_id: u64, rest: &str) -> String {
    format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/{rest}")
}

fn latest_metric(run: &Value, key: &str) -> Option<f64> {
    run["data"]["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["key"] == key)
        .and_then(|m| m["value"].as_f64())
}

/// The answers compared before and after the move (the servers' addresses differ).
fn snapshot(server: &TestServer, project_id: u64, run_id: &str, experiment_id: &str) -> Value {
    let root = Api::root(server);
    let packages = root.get(&format!(
        "/api/v4/projects/{project_id}/packages?per_page=100"
    ));
    let total = packages.header("x-total").map(str::to_string);
    let searched = root.post_json(
        &mlflow(project_id, "mlflow/runs/search"),
        json!({ "experiment_ids": [experiment_id], "max_results": 10 }),
    );
    let snapshot = json!({
        "packages": ok(packages, "packages"),
        "packages_total": total,
        "models": ok(root.get(&ml(project_id, "models")), "models"),
        "versions": ok(root.get(&ml(project_id, "models/scorer/versions?per_page=100")), "versions"),
        "version": ok(root.get(&ml(project_id, "models/scorer/versions/1.1.0")), "version"),
        "run": ok(root.get(&mlflow(project_id, &format!("mlflow/runs/get?run_id={run_id}"))), "run"),
        "history": ok(root.get(&mlflow(project_id, &format!("mlflow/metrics/get-history?run_id={run_id}&metric_key=accuracy"))), "history"),
        "search": ok(searched, "search"),
        "users": ok(root.get("/api/v4/users"), "users"),
        "members": ok(root.get(&format!("/api/v4/projects/{project_id}/members")), "members"),
    });
    // Links name the server's address: make them comparable.
    let host = server.base.trim_start_matches("http://").to_string();
    serde_json::from_str(&snapshot.to_string().replace(&host, "HOST")).expect("json")
}

fn ids(listing: &Value) -> Vec<u64> {
    listing
        .as_array()
        .expect("a listing")
        .iter()
        .map(|item| item["id"].as_u64().expect("an id"))
        .collect()
}

#[test]
fn a_data_dir_moves_into_postgres_and_s3_and_the_new_stores_serve_everything() {
    let Some(s3) = S3Server::start("migrate") else {
        return;
    };
    let Some(database) = postgres::fresh_database("migrate") else {
        return;
    };

    // A real server fills an embedded data dir.
    let mut source = TestServer::start_embedded_with(&[]);
    let (alice_id, alice_token) = user_with_token(&source, "alice", "api");
    let (_, reader_token) = user_with_token(&source, "reader", "read_api");
    let project_id = project(&source, "fraud", "private");
    add_member(&source, project_id, alice_id, 30);
    let alice = Api::with_token(&source, &alice_token);
    let mut files: Vec<(String, String)> = Vec::new(); // (download path, sha256)
    let generic = |package: &str, version: &str, name: &str| {
        format!("/api/v4/projects/{project_id}/packages/generic/{package}/{version}/{name}")
    };
    for (i, (package, version, name, len)) in [
        ("datasets", "2024.1.0", "train.csv", 3000),
        (
            "datasets",
            "2024.1.0",
            "big/shard.bin",
            6 * 1024 * 1024 + 17,
        ),
        ("reports", "1.0.0", "summary.txt", 10),
    ]
    .into_iter()
    .enumerate()
    {
        let body = random_bytes(len, i as u64);
        let path = generic(package, version, name);
        let put = alice.put_bytes(&path, &body);
        assert_eq!(put.status, 201, "{path}: {}", put.text());
        files.push((path, sha256_hex(&body)));
    }
    let model = alice.post_json(
        &ml(project_id, "models"),
        json!({ "name": "scorer", "description": "# Scorer" }),
    );
    assert_eq!(model.status, 201, "{}", model.text());
    for (i, version) in ["1.0.0", "1.1.0", "2.0.0-rc.1"].into_iter().enumerate() {
        let created = alice.post_json(
            &ml(project_id, "models/scorer/versions"),
            json!({ "version": version, "description": format!("v{version}") }),
        );
        assert_eq!(created.status, 201, "{}", created.text());
        let body = random_bytes(2000 + i * 100, 100 + i as u64);
        let path = generic("scorer", version, "model.onnx");
        let put = alice.put_bytes(&path, &body);
        assert_eq!(put.status, 201, "{path}: {}", put.text());
        files.push((path, sha256_hex(&body)));
    }
    // An MLflow run with params, metrics and an artifact.
    let experiment = alice.post_json(
        &mlflow(project_id, "mlflow/experiments/create"),
        json!({ "name": "churn" }),
    );
    let experiment_id = ok(experiment, "experiments/create")["experiment_id"]
        .as_str()
        .expect("experiment id")
        .to_string();
    let run = alice.post_json(
        &mlflow(project_id, "mlflow/runs/create"),
        json!({ "experiment_id": experiment_id, "run_name": "trial-1" }),
    );
    let run_id = ok(run, "runs/create")["run"]["info"]["run_id"]
        .as_str()
        .expect("run id")
        .to_string();
    let logged = alice.post_json(
        &mlflow(project_id, "mlflow/runs/log-batch"),
        json!({
            "run_id": run_id,
            "params": [{ "key": "lr", "value": "0.1" }, { "key": "trees", "value": "100" }],
            "metrics": (0..3).map(|i| json!({ "key": "accuracy", "value": 0.6 + i as f64 / 10.0, "timestamp": 1_700_000_000_000i64 + i, "step": i })).collect::<Vec<_>>(),
        }),
    );
    ok(logged, "log-batch");
    let artifact = random_bytes(4096, 7);
    let artifact_path = mlflow(
        project_id,
        &format!("mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/model.pkl"),
    );
    let put = alice.put_bytes(&artifact_path, &artifact);
    assert_eq!(put.status, 200, "artifact: {}", put.text());
    files.push((artifact_path, sha256_hex(&artifact)));

    let before = snapshot(&source, project_id, &run_id, &experiment_id);
    let old_packages = ids(&before["packages"]);
    let old_versions = ids(&before["versions"]);
    let old_users = ids(&before["users"]);
    let local_blobs = source.blob_count();
    assert!(local_blobs >= files.len(), "{local_blobs} blobs");
    assert!(source.stop().success(), "the source server stops cleanly");

    // The move.
    let moved = migrate(source.data_dir(), &database, &s3, "moved");
    let (stdout, stderr) = (text(&moved.stdout), text(&moved.stderr));
    assert!(moved.status.success(), "migrate: {stdout}\n{stderr}");
    assert!(stdout.contains("0 problems"), "{stdout}");
    assert!(
        stdout.contains(&format!("{local_blobs} blobs ({local_blobs} copied")),
        "{stdout}"
    );
    assert!(
        stderr.contains("migrate: table users:"),
        "progress on stderr: {stderr}"
    );
    assert!(
        !stdout.contains(postgres_password(&database)),
        "the password stays hidden"
    );
    // Every blob is in the bucket, none in the new server's data dir.
    let objects = s3_blobs(&s3, "moved");
    assert_eq!(objects, local_blobs, "blobs in the bucket");

    // The new stores serve everything, from an empty data dir.
    let mut moved_server = serve_moved(&database, &s3, "moved", &[]);
    let after = snapshot(&moved_server, project_id, &run_id, &experiment_id);
    for key in before.as_object().expect("snapshot").keys() {
        assert_eq!(before[key], after[key], "{key} after the move");
    }
    let root = Api::root(&moved_server);
    let alice = Api::with_token(&moved_server, &alice_token);
    let me = ok(alice.get("/api/v4/user"), "alice's old token");
    assert_eq!(me["username"], "alice");
    let reader = Api::with_token(&moved_server, &reader_token);
    let refused = reader.post_json("/api/v4/projects", json!({ "name": "nope" }));
    assert_eq!(refused.status, 403, "a read_api token still only reads");
    for (path, sha256) in &files {
        let got = alice.get(path);
        assert_eq!(got.status, 200, "{path}: {}", got.text());
        assert_eq!(&sha256_hex(&got.body), sha256, "{path} after the move");
    }
    let range = raw(
        &moved_server.base,
        "GET",
        &files[1].0,
        &[("PRIVATE-TOKEN", &alice_token), ("Range", "bytes=100-199")],
        b"",
    );
    assert_eq!(range.status, 206, "a range of a moved blob");
    assert_eq!(range.body.len(), 100);
    let resolved = ok(
        alice.get(&ml(
            project_id,
            "models/scorer/versions/resolve?requirement=%5E1",
        )),
        "resolve",
    );
    assert_eq!(resolved["version"], "1.1.0");
    let run = &after["run"]["run"];
    assert_eq!(latest_metric(run, "accuracy"), Some(0.8), "{run}");
    let searched = root.post_json(
        &mlflow(project_id, "mlflow/runs/search"),
        json!({ "experiment_ids": [experiment_id], "filter": "metrics.accuracy > 0.7 and params.lr = '0.1'" }),
    );
    let searched = ok(searched, "runs/search with a filter");
    assert_eq!(searched["runs"][0]["info"]["run_id"], run_id, "{searched}");

    // New writes get fresh ids.
    let version = alice.post_json(
        &ml(project_id, "models/scorer/versions"),
        json!({ "version": "3.0.0" }),
    );
    assert_eq!(version.status, 201, "{}", version.text());
    let version_id = version.json()["id"].as_u64().expect("version id");
    assert!(
        old_versions.iter().all(|old| *old < version_id),
        "new version id {version_id} after {old_versions:?}"
    );
    let duplicate = alice.post_json(
        &ml(project_id, "models/scorer/versions"),
        json!({ "version": "1.0.0" }),
    );
    assert_eq!(duplicate.status, 400, "an old version still exists");
    let body = random_bytes(1234, 99);
    let put = alice.put_bytes(&generic("after-move", "1.0.0", "a.bin"), &body);
    assert_eq!(put.status, 201, "{}", put.text());
    let listing = ok(
        root.get(&format!(
            "/api/v4/projects/{project_id}/packages?per_page=100"
        )),
        "packages after the move",
    );
    let highest_old = old_packages
        .iter()
        .chain(&old_versions)
        .chain(&old_users)
        .max()
        .copied()
        .unwrap_or(0);
    let new_packages: Vec<&Value> = listing
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| !old_packages.contains(&p["id"].as_u64().expect("id")))
        .collect();
    assert!(
        new_packages.iter().any(|p| p["name"] == "after-move"),
        "the new package is listed: {listing}"
    );
    assert!(
        new_packages
            .iter()
            .all(|p| p["id"].as_u64().expect("id") > highest_old),
        "new packages {new_packages:?} after ids up to {highest_old}"
    );
    let (bob_id, _) = user_with_token(&moved_server, "bob", "api");
    assert!(bob_id > highest_old, "new user id {bob_id}");
    assert_eq!(
        moved_server.blob_count(),
        0,
        "the new server keeps no blob of its own"
    );
    assert!(moved_server.stop().success());

    let verified = verify_moved(&database, &s3, "moved");
    assert!(
        verified.status.success(),
        "verify on the destination: {}\n{}",
        text(&verified.stdout),
        text(&verified.stderr)
    );
    assert!(
        text(&verified.stdout).contains("0 corrupt, 0 missing"),
        "{}",
        text(&verified.stdout)
    );
}

/// The password part of a PostgreSQL URL.
fn postgres_password(url: &str) -> &str {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(auth, _)| auth.split_once(':'))
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty())
        .unwrap_or("\u{0}no password")
}

/// How many blobs the bucket holds under `prefix`.
fn s3_blobs(s3: &S3Server, prefix: &str) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(s3.keys(&format!("{prefix}/blobs"))).len()
}

/// Every table of a database: its entry count and digest.
fn database_state(url: &str) -> BTreeMap<&'static str, (u64, String)> {
    use modelyard::store::copy::summarize;
    use modelyard::store::meta::Table;
    let pg = modelyard::store::pg_meta::PgMeta::open(url).expect("open the database");
    Table::ALL
        .iter()
        .map(|&table| {
            let summary = summarize(&pg, table).expect("summarize");
            (table.name(), (summary.rows, summary.digest))
        })
        .collect()
}

#[test]
fn a_non_empty_destination_a_running_server_and_no_destination_are_refused() {
    let Some(s3) = S3Server::start("migrate-refused") else {
        return;
    };
    let Some(database) = postgres::fresh_database("migrate-refused") else {
        return;
    };
    let mut source = TestServer::start_embedded_with(&[]);
    let project_id = project(&source, "p", "private");
    let put = Api::root(&source).put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/generic/p/1.0.0/f.bin"),
        b"contents",
    );
    assert_eq!(put.status, 201, "{}", put.text());

    // While the server runs, the data dir is locked: refused, nothing opened elsewhere.
    let running = migrate(source.data_dir(), &database, &s3, "refused");
    assert!(
        !running.status.success(),
        "migrate next to a running server"
    );
    assert!(
        text(&running.stderr).contains("is a server running"),
        "{}",
        text(&running.stderr)
    );
    assert!(source.stop().success());

    // Without a destination there is nothing to do.
    let nowhere = Command::new(binary())
        .arg("migrate")
        .arg("--data-dir")
        .arg(source.data_dir())
        .env_remove("MODELYARD_METADATA")
        .env_remove("MODELYARD_BLOBS")
        .output()
        .expect("run migrate");
    assert!(!nowhere.status.success());
    assert!(
        text(&nowhere.stderr).contains("nothing to migrate to"),
        "{}",
        text(&nowhere.stderr)
    );

    // A database that holds records already (another instance's): refused, nothing written.
    let other = private_tempdir();
    let created = Command::new(binary())
        .args(["user", "create", "someone"])
        .arg("--data-dir")
        .arg(other.path())
        .args(["--metadata", &database])
        .env("MODELYARD_LOG", "warn")
        .output()
        .expect("user create");
    assert!(created.status.success(), "{}", text(&created.stderr));
    let before = database_state(&database);
    assert!(before["users"].0 >= 2, "root and someone: {before:?}");
    let refused = migrate(source.data_dir(), &database, &s3, "refused");
    let stderr = text(&refused.stderr);
    assert!(!refused.status.success(), "migrate into a used database");
    assert!(
        stderr.contains("is not empty") && stderr.contains("drop and re-create"),
        "{stderr}"
    );
    assert!(!stderr.contains(postgres_password(&database)), "{stderr}");
    assert_eq!(
        database_state(&database),
        before,
        "the database is unchanged"
    );
    assert_eq!(s3_blobs(&s3, "refused"), 0, "no blob was copied");
}

#[test]
fn the_v0_1_fixture_data_dir_migrates_and_is_served_from_postgres_and_s3() {
    let Some(s3) = S3Server::start("migrate-fixture") else {
        return;
    };
    let Some(database) = postgres::fresh_database("migrate-fixture") else {
        return;
    };
    let expected = v0_1_expected();
    let copy = v0_1_copy();
    let dir = copy.path().join("data");

    // The v0.1 layout is upgraded on the way (as serve would), then copied.
    let moved = migrate(&dir, &database, &s3, "fixture");
    let stdout = text(&moved.stdout);
    assert!(
        moved.status.success(),
        "migrate of the v0.1 fixture: {stdout}\n{}",
        text(&moved.stderr)
    );
    assert!(stdout.contains("0 problems"), "{stdout}");

    let root_token = list(&expected, "users")
        .iter()
        .find(|u| u["username"] == "root")
        .map(|u| s(u, "token").to_string())
        .expect("root in the fixture");
    let mut server = serve_moved(&database, &s3, "fixture", &["--root-token", &root_token]);
    for user in list(&expected, "users") {
        let me = ok(
            Api::with_token(&server, s(user, "token")).get("/api/v4/user"),
            "an old token",
        );
        assert_eq!(me["id"], user["id"], "{me}");
    }
    let root = Api::with_token(&server, &root_token);
    // The newest file of each path, downloaded by sha256: generic files by their path, model
    // version files through the ML model files API (their names may hold spaces, which the
    // generic API refuses).
    let mut newest: BTreeMap<String, String> = BTreeMap::new();
    for file in list(&expected, "generic_files") {
        let url = format!(
            "/api/v4/projects/{}/packages/generic/{}/{}/{}",
            n(file, "project_id"),
            s(file, "package"),
            path_encode(s(file, "version")),
            path_encode(s(file, "path"))
        );
        newest.insert(url, s(file, "sha256").to_string());
    }
    for file in list(&expected, "version_files") {
        let project = n(file, "project_id");
        let version = ok(
            root.get(&ml(
                project,
                &format!(
                    "models/{}/versions/{}",
                    path_encode(s(file, "model")),
                    path_encode(s(file, "version"))
                ),
            )),
            "a version of the fixture",
        );
        let url = format!(
            "/api/v4/projects/{project}/packages/ml_models/{}/files/{}",
            n(&version, "id"),
            path_encode(s(file, "path"))
        );
        newest.insert(url, s(file, "sha256").to_string());
    }
    for (url, sha256) in &newest {
        let got = root.get(url);
        assert_eq!(got.status, 200, "{url}: {}", got.text());
        assert_eq!(&sha256_hex(&got.body), sha256, "{url}");
    }
    for listing in list(&expected, "package_listings") {
        let url = format!(
            "/api/v4/projects/{}/packages?{}",
            n(listing, "project_id"),
            s(listing, "query")
        );
        let reply = root.get(&url);
        assert_eq!(reply.status, 200, "{url}");
        assert_eq!(
            reply.header("x-total"),
            Some(n(listing, "total").to_string().as_str()),
            "{url}"
        );
    }
    for listing in list(&expected, "version_listings") {
        let url = ml(
            n(listing, "project_id"),
            &format!("models/{}/versions?per_page=100", s(listing, "model")),
        );
        let order: Vec<Value> = ok(root.get(&url), &url)
            .as_array()
            .expect("versions")
            .iter()
            .map(|v| v["version"].clone())
            .collect();
        assert_eq!(Value::Array(order), listing["order"], "{url}");
    }
    let project = n(&list(&expected, "experiments")[0], "project_id");
    for run in list(&expected, "runs") {
        let url = mlflow(
            project,
            &format!("mlflow/runs/get?run_id={}", s(run, "run_id")),
        );
        let shown = ok(root.get(&url), &url);
        assert_eq!(shown["run"]["info"]["run_name"], run["run_name"], "{shown}");
        for (key, values) in run["history"].as_object().expect("history") {
            let last = values
                .as_array()
                .and_then(|v| v.last())
                .and_then(Value::as_f64);
            assert_eq!(latest_metric(&shown["run"], key), last, "{key}: {shown}");
        }
    }
    // New records continue above the fixture's ids.
    let old_ids: Vec<u64> = list(&expected, "projects")
        .iter()
        .map(|p| n(p, "id"))
        .chain(list(&expected, "users").iter().map(|u| n(u, "id")))
        .collect();
    let created = root.post_json(
        "/api/v4/projects",
        json!({ "name": "after-migrate", "visibility": "private" }),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let new_id = n(&created.json(), "id");
    assert!(
        old_ids.iter().all(|old| *old < new_id),
        "{new_id} after {old_ids:?}"
    );
    assert!(server.stop().success());

    let verified = verify_moved(&database, &s3, "fixture");
    assert!(
        verified.status.success(),
        "{}\n{}",
        text(&verified.stdout),
        text(&verified.stderr)
    );
}
