//! Upgrades keep data: a data dir written by the v0.1 release (`fixtures/v0.1-datadir`, made by
//! `fixtures/make-v0.1.sh` with the release binary) opens with the current binary, and every
//! fact in `fixtures/v0.1-expected.json` holds over HTTP: the old tokens and password, projects
//! and members, downloads by sha256, listings and their totals, SemVer order and resolution, MLflow
//! runs, searches, versions and aliases. Then again after a restart (an upgrade runs once and is
//! idempotent), and the upgraded data takes new writes.
//!
//! The checks compare behaviour, never the on-disk layout, so that new indexes built on first start
//! do not break them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::fixture::*;
use common::*;
use serde_json::{json, Value};

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn token_of(expected: &Value, username: &str) -> String {
    list(expected, "users")
        .iter()
        .find(|u| s(u, "username") == username)
        .map(|u| s(u, "token").to_string())
        .unwrap_or_else(|| panic!("user {username} in the fixture"))
}

fn root_token(expected: &Value) -> String {
    token_of(expected, "root")
}

fn start(dir: &Path, expected: &Value) -> TestServer {
    // The fixture's own root token, so that start-up adds no token of its own.
    TestServer::start_from_with(dir, &["--root-token", &root_token(expected)])
}

fn mlflow(project_id: u64, rest: &str) -> String {
    format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/{rest}")
}

fn ok(reply: Reply, what: &str) -> Value {
    assert_eq!(reply.status, 200, "{what}: {}", reply.text());
    reply.json()
}

// ---- the checks --------------------------------------------------------------------------------

fn check_users(server: &TestServer, expected: &Value) {
    for user in list(expected, "users") {
        let api = Api::with_token(server, s(user, "token"));
        let me = ok(api.get("/api/v4/user"), "GET /user with an old token");
        assert_eq!(me["username"], user["username"], "{me}");
        assert_eq!(me["id"], user["id"], "{me}");
        if user["admin"] == true {
            assert_eq!(me["is_admin"], true, "{me}");
        }
        if s(user, "scope") == "read_api" {
            let write = api.post_json(
                "/api/v4/projects",
                json!({ "name": "not-allowed", "visibility": "private" }),
            );
            assert_eq!(write.status, 403, "a read_api token still only reads");
        }
        if let Some(password) = user["password"].as_str() {
            assert_eq!(
                web_sign_in(server, s(user, "username"), password).status,
                303,
                "signing in with the old password"
            );
            assert_ne!(
                web_sign_in(server, s(user, "username"), "not-the-password").status,
                303,
                "a wrong password is still refused"
            );
        }
    }
    let bad = Api::with_token(server, "glpat-not-a-token").get("/api/v4/user");
    assert_eq!(bad.status, 401);
}

fn check_projects(server: &TestServer, expected: &Value) {
    let root = Api::with_token(server, &root_token(expected));
    let anonymous = Api::anonymous(server);
    for project in list(expected, "projects") {
        let id = n(project, "id");
        let shown = ok(root.get(&format!("/api/v4/projects/{id}")), "GET project");
        assert_eq!(shown["path_with_namespace"], project["path"], "{shown}");
        assert_eq!(shown["visibility"], project["visibility"], "{shown}");
        let by_path = ok(
            root.get(&format!(
                "/api/v4/projects/{}",
                url_encode(s(project, "path"))
            )),
            "GET project by path",
        );
        assert_eq!(by_path["id"], id);
        let anonymous_status = anonymous.get(&format!("/api/v4/projects/{id}")).status;
        let visible = s(project, "visibility") == "public";
        assert_eq!(
            anonymous_status,
            if visible { 200 } else { 404 },
            "anonymous sees only public projects"
        );
    }
    for member in list(expected, "members") {
        let reply = root.get(&format!(
            "/api/v4/projects/{}/members/{}",
            n(member, "project_id"),
            n(member, "user_id")
        ));
        let shown = ok(reply, "GET member");
        assert_eq!(shown["access_level"], member["access_level"], "{shown}");
    }
    // Access still follows membership: bob (Reporter of ml-team/vision) reads it, carol does not.
    let vision = list(expected, "projects")
        .iter()
        .find(|p| s(p, "path") == "ml-team/vision")
        .map(|p| n(p, "id"))
        .expect("ml-team/vision");
    let bob = Api::with_token(server, &token_of(expected, "bob"));
    let carol = Api::with_token(server, &token_of(expected, "carol"));
    assert_eq!(bob.get(&format!("/api/v4/projects/{vision}")).status, 200);
    assert_eq!(carol.get(&format!("/api/v4/projects/{vision}")).status, 404);
}

/// The bytes a download answered, checked against the sha256 and size the fixture recorded.
fn assert_bytes(reply: &Reply, entry: &Value, what: &str) {
    assert_eq!(reply.status, 200, "{what}: {}", reply.text());
    assert_eq!(reply.body.len() as u64, n(entry, "size"), "{what}: size");
    assert_eq!(
        sha256_hex(&reply.body),
        s(entry, "sha256"),
        "{what}: sha256"
    );
}

