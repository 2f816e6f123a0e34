//! GitLab's generic package registry over HTTP: validation, duplicates, downloads, the packages
//! API and garbage collection.

mod common;

use common::*;
use serde_json::json;

fn generic(project_id: u64, rest: &str) -> String {
    format!("/api/v4/projects/{project_id}/packages/generic/{rest}")
}

#[test]
fn hostile_names_versions_and_paths_get_400_json() {
    let server = TestServer::start();
    let project_id = project(&server, "hostile", "private");
    let api = Api::root(&server);
    let cases = [
        "pkg/..1.2.3/file.txt",
        "pkg/1.2.3-4/../../file.txt",
        "pkg/%2e%2e%2f1.2.3/file.txt",
        "my-package/../1.0.0/file.txt",
        "my-package%2f%2e%2e%2f/1.0.0/file.txt",
        "pkg/1.0.0/../.ssh%2fauthorized_keys",
        "pkg/1.0.0/%2e%2e%2f.ssh%2fauthorized_keys",
        "pkg/1.0.0/with%20space.txt",
        "pkg/1.0.0/a/%2e%2e/b.txt",
    ];
    for rest in cases {
        for method in ["PUT", "GET"] {
            let reply = api.send(method, &generic(project_id, rest), &[], b"payload");
            assert_eq!(reply.status, 400, "{method} {rest}: {}", reply.text());
            let body = reply.json();
            assert!(
                body.get("error").or(body.get("message")).is_some(),
                "{rest}: {body}"
            );
        }
    }
    assert_eq!(
        api.get(&format!("/api/v4/projects/{project_id}/packages"))
            .json(),
        json!([])
    );
    assert_eq!(server.blob_count(), 0);
    let bad_status = api.put_bytes(
        &(generic(project_id, "pkg/1.0.0/f.txt") + "?status=weird"),
        b"x",
    );
    assert_eq!(bad_status.status, 400);
    assert_eq!(
        bad_status.json()["error"],
        "status does not have a valid value"
    );
}

