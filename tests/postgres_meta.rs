//! The real server with its metadata in PostgreSQL (`--metadata postgres://...`, a fresh database
//! per test on `MODELYARD_TEST_POSTGRES_URL`; skipped loudly without it, failing under
//! `MODELYARD_TEST_REQUIRE_POSTGRES=1`): the users/projects/models/versions/packages flow, an
//! MLflow run with metrics, a restart, concurrent version creators, and two servers sharing one
//! database.

mod common;

use common::postgres::fresh_database;
use common::*;
use serde_json::{json, Value};

fn tracking(project_id: u64, path: &str) -> String {
    format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/{path}")
}

fn on_postgres(url: &str) -> TestServer {
    TestServer::start_with(&["--metadata", url])
}

/// The answer the embedded store gives to a duplicate name or version.
fn assert_refused_as_existing(reply: &Reply) {
    assert!(
        matches!(reply.status, 400 | 409) && reply.text().contains("already"),
        "a duplicate was not refused: {} {}",
        reply.status,
        reply.text()
    );
}

fn password_of(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .password()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_registry_runs_on_postgres_and_keeps_everything_across_a_restart() {
    let Some(url) = fresh_database("the_registry_runs_on_postgres") else {
        return;
    };
    let mut server = on_postgres(&url);
    let (alice_id, alice) = user_with_token(&server, "alice", "api");
    let project_id = project(&server, "vision", "private");
    add_member(&server, project_id, alice_id, 40);
    let root = Api::root(&server);
    let alice = Api::with_token(&server, &alice);

    // Models, versions, files.
    let model = alice.post_json(&ml(project_id, "models"), json!({ "name": "resnet" }));
    assert_eq!(model.status, 201, "{}", model.text());
    let taken = alice.post_json(&ml(project_id, "models"), json!({ "name": "resnet" }));
    assert_refused_as_existing(&taken);
    for version in ["1.0.0", "1.1.0", "2.0.0-rc.1"] {
        let created = alice.post_json(
            &ml(project_id, "models/resnet/versions"),
            json!({ "version": version }),
        );
        assert_eq!(created.status, 201, "{}", created.text());
    }
    let again = alice.post_json(
        &ml(project_id, "models/resnet/versions"),
        json!({ "version": "1.0.0" }),
    );
    assert_refused_as_existing(&again);
    let weights = random_bytes(300_000, 7);
    let uploaded = alice.put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/generic/resnet/1.1.0/weights.bin"),
        &weights,
    );
    assert_eq!(uploaded.status, 201, "{}", uploaded.text());
    let generic = alice.put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/generic/tools/0.1.0/run.sh"),
        b"#!/bin/sh\n",
    );
    assert_eq!(generic.status, 201, "{}", generic.text());

    // An MLflow run with metrics.
    let experiment = root.post_json(
        &tracking(project_id, "mlflow/experiments/create"),
        json!({ "name": "train" }),
    );
    assert_eq!(experiment.status, 200, "{}", experiment.text());
    let experiment_id = experiment.json()["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = root.post_json(
        &tracking(project_id, "mlflow/runs/create"),
        json!({ "experiment_id": experiment_id, "run_name": "r1" }),
    );
    assert_eq!(run.status, 200, "{}", run.text());
    let run_id = run.json()["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let metrics: Vec<Value> = (0..500)
        .map(|i| json!({ "key": "loss", "value": 1.0 / (i + 1) as f64, "timestamp": 1000 + i, "step": i }))
        .collect();
    let logged = root.post_json(
        &tracking(project_id, "mlflow/runs/log-batch"),
        json!({ "run_id": run_id, "metrics": metrics, "params": [{ "key": "lr", "value": "0.1" }] }),
    );
    assert_eq!(logged.status, 200, "{}", logged.text());

    let check = |server: &TestServer| {
        let root = Api::root(server);
        let versions = root.get(&ml(project_id, "models/resnet/versions"));
        assert_eq!(versions.status, 200, "{}", versions.text());
        let listed: Vec<String> = versions
            .json()
            .as_array()
            .expect("a list of versions")
            .iter()
            .map(|v| v["version"].as_str().unwrap().to_string())
            .collect();
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!(sorted, ["1.0.0", "1.1.0", "2.0.0-rc.1"], "{listed:?}");
        let file = root.get(&format!(
            "/api/v4/projects/{project_id}/packages/generic/resnet/1.1.0/weights.bin"
        ));
        assert_eq!(file.status, 200);
        assert_eq!(sha256_hex(&file.body), sha256_hex(&weights));
        let history = root.get(&format!(
            "{}?run_id={run_id}&metric_key=loss",
            tracking(project_id, "mlflow/metrics/get-history")
        ));
        assert_eq!(history.status, 200, "{}", history.text());
        assert_eq!(history.json()["metrics"].as_array().unwrap().len(), 500);
        let got = root.get(&format!(
            "{}?run_id={run_id}",
            tracking(project_id, "mlflow/runs/get")
        ));
        assert_eq!(got.json()["run"]["data"]["params"][0]["value"], "0.1");
        let packages = root.get(&format!("/api/v4/projects/{project_id}/packages"));
        assert_eq!(packages.status, 200, "{}", packages.text());
        assert!(
            packages.json().as_array().unwrap().len() >= 2,
            "{}",
            packages.text()
        );
        let users = root.get("/api/v4/users?username=alice");
        assert_eq!(users.json().as_array().unwrap().len(), 1);
    };
    check(&server);
    server.restart();
    check(&server);
    // The metadata is in PostgreSQL, not in the data dir, and the password is in no log line.
    assert!(
        !server.data_dir().join("meta").exists(),
        "sled metadata was written"
    );
    let password = password_of(&url);
    assert!(!password.is_empty());
    assert!(
        server
            .log_lines()
            .iter()
            .all(|line| !line.contains(&password)),
        "the database password was logged"
    );
}