fn check_generic_files(server: &TestServer, expected: &Value) {
    let root = Api::with_token(server, &root_token(expected));
    // A path uploaded twice answers with the newer file: the last one the fixture recorded.
    let mut newest: BTreeMap<(u64, String, String, String), &Value> = BTreeMap::new();
    for file in list(expected, "generic_files") {
        let key = (
            n(file, "project_id"),
            s(file, "package").to_string(),
            s(file, "version").to_string(),
            s(file, "path").to_string(),
        );
        newest.insert(key, file);
    }
    for ((project, package, version, path), file) in &newest {
        let url = format!(
            "/api/v4/projects/{project}/packages/generic/{package}/{}/{}",
            path_encode(version),
            path_encode(path)
        );
        assert_bytes(&root.get(&url), file, &url);
    }
    // Both files of a duplicated name are still there, with their own checksums.
    for duplicate in list(expected, "duplicate_names") {
        let project = n(duplicate, "project_id");
        let package = package_id(
            &root,
            project,
            s(duplicate, "package"),
            s(duplicate, "version"),
        );
        let files = ok(
            root.get(&format!(
                "/api/v4/projects/{project}/packages/{package}/package_files"
            )),
            "package files",
        );
        let listed: BTreeSet<String> = files
            .as_array()
            .expect("files")
            .iter()
            .filter(|f| f["file_name"] == duplicate["path"])
            .map(|f| s(f, "file_sha256").to_string())
            .collect();
        let recorded: BTreeSet<String> = list(expected, "generic_files")
            .iter()
            .filter(|f| {
                n(f, "project_id") == project
                    && f["package"] == duplicate["package"]
                    && f["version"] == duplicate["version"]
                    && f["path"] == duplicate["path"]
            })
            .map(|f| s(f, "sha256").to_string())
            .collect();
        assert_eq!(listed.len() as u64, n(duplicate, "count"), "{files}");
        assert_eq!(listed, recorded);
    }
}

/// The id of a package, found through the listing's filters (hidden ones too).
fn package_id(api: &Api, project: u64, name: &str, version: &str) -> u64 {
    for status in ["default", "hidden"] {
        let found = ok(
            api.get(&format!(
                "/api/v4/projects/{project}/packages?package_name={}&package_version={}&status={status}",
                url_encode(name),
                url_encode(version)
            )),
            "package listing",
        );
        if let Some(package) = found
            .as_array()
            .expect("packages")
            .iter()
            .find(|p| p["name"] == name && p["version"] == version)
        {
            return n(package, "id");
        }
    }
    panic!("package {name}/{version} of project {project} is not listed")
}

fn check_package_listings(server: &TestServer, expected: &Value) {
    let root = Api::with_token(server, &root_token(expected));
    for listing in list(expected, "package_listings") {
        let url = format!(
            "/api/v4/projects/{}/packages?{}",
            n(listing, "project_id"),
            s(listing, "query")
        );
        let reply = root.get(&url);
        assert_eq!(reply.status, 200, "{url}: {}", reply.text());
        assert_eq!(
            reply.header("x-total"),
            Some(n(listing, "total").to_string().as_str()),
            "{url}: X-Total"
        );
        assert_eq!(
            reply.header("x-total-pages"),
            Some(n(listing, "total_pages").to_string().as_str()),
            "{url}: X-Total-Pages"
        );
        let page: Vec<Value> = reply
            .json()
            .as_array()
            .expect("a page of packages")
            .iter()
            .map(|p| json!({ "name": p["name"], "version": p["version"], "package_type": p["package_type"], "status": p["status"] }))
            .collect();
        assert_eq!(Value::Array(page), listing["page"], "{url}: the page");
    }
}

fn check_models(server: &TestServer, expected: &Value) {
    let root = Api::with_token(server, &root_token(expected));
    for model in list(expected, "models") {
        let shown = ok(
            root.get(&ml(
                n(model, "project_id"),
                &format!("models/{}", url_encode(s(model, "name"))),
            )),
            "GET model",
        );
        assert_eq!(shown["description"], model["description"], "{shown}");
    }
    for listing in list(expected, "version_listings") {
        let project = n(listing, "project_id");
        let model = url_encode(s(listing, "model"));
        let reply = root.get(&ml(
            project,
            &format!("models/{model}/versions?per_page=100"),
        ));
        assert_eq!(reply.status, 200, "{}", reply.text());
        let order: Vec<Value> = reply
            .json()
            .as_array()
            .expect("versions")
            .iter()
            .map(|v| v["version"].clone())
            .collect();
        assert_eq!(Value::Array(order.clone()), listing["order"], "{model}");
        assert_eq!(
            reply.header("x-total"),
            Some(order.len().to_string().as_str())
        );
        // Newest first by SemVer precedence (build metadata breaks ties in SemVer's total order).
        let parsed: Vec<semver::Version> = order
            .iter()
            .map(|v| semver::Version::parse(v.as_str().expect("version")).expect("SemVer"))
            .collect();
        assert!(
            parsed.windows(2).all(|w| w[0] > w[1]),
            "{model}: {parsed:?}"
        );
        let shown = ok(
            root.get(&ml(project, &format!("models/{model}"))),
            "GET model",
        );
        // v0.1 called the highest version "latest", prereleases included; this release follows
        // the design: the highest release, the highest prerelease only when there is no release.
        let releases: Vec<&semver::Version> = parsed.iter().filter(|v| v.pre.is_empty()).collect();
        let latest = releases.first().copied().or(parsed.first());
        assert_eq!(
            shown["latest_version"]["version"].as_str(),
            latest.map(|v| v.to_string()).as_deref(),
            "{shown} (v0.1 said {})",
            listing["latest"]
        );
        assert_eq!(shown["version_count"], listing["version_count"], "{shown}");
        assert_eq!(
            shown["candidate_count"], listing["candidate_count"],
            "{shown}"
        );
    }
    for version in list(expected, "versions") {
        let url = ml(
            n(version, "project_id"),
            &format!(
                "models/{}/versions/{}",
                url_encode(s(version, "model")),
                url_encode(s(version, "version"))
            ),
        );
        let shown = ok(root.get(&url), &url);
        assert_eq!(shown["version"], version["version"], "{shown}");
    }
    for resolution in list(expected, "resolve") {
        let project = n(resolution, "project_id");
        let model = url_encode(s(resolution, "model"));
        let requirement = url_encode(s(resolution, "requirement"));
        let url = ml(
            project,
            &format!("models/{model}/versions/resolve?requirement={requirement}"),
        );
        let resolved = ok(root.get(&url), &url);
        assert_eq!(resolved["version"], resolution["version"], "{url}");
    }
}

