//! The native model registry API under `/api/v4/projects/:id/ml/`, over HTTP against the real
//! server: SemVer rules, requirement resolution, files by package path, permissions, cascading
//! deletes, CI links across a restart, bad input, and the served OpenAPI document.

mod common;

use common::*;
use serde_json::{json, Value};

fn create_model(api: &Api, project_id: u64, name: &str) -> Value {
    let reply = api.post_json(&ml(project_id, "models"), json!({ "name": name }));
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()
}

fn create_version(api: &Api, project_id: u64, model: &str, body: Value) -> Reply {
    api.post_json(&ml(project_id, &format!("models/{model}/versions")), body)
}

fn patch_json(api: &Api, path: &str, body: Value) -> Reply {
    let bytes = serde_json::to_vec(&body).unwrap();
    api.send(
        "PATCH",
        path,
        &[("Content-Type", "application/json")],
        &bytes,
    )
}

fn message(reply: &Reply) -> String {
    let body = reply.json();
    body["message"]
        .as_str()
        .or(body["error"].as_str())
        .unwrap_or_else(|| panic!("no message in {body}"))
        .to_string()
}

#[test]
fn versions_follow_semver_order_bump_and_uniqueness() {
    let server = TestServer::start();
    let project_id = project(&server, "semver", "private");
    let api = Api::root(&server);
    create_model(&api, project_id, "ranker");

    let first = create_version(&api, project_id, "ranker", json!({}));
    assert_eq!(first.status, 201, "{}", first.text());
    assert_eq!(
        first.json()["version"],
        "1.0.0",
        "the first automatic version"
    );

    for valid in [
        "1.2.3",
        "1.2.3-rc.1",
        "1.2.3+build.5",
        "1.9.0",
        "1.10.0",
        "2.0.0-rc.1",
        "2.0.0",
    ] {
        let reply = create_version(&api, project_id, "ranker", json!({ "version": valid }));
        assert_eq!(reply.status, 201, "{valid}: {}", reply.text());
        assert_eq!(reply.json()["version"], valid);
        assert_eq!(reply.json()["prerelease"], valid.contains("-rc"));
    }
    for invalid in ["1", "1.2", "v1.2.3", "1.2.3.beta", "01.2.3"] {
        let reply = create_version(&api, project_id, "ranker", json!({ "version": invalid }));
        assert_eq!(reply.status, 400, "{invalid} must be refused");
        assert!(
            message(&reply)
                .to_lowercase()
                .contains("semantic versioning"),
            "{invalid}: {}",
            reply.text()
        );
    }
    let duplicate = create_version(&api, project_id, "ranker", json!({ "version": "1.2.3" }));
    assert_eq!(duplicate.status, 400);
    assert!(
        message(&duplicate).contains("1.2.3"),
        "{}",
        duplicate.text()
    );

    let listed = api.get(&ml(project_id, "models/ranker/versions?per_page=100"));
    assert_eq!(listed.status, 200);
    assert_eq!(listed.header("x-total"), Some("8"));
    let order: Vec<String> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap().to_string())
        .collect();
    // Equal precedence (build metadata) falls back to SemVer's total order.
    assert_eq!(
        order,
        [
            "2.0.0",
            "2.0.0-rc.1",
            "1.10.0",
            "1.9.0",
            "1.2.3+build.5",
            "1.2.3",
            "1.2.3-rc.1",
            "1.0.0"
        ]
    );
    // Automatic bump: the next patch of the latest (2.0.0 → 2.0.1).
    let bumped = create_version(&api, project_id, "ranker", json!({}));
    assert_eq!(bumped.json()["version"], "2.0.1");
    let model = api.get(&ml(project_id, "models/ranker")).json();
    assert_eq!(model["latest_version"]["version"], "2.0.1");
    assert_eq!(model["version_count"], 9);
}

