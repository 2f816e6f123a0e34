//! The OCI distribution surface (`/v2/`) over a real socket: the challenge and both auth forms,
//! anonymous pulls, the spec's 404s, pulls of versions made with curl (generated manifests,
//! floating tags), pushes (monolithic, chunked with an interruption resumed, mount), tags
//! pagination, referrers and deletes.

mod common;

use base64::Engine;
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};

fn basic(token: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("anyone:{token}"))
    )
}

/// One request to the OCI surface, with `auth` as the whole `Authorization` header (or none).
fn oci(
    server: &TestServer,
    method: &str,
    path: &str,
    auth: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if let Some(auth) = auth {
        all.push(("Authorization", auth));
    }
    raw(&server.base, method, path, &all, body)
}

fn code_of(reply: &Reply) -> String {
    reply.json()["errors"][0]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {}", reply.text()))
        .to_string()
}

fn create_model(server: &TestServer, project_id: u64, name: &str) {
    let reply = Api::root(server).post_json(
        &format!("/api/v4/projects/{project_id}/ml/models"),
        json!({ "name": name }),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
}

/// A version made the curl way: a generic upload under the model's name.
fn curl_version(
    server: &TestServer,
    project_id: u64,
    model: &str,
    version: &str,
    file: &str,
    data: &[u8],
) {
    let reply = Api::root(server).put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/generic/{model}/{version}/{file}"),
        data,
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
}

fn digest(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// Pushes a blob in one request (`POST ?digest=`).
fn push_blob(server: &TestServer, repo: &str, auth: &str, data: &[u8]) -> Reply {
    oci(
        server,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={}", digest(data)),
        Some(auth),
        &[("Content-Type", "application/octet-stream")],
        data,
    )
}

fn image_manifest(
    config: &[u8],
    layers: &[(&str, &[u8])],
    subject: Option<(&str, usize)>,
) -> Vec<u8> {
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": digest(config),
            "size": config.len(),
        },
        "layers": layers.iter().map(|(title, data)| json!({
            "mediaType": "application/octet-stream",
            "digest": digest(data),
            "size": data.len(),
            "annotations": { "org.opencontainers.image.title": title },
        })).collect::<Vec<_>>(),
    });
    if let Some((subject, size)) = subject {
        manifest["artifactType"] = json!("application/vnd.dev.cosign.artifact.sig.v1+json");
        manifest["subject"] = json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": subject,
            "size": size,
        });
    }
    serde_json::to_vec(&manifest).unwrap()
}

fn put_manifest(
    server: &TestServer,
    repo: &str,
    reference: &str,
    auth: &str,
    manifest: &[u8],
) -> Reply {
    oci(
        server,
        "PUT",
        &format!("/v2/{repo}/manifests/{reference}"),
        Some(auth),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        manifest,
    )
}

#[test]
fn the_challenge_starts_the_token_flow_and_basic_auth_works_directly() {
    let server = TestServer::start();
    let bare = oci(&server, "GET", "/v2/", None, &[], b"");
    assert_eq!(bare.status, 401);
    assert_eq!(code_of(&bare), "UNAUTHORIZED");
    let challenge = bare
        .header("www-authenticate")
        .expect("challenge")
        .to_string();
    assert!(challenge.starts_with("Bearer realm=\""), "{challenge}");
    assert!(
        challenge.contains(&format!("realm=\"{}/v2/token\"", server.base)),
        "{challenge}"
    );
    assert_eq!(
        bare.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );

    // The token flow: the realm with Basic credentials, then Bearer.
    let issued = oci(
        &server,
        "GET",
        "/v2/token?service=x&scope=repository:a/b/c:pull",
        Some(&basic(ROOT_TOKEN)),
        &[],
        b"",
    );
    assert_eq!(issued.status, 200, "{}", issued.text());
    let token = issued.json()["token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {token}");
    assert_eq!(
        oci(&server, "GET", "/v2/", Some(&bearer), &[], b"").status,
        200
    );
    // OAuth2's password grant (containerd) gives the same.
    let form = oci(
        &server,
        "POST",
        "/v2/token",
        None,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("grant_type=password&username=root&password={ROOT_TOKEN}&service=x").as_bytes(),
    );
    assert_eq!(form.status, 200, "{}", form.text());
    assert_eq!(form.json()["access_token"], json!(ROOT_TOKEN));
    // Basic with the token as password, straight away.
    assert_eq!(
        oci(&server, "GET", "/v2/", Some(&basic(ROOT_TOKEN)), &[], b"").status,
        200
    );
    // Bad credentials are refused everywhere, in the spec's shape.
    let bad = oci(&server, "GET", "/v2/token", Some(&basic("wrong")), &[], b"");
    assert_eq!(bad.status, 401);
    assert_eq!(code_of(&bad), "UNAUTHORIZED");
    let bad = oci(&server, "GET", "/v2/", Some("Bearer wrong"), &[], b"");
    assert_eq!(bad.status, 401);
    assert!(bad.header("www-authenticate").is_some());
    // Without credentials the realm hands out the anonymous token, which /v2/ accepts.
    let anonymous = oci(&server, "GET", "/v2/token", None, &[], b"");
    assert_eq!(anonymous.status, 200);
    let anonymous = format!("Bearer {}", anonymous.json()["token"].as_str().unwrap());
    assert_eq!(
        oci(&server, "GET", "/v2/", Some(&anonymous), &[], b"").status,
        200
    );
}

