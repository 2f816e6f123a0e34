//! Promotion policies against the real server: a model's rules (`metrics.auc >= 0.92`,
//! `ci_link`, `no_prerelease`) checked before a protected alias moves (single, multi-move,
//! rollback, MLflow's set alias) and before a version is sealed (explicitly, automatically).

mod common;

use common::*;
use serde_json::{json, Value};

fn mlflow(project_id: u64, rest: &str) -> String {
    format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow/{rest}")
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

/// Model `m` with `production` protected and the given rules.
fn model_with_rules(api: &Api, project_id: u64, rules: Value) {
    let made = api.post_json(&ml(project_id, "models"), json!({ "name": "m" }));
    assert_eq!(made.status, 201, "{}", made.text());
    let set = patch(
        api,
        &ml(project_id, "models/m"),
        json!({ "protected_aliases": ["production", "canary"], "promotion_rules": rules }),
    );
    assert_eq!(set.status, 200, "{}", set.text());
}

fn version(api: &Api, project_id: u64, body: Value) -> Value {
    let made = api.post_json(&ml(project_id, "models/m/versions"), body);
    assert_eq!(made.status, 201, "{}", made.text());
    made.json()
}

fn move_aliases(api: &Api, project_id: u64, moves: Value) -> Reply {
    api.put_json(
        &ml(project_id, "models/m/aliases"),
        json!({ "aliases": moves }),
    )
}

fn alias_target(api: &Api, project_id: u64, alias: &str) -> Option<String> {
    let aliases = api.get(&ml(project_id, "models/m/aliases")).json();
    aliases["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alias"] == alias)
        .map(|a| a["version"].as_str().unwrap().to_string())
}

fn log_metric(api: &Api, project_id: u64, run_id: &str, key: &str, value: f64, step: i64) {
    let logged = api.post_json(
        &mlflow(project_id, "runs/log-metric"),
        json!({ "run_id": run_id, "key": key, "value": value, "timestamp": 1_700_000_000_000i64 + step, "step": step }),
    );
    assert_eq!(logged.status, 200, "{}", logged.text());
}

/// A 409 whose `failed_rules` are exactly `rules` (in order), each named in the message.
fn assert_refused(reply: &Reply, rules: &[&str]) -> Value {
    assert_eq!(reply.status, 409, "{}", reply.text());
    let body = reply.json();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("409 Conflict - Promotion policy refused"),
        "{message}"
    );
    let failed: Vec<&str> = body["failed_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(failed, rules, "{body}");
    for rule in rules {
        assert!(message.contains(rule), "{rule} not named in {message}");
    }
    body
}

