//! Sealed versions over a real socket: sealing freezes the manifest; every surface that could
//! change a sealed version's files answers 409 in its own error shape; the manifest digest pins
//! the content in generic downloads, archives and the native API; models seal releases
//! automatically; the UI shows the seal.

mod common;

use common::*;
use serde_json::{json, Value};

const MODEL_BIN: &[u8] = b"weights of the sealed model";
const CONFIG: &[u8] = b"{\"layers\": 3}";

/// A project with model `clf` whose version 1.0.0 has two files, uploaded the curl way.
fn version_with_files(server: &TestServer, visibility: &str) -> u64 {
    let project_id = project(server, "sealing", visibility);
    let api = Api::root(server);
    let created = api.post_json(
        &format!("/api/v4/projects/{project_id}/ml/models"),
        json!({ "name": "clf" }),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    for (name, body) in [("model.bin", MODEL_BIN), ("conf/config.json", CONFIG)] {
        let put = api.put_bytes(
            &format!("/api/v4/projects/{project_id}/packages/generic/clf/1.0.0/{name}"),
            body,
        );
        assert_eq!(put.status, 201, "{}", put.text());
    }
    project_id
}

fn seal(api: &Api, project_id: u64, version: &str) -> Reply {
    api.send(
        "POST",
        &format!("/api/v4/projects/{project_id}/ml/models/clf/versions/{version}/seal"),
        &[],
        b"",
    )
}

fn assert_sealed_refusal(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 409, "{what}: {}", reply.text());
    let body = reply.json();
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("is sealed") && message.contains("sha256:"),
        "{what}: {}",
        reply.text()
    );
}

#[test]
fn sealing_freezes_the_manifest_and_is_idempotent_and_for_maintainers() {
    let server = TestServer::start();
    let project_id = version_with_files(&server, "private");
    let api = Api::root(&server);
    let (reporter_id, reporter) = user_with_token(&server, "reporter", "api");
    add_member(&server, project_id, reporter_id, 20);
    let before = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/clf/versions/1.0.0"
    ));
    assert_eq!(before.json()["sealed"], false);
    assert_eq!(before.json()["manifest_digest"], Value::Null);
    // A Reporter writes versions but does not seal them.
    let refused = seal(&Api::with_token(&server, &reporter), project_id, "1.0.0");
    assert_eq!(refused.status, 403, "{}", refused.text());
    let sealed = seal(&api, project_id, "1.0.0");
    assert_eq!(sealed.status, 200, "{}", sealed.text());
    let view = sealed.json();
    assert_eq!(view["sealed"], true);
    assert_eq!(view["sealed_by"], "root");
    assert!(view["sealed_at"].as_str().is_some());
    let digest = view["manifest_digest"].as_str().unwrap().to_string();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    // Idempotent, with or without a body: the same seal.
    let again = api.post_json(
        &format!("/api/v4/projects/{project_id}/ml/models/clf/versions/1.0.0/seal"),
        json!({}),
    );
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["manifest_digest"], digest.as_str());
    assert_eq!(again.json()["sealed_at"], view["sealed_at"]);
    // The manifest endpoint serves the sealed manifest: its digest is the version's.
    let manifest = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/clf/versions/1.0.0/manifest"
    ));
    assert_eq!(manifest.status, 200);
    assert_eq!(manifest.header("x-manifest-digest"), Some(digest.as_str()));
    assert_eq!(format!("sha256:{}", sha256_hex(&manifest.body)), digest);
    let parsed = manifest.json();
    assert_eq!(parsed["model"], "clf");
    assert_eq!(parsed["version"], "1.0.0");
    assert_eq!(parsed["sealed_by"], "root");
    assert_eq!(parsed["sealed_at"], view["sealed_at"]);
    assert_eq!(
        parsed["files"],
        json!([
            { "path": "conf/config.json", "sha256": sha256_hex(CONFIG), "size": CONFIG.len() },
            { "path": "model.bin", "sha256": sha256_hex(MODEL_BIN), "size": MODEL_BIN.len() },
        ])
    );
    // Canonical: no whitespace, keys sorted.
    assert!(!manifest.text().contains(' '));
    assert!(manifest
        .text()
        .starts_with(r#"{"files":[{"path":"conf/config.json","#));
    // The seal survives a restart, and lists show it.
    let mut server = server;
    server.restart();
    let api = Api::root(&server);
    let listed = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/clf/versions"
    ));
    assert_eq!(listed.json()[0]["sealed"], true);
    assert_eq!(listed.json()[0]["manifest_digest"], digest.as_str());
    let manifest_again = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/clf/versions/1.0.0/manifest"
    ));
    assert_eq!(manifest_again.body, manifest.body);
    // Unknown versions are 404; anonymous callers 401 (a write).
    assert_eq!(seal(&api, project_id, "9.9.9").status, 404);
    assert_eq!(
        seal(&Api::anonymous(&server), project_id, "1.0.0").status,
        401
    );
}

