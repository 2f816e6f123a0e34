//! tus 1.0 resumable uploads against the real server: creation, creation-with-upload, offsets,
//! checksums, termination, expiration, permissions, and a restart in the middle of an upload.

mod common;

use base64::Engine;
use common::*;
use serde_json::json;

const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");
const CHUNK: (&str, &str) = ("Content-Type", "application/offset+octet-stream");

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn metadata(name: &str, version: &str, file: &str, extra: &[(&str, &str)]) -> String {
    let mut items = vec![
        format!("package_name {}", b64(name.as_bytes())),
        format!("package_version {}", b64(version.as_bytes())),
        format!("filename {}", b64(file.as_bytes())),
    ];
    for (k, v) in extra {
        items.push(format!("{k} {}", b64(v.as_bytes())));
    }
    items.join(",")
}

fn sha1_b64(data: &[u8]) -> String {
    use sha1::Digest;
    b64(&sha1::Sha1::digest(data))
}

fn sha256_b64(data: &[u8]) -> String {
    use sha2::Digest;
    b64(&sha2::Sha256::digest(data))
}

struct Tus<'a> {
    server: &'a TestServer,
    token: String,
    project: u64,
}

impl Tus<'_> {
    fn auth(&self) -> (&'static str, &str) {
        ("PRIVATE-TOKEN", self.token.as_str())
    }

    fn create(&self, length: usize, meta: &str) -> Reply {
        let len = length.to_string();
        raw(
            &self.server.base,
            "POST",
            &format!("/api/v4/projects/{}/uploads", self.project),
            &[
                TUS,
                self.auth(),
                ("Upload-Length", &len),
                ("Upload-Metadata", meta),
            ],
            b"",
        )
    }

    /// Creates an upload and returns its path (from `Location`).
    fn start(&self, length: usize, meta: &str) -> String {
        let reply = self.create(length, meta);
        assert_eq!(reply.status, 201, "{}", reply.text());
        assert_eq!(reply.header("tus-resumable"), Some("1.0.0"));
        assert!(reply.header("upload-expires").is_some());
        let location = reply.header("location").expect("Location").to_string();
        assert!(location.starts_with(&format!("/api/v4/projects/{}/uploads/", self.project)));
        location
    }

    fn head(&self, path: &str) -> Reply {
        raw(&self.server.base, "HEAD", path, &[TUS, self.auth()], b"")
    }

    fn offset(&self, path: &str) -> u64 {
        let reply = self.head(path);
        assert_eq!(reply.status, 200, "HEAD {path}");
        reply.header("upload-offset").unwrap().parse().unwrap()
    }

    fn patch(&self, path: &str, offset: usize, data: &[u8], extra: &[(&str, &str)]) -> Reply {
        let offset = offset.to_string();
        let mut headers = vec![TUS, self.auth(), CHUNK, ("Upload-Offset", offset.as_str())];
        headers.extend_from_slice(extra);
        raw(&self.server.base, "PATCH", path, &headers, data)
    }

    fn download(&self, name: &str, version: &str, file: &str) -> Reply {
        raw(
            &self.server.base,
            "GET",
            &format!(
                "/api/v4/projects/{}/packages/generic/{name}/{version}/{file}",
                self.project
            ),
            &[self.auth()],
            b"",
        )
    }
}

fn root_tus(server: &TestServer, project: u64) -> Tus<'_> {
    Tus {
        server,
        token: ROOT_TOKEN.to_string(),
        project,
    }
}

fn uploads_dir_entries(server: &TestServer) -> usize {
    server.staged_uploads()
}

#[test]
fn options_advertise_the_protocol() {
    let server = TestServer::start();
    let id = project(&server, "p", "private");
    let reply = raw(
        &server.base,
        "OPTIONS",
        &format!("/api/v4/projects/{id}/uploads"),
        &[],
        b"",
    );
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("tus-version"), Some("1.0.0"));
    assert_eq!(reply.header("tus-resumable"), Some("1.0.0"));
    let extensions = reply.header("tus-extension").unwrap();
    for ext in [
        "creation",
        "creation-with-upload",
        "termination",
        "checksum",
        "expiration",
    ] {
        assert!(extensions.split(',').any(|e| e == ext), "{extensions}");
    }
    assert_eq!(
        reply.header("tus-max-size"),
        Some((10u64 << 30).to_string().as_str())
    );
    let algorithms = reply.header("tus-checksum-algorithm").unwrap();
    assert!(algorithms.contains("sha1") && algorithms.contains("sha256"));
}

