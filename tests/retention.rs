//! Retention against the real server: a model's rules set through the model PATCH, the dry run
//! listing exactly what the real run then deletes, sealed, aliased and recently downloaded
//! versions kept, the bytes reclaimed equal to the blob bytes that left the data dir, shared
//! blobs neither counted nor removed, the run audited, Developers refused, and
//! `modelyard retention run` on a stopped server's data dir.
//!
//! Versions cannot be made old through the API, so the server runs with the hidden
//! `--retention-clock-offset-days 60`: retention judges ages 60 days in the future, every
//! prerelease made here is 60 days old, and today's downloads are 60 days old too (the rules'
//! download window is a year, so they still protect). The rules' arithmetic on varied ages is
//! unit-tested in `src/domain/retention.rs`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::*;
use serde_json::{json, Value};

fn generic(project_id: u64, name: &str, version: &str, file: &str) -> String {
    format!("/api/v4/projects/{project_id}/packages/generic/{name}/{version}/{file}")
}

fn patch(api: &Api, path: &str, body: Value) -> Reply {
    let bytes = serde_json::to_vec(&body).unwrap();
    api.send(
        "PATCH",
        path,
        &[("Content-Type", "application/json")],
        &bytes,
    )
}

fn upload(api: &Api, project_id: u64, name: &str, version: &str, file: &str, body: &[u8]) {
    let put = api.put_bytes(&generic(project_id, name, version, file), body);
    assert_eq!(put.status, 201, "{name}/{version}/{file}: {}", put.text());
}

/// Every blob file of the data dir with its size.
fn blobs(server: &TestServer) -> BTreeMap<PathBuf, u64> {
    server
        .blob_paths()
        .into_iter()
        .map(|p| {
            let size = std::fs::metadata(&p).unwrap().len();
            (p, size)
        })
        .collect()
}

fn blob_path(server: &TestServer, data: &[u8]) -> PathBuf {
    server.blob_file(&sha256_hex(data))
}

