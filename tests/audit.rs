//! The audit log against the real server: an event for each kind of change with its actor,
//! token, address and before/after, sign-ins and failed authentications, GitLab's filters and
//! pagination, `modelyard audit export` round-trips, retention prunes, and `--audit off`.

mod common;

use common::*;
use serde_json::{json, Value};

fn mlflow(project_id: u64, rest: &str) -> String {
    format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow/{rest}")
}

fn ok(reply: Reply) -> Reply {
    assert!(reply.status < 300, "{} {}", reply.status, reply.text());
    reply
}

fn send_json(api: &Api, method: &str, path: &str, body: Value) -> Reply {
    let bytes = serde_json::to_vec(&body).unwrap();
    api.send(
        method,
        path,
        &[("Content-Type", "application/json")],
        &bytes,
    )
}

/// Every event of a listing, following `Link: rel="next"` page by page.
fn all_events(api: &Api, first: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut next = Some(first.to_string());
    while let Some(path) = next.take() {
        let reply = api.get(&path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        events.extend(reply.json().as_array().unwrap().iter().cloned());
        next = reply.header("link").and_then(|link| {
            link.split(", ")
                .find(|l| l.ends_with("rel=\"next\""))
                .map(|l| {
                    let url = l.trim_start_matches('<').split('>').next().unwrap();
                    url.trim_start_matches(&api.server.base).to_string()
                })
        });
    }
    events
}

fn find<'a>(events: &'a [Value], entity_type: &str, action: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["entity_type"] == entity_type && e["details"]["action"] == action)
        .collect()
}

fn one<'a>(events: &'a [Value], entity_type: &str, action: &str) -> &'a Value {
    find(events, entity_type, action)
        .first()
        .copied()
        .unwrap_or_else(|| {
            let seen: Vec<String> = events
                .iter()
                .map(|e| format!("{} {}", e["entity_type"], e["details"]["action"]))
                .collect();
            panic!("no {entity_type} {action} event among {seen:?}")
        })
}