#[test]
fn requirements_resolve_to_the_newest_compatible_version() {
    let server = TestServer::start();
    let project_id = project(&server, "resolve", "private");
    let api = Api::root(&server);
    create_model(&api, project_id, "fraud");
    for v in ["1.2.0", "1.2.7", "1.3.0", "2.0.0-rc.1", "2.0.0"] {
        assert_eq!(
            create_version(&api, project_id, "fraud", json!({ "version": v })).status,
            201
        );
    }
    let resolve = |requirement: &str| {
        let encoded: String = url_encode(requirement);
        api.get(&ml(
            project_id,
            &format!("models/fraud/versions/resolve?requirement={encoded}"),
        ))
    };
    for (requirement, expected) in [
        ("^1.2", "1.3.0"),
        ("~1.2", "1.2.7"),
        ("1.x", "1.3.0"),
        (">=1.2, <2", "1.3.0"),
        ("latest", "2.0.0"),
        (">=2.0.0-rc.1, <2.0.0", "2.0.0-rc.1"),
    ] {
        let reply = resolve(requirement);
        assert_eq!(reply.status, 200, "{requirement}: {}", reply.text());
        assert_eq!(reply.json()["version"], expected, "{requirement}");
    }
    let none = resolve("^3");
    assert_eq!(none.status, 404);
    assert!(message(&none).contains("^3"), "{}", none.text());
    let bad = resolve("not a requirement");
    assert_eq!(bad.status, 400);
    assert!(message(&bad).contains("requirement"), "{}", bad.text());
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_curl_upload_shows_up_in_the_version_json_with_size_and_sha256() {
    let server = TestServer::start();
    let project_id = project(&server, "files", "private");
    let api = Api::root(&server);
    create_model(&api, project_id, "fraud");
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("model.onnx");
    let data = random_bytes(700_000, 3);
    std::fs::write(&file, &data).unwrap();
    let upload = curl()
        .args([
            "--fail",
            "--silent",
            "--upload-file",
            file.to_str().unwrap(),
            "--header",
            &format!("PRIVATE-TOKEN: {ROOT_TOKEN}"),
            &server.url(&format!(
                "/api/v4/projects/{project_id}/packages/generic/fraud/1.2.0/model.onnx"
            )),
        ])
        .output()
        .unwrap();
    assert!(upload.status.success());
    assert_eq!(upload.stdout, br#"{"message":"201 Created"}"#);

    let version = api.get(&ml(project_id, "models/fraud/versions/1.2.0"));
    assert_eq!(version.status, 200, "{}", version.text());
    let files = version.json()["files"].as_array().unwrap().clone();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["file_name"], "model.onnx");
    assert_eq!(files[0]["size"], data.len() as u64);
    assert_eq!(files[0]["sha256"], sha256_hex(&data));
    let download = api.get(files[0]["download_path"].as_str().unwrap());
    assert_eq!(download.status, 200);
    assert_eq!(download.body, data);
    // The same version by id.
    let id = version.json()["id"].as_u64().unwrap();
    let by_id = api.get(&ml(project_id, &format!("models/fraud/versions/{id}")));
    assert_eq!(by_id.json()["version"], "1.2.0");
}

#[test]
fn permissions_of_the_native_api() {
    let server = TestServer::start();
    let private = project(&server, "private-reg", "private");
    let public = project(&server, "public-reg", "public");
    let root = Api::root(&server);
    let (reporter_id, reporter) = user_with_token(&server, "reporter", "api");
    let (guest_id, guest) = user_with_token(&server, "guest", "api");
    let (_, outsider) = user_with_token(&server, "outsider", "api");
    add_member(&server, private, reporter_id, 20);
    add_member(&server, private, guest_id, 10);
    let reporter = Api::with_token(&server, &reporter);
    let guest = Api::with_token(&server, &guest);
    let outsider = Api::with_token(&server, &outsider);
    let anonymous = Api::anonymous(&server);

    // Reporter: creates, updates and deletes models and versions, and uploads their files.
    create_model(&reporter, private, "churn");
    assert_eq!(
        create_version(&reporter, private, "churn", json!({ "version": "1.0.0" })).status,
        201
    );
    assert_eq!(
        reporter
            .put_bytes(
                &format!("/api/v4/projects/{private}/packages/generic/churn/1.0.0/w.bin"),
                b"weights"
            )
            .status,
        201
    );
    let updated = patch_json(
        &reporter,
        &ml(private, "models/churn"),
        json!({ "description": "better" }),
    );
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_eq!(updated.json()["description"], "better");
    let updated = patch_json(
        &reporter,
        &ml(private, "models/churn/versions/1.0.0"),
        json!({ "description": "first" }),
    );
    assert_eq!(updated.json()["description"], "first");

    // Guest: reads, every write is 403.
    assert_eq!(guest.get(&ml(private, "models/churn")).status, 200);
    assert_eq!(
        guest
            .get(&ml(private, "models/churn/versions/1.0.0"))
            .status,
        200
    );
    let writes: Vec<(&str, String, Value)> = vec![
        ("POST", ml(private, "models"), json!({ "name": "g" })),
        (
            "PATCH",
            ml(private, "models/churn"),
            json!({ "description": "x" }),
        ),
        ("POST", ml(private, "models/churn/versions"), json!({})),
        (
            "PATCH",
            ml(private, "models/churn/versions/1.0.0"),
            json!({ "description": "x" }),
        ),
        (
            "DELETE",
            ml(private, "models/churn/versions/1.0.0"),
            json!({}),
        ),
        ("DELETE", ml(private, "models/churn"), json!({})),
    ];
    let send = |api: &Api, (method, path, body): &(&str, String, Value)| {
        api.send(
            method,
            path,
            &[("Content-Type", "application/json")],
            &serde_json::to_vec(body).unwrap(),
        )
    };
    for write in &writes {
        let reply = send(&guest, write);
        assert_eq!(
            reply.status,
            403,
            "guest {} {}: {}",
            write.0,
            write.1,
            reply.text()
        );
        assert!(reply.json()["message"].is_string());
    }
    assert_eq!(
        guest
            .put_bytes(
                &format!("/api/v4/projects/{private}/packages/generic/churn/1.0.0/g.bin"),
                b"g"
            )
            .status,
        403
    );
    // Not a member of a private project: 404 for reads and writes alike.
    assert_eq!(outsider.get(&ml(private, "models")).status, 404);
    assert_eq!(outsider.get(&ml(private, "models/churn")).status, 404);
    assert_eq!(send(&outsider, &writes[0]).status, 404);
    // Anonymous: reads a public project's registry, 401 on writes, 404 on a private one.
    create_model(&root, public, "open");
    assert_eq!(anonymous.get(&ml(public, "models")).status, 200);
    assert_eq!(anonymous.get(&ml(public, "models/open")).status, 200);
    assert_eq!(
        anonymous
            .post_json(&ml(public, "models"), json!({ "name": "a" }))
            .status,
        401
    );
    assert_eq!(anonymous.get(&ml(private, "models")).status, 404);

    // Registry disabled: 404 for everyone, the owner included.
    let disabled = root.put_json(
        &format!("/api/v4/projects/{public}"),
        json!({ "model_registry_access_level": "disabled" }),
    );
    assert_eq!(disabled.status, 200, "{}", disabled.text());
    for api in [&root, &anonymous, &reporter] {
        assert_eq!(api.get(&ml(public, "models")).status, 404);
        assert_eq!(api.get(&ml(public, "models/open")).status, 404);
    }
    assert_eq!(
        root.post_json(&ml(public, "models"), json!({ "name": "x" }))
            .status,
        404
    );

    // The Reporter deletes what it made.
    assert_eq!(
        reporter
            .delete(&ml(private, "models/churn/versions/1.0.0"))
            .status,
        204
    );
    assert_eq!(reporter.delete(&ml(private, "models/churn")).status, 204);
    assert_eq!(reporter.get(&ml(private, "models/churn")).status, 404);
}

#[test]
fn deleting_a_model_takes_its_versions_candidates_and_packages_only() {
    let server = TestServer::start();
    let project_id = project(&server, "deletes", "private");
    let api = Api::root(&server);
    for name in ["doomed", "kept"] {
        create_model(&api, project_id, name);
        assert_eq!(
            create_version(&api, project_id, name, json!({ "version": "1.0.0" })).status,
            201
        );
        assert_eq!(
            api.put_bytes(
                &format!("/api/v4/projects/{project_id}/packages/generic/{name}/1.0.0/m.bin"),
                name.as_bytes()
            )
            .status,
            201
        );
    }
    let doomed = api.get(&ml(project_id, "models/doomed")).json();
    let experiment = doomed["experiment_iid"].as_u64().unwrap();
    let run = api.post_json(
        &ml(project_id, &format!("experiments/{experiment}/candidates")),
        json!({ "name": "try", "params": [{ "key": "lr", "value": "0.1" }] }),
    );
    assert_eq!(run.status, 201, "{}", run.text());
    let run_iid = run.json()["iid"].as_u64().unwrap();
    // A model's experiment, and a version's candidate, cannot be deleted on their own.
    let refused = api.delete(&ml(project_id, &format!("experiments/{experiment}")));
    assert_eq!(refused.status, 400);
    assert!(message(&refused).contains("model"), "{}", refused.text());
    let version = api
        .get(&ml(project_id, "models/doomed/versions/1.0.0"))
        .json();
    let version_candidate = version["candidate_iid"].as_u64().unwrap();
    let refused = api.delete(&ml(project_id, &format!("candidates/{version_candidate}")));
    assert_eq!(refused.status, 400);
    assert!(
        message(&refused).contains("model version"),
        "{}",
        refused.text()
    );

    assert_eq!(api.delete(&ml(project_id, "models/doomed")).status, 204);
    assert_eq!(api.get(&ml(project_id, "models/doomed")).status, 404);
    assert_eq!(
        api.get(&ml(project_id, "models/doomed/versions/1.0.0"))
            .status,
        404
    );
    assert_eq!(
        api.get(&ml(project_id, &format!("candidates/{run_iid}")))
            .status,
        404
    );
    assert_eq!(
        api.get(&ml(project_id, &format!("experiments/{experiment}")))
            .status,
        404
    );
    assert_eq!(
        api.get(&format!(
            "/api/v4/projects/{project_id}/packages/generic/doomed/1.0.0/m.bin"
        ))
        .status,
        404
    );
    let packages = api.get(&format!("/api/v4/projects/{project_id}/packages"));
    let names: Vec<String> = packages
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["kept"]);
    let kept = api.get(&format!(
        "/api/v4/projects/{project_id}/packages/generic/kept/1.0.0/m.bin"
    ));
    assert_eq!(kept.body, b"kept");
}

