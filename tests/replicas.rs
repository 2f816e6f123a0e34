//! Two `modelyard serve` replicas sharing one PostgreSQL database (metadata) and one s3s-fs
//! bucket (file contents), each with its own empty data dir: what one acknowledges the other
//! serves at once, concurrent writers spread over both stay correct, a web session works on
//! either, and `kill -9` of one in the middle of uploads loses no acknowledged file.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::postgres;
use common::s3::S3Server;
use common::*;
use serde_json::json;

/// A replica: its own data dir, the shared database and bucket.
fn replica(database: &str, s3: &S3Server) -> TestServer {
    let mut args = vec!["--metadata".to_string(), database.to_string()];
    args.extend(s3.flags("replicas"));
    TestServer::start_with_env(&args, &S3Server::env())
}

/// Contents that differ per `seed` (so that no two uploads share a blob).
fn contents(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

fn file_path(project_id: u64, package: &str, name: &str) -> String {
    format!("/api/v4/projects/{project_id}/packages/generic/{package}/1.0.0/{name}")
}

fn upload(base: &str, path: &str, body: &[u8]) -> std::io::Result<Reply> {
    let length = body.len().to_string();
    try_raw(
        base,
        "PUT",
        path,
        &[("PRIVATE-TOKEN", ROOT_TOKEN), ("Content-Length", &length)],
        body,
    )
}

fn download_sha256(base: &str, path: &str) -> (u16, String) {
    let reply = raw(base, "GET", path, &[("PRIVATE-TOKEN", ROOT_TOKEN)], b"");
    (reply.status, sha256_hex(&reply.body))
}

#[test]
fn two_replicas_share_postgres_and_s3_and_lose_nothing_when_one_is_killed() {
    let Some(s3) = S3Server::start("replicas") else {
        return;
    };
    let Some(database) = postgres::fresh_database("replicas") else {
        return;
    };
    let mut first = replica(&database, &s3);
    let second = replica(&database, &s3);
    let bases = [first.base.clone(), second.base.clone()];
    let project_id = project(&first, "shared", "private");

    // 50 concurrent uploads spread over both replicas, each read back through the other one.
    let uploads: Vec<(usize, String, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50u64)
            .map(|i| {
                let bases = &bases;
                scope.spawn(move || {
                    let body = contents(i, 64 * 1024 + i as usize * 997);
                    let on = (i % 2) as usize;
                    let path = file_path(project_id, "concurrent", &format!("f{i}.bin"));
                    let reply = upload(&bases[on], &path, &body).expect("an upload");
                    assert_eq!(reply.status, 201, "upload {i}: {}", reply.text());
                    (on, path, sha256_hex(&body))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("upload thread"))
            .collect()
    });
    for (on, path, sha256) in &uploads {
        let other = &bases[1 - on];
        assert_eq!(
            download_sha256(other, path),
            (200, sha256.clone()),
            "{path} through the other replica"
        );
    }
    let listed = Api::root(&second).get(&format!(
        "/api/v4/projects/{project_id}/packages?package_name=concurrent"
    ));
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.json()[0]["name"], "concurrent", "{}", listed.text());

    // 8 concurrent version creators over both replicas: distinct numbers, each visible on the
    // other replica at once.
    let created = Api::root(&second).post_json(
        &format!("/api/v4/projects/{project_id}/ml/models"),
        json!({ "name": "m" }),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let versions: Vec<(usize, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8usize)
            .map(|i| {
                let bases = &bases;
                scope.spawn(move || {
                    let on = i % 2;
                    let body = serde_json::to_vec(&json!({ "description": format!("by {i}") }))
                        .expect("json");
                    let reply = raw(
                        &bases[on],
                        "POST",
                        &format!("/api/v4/projects/{project_id}/ml/models/m/versions"),
                        &[
                            ("PRIVATE-TOKEN", ROOT_TOKEN),
                            ("Content-Type", "application/json"),
                        ],
                        &body,
                    );
                    assert_eq!(reply.status, 201, "creator {i}: {}", reply.text());
                    let version = reply.json()["version"]
                        .as_str()
                        .expect("a version string")
                        .to_string();
                    (on, version)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("creator thread"))
            .collect()
    });
    let distinct: BTreeSet<&String> = versions.iter().map(|(_, v)| v).collect();
    assert_eq!(distinct.len(), 8, "distinct versions: {versions:?}");
    for (on, version) in &versions {
        let seen = raw(
            &bases[1 - on],
            "GET",
            &format!("/api/v4/projects/{project_id}/ml/models/m/versions/{version}"),
            &[("PRIVATE-TOKEN", ROOT_TOKEN)],
            b"",
        );
        assert_eq!(seen.status, 200, "{version}: {}", seen.text());
    }

    // A web session signed in on one replica works on the other.
    let (alice, _) = user_with_token(&first, "alice", "api");
    add_member(&first, project_id, alice, 30);
    let signed_in = web_sign_in(&first, "alice", "correct horse battery");
    assert_eq!(signed_in.status, 303, "{}", signed_in.text());
    let cookie = signed_in.cookies();
    let page = "/root/shared/-/ml/models";
    let on_second = raw(&second.base, "GET", page, &[("Cookie", &cookie)], b"");
    assert_eq!(on_second.status, 200, "{}", on_second.text());
    assert!(
        on_second.text().contains("@alice"),
        "the second replica knows the session"
    );
    let anonymous = raw(&second.base, "GET", page, &[], b"");
    assert!(!anonymous.text().contains("@alice"));

    // kill -9 of the first replica while uploads to it are in flight: every upload it
    // acknowledged is served whole by the second; none is half there.
    let outcomes: Vec<(String, String, bool)> = std::thread::scope(|scope| {
        let base = &bases[0];
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                scope.spawn(move || {
                    let mut done = Vec::new();
                    // Until the kill ends it: an upload that is refused or breaks off.
                    for n in 0..100_000u64 {
                        let seed = 1000 + t * 100 + n;
                        let body = contents(seed, 512 * 1024);
                        let path = file_path(project_id, "killed", &format!("t{t}-{n}.bin"));
                        let acknowledged =
                            matches!(upload(base, &path, &body), Ok(r) if r.status == 201);
                        done.push((path, sha256_hex(&body), acknowledged));
                        if !acknowledged {
                            break;
                        }
                    }
                    done
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        first.kill9();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("upload thread"))
            .collect()
    });
    let acknowledged: Vec<_> = outcomes.iter().filter(|(_, _, ok)| *ok).collect();
    assert!(
        !acknowledged.is_empty(),
        "some uploads were acknowledged before the kill"
    );
    assert!(
        acknowledged.len() < outcomes.len(),
        "the kill interrupted uploads ({} of {} acknowledged)",
        acknowledged.len(),
        outcomes.len()
    );
    for (path, sha256, ok) in &outcomes {
        let (status, got) = download_sha256(&second.base, path);
        if *ok {
            assert_eq!((status, &got), (200, sha256), "acknowledged {path}");
        } else {
            assert!(
                status == 404 || (status == 200 && &got == sha256),
                "an interrupted upload is absent or whole: {path} {status}"
            );
        }
    }

    // verify, on the shared stores, is clean.
    let mut verify = Command::new(binary());
    verify
        .arg("verify")
        .arg("--data-dir")
        .arg(first.data_dir())
        .arg("--metadata")
        .arg(&database)
        .args(s3.flags("replicas"))
        .envs(S3Server::env());
    let out = verify.output().expect("modelyard verify");
    assert!(
        out.status.success(),
        "verify: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn two_replicas_deliver_each_webhook_event_once() {
    let Some(s3) = S3Server::start("replicas webhooks") else {
        return;
    };
    let Some(database) = postgres::fresh_database("replicas webhooks") else {
        return;
    };
    let start = || {
        let mut args = vec![
            "--metadata".to_string(),
            database.clone(),
            "--webhook-allow-private".into(),
        ];
        args.extend(s3.flags("replicas-webhooks"));
        TestServer::start_with_env(&args, &S3Server::env())
    };
    let (first, second) = (start(), start());
    let (port, got) = hook_receiver(std::time::Duration::from_millis(150));
    let project_id = project(&first, "hooked", "private");
    let hook = Api::root(&first).post_json(
        &format!("/api/v4/projects/{project_id}/hooks"),
        json!({ "url": format!("http://127.0.0.1:{port}/hook") }),
    );
    assert_eq!(hook.status, 201, "{}", hook.text());

    // Changes through both replicas wake both deliverers while the receiver is still busy
    // with the one before: each reads the same head of the hook's queue.
    const CHANGES: usize = 16;
    for i in 0..CHANGES {
        let on = if i % 2 == 0 { &first } else { &second };
        let created = Api::root(on).post_json(
            &ml(project_id, "models"),
            json!({ "name": format!("m{i}") }),
        );
        assert_eq!(created.status, 201, "{}", created.text());
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while got.lock().unwrap().len() < CHANGES {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {CHANGES} events delivered",
            got.lock().unwrap().len()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Anything sent twice would arrive within a receiver delay or two.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let ids = got.lock().unwrap().clone();
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        (ids.len(), distinct.len()),
        (CHANGES, CHANGES),
        "every event exactly once across the replicas: {ids:?}"
    );
}
