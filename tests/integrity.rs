//! Integrity on the wire: client digests checked before a file is visible on every upload
//! surface, digests on downloads, deploy by checksum, conditional downloads, whole-version
//! archives.

mod common;

use base64::Engine;
use common::*;
use serde_json::json;

fn b64_sha256(data: &[u8]) -> String {
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(data))
}

fn b64_sha512(data: &[u8]) -> String {
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(data))
}

fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(data))
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

fn model(server: &TestServer, project_id: u64, name: &str) {
    let reply = Api::root(server).post_json(
        &format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow/registered-models/create"),
        json!({ "name": name }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// A model version created over MLflow and its id (from its download URI).
fn version_id(server: &TestServer, project_id: u64, name: &str) -> String {
    let api = Api::root(server);
    let created = api.post_json(
        &format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow/model-versions/create"),
        json!({ "name": name, "source": "none" }),
    );
    assert_eq!(created.status, 200, "{}", created.text());
    let version = created.json()["model_version"]["version"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow/model-versions/get-download-uri?name={name}&version={version}"
    ));
    uri.json()["artifact_uri"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

/// An MLflow run; returns the artifact root URL path of it.
fn run_artifacts(server: &TestServer, project_id: u64) -> String {
    let api = Api::root(server);
    let base = format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0");
    let experiment = api.post_json(
        &format!("{base}/mlflow/experiments/create"),
        json!({ "name": "integrity" }),
    );
    let experiment_id = experiment.json()["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = api.post_json(
        &format!("{base}/mlflow/runs/create"),
        json!({ "experiment_id": experiment_id }),
    );
    let run_id = run.json()["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    format!("{base}/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts")
}

/// Every header set that declares a wrong digest for `body`, one algorithm at a time.
fn wrong_declarations(body: &[u8]) -> Vec<Vec<(&'static str, String)>> {
    let other = b"something else";
    vec![
        vec![("Content-Digest", format!("sha-256=:{}:", b64_sha256(other)))],
        vec![("Repr-Digest", format!("sha-256=:{}:", b64_sha256(other)))],
        vec![("Content-Digest", format!("sha-512=:{}:", b64_sha512(other)))],
        vec![("X-Checksum-Sha256", sha256_hex(other))],
        vec![
            ("X-Checksum-Sha256", sha256_hex(body)),
            ("X-Checksum-Sha1", sha1_hex(other)),
        ],
        vec![("X-Checksum-Md5", md5_hex(other))],
    ]
}

/// Every header set that declares the right digests for `body`.
fn right_declarations(body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        (
            "Content-Digest",
            format!(
                "sha-256=:{}:, sha-512=:{}:",
                b64_sha256(body),
                b64_sha512(body)
            ),
        ),
        ("X-Checksum-Sha256", sha256_hex(body)),
        ("X-Checksum-Sha1", sha1_hex(body)),
        ("X-Checksum-Md5", md5_hex(body)),
    ]
}

fn put_with(api: &Api, path: &str, headers: &[(&'static str, String)], body: &[u8]) -> Reply {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    api.send("PUT", path, &headers, body)
}

#[test]
fn a_digest_mismatch_is_400_on_every_upload_surface_and_nothing_is_recorded() {
    let server = TestServer::start();
    let project_id = project(&server, "digests", "private");
    model(&server, project_id, "clf");
    let version = version_id(&server, project_id, "clf");
    let artifacts = run_artifacts(&server, project_id);
    let api = Api::root(&server);
    let body = random_bytes(700_000, 3);
    let surfaces = [
        (
            "generic",
            format!("/api/v4/projects/{project_id}/packages/generic/tools/1.0/bad.bin"),
        ),
        (
            "model version over generic",
            format!("/api/v4/projects/{project_id}/packages/generic/clf/2.0.0/bad.bin"),
        ),
        (
            "ml_models files",
            format!("/api/v4/projects/{project_id}/packages/ml_models/{version}/files/bad.bin"),
        ),
        ("mlflow artifacts", format!("{artifacts}/bad.bin")),
    ];
    for (surface, path) in &surfaces {
        for headers in wrong_declarations(&body) {
            let reply = put_with(&api, path, &headers, &body);
            assert_eq!(reply.status, 400, "{surface} {headers:?}: {}", reply.text());
            let error = reply.json();
            if surface.starts_with("mlflow") {
                assert_eq!(error["error_code"], "INVALID_PARAMETER_VALUE", "{error}");
                assert!(error["message"].as_str().unwrap().contains("declared"));
            } else {
                let message = error["message"].as_str().unwrap();
                assert!(message.contains("declared"), "{surface}: {message}");
            }
            let fetched = api.get(path);
            assert_eq!(fetched.status, 404, "{surface}: the refused file is absent");
        }
    }
    // Not listed anywhere either: no package of the generic name, no artifact of the run.
    let packages = api.get(&format!(
        "/api/v4/projects/{project_id}/packages?package_name=tools"
    ));
    assert_eq!(
        packages.json().as_array().unwrap().len(),
        0,
        "{}",
        packages.text()
    );
    let version_files = api.get(&format!(
        "/api/v4/projects/{project_id}/packages?package_name=clf&package_type=ml_model"
    ));
    for package in version_files.json().as_array().unwrap() {
        let files = api.get(&format!(
            "/api/v4/projects/{project_id}/packages/{}/package_files",
            package["id"]
        ));
        assert!(!files.text().contains("bad.bin"), "{}", files.text());
    }
    assert_eq!(server.tmp_entries(), 0, "staged bodies are discarded");
    assert_eq!(server.blob_count(), 0, "no blob kept for a refused body");

    // The right digests: accepted on every surface; downloads carry them.
    for (surface, path) in &surfaces {
        let good = path.replace("bad.bin", "good.bin");
        let reply = put_with(&api, &good, &right_declarations(&body), &body);
        assert!(
            reply.status == 200 || reply.status == 201,
            "{surface}: {} {}",
            reply.status,
            reply.text()
        );
        let fetched = api.get(&good);
        assert_eq!(fetched.status, 200, "{surface}");
        assert_eq!(fetched.body, body);
        assert_eq!(
            fetched.header("repr-digest"),
            Some(format!("sha-256=:{}:", b64_sha256(&body)).as_str()),
            "{surface}"
        );
        assert_eq!(
            fetched.header("x-checksum-sha256"),
            Some(sha256_hex(&body).as_str())
        );
    }
    let (prefix, run_path) = artifacts
        .split_once("/mlflow-artifacts/artifacts/")
        .unwrap();
    let listed = api.get(&format!(
        "{prefix}/mlflow-artifacts/artifacts?path={run_path}"
    ));
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert!(listed.text().contains("good.bin"), "{}", listed.text());
    assert!(!listed.text().contains("bad.bin"), "{}", listed.text());
    let packages = api.get(&format!(
        "/api/v4/projects/{project_id}/packages?package_name=tools"
    ));
    let package_id = packages.json()[0]["id"].clone();
    let files = api.get(&format!(
        "/api/v4/projects/{project_id}/packages/{package_id}/package_files"
    ));
    assert!(files.text().contains("good.bin"), "{}", files.text());
    assert!(!files.text().contains("bad.bin"), "{}", files.text());
    // A malformed digest header is a 400 too, not a silently unchecked upload.
    let reply = api.send(
        "PUT",
        &surfaces[0].1,
        &[("Content-Digest", "sha-256=not-a-byte-sequence")],
        b"x",
    );
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.json()["message"]
        .as_str()
        .unwrap()
        .contains("content-digest"));
}

#[test]
fn deploy_by_checksum_links_readable_content_and_never_reveals_other_projects() {
    let server = TestServer::start();
    let mine = project(&server, "mine", "private");
    let theirs = project(&server, "theirs", "private");
    let shared = project(&server, "shared", "private");
    let (alice_id, alice) = user_with_token(&server, "alice", "api");
    add_member(&server, mine, alice_id, 30);
    add_member(&server, shared, alice_id, 20);
    let root = Api::root(&server);
    let api = Api::with_token(&server, &alice);

    let secret = random_bytes(300_000, 11);
    let visible = random_bytes(200_000, 12);
    let local = random_bytes(100_000, 13);
    let put = |project: u64, name: &str, body: &[u8]| {
        let reply = root.put_bytes(
            &format!("/api/v4/projects/{project}/packages/generic/src/1.0/{name}"),
            body,
        );
        assert_eq!(reply.status, 201, "{}", reply.text());
    };
    put(theirs, "secret.bin", &secret);
    put(shared, "visible.bin", &visible);
    put(mine, "local.bin", &local);

    let deploy = |sha256: &str, name: &str| {
        api.send(
            "PUT",
            &format!("/api/v4/projects/{mine}/packages/generic/app/2.0/{name}"),
            &[("X-Checksum-Deploy", "true"), ("X-Checksum-Sha256", sha256)],
            b"",
        )
    };
    // Inside the project.
    let reply = deploy(&sha256_hex(&local), "local-copy.bin");
    assert_eq!(reply.status, 201, "{}", reply.text());
    let fetched = api.get(&format!(
        "/api/v4/projects/{mine}/packages/generic/app/2.0/local-copy.bin"
    ));
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, local);
    // From another project the caller can read (as a Reporter).
    let reply = deploy(&sha256_hex(&visible), "visible-copy.bin");
    assert_eq!(reply.status, 201, "{}", reply.text());
    let fetched = api.get(&format!(
        "/api/v4/projects/{mine}/packages/generic/app/2.0/visible-copy.bin"
    ));
    assert_eq!(fetched.body, visible);
    // From a project the caller cannot read: the same 404 as content that exists nowhere.
    let refused = deploy(&sha256_hex(&secret), "secret-copy.bin");
    let unknown = deploy(&sha256_hex(b"never uploaded"), "unknown.bin");
    assert_eq!(refused.status, 404, "{}", refused.text());
    assert_eq!(unknown.status, 404);
    assert_eq!(refused.json(), unknown.json(), "no existence oracle");
    assert_eq!(
        api.get(&format!(
            "/api/v4/projects/{mine}/packages/generic/app/2.0/secret-copy.bin"
        ))
        .status,
        404
    );
    // A deploy needs a sha256 and no body; other declared digests must match the content.
    let no_sha = api.send(
        "PUT",
        &format!("/api/v4/projects/{mine}/packages/generic/app/2.0/x.bin"),
        &[("X-Checksum-Deploy", "true")],
        b"",
    );
    assert_eq!(no_sha.status, 400, "{}", no_sha.text());
    let with_body = api.send(
        "PUT",
        &format!("/api/v4/projects/{mine}/packages/generic/app/2.0/x.bin"),
        &[
            ("X-Checksum-Deploy", "true"),
            ("X-Checksum-Sha256", &sha256_hex(&local)),
        ],
        b"bytes",
    );
    assert_eq!(with_body.status, 400, "{}", with_body.text());
    let wrong_md5 = api.send(
        "PUT",
        &format!("/api/v4/projects/{mine}/packages/generic/app/2.0/x.bin"),
        &[
            ("X-Checksum-Deploy", "true"),
            ("X-Checksum-Sha256", &sha256_hex(&local)),
            ("X-Checksum-Md5", &md5_hex(b"other")),
        ],
        b"",
    );
    assert_eq!(wrong_md5.status, 400, "{}", wrong_md5.text());
    // Over MLflow's artifact PUT too, with a Content-Digest.
    let artifacts = run_artifacts(&server, mine);
    let reply = root.send(
        "PUT",
        &format!("{artifacts}/deployed.bin"),
        &[
            ("X-Checksum-Deploy", "true"),
            (
                "Content-Digest",
                &format!("sha-256=:{}:", b64_sha256(&local)),
            ),
        ],
        b"",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(root.get(&format!("{artifacts}/deployed.bin")).body, local);
}

#[test]
fn the_readme_digest_snippet_runs() {
    let server = TestServer::start();
    project(&server, "fraud", "private");
    let out = run_readme_block(&server, "integrity-snippet=digests");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..3], ["400", "201", "201"], "{out}");
    assert!(
        lines[3]
            .to_ascii_lowercase()
            .starts_with("repr-digest: sha-256=:"),
        "{out}"
    );
}

#[test]
fn a_resumed_download_after_a_re_upload_gets_the_whole_new_file_not_a_splice() {
    let server = TestServer::start();
    let project_id = project(&server, "resume", "private");
    let api = Api::root(&server);
    let path = format!("/api/v4/projects/{project_id}/packages/generic/tools/1.0/model.bin");
    let old = random_bytes(3 << 20, 21);
    let new = random_bytes(3 << 20, 22);
    assert_eq!(api.put_bytes(&path, &old).status, 201);
    let first = api.get(&path);
    let old_etag = first.header("etag").unwrap().to_string();
    let old_date = first.header("last-modified").unwrap().to_string();
    assert_eq!(old_etag, format!("\"{}\"", sha256_hex(&old)));
    // The range of the old file, while it is current: 206.
    let part = api.send(
        "GET",
        &path,
        &[("Range", "bytes=100-199"), ("If-Range", &old_etag)],
        b"",
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &old[100..200]);
    // Dates have whole seconds: the re-upload is recorded in a later one.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let part = api.send(
        "GET",
        &path,
        &[("Range", "bytes=100-199"), ("If-Range", &old_date)],
        b"",
    );
    assert_eq!(part.status, 206, "the date of the current file is honoured");
    assert_eq!(part.body, &old[100..200]);

    // A duplicate upload under the same name (allowed for generic packages): downloads serve it.
    assert_eq!(api.put_bytes(&path, &new).status, 201);
    for validator in [&old_etag, &old_date] {
        let resumed = api.send(
            "GET",
            &path,
            &[("Range", "bytes=1048576-"), ("If-Range", validator)],
            b"",
        );
        assert_eq!(
            resumed.status, 200,
            "If-Range {validator}: the whole new file"
        );
        assert_eq!(resumed.body.len(), new.len());
        assert!(resumed.body == new, "not a splice of old and new");
        assert_eq!(
            resumed.header("etag"),
            Some(format!("\"{}\"", sha256_hex(&new)).as_str())
        );
    }
    let new_etag = format!("\"{}\"", sha256_hex(&new));
    let part = api.send(
        "GET",
        &path,
        &[("Range", "bytes=1048576-"), ("If-Range", &new_etag)],
        b"",
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &new[1 << 20..]);
    // If-Match: the old tag fails (412), the new one serves; If-None-Match the new one: 304.
    let failed = api.send("GET", &path, &[("If-Match", &old_etag)], b"");
    assert_eq!(failed.status, 412);
    assert!(failed.body.is_empty());
    let matched = api.send("GET", &path, &[("If-Match", &new_etag)], b"");
    assert_eq!(matched.status, 200);
    assert_eq!(matched.body, new);
    let ranged = api.send(
        "GET",
        &path,
        &[("If-Match", &new_etag), ("Range", "bytes=0-9")],
        b"",
    );
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.body, &new[..10]);
    assert_eq!(
        api.send("GET", &path, &[("If-None-Match", &new_etag)], b"")
            .status,
        304
    );
    assert_eq!(
        api.send("GET", &path, &[("If-None-Match", &old_etag)], b"")
            .status,
        200
    );
    // If-Unmodified-Since the old file's date: the file changed since (412).
    assert_eq!(
        api.send("GET", &path, &[("If-Unmodified-Since", &old_date)], b"")
            .status,
        412
    );
    let new_date = api.get(&path).header("last-modified").unwrap().to_string();
    assert_ne!(new_date, old_date);
    assert_eq!(
        api.send("GET", &path, &[("If-Unmodified-Since", &new_date)], b"")
            .status,
        200
    );
    assert_eq!(
        api.send("GET", &path, &[("If-Modified-Since", &new_date)], b"")
            .status,
        304
    );
}

/// A model `clf` with version 1.2.0 holding three files; returns them as (path, bytes).
fn three_file_version(server: &TestServer, project_id: u64) -> Vec<(&'static str, Vec<u8>)> {
    model(server, project_id, "clf");
    let files = vec![
        ("model.onnx", random_bytes(1_500_000, 31)),
        ("tokenizer/vocab.txt", b"a\nb\nc\n".to_vec()),
        ("config.json", br#"{"layers": 3}"#.to_vec()),
    ];
    for (path, body) in &files {
        let reply = Api::root(server).put_bytes(
            &format!("/api/v4/projects/{project_id}/packages/generic/clf/1.2.0/{path}"),
            body,
        );
        assert_eq!(reply.status, 201, "{}", reply.text());
    }
    files
}

#[test]
fn a_whole_version_archive_in_tar_and_zip_verifies_against_its_manifest() {
    let server = TestServer::start();
    let project_id = project(&server, "archives", "private");
    let files = three_file_version(&server, project_id);
    let api = Api::root(&server);
    let dir = tempfile::tempdir().unwrap();
    for (slot, format) in [("%5E1.2", "tar"), ("latest", "zip"), ("1.2.0", "tar")] {
        let reply = api.get(&format!(
            "/api/v4/projects/{project_id}/ml/models/clf/versions/{slot}/archive?format={format}"
        ));
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.header("x-model-version"), Some("1.2.0"));
        assert!(reply
            .header("content-disposition")
            .unwrap()
            .contains(&format!("clf-1.2.0.{format}")));
        let file = dir.path().join(format!("v.{format}"));
        std::fs::write(&file, &reply.body).unwrap();
        // Python's own readers extract it; every file's sha256 is checked against the manifest
        // and against what was uploaded.
        let expected: serde_json::Value = files
            .iter()
            .map(|(path, body)| (path.to_string(), json!(sha256_hex(body))))
            .collect::<serde_json::Map<_, _>>()
            .into();
        let script = r#"
import sys, json, hashlib, tarfile, zipfile
path, fmt, expected = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if fmt == "tar":
    t = tarfile.open(path)
    names = t.getnames()
    read = lambda n: t.extractfile(n).read()
else:
    z = zipfile.ZipFile(path)
    assert z.testzip() is None
    names = z.namelist()
    read = z.read
manifest = json.loads(read("manifest.json"))
assert names[0] == "manifest.json", names
assert manifest["model"] == "clf" and manifest["version"] == "1.2.0", manifest
listed = {f["path"]: f for f in manifest["files"]}
assert sorted(listed) == sorted(expected) == sorted(n for n in names if n != "manifest.json"), (listed, names)
for name, sha in expected.items():
    data = read(name)
    assert hashlib.sha256(data).hexdigest() == sha == listed[name]["sha256"], name
    assert len(data) == listed[name]["size"], name
print("verified", len(expected))
"#;
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                script,
                file.to_str().unwrap(),
                format,
                &expected.to_string(),
            ])
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{slot} {format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "verified 3");
    }
    // The manifest is canonical JSON: sorted keys, no whitespace.
    let tar = std::fs::read(dir.path().join("v.tar")).unwrap();
    let manifest_size = usize::from_str_radix(
        std::str::from_utf8(&tar[124..135])
            .unwrap()
            .trim_matches('\0'),
        8,
    )
    .unwrap();
    let manifest = std::str::from_utf8(&tar[512..512 + manifest_size]).unwrap();
    assert!(
        manifest.starts_with(r#"{"files":[{"path":"config.json","sha256":""#),
        "{manifest}"
    );
    assert!(!manifest.contains(' '));
    // The same bytes from the manifest endpoint, with their digest.
    let served = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/clf/versions/latest/manifest"
    ));
    assert_eq!(served.status, 200);
    assert_eq!(served.body, manifest.as_bytes());
    assert_eq!(
        served.header("x-manifest-digest"),
        Some(format!("sha256:{}", sha256_hex(manifest.as_bytes())).as_str())
    );
    // Bad format, unknown version, unreadable project.
    let bad = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/clf/versions/1.2.0/archive?format=rar"
    ));
    assert_eq!(bad.status, 400, "{}", bad.text());
    let none = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/clf/versions/%5E2/archive"
    ));
    assert_eq!(none.status, 404);
    let anonymous = Api::anonymous(&server).get(&format!(
        "/api/v4/projects/{project_id}/ml/models/clf/versions/1.2.0/archive"
    ));
    assert_eq!(anonymous.status, 404);
}