#[test]
fn anonymous_pulls_of_a_public_project_and_nothing_of_a_private_one() {
    let server = TestServer::start();
    let public = project(&server, "open", "public");
    let private = project(&server, "closed", "private");
    create_model(&server, public, "scorer");
    create_model(&server, private, "scorer");
    let data = random_bytes(100_000, 1);
    curl_version(&server, public, "scorer", "1.0.0", "model.onnx", &data);
    curl_version(&server, private, "scorer", "1.0.0", "model.onnx", &data);
    let anonymous_token = oci(&server, "GET", "/v2/token", None, &[], b"").json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    for auth in [None, Some(format!("Bearer {anonymous_token}"))] {
        let auth = auth.as_deref();
        let manifest = oci(
            &server,
            "GET",
            "/v2/root/open/scorer/manifests/1.0.0",
            auth,
            &[],
            b"",
        );
        assert_eq!(manifest.status, 200, "{}", manifest.text());
        let layer = &manifest.json()["layers"][0];
        assert_eq!(layer["digest"], json!(digest(&data)));
        let blob = oci(
            &server,
            "GET",
            &format!("/v2/root/open/scorer/blobs/{}", digest(&data)),
            auth,
            &[],
            b"",
        );
        assert_eq!(blob.status, 200);
        assert_eq!(blob.body, data);
        // A private project answers an anonymous caller as if it asked for credentials,
        // whether or not the repository exists.
        for path in [
            "/v2/root/closed/scorer/manifests/1.0.0",
            "/v2/root/nothing/here/manifests/1.0.0",
        ] {
            let refused = oci(&server, "GET", path, auth, &[], b"");
            assert_eq!(refused.status, 401, "{path}");
            assert_eq!(code_of(&refused), "UNAUTHORIZED");
            assert!(refused
                .header("www-authenticate")
                .unwrap()
                .contains("scope=\"repository:"));
        }
        // And anonymous pushes are refused.
        let push = push_blob(&server, "root/open/scorer", auth.unwrap_or(""), b"x");
        assert_eq!(push.status, 401, "{}", push.text());
    }
    // An authenticated non-member does not learn that the private project exists.
    let (_, outsider) = user_with_token(&server, "outsider", "api");
    let hidden = oci(
        &server,
        "GET",
        "/v2/root/closed/scorer/manifests/1.0.0",
        Some(&basic(&outsider)),
        &[],
        b"",
    );
    assert_eq!(hidden.status, 404);
    assert_eq!(code_of(&hidden), "NAME_UNKNOWN");
    // Nor may it read the private project's blob through the public repository.
    let other = random_bytes(10, 2);
    curl_version(&server, private, "scorer", "1.0.1", "other.bin", &other);
    let leaked = oci(
        &server,
        "GET",
        &format!("/v2/root/open/scorer/blobs/{}", digest(&other)),
        None,
        &[],
        b"",
    );
    assert_eq!(leaked.status, 404);
    assert_eq!(code_of(&leaked), "BLOB_UNKNOWN");
}

