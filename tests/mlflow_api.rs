//! The MLflow REST surface on the wire: shapes and codes the real client depends on, and the
//! durability cost of logging.

mod common;

use common::*;
use serde_json::{json, Value};

fn tracking(project_id: u64, path: &str) -> String {
    format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/{path}")
}

fn flushes(server: &TestServer) -> u64 {
    Api::root(server)
        .get("/metrics")
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("modelyard_metadata_flushes_total "))
        .and_then(|v| v.parse().ok())
        .expect("flush counter")
}

fn post(api: &Api, path: &str, body: Value) -> Reply {
    api.post_json(path, body)
}

fn new_run(api: &Api, project_id: u64) -> String {
    let experiment = post(
        api,
        &tracking(project_id, "mlflow/experiments/create"),
        json!({ "name": "e" }),
    );
    assert_eq!(experiment.status, 200, "{}", experiment.text());
    let experiment_id = experiment.json()["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = post(
        api,
        &tracking(project_id, "mlflow/runs/create"),
        json!({ "experiment_id": experiment_id, "run_name": "r" }),
    );
    assert_eq!(run.status, 200);
    let info = &run.json()["run"]["info"];
    assert_eq!(info["run_id"], info["run_uuid"]);
    assert_eq!(info["lifecycle_stage"], "active");
    assert_eq!(
        info["artifact_uri"],
        format!(
            "mlflow-artifacts:/{experiment_id}/{}/artifacts",
            info["run_id"].as_str().unwrap()
        )
    );
    info["run_id"].as_str().unwrap().to_string()
}

#[test]
fn a_batch_of_1000_metrics_is_one_durable_write() {
    let server = TestServer::start();
    let project_id = project(&server, "batch", "private");
    let api = Api::root(&server);
    let run_id = new_run(&api, project_id);
    let metrics: Vec<Value> = (0..1000).map(|i| json!({ "key": "loss", "value": i as f64 / 10.0, "timestamp": 1000 + i, "step": i })).collect();
    let before = flushes(&server);
    let logged = post(
        &api,
        &tracking(project_id, "mlflow/runs/log-batch"),
        json!({ "run_id": run_id, "metrics": metrics }),
    );
    assert_eq!(logged.status, 200);
    assert_eq!(logged.json(), json!({}));
    // On PostgreSQL the transaction's commit is the durable write: no flush follows it.
    let expected = if server.stores.metadata.is_some() {
        0
    } else {
        1
    };
    assert_eq!(
        flushes(&server) - before,
        expected,
        "one log-batch, one durable write"
    );
    let history = api.get(&format!(
        "{}?run_id={run_id}&metric_key=loss",
        tracking(project_id, "mlflow/metrics/get-history")
    ));
    assert_eq!(history.json()["metrics"].as_array().unwrap().len(), 1000);
}

