//! SemVer checked against the `MLmodel` signature over a real socket: per-model policy `off`,
//! `warn` (the finding is on the version, in the API and the UI) and `enforce` (400 naming the
//! field and the bump it needs; nothing recorded).

mod common;

use common::*;
use serde_json::{json, Value};

fn mlmodel(inputs: &str, outputs: &str) -> Vec<u8> {
    format!(
        "artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.sklearn\nmlflow_version: 2.22.0\nsignature:\n  inputs: '{inputs}'\n  outputs: '{outputs}'\n  params: null\nutc_time_created: '2026-01-01 00:00:00.000000'\n"
    )
    .into_bytes()
}

const INPUTS: &str = r#"[{"type": "double", "name": "amount", "required": true}, {"type": "string", "name": "country", "required": false}]"#;
const WITH_OPTIONAL: &str = r#"[{"type": "double", "name": "amount", "required": true}, {"type": "string", "name": "country", "required": false}, {"type": "long", "name": "age", "required": false}]"#;
const OUTPUTS: &str = r#"[{"type": "double", "name": "score", "required": true}]"#;

fn upload(api: &Api, project_id: u64, version: &str, body: &[u8]) -> Reply {
    api.put_bytes(
        &format!("/api/v4/projects/{project_id}/packages/generic/scorer/{version}/MLmodel"),
        body,
    )
}

fn policy(api: &Api, project_id: u64, value: &str) -> Reply {
    api.send(
        "PATCH",
        &format!("/api/v4/projects/{project_id}/ml/models/scorer"),
        &[("Content-Type", "application/json")],
        json!({ "signature_policy": value }).to_string().as_bytes(),
    )
}

fn version(api: &Api, project_id: u64, version: &str) -> Reply {
    api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/scorer/versions/{version}"
    ))
}

#[test]
fn signature_changes_warn_or_are_enforced_with_the_bump_named() {
    let server = TestServer::start();
    let project_id = project(&server, "signatures", "public");
    let api = Api::root(&server);
    let (reporter_id, reporter) = user_with_token(&server, "reporter", "api");
    add_member(&server, project_id, reporter_id, 20);
    let reporter = Api::with_token(&server, &reporter);
    let created = api.post_json(
        &format!("/api/v4/projects/{project_id}/ml/models"),
        json!({ "name": "scorer" }),
    );
    assert_eq!(created.status, 201);
    assert_eq!(created.json()["signature_policy"], "off");
    assert_eq!(
        upload(&reporter, project_id, "1.0.0", &mlmodel(INPUTS, OUTPUTS)).status,
        201
    );
    // off: anything goes, nothing recorded.
    let off = upload(&reporter, project_id, "1.0.1", &mlmodel(INPUTS, "[]"));
    assert_eq!(off.status, 201, "{}", off.text());
    assert_eq!(
        version(&api, project_id, "1.0.1").json()["signature_warning"],
        Value::Null
    );
    // The policy is a Maintainer's, with known values only.
    assert_eq!(policy(&reporter, project_id, "warn").status, 403);
    assert_eq!(policy(&api, project_id, "strict").status, 400);
    let set = policy(&api, project_id, "warn");
    assert_eq!(set.status, 200, "{}", set.text());
    assert_eq!(set.json()["signature_policy"], "warn");

    // warn: a new optional input in a patch release is accepted and recorded.
    let warned = upload(
        &reporter,
        project_id,
        "1.0.2",
        &mlmodel(WITH_OPTIONAL, OUTPUTS),
    );
    assert_eq!(warned.status, 201, "{}", warned.text());
    let shown = version(&api, project_id, "1.0.2").json();
    let warning = &shown["signature_warning"];
    assert_eq!(warning["previous"], "1.0.1", "{shown}");
    assert_eq!(warning["required_bump"], "minor");
    assert_eq!(warning["actual_bump"], "patch");
    // Against 1.0.1 (no outputs): `score` is a new output, `age` a new optional input.
    let fields: Vec<&str> = warning["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["inputs.age", "outputs.score"], "{warning}");
    // A corrected MLmodel replaces the finding: the warning is gone.
    let corrected = upload(&reporter, project_id, "1.0.2", &mlmodel(INPUTS, "[]"));
    assert_eq!(corrected.status, 201);
    assert_eq!(
        version(&api, project_id, "1.0.2").json()["signature_warning"],
        Value::Null
    );
    let again = upload(
        &reporter,
        project_id,
        "1.0.2",
        &mlmodel(WITH_OPTIONAL, OUTPUTS),
    );
    assert_eq!(again.status, 201);
    assert_eq!(
        version(&api, project_id, "1.0.2").json()["signature_warning"]["required_bump"],
        "minor"
    );
    // A minor release with a new optional input passes (against 1.0.2).
    let minor = upload(
        &reporter,
        project_id,
        "1.1.0",
        &mlmodel(WITH_OPTIONAL, OUTPUTS),
    );
    assert_eq!(minor.status, 201);
    assert_eq!(
        version(&api, project_id, "1.1.0").json()["signature_warning"],
        Value::Null
    );
    let optional = upload(
        &reporter,
        project_id,
        "1.1.1",
        &mlmodel(
            r#"[{"type": "double", "name": "amount", "required": true}, {"type": "string", "name": "country", "required": false}, {"type": "long", "name": "age", "required": false}, {"type": "string", "name": "channel", "required": false}]"#,
            OUTPUTS,
        ),
    );
    assert_eq!(optional.status, 201);
    let warning = &version(&api, project_id, "1.1.1").json()["signature_warning"];
    assert_eq!(warning["required_bump"], "minor");
    assert_eq!(warning["changes"][0]["field"], "inputs.channel");
    assert_eq!(warning["changes"][0]["needs"], "minor");
    assert!(warning["message"]
        .as_str()
        .unwrap()
        .contains("inputs.channel is a new optional input (needs a minor bump)"));
    // The UI shows the warning.
    let model = api
        .get(&format!("/api/v4/projects/{project_id}/ml/models/scorer"))
        .json();
    let page = Api::anonymous(&server)
        .get(&format!(
            "/root/signatures/-/ml/models/{}/versions/{}",
            model["id"],
            version(&api, project_id, "1.1.1").json()["id"]
        ))
        .text();
    assert!(page.contains("signature-warning"), "{page}");
    assert!(page.contains("inputs.channel is a new optional input"));

    // enforce: a removed output in a minor release is refused, naming the field and the bump;
    // neither the file nor the version is recorded.
    assert_eq!(policy(&api, project_id, "enforce").status, 200);
    let refused = upload(
        &reporter,
        project_id,
        "1.2.0",
        &mlmodel(WITH_OPTIONAL, "[]"),
    );
    assert_eq!(refused.status, 400, "{}", refused.text());
    let message = refused.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("outputs.score was removed (needs a major bump)")
            && message.contains("minor bump from 1.1.1"),
        "{message}"
    );
    assert_eq!(version(&api, project_id, "1.2.0").status, 404);
    // A changed type or a new required input in an existing version's MLmodel: refused too.
    let typed = upload(
        &reporter,
        project_id,
        "1.1.1",
        &mlmodel(
            r#"[{"type": "float", "name": "amount", "required": true}, {"type": "long", "name": "zip", "required": true}]"#,
            OUTPUTS,
        ),
    );
    assert_eq!(typed.status, 400, "{}", typed.text());
    let message = typed.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("inputs.amount changed type from double to float"),
        "{message}"
    );
    assert!(message.contains("inputs.zip is a new required input (needs a major bump)"));
    // The major release is accepted.
    let major = upload(
        &reporter,
        project_id,
        "2.0.0",
        &mlmodel(WITH_OPTIONAL, "[]"),
    );
    assert_eq!(major.status, 201, "{}", major.text());
    let patch = upload(&reporter, project_id, "2.0.1", &mlmodel(INPUTS, "[]"));
    assert_eq!(
        patch.status,
        400,
        "removing inputs.age in a patch: {}",
        patch.text()
    );
}