#[test]
fn an_upload_in_chunks_becomes_the_file_a_put_would_make() {
    let server = TestServer::start();
    let id = project(&server, "p", "private");
    let tus = root_tus(&server, id);
    let data = random_bytes(3 << 20, 1);
    let path = tus.start(data.len(), &metadata("pkg", "1.0.0", "dir/data.bin", &[]));
    assert_eq!(tus.offset(&path), 0);
    let head = tus.head(&path);
    assert_eq!(head.header("upload-length"), Some("3145728"));
    assert!(head
        .header("upload-metadata")
        .unwrap()
        .contains("package_name"));
    assert_eq!(head.header("cache-control"), Some("no-store"));

    let first = &data[..1 << 20];
    let sha1 = format!("sha1 {}", sha1_b64(first));
    let reply = tus.patch(&path, 0, first, &[("Upload-Checksum", &sha1)]);
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert_eq!(reply.header("upload-offset"), Some("1048576"));
    assert!(reply.header("upload-expires").is_some());
    assert_eq!(tus.offset(&path), 1 << 20);

    // A chunk that does not start where the upload ends is 409, and nothing changes.
    let wrong = tus.patch(&path, 0, &first[..1000], &[]);
    assert_eq!(wrong.status, 409, "{}", wrong.text());
    assert!(wrong.json()["message"]
        .as_str()
        .unwrap()
        .contains("1048576"));
    assert_eq!(wrong.header("tus-resumable"), Some("1.0.0"));
    assert_eq!(tus.offset(&path), 1 << 20);
    // Not yet a file.
    assert_eq!(tus.download("pkg", "1.0.0", "dir/data.bin").status, 404);

    let rest = &data[1 << 20..];
    let sha256 = format!("sha256 {}", sha256_b64(rest));
    let done = tus.patch(&path, 1 << 20, rest, &[("Upload-Checksum", &sha256)]);
    assert_eq!(done.status, 204, "{}", done.text());
    assert_eq!(done.header("upload-offset"), Some("3145728"));
    assert_eq!(
        done.header("x-checksum-sha256"),
        Some(sha256_hex(&data).as_str())
    );
    // The upload is gone, the file is there with every digest a PUT records.
    assert_eq!(tus.head(&path).status, 404);
    assert_eq!(uploads_dir_entries(&server), 0);
    let got = tus.download("pkg", "1.0.0", "dir/data.bin");
    assert_eq!(got.status, 200);
    assert_eq!(sha256_hex(&got.body), sha256_hex(&data));
    let packages = Api::root(&server).get(&format!("/api/v4/projects/{id}/packages"));
    let package_id = packages.json()[0]["id"].as_u64().unwrap();
    let files = Api::root(&server).get(&format!(
        "/api/v4/projects/{id}/packages/{package_id}/package_files"
    ));
    let file = &files.json()[0];
    // As GitLab shows a file under a path (and as a PUT of it shows).
    assert_eq!(file["file_name"], "dir%2Fdata.bin");
    assert_eq!(file["size"], 3 << 20);
    assert_eq!(file["file_sha256"], sha256_hex(&data));
    assert!(file["file_md5"].as_str().is_some_and(|m| m.len() == 32));
    assert!(file["file_sha1"].as_str().is_some_and(|m| m.len() == 40));
}

