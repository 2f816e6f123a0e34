//! A model version is the package `<model>/<version>`: curl pushes and fetches its files on the
//! generic package path, and the version slot may hold a SemVer requirement.

mod common;

use common::*;
use serde_json::json;

/// Creates a model through the MLflow API (the native API has its own tests).
fn model(server: &TestServer, project_id: u64, name: &str) {
    let reply = Api::root(server).post_json(
        &format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow/registered-models/create"),
        json!({ "name": name }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[test]
fn curl_upload_on_an_existing_model_creates_the_version_with_that_file() {
    let server = TestServer::start();
    let project_id = project(&server, "fraud", "private");
    model(&server, project_id, "fraud");
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("model.onnx");
    let data = random_bytes(1 << 20, 9);
    std::fs::write(&file, &data).unwrap();
    let url = server.url(&format!(
        "/api/v4/projects/{project_id}/packages/generic/fraud/1.2.0/model.onnx"
    ));
    let out = curl()
        .args([
            "--upload-file",
            file.to_str().unwrap(),
            "--header",
            &format!("PRIVATE-TOKEN: {ROOT_TOKEN}"),
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        json!({ "message": "201 Created" })
    );
    let back = curl()
        .args([
            "--fail",
            "--header",
            &format!("PRIVATE-TOKEN: {ROOT_TOKEN}"),
            &url,
        ])
        .output()
        .unwrap();
    assert!(back.status.success());
    assert_eq!(back.stdout, data);

    let api = Api::root(&server);
    let version = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow/registered-models/alias?name=fraud&alias=1.2.0"
    ));
    assert_eq!(version.status, 200, "{}", version.text());
    assert_eq!(version.json()["model_version"]["version"], "1");
    let packages = api
        .get(&format!(
            "/api/v4/projects/{project_id}/packages?package_type=ml_model"
        ))
        .json();
    assert_eq!(packages[0]["name"], "fraud");
    assert_eq!(packages[0]["version"], "1.2.0");
    let files = api
        .get(&format!(
            "/api/v4/projects/{project_id}/packages/{}/package_files",
            packages[0]["id"]
        ))
        .json();
    assert_eq!(files[0]["file_name"], "model.onnx");
    assert_eq!(files[0]["size"], 1 << 20);
    assert_eq!(files[0]["file_sha256"], sha256_hex(&data));

    let not_semver = api.put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/generic/fraud/1.2/model.onnx"),
        b"x",
    );
    assert_eq!(not_semver.status, 400);
    assert!(
        not_semver.text().contains("semantic versioning"),
        "{}",
        not_semver.text()
    );
    let prefixed = api.put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/generic/fraud/v1.3.0/model.onnx"),
        b"x",
    );
    assert_eq!(prefixed.status, 400);
}

#[test]
fn downloads_by_requirement_resolve_to_the_newest_compatible_version() {
    let server = TestServer::start();
    let project_id = project(&server, "resolve", "private");
    model(&server, project_id, "fraud");
    let api = Api::root(&server);
    for version in ["1.2.0", "1.2.7", "1.3.0", "2.0.0-rc.1", "2.0.0"] {
        let path =
            format!("/api/v4/projects/{project_id}/packages/generic/fraud/{version}/model.onnx");
        assert_eq!(
            api.put_bytes(&path, format!("weights {version}").as_bytes())
                .status,
            201
        );
    }
    let fetch = |requirement: &str| {
        let encoded: String = url::form_urlencoded::byte_serialize(requirement.as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        api.get(&format!(
            "/api/v4/projects/{project_id}/packages/generic/fraud/{encoded}/model.onnx"
        ))
    };
    for (requirement, resolved) in [
        ("^1.2", "1.3.0"),
        ("~1.2", "1.2.7"),
        ("latest", "2.0.0"),
        (">=2.0.0-rc.1, <2.0.0", "2.0.0-rc.1"),
        ("1.x", "1.3.0"),
    ] {
        let reply = fetch(requirement);
        assert_eq!(reply.status, 200, "{requirement}: {}", reply.text());
        assert_eq!(
            reply.header("x-model-version"),
            Some(resolved),
            "{requirement}"
        );
        assert_eq!(
            reply.body,
            format!("weights {resolved}").as_bytes(),
            "{requirement}"
        );
    }
    let exact = fetch("1.2.7");
    assert_eq!(exact.header("x-model-version"), Some("1.2.7"));
    let none = fetch("^3");
    assert_eq!(none.status, 404);
    assert!(none.json()["message"].as_str().unwrap().contains("^3"));
    assert_eq!(
        fetch("1.2.9").status,
        404,
        "an exact version that does not exist is not resolved"
    );
    let garbage = fetch(">>1");
    assert_eq!(garbage.status, 400);
}

#[test]
fn model_files_api_takes_nested_paths_spaces_and_candidates() {
    let server = TestServer::start();
    let project_id = project(&server, "files", "private");
    model(&server, project_id, "clf");
    let api = Api::root(&server);
    // A version through the MLflow API gives the version id in its download URI.
    let created = api.post_json(
        &format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow/model-versions/create"),
        json!({ "name": "clf", "source": "none" }),
    );
    assert_eq!(created.status, 200);
    let uri = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow/model-versions/get-download-uri?name=clf&version=1"
    ));
    let version_id = uri.json()["artifact_uri"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let path = format!("/api/v4/projects/{project_id}/packages/ml_models/{version_id}/files/weights/my%20model.pkl");
    assert_eq!(api.put_bytes(&path, b"pickled").status, 201);
    assert_eq!(api.get(&path).body, b"pickled");
    assert_eq!(
        api.get(&format!(
            "/api/v4/projects/{project_id}/packages/generic/clf/1.0.0/weights/my%20model.pkl"
        ))
        .status,
        400,
        "the generic API keeps GitLab's file-name rule (no spaces)"
    );
    let traversal = api.put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/ml_models/{version_id}/files/..%2fx"),
        b"x",
    );
    assert_eq!(traversal.status, 400);
    assert_eq!(
        api.put_bytes(
            &format!("/api/v4/projects/{project_id}/packages/ml_models/999999/files/x.bin"),
            b"x"
        )
        .status,
        404
    );
    assert_eq!(
        api.put_bytes(
            &format!("/api/v4/projects/{project_id}/packages/ml_models/candidate:77/files/x.bin"),
            b"x"
        )
        .status,
        404
    );
}