#[test]
fn every_kind_of_change_is_audited_with_actor_token_address_and_before_after() {
    let server = TestServer::start();
    let root = Api::root(&server);
    let me = root.get("/api/v4/user").json();
    let root_id = me["id"].as_u64().unwrap();

    // Users and tokens (instance events).
    let (alice, alice_token) = user_with_token(&server, "alice", "api");
    ok(root.put_json(
        &format!("/api/v4/users/{alice}"),
        json!({ "name": "Alice A." }),
    ));
    let token = ok(root.post_json(
        &format!("/api/v4/users/{alice}/personal_access_tokens"),
        json!({ "name": "second", "scopes": ["read_api"] }),
    ))
    .json();
    let token_id = token["id"].as_u64().unwrap();
    ok(root.delete(&format!("/api/v4/personal_access_tokens/{token_id}")));

    // Projects, settings, members.
    let project_id = project(&server, "audited", "private");
    ok(root.put_json(
        &format!("/api/v4/projects/{project_id}"),
        json!({ "description": "the audited one" }),
    ));
    add_member(&server, project_id, alice, 30);
    ok(root.put_json(
        &format!("/api/v4/projects/{project_id}/members/{alice}"),
        json!({ "access_level": 40 }),
    ));

    // Models, versions, files, aliases, tags and runs, by alice.
    let api = Api::with_token(&server, &alice_token);
    ok(api.post_json(&ml(project_id, "models"), json!({ "name": "m" })));
    ok(send_json(
        &api,
        "PATCH",
        &ml(project_id, "models/m"),
        json!({ "description": "fraud model" }),
    ));
    for version in ["1.0.0", "1.1.0"] {
        ok(api.post_json(
            &ml(project_id, "models/m/versions"),
            json!({ "version": version }),
        ));
    }
    ok(api.put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/generic/m/1.0.0/w.bin"),
        b"weights",
    ));
    ok(api.put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/generic/gen/1.0/a.txt"),
        b"a",
    ));
    ok(api.put_json(
        &ml(project_id, "models/m/aliases"),
        json!({ "aliases": [{ "alias": "champion", "version": "1.0.0" }] }),
    ));
    ok(api.put_json(
        &ml(project_id, "models/m/aliases"),
        json!({ "aliases": [{ "alias": "champion", "version": "1.1.0" }] }),
    ));
    ok(api.post_json(
        &mlflow(project_id, "registered-models/set-tag"),
        json!({ "name": "m", "key": "team", "value": "risk" }),
    ));
    let model = api.get(&ml(project_id, "models/m")).json();
    let experiment = model["experiment_iid"].as_u64().unwrap();
    let run = ok(api.post_json(
        &ml(project_id, &format!("experiments/{experiment}/candidates")),
        json!({ "name": "try" }),
    ))
    .json();
    let run_id = run["run_id"].as_str().unwrap().to_string();
    ok(api.post_json(
        &mlflow(project_id, "runs/update"),
        json!({ "run_id": run_id, "status": "FINISHED" }),
    ));
    ok(api.delete(&ml(project_id, "models/m/versions/1.1.0")));

    // The project's log (alice is a Maintainer now).
    let events = all_events(
        &api,
        &format!("/api/v4/projects/{project_id}/audit_events?per_page=100"),
    );
    for (kind, action) in [
        ("Project", "created"),
        ("Project", "updated"),
        ("Member", "created"),
        ("Member", "updated"),
        ("Model", "created"),
        ("Model", "updated"),
        ("ModelVersion", "created"),
        ("ModelVersion", "deleted"),
        ("Package", "created"),
        ("PackageFile", "created"),
        ("Alias", "created"),
        ("Alias", "updated"),
        ("Tag", "created"),
        ("Run", "created"),
        ("Run", "updated"),
    ] {
        let event = one(&events, kind, action);
        assert_eq!(event["project_id"], project_id, "{event}");
        assert_eq!(event["details"]["ip_address"], "127.0.0.1", "{event}");
        assert!(
            event["created_at"].as_str().unwrap().ends_with('Z'),
            "{event}"
        );
    }
    // Actor and token: alice's changes name her and her token; root's name root.
    let model_created = one(&events, "Model", "created");
    assert_eq!(model_created["author_id"], alice);
    assert_eq!(model_created["details"]["author_name"], "alice");
    assert!(model_created["details"]["token_id"].as_u64().is_some());
    assert_eq!(model_created["details"]["after"]["name"], "m");
    assert_eq!(model_created["event_type"], "model_created");
    let settings = one(&events, "Project", "updated");
    assert_eq!(settings["author_id"], root_id);
    assert_eq!(settings["details"]["change"], "description");
    assert_eq!(settings["details"]["from"], "");
    assert_eq!(settings["details"]["to"], "the audited one");
    let promoted = one(&events, "Member", "updated");
    assert_eq!(promoted["details"]["before"]["access_level"], 30);
    assert_eq!(promoted["details"]["after"]["access_level"], 40);
    let moved = one(&events, "Alias", "updated");
    assert_eq!(moved["details"]["before"]["version"], "1.0.0");
    assert_eq!(moved["details"]["after"]["version"], "1.1.0");
    let deleted = one(&events, "ModelVersion", "deleted");
    assert_eq!(deleted["details"]["before"]["version"], "1.1.0");
    assert!(deleted["details"].get("after").is_none());
    let finished = one(&events, "Run", "updated");
    assert_eq!(finished["details"]["after"]["status"], "FINISHED");

    // The instance log has the user and token changes, secrets redacted.
    let all = all_events(&root, "/api/v4/audit_events?per_page=100");
    let created = find(&all, "User", "created");
    let alice_created = created
        .iter()
        .find(|e| e["entity_id"] == alice)
        .expect("alice's creation");
    assert_eq!(alice_created["author_id"], root_id);
    assert_eq!(
        alice_created["details"]["after"]["password_hash"],
        "[redacted]"
    );
    let renamed = one(&all, "User", "updated");
    assert_eq!(renamed["details"]["to"], "Alice A.");
    let minted = find(&all, "PersonalAccessToken", "created");
    assert!(minted.iter().any(|e| e["entity_id"] == token_id));
    for e in &minted {
        assert_eq!(e["details"]["after"]["secret_sha256"], "[redacted]");
    }
    let revoked = one(&all, "PersonalAccessToken", "updated");
    assert_eq!(revoked["entity_id"], token_id);
    assert_eq!(revoked["details"]["after"]["revoked"], true);
    // Every project event is in the instance log too, and one event reads alone.
    assert!(all.len() > events.len());
    let id = model_created["id"].as_u64().unwrap();
    let alone = ok(api.get(&format!("/api/v4/projects/{project_id}/audit_events/{id}"))).json();
    assert_eq!(&alone, model_created);
    assert_eq!(
        ok(root.get(&format!("/api/v4/audit_events/{id}"))).json(),
        alone
    );
    let alice_first = find(&all, "User", "created")[0]["id"].as_u64().unwrap();
    assert_eq!(
        api.get(&format!(
            "/api/v4/projects/{project_id}/audit_events/{alice_first}"
        ))
        .status,
        404,
        "an instance event is not a project's"
    );
}