#[test]
fn non_finite_values_travel_as_strings_and_identical_points_are_kept_once() {
    let server = TestServer::start();
    let project_id = project(&server, "nan", "private");
    let api = Api::root(&server);
    let run_id = new_run(&api, project_id);
    for value in [
        json!("NaN"),
        json!("Infinity"),
        json!("-Infinity"),
        json!(1.5),
    ] {
        let reply = post(
            &api,
            &tracking(project_id, "mlflow/runs/log-metric"),
            json!({ "run_id": run_id, "run_uuid": run_id, "key": "m", "value": value, "timestamp": 5, "step": 0 }),
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let again = post(
        &api,
        &tracking(project_id, "mlflow/runs/log-metric"),
        json!({ "run_id": run_id, "key": "m", "value": 1.5, "timestamp": 5, "step": 0 }),
    );
    assert_eq!(again.status, 200);
    let history = api
        .get(&format!(
            "{}?run_id={run_id}&metric_key=m",
            tracking(project_id, "mlflow/metrics/get-history")
        ))
        .json();
    let values: Vec<Value> = history["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].clone())
        .collect();
    assert_eq!(values.len(), 4, "{history}");
    for expected in [
        json!("NaN"),
        json!("Infinity"),
        json!("-Infinity"),
        json!(1.5),
    ] {
        assert!(values.contains(&expected), "{expected} in {values:?}");
    }
}

#[test]
fn client_mistakes_are_4xx_in_mlflow_shape_and_unsupported_features_501() {
    let server = TestServer::start();
    let project_id = project(&server, "errors", "private");
    let api = Api::root(&server);
    let cases: Vec<(Reply, u16, &str)> = vec![
        (api.send("POST", &tracking(project_id, "mlflow/runs/create"), &[("Content-Type", "application/json")], b"{oops"), 400, "MALFORMED_REQUEST"),
        (api.send("POST", &tracking(project_id, "mlflow/runs/create"), &[("Content-Type", "application/json")], b"[1]"), 400, "MALFORMED_REQUEST"),
        (post(&api, &tracking(project_id, "mlflow/runs/log-metric"), json!({ "run_id": "0123", "key": "m", "value": 1 })), 404, "RESOURCE_DOES_NOT_EXIST"),
        (post(&api, &tracking(project_id, "mlflow/runs/log-metric"), json!({ "key": "m", "value": 1 })), 400, "INVALID_PARAMETER_VALUE"),
        (api.get(&format!("{}?name=nope", tracking(project_id, "mlflow/registered-models/get"))), 404, "RESOURCE_DOES_NOT_EXIST"),
        (api.get(&tracking(project_id, "mlflow/experiments/get?experiment_id=abc")), 404, "RESOURCE_DOES_NOT_EXIST"),
        (post(&api, &tracking(project_id, "mlflow/runs/search"), json!({ "experiment_ids": ["0"], "filter": "params.a = " })), 400, "INVALID_PARAMETER_VALUE"),
        (api.get(&tracking(project_id, "mlflow/no-such-endpoint")), 404, "ENDPOINT_NOT_FOUND"),
        (post(&api, &format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow-artifacts/mpu/create/1/x/artifacts/big"), json!({ "path": "big.bin", "num_parts": 2 })), 501, "NOT_IMPLEMENTED"),
        (api.get(&format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow-artifacts/presigned/1/x/artifacts/big.bin")), 501, "NOT_IMPLEMENTED"),
        (Api::with_token(&server, "bad-token").get(&tracking(project_id, "mlflow/experiments/get?experiment_id=1")), 401, "UNAUTHENTICATED"),
    ];
    for (i, (reply, status, code)) in cases.into_iter().enumerate() {
        assert_eq!(reply.status, status, "case {i}: {}", reply.text());
        assert_eq!(reply.json()["error_code"], code, "case {i}");
        assert!(reply.json()["message"].is_string(), "case {i}");
    }
}

#[test]
fn registry_writes_answer_200_and_deletes_take_json_bodies() {
    let server = TestServer::start();
    let project_id = project(&server, "registry", "private");
    let api = Api::root(&server);
    let created = post(
        &api,
        &tracking(project_id, "mlflow/registered-models/create"),
        json!({ "name": "m" }),
    );
    assert_eq!(created.status, 200);
    let version = post(
        &api,
        &tracking(project_id, "mlflow/model-versions/create"),
        json!({ "name": "m", "source": "s3://elsewhere" }),
    );
    assert_eq!(version.status, 200);
    let mv = &version.json()["model_version"];
    assert_eq!(
        (mv["version"].clone(), mv["status"].clone()),
        (json!("1"), json!("READY"))
    );
    // Its SemVer (1.0.0) is neither a tag nor an alias: MLflow clients see what they set.
    assert_eq!(
        (mv["aliases"].clone(), mv["tags"].clone()),
        (json!([]), json!([]))
    );
    let bad = post(
        &api,
        &tracking(project_id, "mlflow/model-versions/create"),
        json!({ "name": "m", "tags": [{ "key": "gitlab.version", "value": "1.2" }] }),
    );
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error_code"], "INVALID_PARAMETER_VALUE");
    assert!(bad.json()["message"]
        .as_str()
        .unwrap()
        .contains("semantic versioning"));
    let body = serde_json::to_vec(&json!({ "name": "m", "version": "1" })).unwrap();
    let deleted = api.send(
        "DELETE",
        &tracking(project_id, "mlflow/model-versions/delete"),
        &[("Content-Type", "application/json")],
        &body,
    );
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let body = serde_json::to_vec(&json!({ "name": "m" })).unwrap();
    let deleted = api.send(
        "DELETE",
        &tracking(project_id, "mlflow/registered-models/delete"),
        &[("Content-Type", "application/json")],
        &body,
    );
    assert_eq!(deleted.status, 200);
    assert_eq!(
        api.get(&format!(
            "{}?name=m",
            tracking(project_id, "mlflow/registered-models/get")
        ))
        .status,
        404
    );
}

#[test]
fn a_disabled_registry_hides_the_mlflow_api() {
    let server = TestServer::start();
    let project_id = project(&server, "off", "public");
    let api = Api::root(&server);
    assert_eq!(
        post(
            &api,
            &tracking(project_id, "mlflow/experiments/create"),
            json!({ "name": "x" })
        )
        .status,
        200
    );
    let off = api.put_json(
        &format!("/api/v4/projects/{project_id}"),
        json!({ "model_registry_access_level": "disabled" }),
    );
    assert_eq!(off.status, 200);
    let hidden = api.get(&tracking(
        project_id,
        "mlflow/experiments/get?experiment_id=1",
    ));
    assert_eq!(hidden.status, 404);
    assert_eq!(hidden.json()["error_code"], "RESOURCE_DOES_NOT_EXIST");
}