#[test]
fn mlflow_model_versions_from_a_run_are_checked_too() {
    let server = TestServer::start();
    let project_id = project(&server, "mlflow-signatures", "private");
    let api = Api::root(&server);
    let base = format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0");
    let created = api.post_json(
        &format!("{base}/mlflow/registered-models/create"),
        json!({ "name": "scorer" }),
    );
    assert_eq!(created.status, 200, "{}", created.text());
    assert_eq!(policy(&api, project_id, "enforce").status, 200);
    let experiment = api.post_json(
        &format!("{base}/mlflow/experiments/create"),
        json!({ "name": "runs" }),
    );
    let experiment_id = experiment.json()["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    // A run logs its model (an MLmodel), then the model version is created from it.
    let register = |outputs: &str| -> Reply {
        let run = api.post_json(
            &format!("{base}/mlflow/runs/create"),
            json!({ "experiment_id": experiment_id }),
        );
        let run_id = run.json()["run"]["info"]["run_id"]
            .as_str()
            .unwrap()
            .to_string();
        let put = api.put_bytes(
            &format!(
                "{base}/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/model/MLmodel"
            ),
            &mlmodel(INPUTS, outputs),
        );
        assert_eq!(put.status, 200, "{}", put.text());
        api.post_json(
            &format!("{base}/mlflow/model-versions/create"),
            json!({ "name": "scorer", "source": format!("runs:/{run_id}/model"), "run_id": run_id }),
        )
    };
    let first = register(OUTPUTS);
    assert_eq!(first.status, 200, "{}", first.text());
    // The next one (an automatic patch, 1.0.1) drops the output: refused in MLflow's shape.
    let refused = register("[]");
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(refused.json()["error_code"], "INVALID_PARAMETER_VALUE");
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("outputs.score was removed (needs a major bump)"),
        "{}",
        refused.text()
    );
    let versions = api.get(&format!(
        "/api/v4/projects/{project_id}/ml/models/scorer/versions"
    ));
    assert_eq!(versions.json().as_array().unwrap().len(), 1);
}