#[test]
fn a_sealed_version_refuses_changes_on_every_surface() {
    let server = TestServer::start();
    let project_id = version_with_files(&server, "private");
    let api = Api::root(&server);
    let version = api
        .get(&format!(
            "/api/v4/projects/{project_id}/ml/models/clf/versions/1.0.0"
        ))
        .json();
    let version_id = version["id"].as_u64().unwrap();
    let package_id = version["package_id"].as_u64().unwrap();
    let files = api
        .get(&format!(
            "/api/v4/projects/{project_id}/packages/{package_id}/package_files"
        ))
        .json();
    let file_id = files[0]["id"].as_u64().unwrap();
    // OCI blobs pushed before the seal, so that only the manifest push is refused.
    let repo = "root/sealing/clf";
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("x:{ROOT_TOKEN}")
        )
    );
    let config = b"{}";
    let layer = b"an OCI layer";
    for data in [&config[..], &layer[..]] {
        let pushed = raw(
            &server.base,
            "POST",
            &format!(
                "/v2/{repo}/blobs/uploads/?digest=sha256:{}",
                sha256_hex(data)
            ),
            &[("Authorization", &auth)],
            data,
        );
        assert_eq!(pushed.status, 201, "{}", pushed.text());
    }
    let digest = seal(&api, project_id, "1.0.0").json()["manifest_digest"]
        .as_str()
        .unwrap()
        .to_string();

    // Generic package PUT: a new file, and a replacement of an existing one.
    for name in ["extra.bin", "model.bin"] {
        let put = api.put_bytes(
            &format!("/api/v4/projects/{project_id}/packages/generic/clf/1.0.0/{name}"),
            b"changed",
        );
        assert_sealed_refusal(&put, &format!("generic PUT {name}"));
    }
    // Deploy by checksum is a change too.
    let deploy = api.send(
        "PUT",
        &format!("/api/v4/projects/{project_id}/packages/generic/clf/1.0.0/linked.bin"),
        &[
            ("X-Checksum-Deploy", "true"),
            ("X-Checksum-Sha256", &sha256_hex(MODEL_BIN)),
        ],
        b"",
    );
    assert_sealed_refusal(&deploy, "deploy by checksum");
    // ML model files API.
    let ml_put = api.put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/ml_models/{version_id}/files/extra.bin"),
        b"changed",
    );
    assert_sealed_refusal(&ml_put, "ML model file PUT");
    // Packages API: a file delete and the package delete.
    let file_delete = api.delete(&format!(
        "/api/v4/projects/{project_id}/packages/{package_id}/package_files/{file_id}"
    ));
    assert_sealed_refusal(&file_delete, "package file delete");
    let package_delete = api.delete(&format!(
        "/api/v4/projects/{project_id}/packages/{package_id}"
    ));
    assert_sealed_refusal(&package_delete, "package delete");
    // Native API: version delete, and the model's delete (it would delete the version).
    let version_delete = api.delete(&format!(
        "/api/v4/projects/{project_id}/ml/models/clf/versions/1.0.0"
    ));
    assert_sealed_refusal(&version_delete, "version delete");
    let model_delete = api.delete(&format!("/api/v4/projects/{project_id}/ml/models/clf"));
    assert_sealed_refusal(&model_delete, "model delete");
    // MLflow: artifact writes and deletes under the version, and the version's delete, in
    // MLflow's error shape.
    let mlflow = format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0");
    let mlflow_refusal = |reply: &Reply, what: &str| {
        assert_eq!(reply.status, 409, "{what}: {}", reply.text());
        assert_eq!(reply.json()["error_code"], "INVALID_STATE", "{what}");
        assert!(
            reply.json()["message"]
                .as_str()
                .unwrap_or_default()
                .contains("is sealed"),
            "{what}: {}",
            reply.text()
        );
    };
    let artifact_put = api.put_bytes(
        &format!("{mlflow}/mlflow-artifacts/artifacts/versions/{version_id}/extra.bin"),
        b"changed",
    );
    mlflow_refusal(&artifact_put, "MLflow artifact PUT");
    let artifact_delete = api.delete(&format!(
        "{mlflow}/mlflow-artifacts/artifacts/versions/{version_id}/model.bin"
    ));
    mlflow_refusal(&artifact_delete, "MLflow artifact DELETE");
    let mlflow_delete = api.send(
        "DELETE",
        &format!("{mlflow}/mlflow/model-versions/delete"),
        &[("Content-Type", "application/json")],
        json!({ "name": "clf", "version": "1" })
            .to_string()
            .as_bytes(),
    );
    mlflow_refusal(&mlflow_delete, "MLflow model-versions/delete");
    // OCI: a manifest pushed to the version's tag with other layers, in the spec's shape.
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": format!("sha256:{}", sha256_hex(config)),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/octet-stream",
            "digest": format!("sha256:{}", sha256_hex(layer)),
            "size": layer.len(),
            "annotations": { "org.opencontainers.image.title": "oci.bin" },
        }],
    });
    let oci_push = raw(
        &server.base,
        "PUT",
        &format!("/v2/{repo}/manifests/1.0.0"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
        ],
        manifest.to_string().as_bytes(),
    );
    assert_eq!(oci_push.status, 409, "OCI push: {}", oci_push.text());
    assert_eq!(oci_push.json()["errors"][0]["code"], "DENIED");
    assert!(oci_push.text().contains("is sealed"));
    let oci_delete = raw(
        &server.base,
        "DELETE",
        &format!("/v2/{repo}/manifests/1.0.0"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(oci_delete.status, 409, "OCI delete: {}", oci_delete.text());

    // Nothing changed: same files, same manifest, same bytes.
    let manifest = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/clf/versions/1.0.0/manifest"
    ));
    assert_eq!(manifest.header("x-manifest-digest"), Some(digest.as_str()));
    assert_eq!(manifest.json()["files"].as_array().unwrap().len(), 2);
    let download = api.get(&format!(
        "/api/v4/projects/{project_id}/packages/generic/clf/1.0.0/model.bin"
    ));
    assert_eq!(download.body, MODEL_BIN);
    let files_after = api.get(&format!(
        "/api/v4/projects/{project_id}/packages/{package_id}/package_files"
    ));
    assert_eq!(files_after.json().as_array().unwrap().len(), 2);
    // Metadata is not the files: the description still changes.
    let described = api.send(
        "PATCH",
        &format!("/api/v4/projects/{project_id}/ml/models/clf/versions/1.0.0"),
        &[("Content-Type", "application/json")],
        json!({ "description": "frozen" }).to_string().as_bytes(),
    );
    assert_eq!(described.status, 200, "{}", described.text());
    // Other versions of the model are not affected.
    let other = api.put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/generic/clf/1.1.0/model.bin"),
        b"next",
    );
    assert_eq!(other.status, 201, "{}", other.text());
}