#[test]
fn over_limit_bodies_are_refused_and_leave_nothing() {
    let server = TestServer::start_with(&["--max-file-size", "1000000"]);
    let project_id = project(&server, "limits", "private");
    let api = Api::root(&server);
    let declared = api.put_bytes(
        &generic(project_id, "pkg/1.0.0/big.bin"),
        &random_bytes(2_000_000, 1),
    );
    assert_eq!(declared.status, 400);
    assert_eq!(
        declared.json()["message"],
        "400 Bad request - File is too large"
    );

    // A chunked body declares no length: the limit is enforced while streaming.
    let mut chunked = Vec::new();
    for i in 0..4 {
        let chunk = random_bytes(400_000, i);
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let streamed = raw(
        &server.base,
        "PUT",
        &generic(project_id, "pkg/1.0.0/streamed.bin"),
        &[
            ("PRIVATE-TOKEN", ROOT_TOKEN),
            ("Transfer-Encoding", "chunked"),
        ],
        &chunked,
    );
    assert_eq!(streamed.status, 400, "{}", streamed.text());
    assert_eq!(
        streamed.json()["message"],
        "400 Bad request - File is too large"
    );

    assert_eq!(
        api.get(&format!("/api/v4/projects/{project_id}/packages"))
            .json(),
        json!([])
    );
    assert_eq!(server.blob_count(), 0);
    assert_eq!(server.tmp_entries(), 0);
    assert_eq!(
        api.put_bytes(&generic(project_id, "pkg/1.0.0/ok.bin"), &[7u8; 999_999])
            .status,
        201
    );
}

#[test]
fn uploads_answer_like_gitlab_and_record_every_checksum() {
    let server = TestServer::start();
    let project_id = project(&server, "shapes", "private");
    let api = Api::root(&server);
    let data = b"weights".to_vec();
    let created = api.put_bytes(&generic(project_id, "pkg/1.0.0/model.onnx"), &data);
    assert_eq!(created.status, 201);
    assert_eq!(created.json(), json!({ "message": "201 Created" }));

    let selected = api.put_bytes(
        &(generic(project_id, "pkg/1.0.0/sub/dir/model.onnx") + "?select=package_file"),
        &data,
    );
    assert_eq!(selected.status, 200);
    let file = selected.json();
    assert_eq!(file["file_name"], "sub%2Fdir%2Fmodel.onnx");
    assert_eq!(file["size"], 7);
    assert_eq!(file["file_md5"], "63f4f1e9b725370f459720575cd5f953");
    assert_eq!(
        file["file_sha1"],
        "5cab97f5a209481481ceb0b3c9dab9cba6bd17ce"
    );
    assert_eq!(file["file_sha256"], sha256_hex(&data));
    for key in ["id", "package_id", "created_at"] {
        assert!(!file[key].is_null(), "{key} missing in {file}");
    }
    let nested = api.get(&generic(project_id, "pkg/1.0.0/sub/dir/model.onnx"));
    assert_eq!(nested.status, 200);
    assert_eq!(nested.body, data);
    assert!(nested
        .header("content-disposition")
        .unwrap()
        .contains("filename=\"model.onnx\""));
    assert_eq!(
        api.get(&generic(project_id, "pkg/1.0.0/dir/model.onnx"))
            .status,
        404
    );
    assert_eq!(
        api.get(&generic(project_id, "pkg/2.0.0/model.onnx")).status,
        404
    );
}

#[test]
fn duplicates_newest_wins_identical_content_is_stored_once_and_the_setting_refuses() {
    let server = TestServer::start();
    let project_id = project(&server, "dups", "private");
    let api = Api::root(&server);
    let path = generic(project_id, "pkg/1.0.0/model.bin");
    assert_eq!(api.put_bytes(&path, b"first").status, 201);
    assert_eq!(api.put_bytes(&path, b"second").status, 201);
    assert_eq!(api.get(&path).body, b"second");
    let package = &api
        .get(&format!("/api/v4/projects/{project_id}/packages"))
        .json()[0];
    let files = api.get(&format!(
        "/api/v4/projects/{project_id}/packages/{}/package_files",
        package["id"]
    ));
    assert_eq!(files.json().as_array().unwrap().len(), 2);

    let blobs_before = server.blob_count();
    assert_eq!(
        api.put_bytes(&generic(project_id, "other/2.0.0/copy.bin"), b"second")
            .status,
        201
    );
    assert_eq!(
        server.blob_count(),
        blobs_before,
        "identical content occupies one blob"
    );

    let off = api.put_json(
        &format!("/api/v4/projects/{project_id}"),
        json!({ "generic_duplicates_allowed": false }),
    );
    assert_eq!(off.status, 200);
    assert_eq!(off.json()["generic_duplicates_allowed"], false);
    let refused = api.put_bytes(&path, b"third");
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.json()["message"],
        "400 Bad request - Duplicate package is not allowed"
    );
    assert_eq!(api.get(&path).body, b"second");
    assert_eq!(
        api.put_bytes(&generic(project_id, "pkg/1.0.0/new-name.bin"), b"third")
            .status,
        201
    );
}

#[test]
fn ranges_and_conditional_requests() {
    let server = TestServer::start();
    let project_id = project(&server, "ranges", "public");
    let api = Api::root(&server);
    let data = random_bytes(100_000, 5);
    let path = generic(project_id, "pkg/1.0.0/data.bin");
    api.put_bytes(&path, &data);
    let full = api.get(&path);
    assert_eq!(full.header("content-length"), Some("100000"));
    let etag = full.header("etag").unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", sha256_hex(&data)));

    let part = api.send("GET", &path, &[("Range", "bytes=1000-1999")], b"");
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &data[1000..2000]);
    assert_eq!(part.header("content-range"), Some("bytes 1000-1999/100000"));
    let tail = api.send("GET", &path, &[("Range", "bytes=-10")], b"");
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, &data[data.len() - 10..]);
    let unsatisfiable = api.send("GET", &path, &[("Range", "bytes=200000-")], b"");
    assert_eq!(unsatisfiable.status, 416);

    let cached = api.send("GET", &path, &[("If-None-Match", &etag)], b"");
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    let changed = api.send(
        "GET",
        &path,
        &[("If-None-Match", "\"something-else\"")],
        b"",
    );
    assert_eq!(changed.status, 200);
    let head = api.send("HEAD", &path, &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("100000"));
}