fn check_version_files(server: &TestServer, expected: &Value) {
    let root = Api::with_token(server, &root_token(expected));
    // Files of versions uploaded by generic package path count as version files too.
    let generic_model_files = list(expected, "generic_files").iter().filter(|f| {
        list(expected, "models")
            .iter()
            .any(|m| m["name"] == f["package"] && m["project_id"] == f["project_id"])
    });
    let all: Vec<Value> = list(expected, "version_files")
        .iter()
        .cloned()
        .chain(generic_model_files.map(|f| {
            json!({ "project_id": f["project_id"], "model": f["package"], "version": f["version"],
                    "path": f["path"], "sha256": f["sha256"], "size": f["size"] })
        }))
        .collect();
    for file in &all {
        let project = n(file, "project_id");
        let (model, version, path) = (s(file, "model"), s(file, "version"), s(file, "path"));
        let shown = ok(
            root.get(&ml(
                project,
                &format!(
                    "models/{}/versions/{}",
                    url_encode(model),
                    url_encode(version)
                ),
            )),
            "GET version",
        );
        let listed = shown["files"]
            .as_array()
            .expect("files")
            .iter()
            .find(|f| f["file_name"] == path)
            .unwrap_or_else(|| panic!("{model} {version}: {path} in {shown}"));
        assert_eq!(listed["sha256"], file["sha256"]);
        assert_eq!(listed["size"], file["size"]);
        let by_id = format!(
            "/api/v4/projects/{project}/packages/ml_models/{}/files/{}",
            n(&shown, "id"),
            path_encode(path)
        );
        assert_bytes(&root.get(&by_id), file, &by_id);
        // The OCI surface finds the blob by digest in its repository: the upgrade indexed every
        // file by sha256 (schema version 3).
        let project_path = list(expected, "projects")
            .iter()
            .find(|p| n(p, "id") == project)
            .map(|p| s(p, "path"))
            .expect("the file's project");
        let layer = format!(
            "/v2/{project_path}/{model}/blobs/sha256:{}",
            s(file, "sha256")
        );
        assert_bytes(&root.get(&layer), file, &layer);
        if !path.contains(' ') {
            // (The generic API refuses names with spaces, and so does the download_path of
            // such a file, in v0.1 as now: only the ML model files API serves them.)
            let download_path = s(listed, "download_path");
            assert_bytes(&root.get(download_path), file, download_path);
            let by_path = format!(
                "/api/v4/projects/{project}/packages/generic/{model}/{}/{}",
                path_encode(version),
                path_encode(path)
            );
            assert_bytes(&root.get(&by_path), file, &by_path);
        }
    }
    // A requirement in the version slot answers with the newest matching version's file.
    for resolution in list(expected, "resolve") {
        let Some(file) = all.iter().find(|f| {
            f["project_id"] == resolution["project_id"]
                && f["model"] == resolution["model"]
                && f["version"] == resolution["version"]
                && !s(f, "path").contains(' ')
        }) else {
            continue;
        };
        let url = format!(
            "/api/v4/projects/{}/packages/generic/{}/{}/{}",
            n(resolution, "project_id"),
            s(resolution, "model"),
            url_encode(s(resolution, "requirement")),
            path_encode(s(file, "path"))
        );
        let reply = root.get(&url);
        assert_bytes(&reply, file, &url);
        assert_eq!(
            reply.header("x-model-version"),
            resolution["version"].as_str(),
            "{url}"
        );
    }
}

/// The values of a metric history, in step order.
fn history_values(points: &[Value], key: &str) -> Vec<f64> {
    let mut points: Vec<&Value> = points.iter().filter(|m| m["key"] == key).collect();
    points.sort_by_key(|m| m["step"].as_i64().unwrap_or(0));
    points
        .iter()
        .map(|m| m["value"].as_f64().expect("a number"))
        .collect()
}

fn expected_history(entry: &Value) -> BTreeMap<String, Vec<f64>> {
    entry["history"]
        .as_object()
        .expect("history")
        .iter()
        .map(|(k, v)| {
            let values = v
                .as_array()
                .expect("values")
                .iter()
                .map(|x| x.as_f64().expect("a number"))
                .collect();
            (k.clone(), values)
        })
        .collect()
}