#[test]
fn creation_with_upload_takes_the_first_chunk_or_the_whole_file() {
    let server = TestServer::start();
    let id = project(&server, "p", "private");
    let tus = root_tus(&server, id);
    let data = random_bytes(200_000, 2);
    let len = data.len().to_string();
    let meta = metadata("pkg", "1.0.0", "a.bin", &[]);
    let created = raw(
        &server.base,
        "POST",
        &format!("/api/v4/projects/{id}/uploads"),
        &[
            TUS,
            tus.auth(),
            CHUNK,
            ("Upload-Length", &len),
            ("Upload-Metadata", &meta),
        ],
        &data[..50_000],
    );
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.header("upload-offset"), Some("50000"));
    let path = created.header("location").unwrap().to_string();
    assert_eq!(tus.patch(&path, 50_000, &data[50_000..], &[]).status, 204);
    assert_eq!(
        sha256_hex(&tus.download("pkg", "1.0.0", "a.bin").body),
        sha256_hex(&data)
    );

    // The whole file with the creation request: complete at once.
    let meta = metadata("pkg", "1.0.0", "b.bin", &[]);
    let whole = raw(
        &server.base,
        "POST",
        &format!("/api/v4/projects/{id}/uploads"),
        &[
            TUS,
            tus.auth(),
            CHUNK,
            ("Upload-Length", &len),
            ("Upload-Metadata", &meta),
        ],
        &data,
    );
    assert_eq!(whole.status, 201, "{}", whole.text());
    assert_eq!(whole.header("upload-offset"), Some(len.as_str()));
    assert_eq!(
        whole.header("x-checksum-sha256"),
        Some(sha256_hex(&data).as_str())
    );
    assert_eq!(tus.download("pkg", "1.0.0", "b.bin").body, data);

    // An empty file is complete when created.
    let meta = metadata("pkg", "1.0.0", "empty.txt", &[]);
    let empty = tus.create(0, &meta);
    assert_eq!(empty.status, 201, "{}", empty.text());
    assert_eq!(empty.header("upload-offset"), Some("0"));
    let got = tus.download("pkg", "1.0.0", "empty.txt");
    assert_eq!((got.status, got.body.len()), (200, 0));
    assert_eq!(uploads_dir_entries(&server), 0);
}

#[test]
fn a_chunk_unlike_its_checksum_is_460_and_discarded() {
    let server = TestServer::start();
    let id = project(&server, "p", "private");
    let tus = root_tus(&server, id);
    let data = random_bytes(1_500_000, 3);
    let path = tus.start(data.len(), &metadata("pkg", "1.0.0", "c.bin", &[]));
    let first = &data[..700_000];
    assert_eq!(tus.patch(&path, 0, first, &[]).status, 204);
    let rest = &data[700_000..];
    let mut corrupted = rest.to_vec();
    corrupted[1000] ^= 0xff;
    let sha1 = format!("sha1 {}", sha1_b64(rest));
    for algorithm in ["sha1", "sha256"] {
        let checksum = if algorithm == "sha1" {
            sha1.clone()
        } else {
            format!("sha256 {}", sha256_b64(rest))
        };
        let refused = tus.patch(
            &path,
            700_000,
            &corrupted,
            &[("Upload-Checksum", &checksum)],
        );
        assert_eq!(refused.status, 460, "{}", refused.text());
        assert!(refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("discarded"));
        assert_eq!(tus.offset(&path), 700_000);
    }
    let staged = server.staged_upload_bytes(path.rsplit('/').next().unwrap());
    assert_eq!(staged, 700_000, "the refused chunk's bytes are not kept");
    // Unknown algorithms and malformed values are 400.
    let unknown = tus.patch(
        &path,
        700_000,
        &rest[..10],
        &[("Upload-Checksum", "crc32 AAAA")],
    );
    assert_eq!(unknown.status, 400);
    // The right chunk completes it, with the digests of the right bytes.
    let done = tus.patch(&path, 700_000, rest, &[("Upload-Checksum", &sha1)]);
    assert_eq!(done.status, 204, "{}", done.text());
    assert_eq!(
        sha256_hex(&tus.download("pkg", "1.0.0", "c.bin").body),
        sha256_hex(&data)
    );
}