#[test]
fn ci_links_from_the_api_and_from_tags_survive_a_restart() {
    let mut server = TestServer::start();
    let project_id = project(&server, "ci", "private");
    let api = Api::root(&server);
    let model = create_model(&api, project_id, "scorer");
    let ci_job = json!({
        "job_id": "4242", "name": "train", "url": "https://ci.example.com/jobs/4242",
        "pipeline_id": "77", "pipeline_url": "https://ci.example.com/pipelines/77",
        "ref": "main", "sha": "0123abcd", "merge_request_iid": "12",
        "merge_request_title": "Better scorer", "merge_request_url": "https://ci.example.com/mr/12",
        "user": "alice"
    });
    let created = create_version(
        &api,
        project_id,
        "scorer",
        json!({ "version": "1.0.0", "description": "from CI", "ci_job": ci_job }),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["ci_job"], ci_job);

    let experiment = model["experiment_iid"].as_u64().unwrap();
    let run = api.post_json(
        &ml(project_id, &format!("experiments/{experiment}/candidates")),
        json!({
            "name": "nightly",
            "params": [{ "key": "depth", "value": "6" }],
            "metrics": [{ "key": "auc", "value": 0.91, "step": 0 }, { "key": "auc", "value": 0.93, "step": 1 }],
            "metadata": [
                { "key": "gitlab.CI_JOB_ID", "value": "5151" },
                { "key": "gitlab.CI_JOB_URL", "value": "https://ci.example.com/jobs/5151" },
                { "key": "gitlab.CI_PIPELINE_ID", "value": "88" },
                { "key": "gitlab.CI_MERGE_REQUEST_IID", "value": "13" }
            ]
        }),
    );
    assert_eq!(run.status, 201, "{}", run.text());
    let iid = run.json()["iid"].as_u64().unwrap();

    // A batch that fails validation is refused before any run exists.
    let candidates = ml(project_id, &format!("experiments/{experiment}/candidates"));
    let before = api.get(&candidates).json().as_array().map(Vec::len);
    let refused = api.post_json(
        &candidates,
        json!({ "params": [{ "key": "depth", "value": "6" }, { "key": "depth", "value": "7" }] }),
    );
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(message(&refused).contains("Duplicate parameter keys"));
    assert_eq!(api.get(&candidates).json().as_array().map(Vec::len), before);
    let promoted = api.post_json(
        &ml(project_id, &format!("candidates/{iid}/promote")),
        json!({ "version": "1.1.0" }),
    );
    assert_eq!(promoted.status, 201, "{}", promoted.text());

    server.restart();
    let api = Api::root(&server);
    let first = api
        .get(&ml(project_id, "models/scorer/versions/1.0.0"))
        .json();
    assert_eq!(first["ci_job"], ci_job);
    assert_eq!(first["description"], "from CI");
    let second = api
        .get(&ml(project_id, "models/scorer/versions/1.1.0"))
        .json();
    assert_eq!(second["ci_job"]["job_id"], "5151");
    assert_eq!(second["ci_job"]["url"], "https://ci.example.com/jobs/5151");
    assert_eq!(second["ci_job"]["pipeline_id"], "88");
    assert_eq!(second["ci_job"]["merge_request_iid"], "13");
    assert_eq!(second["params"], json!([{ "key": "depth", "value": "6" }]));
    assert_eq!(second["metrics"][0]["value"], 0.93);
    assert_eq!(second["metric_history"].as_array().unwrap().len(), 2);
    assert_eq!(second["latest"], true);
    // The promoted candidate is no longer listed as a candidate of the model.
    assert_eq!(
        api.get(&ml(project_id, "models/scorer")).json()["candidate_count"],
        0
    );
}