#[test]
fn a_manifest_digest_pins_the_content_in_downloads_archives_and_the_api() {
    let server = TestServer::start();
    let project_id = version_with_files(&server, "private");
    let api = Api::root(&server);
    // Before the seal, the current manifest's digest pins nothing: only seals are pinned.
    let current = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/clf/versions/1.0.0/manifest"
    ));
    let unsealed_digest = current.header("x-manifest-digest").unwrap().to_string();
    let unpinned = api.get(&format!(
        "/api/v4/projects/{project_id}/packages/generic/clf/{unsealed_digest}/model.bin"
    ));
    assert_eq!(unpinned.status, 404, "{}", unpinned.text());
    let digest = seal(&api, project_id, "1.0.0").json()["manifest_digest"]
        .as_str()
        .unwrap()
        .to_string();
    // A newer version exists: "latest" moves on, the digest does not.
    let newer = api.put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/generic/clf/2.0.0/model.bin"),
        b"newer weights",
    );
    assert_eq!(newer.status, 201);
    // Generic download URL.
    let download = api.get(&format!(
        "/api/v4/projects/{project_id}/packages/generic/clf/{digest}/model.bin"
    ));
    assert_eq!(download.status, 200, "{}", download.text());
    assert_eq!(download.body, MODEL_BIN);
    assert_eq!(download.header("x-model-version"), Some("1.0.0"));
    let nested = api.get(&format!(
        "/api/v4/projects/{project_id}/packages/generic/clf/{digest}/conf/config.json"
    ));
    assert_eq!(nested.body, CONFIG);
    // Percent-encoded colon too.
    let encoded = digest.replace(':', "%3A");
    let download = api.get(&format!(
        "/api/v4/projects/{project_id}/packages/generic/clf/{encoded}/model.bin"
    ));
    assert_eq!(download.status, 200, "{}", download.text());
    // Archive: its manifest.json is the sealed manifest, byte for byte.
    let archive = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/clf/versions/{digest}/archive?format=tar"
    ));
    assert_eq!(archive.status, 200, "{}", archive.text());
    assert_eq!(archive.header("x-model-version"), Some("1.0.0"));
    let size = usize::from_str_radix(
        std::str::from_utf8(&archive.body[124..135])
            .unwrap()
            .trim_matches('\0'),
        8,
    )
    .unwrap();
    let in_archive = &archive.body[512..512 + size];
    assert_eq!(format!("sha256:{}", sha256_hex(in_archive)), digest);
    // The manifest endpoint by digest.
    let manifest = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/clf/versions/{digest}/manifest"
    ));
    assert_eq!(manifest.header("x-manifest-digest"), Some(digest.as_str()));
    assert_eq!(manifest.body, in_archive);
    // Native API: show and resolve.
    let shown = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/clf/versions/{digest}"
    ));
    assert_eq!(shown.status, 200, "{}", shown.text());
    assert_eq!(shown.json()["version"], "1.0.0");
    let resolved = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/clf/versions/resolve?requirement={encoded}"
    ));
    assert_eq!(resolved.status, 200, "{}", resolved.text());
    assert_eq!(resolved.json()["version"], "1.0.0");
    // Unknown digests are 404 with a message; malformed ones 400.
    let unknown = format!("sha256:{}", "0".repeat(64));
    for path in [
        format!("/api/v4/projects/{project_id}/packages/generic/clf/{unknown}/model.bin"),
        format!("/api/v4/projects/{project_id}/ml/models/clf/versions/{unknown}/archive"),
        format!("/api/v4/projects/{project_id}/ml/models/clf/versions/{unknown}"),
    ] {
        let reply = api.get(&path);
        assert_eq!(reply.status, 404, "{path}: {}", reply.text());
    }
    let malformed = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/clf/versions/sha256:xyz/archive"
    ));
    assert_eq!(malformed.status, 400, "{}", malformed.text());
    // The pin needs read access like any download.
    let anonymous = Api::anonymous(&server).get(&format!(
        "/api/v4/projects/{project_id}/packages/generic/clf/{digest}/model.bin"
    ));
    assert_eq!(anonymous.status, 404);
}