#[test]
fn a_declared_sha256_is_checked_at_completion() {
    let server = TestServer::start();
    let id = project(&server, "p", "private");
    let tus = root_tus(&server, id);
    let data = random_bytes(10_000, 4);
    let wrong = "0".repeat(64);
    let path = tus.start(
        data.len(),
        &metadata("pkg", "1.0.0", "d.bin", &[("sha256", &wrong)]),
    );
    let refused = tus.patch(&path, 0, &data, &[]);
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.text().contains("sha256"), "{}", refused.text());
    assert_eq!(tus.download("pkg", "1.0.0", "d.bin").status, 404);
    assert_eq!(uploads_dir_entries(&server), 0);
    let right = sha256_hex(&data);
    let path = tus.start(
        data.len(),
        &metadata("pkg", "1.0.0", "d.bin", &[("sha256", &right)]),
    );
    assert_eq!(tus.patch(&path, 0, &data, &[]).status, 204);
    assert_eq!(tus.download("pkg", "1.0.0", "d.bin").body, data);
}

#[test]
fn protocol_errors_have_their_statuses() {
    let server = TestServer::start();
    let id = project(&server, "p", "private");
    let tus = root_tus(&server, id);
    let path = tus.start(10, &metadata("pkg", "1.0.0", "e.bin", &[]));
    // No Tus-Resumable: 412 with the version we speak.
    let old = raw(&server.base, "HEAD", &path, &[tus.auth()], b"");
    assert_eq!(old.status, 412);
    assert_eq!(old.header("tus-version"), Some("1.0.0"));
    // A chunk that is not application/offset+octet-stream: 415.
    let reply = raw(
        &server.base,
        "PATCH",
        &path,
        &[TUS, tus.auth(), ("Upload-Offset", "0")],
        b"abc",
    );
    assert_eq!(reply.status, 415);
    // Missing Upload-Offset: 400; a chunk past Upload-Length: 400, nothing kept.
    let reply = raw(
        &server.base,
        "PATCH",
        &path,
        &[TUS, tus.auth(), CHUNK],
        b"abc",
    );
    assert_eq!(reply.status, 400);
    let reply = tus.patch(&path, 0, b"0123456789ABC", &[]);
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(tus.offset(&path), 0);
    // Creation without Upload-Length, with bad metadata, or too large.
    let reply = raw(
        &server.base,
        "POST",
        &format!("/api/v4/projects/{id}/uploads"),
        &[TUS, tus.auth()],
        b"",
    );
    assert_eq!(reply.status, 400);
    let reply = tus.create(5, "package_name !!!");
    assert_eq!(reply.status, 400);
    let reply = tus.create(5, &format!("package_name {}", b64(b"pkg")));
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"], "package_version is missing");
    let reply = tus.create(5, &metadata("pkg", "1.0.0", "../../etc/passwd", &[]));
    assert_eq!(reply.status, 400, "{}", reply.text());
    let reply = tus.create(20 << 30, &metadata("pkg", "1.0.0", "big.bin", &[]));
    assert_eq!(reply.status, 413);
    // Unknown uploads are 404.
    let unknown = format!("/api/v4/projects/{id}/uploads/{}", "0".repeat(32));
    assert_eq!(tus.head(&unknown).status, 404);
    assert_eq!(tus.patch(&unknown, 0, b"x", &[]).status, 404);
    assert_eq!(
        tus.head(&format!("/api/v4/projects/{id}/uploads/nothex"))
            .status,
        404
    );
}

#[test]
fn termination_removes_the_upload_and_its_bytes() {
    let server = TestServer::start();
    let id = project(&server, "p", "private");
    let tus = root_tus(&server, id);
    let path = tus.start(1000, &metadata("pkg", "1.0.0", "f.bin", &[]));
    assert_eq!(tus.patch(&path, 0, &[7u8; 500], &[]).status, 204);
    assert_eq!(uploads_dir_entries(&server), 1);
    let deleted = raw(&server.base, "DELETE", &path, &[TUS, tus.auth()], b"");
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.header("tus-resumable"), Some("1.0.0"));
    assert_eq!(tus.head(&path).status, 404);
    assert_eq!(tus.patch(&path, 500, &[7u8; 500], &[]).status, 404);
    assert_eq!(uploads_dir_entries(&server), 0);
}

