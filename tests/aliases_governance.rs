//! Alias history, rollback, protected aliases and atomic multi-moves, through the native API and
//! MLflow's `registered-models/alias`, against the real server.

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

fn model_with_versions(api: &Api, project_id: u64) {
    let made = api.post_json(&ml(project_id, "models"), json!({ "name": "m" }));
    assert_eq!(made.status, 201, "{}", made.text());
    for version in ["1.0.0", "1.1.0", "2.0.0"] {
        let made = api.post_json(
            &ml(project_id, "models/m/versions"),
            json!({ "version": version }),
        );
        assert_eq!(made.status, 201, "{}", made.text());
    }
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

fn move_aliases(api: &Api, project_id: u64, moves: Value) -> Reply {
    api.put_json(
        &ml(project_id, "models/m/aliases"),
        json!({ "aliases": moves }),
    )
}

#[test]
fn every_alias_move_is_kept_and_rollback_moves_it_back() {
    let server = TestServer::start();
    let project_id = project(&server, "history", "private");
    let api = Api::root(&server);
    model_with_versions(&api, project_id);

    let first = move_aliases(
        &api,
        project_id,
        json!([{ "alias": "champion", "version": "1.0.0", "reason": "first cut" }]),
    );
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json()["moves"][0]["from_version"], Value::Null);
    // MLflow's set_registered_model_alias goes through the same history.
    let set = api.post_json(
        &mlflow(project_id, "registered-models/alias"),
        // MLflow names versions by number: 1.1.0 is version 2.
        json!({ "name": "m", "alias": "champion", "version": "2" }),
    );
    assert_eq!(set.status, 200, "{}", set.text());
    let third = move_aliases(
        &api,
        project_id,
        json!([{ "alias": "champion", "version": "2.0.0", "reason": "major" }]),
    );
    assert_eq!(third.status, 200, "{}", third.text());
    // A move to where the alias already is changes nothing and is not history.
    assert_eq!(
        move_aliases(
            &api,
            project_id,
            json!([{ "alias": "champion", "version": "2.0.0" }])
        )
        .status,
        200
    );

    let history = api.get(&ml(
        project_id,
        "models/m/aliases/champion/history?per_page=2",
    ));
    assert_eq!(history.status, 200, "{}", history.text());
    assert_eq!(history.header("x-total"), Some("3"));
    let page = history.json();
    assert_eq!(page.as_array().unwrap().len(), 2);
    assert_eq!(page[0]["from_version"], "1.1.0");
    assert_eq!(page[0]["to_version"], "2.0.0");
    assert_eq!(page[0]["reason"], "major");
    assert_eq!(page[0]["user"]["username"], "root");
    assert!(page[0]["created_at"].is_string());
    assert_eq!(page[1]["from_version"], "1.0.0");
    assert_eq!(page[1]["to_version"], "1.1.0");
    let older = api
        .get(&ml(
            project_id,
            "models/m/aliases/champion/history?per_page=2&page=2",
        ))
        .json();
    assert_eq!(older[0]["to_version"], "1.0.0");
    assert_eq!(older[0]["reason"], "first cut");

    let rolled = api.post_json(
        &ml(project_id, "models/m/aliases/champion/rollback"),
        json!({ "reason": "2.0.0 breaks eu" }),
    );
    assert_eq!(rolled.status, 200, "{}", rolled.text());
    assert_eq!(rolled.json()["from_version"], "2.0.0");
    assert_eq!(rolled.json()["to_version"], "1.1.0");
    assert_eq!(
        alias_target(&api, project_id, "champion").as_deref(),
        Some("1.1.0")
    );
    let got = api.get(&format!(
        "{}?name=m&alias=champion",
        mlflow(project_id, "registered-models/alias")
    ));
    // MLflow numbers versions in order of creation: 1.1.0 is version 2.
    assert_eq!(
        got.json()["model_version"]["version"],
        "2",
        "{}",
        got.text()
    );
    let history = api.get(&ml(project_id, "models/m/aliases/champion/history"));
    assert_eq!(history.header("x-total"), Some("4"));
    assert_eq!(history.json()[0]["reason"], "2.0.0 breaks eu");

    // Deleting is a move to nothing; an alias without history has nothing to roll back.
    let deleted = move_aliases(
        &api,
        project_id,
        json!([{ "alias": "champion", "version": null }]),
    );
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(alias_target(&api, project_id, "champion"), None);
    let history = api
        .get(&ml(project_id, "models/m/aliases/champion/history"))
        .json();
    assert_eq!(history[0]["to_version"], Value::Null);
    assert_eq!(
        api.post_json(
            &ml(project_id, "models/m/aliases/never/rollback"),
            json!({})
        )
        .status,
        404
    );
    // Bad input: a clear 4xx.
    assert_eq!(move_aliases(&api, project_id, json!([])).status, 400);
    assert_eq!(
        move_aliases(
            &api,
            project_id,
            json!([{ "alias": "latest", "version": "1.0.0" }])
        )
        .status,
        400
    );
    assert_eq!(
        move_aliases(
            &api,
            project_id,
            json!([{ "alias": "x", "version": "9.9.9" }])
        )
        .status,
        404
    );
    assert_eq!(
        move_aliases(
            &api,
            project_id,
            json!([{ "alias": "x", "version": "1.0.0" }, { "alias": "x", "version": "1.1.0" }])
        )
        .status,
        400
    );
}