#[test]
fn a_metric_threshold_refuses_until_the_runs_latest_value_passes() {
    let server = TestServer::start();
    let project_id = project(&server, "metrics", "private");
    let api = Api::root(&server);
    model_with_rules(&api, project_id, json!(["metrics.auc>=0.92"]));
    // Kept in canonical spelling, readable in GET.
    let model = api.get(&ml(project_id, "models/m")).json();
    assert_eq!(model["promotion_rules"], json!(["metrics.auc >= 0.92"]));

    let v1 = version(&api, project_id, json!({ "version": "1.0.0" }));
    let run_id = v1["run_id"].as_str().unwrap().to_string();
    let production = json!([{ "alias": "production", "version": "1.0.0" }]);

    // No metric at all: the rule fails.
    let refused = assert_refused(
        &move_aliases(&api, project_id, production.clone()),
        &["metrics.auc >= 0.92"],
    );
    assert_eq!(
        refused["failed_rules"][0]["reason"],
        "the version's run has no metric 'auc'"
    );
    assert_eq!(refused["failed_rules"][0]["alias"], "production");
    assert_eq!(refused["failed_rules"][0]["version"], "1.0.0");

    // Below the threshold: the reason says the value.
    log_metric(&api, project_id, &run_id, "auc", 0.85, 1);
    let refused = assert_refused(
        &move_aliases(&api, project_id, production.clone()),
        &["metrics.auc >= 0.92"],
    );
    assert_eq!(
        refused["failed_rules"][0]["reason"],
        "metric 'auc' is 0.85, not >= 0.92"
    );
    assert_eq!(alias_target(&api, project_id, "production"), None);

    // The latest value (highest step) counts: a later good value passes.
    log_metric(&api, project_id, &run_id, "auc", 0.93, 2);
    let moved = move_aliases(&api, project_id, production);
    assert_eq!(moved.status, 200, "{}", moved.text());
    assert_eq!(
        alias_target(&api, project_id, "production").as_deref(),
        Some("1.0.0")
    );

    // A later value below it refuses again (the check reads the metric at each move).
    let v2 = version(&api, project_id, json!({ "version": "1.1.0" }));
    log_metric(
        &api,
        project_id,
        v2["run_id"].as_str().unwrap(),
        "auc",
        0.95,
        1,
    );
    log_metric(
        &api,
        project_id,
        v2["run_id"].as_str().unwrap(),
        "auc",
        0.91,
        2,
    );
    assert_refused(
        &move_aliases(
            &api,
            project_id,
            json!([{ "alias": "production", "version": "1.1.0" }]),
        ),
        &["metrics.auc >= 0.92"],
    );
    // The refusal is in the audit log, against the version, with the failed rule.
    let audit = api
        .get(&format!(
            "/api/v4/projects/{project_id}/audit_events?entity_type=ModelVersion"
        ))
        .json();
    let refusal = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "model_version_promotion_refused")
        .unwrap_or_else(|| panic!("no refusal audited: {audit}"));
    assert_eq!(refusal["entity_id"], v2["id"]);
    assert!(refusal["details"]["custom_message"]
        .as_str()
        .unwrap()
        .contains("metrics.auc >= 0.92"));
}

#[test]
fn mlflow_set_alias_and_rollback_are_checked_too() {
    let server = TestServer::start();
    let project_id = project(&server, "mlflow", "private");
    let api = Api::root(&server);
    model_with_rules(&api, project_id, json!(["metrics.auc >= 0.92"]));
    let good = version(&api, project_id, json!({ "version": "1.0.0" }));
    log_metric(
        &api,
        project_id,
        good["run_id"].as_str().unwrap(),
        "auc",
        0.97,
        0,
    );
    let bad = version(&api, project_id, json!({ "version": "1.1.0" }));
    log_metric(
        &api,
        project_id,
        bad["run_id"].as_str().unwrap(),
        "auc",
        0.5,
        0,
    );

    // MLflow: its error shape, the rule in the message. 1.1.0 is MLflow's version 2.
    let set = api.post_json(
        &mlflow(project_id, "registered-models/alias"),
        json!({ "name": "m", "alias": "production", "version": "2" }),
    );
    assert_eq!(set.status, 409, "{}", set.text());
    let body = set.json();
    assert_eq!(body["error_code"], "INVALID_STATE");
    assert!(body["message"].as_str().unwrap().contains(
        "metrics.auc >= 0.92 (alias production -> 1.1.0: metric 'auc' is 0.5, not >= 0.92)"
    ));
    let set = api.post_json(
        &mlflow(project_id, "registered-models/alias"),
        json!({ "name": "m", "alias": "production", "version": "1" }),
    );
    assert_eq!(set.status, 200, "{}", set.text());

    // A rollback to a version the policy refuses is refused: the alias stays.
    patch(
        &api,
        &ml(project_id, "models/m"),
        json!({ "promotion_rules": [] }),
    );
    assert_eq!(
        move_aliases(
            &api,
            project_id,
            json!([{ "alias": "production", "version": "1.1.0" }])
        )
        .status,
        200
    );
    let made = patch(
        &api,
        &ml(project_id, "models/m"),
        json!({ "promotion_rules": ["metrics.auc < 0.9"] }),
    );
    assert_eq!(made.status, 200, "{}", made.text());
    let rollback = api.post_json(
        &ml(project_id, "models/m/aliases/production/rollback"),
        json!({}),
    );
    assert_refused(&rollback, &["metrics.auc < 0.9"]);
    assert_eq!(
        alias_target(&api, project_id, "production").as_deref(),
        Some("1.1.0")
    );
}