#[test]
fn whole_downloads_are_exact_at_chunk_boundaries_and_agree_with_head() {
    let server = TestServer::start();
    let project_id = project(&server, "whole", "public");
    let api = Api::root(&server);
    let chunk = 512 << 10;
    for (i, size) in [0, 1, chunk - 1, chunk, chunk + 1, 5 * chunk, 7 * chunk + 3]
        .into_iter()
        .enumerate()
    {
        let data = random_bytes(size, 40 + i as u64);
        let path = generic(project_id, &format!("pkg/1.0.{i}/data.bin"));
        assert_eq!(api.put_bytes(&path, &data).status, 201);
        let full = api.get(&path);
        assert_eq!(full.status, 200, "size {size}");
        assert_eq!(full.body.len(), size);
        assert!(full.body == data, "size {size}: the bytes differ");
        let head = api.send("HEAD", &path, &[], b"");
        for name in ["content-length", "accept-ranges", "last-modified", "etag"] {
            assert!(full.header(name).is_some(), "size {size}: no {name}");
            assert_eq!(full.header(name), head.header(name), "size {size}: {name}");
        }
        // The date it announces is one the server accepts back.
        let since = full.header("last-modified").unwrap().to_string();
        let unchanged = api.send("GET", &path, &[("If-Modified-Since", &since)], b"");
        assert_eq!(unchanged.status, 304, "size {size}");
    }
}