fn versions_of(list: &Value, key: &str) -> BTreeSet<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {list}"))
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other["version"].as_str().unwrap().to_string(),
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_dry_run_lists_exactly_what_the_real_run_deletes_and_the_bytes_it_reclaims() {
    let server = TestServer::start_with(&["--retention-clock-offset-days", "60"]);
    let project_id = project(&server, "kept", "private");
    let api = Api::root(&server);
    let made = api.post_json(&ml(project_id, "models"), json!({ "name": "m" }));
    assert_eq!(made.status, 201, "{}", made.text());

    // Contents: `own(n)` belongs to one version only; `shared_generic` is also a generic
    // package's file; `shared_kept` is also a kept version's file; `doomed_pair` is held by two
    // versions that both go (freed once).
    let own = |n: u64| random_bytes(10_000 + n as usize * 1000, n);
    let shared_generic = random_bytes(70_001, 901);
    let shared_kept = random_bytes(50_003, 902);
    let doomed_pair = random_bytes(30_007, 903);
    let mut seed = 0;
    for version in [
        "1.0.0",
        "1.0.1",
        "1.0.2",
        "1.0.3",
        "1.0.4",
        "1.1.0",
        "1.1.1",
        "1.1.2",
        "1.1.3",
        "2.0.0-rc.1",
        "2.0.0-rc.2",
        "2.0.0",
    ] {
        seed += 1;
        upload(&api, project_id, "m", version, "model.bin", &own(seed));
    }
    upload(
        &api,
        project_id,
        "m",
        "1.0.2",
        "weights.bin",
        &shared_generic,
    );
    upload(
        &api,
        project_id,
        "shared-generic",
        "1.0",
        "weights.bin",
        &shared_generic,
    );
    upload(
        &api,
        project_id,
        "m",
        "1.1.1",
        "tokenizer.json",
        &shared_kept,
    );
    upload(
        &api,
        project_id,
        "m",
        "1.1.3",
        "tokenizer.json",
        &shared_kept,
    );
    upload(&api, project_id, "m", "1.1.1", "vocab.txt", &doomed_pair);
    upload(
        &api,
        project_id,
        "m",
        "2.0.0-rc.1",
        "vocab.txt",
        &doomed_pair,
    );

    // Protections: 1.0.0 sealed, 1.0.1 downloaded, 1.1.0 and 2.0.0-rc.2 aliased.
    let sealed = api.post_json(&ml(project_id, "models/m/versions/1.0.0/seal"), json!({}));
    assert_eq!(sealed.status, 200, "{}", sealed.text());
    let download = api.get(&generic(project_id, "m", "1.0.1", "model.bin"));
    assert_eq!(download.status, 200);
    let moved = api.put_json(
        &ml(project_id, "models/m/aliases"),
        json!({ "aliases": [
            { "alias": "production", "version": "1.1.0" },
            { "alias": "staging", "version": "2.0.0-rc.2" },
        ] }),
    );
    assert_eq!(moved.status, 200, "{}", moved.text());

    // No rules: nothing goes.
    let nothing = api.post_json(&ml(project_id, "models/m/retention/dry_run"), json!({}));
    assert_eq!(nothing.status, 200, "{}", nothing.text());
    assert_eq!(nothing.json()["delete"], json!([]));
    assert_eq!(nothing.json()["bytes_freed"], 0);

    // Rules are a Maintainer's, checked, and shown on the model.
    let (dev_id, dev_token) = user_with_token(&server, "dev", "api");
    add_member(&server, project_id, dev_id, 30);
    let dev = Api::with_token(&server, &dev_token);
    let rules = json!({
        "keep_patches_per_minor": 2,
        "prerelease_max_age_days": 30,
        "keep_downloaded_within_days": 365,
    });
    let refused = patch(
        &dev,
        &ml(project_id, "models/m"),
        json!({ "retention": rules }),
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    for bad in [
        json!({ "keep_patches_per_minor": 0 }),
        json!({ "keep_patch_per_minor": 2 }),
        json!({ "prerelease_max_age_days": -1 }),
        json!({ "prerelease_max_age_days": 1_000_000 }),
    ] {
        let reply = patch(
            &api,
            &ml(project_id, "models/m"),
            json!({ "retention": bad }),
        );
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text());
        assert!(reply.json()["message"].is_string() || reply.json()["error"].is_string());
    }
    let set_rules = patch(
        &api,
        &ml(project_id, "models/m"),
        json!({ "retention": rules }),
    );
    assert_eq!(set_rules.status, 200, "{}", set_rules.text());
    let model = api.get(&ml(project_id, "models/m")).json();
    assert_eq!(model["retention"], rules);

    for route in ["retention/dry_run", "retention/run"] {
        let reply = dev.post_json(&ml(project_id, &format!("models/m/{route}")), json!({}));
        assert_eq!(reply.status, 403, "{route}: {}", reply.text());
    }
    let anonymous =
        Api::anonymous(&server).post_json(&ml(project_id, "models/m/retention/run"), json!({}));
    assert_eq!(anonymous.status, 401);

    // The dry run: what goes, why, what stays and what protects it.
    let before = blobs(&server);
    let dry = api.post_json(&ml(project_id, "models/m/retention/dry_run"), json!({}));
    assert_eq!(dry.status, 200, "{}", dry.text());
    let dry = dry.json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["deleted"], Value::Null);
    assert_eq!(dry["versions_examined"], 12);
    let planned = versions_of(&dry, "delete");
    assert_eq!(planned, set(&["1.0.2", "1.1.1", "2.0.0-rc.1"]), "{dry}");
    let rule_of = |version: &str, key: &str| -> Value {
        dry[key]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["version"] == version)
            .unwrap_or_else(|| panic!("{version} in {key}: {dry}"))
            .clone()
    };
    assert_eq!(rule_of("1.0.2", "delete")["rule"], "keep_patches_per_minor");
    assert_eq!(
        rule_of("2.0.0-rc.1", "delete")["rule"],
        "prerelease_max_age_days"
    );
    assert_eq!(
        rule_of("1.0.2", "delete")["bytes"],
        (own(3).len() + shared_generic.len()) as u64
    );
    assert_eq!(
        versions_of(&dry, "keep"),
        set(&["1.0.0", "1.0.1", "1.1.0", "2.0.0-rc.2"])
    );
    let protection = |version: &str| rule_of(version, "keep")["protected_by"][0].clone();
    assert_eq!(protection("1.0.0")["protection"], "sealed");
    assert_eq!(protection("1.0.1")["protection"], "downloaded_recently");
    assert_eq!(protection("1.1.0")["protection"], "aliased");
    assert_eq!(protection("1.1.0")["aliases"], json!(["production"]));
    assert_eq!(protection("2.0.0-rc.2")["aliases"], json!(["staging"]));
    // Freed: each doomed version's own file, and the pair's blob once; not the blobs a
    // generic package or a kept version still holds.
    let expected_freed = (own(3).len() + own(7).len() + own(10).len() + doomed_pair.len()) as u64;
    assert_eq!(dry["bytes_freed"], expected_freed, "{dry}");
    assert_eq!(dry["blobs_freed"], 4);
    // Nothing changed.
    assert_eq!(blobs(&server), before);
    assert_eq!(
        api.get(&ml(project_id, "models/m/versions/1.0.2")).status,
        200
    );

    // The real run: the same plan, executed.
    let real = api.post_json(&ml(project_id, "models/m/retention/run"), json!({}));
    assert_eq!(real.status, 200, "{}", real.text());
    let real = real.json();
    assert_eq!(real["dry_run"], false);
    assert_eq!(versions_of(&real, "deleted"), planned);
    assert_eq!(versions_of(&real, "delete"), planned);
    assert_eq!(real["skipped"], json!([]));
    assert_eq!(real["bytes_freed"], dry["bytes_freed"]);
    assert_eq!(real["bytes_reclaimed"], expected_freed);
    assert_eq!(real["blobs_removed"], 4);
    let after = blobs(&server);
    let vanished: u64 = before
        .iter()
        .filter(|(path, _)| !after.contains_key(*path))
        .map(|(_, size)| size)
        .sum();
    assert_eq!(vanished, expected_freed);
    assert!(after.keys().all(|p| before.contains_key(p)));
    for content in [&shared_generic, &shared_kept] {
        assert!(
            blob_path(&server, content).exists(),
            "a shared blob was removed"
        );
    }
    assert!(!blob_path(&server, &doomed_pair).exists());

    for gone in &planned {
        let reply = api.get(&ml(project_id, &format!("models/m/versions/{gone}")));
        assert_eq!(reply.status, 404, "{gone}");
    }
    for kept in [
        "1.0.0",
        "1.0.1",
        "1.0.3",
        "1.0.4",
        "1.1.0",
        "1.1.2",
        "1.1.3",
        "2.0.0-rc.2",
        "2.0.0",
    ] {
        let reply = api.get(&ml(project_id, &format!("models/m/versions/{kept}")));
        assert_eq!(reply.status, 200, "{kept} was deleted");
    }
    // What stays downloads whole; the shared generic package too.
    let tokenizer = api.get(&generic(project_id, "m", "1.1.3", "tokenizer.json"));
    assert_eq!(tokenizer.body, shared_kept);
    let weights = api.get(&generic(project_id, "shared-generic", "1.0", "weights.bin"));
    assert_eq!(weights.body, shared_generic);
    let aliases = api.get(&ml(project_id, "models/m/aliases")).json();
    assert_eq!(aliases["aliases"].as_array().unwrap().len(), 2);

    // Audited: the run, naming retention, and each version's deletion.
    let events = api
        .get(&format!(
            "/api/v4/projects/{project_id}/audit_events?entity_type=Model&per_page=100"
        ))
        .json();
    let run = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "model_retention_run")
        .unwrap_or_else(|| panic!("no retention event in {events}"));
    assert_eq!(run["details"]["author_name"], "root");
    let message = run["details"]["custom_message"].as_str().unwrap();
    assert!(
        message.contains("retention deleted 3 versions"),
        "{message}"
    );
    assert_eq!(run["details"]["after"]["bytes_reclaimed"], expected_freed);
    let deletions = api
        .get(&format!(
            "/api/v4/projects/{project_id}/audit_events?entity_type=ModelVersion&per_page=100"
        ))
        .json();
    let deleted_paths: Vec<&str> = deletions
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"]["action"] == "deleted")
        .map(|e| e["details"]["entity_path"].as_str().unwrap())
        .collect();
    assert_eq!(deleted_paths.len(), 3, "{deletions}");

    // Run again: nothing left to do.
    let again = api.post_json(&ml(project_id, "models/m/retention/run"), json!({}));
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["deleted"], json!([]));
    assert_eq!(again.json()["bytes_reclaimed"], 0);

    // Both routes are in the OpenAPI document, with the rules on the model.
    let openapi = api.get("/api/v4/ml/openapi.json").json();
    for route in ["dry_run", "run"] {
        let path = format!("/api/v4/projects/{{id}}/ml/models/{{model}}/retention/{route}");
        assert!(
            openapi["paths"][&path]["post"].is_object(),
            "{path} not in the OpenAPI document"
        );
    }
    assert!(openapi["components"]["schemas"]["RetentionReportView"].is_object());
    assert!(openapi["components"]["schemas"]["RetentionRulesBody"].is_object());

    // `{}` removes the rules.
    let cleared = patch(
        &api,
        &ml(project_id, "models/m"),
        json!({ "retention": {} }),
    );
    assert_eq!(cleared.status, 200, "{}", cleared.text());
    assert_eq!(cleared.json()["retention"], Value::Null);
}