#[test]
fn a_ci_link_is_required_when_the_rule_says_so() {
    let server = TestServer::start();
    let project_id = project(&server, "ci", "private");
    let api = Api::root(&server);
    model_with_rules(&api, project_id, json!(["ci_link"]));
    let v1 = version(&api, project_id, json!({ "version": "1.0.0" }));
    let refused = assert_refused(
        &move_aliases(
            &api,
            project_id,
            json!([{ "alias": "production", "version": "1.0.0" }]),
        ),
        &["ci_link"],
    );
    assert!(refused["failed_rules"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("no CI job link"));
    // The job's tags on the version's run link it: now it passes.
    let tagged = api.post_json(
        &mlflow(project_id, "runs/set-tag"),
        json!({ "run_id": v1["run_id"], "key": "gitlab.CI_JOB_ID", "value": "4242" }),
    );
    assert_eq!(tagged.status, 200, "{}", tagged.text());
    let moved = move_aliases(
        &api,
        project_id,
        json!([{ "alias": "production", "version": "1.0.0" }]),
    );
    assert_eq!(moved.status, 200, "{}", moved.text());
    // A version created with its CI job passes at once.
    version(
        &api,
        project_id,
        json!({ "version": "1.1.0", "ci_job": { "job_id": "77", "url": "https://gitlab.example.com/g/p/-/jobs/77" } }),
    );
    let moved = move_aliases(
        &api,
        project_id,
        json!([{ "alias": "production", "version": "1.1.0" }]),
    );
    assert_eq!(moved.status, 200, "{}", moved.text());
}

#[test]
fn prereleases_are_refused_and_releases_pass() {
    let server = TestServer::start();
    let project_id = project(&server, "pre", "private");
    let api = Api::root(&server);
    model_with_rules(&api, project_id, json!(["no_prerelease"]));
    version(&api, project_id, json!({ "version": "2.0.0-rc.1" }));
    version(&api, project_id, json!({ "version": "2.0.0" }));
    let refused = assert_refused(
        &move_aliases(
            &api,
            project_id,
            json!([{ "alias": "production", "version": "2.0.0-rc.1" }]),
        ),
        &["no_prerelease"],
    );
    assert_eq!(
        refused["failed_rules"][0]["reason"],
        "2.0.0-rc.1 is a prerelease (rc.1)"
    );
    let moved = move_aliases(
        &api,
        project_id,
        json!([{ "alias": "production", "version": "2.0.0" }]),
    );
    assert_eq!(moved.status, 200, "{}", moved.text());
}

#[test]
fn a_refused_multi_move_moves_nothing_and_names_every_failure() {
    let server = TestServer::start();
    let project_id = project(&server, "multi", "private");
    let api = Api::root(&server);
    model_with_rules(&api, project_id, json!(["no_prerelease", "ci_link"]));
    version(
        &api,
        project_id,
        json!({ "version": "1.0.0", "ci_job": { "job_id": "1" } }),
    );
    version(&api, project_id, json!({ "version": "1.1.0-rc.1" }));
    let before = alias_target(&api, project_id, "staging");
    let refused = assert_refused(
        &move_aliases(
            &api,
            project_id,
            json!([
                { "alias": "staging", "version": "1.1.0-rc.1" },
                { "alias": "production", "version": "1.0.0" },
                { "alias": "canary", "version": "1.1.0-rc.1" },
            ]),
        ),
        &["no_prerelease", "ci_link"],
    );
    // Both failures are the canary's; production's move passed its rules and still did not
    // happen, nor did the unprotected staging move.
    for failed in refused["failed_rules"].as_array().unwrap() {
        assert_eq!(failed["alias"], "canary");
        assert_eq!(failed["version"], "1.1.0-rc.1");
    }
    assert!(refused["message"]
        .as_str()
        .unwrap()
        .contains("nothing was changed"));
    assert_eq!(alias_target(&api, project_id, "staging"), before);
    assert_eq!(alias_target(&api, project_id, "production"), None);
    assert_eq!(alias_target(&api, project_id, "canary"), None);
    let history = api
        .get(&ml(project_id, "models/m/aliases/production/history"))
        .json();
    assert_eq!(history, json!([]));
    // Two protected aliases to one refused version: each alias's failures are named, and the
    // version's refusal is audited once per request.
    let refused = assert_refused(
        &move_aliases(
            &api,
            project_id,
            json!([
                { "alias": "production", "version": "1.1.0-rc.1" },
                { "alias": "canary", "version": "1.1.0-rc.1" },
            ]),
        ),
        &["no_prerelease", "ci_link", "no_prerelease", "ci_link"],
    );
    let aliases: Vec<&str> = refused["failed_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["alias"].as_str().unwrap())
        .collect();
    assert_eq!(aliases, ["production", "production", "canary", "canary"]);
    let audit = api
        .get(&format!(
            "/api/v4/projects/{project_id}/audit_events?entity_type=ModelVersion"
        ))
        .json();
    let refusals = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "model_version_promotion_refused")
        .count();
    assert_eq!(refusals, 2, "{audit}");
    // Without the canary, the rest moves.
    let moved = move_aliases(
        &api,
        project_id,
        json!([
            { "alias": "staging", "version": "1.1.0-rc.1" },
            { "alias": "production", "version": "1.0.0" },
        ]),
    );
    assert_eq!(moved.status, 200, "{}", moved.text());
}

#[test]
fn unprotected_aliases_and_deletes_are_not_checked() {
    let server = TestServer::start();
    let project_id = project(&server, "free", "private");
    let api = Api::root(&server);
    model_with_rules(
        &api,
        project_id,
        json!(["metrics.auc >= 0.92", "ci_link", "no_prerelease"]),
    );
    version(&api, project_id, json!({ "version": "0.1.0-alpha" }));
    let moved = move_aliases(
        &api,
        project_id,
        json!([{ "alias": "champion", "version": "0.1.0-alpha" }]),
    );
    assert_eq!(moved.status, 200, "{}", moved.text());
    let set = api.post_json(
        &mlflow(project_id, "registered-models/alias"),
        json!({ "name": "m", "alias": "challenger", "version": "1" }),
    );
    assert_eq!(set.status, 200, "{}", set.text());
    // A protected alias put there before the rules were set is deleted without a check.
    patch(
        &api,
        &ml(project_id, "models/m"),
        json!({ "promotion_rules": [] }),
    );
    assert_eq!(
        move_aliases(
            &api,
            project_id,
            json!([{ "alias": "production", "version": "0.1.0-alpha" }])
        )
        .status,
        200
    );
    patch(
        &api,
        &ml(project_id, "models/m"),
        json!({ "promotion_rules": ["ci_link"] }),
    );
    let deleted = move_aliases(
        &api,
        project_id,
        json!([{ "alias": "production", "version": null }]),
    );
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(alias_target(&api, project_id, "production"), None);
}

#[test]
fn a_seal_is_refused_until_the_version_passes_and_auto_seal_leaves_it_unsealed() {
    let server = TestServer::start();
    let project_id = project(&server, "seal", "private");
    let api = Api::root(&server);
    model_with_rules(&api, project_id, json!(["metrics.auc >= 0.92"]));
    let v1 = version(&api, project_id, json!({ "version": "1.0.0" }));
    let seal = api.post_json(&ml(project_id, "models/m/versions/1.0.0/seal"), json!({}));
    let refused = assert_refused(&seal, &["metrics.auc >= 0.92"]);
    assert!(refused["message"]
        .as_str()
        .unwrap()
        .contains("version 1.0.0 of model 'm' was not sealed"));
    assert!(refused["failed_rules"][0].get("alias").is_none());
    let shown = api.get(&ml(project_id, "models/m/versions/1.0.0")).json();
    assert_eq!(shown["sealed"], false, "{shown}");
    log_metric(
        &api,
        project_id,
        v1["run_id"].as_str().unwrap(),
        "auc",
        0.99,
        0,
    );
    let seal = api.post_json(&ml(project_id, "models/m/versions/1.0.0/seal"), json!({}));
    assert_eq!(seal.status, 200, "{}", seal.text());
    assert_eq!(seal.json()["sealed"], true, "{}", seal.text());

    // Automatic sealing on promotion: a candidate failing the rules becomes an unsealed
    // version (the refusal audited); a passing one is sealed as it is promoted.
    let set = patch(
        &api,
        &ml(project_id, "models/m"),
        json!({ "auto_seal": "on_promote" }),
    );
    assert_eq!(set.status, 200, "{}", set.text());
    let experiment = api.get(&ml(project_id, "models/m")).json()["experiment_iid"].clone();
    let mut promoted = Vec::new();
    for (auc, version) in [(0.5, "1.1.0"), (0.95, "1.2.0")] {
        let candidate = api.post_json(
            &ml(project_id, &format!("experiments/{experiment}/candidates")),
            json!({ "metrics": [{ "key": "auc", "value": auc }] }),
        );
        assert_eq!(candidate.status, 201, "{}", candidate.text());
        let iid = candidate.json()["iid"].as_u64().unwrap();
        let made = api.post_json(
            &ml(project_id, &format!("candidates/{iid}/promote")),
            json!({ "version": version }),
        );
        assert_eq!(made.status, 201, "{}", made.text());
        promoted.push(made.json());
    }
    assert_eq!(promoted[0]["sealed"], false, "{}", promoted[0]);
    assert_eq!(promoted[1]["sealed"], true, "{}", promoted[1]);
    let audit = api
        .get(&format!(
            "/api/v4/projects/{project_id}/audit_events?entity_type=ModelVersion"
        ))
        .json();
    let refusals: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "model_version_seal_refused")
        .collect();
    assert_eq!(refusals.len(), 2, "{audit}");
    assert_eq!(refusals[0]["entity_id"], promoted[0]["id"]);
}