#[test]
fn unknown_repositories_tags_and_digests_are_404s_in_the_specs_shape() {
    let server = TestServer::start();
    let project_id = project(&server, "fraud", "private");
    create_model(&server, project_id, "scorer");
    curl_version(
        &server,
        project_id,
        "scorer",
        "1.0.0",
        "model.onnx",
        b"weights",
    );
    let auth = basic(ROOT_TOKEN);
    let zero = format!("sha256:{}", "0".repeat(64));
    let cases = [
        (
            "/v2/root/fraud/nope/manifests/1.0.0".to_string(),
            "NAME_UNKNOWN",
        ),
        (
            "/v2/root/nothing/nope/manifests/1.0.0".to_string(),
            "NAME_UNKNOWN",
        ),
        (
            "/v2/root/fraud/scorer/manifests/9.9.9".to_string(),
            "MANIFEST_UNKNOWN",
        ),
        (
            "/v2/root/fraud/scorer/manifests/7".to_string(),
            "MANIFEST_UNKNOWN",
        ),
        (
            format!("/v2/root/fraud/scorer/manifests/{zero}"),
            "MANIFEST_UNKNOWN",
        ),
        (
            format!("/v2/root/fraud/scorer/blobs/{zero}"),
            "BLOB_UNKNOWN",
        ),
        ("/v2/root/fraud/nope/tags/list".to_string(), "NAME_UNKNOWN"),
        (
            format!("/v2/root/fraud/scorer/blobs/uploads/{}", "a".repeat(32)),
            "BLOB_UPLOAD_UNKNOWN",
        ),
    ];
    for (path, code) in cases {
        let reply = oci(&server, "GET", &path, Some(&auth), &[], b"");
        assert_eq!(reply.status, 404, "{path}: {}", reply.text());
        assert_eq!(code_of(&reply), code, "{path}");
        assert!(reply.json()["errors"][0]["message"].is_string());
    }
    let head = oci(
        &server,
        "HEAD",
        "/v2/root/fraud/scorer/manifests/9.9.9",
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(head.status, 404);
    let bad = oci(
        &server,
        "GET",
        "/v2/root/fraud/scorer/manifests/sha256:xyz",
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(bad.status, 400);
    assert_eq!(code_of(&bad), "DIGEST_INVALID");
}

#[test]
fn a_curl_version_is_a_deterministic_modelpack_manifest_with_its_files_as_layers() {
    let server = TestServer::start();
    let project_id = project(&server, "fraud", "private");
    create_model(&server, project_id, "scorer");
    let weights = random_bytes(300_000, 3);
    curl_version(
        &server,
        project_id,
        "scorer",
        "1.2.0",
        "model.onnx",
        &weights,
    );
    curl_version(
        &server,
        project_id,
        "scorer",
        "1.2.0",
        "README.md",
        b"# scorer",
    );
    curl_version(
        &server,
        project_id,
        "scorer",
        "1.2.0",
        "extra/notes.xyz",
        b"n",
    );
    let auth = basic(ROOT_TOKEN);
    let first = oci(
        &server,
        "GET",
        "/v2/root/fraud/scorer/manifests/1.2.0",
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(
        first.header("content-type"),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    let manifest_digest = first.header("docker-content-digest").unwrap().to_string();
    assert_eq!(manifest_digest, digest(&first.body));
    let again = oci(
        &server,
        "GET",
        "/v2/root/fraud/scorer/manifests/1.2.0",
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(again.body, first.body, "the manifest is deterministic");
    let manifest = first.json();
    assert_eq!(
        manifest["artifactType"],
        json!("application/vnd.cncf.model.manifest.v1+json")
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        json!("application/vnd.cncf.model.config.v1+json")
    );
    let layers: Vec<(String, String)> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["annotations"]["org.opencontainers.image.title"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                l["mediaType"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        layers,
        [
            (
                "README.md".to_string(),
                "application/vnd.cncf.model.doc.v1.raw".to_string()
            ),
            (
                "extra/notes.xyz".to_string(),
                "application/octet-stream".to_string()
            ),
            (
                "model.onnx".to_string(),
                "application/vnd.cncf.model.weight.v1.raw".to_string()
            ),
        ]
    );
    // By digest, the same bytes; HEAD says the same.
    let by_digest = oci(
        &server,
        "GET",
        &format!("/v2/root/fraud/scorer/manifests/{manifest_digest}"),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(by_digest.status, 200);
    assert_eq!(by_digest.body, first.body);
    let head = oci(
        &server,
        "HEAD",
        "/v2/root/fraud/scorer/manifests/1.2.0",
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("docker-content-digest"),
        Some(manifest_digest.as_str())
    );
    assert_eq!(
        head.header("content-length"),
        Some(first.body.len().to_string().as_str())
    );
    // The config blob holds the version's metadata and verifies against its digest.
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config = oci(
        &server,
        "GET",
        &format!("/v2/root/fraud/scorer/blobs/{config_digest}"),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(config.status, 200);
    assert_eq!(digest(&config.body), config_digest);
    let config = config.json();
    assert_eq!(config["descriptor"]["name"], json!("scorer"));
    assert_eq!(config["descriptor"]["version"], json!("1.2.0"));
    assert_eq!(config["modelfs"]["diff_ids"].as_array().unwrap().len(), 3);
    // Layers are the files' blobs, with Range.
    let range = oci(
        &server,
        "GET",
        &format!("/v2/root/fraud/scorer/blobs/{}", digest(&weights)),
        Some(&auth),
        &[("Range", "bytes=10-19")],
        b"",
    );
    assert_eq!(range.status, 206);
    assert_eq!(range.body, weights[10..20]);
    // A change to the version changes its manifest; the old digest is then unknown.
    curl_version(&server, project_id, "scorer", "1.2.0", "more.txt", b"more");
    let changed = oci(
        &server,
        "GET",
        "/v2/root/fraud/scorer/manifests/1.2.0",
        Some(&auth),
        &[],
        b"",
    );
    assert_ne!(
        changed.header("docker-content-digest"),
        Some(manifest_digest.as_str())
    );
    let stale = oci(
        &server,
        "GET",
        &format!("/v2/root/fraud/scorer/manifests/{manifest_digest}"),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(stale.status, 404);
}

#[test]
fn floating_tags_follow_the_newest_matching_release() {
    let server = TestServer::start();
    let project_id = project(&server, "fraud", "private");
    create_model(&server, project_id, "scorer");
    for version in [
        "1.1.9",
        "1.2.0",
        "1.2.5",
        "1.3.0",
        "1.4.0-rc.1",
        "2.0.0-rc.1",
    ] {
        curl_version(
            &server,
            project_id,
            "scorer",
            version,
            "v.txt",
            version.as_bytes(),
        );
    }
    let auth = basic(ROOT_TOKEN);
    let version_of = |tag: &str| -> String {
        let reply = oci(
            &server,
            "GET",
            &format!("/v2/root/fraud/scorer/manifests/{tag}"),
            Some(&auth),
            &[],
            b"",
        );
        assert_eq!(reply.status, 200, "{tag}: {}", reply.text());
        reply.json()["annotations"]["org.opencontainers.image.version"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(version_of("1.2"), "1.2.5");
    assert_eq!(version_of("1"), "1.3.0");
    assert_eq!(version_of("latest"), "1.3.0");
    assert_eq!(version_of("1.4.0-rc.1"), "1.4.0-rc.1");
    assert_eq!(version_of("1.1"), "1.1.9");
    let none = oci(
        &server,
        "GET",
        "/v2/root/fraud/scorer/manifests/2",
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(none.status, 404, "2.x has only a prerelease");
}

#[test]
fn tags_list_pages_with_n_and_last() {
    let server = TestServer::start();
    let project_id = project(&server, "fraud", "private");
    create_model(&server, project_id, "scorer");
    for version in ["1.0.0", "1.1.0", "1.10.0", "2.0.0-rc.1", "2.0.0+build.7"] {
        curl_version(
            &server,
            project_id,
            "scorer",
            version,
            "v.txt",
            version.as_bytes(),
        );
    }
    let auth = basic(ROOT_TOKEN);
    let all = oci(
        &server,
        "GET",
        "/v2/root/fraud/scorer/tags/list",
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(all.status, 200);
    assert_eq!(all.json()["name"], json!("root/fraud/scorer"));
    let tags: Vec<String> = serde_json::from_value(all.json()["tags"].clone()).unwrap();
    assert_eq!(
        tags,
        ["1.0.0", "1.1.0", "1.10.0", "2.0.0_build.7", "2.0.0-rc.1"]
    );
    assert!(all.header("link").is_none());
    let mut seen = Vec::new();
    let mut path = "/v2/root/fraud/scorer/tags/list?n=2".to_string();
    loop {
        let page = oci(&server, "GET", &path, Some(&auth), &[], b"");
        assert_eq!(page.status, 200, "{path}");
        let tags: Vec<String> = serde_json::from_value(page.json()["tags"].clone()).unwrap();
        assert!(tags.len() <= 2);
        seen.extend(tags);
        match page.header("link") {
            Some(link) => {
                path = link
                    .trim_start_matches('<')
                    .split_once('>')
                    .unwrap()
                    .0
                    .to_string();
                assert!(link.ends_with("rel=\"next\""));
            }
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["1.0.0", "1.1.0", "1.10.0", "2.0.0_build.7", "2.0.0-rc.1"]
    );
    let after = oci(
        &server,
        "GET",
        "/v2/root/fraud/scorer/tags/list?last=1.1.0&n=1",
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(after.json()["tags"], json!(["1.10.0"]));
    // The build-metadata tag pulls its version.
    let build = oci(
        &server,
        "GET",
        "/v2/root/fraud/scorer/manifests/2.0.0_build.7",
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(build.status, 200);
}

#[test]
fn a_push_by_tag_creates_the_version_with_its_layers_as_files() {
    let server = TestServer::start();
    let project_id = project(&server, "fraud", "private");
    let (guest_id, guest) = user_with_token(&server, "guest", "api");
    let (reporter_id, reporter) = user_with_token(&server, "reporter", "api");
    add_member(&server, project_id, guest_id, 10);
    add_member(&server, project_id, reporter_id, 20);
    let repo = "root/fraud/pushed";
    let config = b"{}".to_vec();
    let weights = random_bytes(200_000, 4);
    // A Guest may read but not push.
    let refused = push_blob(&server, repo, &basic(&guest), &weights);
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(code_of(&refused), "DENIED");
    let auth = basic(&reporter);
    for data in [&config, &weights] {
        let pushed = push_blob(&server, repo, &auth, data);
        assert_eq!(pushed.status, 201, "{}", pushed.text());
        assert_eq!(
            pushed.header("docker-content-digest"),
            Some(digest(data).as_str())
        );
    }
    // A wrong digest is refused.
    let wrong = oci(
        &server,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={}", digest(b"other")),
        Some(&auth),
        &[],
        b"data",
    );
    assert_eq!(wrong.status, 400);
    assert_eq!(code_of(&wrong), "DIGEST_INVALID");
    let manifest = image_manifest(
        &config,
        &[("model.onnx", &weights), ("conf/labels.txt", &config)],
        None,
    );
    // Tags are versions.
    let not_semver = put_manifest(&server, repo, "v1", &auth, &manifest);
    assert_eq!(not_semver.status, 400);
    assert_eq!(code_of(&not_semver), "TAG_INVALID");
    // Blobs must be pushed first.
    let missing = put_manifest(
        &server,
        repo,
        "1.3.0",
        &auth,
        &image_manifest(&config, &[("x", b"never pushed")], None),
    );
    assert_eq!(missing.status, 400);
    assert_eq!(code_of(&missing), "MANIFEST_BLOB_UNKNOWN");
    let pushed = put_manifest(&server, repo, "1.3.0", &auth, &manifest);
    assert_eq!(pushed.status, 201, "{}", pushed.text());
    assert_eq!(
        pushed.header("docker-content-digest"),
        Some(digest(&manifest).as_str())
    );
    // The model and version exist with those files, served by the generic path too.
    let download = Api::root(&server).get(&format!(
        "/api/v4/projects/{project_id}/packages/generic/pushed/1.3.0/model.onnx"
    ));
    assert_eq!(download.status, 200);
    assert_eq!(download.body, weights);
    let version = Api::root(&server).get(&format!(
        "/api/v4/projects/{project_id}/ml/models/pushed/versions/1.3.0"
    ));
    assert_eq!(version.status, 200, "{}", version.text());
    // Pulled by tag, it is the manifest as pushed (same digest).
    let pulled = oci(
        &server,
        "GET",
        &format!("/v2/{repo}/manifests/1.3.0"),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(pulled.body, manifest);
    // Pushing the same manifest again changes nothing; the blob is stored once.
    let blobs_before = server.blob_count();
    assert_eq!(
        put_manifest(&server, repo, "1.3.0", &auth, &manifest).status,
        201
    );
    assert_eq!(server.blob_count(), blobs_before);
    let files = Api::root(&server).get(&format!(
        "/api/v4/projects/{project_id}/packages?package_name=pushed"
    ));
    let package_id = files.json()[0]["id"].as_u64().unwrap();
    let files = Api::root(&server).get(&format!(
        "/api/v4/projects/{project_id}/packages/{package_id}/package_files"
    ));
    assert_eq!(files.json().as_array().unwrap().len(), 2);
    // A Reporter deletes the version through its tag; a Guest may not.
    let guest_delete = oci(
        &server,
        "DELETE",
        &format!("/v2/{repo}/manifests/1.3.0"),
        Some(&basic(&guest)),
        &[],
        b"",
    );
    assert_eq!(guest_delete.status, 403);
    let floating = oci(
        &server,
        "DELETE",
        &format!("/v2/{repo}/manifests/1"),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(floating.status, 405);
    let deleted = oci(
        &server,
        "DELETE",
        &format!("/v2/{repo}/manifests/1.3.0"),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(deleted.status, 202, "{}", deleted.text());
    let gone = oci(
        &server,
        "GET",
        &format!("/v2/{repo}/manifests/1.3.0"),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(gone.status, 404);
    let version = Api::root(&server).get(&format!(
        "/api/v4/projects/{project_id}/ml/models/pushed/versions/1.3.0"
    ));
    assert_eq!(version.status, 404);
}

/// Sends a PATCH whose body stops after `sent` of its declared bytes, then drops the
/// connection.
fn interrupted_patch(
    server: &TestServer,
    path: &str,
    auth: &str,
    start: usize,
    declared: usize,
    sent: &[u8],
) {
    let host = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\nContent-Type: application/octet-stream\r\nContent-Range: {start}-{}\r\nContent-Length: {declared}\r\n\r\n",
        start + declared - 1
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(sent).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    stream.shutdown(std::net::Shutdown::Both).unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
}

fn range_end(reply: &Reply) -> usize {
    let range = reply.header("range").expect("Range");
    range.split_once('-').unwrap().1.parse::<usize>().unwrap() + 1
}

#[test]
fn a_chunked_upload_interrupted_resumes_from_the_reported_offset() {
    let server = TestServer::start();
    let project_id = project(&server, "fraud", "private");
    create_model(&server, project_id, "scorer");
    let repo = "root/fraud/scorer";
    let auth = basic(ROOT_TOKEN);
    let data = random_bytes(3 << 20, 5);
    let started = oci(
        &server,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(started.status, 202, "{}", started.text());
    let location = started.header("location").unwrap().to_string();
    assert!(location.starts_with(&format!("/v2/{repo}/blobs/uploads/")));
    // The first chunk, whole.
    let first = 1 << 20;
    let chunk = oci(
        &server,
        "PATCH",
        &location,
        Some(&auth),
        &[("Content-Range", &format!("0-{}", first - 1))],
        &data[..first],
    );
    assert_eq!(chunk.status, 202, "{}", chunk.text());
    assert_eq!(range_end(&chunk), first);
    // A chunk that does not start where the upload ends is refused.
    let gap = oci(
        &server,
        "PATCH",
        &location,
        Some(&auth),
        &[("Content-Range", "5-9")],
        b"01234",
    );
    assert_eq!(gap.status, 416);
    // The second chunk breaks off half way.
    let half = 512 << 10;
    interrupted_patch(
        &server,
        &location,
        &auth,
        first,
        1 << 20,
        &data[first..first + half],
    );
    let status = oci(&server, "GET", &location, Some(&auth), &[], b"");
    assert_eq!(status.status, 204, "{}", status.text());
    let offset = range_end(&status);
    assert!(offset >= first && offset <= first + half, "offset {offset}");
    // The client resumes from the offset the registry reports, and finishes with the digest.
    let rest = oci(
        &server,
        "PATCH",
        &location,
        Some(&auth),
        &[("Content-Range", &format!("{offset}-{}", data.len() - 1))],
        &data[offset..],
    );
    assert_eq!(rest.status, 202, "{}", rest.text());
    assert_eq!(range_end(&rest), data.len());
    let done = oci(
        &server,
        "PUT",
        &format!("{location}?digest={}", digest(&data)),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(done.status, 201, "{}", done.text());
    assert_eq!(
        done.header("docker-content-digest"),
        Some(digest(&data).as_str())
    );
    let blob = oci(
        &server,
        "GET",
        &format!("/v2/{repo}/blobs/{}", digest(&data)),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(blob.status, 200);
    assert!(blob.body == data, "the blob is byte-identical");
    // The session is gone.
    assert_eq!(
        oci(&server, "GET", &location, Some(&auth), &[], b"").status,
        404
    );
    // A PUT with the last chunk in its body, after a session with data, works too.
    let started = oci(
        &server,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        Some(&auth),
        &[],
        b"",
    );
    let location = started.header("location").unwrap().to_string();
    let small = random_bytes(1000, 6);
    assert_eq!(
        oci(&server, "PATCH", &location, Some(&auth), &[], &small[..600]).status,
        202
    );
    let done = oci(
        &server,
        "PUT",
        &format!("{location}?digest={}", digest(&small)),
        Some(&auth),
        &[],
        &small[600..],
    );
    assert_eq!(done.status, 201, "{}", done.text());
}

#[test]
fn a_blob_is_mounted_from_a_repository_the_caller_can_read() {
    let server = TestServer::start();
    let source = project(&server, "source", "private");
    let target = project(&server, "target", "private");
    let secret = project(&server, "secret", "private");
    let (user_id, token) = user_with_token(&server, "dev", "api");
    add_member(&server, source, user_id, 20);
    add_member(&server, target, user_id, 20);
    let _ = secret;
    let data = random_bytes(50_000, 7);
    let auth = basic(&token);
    assert_eq!(
        push_blob(&server, "root/source/a", &auth, &data).status,
        201
    );
    assert_eq!(
        push_blob(&server, "root/secret/a", &basic(ROOT_TOKEN), &data).status,
        201
    );
    let head = |repo: &str| {
        oci(
            &server,
            "HEAD",
            &format!("/v2/{repo}/blobs/{}", digest(&data)),
            Some(&auth),
            &[],
            b"",
        )
        .status
    };
    assert_eq!(head("root/target/b"), 404);
    let mounted = oci(
        &server,
        "POST",
        &format!(
            "/v2/root/target/b/blobs/uploads/?mount={}&from=root/source/a",
            digest(&data)
        ),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(mounted.status, 201, "{}", mounted.text());
    assert_eq!(
        mounted.header("location"),
        Some(format!("/v2/root/target/b/blobs/{}", digest(&data)).as_str())
    );
    assert_eq!(head("root/target/b"), 200);
    // From a repository the caller may not read, the mount is an ordinary upload session.
    let other = random_bytes(10, 8);
    assert_eq!(
        push_blob(&server, "root/secret/a", &basic(ROOT_TOKEN), &other).status,
        201
    );
    let not_mounted = oci(
        &server,
        "POST",
        &format!(
            "/v2/root/target/c/blobs/uploads/?mount={}&from=root/secret/a",
            digest(&other)
        ),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(not_mounted.status, 202);
    assert_eq!(
        oci(
            &server,
            "HEAD",
            &format!("/v2/root/target/c/blobs/{}", digest(&other)),
            Some(&auth),
            &[],
            b""
        )
        .status,
        404
    );
}

#[test]
fn referrers_list_a_signature_attached_to_a_version() {
    let server = TestServer::start();
    let project_id = project(&server, "fraud", "private");
    create_model(&server, project_id, "scorer");
    curl_version(
        &server,
        project_id,
        "scorer",
        "1.0.0",
        "model.onnx",
        b"weights",
    );
    let repo = "root/fraud/scorer";
    let auth = basic(ROOT_TOKEN);
    let version = oci(
        &server,
        "GET",
        &format!("/v2/{repo}/manifests/1.0.0"),
        Some(&auth),
        &[],
        b"",
    );
    let subject = version.header("docker-content-digest").unwrap().to_string();
    let empty = oci(
        &server,
        "GET",
        &format!("/v2/{repo}/referrers/{subject}"),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["manifests"], json!([]));
    // A signature: an artifact whose subject is the version's manifest, pushed by digest.
    let config = b"{}".to_vec();
    let signature = b"signature bytes".to_vec();
    assert_eq!(push_blob(&server, repo, &auth, &config).status, 201);
    assert_eq!(push_blob(&server, repo, &auth, &signature).status, 201);
    let manifest = image_manifest(
        &config,
        &[("sig", &signature)],
        Some((&subject, version.body.len())),
    );
    let signature_digest = digest(&manifest);
    let pushed = put_manifest(&server, repo, &signature_digest, &auth, &manifest);
    assert_eq!(pushed.status, 201, "{}", pushed.text());
    assert_eq!(pushed.header("oci-subject"), Some(subject.as_str()));
    let listed = oci(
        &server,
        "GET",
        &format!("/v2/{repo}/referrers/{subject}"),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.header("content-type"),
        Some("application/vnd.oci.image.index.v1+json")
    );
    let manifests = listed.json()["manifests"].clone();
    assert_eq!(
        manifests,
        json!([{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": signature_digest,
            "size": manifest.len(),
            "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
        }])
    );
    let filtered = oci(
        &server,
        "GET",
        &format!("/v2/{repo}/referrers/{subject}?artifactType=application/other"),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(filtered.header("oci-filters-applied"), Some("artifactType"));
    assert_eq!(filtered.json()["manifests"], json!([]));
    // The signature is fetched by digest as pushed; a wrong digest in the URL is refused.
    let fetched = oci(
        &server,
        "GET",
        &format!("/v2/{repo}/manifests/{signature_digest}"),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(fetched.body, manifest);
    let mismatch = put_manifest(&server, repo, &digest(b"x"), &auth, &manifest);
    assert_eq!(code_of(&mismatch), "DIGEST_INVALID");
    // Deleting the signature removes it from the listing; the version stays.
    let deleted = oci(
        &server,
        "DELETE",
        &format!("/v2/{repo}/manifests/{signature_digest}"),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(deleted.status, 202, "{}", deleted.text());
    let listed = oci(
        &server,
        "GET",
        &format!("/v2/{repo}/referrers/{subject}"),
        Some(&auth),
        &[],
        b"",
    );
    assert_eq!(listed.json()["manifests"], json!([]));
    assert_eq!(
        oci(
            &server,
            "GET",
            &format!("/v2/{repo}/manifests/1.0.0"),
            Some(&auth),
            &[],
            b""
        )
        .status,
        200
    );
}

#[test]
fn hostile_input_is_a_clear_4xx() {
    let server = TestServer::start();
    let project_id = project(&server, "fraud", "private");
    create_model(&server, project_id, "scorer");
    let repo = "root/fraud/scorer";
    let auth = basic(ROOT_TOKEN);
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        ("PUT", format!("/v2/{repo}/manifests/1.0.0"), b"not json".to_vec()),
        ("PUT", format!("/v2/{repo}/manifests/1.0.0"), b"{\"schemaVersion\": 2, \"config\": 5}".to_vec()),
        ("PUT", format!("/v2/{repo}/manifests/1.0.0"), serde_json::to_vec(&json!({"schemaVersion": 2, "config": {"mediaType": "a", "digest": "sha256:zz", "size": 1}, "layers": []})).unwrap()),
        ("PUT", format!("/v2/{repo}/manifests/a%20b"), b"{}".to_vec()),
        ("GET", "/v2/a/manifests/1".to_string(), Vec::new()),
        ("GET", format!("/v2/{repo}/nothing"), Vec::new()),
        ("PUT", format!("/v2/{repo}/blobs/uploads/../../x?digest=sha256:{}", "0".repeat(64)), Vec::new()),
        ("PATCH", format!("/v2/{repo}/blobs/uploads/not-an-id"), b"x".to_vec()),
        ("POST", format!("/v2/{repo}/blobs/uploads/?digest=md5:abc"), b"x".to_vec()),
    ];
    for (method, path, body) in cases {
        let reply = oci(&server, method, &path, Some(&auth), &[], &body);
        assert!(
            (400..500).contains(&reply.status),
            "{method} {path}: {} {}",
            reply.status,
            reply.text()
        );
        let value: Value = reply.json();
        assert!(
            value["errors"][0]["code"].is_string(),
            "{method} {path}: {value}"
        );
    }
    // A manifest over 4 MiB is refused without being buffered whole.
    let huge = vec![b' '; (4 << 20) + 10];
    let reply = oci(
        &server,
        "PUT",
        &format!("/v2/{repo}/manifests/1.0.0"),
        Some(&auth),
        &[],
        &huge,
    );
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert_eq!(code_of(&reply), "SIZE_INVALID");
}