/// Writes `len` bytes of random-looking data quickly: a random MiB, varied per MiB.
fn write_big_file(path: &std::path::Path, len: u64, seed: u64) {
    use std::io::Write;
    let mut block = random_bytes(1 << 20, seed);
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut written = 0u64;
    let mut n = 0u64;
    while written < len {
        block[..8].copy_from_slice(&n.to_le_bytes());
        let take = (len - written).min(block.len() as u64) as usize;
        file.write_all(&block[..take]).unwrap();
        written += take as u64;
        n += 1;
    }
    file.flush().unwrap();
}

#[test]
fn streaming_a_2_gib_version_archive_keeps_the_server_rss_flat() {
    use std::io::Read;
    let server = TestServer::start();
    let project_id = project(&server, "big", "private");
    model(&server, project_id, "big");
    let dir = tempfile::tempdir().unwrap();
    let size = 683u64 << 20; // three files: just over 2 GiB
    for (i, name) in ["a.bin", "b.bin", "c.bin"].iter().enumerate() {
        let path = dir.path().join(name);
        write_big_file(&path, size, 40 + i as u64);
        let status = curl()
            .args(["-f", "-o", "/dev/null", "-H"])
            .arg(format!("PRIVATE-TOKEN: {ROOT_TOKEN}"))
            .arg("--upload-file")
            .arg(&path)
            .arg(server.url(&format!(
                "/api/v4/projects/{project_id}/packages/generic/big/1.0.0/{name}"
            )))
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::remove_file(&path).unwrap();
    }
    let before = server.rss_bytes();
    let mut child = curl()
        .args(["-f", "-H"])
        .arg(format!("PRIVATE-TOKEN: {ROOT_TOKEN}"))
        .arg(server.url(&format!(
            "/api/v4/projects/{project_id}/ml/models/big/versions/latest/archive?format=tar"
        )))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let (mut total, mut next_sample, mut peak) = (0u64, 0u64, 0u64);
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        if total >= next_sample {
            peak = peak.max(server.rss_bytes());
            next_sample += 32 << 20;
        }
    }
    assert!(child.wait().unwrap().success());
    eprintln!(
        "archive of {} MiB: server RSS {} MiB before, {} MiB at most while streaming",
        total >> 20,
        before >> 20,
        peak >> 20
    );
    // manifest entry + three files (sizes are multiples of 512) + the end blocks
    assert!(
        total > 3 * size + 1024 && total < 3 * size + 8192,
        "{total}"
    );
    assert!(
        peak < 100 << 20,
        "server RSS reached {} MiB while streaming (before: {} MiB)",
        peak >> 20,
        before >> 20
    );
}

#[test]
fn the_readme_resume_snippet_runs() {
    let server = TestServer::start();
    let project_id = project(&server, "fraud", "private");
    model(&server, project_id, "fraud");
    let body = random_bytes(3 << 20, 51);
    let path = format!("/api/v4/projects/{project_id}/packages/generic/fraud/1.2.0/model.onnx");
    assert_eq!(Api::root(&server).put_bytes(&path, &body).status, 201);
    let out = run_readme_block(&server, "integrity-snippet=resume");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["206", "412"], "{out}");
}

#[test]
fn the_readme_archive_snippet_downloads_and_verifies_a_version() {
    let server = TestServer::start();
    let project_id = project(&server, "fraud", "private");
    model(&server, project_id, "fraud");
    let api = Api::root(&server);
    for (name, seed) in [("model.onnx", 61), ("settings.json", 62)] {
        let path = format!("/api/v4/projects/{project_id}/packages/generic/fraud/1.2.3/{name}");
        let put = api.put_bytes(&path, &random_bytes(200_000, seed));
        assert_eq!(put.status, 201, "{name}: {}", put.text());
    }
    let out = run_readme_block(&server, "integrity-snippet=archive");
    assert_eq!(out.trim(), "verified", "{out}");
}