#[test]
fn bad_rules_are_refused_by_name_and_only_maintainers_set_them() {
    let server = TestServer::start();
    let project_id = project(&server, "bad", "private");
    let api = Api::root(&server);
    let made = api.post_json(&ml(project_id, "models"), json!({ "name": "m" }));
    assert_eq!(made.status, 201);
    for (rule, problem) in [
        ("auc >= 0.92", "is not a rule"),
        ("metrics.auc => 0.92", "unknown comparison"),
        ("metrics.auc >= lots", "not a finite number"),
        ("metrics.auc", "has no comparison"),
        ("ci", "is not a rule"),
    ] {
        let refused = patch(
            &api,
            &ml(project_id, "models/m"),
            json!({ "promotion_rules": ["ci_link", rule] }),
        );
        assert_eq!(refused.status, 400, "{rule}: {}", refused.text());
        let error = refused.json()["error"].as_str().unwrap().to_string();
        assert!(
            error.starts_with(&format!("promotion_rules rule '{rule}'")) && error.contains(problem),
            "{rule}: {error}"
        );
    }
    let wrong_type = patch(
        &api,
        &ml(project_id, "models/m"),
        json!({ "promotion_rules": "ci_link" }),
    );
    assert_eq!(wrong_type.status, 400, "{}", wrong_type.text());
    // Nothing was kept.
    assert_eq!(
        api.get(&ml(project_id, "models/m")).json()["promotion_rules"],
        json!([])
    );
    // A Developer may not set them.
    let (dev, token) = user_with_token(&server, "dev", "api");
    add_member(&server, project_id, dev, 30);
    let developer = Api::with_token(&server, &token);
    let denied = patch(
        &developer,
        &ml(project_id, "models/m"),
        json!({ "promotion_rules": ["ci_link"] }),
    );
    assert_eq!(denied.status, 403, "{}", denied.text());
    let maintainer_set = patch(
        &api,
        &ml(project_id, "models/m"),
        json!({ "promotion_rules": ["ci_link"] }),
    );
    assert_eq!(maintainer_set.status, 200);
    // The OpenAPI document describes the setting.
    let document = api.get("/api/v4/ml/openapi.json").json();
    let update = &document["components"]["schemas"]["UpdateModel"]["properties"];
    assert!(update["promotion_rules"].is_object(), "{update}");
    assert!(document["components"]["schemas"]["PolicyRefusalView"].is_object());
}