#[test]
fn bad_input_gets_a_4xx_with_a_message_never_a_500() {
    let server = TestServer::start();
    let project_id = project(&server, "bad", "private");
    let api = Api::root(&server);
    create_model(&api, project_id, "good");
    let long_name = "a".repeat(256);
    let long_description = "d".repeat(10_001);
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        (
            "POST",
            ml(project_id, "models"),
            br#"{"name": "has space"}"#.to_vec(),
        ),
        // GitLab's model names may hold `/` between segments, never at the end or to climb.
        (
            "POST",
            ml(project_id, "models"),
            br#"{"name": "ends/"}"#.to_vec(),
        ),
        (
            "POST",
            ml(project_id, "models"),
            br#"{"name": "a/../b"}"#.to_vec(),
        ),
        (
            "POST",
            ml(project_id, "models"),
            format!(r#"{{"name": "{long_name}"}}"#).into_bytes(),
        ),
        (
            "POST",
            ml(project_id, "models"),
            format!(r#"{{"name": "ok", "description": "{long_description}"}}"#).into_bytes(),
        ),
        (
            "POST",
            ml(project_id, "models"),
            br#"{"name": "good"}"#.to_vec(),
        ),
        (
            "POST",
            ml(project_id, "models"),
            br#"{"name": 12}"#.to_vec(),
        ),
        ("POST", ml(project_id, "models"), br#"{not json"#.to_vec()),
        ("POST", ml(project_id, "models"), br#"[]"#.to_vec()),
        (
            "PATCH",
            ml(project_id, "models/good"),
            format!(r#"{{"description": "{long_description}"}}"#).into_bytes(),
        ),
        (
            "POST",
            ml(project_id, "models/good/versions"),
            br#"{"version": 1}"#.to_vec(),
        ),
        (
            "POST",
            ml(project_id, "models/good/versions"),
            br#"{"candidate_iid": 999999}"#.to_vec(),
        ),
        ("GET", ml(project_id, "models/999999"), vec![]),
        ("GET", ml(project_id, "models/no-such-model"), vec![]),
        ("GET", ml(project_id, "models/good/versions/9.9.9"), vec![]),
        ("GET", ml(project_id, "models/good/versions/999999"), vec![]),
        (
            "GET",
            ml(project_id, "models/good/versions/resolve"),
            vec![],
        ),
        ("GET", ml(project_id, "models?per_page=lots"), vec![]),
        ("GET", ml(project_id, "models?order_by=colour"), vec![]),
        ("GET", ml(project_id, "candidates/999999"), vec![]),
        ("GET", ml(project_id, "candidates/not-a-number"), vec![]),
        ("GET", ml(project_id, "experiments/999999"), vec![]),
        ("DELETE", ml(project_id, "candidates/999999"), vec![]),
        ("POST", ml(project_id, "candidates/999999/promote"), vec![]),
        ("GET", ml(999_999, "models"), vec![]),
    ];
    for (method, path, body) in &cases {
        let reply = api.send(method, path, &[("Content-Type", "application/json")], body);
        assert!(
            (400..500).contains(&reply.status),
            "{method} {path}: {} {}",
            reply.status,
            reply.text()
        );
        assert!(!message(&reply).is_empty(), "{method} {path}");
    }
    // The messages say what is wrong.
    let spaced = api.post_json(&ml(project_id, "models"), json!({ "name": "has space" }));
    assert!(message(&spaced).contains("name"), "{}", spaced.text());
    let long = api.post_json(
        &ml(project_id, "models"),
        json!({ "name": "ok", "description": long_description }),
    );
    assert!(message(&long).contains("10000"), "{}", long.text());
    assert_eq!(
        api.get(&ml(project_id, "models")).header("x-total"),
        Some("1")
    );
}

#[test]
fn the_openapi_document_lists_every_route() {
    let server = TestServer::start();
    let reply = Api::anonymous(&server).get("/api/v4/ml/openapi.json");
    assert_eq!(reply.status, 200);
    let doc = reply.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let base = "/api/v4/projects/{id}/ml";
    let expected: &[(&str, &[&str])] = &[
        ("/models", &["get", "post"]),
        ("/models/{model}", &["get", "patch", "delete"]),
        ("/models/{model}/versions", &["get", "post"]),
        ("/models/{model}/versions/resolve", &["get"]),
        (
            "/models/{model}/versions/{version}",
            &["get", "patch", "delete"],
        ),
        ("/models/{model}/versions/{version}/archive", &["get"]),
        ("/models/{model}/versions/{version}/manifest", &["get"]),
        ("/models/{model}/versions/{version}/seal", &["post"]),
        ("/models/{model}/aliases", &["get", "put"]),
        ("/models/{model}/aliases/{alias}/history", &["get"]),
        ("/models/{model}/aliases/{alias}/rollback", &["post"]),
        ("/models/{model}/retention/dry_run", &["post"]),
        ("/models/{model}/retention/run", &["post"]),
        ("/experiments", &["get"]),
        ("/experiments/{iid}", &["get", "delete"]),
        ("/experiments/{iid}/candidates", &["get", "post"]),
        ("/candidates/{iid}", &["get", "delete"]),
        ("/candidates/{iid}/promote", &["post"]),
        ("/candidates/{iid}/metrics/{key}/history", &["get"]),
    ];
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), expected.len());
    for (path, methods) in expected {
        let item = &paths[&format!("{base}{path}")];
        for method in *methods {
            assert!(item[method]["responses"].is_object(), "{path} {method}");
        }
    }
    for schema in [
        "ModelView",
        "VersionView",
        "CandidateView",
        "ExperimentView",
        "ErrorView",
        "CiJobView",
        "AliasesView",
        "AliasMoveView",
        "MoveAliases",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}