/// Creates a candidate of model `name`'s experiment with one file; returns its iid.
fn candidate_with_file(api: &Api, project_id: u64, name: &str, file: bool) -> u64 {
    let model = api
        .get(&format!("/api/v4/projects/{project_id}/ml/models/{name}"))
        .json();
    let experiment_iid = model["experiment_iid"].as_u64().unwrap();
    let candidate = api.post_json(
        &format!("/api/v4/projects/{project_id}/ml/experiments/{experiment_iid}/candidates"),
        json!({}),
    );
    assert_eq!(candidate.status, 201, "{}", candidate.text());
    let iid = candidate.json()["iid"].as_u64().unwrap();
    if file {
        let put = api.put_bytes(
            &format!(
                "/api/v4/projects/{project_id}/packages/ml_models/candidate:{iid}/files/weights.bin"
            ),
            b"candidate weights",
        );
        assert_eq!(put.status, 201, "{}", put.text());
    }
    iid
}

fn promote(api: &Api, project_id: u64, iid: u64, version: &str) -> Value {
    let promoted = api.post_json(
        &format!("/api/v4/projects/{project_id}/ml/candidates/{iid}/promote"),
        json!({ "version": version }),
    );
    assert!(
        promoted.status == 200 || promoted.status == 201,
        "{}",
        promoted.text()
    );
    promoted.json()
}

