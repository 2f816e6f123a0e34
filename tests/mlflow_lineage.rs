//! The run page shows what MLflow recorded about a run: its dataset and model inputs, and the
//! versions registered from it (issue #14 causes 2 and 8).

mod common;

use common::*;
use serde_json::{json, Value};

fn tracking(project_id: u64, path: &str) -> String {
    format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow/{path}")
}

fn ok(reply: Reply) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

/// A run of the Default experiment: its run id and per-project iid.
fn new_run(api: &Api, project_id: u64) -> (String, u64) {
    let run = ok(api.post_json(
        &tracking(project_id, "runs/create"),
        json!({ "experiment_id": "0", "run_name": "trainer" }),
    ));
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let candidates = ok(api.get(&format!("/api/v4/projects/{project_id}/ml/experiments")));
    let experiment = candidates
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "Default")
        .expect("the Default experiment")["iid"]
        .as_u64()
        .unwrap();
    let runs = ok(api.get(&format!(
        "/api/v4/projects/{project_id}/ml/experiments/{experiment}/candidates"
    )));
    let iid = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["run_id"] == run_id.as_str())
        .expect("the run")["iid"]
        .as_u64()
        .unwrap();
    (run_id, iid)
}

#[test]
fn the_run_page_lists_its_dataset_inputs() {
    let server = TestServer::start();
    let project_id = project(&server, "lineage", "public");
    let api = Api::root(&server);
    let (run_id, iid) = new_run(&api, project_id);
    let dataset = json!({
        "name": "wine-train", "digest": "a1b2c3", "source_type": "s3",
        "source": "{\"uri\": \"s3://b/wine.csv\"}", "schema": "{}", "profile": "{\"num_rows\": 3}"
    });
    ok(api.post_json(
        &tracking(project_id, "runs/log-inputs"),
        json!({ "run_id": run_id, "datasets": [{ "tags": [{"key": "mlflow.data.context", "value": "training"}], "dataset": dataset }] }),
    ));
    let run = ok(api.get(&format!(
        "{}?run_id={run_id}",
        tracking(project_id, "runs/get")
    )));
    assert_eq!(
        run["run"]["inputs"]["dataset_inputs"][0]["dataset"],
        dataset
    );
    let page = Api::anonymous(&server)
        .get(&format!("/root/lineage/-/ml/candidates/{iid}"))
        .text();
    let section = &page[page.find("id=\"datasets\"").expect("a datasets table")..];
    assert!(section.contains(">wine-train<") && section.contains(">a1b2c3<"));
    assert!(section.contains(">training<"));
}

#[test]
fn a_version_registered_from_a_run_is_linked_both_ways() {
    let server = TestServer::start();
    let project_id = project(&server, "linked", "public");
    let api = Api::root(&server);
    let (run_id, iid) = new_run(&api, project_id);
    ok(api.post_json(
        &tracking(project_id, "registered-models/create"),
        json!({ "name": "scorer" }),
    ));
    let mv = ok(api.post_json(
        &tracking(project_id, "model-versions/create"),
        json!({ "name": "scorer", "source": format!("runs:/{run_id}/model"), "run_id": run_id }),
    ));
    assert_eq!(mv["model_version"]["run_id"], run_id.as_str());
    let run_page = Api::anonymous(&server)
        .get(&format!("/root/linked/-/ml/candidates/{iid}"))
        .text();
    let registered = &run_page[run_page
        .find("id=\"registered\"")
        .expect("the versions made from the run")..];
    assert!(registered.contains("Registered as model"), "{registered}");
    assert!(registered.contains(">scorer<") && registered.contains(">1 (1.0.0)<"));
    let model = ok(api.get(&format!("/api/v4/projects/{project_id}/ml/models/scorer")));
    let version = ok(api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/scorer/versions/1.0.0"
    )));
    let version_page = Api::anonymous(&server)
        .get(&format!(
            "/root/linked/-/ml/models/{}/versions/{}",
            model["id"], version["id"]
        ))
        .text();
    let source = &version_page[version_page
        .find("id=\"source-run\"")
        .expect("the source run")..];
    assert!(source.contains(&format!("href=\"/root/linked/-/ml/candidates/{iid}\"")));

    // A run of another project is named on the version page, never linked or shown.
    let other = project(&server, "other", "public");
    let (foreign, _) = new_run(&api, other);
    ok(api.post_json(
        &tracking(project_id, "model-versions/create"),
        json!({ "name": "scorer", "source": format!("runs:/{foreign}/model"), "run_id": foreign }),
    ));
    let second = ok(api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/scorer/versions/1.0.1"
    )));
    let page = Api::anonymous(&server)
        .get(&format!(
            "/root/linked/-/ml/models/{}/versions/{}",
            model["id"], second["id"]
        ))
        .text();
    let source = &page[page.find("id=\"source-run\"").expect("the source run")..];
    assert!(source.contains(&foreign) && !source[..200.min(source.len())].contains("href"));
}