#[test]
fn stale_uploads_expire_and_their_bytes_are_cleaned() {
    // 0.0005 h = 1.8 s.
    let server = TestServer::start_with(&["--upload-expiry-hours", "0.0005"]);
    let id = project(&server, "p", "private");
    let tus = root_tus(&server, id);
    let path = tus.start(1000, &metadata("pkg", "1.0.0", "g.bin", &[]));
    let reply = tus.patch(&path, 0, &[1u8; 100], &[]);
    assert_eq!(reply.status, 204);
    let expires = httpdate::parse_http_date(reply.header("upload-expires").unwrap()).unwrap();
    let lifetime = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(
        lifetime <= std::time::Duration::from_secs(3),
        "{lifetime:?}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let status = tus.head(&path).status;
        if matches!(status, 404 | 410) && uploads_dir_entries(&server) == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {status}");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let late = tus.patch(&path, 100, &[1u8; 900], &[]);
    assert!(matches!(late.status, 404 | 410), "{}", late.status);
    assert_eq!(tus.download("pkg", "1.0.0", "g.bin").status, 404);
}

#[test]
fn permissions_are_those_of_a_put_at_creation_and_at_completion() {
    let server = TestServer::start();
    let id = project(&server, "p", "private");
    let (reporter_id, reporter) = user_with_token(&server, "reporter", "api");
    let (developer_id, developer) = user_with_token(&server, "developer", "api");
    let (_, outsider) = user_with_token(&server, "outsider", "api");
    add_member(&server, id, reporter_id, 20);
    add_member(&server, id, developer_id, 30);
    let as_user = |token: &str| Tus {
        server: &server,
        token: token.to_string(),
        project: id,
    };
    let meta = metadata("pkg", "1.0.0", "h.bin", &[]);
    // Generic packages: Developer+ (as a PUT), a Reporter is 403, a stranger 404, anonymous 401.
    assert_eq!(as_user(&reporter).create(10, &meta).status, 403);
    assert_eq!(as_user(&outsider).create(10, &meta).status, 404);
    let anonymous = raw(
        &server.base,
        "POST",
        &format!("/api/v4/projects/{id}/uploads"),
        &[TUS, ("Upload-Length", "10"), ("Upload-Metadata", &meta)],
        b"",
    );
    assert_eq!(anonymous.status, 401);
    let dev = as_user(&developer);
    let path = dev.start(10, &meta);
    // Someone else's upload is not found, even for a member who may write.
    let (other_id, other) = user_with_token(&server, "other-dev", "api");
    add_member(&server, id, other_id, 30);
    assert_eq!(as_user(&other).head(&path).status, 404);
    assert_eq!(
        as_user(&other).patch(&path, 0, b"0123456789", &[]).status,
        404
    );
    // Rights are checked again at completion: a developer demoted meanwhile cannot finish.
    assert_eq!(dev.patch(&path, 0, b"01234", &[]).status, 204);
    let demoted = Api::root(&server).put_json(
        &format!("/api/v4/projects/{id}/members/{developer_id}"),
        json!({ "access_level": 20 }),
    );
    assert_eq!(demoted.status, 200, "{}", demoted.text());
    let refused = dev.patch(&path, 5, b"56789", &[]);
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(dev.download("pkg", "1.0.0", "h.bin").status, 404);
    assert_eq!(uploads_dir_entries(&server), 0);

    // A model version's file: Reporter+ may write (as a PUT to the model's generic path).
    let created = Api::root(&server).post_json(
        &format!("/api/v4/projects/{id}/ml/mlflow/api/2.0/mlflow/registered-models/create"),
        json!({ "name": "fraud" }),
    );
    assert_eq!(created.status, 200, "{}", created.text());
    let rep = as_user(&reporter);
    let bad_version = rep.create(3, &metadata("fraud", "v1", "model.bin", &[]));
    assert_eq!(bad_version.status, 400, "{}", bad_version.text());
    let path = rep.start(3, &metadata("fraud", "1.2.0", "weights/model.bin", &[]));
    assert_eq!(rep.patch(&path, 0, b"abc", &[]).status, 204);
    let got = rep.download("fraud", "1.2.0", "weights/model.bin");
    assert_eq!(got.status, 200);
    assert_eq!(got.body, b"abc");
    assert_eq!(got.header("x-model-version"), Some("1.2.0"));
}

#[test]
fn duplicates_refused_by_the_project_are_refused_at_creation() {
    let server = TestServer::start();
    let id = project(&server, "p", "private");
    let settings = Api::root(&server).put_json(
        &format!("/api/v4/projects/{id}"),
        json!({ "generic_duplicates_allowed": false }),
    );
    assert_eq!(settings.status, 200, "{}", settings.text());
    let tus = root_tus(&server, id);
    let put = Api::root(&server).put_bytes(
        &format!("/api/v4/projects/{id}/packages/generic/pkg/1.0.0/i.bin"),
        b"first",
    );
    assert_eq!(put.status, 201, "{}", put.text());
    let reply = tus.create(6, &metadata("pkg", "1.0.0", "i.bin", &[]));
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("Duplicate"), "{}", reply.text());
}