fn set_auto_seal(api: &Api, project_id: u64, name: &str, policy: &str) -> Reply {
    api.send(
        "PATCH",
        &format!("/api/v4/projects/{project_id}/ml/models/{name}"),
        &[("Content-Type", "application/json")],
        json!({ "auto_seal": policy }).to_string().as_bytes(),
    )
}

fn sealed(api: &Api, project_id: u64, name: &str, version: &str) -> bool {
    let reply = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/{name}/versions/{version}"
    ));
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["sealed"].as_bool().unwrap()
}

#[test]
fn models_seal_releases_automatically_when_promoted_or_created_with_files() {
    let server = TestServer::start();
    let project_id = project(&server, "auto", "private");
    let api = Api::root(&server);
    let (reporter_id, reporter) = user_with_token(&server, "reporter", "api");
    add_member(&server, project_id, reporter_id, 20);
    let reporter = Api::with_token(&server, &reporter);
    for name in ["promoted", "withfiles", "manual"] {
        let created = api.post_json(
            &format!("/api/v4/projects/{project_id}/ml/models"),
            json!({ "name": name }),
        );
        assert_eq!(created.status, 201, "{}", created.text());
    }
    // The setting is a Maintainer's, with known values only.
    assert_eq!(
        set_auto_seal(&reporter, project_id, "promoted", "on_promote").status,
        403
    );
    let bad = set_auto_seal(&api, project_id, "promoted", "always");
    assert_eq!(bad.status, 400, "{}", bad.text());
    let set = set_auto_seal(&api, project_id, "promoted", "on_promote");
    assert_eq!(set.status, 200, "{}", set.text());
    assert_eq!(set.json()["auto_seal"], "on_promote");
    assert_eq!(
        set_auto_seal(&api, project_id, "withfiles", "on_create_with_files").json()["auto_seal"],
        "on_create_with_files"
    );
    let manual = api.get(&format!("/api/v4/projects/{project_id}/ml/models/manual"));
    assert_eq!(manual.json()["auto_seal"], "off");

    // on_promote: a promoted release is sealed (by whoever promoted it), with or without
    // files; a prerelease is not; a version created directly is not.
    let iid = candidate_with_file(&reporter, project_id, "promoted", true);
    let version = promote(&reporter, project_id, iid, "1.0.0");
    assert_eq!(version["sealed"], true, "{version}");
    assert_eq!(version["sealed_by"], "reporter");
    let manifest = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/promoted/versions/1.0.0/manifest"
    ));
    assert_eq!(
        manifest.json()["files"][0]["path"],
        "weights.bin",
        "{}",
        manifest.text()
    );
    let refused = reporter.put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/generic/promoted/1.0.0/more.bin"),
        b"more",
    );
    assert_sealed_refusal(&refused, "upload to an automatically sealed version");
    let iid = candidate_with_file(&reporter, project_id, "promoted", false);
    assert_eq!(promote(&reporter, project_id, iid, "1.1.0")["sealed"], true);
    let iid = candidate_with_file(&reporter, project_id, "promoted", true);
    assert_eq!(
        promote(&reporter, project_id, iid, "2.0.0-rc.1")["sealed"],
        false
    );
    let direct = reporter.post_json(
        &format!("/api/v4/projects/{project_id}/ml/models/promoted/versions"),
        json!({ "version": "3.0.0" }),
    );
    assert_eq!(direct.json()["sealed"], false);

    // on_create_with_files: a release promoted with files is sealed, one without files is not,
    // an empty version is not, and neither is a version whose files come one upload at a time.
    let iid = candidate_with_file(&reporter, project_id, "withfiles", true);
    assert_eq!(promote(&reporter, project_id, iid, "1.0.0")["sealed"], true);
    let iid = candidate_with_file(&reporter, project_id, "withfiles", false);
    assert_eq!(
        promote(&reporter, project_id, iid, "1.1.0")["sealed"],
        false
    );
    let upload = reporter.put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/generic/withfiles/1.2.0/a.bin"),
        b"a",
    );
    assert_eq!(upload.status, 201);
    let upload = reporter.put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/generic/withfiles/1.2.0/b.bin"),
        b"b",
    );
    assert_eq!(upload.status, 201, "{}", upload.text());
    assert!(!sealed(&api, project_id, "withfiles", "1.2.0"));

    // off: nothing is sealed automatically.
    let iid = candidate_with_file(&reporter, project_id, "manual", true);
    assert_eq!(
        promote(&reporter, project_id, iid, "1.0.0")["sealed"],
        false
    );
}

