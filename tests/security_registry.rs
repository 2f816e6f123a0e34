//! Issue #10, the registry-domain holes: each test performs the attack against the real server.
//! Item 1 (name ownership), 7 (model packages of non-public registries), 10 (huge metric
//! histories), 12 (log-inputs/outputs are writes) and 14 (automatic version overflow).

mod common;

use common::*;
use serde_json::json;

fn ml(project_id: u64, rest: &str) -> String {
    format!("/api/v4/projects/{project_id}/ml/{rest}")
}

fn tracking(project_id: u64, path: &str) -> String {
    format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow/{path}")
}

#[allow(dead_code)]
fn generic(project_id: u64, rest: &str) -> String {
    format!("/api/v4/projects/{project_id}/packages/generic/{rest}")
}

fn message(reply: &Reply) -> String {
    let body = reply.json();
    body["message"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A user with an `api` token who is a member of `project_id` at `level`.
fn member(server: &TestServer, project_id: u64, name: &str, level: u8) -> String {
    let (id, token) = user_with_token(server, name, "api");
    add_member(server, project_id, id, level);
    token
}

fn new_run(api: &Api, project_id: u64) -> String {
    let experiment = api.post_json(
        &tracking(project_id, "experiments/create"),
        json!({ "name": "inputs" }),
    );
    assert_eq!(experiment.status, 200, "{}", experiment.text());
    let experiment_id = experiment.json()["experiment_id"]
        .as_str()
        .expect("experiment id")
        .to_string();
    let run = api.post_json(
        &tracking(project_id, "runs/create"),
        json!({ "experiment_id": experiment_id }),
    );
    assert_eq!(run.status, 200, "{}", run.text());
    run.json()["run"]["info"]["run_id"]
        .as_str()
        .expect("run id")
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Item 12: runs/log-inputs and runs/outputs are writes.

#[test]
fn log_inputs_and_outputs_need_write_access_like_every_other_mlflow_write() {
    let server = TestServer::start();
    let project_id = project(&server, "runs-io", "public");
    let reporter = member(&server, project_id, "reporter", 20);
    let guest = member(&server, project_id, "guest", 10);
    let (_, outsider) = user_with_token(&server, "outsider", "api");
    let (owner_id, owner_read_only) = user_with_token(&server, "reader", "read_api");
    add_member(&server, project_id, owner_id, 50);
    let run_id = new_run(&Api::with_token(&server, &reporter), project_id);

    let inputs = json!({
        "run_id": run_id,
        "datasets": [{ "dataset": { "name": "d", "digest": "abc", "source_type": "local", "source": "/x" } }]
    });
    let outputs = json!({ "run_id": run_id, "models": [] });
    // (who, expected status, expected MLflow error code)
    let callers: [(&str, Option<&str>, u16, Option<&str>); 5] = [
        ("anonymous", None, 401, Some("UNAUTHENTICATED")),
        (
            "non-member",
            Some(&outsider),
            403,
            Some("PERMISSION_DENIED"),
        ),
        ("guest", Some(&guest), 403, Some("PERMISSION_DENIED")),
        (
            "read_api owner",
            Some(&owner_read_only),
            403,
            Some("PERMISSION_DENIED"),
        ),
        ("reporter", Some(&reporter), 200, None),
    ];
    for (who, token, status, code) in callers {
        let api = Api {
            server: &server,
            token: token.map(str::to_string),
        };
        for (route, body) in [("runs/log-inputs", &inputs), ("runs/outputs", &outputs)] {
            let reply = api.post_json(&tracking(project_id, route), body.clone());
            assert_eq!(reply.status, status, "{who} {route}: {}", reply.text());
            if let Some(code) = code {
                assert_eq!(reply.json()["error_code"], code, "{who} {route}");
            }
        }
        // The same caller's log-param answers the same: the write rule is one rule.
        let param = api.post_json(
            &tracking(project_id, "runs/log-parameter"),
            json!({ "run_id": run_id, "key": format!("k-{}", who.len()), "value": "v" }),
        );
        assert_eq!(
            param.status,
            status,
            "{who} log-parameter: {}",
            param.text()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Item 14: the automatic version bump at the largest patch number.

#[test]
fn the_largest_patch_number_makes_automatic_versions_a_clear_400_and_nothing_else_breaks() {
    let server = TestServer::start();
    let project_id = project(&server, "overflow", "private");
    let root = Api::root(&server);
    let created = root.post_json(&ml(project_id, "models"), json!({ "name": "edge" }));
    assert_eq!(created.status, 201, "{}", created.text());
    let max = format!("1.0.{}", u64::MAX);
    let top = root.post_json(
        &ml(project_id, "models/edge/versions"),
        json!({ "version": max }),
    );
    assert_eq!(top.status, 201, "{}", top.text());

    // Native API without a version: 400 naming the version, not a wrapped-around 1.0.0.
    for _ in 0..2 {
        let auto = root.post_json(&ml(project_id, "models/edge/versions"), json!({}));
        assert_eq!(auto.status, 400, "{}", auto.text());
        assert!(message(&auto).contains(&max), "{}", auto.text());
    }
    // MLflow create_model_version without gitlab.version: INVALID_PARAMETER_VALUE naming it.
    let mlflow = root.post_json(
        &tracking(project_id, "model-versions/create"),
        json!({ "name": "edge", "source": "" }),
    );
    assert_eq!(mlflow.status, 400, "{}", mlflow.text());
    assert_eq!(mlflow.json()["error_code"], "INVALID_PARAMETER_VALUE");
    assert!(
        mlflow.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains(&max),
        "{}",
        mlflow.text()
    );
    // Promotion of a candidate without a version: the same 400, and the candidate stays one.
    let experiment_iid = root.get(&ml(project_id, "models/edge")).json()["experiment_iid"]
        .as_u64()
        .expect("experiment iid");
    let candidate = root.post_json(
        &ml(
            project_id,
            &format!("experiments/{experiment_iid}/candidates"),
        ),
        json!({ "name": "c" }),
    );
    assert_eq!(candidate.status, 201, "{}", candidate.text());
    let iid = candidate.json()["iid"].as_u64().expect("iid");
    let promote = root.post_json(
        &ml(project_id, &format!("candidates/{iid}/promote")),
        json!({}),
    );
    assert_eq!(promote.status, 400, "{}", promote.text());
    assert!(message(&promote).contains(&max), "{}", promote.text());

    // Nothing wrapped: no 1.0.0 exists, and the listing is just the one version.
    let versions = root.get(&ml(project_id, "models/edge/versions")).json();
    let names: Vec<&str> = versions
        .as_array()
        .expect("list")
        .iter()
        .map(|v| v["version"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, vec![max.as_str()]);
    // Explicit versions still work everywhere, and the promotion with a version too.
    let explicit = root.post_json(
        &ml(project_id, "models/edge/versions"),
        json!({ "version": "2.0.0" }),
    );
    assert_eq!(explicit.status, 201, "{}", explicit.text());
    let promoted = root.post_json(
        &ml(project_id, &format!("candidates/{iid}/promote")),
        json!({ "version": "2.1.0" }),
    );
    assert_eq!(promoted.status, 201, "{}", promoted.text());
    // With 2.1.0 the latest, the automatic bump works again.
    let auto = root.post_json(&ml(project_id, "models/edge/versions"), json!({}));
    assert_eq!(auto.status, 201, "{}", auto.text());
    assert_eq!(auto.json()["version"], "2.1.1");
}