#[test]
fn a_download_read_slowly_arrives_whole() {
    use std::io::{Read, Write};
    let server = TestServer::start();
    let project_id = project(&server, "slowread", "public");
    let data = random_bytes(12 << 20, 50);
    let path = generic(project_id, "pkg/1.0.0/slow.bin");
    assert_eq!(Api::root(&server).put_bytes(&path, &data).status, 201);

    // Reading 1 MiB every 150 ms fills the socket buffers: the server's reader waits for the
    // client longer than it keeps a thread for, and must pick up where it left off.
    let host = server.base.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    let mut piece = vec![0u8; 1 << 20];
    loop {
        std::thread::sleep(std::time::Duration::from_millis(150));
        let mut got = 0;
        while got < piece.len() {
            match stream.read(&mut piece[got..]).unwrap() {
                0 => break,
                n => got += n,
            }
        }
        response.extend_from_slice(&piece[..got]);
        if got < piece.len() {
            break;
        }
    }
    let body_at = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block")
        + 4;
    let head = String::from_utf8_lossy(&response[..body_at]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(response.len() - body_at, data.len());
    assert_eq!(sha256_hex(&response[body_at..]), sha256_hex(&data));
}

#[test]
fn hidden_packages_are_listed_only_on_request_but_download() {
    let server = TestServer::start();
    let project_id = project(&server, "hidden", "private");
    let api = Api::root(&server);
    let path = generic(project_id, "secret/1.0.0/f.txt");
    assert_eq!(
        api.put_bytes(&format!("{path}?status=hidden"), b"x").status,
        201
    );
    assert_eq!(api.get(&path).status, 200);
    assert_eq!(
        api.get(&format!("/api/v4/projects/{project_id}/packages"))
            .json(),
        json!([])
    );
    let hidden = api
        .get(&format!(
            "/api/v4/projects/{project_id}/packages?status=hidden"
        ))
        .json();
    assert_eq!(hidden[0]["name"], "secret");
    assert_eq!(hidden[0]["status"], "hidden");
}

#[test]
fn the_packages_api_lists_filters_pages_and_deletes() {
    let server = TestServer::start();
    let project_id = project(&server, "listing", "private");
    let api = Api::root(&server);
    for i in 0..5 {
        assert_eq!(
            api.put_bytes(
                &generic(project_id, &format!("alpha/1.0.{i}/f.txt")),
                format!("a{i}").as_bytes()
            )
            .status,
            201
        );
    }
    assert_eq!(
        api.put_bytes(&generic(project_id, "beta/2.0.0/f.txt"), b"b")
            .status,
        201
    );
    let packages = format!("/api/v4/projects/{project_id}/packages");

    let page = api.get(&format!("{packages}?per_page=2&page=2&package_name=alpha"));
    assert_eq!(page.header("x-total"), Some("5"));
    assert_eq!(page.header("x-total-pages"), Some("3"));
    assert_eq!(page.header("x-page"), Some("2"));
    assert_eq!(page.header("x-per-page"), Some("2"));
    assert_eq!(page.header("x-next-page"), Some("3"));
    assert_eq!(page.header("x-prev-page"), Some("1"));
    let link = page.header("link").unwrap();
    assert!(
        link.contains("rel=\"next\"")
            && link.contains("page=3")
            && link.contains("package_name=alpha"),
        "{link}"
    );
    let versions: Vec<_> = page
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["version"].clone())
        .collect();
    assert_eq!(versions, vec![json!("1.0.2"), json!("1.0.3")]);

    let by_version = api.get(&format!("{packages}?package_version=2.0.0")).json();
    assert_eq!(by_version.as_array().unwrap().len(), 1);
    assert_eq!(by_version[0]["name"], "beta");
    assert_eq!(by_version[0]["package_type"], "generic");
    let desc = api
        .get(&format!("{packages}?order_by=name&sort=desc"))
        .json();
    assert_eq!(desc[0]["name"], "beta");
    assert_eq!(
        api.get(&format!("{packages}?order_by=nonsense")).status,
        400
    );
    assert_eq!(
        api.get(&format!("{packages}?package_type=generic"))
            .json()
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert_eq!(
        api.get(&format!("{packages}?package_type=ml_model")).json(),
        json!([])
    );

    let beta_id = by_version[0]["id"].as_u64().unwrap();
    let shown = api.get(&format!("{packages}/{beta_id}")).json();
    assert_eq!(shown["version"], "2.0.0");
    assert_eq!(api.get(&format!("{packages}/999999")).status, 404);
    assert_eq!(api.get(&format!("{packages}/not-a-number")).status, 404);

    // Deleting the newest file of a name serves the previous one again.
    let path = generic(project_id, "beta/2.0.0/f.txt");
    api.put_bytes(&path, b"newer");
    let files = api
        .get(&format!("{packages}/{beta_id}/package_files"))
        .json();
    let newest = files.as_array().unwrap().last().unwrap()["id"]
        .as_u64()
        .unwrap();
    assert_eq!(
        api.delete(&format!("{packages}/{beta_id}/package_files/{newest}"))
            .status,
        204
    );
    assert_eq!(api.get(&path).body, b"b");

    assert_eq!(api.delete(&format!("{packages}/{beta_id}")).status, 204);
    assert_eq!(api.get(&path).status, 404);
    assert_eq!(api.get(&format!("{packages}/{beta_id}")).status, 404);
    assert_eq!(api.get(&packages).json().as_array().unwrap().len(), 5);
}

#[test]
fn gc_reclaims_only_blobs_nobody_references() {
    let mut server = TestServer::start();
    let project_id = project(&server, "gc", "private");
    let api = Api::root(&server);
    api.put_bytes(&generic(project_id, "keep/1.0.0/a.bin"), b"shared content");
    api.put_bytes(&generic(project_id, "drop/1.0.0/a.bin"), b"shared content");
    api.put_bytes(&generic(project_id, "drop/1.0.0/b.bin"), b"only in drop");
    assert_eq!(server.blob_count(), 2);
    let packages = api
        .get(&format!(
            "/api/v4/projects/{project_id}/packages?package_name=drop"
        ))
        .json();
    let drop_id = packages[0]["id"].as_u64().unwrap();
    assert_eq!(
        api.delete(&format!("/api/v4/projects/{project_id}/packages/{drop_id}"))
            .status,
        204
    );
    assert_eq!(server.blob_count(), 2, "deletes leave blobs to gc");

    server.stop();
    // Every blob: the metadata may be a shared PostgreSQL, where gc leaves the last hour's by
    // default.
    let gc = server.admin(&["gc", "--older-than", "0"]);
    assert!(
        gc.status.success(),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    let out = String::from_utf8_lossy(&gc.stdout);
    assert!(
        out.contains("kept 1 blobs, removed 1 (12 bytes freed)"),
        "{out}"
    );
    assert_eq!(server.blob_count(), 1);
    server.restart();
    let kept = Api::root(&server).get(&generic(project_id, "keep/1.0.0/a.bin"));
    assert_eq!(kept.body, b"shared content");
}