#[test]
fn retention_run_on_the_data_dir_runs_every_model_with_rules() {
    let mut server = TestServer::start();
    let project_id = project(&server, "cron", "private");
    let api = Api::root(&server);
    for name in ["ruled", "free"] {
        let made = api.post_json(&ml(project_id, "models"), json!({ "name": name }));
        assert_eq!(made.status, 201, "{}", made.text());
        for (i, version) in ["1.0.0", "1.0.1", "1.0.2", "1.1.0-rc.1"].iter().enumerate() {
            let content = random_bytes(20_000 + i, name.len() as u64 * 100 + i as u64);
            upload(&api, project_id, name, version, "model.bin", &content);
        }
    }
    let set_rules = patch(
        &api,
        &ml(project_id, "models/ruled"),
        json!({ "retention": { "keep_patches_per_minor": 1, "prerelease_max_age_days": 7 } }),
    );
    assert_eq!(set_rules.status, 200, "{}", set_rules.text());
    server.stop();
    let before = blobs(&server);

    // A dry run changes nothing; with the clock 30 days on, the prerelease is old.
    let out = server.admin(&["retention", "run", "--dry-run", "--clock-offset-days", "30"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dry: Value = serde_json::from_slice(&out.stdout).expect("a JSON summary");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["models"].as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(dry["models"][0]["model"]["name"], "ruled");
    let planned = versions_of(&dry["models"][0], "delete");
    assert_eq!(planned, set(&["1.0.0", "1.0.1", "1.1.0-rc.1"]));
    assert_eq!(dry["versions_deleted"], 3);
    assert_eq!(dry["bytes_reclaimed"], Value::Null);
    assert_eq!(blobs(&server), before);

    let out = server.admin(&["retention", "run", "--clock-offset-days", "30"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let real: Value = serde_json::from_slice(&out.stdout).expect("a JSON summary");
    assert_eq!(versions_of(&real["models"][0], "deleted"), planned);
    assert_eq!(real["bytes_reclaimed"], dry["bytes_freed"]);
    let after = blobs(&server);
    let vanished: u64 = before
        .iter()
        .filter(|(path, _)| !after.contains_key(*path))
        .map(|(_, size)| size)
        .sum();
    assert_eq!(real["bytes_reclaimed"], vanished);
    assert!(vanished > 0);

    server.restart();
    let api = Api::root(&server);
    for version in &planned {
        let reply = api.get(&ml(project_id, &format!("models/ruled/versions/{version}")));
        assert_eq!(reply.status, 404, "{version}");
    }
    assert_eq!(
        api.get(&ml(project_id, "models/ruled/versions/1.0.2"))
            .status,
        200
    );
    let free = api
        .get(&ml(project_id, "models/free/versions?per_page=100"))
        .json();
    assert_eq!(
        free.as_array().unwrap().len(),
        4,
        "a model without rules lost versions"
    );
    let events = api
        .get(&format!(
            "/api/v4/projects/{project_id}/audit_events?entity_type=Model&per_page=100"
        ))
        .json();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event_type"] == "model_retention_run"
                && e["details"]["author_name"] == "root"),
        "{events}"
    );
}