#[test]
fn an_upload_survives_a_restart_and_resumes_from_the_recorded_offset() {
    let mut server = TestServer::start();
    let id = project(&server, "p", "private");
    let data = random_bytes(5 << 20, 5);
    let path = {
        let tus = root_tus(&server, id);
        let path = tus.start(data.len(), &metadata("pkg", "2.0.0", "model.bin", &[]));
        assert_eq!(tus.patch(&path, 0, &data[..2 << 20], &[]).status, 204);
        path
    };
    // Killed without a shutdown; bytes of a chunk that was never acknowledged are staged: past
    // the end of the upload's file on the local disk, or, on S3, an object of the chunk at the
    // recorded offset (s3s-fs keeps it as a file named by its key).
    server.kill9();
    let staged = server.uploads_dir().join(path.rsplit('/').next().unwrap());
    if staged.is_dir() {
        std::fs::write(staged.join(format!("{:020}", 2u64 << 20)), [0xEE; 12345]).unwrap();
    } else {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&staged)
            .unwrap();
        file.write_all(&[0xEE; 12345]).unwrap();
    }
    server.restart();
    let tus = root_tus(&server, id);
    // HEAD after the restart: the acknowledged offset, not what happens to be on disk.
    assert_eq!(tus.offset(&path), 2 << 20);
    let more = tus.patch(&path, 2 << 20, &data[2 << 20..4 << 20], &[]);
    assert_eq!(more.status, 204, "{}", more.text());
    server.restart();
    let tus = root_tus(&server, id);
    assert_eq!(tus.offset(&path), 4 << 20);
    let done = tus.patch(&path, 4 << 20, &data[4 << 20..], &[]);
    assert_eq!(done.status, 204, "{}", done.text());
    // The digests were recomputed over the staged prefix: the recorded sha256 is the file's.
    assert_eq!(
        done.header("x-checksum-sha256"),
        Some(sha256_hex(&data).as_str())
    );
    let got = tus.download("pkg", "2.0.0", "model.bin");
    assert_eq!(sha256_hex(&got.body), sha256_hex(&data));
    // gc on the stopped server keeps an upload in progress.
    let path2 = tus.start(100, &metadata("pkg", "2.0.0", "other.bin", &[]));
    assert_eq!(tus.patch(&path2, 0, &[3u8; 50], &[]).status, 204);
    server.stop();
    let gc = server.admin(&["gc"]);
    assert!(gc.status.success());
    server.restart();
    let tus = root_tus(&server, id);
    assert_eq!(tus.offset(&path2), 50);
}

#[test]
fn the_readme_curl_snippet_uploads_in_two_chunks() {
    let server = TestServer::start();
    project(&server, "fraud", "private");
    let stdout = run_readme_block(&server, "tus-snippet=curl");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(lines[..2], ["204", "1000000"], "{stdout}");
    assert_eq!(lines[2], lines[3], "{stdout}");
    assert_eq!(lines[2].len(), 64, "{stdout}");
}