fn key_values(items: &Value) -> BTreeMap<String, Value> {
    items
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|kv| (s(kv, "key").to_string(), kv["value"].clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn check_candidates(server: &TestServer, expected: &Value) {
    let root = Api::with_token(server, &root_token(expected));
    for candidate in list(expected, "candidates") {
        let url = ml(
            n(candidate, "project_id"),
            &format!("candidates/{}", n(candidate, "iid")),
        );
        let shown = ok(root.get(&url), &url);
        assert_eq!(shown["run_id"], candidate["run_id"]);
        assert_eq!(shown["name"], candidate["name"]);
        assert_eq!(shown["experiment_iid"], candidate["experiment_iid"]);
        let params = key_values(&shown["params"]);
        for (key, value) in candidate["params"].as_object().expect("params") {
            assert_eq!(params.get(key), Some(value), "param {key} in {shown}");
        }
        let metadata = key_values(&shown["metadata"]);
        for (key, value) in candidate["metadata"].as_object().expect("metadata") {
            assert_eq!(metadata.get(key), Some(value), "metadata {key} in {shown}");
        }
        let history = shown["metric_history"].as_array().expect("history");
        let latest = shown["metrics"].as_array().expect("metrics");
        for (key, values) in expected_history(candidate) {
            assert_eq!(history_values(history, &key), values, "{key}");
            assert_eq!(
                history_values(latest, &key),
                vec![*values.last().expect("a value")],
                "latest {key}"
            );
        }
    }
}

fn check_mlflow(server: &TestServer, expected: &Value) {
    let root = Api::with_token(server, &root_token(expected));
    let experiments = list(expected, "experiments");
    let project = n(&experiments[0], "project_id");
    for experiment in experiments {
        let url = mlflow(
            project,
            &format!(
                "mlflow/experiments/get?experiment_id={}",
                s(experiment, "experiment_id")
            ),
        );
        let shown = ok(root.get(&url), &url);
        assert_eq!(shown["experiment"]["name"], experiment["name"], "{shown}");
    }
    for run in list(expected, "runs") {
        let run_id = s(run, "run_id");
        let url = mlflow(project, &format!("mlflow/runs/get?run_id={run_id}"));
        let shown = ok(root.get(&url), &url);
        let info = &shown["run"]["info"];
        let data = &shown["run"]["data"];
        assert_eq!(info["run_name"], run["run_name"], "{shown}");
        assert_eq!(info["status"], run["status"], "{shown}");
        assert_eq!(info["experiment_id"], run["experiment_id"], "{shown}");
        let params = key_values(&data["params"]);
        for (key, value) in run["params"].as_object().expect("params") {
            assert_eq!(params.get(key), Some(value), "param {key} of {run_id}");
        }
        let tags = key_values(&data["tags"]);
        for (key, value) in run["tags"].as_object().expect("tags") {
            assert_eq!(tags.get(key), Some(value), "tag {key} of {run_id}");
        }
        let latest = data["metrics"].as_array().expect("metrics");
        for (key, values) in expected_history(run) {
            assert_eq!(
                history_values(latest, &key),
                vec![*values.last().expect("a value")],
                "latest {key} of {run_id}"
            );
            let url = mlflow(
                project,
                &format!("mlflow/metrics/get-history?run_id={run_id}&metric_key={key}"),
            );
            let history = ok(root.get(&url), &url);
            assert_eq!(
                history_values(history["metrics"].as_array().expect("metrics"), &key),
                values,
                "history of {key} of {run_id}"
            );
        }
    }
    for model in list(expected, "registered_models") {
        let name = s(model, "name");
        let url = mlflow(
            project,
            &format!("mlflow/registered-models/get?name={}", url_encode(name)),
        );
        let shown = ok(root.get(&url), &url);
        let aliases: BTreeMap<String, Value> = shown["registered_model"]["aliases"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| (s(x, "alias").to_string(), x["version"].clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (alias, version) in model["aliases"].as_object().expect("aliases") {
            assert_eq!(aliases.get(alias), Some(version), "alias {alias}: {shown}");
        }
        for version in model["versions"].as_array().expect("versions") {
            let url = mlflow(
                project,
                &format!(
                    "mlflow/model-versions/get?name={}&version={}",
                    url_encode(name),
                    s(version, "version")
                ),
            );
            let shown = ok(root.get(&url), &url);
            let mv = &shown["model_version"];
            assert_eq!(mv["run_id"], version["run_id"], "{shown}");
            let semver = s(version, "semver");
            assert!(
                mv["aliases"]
                    .as_array()
                    .is_some_and(|a| a.iter().all(|x| x != semver)),
                "the SemVer string {semver} is not listed as an alias: {shown}"
            );
            // models:/<name>@<semver> resolves through the alias too.
            let url = mlflow(
                project,
                &format!(
                    "mlflow/registered-models/alias?name={}&alias={}",
                    url_encode(name),
                    url_encode(semver)
                ),
            );
            let by_alias = ok(root.get(&url), &url);
            assert_eq!(by_alias["model_version"]["version"], version["version"]);
        }
    }
    for logged in list(expected, "logged_models") {
        let url = mlflow(
            project,
            &format!("mlflow/logged-models/{}", s(logged, "model_id")),
        );
        let shown = ok(root.get(&url), &url);
        assert_eq!(shown["model"]["info"]["name"], logged["name"], "{shown}");
    }
    for search in list(expected, "mlflow_searches") {
        let path = s(search, "path");
        let reply = if s(search, "method") == "GET" {
            let query = search["params"]
                .as_object()
                .expect("params")
                .iter()
                .map(|(k, v)| format!("{k}={}", url_encode(v.as_str().expect("a string"))))
                .collect::<Vec<_>>()
                .join("&");
            root.get(&format!("{}?{query}", mlflow(project, path)))
        } else {
            root.post_json(&mlflow(project, path), search["params"].clone())
        };
        let found = ok(reply, s(search, "name"));
        let mut ids: Vec<String> = Vec::new();
        for run in found["runs"].as_array().into_iter().flatten() {
            ids.push(s(&run["info"], "run_id").to_string());
        }
        for mv in found["model_versions"].as_array().into_iter().flatten() {
            ids.push(format!("{}/{}", s(mv, "name"), s(mv, "version")));
        }
        for m in found["registered_models"].as_array().into_iter().flatten() {
            ids.push(s(m, "name").to_string());
        }
        for e in found["experiments"].as_array().into_iter().flatten() {
            ids.push(s(e, "name").to_string());
        }
        assert_eq!(json!(ids), search["ids"], "search {}", s(search, "name"));
    }
    for latest in list(expected, "latest_versions") {
        let found = ok(
            root.post_json(
                &mlflow(project, "mlflow/registered-models/get-latest-versions"),
                json!({ "name": latest["name"] }),
            ),
            "get-latest-versions",
        );
        let versions: Vec<Value> = found["model_versions"]
            .as_array()
            .expect("versions")
            .iter()
            .map(|v| v["version"].clone())
            .collect();
        assert_eq!(Value::Array(versions), latest["versions"]);
    }
}

/// An index a later schema version adds, built from the fixture's records by the upgrade:
/// versions by last update (MLflow's default version search).
fn check_later_indexes(server: &TestServer, expected: &Value) {
    let root = Api::with_token(server, &root_token(expected));
    for listing in list(expected, "version_listings") {
        let project = n(listing, "project_id");
        let filter = url_encode(&format!("name = '{}'", s(listing, "model")));
        let url = mlflow(
            project,
            &format!("mlflow/model-versions/search?filter={filter}&max_results=1000"),
        );
        let found = ok(root.get(&url), &url);
        let versions = found["model_versions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let count = listing["order"].as_array().map_or(0, Vec::len);
        assert_eq!(versions.len(), count, "{url}: {found}");
        let updated: Vec<i64> = versions
            .iter()
            .map(|v| v["last_updated_timestamp"].as_i64().expect("a timestamp"))
            .collect();
        assert!(
            updated.windows(2).all(|w| w[0] >= w[1]),
            "newest update first: {updated:?}"
        );
    }
}

/// Files by content, built by the upgrade: an old file deployed by its checksum into a fresh
/// package of the same project, read back by its bytes.
fn deploy_an_old_file_by_checksum(server: &TestServer, expected: &Value) {
    let root = Api::with_token(server, &root_token(expected));
    let file = &list(expected, "generic_files")[0];
    let project = n(file, "project_id");
    let url =
        format!("/api/v4/projects/{project}/packages/generic/deployed-by-checksum/1.0.0/copy.bin");
    let deployed = root.send(
        "PUT",
        &url,
        &[
            ("X-Checksum-Deploy", "true"),
            ("X-Checksum-Sha256", s(file, "sha256")),
        ],
        b"",
    );
    assert_eq!(deployed.status, 201, "{url}: {}", deployed.text());
    assert_bytes(&root.get(&url), file, &url);
}

/// An old version file whose name the generic packages URL takes as it is.
fn plain_version_file(expected: &Value) -> &Value {
    list(expected, "version_files")
        .iter()
        .find(|f| {
            s(f, "path")
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
        .expect("an old version file with a plain name")
}

fn check_everything(server: &TestServer, expected: &Value) {
    check_users(server, expected);
    check_projects(server, expected);
    check_generic_files(server, expected);
    check_package_listings(server, expected);
    check_models(server, expected);
    check_version_files(server, expected);
    check_candidates(server, expected);
    check_mlflow(server, expected);
    check_later_indexes(server, expected);
}

#[test]
fn a_v0_1_data_dir_opens_with_everything_in_it_and_again_after_a_restart() {
    let expected = v0_1_expected();
    assert_eq!(expected["written_by"], "modelyard-acaade0");
    let copy = v0_1_copy();
    let dir = copy.path().join("data");
    let mut server = start(&dir, &expected);
    check_everything(&server, &expected);
    assert!(server.stop().success(), "a clean stop after the upgrade");
    server = start(&dir, &expected);
    check_everything(&server, &expected);
    assert!(server.stop().success());
}

#[test]
fn an_upgraded_data_dir_takes_new_writes_without_clashing_with_old_records() {
    let expected = v0_1_expected();
    let copy = v0_1_copy();
    let dir = copy.path().join("data");
    let mut server = start(&dir, &expected);
    let root = Api::with_token(&server, &root_token(&expected));
    let alice = Api::with_token(&server, &token_of(&expected, "alice"));
    let fraud = n(&list(&expected, "projects")[0], "id");

    // New ids never reuse old ones.
    let old_ids: Vec<u64> = list(&expected, "projects")
        .iter()
        .map(|p| n(p, "id"))
        .chain(list(&expected, "users").iter().map(|u| n(u, "id")))
        .collect();
    let created = root.post_json(
        "/api/v4/projects",
        json!({ "name": "after-upgrade", "visibility": "private" }),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let new_id = n(&created.json(), "id");
    assert!(
        old_ids.iter().all(|old| *old < new_id),
        "new id {new_id} after {old_ids:?}"
    );

    // A new version of an old model: the listing, the count and the package total grow by one.
    let listing = list(&expected, "version_listings")
        .iter()
        .find(|l| l["model"] == "scorer")
        .expect("scorer listing");
    let before = n(listing, "version_count");
    let new_version = alice.post_json(
        &ml(fraud, "models/scorer/versions"),
        json!({ "version": "3.0.0" }),
    );
    assert_eq!(new_version.status, 201, "{}", new_version.text());
    let duplicate = alice.post_json(
        &ml(fraud, "models/scorer/versions"),
        json!({ "version": "1.2.0" }),
    );
    assert_eq!(duplicate.status, 400, "an old version still exists");
    let bytes = random_bytes(5000, 77);
    let upload = alice.put_bytes(
        &format!("/api/v4/projects/{fraud}/packages/generic/scorer/3.0.0/model.onnx"),
        &bytes,
    );
    assert_eq!(upload.status, 201, "{}", upload.text());
    let model = ok(alice.get(&ml(fraud, "models/scorer")), "GET model");
    assert_eq!(model["latest_version"]["version"], "3.0.0");
    assert_eq!(n(&model, "version_count"), before + 1);
    let resolved = ok(
        alice.get(&ml(
            fraud,
            "models/scorer/versions/resolve?requirement=%5E3",
        )),
        "resolve",
    );
    assert_eq!(resolved["version"], "3.0.0");
    let packages = alice.get(&format!("/api/v4/projects/{fraud}/packages?per_page=5"));
    let total_before = list(&expected, "package_listings")[0]["total"]
        .as_u64()
        .expect("total");
    assert_eq!(
        packages.header("x-total"),
        Some((total_before + 1).to_string().as_str())
    );

    // A metric logged to an old run becomes its latest value.
    let run = &list(&expected, "runs")[0];
    let run_id = s(run, "run_id");
    let logged = alice.post_json(
        &mlflow(fraud, "mlflow/runs/log-metric"),
        json!({ "run_id": run_id, "key": "accuracy", "value": 0.99, "timestamp": 1800000000000i64, "step": 10 }),
    );
    assert_eq!(logged.status, 200, "{}", logged.text());
    assert!(server.stop().success());

    server = start(&dir, &expected);
    let alice = Api::with_token(&server, &token_of(&expected, "alice"));
    let got = alice.get(&format!(
        "/api/v4/projects/{fraud}/packages/generic/scorer/3.0.0/model.onnx"
    ));
    assert_eq!(got.status, 200);
    assert_eq!(sha256_hex(&got.body), sha256_hex(&bytes));
    let shown = ok(
        alice.get(&mlflow(fraud, &format!("mlflow/runs/get?run_id={run_id}"))),
        "runs/get",
    );
    let accuracy = history_values(
        shown["run"]["data"]["metrics"].as_array().expect("metrics"),
        "accuracy",
    );
    assert_eq!(accuracy, vec![0.99]);
    let history = ok(
        alice.get(&mlflow(
            fraud,
            &format!("mlflow/metrics/get-history?run_id={run_id}&metric_key=accuracy"),
        )),
        "history",
    );
    let mut values = expected_history(run)["accuracy"].clone();
    values.push(0.99);
    assert_eq!(
        history_values(history["metrics"].as_array().expect("metrics"), "accuracy"),
        values
    );
    deploy_an_old_file_by_checksum(&server, &expected);
}

#[test]
fn the_schema_version_is_recorded_and_a_newer_one_is_refused() {
    use modelyard::store::meta::MetaStore;
    use modelyard::store::sled_meta::SledMeta;
    use modelyard::store::upgrade;

    let expected = v0_1_expected();
    let copy = v0_1_copy();
    let dir = copy.path().join("data");
    let current = upgrade::current_version(modelyard::domain::schema::upgrade::STEPS);
    {
        let meta = SledMeta::open(&dir.join("meta"), 1 << 20).expect("open the v0.1 metadata");
        assert_eq!(
            upgrade::schema_version(&meta).expect("version"),
            1,
            "v0.1 records no version"
        );
    }
    let mut server = start(&dir, &expected);
    assert!(server.stop().success());
    {
        let meta = SledMeta::open(&dir.join("meta"), 1 << 20).expect("open");
        assert_eq!(upgrade::schema_version(&meta).expect("version"), current);
        // Pretend a later release wrote this data dir.
        upgrade::record_schema_version(&meta, current + 1).expect("record");
        meta.flush().expect("flush");
    }
    let output = std::process::Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("MODELYARD_LOG", "warn")
        .output()
        .expect("run the server");
    assert!(
        !output.status.success(),
        "a data dir of a newer schema must not be served"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("newer modelyard")
            && stderr.contains(&format!("schema version {}", current + 1)),
        "{stderr}"
    );
    // Nothing was changed: the data dir still says it is newer.
    let meta = SledMeta::open(&dir.join("meta"), 1 << 20).expect("open");
    assert_eq!(
        upgrade::schema_version(&meta).expect("version"),
        current + 1
    );
}

#[test]
fn a_sigterm_right_after_start_is_a_clean_shutdown() {
    // The fixture script stops the server as soon as it is done; so do upgrades in scripts. The
    // signal handlers are installed before the server says it listens, so no SIGTERM after that
    // line kills the process without its final flush.
    let expected = v0_1_expected();
    let copy = v0_1_copy();
    let dir = copy.path().join("data");
    for round in 0..20 {
        let mut server = start(&dir, &expected);
        let status = server.stop();
        assert!(status.success(), "round {round}: {status:?}");
    }
}

/// Starts the server on `dir` at log level info, stops it with SIGTERM once it listens, and
/// returns what it logged.
fn serve_once(dir: &Path, expected: &Value) -> String {
    use std::io::{BufRead, BufReader};
    let log = dir.with_extension("log");
    let mut child = std::process::Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--root-token"])
        .arg(root_token(expected))
        .arg("--data-dir")
        .arg(dir)
        .env("MODELYARD_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn modelyard");
    let stdout = child.stdout.take().expect("stdout");
    for line in BufReader::new(stdout).lines() {
        if line.expect("stdout").starts_with("modelyard listening on ") {
            break;
        }
    }
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    assert!(child.wait().expect("wait").success());
    std::fs::read_to_string(&log).expect("the log")
}

#[test]
fn the_first_start_on_v0_1_data_logs_the_upgrade_and_the_next_one_does_not() {
    let expected = v0_1_expected();
    let copy = v0_1_copy();
    let dir = copy.path().join("data");
    let first = serve_once(&dir, &expected);
    assert!(
        first.contains("schema"),
        "the first start says what it did to the v0.1 metadata:\n{first}"
    );
    let second = serve_once(&dir, &expected);
    assert!(
        !second.contains("schema") && !second.contains("upgrad"),
        "a second start has nothing to upgrade:\n{second}"
    );
}

/// This release's features on the earlier release's data: an old version sealed and downloaded by
/// its manifest digest (and refusing a change), its download counted, the seal audited, and an old
/// run's metric history extended in the new small chunks and read back merged with its old points.
#[test]
fn old_data_takes_sealing_usage_audit_and_new_metric_chunks() {
    let expected = v0_1_expected();
    let copy = v0_1_copy();
    let dir = copy.path().join("data");
    let server = start(&dir, &expected);
    let root = Api::with_token(&server, &root_token(&expected));

    let file = plain_version_file(&expected);
    let project = n(file, "project_id");
    let (model, version, path) = (s(file, "model"), s(file, "version"), s(file, "path"));
    let version_url = ml(
        project,
        &format!(
            "models/{}/versions/{}",
            url_encode(model),
            url_encode(version)
        ),
    );
    let sealed = ok(
        root.post_json(&format!("{version_url}/seal"), json!({})),
        "seal",
    );
    let digest = s(&sealed, "manifest_digest").to_string();
    assert!(digest.starts_with("sha256:"), "{sealed}");
    let pinned = format!(
        "/api/v4/projects/{project}/packages/generic/{}/{}/{}",
        url_encode(model),
        url_encode(&digest),
        path_encode(path)
    );
    assert_bytes(&root.get(&pinned), file, &pinned);
    let changed = root.put_bytes(
        &format!(
            "/api/v4/projects/{project}/packages/generic/{}/{}/{}",
            url_encode(model),
            url_encode(version),
            path_encode(path)
        ),
        b"other bytes",
    );
    assert_eq!(changed.status, 409, "{}", changed.text());
    let shown = ok(root.get(&version_url), "GET version");
    assert_eq!(shown["sealed"], true, "{shown}");
    assert!(
        shown["download_count"].as_u64().unwrap_or(0) >= 1,
        "the pinned download is counted: {shown}"
    );
    let audit = ok(
        root.get(&format!("/api/v4/projects/{project}/audit_events")),
        "audit events",
    );
    assert!(
        audit.as_array().is_some_and(|events| !events.is_empty()),
        "the seal is audited: {audit}"
    );

    let run = list(&expected, "candidates")
        .iter()
        .find(|c| c["history"]["auc"].is_array())
        .expect("an old run with an auc history");
    let (run_project, run_id) = (n(run, "project_id"), s(run, "run_id"));
    let old: Vec<f64> = run["history"]["auc"]
        .as_array()
        .expect("auc")
        .iter()
        .map(|v| v.as_f64().expect("a value"))
        .collect();
    let points: Vec<Value> = (0..300)
        .map(|i| json!({"key": "auc", "value": 0.5, "timestamp": 1_900_000_000_000i64 + i, "step": 10_000 + i}))
        .collect();
    ok(
        root.post_json(
            &mlflow(run_project, "mlflow/runs/log-batch"),
            json!({"run_id": run_id, "metrics": points}),
        ),
        "log-batch to an old run",
    );
    let history = ok(
        root.get(&mlflow(
            run_project,
            &format!("mlflow/metrics/get-history?run_id={run_id}&metric_key=auc&max_results=1000"),
        )),
        "get-history",
    );
    let values: Vec<f64> = history["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| m["value"].as_f64().expect("a value"))
        .collect();
    assert_eq!(values.len(), old.len() + 300, "{history}");
    assert_eq!(
        values[..old.len()],
        old[..],
        "the old points first, unchanged"
    );
    assert!(values[old.len()..].iter().all(|v| *v == 0.5));
}

/// The v0.1 data dir under this release's storage changes: its files read through the blob
/// store's ranged `open`, its models (written without `promotion_rules` or `retention`) take
/// both settings, a retention dry run plans over its versions, and `verify` is clean on it.
#[test]
fn old_data_serves_ranges_and_takes_promotion_rules_retention_and_verify() {
    let expected = v0_1_expected();
    let copy = v0_1_copy();
    let dir = copy.path().join("data");
    let mut server = start(&dir, &expected);
    let root = Api::with_token(&server, &root_token(&expected));

    let file = plain_version_file(&expected);
    let project = n(file, "project_id");
    let (model, version, path) = (s(file, "model"), s(file, "version"), s(file, "path"));
    let download = format!(
        "/api/v4/projects/{project}/packages/generic/{}/{}/{}",
        url_encode(model),
        url_encode(version),
        path_encode(path)
    );
    let whole = root.get(&download);
    assert_bytes(&whole, file, &download);
    let ranged = root.send("GET", &download, &[("Range", "bytes=100-299")], b"");
    assert_eq!(ranged.status, 206, "{}", ranged.text());
    assert_eq!(
        ranged.body,
        whole.body[100..300],
        "the range of an old file"
    );
    let suffix = root.send("GET", &download, &[("Range", "bytes=-10")], b"");
    assert_eq!(suffix.status, 206);
    assert_eq!(suffix.body, whole.body[whole.body.len() - 10..]);

    let model_url = ml(project, &format!("models/{}", url_encode(model)));
    let shown = ok(root.get(&model_url), "old model");
    assert_eq!(shown["promotion_rules"], json!([]), "{shown}");
    assert_eq!(shown["retention"], Value::Null, "{shown}");
    let patched = ok(
        root.send(
            "PATCH",
            &model_url,
            &[("Content-Type", "application/json")],
            &serde_json::to_vec(&json!({
                "promotion_rules": ["no_prerelease"],
                "retention": { "keep_patches_per_minor": 1 }
            }))
            .expect("json"),
        ),
        "PATCH old model",
    );
    assert_eq!(
        patched["promotion_rules"],
        json!(["no_prerelease"]),
        "{patched}"
    );
    let plan = ok(
        root.post_json(&format!("{model_url}/retention/dry_run"), json!({})),
        "dry run on old versions",
    );
    let old_versions = list(&expected, "versions")
        .iter()
        .filter(|v| s(v, "model") == model && n(v, "project_id") == project)
        .count();
    let planned =
        plan["delete"].as_array().map_or(0, Vec::len) + plan["keep"].as_array().map_or(0, Vec::len);
    assert!(planned <= old_versions, "{plan}");
    assert_eq!(plan["dry_run"], json!(true), "{plan}");
    // Nothing was deleted by the dry run: the old file is still served.
    assert_bytes(&root.get(&download), file, "after the dry run");

    server.stop();
    let verify = server.admin(&["verify"]);
    assert!(
        verify.status.success(),
        "verify on the upgraded data dir: {}\n{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn old_data_announces_a_change_to_a_new_hook_once_and_serves_everything_through_batched_reads() {
    // This release claims each webhook delivery in the store before sending it, and turns pages
    // of index entries into records with batched reads: both on the v0.1 data, upgraded.
    let expected = v0_1_expected();
    let copy = v0_1_copy();
    let dir = copy.path().join("data");
    let token = root_token(&expected);
    let args = ["--root-token", token.as_str(), "--webhook-allow-private"];
    let mut server = TestServer::start_from_with(&dir, &args);
    // Every fact of the v0.1 data holds, read through the batched reads: files by sha256,
    // listings and their totals, versions, runs.
    check_everything(&server, &expected);
    let root = Api::with_token(&server, &token);
    let file = plain_version_file(&expected);
    let (project, model) = (n(file, "project_id"), s(file, "model"));

    let (port, got) = hook_receiver(std::time::Duration::ZERO);
    let hook = root.post_json(
        &format!("/api/v4/projects/{project}/hooks"),
        json!({ "url": format!("http://127.0.0.1:{port}/hook") }),
    );
    assert_eq!(
        hook.status,
        201,
        "a hook on an old project: {}",
        hook.text()
    );
    let made = root.post_json(
        &ml(project, &format!("models/{}/versions", url_encode(model))),
        json!({ "version": "77.0.0" }),
    );
    assert_eq!(
        made.status,
        201,
        "a version of an old model: {}",
        made.text()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while got.lock().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the new version's event never arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The change's events (the version, its package, ...) delivered and recorded: a restart
    // sends none of them again.
    let mut delivered = got.lock().unwrap().clone();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let now = got.lock().unwrap().clone();
        if now == delivered {
            break;
        }
        delivered = now;
    }
    let distinct: BTreeSet<&String> = delivered.iter().collect();
    assert_eq!(
        distinct.len(),
        delivered.len(),
        "each event once: {delivered:?}"
    );
    server.stop();
    let _restarted = TestServer::start_from_with(&dir, &args);
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(
        *got.lock().unwrap(),
        delivered,
        "nothing is sent again after a restart"
    );
}

/// The v0.1 data dir under 2026-12-02's changes: a log-batch that mixes metrics (keys
/// interleaved, one point sent twice) extends an old run's history key by key and starts a new
/// one; `gc`, now guarded against stores that do not belong together, deletes nothing the old
/// files reference; and after a restart every old file still downloads, by path and by
/// checksum.
#[test]
fn old_data_takes_a_mixed_log_batch_and_a_guarded_gc_and_still_serves_its_files() {
    let expected = v0_1_expected();
    let copy = v0_1_copy();
    let dir = copy.path().join("data");
    let mut server = start(&dir, &expected);
    let root = Api::with_token(&server, &root_token(&expected));
    let run = list(&expected, "candidates")
        .iter()
        .find(|c| c["history"]["auc"].is_array())
        .expect("an old run with an auc history");
    let (run_project, run_id) = (n(run, "project_id"), s(run, "run_id"));
    let old: Vec<f64> = run["history"]["auc"]
        .as_array()
        .expect("auc")
        .iter()
        .map(|v| v.as_f64().expect("a value"))
        .collect();
    let mut points = Vec::new();
    for i in 0..50i64 {
        for key in ["auc", "fresh"] {
            points.push(json!({"key": key, "value": i as f64, "timestamp": 1_900_000_000_000i64 + i, "step": 20_000 + i}));
        }
    }
    points.push(points[0].clone());
    ok(
        root.post_json(
            &mlflow(run_project, "mlflow/runs/log-batch"),
            json!({"run_id": run_id, "metrics": points}),
        ),
        "a mixed log-batch to an old run",
    );
    let values_of = |key: &str| -> Vec<f64> {
        let history = ok(
            root.get(&mlflow(
                run_project,
                &format!(
                    "mlflow/metrics/get-history?run_id={run_id}&metric_key={key}&max_results=1000"
                ),
            )),
            "get-history",
        );
        history["metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .map(|m| m["value"].as_f64().expect("a value"))
            .collect()
    };
    let new: Vec<f64> = (0..50).map(|i| i as f64).collect();
    let auc = values_of("auc");
    assert_eq!(auc[..old.len()], old[..], "the old points first, unchanged");
    assert_eq!(
        auc[old.len()..],
        new[..],
        "then the batch's, the repeat kept once"
    );
    assert_eq!(values_of("fresh"), new);

    assert!(server.stop().success());
    let gc = server.admin(&["gc"]);
    let out = String::from_utf8_lossy(&gc.stdout).into_owned();
    assert!(
        gc.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    assert!(
        out.starts_with("gc: kept ") && !out.contains("kept 0 "),
        "{out}"
    );
    server.restart();
    check_generic_files(&server, &expected);
    check_version_files(&server, &expected);
    deploy_an_old_file_by_checksum(&server, &expected);
}