#[test]
fn only_maintainers_read_a_projects_log_and_only_admins_the_instances() {
    let server = TestServer::start();
    let project_id = project(&server, "guarded", "private");
    let (dev, dev_token) = user_with_token(&server, "dev", "api");
    let (maint, maint_token) = user_with_token(&server, "maint", "read_api");
    add_member(&server, project_id, dev, 30);
    add_member(&server, project_id, maint, 40);
    let path = format!("/api/v4/projects/{project_id}/audit_events");
    assert_eq!(Api::with_token(&server, &dev_token).get(&path).status, 403);
    assert_eq!(Api::anonymous(&server).get(&path).status, 404);
    let (_, stranger) = user_with_token(&server, "stranger", "api");
    assert_eq!(Api::with_token(&server, &stranger).get(&path).status, 404);
    // A Maintainer with a read_api token reads it: reading the log is a read.
    assert_eq!(
        Api::with_token(&server, &maint_token).get(&path).status,
        200
    );
    assert_eq!(
        Api::with_token(&server, &maint_token)
            .get("/api/v4/audit_events")
            .status,
        403
    );
    assert_eq!(
        Api::anonymous(&server).get("/api/v4/audit_events").status,
        401
    );
    let bad = Api::root(&server).get("/api/v4/audit_events?created_after=yesterday");
    assert_eq!(bad.status, 400, "{}", bad.text());
    let bad = Api::root(&server).get("/api/v4/audit_events?entity_id=3");
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(
        Api::root(&server).get("/api/v4/audit_events/nope").status,
        404
    );
    assert_eq!(
        Api::root(&server).get("/api/v4/audit_events/999999").status,
        404
    );
}

#[test]
fn sign_ins_failed_sign_ins_and_bad_tokens_are_audited() {
    let server = TestServer::start();
    let (alice, _) = user_with_token(&server, "alice", "api");
    assert_eq!(
        web_sign_in(&server, "alice", "not her password").status,
        401
    );
    assert_eq!(web_sign_in(&server, "nobody", "whatever").status, 401);
    assert_eq!(
        web_sign_in(&server, "alice", "correct horse battery").status,
        303
    );
    assert_eq!(
        Api::with_token(&server, "glpat-not-a-token")
            .get("/api/v4/user")
            .status,
        401
    );
    let root = Api::root(&server);
    let events = all_events(&root, "/api/v4/audit_events?entity_type=User&per_page=100");
    let failed = find(&events, "User", "sign_in_failed");
    assert_eq!(failed.len(), 2, "{events:?}");
    assert!(failed.iter().all(|e| e["author_id"] == -1));
    assert!(failed
        .iter()
        .any(|e| e["details"]["entity_path"] == "nobody"));
    assert!(failed
        .iter()
        .all(|e| e["details"]["ip_address"] == "127.0.0.1"));
    let signed_in = one(&events, "User", "signed_in");
    assert_eq!(signed_in["author_id"], alice);
    assert_eq!(signed_in["entity_id"], alice);
    let refused = all_events(
        &root,
        "/api/v4/audit_events?entity_type=Authentication&per_page=100",
    );
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["author_id"], -1);
    assert_eq!(refused[0]["event_type"], "authentication_failed");
    assert_eq!(refused[0]["details"]["ip_address"], "127.0.0.1");
}