#[test]
fn the_version_page_shows_the_seal_and_its_digest() {
    let server = TestServer::start();
    let project_id = version_with_files(&server, "public");
    let api = Api::root(&server);
    let model = api
        .get(&format!("/api/v4/projects/{project_id}/ml/models/clf"))
        .json();
    let version = api
        .get(&format!(
            "/api/v4/projects/{project_id}/ml/models/clf/versions/1.0.0"
        ))
        .json();
    let page = format!(
        "/root/sealing/-/ml/models/{}/versions/{}",
        model["id"], version["id"]
    );
    let before = Api::anonymous(&server).get(&page);
    assert_eq!(before.status, 200, "{}", before.text());
    assert!(!before.text().contains("badge sealed"));
    let digest = seal(&api, project_id, "1.0.0").json()["manifest_digest"]
        .as_str()
        .unwrap()
        .to_string();
    let after = Api::anonymous(&server).get(&page);
    assert_eq!(after.status, 200);
    let html = after.text();
    assert!(html.contains("badge sealed"), "{html}");
    assert!(
        html.contains(&format!("<code id=\"manifest-digest\">{digest}</code>")),
        "{html}"
    );
    // The model page's version list shows the badge too.
    let model_page = Api::anonymous(&server)
        .get(&format!(
            "/root/sealing/-/ml/models/{}?tab=versions",
            model["id"]
        ))
        .text();
    assert!(model_page.contains("badge sealed"), "{model_page}");
}

#[test]
fn the_readme_sealing_snippet_runs() {
    let server = TestServer::start();
    let project_id = project(&server, "fraud", "private");
    let created = Api::root(&server).post_json(
        &format!("/api/v4/projects/{project_id}/ml/models"),
        json!({ "name": "fraud" }),
    );
    assert_eq!(created.status, 201);
    let out = run_readme_block(&server, "integrity-snippet=seal");
    assert_eq!(out, "409\npinned\n200\n");
    let model = Api::root(&server)
        .get(&format!("/api/v4/projects/{project_id}/ml/models/fraud"))
        .json();
    assert_eq!(model["auto_seal"], "on_promote");
}
