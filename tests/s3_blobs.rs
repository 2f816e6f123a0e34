//! A real server whose blobs live in S3 (`--blobs s3://...`, s3s-fs on 127.0.0.1): generic
//! uploads and ranged downloads, an interrupted upload that leaves no object in the bucket,
//! `gc`, `verify` and `backup` on S3, tus and chunked OCI uploads (no replica-local state), and
//! `--blobs-redirect`. Skipped loudly without s3s-fs unless `MODELYARD_TEST_REQUIRE_S3=1`.

mod common;

use std::io::{Read, Write};
use std::process::Command;

use base64::Engine;
use common::s3::S3Server;
use common::*;

fn generic(project_id: u64, rest: &str) -> String {
    format!("/api/v4/projects/{project_id}/packages/generic/{rest}")
}

/// A server on `prefix` of the bucket of `s3`, with `extra` flags.
fn s3_server(s3: &S3Server, prefix: &str, extra: &[&str]) -> TestServer {
    let mut args = s3.flags(prefix);
    args.extend(extra.iter().map(|s| s.to_string()));
    TestServer::start_with_env(&args, &S3Server::env())
}

/// Every key under `prefix`, through the S3 API.
fn keys(s3: &S3Server, prefix: &str) -> Vec<String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(s3.keys(prefix))
}

/// Runs an admin command on a stopped server's data dir and blobs.
fn admin(server: &TestServer, s3: &S3Server, prefix: &str, args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(server.data_dir())
        .args(s3.flags(prefix))
        .envs(server.stores.env())
        .envs(S3Server::env())
        .output()
        .expect("run admin command")
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The multipart uploads s3s-fs holds open (it keeps them as `.upload-*` files in its root).
fn open_multipart_files(s3: &S3Server) -> Vec<String> {
    s3.open_multipart_uploads()
}

#[test]
fn generic_files_are_stored_in_s3_and_served_with_ranges() {
    let Some(s3) = S3Server::start("generic_files_are_stored_in_s3_and_served_with_ranges") else {
        return;
    };
    let server = s3_server(&s3, "generic", &[]);
    let project_id = project(&server, "p", "public");
    let api = Api::root(&server);
    // Two multipart parts and a bit.
    let data = random_bytes(11 << 20, 3);
    let path = generic(project_id, "pkg/1.0.0/weights.bin");
    let put = api.put_bytes(&path, &data);
    assert_eq!(put.status, 201, "{}", put.text());
    let sha = sha256_hex(&data);
    assert_eq!(
        keys(&s3, "generic"),
        vec![format!("generic/blobs/{sha}")],
        "the blob is in the bucket at its address, nothing else"
    );
    assert_eq!(server.blob_count(), 0, "nothing in the data dir's blobs");

    let full = api.get(&path);
    assert_eq!(full.status, 200);
    assert!(full.body == data, "the download is byte-identical");
    assert_eq!(full.header("content-length"), Some("11534336"));
    assert_eq!(full.header("etag"), Some(format!("\"{sha}\"").as_str()));
    assert_eq!(full.header("x-checksum-sha256"), Some(sha.as_str()));
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    assert!(full.header("last-modified").is_some());
    assert!(full
        .header("content-disposition")
        .is_some_and(|d| d.contains("weights.bin")));

    let part = api.send("GET", &path, &[("Range", "bytes=5242000-5243999")], b"");
    assert_eq!(part.status, 206);
    assert!(part.body == data[5_242_000..5_244_000]);
    assert_eq!(
        part.header("content-range"),
        Some("bytes 5242000-5243999/11534336")
    );
    let tail = api.send("GET", &path, &[("Range", "bytes=-10")], b"");
    assert_eq!(tail.status, 206);
    assert!(tail.body == data[data.len() - 10..]);
    let unsatisfiable = api.send("GET", &path, &[("Range", "bytes=20000000-")], b"");
    assert_eq!(unsatisfiable.status, 416);
    assert_eq!(
        unsatisfiable.header("content-range"),
        Some("bytes */11534336")
    );
    let etag = format!("\"{sha}\"");
    let if_range = api.send(
        "GET",
        &path,
        &[("Range", "bytes=0-9"), ("If-Range", "\"another\"")],
        b"",
    );
    assert_eq!(if_range.status, 200, "a stale If-Range gets the whole file");
    assert_eq!(if_range.body.len(), data.len());
    let cached = api.send("GET", &path, &[("If-None-Match", &etag)], b"");
    assert_eq!(cached.status, 304);
    let head = api.send("HEAD", &path, &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("11534336"));
    assert!(head.body.is_empty());

    // The same content again is the same single object.
    let again = api.put_bytes(&generic(project_id, "pkg/1.0.1/copy.bin"), &data);
    assert_eq!(again.status, 201, "{}", again.text());
    assert_eq!(keys(&s3, "generic").len(), 1);
    // A restart finds everything: the replica kept nothing of its own.
    let mut server = server;
    server.restart();
    let after = Api::root(&server).get(&path);
    assert!(after.status == 200 && after.body == data);
}

#[test]
fn an_interrupted_upload_leaves_no_object_in_the_bucket() {
    let Some(s3) = S3Server::start("an_interrupted_upload_leaves_no_object_in_the_bucket") else {
        return;
    };
    let server = s3_server(&s3, "cut", &[]);
    let project_id = project(&server, "p", "private");
    let path = generic(project_id, "pkg/1.0.0/big.bin");
    let data = random_bytes(16 << 20, 9);
    // 12 of the declared 16 MiB (two multipart parts uploaded), then the connection drops.
    let host = server.base.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&host).unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nPRIVATE-TOKEN: {ROOT_TOKEN}\r\nContent-Length: {}\r\n\r\n",
        data.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&data[..12 << 20]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    stream.shutdown(std::net::Shutdown::Both).unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);

    let api = Api::root(&server);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let listed = keys(&s3, "cut");
        let open = open_multipart_files(&s3);
        if listed.is_empty() && open.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left behind: {listed:?} {open:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(api.get(&path).status, 404, "no file was recorded");
    // The whole body afterwards is stored.
    assert_eq!(api.put_bytes(&path, &data).status, 201);
    assert_eq!(
        keys(&s3, "cut"),
        vec![format!("cut/blobs/{}", sha256_hex(&data))]
    );
    assert!(open_multipart_files(&s3).is_empty());
}