#[test]
fn a_protected_alias_is_moved_by_maintainers_only() {
    let server = TestServer::start();
    let project_id = project(&server, "guarded", "private");
    let api = Api::root(&server);
    model_with_versions(&api, project_id);
    let (dev_id, dev_token) = user_with_token(&server, "dev", "api");
    add_member(&server, project_id, dev_id, 30);
    let (boss_id, boss_token) = user_with_token(&server, "boss", "api");
    add_member(&server, project_id, boss_id, 40);
    let dev = Api::with_token(&server, &dev_token);
    let boss = Api::with_token(&server, &boss_token);

    // Only Maintainers protect aliases.
    let refused = patch(
        &dev,
        &ml(project_id, "models/m"),
        json!({ "protected_aliases": ["production"] }),
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    let protected = patch(
        &boss,
        &ml(project_id, "models/m"),
        json!({ "protected_aliases": ["production"] }),
    );
    assert_eq!(protected.status, 200, "{}", protected.text());
    assert_eq!(protected.json()["protected_aliases"], json!(["production"]));

    let refused = move_aliases(
        &dev,
        project_id,
        json!([{ "alias": "production", "version": "1.0.0" }]),
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("protected"),
        "{}",
        refused.text()
    );
    let through_mlflow = dev.post_json(
        &mlflow(project_id, "registered-models/alias"),
        json!({ "name": "m", "alias": "production", "version": "1" }),
    );
    assert_eq!(through_mlflow.status, 403, "{}", through_mlflow.text());
    assert_eq!(through_mlflow.json()["error_code"], "PERMISSION_DENIED");
    assert_eq!(alias_target(&api, project_id, "production"), None);

    // Other aliases stay the Developer's; the Maintainer moves production.
    assert_eq!(
        move_aliases(
            &dev,
            project_id,
            json!([{ "alias": "staging", "version": "1.1.0" }])
        )
        .status,
        200
    );
    let moved = move_aliases(
        &boss,
        project_id,
        json!([{ "alias": "production", "version": "1.0.0" }]),
    );
    assert_eq!(moved.status, 200, "{}", moved.text());
    assert_eq!(
        alias_target(&api, project_id, "production").as_deref(),
        Some("1.0.0")
    );
    // Nor may a Developer delete or roll it back.
    assert_eq!(
        move_aliases(
            &dev,
            project_id,
            json!([{ "alias": "production", "version": null }])
        )
        .status,
        403
    );
    let delete = dev.send(
        "DELETE",
        &mlflow(project_id, "registered-models/alias"),
        &[("Content-Type", "application/json")],
        br#"{"name": "m", "alias": "production"}"#,
    );
    assert_eq!(delete.status, 403, "{}", delete.text());
    assert_eq!(
        move_aliases(
            &boss,
            project_id,
            json!([{ "alias": "production", "version": "2.0.0" }])
        )
        .status,
        200
    );
    assert_eq!(
        dev.post_json(
            &ml(project_id, "models/m/aliases/production/rollback"),
            json!({})
        )
        .status,
        403
    );
    assert_eq!(
        alias_target(&api, project_id, "production").as_deref(),
        Some("2.0.0")
    );
}

#[test]
fn several_aliases_move_together_or_not_at_all() {
    let server = TestServer::start();
    let project_id = project(&server, "atomic", "private");
    let api = Api::root(&server);
    model_with_versions(&api, project_id);
    assert_eq!(
        patch(
            &api,
            &ml(project_id, "models/m"),
            json!({ "protected_aliases": ["production"] })
        )
        .status,
        200
    );
    let (dev_id, dev_token) = user_with_token(&server, "dev", "api");
    add_member(&server, project_id, dev_id, 30);
    let dev = Api::with_token(&server, &dev_token);
    assert_eq!(
        move_aliases(
            &dev,
            project_id,
            json!([{ "alias": "staging", "version": "1.0.0" }])
        )
        .status,
        200
    );

    // One protected alias in the list: nothing moves.
    let refused = move_aliases(
        &dev,
        project_id,
        json!([{ "alias": "staging", "version": "2.0.0" }, { "alias": "production", "version": "2.0.0" }]),
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(
        alias_target(&api, project_id, "staging").as_deref(),
        Some("1.0.0")
    );
    assert_eq!(alias_target(&api, project_id, "production"), None);
    let history = api.get(&ml(project_id, "models/m/aliases/staging/history"));
    assert_eq!(history.header("x-total"), Some("1"));
    // One missing alias to delete: nothing moves either.
    let refused = move_aliases(
        &api,
        project_id,
        json!([{ "alias": "staging", "version": "2.0.0" }, { "alias": "gone", "version": null }]),
    );
    assert_eq!(refused.status, 404, "{}", refused.text());
    assert_eq!(
        alias_target(&api, project_id, "staging").as_deref(),
        Some("1.0.0")
    );

    // A Maintainer moves both at once.
    let moved = move_aliases(
        &api,
        project_id,
        json!([{ "alias": "staging", "version": "2.0.0" }, { "alias": "production", "version": "1.1.0", "reason": "release" }]),
    );
    assert_eq!(moved.status, 200, "{}", moved.text());
    assert_eq!(moved.json()["moves"].as_array().unwrap().len(), 2);
    assert_eq!(
        alias_target(&api, project_id, "staging").as_deref(),
        Some("2.0.0")
    );
    assert_eq!(
        alias_target(&api, project_id, "production").as_deref(),
        Some("1.1.0")
    );
    let aliases = api.get(&ml(project_id, "models/m/aliases")).json();
    let production = aliases["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alias"] == "production")
        .unwrap()
        .clone();
    assert_eq!(production["protected"], true);
}