#[test]
fn concurrent_version_creators_get_distinct_numbers() {
    let Some(url) = fresh_database("concurrent_version_creators") else {
        return;
    };
    let first = on_postgres(&url);
    let second = on_postgres(&url);
    let project_id = project(&first, "shared", "private");
    let created = Api::root(&first).post_json(
        &tracking(project_id, "mlflow/registered-models/create"),
        json!({ "name": "m" }),
    );
    assert_eq!(created.status, 200, "{}", created.text());
    let numbers: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let server = if i % 2 == 0 { &first } else { &second };
                scope.spawn(move || {
                    let reply = Api::root(server).post_json(
                        &tracking(project_id, "mlflow/model-versions/create"),
                        json!({ "name": "m", "source": format!("s3://elsewhere/{i}") }),
                    );
                    assert_eq!(reply.status, 200, "{}", reply.text());
                    reply.json()["model_version"]["version"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted: Vec<u32> = numbers.iter().map(|n| n.parse().unwrap()).collect();
    sorted.sort();
    assert_eq!(sorted, (1..=8).collect::<Vec<_>>(), "{numbers:?}");
}

#[test]
fn two_servers_on_one_database_see_each_others_writes_at_once() {
    let Some(url) = fresh_database("two_servers_on_one_database") else {
        return;
    };
    let first = on_postgres(&url);
    let second = on_postgres(&url);
    let project_id = project(&first, "shared", "private");
    let one = Api::root(&first);
    let two = Api::root(&second);
    assert_eq!(
        one.post_json(&ml(project_id, "models"), json!({ "name": "m" }))
            .status,
        201
    );
    for i in 0..5 {
        let version = format!("1.{i}.0");
        let (writer, reader) = if i % 2 == 0 {
            (&one, &two)
        } else {
            (&two, &one)
        };
        let created = writer.post_json(
            &ml(project_id, "models/m/versions"),
            json!({ "version": version }),
        );
        assert_eq!(created.status, 201, "{}", created.text());
        let seen = reader.get(&ml(project_id, &format!("models/m/versions/{version}")));
        assert_eq!(
            seen.status,
            200,
            "{version} not visible on the other server: {}",
            seen.text()
        );
        let duplicate = reader.post_json(
            &ml(project_id, "models/m/versions"),
            json!({ "version": version }),
        );
        assert_refused_as_existing(&duplicate);
    }
    let listed = two.get(&ml(project_id, "models/m/versions"));
    assert_eq!(
        listed.json().as_array().unwrap().len(),
        5,
        "{}",
        listed.text()
    );
}

#[test]
fn a_bad_metadata_option_is_refused_without_echoing_it() {
    let output = std::process::Command::new(binary())
        .args(["user", "list", "--metadata", "mysql://root:hunter2@db/x"])
        .arg("--data-dir")
        .arg(private_tempdir().path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--metadata must be `sled` or a `postgres://` URL"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    let unreachable = std::process::Command::new(binary())
        .args([
            "user",
            "list",
            "--metadata",
            "postgres://root:hunter2@127.0.0.1:1/x",
        ])
        .arg("--data-dir")
        .arg(private_tempdir().path())
        .output()
        .unwrap();
    assert!(!unreachable.status.success());
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert!(
        stderr.contains("postgres://root:***@127.0.0.1:1/x"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// Statements the server has sent to PostgreSQL (its `/metrics` counter).
fn statements_sent(root: &Api) -> u64 {
    let metrics = root.get("/metrics");
    assert_eq!(metrics.status, 200, "{}", metrics.text());
    metrics
        .text()
        .lines()
        .find_map(|line| line.strip_prefix("modelyard_metadata_statements_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the statements counter on /metrics")
}

/// Statements one GET costs (see [`statements_of_request`]).
fn statements_of(root: &Api, path: &str) -> u64 {
    statements_of_request(root, || root.get(path))
}

/// One query per page: a listing reads its page of index entries and then every record of the
/// page in one batched statement (`get_many`), so what a page costs does not grow with its size
/// (before, a page of 50 cost 45 statements more than a page of 5).
#[test]
fn a_listing_costs_the_same_statements_whatever_its_page_size() {
    let Some(url) = fresh_database("a_listing_costs_the_same_statements") else {
        return;
    };
    let server = on_postgres(&url);
    let project_id = project(&server, "many", "private");
    let root = Api::root(&server);
    for i in 0..60 {
        let put = root.put_bytes(
            &format!(
                "/api/v4/projects/{project_id}/packages/generic/pkg-{}/1.0.{i}/f.bin",
                i % 3
            ),
            format!("file {i}").as_bytes(),
        );
        assert_eq!(put.status, 201, "{}", put.text());
    }
    let packages = format!("/api/v4/projects/{project_id}/packages");
    let listed = root.get(&format!("{packages}?per_page=50"));
    assert_eq!(listed.json().as_array().unwrap().len(), 50);
    let small = statements_of(&root, &format!("{packages}?per_page=5"));
    let large = statements_of(&root, &format!("{packages}?per_page=50"));
    let keyset = statements_of(
        &root,
        &format!("{packages}?per_page=50&pagination=keyset&order_by=created_at"),
    );
    let named = statements_of(&root, &format!("{packages}?per_page=50&package_name=pkg-1"));
    assert!(small > 0, "the counter did not count the listing");
    assert_eq!(
        large, small,
        "a page of 50 packages cost {large} statements, a page of 5 {small}"
    );
    assert!(
        keyset <= small + 1 && named <= small + 2,
        "keyset {keyset}, by name {named}, page of 5 {small}"
    );
    // Under a dozen whatever the page: token, project, count, index page, records.
    assert!(large < 12, "a page of packages cost {large} statements");
}

/// Statements one request costs: the fewest over three tries (a background task of the server
/// may send one now and then), less what reading the counter costs by itself.
fn statements_of_request(root: &Api, request: impl Fn() -> Reply) -> u64 {
    let mut fewest = u64::MAX;
    let mut floor = u64::MAX;
    for _ in 0..3 {
        let before = statements_sent(root);
        let reply = request();
        assert_eq!(reply.status, 200, "{}", reply.text());
        let after = statements_sent(root);
        fewest = fewest.min(after - before);
        let again = statements_sent(root);
        floor = floor.min(again - after);
    }
    fewest.saturating_sub(floor)
}

/// The views of a page read what they show (a version's run with its params, metrics and
/// history, its files and their downloads, tags, authors; a run's inputs and experiment) for
/// the whole page in batched reads: a page of 24 versions or runs costs what a page of 3 does.
/// Before, each version of a page cost about ten statements more, each run seven.
#[test]
fn pages_of_versions_and_runs_cost_the_same_statements_whatever_their_size() {
    let Some(url) = fresh_database("pages_of_versions_and_runs_cost") else {
        return;
    };
    let server = on_postgres(&url);
    let project_id = project(&server, "pages", "private");
    let root = Api::root(&server);
    let model = root.post_json(
        &format!("/api/v4/projects/{project_id}/ml/models"),
        json!({ "name": "big" }),
    );
    assert_eq!(model.status, 201, "{}", model.text());
    let model_id = model.json()["id"].as_u64().unwrap();
    let experiment_id = model.json()["experiment_iid"].as_u64().unwrap().to_string();
    for i in 0..24 {
        let run = root.post_json(
            &tracking(project_id, "mlflow/runs/create"),
            json!({ "experiment_id": experiment_id, "run_name": format!("run-{i}") }),
        );
        assert_eq!(run.status, 200, "{}", run.text());
        let run_id = run.json()["run"]["info"]["run_id"]
            .as_str()
            .unwrap()
            .to_string();
        let metrics: Vec<Value> = (0..3)
            .flat_map(|step| {
                ["loss", "acc"].map(|key| {
                    json!({ "key": key, "value": i as f64 + step as f64, "timestamp": 1000 + step, "step": step })
                })
            })
            .collect();
        let batch = root.post_json(
            &tracking(project_id, "mlflow/runs/log-batch"),
            json!({
                "run_id": run_id,
                "metrics": metrics,
                "params": [{ "key": "lr", "value": format!("0.{i}") }, { "key": "seed", "value": "7" }],
                "tags": [{ "key": "team", "value": "vision" }],
            }),
        );
        assert_eq!(batch.status, 200, "{}", batch.text());
        let version = root.post_json(
            &format!("/api/v4/projects/{project_id}/ml/models/{model_id}/versions"),
            json!({ "version": format!("1.0.{i}"), "run_id": run_id, "metadata": [{ "key": "k", "value": "v" }] }),
        );
        assert_eq!(version.status, 201, "{}", version.text());
        let put = root.put_bytes(
            &format!("/api/v4/projects/{project_id}/packages/generic/big/1.0.{i}/model.bin"),
            format!("weights {i}").as_bytes(),
        );
        assert_eq!(put.status, 201, "{}", put.text());
    }
    // The views carry what was read for them.
    let versions = format!("/api/v4/projects/{project_id}/ml/models/{model_id}/versions");
    let page = root.get(&format!("{versions}?per_page=24"));
    assert_eq!(page.status, 200, "{}", page.text());
    let page = page.json();
    let items = page.as_array().unwrap();
    assert_eq!(items.len(), 24);
    let newest = &items[0];
    assert_eq!(newest["version"], "1.0.23");
    assert_eq!(newest["latest"], true);
    assert_eq!(items[1]["latest"], false);
    assert_eq!(newest["params"][0], json!({ "key": "lr", "value": "0.23" }));
    assert_eq!(newest["metrics"].as_array().unwrap().len(), 2);
    assert_eq!(newest["metric_history"].as_array().unwrap().len(), 6);
    assert_eq!(newest["metadata"], json!([{ "key": "k", "value": "v" }]));
    assert_eq!(newest["files"][0]["file_name"], "model.bin");
    assert_eq!(newest["author"]["username"], "root");
    assert_eq!(newest["run_id"].as_str().unwrap().len(), 32);
    let small = statements_of(&root, &format!("{versions}?per_page=3"));
    let large = statements_of(&root, &format!("{versions}?per_page=24"));
    assert!(small > 0, "the counter did not count the listing");
    eprintln!("a page of versions: {small} statements for 3, {large} for 24");
    assert_eq!(
        large, small,
        "a page of 24 versions cost {large} statements, a page of 3 {small}"
    );
    assert!(large < 30, "a page of versions cost {large} statements");

    let search = |max_results: u32| {
        let root = &root;
        let experiment_id = experiment_id.clone();
        move || {
            root.post_json(
                &tracking(project_id, "mlflow/runs/search"),
                json!({ "experiment_ids": [experiment_id], "max_results": max_results }),
            )
        }
    };
    let runs = search(24)().json();
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 24);
    assert_eq!(runs[0]["data"]["params"].as_array().unwrap().len(), 2);
    assert_eq!(runs[0]["data"]["metrics"].as_array().unwrap().len(), 2);
    assert!(runs[0]["data"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["key"] == "team"));
    assert_eq!(runs[0]["info"]["user_id"], "root");
    let small = statements_of_request(&root, search(3));
    let large = statements_of_request(&root, search(24));
    eprintln!("runs/search: {small} statements for 3 runs, {large} for 24");
    assert_eq!(
        large, small,
        "runs/search: 24 runs cost {large} statements, 3 runs {small}"
    );

    let model_versions = |max_results: u32| {
        tracking(
            project_id,
            &format!(
                "mlflow/model-versions/search?filter=name%3D%27big%27&max_results={max_results}"
            ),
        )
    };
    let found = root.get(&model_versions(24)).json();
    let found = found["model_versions"].as_array().unwrap();
    assert_eq!(found.len(), 24);
    assert!(found
        .iter()
        .all(|v| v["run_id"].as_str().unwrap().len() == 32));
    assert!(found.iter().all(|v| v["user_id"] == "root"));
    let small = statements_of(&root, &model_versions(3));
    let large = statements_of(&root, &model_versions(24));
    eprintln!("search_model_versions: {small} statements for 3, {large} for 24");
    assert_eq!(
        large, small,
        "search_model_versions: 24 versions cost {large} statements, 3 versions {small}"
    );
}

/// A page of models reads its models' latest versions, version counts, experiments,
/// candidate counts, tags, authors and downloads for the whole page at once: 24 models cost
/// the statements 3 do (before, each model of a page cost about seven more).
#[test]
fn a_page_of_models_costs_the_same_statements_whatever_its_size() {
    let Some(url) = fresh_database("a_page_of_models_costs") else {
        return;
    };
    let server = on_postgres(&url);
    let project_id = project(&server, "models", "private");
    let root = Api::root(&server);
    for i in 0..24 {
        let name = format!("model-{i:02}");
        let model = root.post_json(
            &format!("/api/v4/projects/{project_id}/ml/models"),
            json!({ "name": name, "metadata": [{ "key": "team", "value": format!("t{i}") }] }),
        );
        assert_eq!(model.status, 201, "{}", model.text());
        let model_id = model.json()["id"].as_u64().unwrap();
        for version in ["1.0.0", "1.1.0-rc.1"] {
            let created = root.post_json(
                &format!("/api/v4/projects/{project_id}/ml/models/{model_id}/versions"),
                json!({ "version": version }),
            );
            assert_eq!(created.status, 201, "{}", created.text());
        }
        let put = root.put_bytes(
            &format!("/api/v4/projects/{project_id}/packages/generic/{name}/1.0.0/model.bin"),
            format!("weights {i}").as_bytes(),
        );
        assert_eq!(put.status, 201, "{}", put.text());
        let got = root.get(&format!(
            "/api/v4/projects/{project_id}/packages/generic/{name}/1.0.0/model.bin"
        ));
        assert_eq!(got.status, 200, "{}", got.text());
        let staged = root.post_json(
            &tracking(project_id, "mlflow/model-versions/transition-stage"),
            json!({ "name": name, "version": "1", "stage": "Production" }),
        );
        assert_eq!(staged.status, 200, "{}", staged.text());
        let aliased = root.post_json(
            &tracking(project_id, "mlflow/registered-models/alias"),
            json!({ "name": name, "alias": "champion", "version": "1" }),
        );
        assert_eq!(aliased.status, 200, "{}", aliased.text());
    }
    let models = format!("/api/v4/projects/{project_id}/ml/models");
    let page = root.get(&format!("{models}?per_page=24&order_by=name&sort=asc"));
    assert_eq!(page.status, 200, "{}", page.text());
    let page = page.json();
    let items = page.as_array().unwrap();
    assert_eq!(items.len(), 24);
    let first = &items[0];
    assert_eq!(first["name"], "model-00");
    assert_eq!(first["version_count"], 2);
    assert_eq!(first["candidate_count"], 0);
    assert_eq!(first["latest_version"]["version"], "1.0.0");
    assert_eq!(first["latest_version"]["author"]["username"], "root");
    assert_eq!(first["author"]["username"], "root");
    assert_eq!(first["metadata"], json!([{ "key": "team", "value": "t0" }]));
    assert!(first["experiment_iid"].as_u64().is_some());
    assert_eq!(items[23]["metadata"][0]["value"], "t23");
    // The page and a model's own view say the same.
    let one = root.get(&format!("{models}/{}", first["id"]));
    assert_eq!(one.status, 200, "{}", one.text());
    let mut alone = one.json();
    let mut listed = first.clone();
    for view in [&mut alone, &mut listed] {
        view["latest_version"]
            .as_object_mut()
            .unwrap()
            .remove("last_downloaded_at");
    }
    assert_eq!(alone, listed);
    let small = statements_of(&root, &format!("{models}?per_page=3"));
    let large = statements_of(&root, &format!("{models}?per_page=24"));
    assert!(small > 0, "the counter did not count the listing");
    eprintln!("a page of models: {small} statements for 3, {large} for 24");
    assert_eq!(
        large, small,
        "a page of 24 models cost {large} statements, a page of 3 {small}"
    );
    assert!(large < 30, "a page of models cost {large} statements");

    // MLflow's search_registered_models: tags, the latest version of each stage with its
    // view, aliases and authors, read for the page at once.
    let search = |max_results: u32| {
        tracking(
            project_id,
            &format!("mlflow/registered-models/search?filter=name+LIKE+%27model-%25%27&max_results={max_results}"),
        )
    };
    let found = root.get(&search(24));
    assert_eq!(found.status, 200, "{}", found.text());
    let found = found.json();
    let found = found["registered_models"].as_array().unwrap();
    assert_eq!(found.len(), 24);
    let first = &found[0];
    assert_eq!(first["name"], "model-00");
    assert_eq!(first["user_id"], "root");
    assert_eq!(first["tags"], json!([{ "key": "team", "value": "t0" }]));
    assert_eq!(
        first["aliases"],
        json!([{ "alias": "champion", "version": "1" }])
    );
    let stages: Vec<(&str, &str)> = first["latest_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap(),
                v["current_stage"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(stages, [("1", "Production"), ("2", "None")]);
    assert_eq!(found[23]["tags"][0]["value"], "t23");
    let alone = root.get(&tracking(
        project_id,
        "mlflow/registered-models/get?name=model-00",
    ));
    assert_eq!(alone.status, 200, "{}", alone.text());
    assert_eq!(&alone.json()["registered_model"], first);
    let small = statements_of(&root, &search(3));
    let large = statements_of(&root, &search(24));
    eprintln!("search_registered_models: {small} statements for 3, {large} for 24");
    assert_eq!(
        large, small,
        "search_registered_models: 24 models cost {large} statements, 3 models {small}"
    );
}