#[test]
fn gc_verify_and_backup_work_on_s3() {
    let Some(s3) = S3Server::start("gc_verify_and_backup_work_on_s3") else {
        return;
    };
    let mut server = s3_server(&s3, "maint", &[]);
    let project_id = project(&server, "p", "private");
    let api = Api::root(&server);
    let kept = random_bytes(300_000, 1);
    let doomed = random_bytes(200_000, 2);
    assert_eq!(
        api.put_bytes(&generic(project_id, "keep/1.0.0/a.bin"), &kept)
            .status,
        201
    );
    assert_eq!(
        api.put_bytes(&generic(project_id, "doomed/1.0.0/b.bin"), &doomed)
            .status,
        201
    );
    let packages = api.get(&format!(
        "/api/v4/projects/{project_id}/packages?package_name=doomed"
    ));
    let package_id = packages.json()[0]["id"].as_u64().unwrap();
    assert_eq!(
        api.delete(&format!(
            "/api/v4/projects/{project_id}/packages/{package_id}"
        ))
        .status,
        204
    );
    assert_eq!(keys(&s3, "maint").len(), 2, "gc has not run yet");
    server.stop();

    let verified = admin(&server, &s3, "maint", &["verify"]);
    assert!(verified.status.success(), "{}", stdout(&verified));
    assert!(stdout(&verified).contains("2 blobs checked, 0 corrupt, 0 missing"));
    // On PostgreSQL metadata replicas may be serving: by default gc leaves the last hour's
    // unreferenced blobs (an upload in flight has its blob before its record).
    if server.stores.metadata.is_some() {
        let gc = admin(&server, &s3, "maint", &["gc"]);
        assert!(gc.status.success(), "{}", stdout(&gc));
        assert!(
            stdout(&gc).contains(
                "kept 1 blobs, removed 0 (0 bytes freed); 1 unreferenced blobs stored in the last 3600 s"
            ),
            "{}",
            stdout(&gc)
        );
        assert_eq!(keys(&s3, "maint").len(), 2);
    }
    let gc = admin(&server, &s3, "maint", &["gc", "--older-than", "0"]);
    assert!(gc.status.success(), "{}", stdout(&gc));
    assert!(
        stdout(&gc).contains("kept 1 blobs, removed 1 (200000 bytes freed)"),
        "{}",
        stdout(&gc)
    );
    assert_eq!(
        keys(&s3, "maint"),
        vec![format!("maint/blobs/{}", sha256_hex(&kept))]
    );

    // A backup of an S3 deployment is a local data dir that serves the same files (of the
    // embedded metadata: on PostgreSQL `backup` refuses, pg_dump is the tool).
    if server.stores.metadata.is_none() {
        let backup_dir = private_tempdir();
        let dest = backup_dir.path().join("copy");
        let backup = admin(&server, &s3, "maint", &["backup", dest.to_str().unwrap()]);
        assert!(
            backup.status.success(),
            "{}{}",
            stdout(&backup),
            String::from_utf8_lossy(&backup.stderr)
        );
        {
            let restored = TestServer::start_from(&dest);
            let got = Api::root(&restored).get(&generic(project_id, "keep/1.0.0/a.bin"));
            assert!(got.status == 200 && got.body == kept);
        }
    }

    // A blob whose bytes changed in the bucket is corrupt; one deleted is missing.
    let key = format!("maint/blobs/{}", sha256_hex(&kept));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            use object_store::ObjectStoreExt;
            let client = s3.client();
            client
                .put(&key.as_str().into(), b"tampered".to_vec().into())
                .await
                .unwrap();
        });
    let corrupt = admin(&server, &s3, "maint", &["verify"]);
    assert!(!corrupt.status.success());
    assert!(
        stdout(&corrupt).contains(&format!("CORRUPT blob {}", sha256_hex(&kept))),
        "{}",
        stdout(&corrupt)
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            use object_store::ObjectStoreExt;
            s3.client().delete(&key.as_str().into()).await.unwrap();
        });
    let missing = admin(&server, &s3, "maint", &["verify"]);
    assert!(!missing.status.success());
    assert!(
        stdout(&missing).contains(&format!("MISSING blob {}", sha256_hex(&kept))),
        "{}",
        stdout(&missing)
    );
}