#[test]
fn filters_and_pagination_follow_gitlab() {
    let server = TestServer::start();
    let project_id = project(&server, "paged", "private");
    let (alice, alice_token) = user_with_token(&server, "alice", "api");
    add_member(&server, project_id, alice, 40);
    let root = Api::root(&server);
    let api = Api::with_token(&server, &alice_token);
    for i in 0..7 {
        ok(root.post_json(
            &ml(project_id, "models"),
            json!({ "name": format!("r{i}") }),
        ));
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    let middle = chrono::Utc::now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    for i in 0..5 {
        ok(api.post_json(
            &ml(project_id, "models"),
            json!({ "name": format!("a{i}") }),
        ));
    }
    let base = format!("/api/v4/projects/{project_id}/audit_events");

    // Offset pages: newest first, with GitLab's headers, and they add up to everything.
    let first = ok(api.get(&format!("{base}?per_page=4")));
    let total: usize = first.header("x-total").unwrap().parse().unwrap();
    assert_eq!(first.header("x-page"), Some("1"));
    assert_eq!(first.header("x-per-page"), Some("4"));
    assert_eq!(first.header("x-next-page"), Some("2"));
    assert_eq!(
        first.header("x-total-pages").unwrap(),
        total.div_ceil(4).to_string()
    );
    let everything = all_events(&api, &format!("{base}?per_page=4"));
    assert_eq!(everything.len(), total);
    let times: Vec<&str> = everything
        .iter()
        .map(|e| e["created_at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    let mut ids: Vec<u64> = everything
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "no event twice");
    // Keyset pagination walks the same events.
    let keyset = all_events(&api, &format!("{base}?pagination=keyset&per_page=3"));
    assert_eq!(keyset, everything);

    // author_id: alice's five models (and nothing of root's).
    let by_alice = all_events(
        &api,
        &format!("{base}?author_id={alice}&entity_type=Model&per_page=2"),
    );
    assert_eq!(by_alice.len(), 5);
    assert!(by_alice.iter().all(|e| e["author_id"] == alice));
    // A filtered page does not claim a total it does not know.
    let filtered = ok(api.get(&format!("{base}?author_id={alice}&per_page=2")));
    assert_eq!(filtered.header("x-total"), None);
    assert_eq!(filtered.header("x-next-page"), Some("2"));
    // entity_type.
    let models = all_events(&api, &format!("{base}?entity_type=Model&per_page=5"));
    assert_eq!(models.len(), 12);
    // created_after / created_before split the two batches.
    let stamp = middle.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let after = all_events(
        &api,
        &format!("{base}?entity_type=Model&created_after={stamp}"),
    );
    assert_eq!(after.len(), 5, "{after:?}");
    let before = all_events(
        &api,
        &format!("{base}?entity_type=Model&created_before={stamp}"),
    );
    assert_eq!(before.len(), 7);
    assert!(before.iter().all(|e| e["author_id"] != alice));
    // The admin listing filters the same way.
    let admin_alice = all_events(
        &root,
        &format!("/api/v4/audit_events?author_id={alice}&entity_type=Model"),
    );
    assert_eq!(admin_alice.len(), 5);
    let entity = models[0]["entity_id"].as_u64().unwrap();
    let just_one = all_events(
        &root,
        &format!("/api/v4/audit_events?entity_type=Model&entity_id={entity}"),
    );
    assert_eq!(just_one.len(), 1);
}

#[test]
fn export_round_trips_the_apis_events() {
    let mut server = TestServer::start();
    let project_id = project(&server, "exported", "private");
    let root = Api::root(&server);
    let start = chrono::Utc::now();
    ok(root.post_json(&ml(project_id, "models"), json!({ "name": "m" })));
    ok(root.post_json(
        &ml(project_id, "models/m/versions"),
        json!({ "version": "1.0.0" }),
    ));
    let events = all_events(&root, "/api/v4/audit_events?per_page=100");
    let recent: Vec<&Value> = events
        .iter()
        .filter(|e| {
            chrono::DateTime::parse_from_rfc3339(e["created_at"].as_str().unwrap()).unwrap()
                >= start - chrono::Duration::milliseconds(1)
        })
        .collect();
    assert!(recent.len() >= 3);
    server.stop();

    let out = server.admin(&["audit", "export"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    // Oldest first: the API's newest-first listing reversed, equal event by event.
    let mut expected = events.clone();
    expected.reverse();
    assert_eq!(lines, expected);

    let since = start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let out = server.admin(&["audit", "export", "--since", &since]);
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= recent.len() && lines.len() < events.len());
    for line in &lines {
        assert!(events.contains(line));
    }
    let bad = server.admin(&["audit", "export", "--since", "last week"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
}

#[test]
fn retention_prunes_expired_events_in_the_background() {
    let server = TestServer::start_with(&[
        "--audit-retention-seconds",
        "4",
        "--audit-prune-interval",
        "1",
    ]);
    let project_id = project(&server, "short-lived", "private");
    let root = Api::root(&server);
    ok(root.post_json(&ml(project_id, "models"), json!({ "name": "old" })));
    let old = all_events(&root, "/api/v4/audit_events?entity_type=Model");
    assert_eq!(old.len(), 1);
    let old_path = format!("/api/v4/audit_events/{}", old[0]["id"]);
    assert_eq!(root.get(&old_path).status, 200);
    // Gone once it is older than the retention and the pruner has run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while root.get(&old_path).status == 200 {
        assert!(std::time::Instant::now() < deadline, "never pruned");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let models = all_events(&root, "/api/v4/audit_events?entity_type=Model");
    assert_eq!(models, Vec::<Value>::new());
    // Newer events stay.
    ok(root.post_json(&ml(project_id, "models"), json!({ "name": "new" })));
    let now = all_events(&root, "/api/v4/audit_events?entity_type=Model");
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0]["details"]["entity_path"], "new");
    let total: usize = ok(root.get("/api/v4/audit_events"))
        .header("x-total")
        .unwrap()
        .parse()
        .unwrap();
    assert!(total >= 1);
}

#[test]
fn downloads_are_audited_when_asked_and_nothing_is_with_audit_off() {
    let server = TestServer::start_with(&["--audit-downloads"]);
    let project_id = project(&server, "downloads", "private");
    let root = Api::root(&server);
    let path = format!("/api/v4/projects/{project_id}/packages/generic/gen/1.0/a.txt");
    ok(root.put_bytes(&path, b"abc"));
    assert_eq!(ok(root.get(&path)).body, b"abc");
    let events = all_events(
        &root,
        &format!("/api/v4/projects/{project_id}/audit_events"),
    );
    let downloaded = one(&events, "PackageFile", "downloaded");
    assert_eq!(downloaded["details"]["entity_path"], "a.txt");
    assert_eq!(downloaded["details"]["after"]["size"], 3);

    let quiet = TestServer::start_with(&["--audit", "off"]);
    let project_id = project(&quiet, "quiet", "private");
    let root = Api::root(&quiet);
    ok(root.post_json(&ml(project_id, "models"), json!({ "name": "m" })));
    let reply = ok(root.get("/api/v4/audit_events"));
    assert_eq!(reply.json(), json!([]));
    assert_eq!(reply.header("x-total"), Some("0"));
}

#[test]
fn the_projects_audit_page_is_for_maintainers_only() {
    let server = TestServer::start();
    let project_id = project(&server, "paged-ui", "public");
    ok(Api::root(&server).post_json(&ml(project_id, "models"), json!({ "name": "shown" })));
    // Anonymous visitors of a public project are asked to sign in, and see no event.
    let anonymous = Api::anonymous(&server).get("/root/paged-ui/-/audit_events");
    assert_ne!(anonymous.status, 200);
    assert_ne!(anonymous.status, 404, "the page exists");
    assert!(!anonymous.text().contains("model_created"));
}

#[test]
fn a_signed_in_maintainer_reads_the_projects_audit_page_and_a_developer_does_not() {
    let server = TestServer::start();
    let project_id = project(&server, "audited-ui", "private");
    let (maintainer, _) = user_with_token(&server, "maya", "api");
    let (developer, _) = user_with_token(&server, "dev", "api");
    add_member(&server, project_id, maintainer, 40);
    add_member(&server, project_id, developer, 30);
    let root = Api::root(&server);
    ok(root.post_json(&ml(project_id, "models"), json!({ "name": "page-shown" })));
    let page = "/root/audited-ui/-/audit_events";

    let signed_in = web_sign_in(&server, "maya", "correct horse battery");
    assert_eq!(signed_in.status, 303, "{}", signed_in.text());
    let cookie = signed_in.cookies();
    let shown = raw(&server.base, "GET", page, &[("Cookie", &cookie)], b"");
    assert_eq!(shown.status, 200, "{}", shown.text());
    let html = shown.text();
    assert!(html.contains("id=\"audit-events\""), "{html}");
    assert!(
        html.contains("page-shown"),
        "the model's creation is listed: {html}"
    );
    assert!(html.contains("root"), "with its author: {html}");

    let developer_in = web_sign_in(&server, "dev", "correct horse battery");
    assert_eq!(developer_in.status, 303);
    let refused = raw(
        &server.base,
        "GET",
        page,
        &[("Cookie", &developer_in.cookies())],
        b"",
    );
    assert!(
        refused.status == 403 || refused.status == 404,
        "a Developer is refused: {}",
        refused.status
    );
    assert!(!refused.text().contains("page-shown"));
}