fn basic(token: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("anyone:{token}"))
    )
}

fn range_end(reply: &Reply) -> usize {
    let range = reply.header("range").expect("Range");
    range.split_once('-').unwrap().1.parse::<usize>().unwrap() + 1
}

#[test]
fn tus_and_chunked_oci_uploads_work_on_s3_across_a_restart() {
    let Some(s3) = S3Server::start("tus_and_chunked_oci_uploads_work_on_s3_across_a_restart")
    else {
        return;
    };
    let mut server = s3_server(&s3, "multi", &[]);
    let project_id = project(&server, "fraud", "private");
    let created = Api::root(&server).post_json(
        &format!("/api/v4/projects/{project_id}/ml/models"),
        serde_json::json!({ "name": "scorer" }),
    );
    assert_eq!(created.status, 201, "{}", created.text());

    // OCI: a chunked push, the server restarted between chunks (a replica keeps nothing).
    let repo = "root/fraud/scorer";
    let auth = basic(ROOT_TOKEN);
    let headers = |extra: &[(&'static str, String)]| {
        let mut all = vec![("Authorization", auth.clone())];
        all.extend(extra.iter().cloned());
        all
    };
    let send = |server: &TestServer,
                method: &str,
                path: &str,
                extra: &[(&'static str, String)],
                body: &[u8]| {
        let all = headers(extra);
        let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
        raw(&server.base, method, path, &refs, body)
    };
    let blob = random_bytes(7 << 20, 4);
    let started = send(
        &server,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        b"",
    );
    assert_eq!(started.status, 202, "{}", started.text());
    let location = started.header("location").unwrap().to_string();
    let first = 3 << 20;
    let chunk = send(
        &server,
        "PATCH",
        &location,
        &[("Content-Range", format!("0-{}", first - 1))],
        &blob[..first],
    );
    assert_eq!(chunk.status, 202, "{}", chunk.text());
    assert!(keys(&s3, "multi").iter().any(|k| k.contains("/uploads/")));
    server.restart();
    let status = send(&server, "GET", &location, &[], b"");
    assert_eq!(status.status, 204, "{}", status.text());
    assert_eq!(range_end(&status), first);
    let rest = send(
        &server,
        "PATCH",
        &location,
        &[("Content-Range", format!("{first}-{}", blob.len() - 1))],
        &blob[first..],
    );
    assert_eq!(rest.status, 202, "{}", rest.text());
    let digest = format!("sha256:{}", sha256_hex(&blob));
    let done = send(
        &server,
        "PUT",
        &format!("{location}?digest={digest}"),
        &[],
        b"",
    );
    assert_eq!(done.status, 201, "{}", done.text());
    let pulled = send(
        &server,
        "GET",
        &format!("/v2/{repo}/blobs/{digest}"),
        &[],
        b"",
    );
    assert_eq!(pulled.status, 200);
    assert!(pulled.body == blob, "the pushed blob reads back identical");
    let ranged = send(
        &server,
        "GET",
        &format!("/v2/{repo}/blobs/{digest}"),
        &[("Range", "bytes=100-199".to_string())],
        b"",
    );
    assert_eq!(ranged.status, 206);
    assert!(ranged.body == blob[100..200]);

    // tus: a resumable upload in two chunks, the server restarted between them.
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let data = random_bytes(6 << 20, 8);
    let meta = format!(
        "package_name {},package_version {},filename {}",
        b64("pkg"),
        b64("1.0.0"),
        b64("model.bin")
    );
    let tus = [("Tus-Resumable", "1.0.0"), ("PRIVATE-TOKEN", ROOT_TOKEN)];
    let len = data.len().to_string();
    let create = raw(
        &server.base,
        "POST",
        &format!("/api/v4/projects/{project_id}/uploads"),
        &[
            tus[0],
            tus[1],
            ("Upload-Length", &len),
            ("Upload-Metadata", &meta),
        ],
        b"",
    );
    assert_eq!(create.status, 201, "{}", create.text());
    let upload = create.header("location").unwrap().to_string();
    let half = data.len() / 2;
    let patch = |server: &TestServer, offset: usize, bytes: &[u8]| {
        let offset = offset.to_string();
        raw(
            &server.base,
            "PATCH",
            &upload,
            &[
                tus[0],
                tus[1],
                ("Content-Type", "application/offset+octet-stream"),
                ("Upload-Offset", &offset),
            ],
            bytes,
        )
    };
    let first = patch(&server, 0, &data[..half]);
    assert_eq!(first.status, 204, "{}", first.text());
    server.restart();
    let head = raw(&server.base, "HEAD", &upload, &tus, b"");
    assert_eq!(
        head.header("upload-offset"),
        Some(half.to_string().as_str())
    );
    let second = patch(&server, half, &data[half..]);
    assert_eq!(second.status, 204, "{}", second.text());
    assert_eq!(
        second.header("x-checksum-sha256"),
        Some(sha256_hex(&data).as_str())
    );
    let got = Api::root(&server).get(&generic(project_id, "pkg/1.0.0/model.bin"));
    assert!(got.status == 200 && got.body == data);
    // Nothing of either upload is left in the bucket: only the two blobs.
    let mut expected = vec![
        format!("multi/blobs/{}", sha256_hex(&blob)),
        format!("multi/blobs/{}", sha256_hex(&data)),
    ];
    expected.sort();
    assert_eq!(keys(&s3, "multi"), expected);
}

#[test]
fn blobs_redirect_answers_with_a_presigned_url() {
    let Some(s3) = S3Server::start("blobs_redirect_answers_with_a_presigned_url") else {
        return;
    };
    let server = s3_server(&s3, "redirect", &["--blobs-redirect"]);
    let project_id = project(&server, "p", "public");
    let data = random_bytes(100_000, 6);
    let path = generic(project_id, "pkg/1.0.0/f.bin");
    assert_eq!(Api::root(&server).put_bytes(&path, &data).status, 201);
    let reply = Api::anonymous(&server).get(&path);
    assert_eq!(reply.status, 307, "{}", reply.text());
    let location = reply.header("location").expect("Location").to_string();
    assert!(location.starts_with(&s3.endpoint), "{location}");
    assert!(location.contains("X-Amz-Signature="), "{location}");
    assert!(!location.contains(common::s3::SECRET_KEY));
    let fetched = curl().arg(&location).output().unwrap();
    assert!(fetched.status.success());
    assert!(fetched.stdout == data, "the presigned URL serves the file");
    // Without a signature the bucket refuses.
    let unsigned = location.split('?').next().unwrap().to_string();
    let refused = curl()
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .arg(&unsigned)
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&refused.stdout).into_owned();
    assert!(
        code.starts_with('4'),
        "an unsigned GET of the object: {code}"
    );
}

#[test]
fn credentials_are_never_printed() {
    let Some(s3) = S3Server::start("credentials_are_never_printed") else {
        return;
    };
    let server = s3_server(&s3, "quiet", &[]);
    let help = Command::new(binary())
        .args(["serve", "--help"])
        .envs(S3Server::env())
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--blobs"), "{help}");
    assert!(!help.contains(common::s3::SECRET_KEY));
    assert!(!server
        .log_lines()
        .iter()
        .any(|l| l.contains(common::s3::SECRET_KEY)));
    // Wrong credentials: the server does not start, and says why without the secret.
    let wrong = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(private_tempdir().path())
        .args(s3.flags("quiet"))
        .env("AWS_ACCESS_KEY_ID", common::s3::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(said.contains("S3"), "{said}");
    assert!(!said.contains("not-the-secret"), "{said}");
}
