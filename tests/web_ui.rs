//! The web UI over HTTP against the real server, as a browser without JavaScript uses it:
//! cookies, CSRF tokens, forms, multipart uploads, redirects, and who sees which page.

mod common;

use common::*;
use serde_json::json;

const PASSWORD: &str = "correct horse battery";

/// A cookie jar and the requests a browser sends.
struct Browser<'a> {
    server: &'a TestServer,
    cookies: Vec<(String, String)>,
}

impl<'a> Browser<'a> {
    fn new(server: &'a TestServer) -> Browser<'a> {
        Browser {
            server,
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, reply: &Reply) {
        for (name, value) in &reply.headers {
            if !name.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let pair = value.split(';').next().unwrap_or("");
            let (key, val) = pair.split_once('=').expect("cookie pair");
            self.cookies.retain(|(k, _)| k != key);
            if !val.is_empty() && !value.contains("Max-Age=0") {
                self.cookies.push((key.to_string(), val.to_string()));
            }
        }
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let cookie = self.cookie_header();
        let mut all = headers.to_vec();
        if !cookie.is_empty() {
            all.push(("Cookie", &cookie));
        }
        let reply = raw(&self.server.base, method, path, &all, body);
        self.keep_cookies(&reply);
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

    /// Posts `multipart/form-data` with text fields, then one file field.
    fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &[u8])>,
    ) -> Reply {
        let boundary = "----modelyardTestBoundary7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        if let Some((file_name, bytes)) = file {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        self.send("POST", path, &[("Content-Type", &content_type)], &body)
    }

    fn sign_in(&mut self, username: &str, password: &str) -> Reply {
        let form = self.get("/users/sign_in");
        assert_eq!(form.status, 200);
        let token = csrf_token(&form.text());
        self.post_form(
            "/users/sign_in",
            &[
                ("authenticity_token", &token),
                ("username", username),
                ("password", password),
                ("return_to", "/"),
            ],
        )
    }
}

/// The CSRF token in a page's first form.
fn csrf_token(html: &str) -> String {
    let marker = "name=\"authenticity_token\" value=\"";
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    let end = start + html[start..].find('"').expect("end of value");
    html[start..end].to_string()
}

fn location(reply: &Reply) -> String {
    reply
        .header("location")
        .unwrap_or_else(|| panic!("no Location on {}: {}", reply.status, reply.text()))
        .to_string()
}

#[test]
fn sign_in_create_a_model_and_a_version_with_a_file() {
    let server = TestServer::start();
    let project_id = project(&server, "vision", "private");
    let (alice, _) = user_with_token(&server, "alice", "api");
    add_member(&server, project_id, alice, 20);
    let ml = "/root/vision/-/ml";
    let mut browser = Browser::new(&server);

    let wrong = browser.sign_in("alice", "not her password");
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("Invalid username or password"));

    let signed_in = browser.sign_in("alice", PASSWORD);
    assert_eq!(signed_in.status, 303, "{}", signed_in.text());
    let set_cookie = signed_in
        .headers
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("modelyard_session="))
        .map(|(_, v)| v.clone())
        .expect("a session cookie");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
    assert!(!set_cookie.contains("Secure"), "plain http: no Secure flag");

    let form = browser.get(&format!("{ml}/models/new"));
    assert_eq!(form.status, 200);
    let token = csrf_token(&form.text());

    let invalid = browser.post_form(
        &format!("{ml}/models"),
        &[("authenticity_token", &token), ("name", "has space")],
    );
    assert_eq!(invalid.status, 400);
    assert!(
        invalid
            .text()
            .contains("model name &#39;has space&#39; is invalid")
            || invalid.text().contains("model name 'has space' is invalid"),
        "the API's validation message: {}",
        invalid.text()
    );

    let created = browser.post_form(
        &format!("{ml}/models"),
        &[
            ("authenticity_token", &token),
            ("name", "resnet"),
            ("description", "# ResNet\n\nImage **classifier**."),
        ],
    );
    assert_eq!(created.status, 303, "{}", created.text());
    let model_page = location(&created);
    let page = browser.get(&model_page);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<strong>classifier</strong>"));

    let bytes = random_bytes(3 * 1024 * 1024 + 17, 7);
    let version = browser.post_multipart(
        &format!("{model_page}/versions"),
        &[
            ("authenticity_token", &token),
            ("version", "1.2.0"),
            ("description", "first"),
            ("subfolder", "weights"),
        ],
        Some(("model.bin", &bytes)),
    );
    assert_eq!(version.status, 303, "{}", version.text());
    let version_page = location(&version);
    let shown = browser.get(&version_page).text();
    assert!(shown.contains("weights/model.bin"));
    let digest = sha256_hex(&bytes);
    assert!(shown.contains(&digest[..12]), "short sha256 shown");
    assert!(shown.contains(&format!(
        "/api/v4/projects/{project_id}/packages/generic/resnet/1.2.0/weights/model.bin"
    )));

    let download = browser.get(&format!("{version_page}/files/weights/model.bin"));
    assert_eq!(download.status, 200);
    assert_eq!(sha256_hex(&download.body), digest);
    let by_package = Api::root(&server).get(&format!(
        "/api/v4/projects/{project_id}/packages/generic/resnet/1.2.0/weights/model.bin"
    ));
    assert_eq!(
        sha256_hex(&by_package.body),
        digest,
        "the version is the package"
    );

    let versions = browser.get(&format!("{model_page}?tab=versions")).text();
    assert!(versions.contains(">1.2.0<") && versions.contains("latest"));

    let duplicate = browser.post_multipart(
        &format!("{model_page}/versions"),
        &[("authenticity_token", &token), ("version", "1.2.0")],
        Some(("other.bin", b"other")),
    );
    assert_eq!(duplicate.status, 400, "{}", duplicate.text());
    let not_semver = browser.post_multipart(
        &format!("{model_page}/versions"),
        &[("authenticity_token", &token), ("version", "v1.3")],
        Some(("other.bin", b"other")),
    );
    assert_eq!(not_semver.status, 400);
    assert!(not_semver.text().contains("semantic versioning"));
    let versions = Api::root(&server).get(&format!(
        "/api/v4/projects/{project_id}/ml/models/resnet/versions"
    ));
    assert_eq!(versions.json().as_array().map(Vec::len), Some(1));

    let form = browser.get(&version_page).text();
    let delete = browser.post_form(
        &format!("{version_page}/delete"),
        &[("authenticity_token", &csrf_token(&form))],
    );
    assert_eq!(delete.status, 303);
    assert_eq!(browser.get(&version_page).status, 404);
}

#[test]
fn forms_without_the_session_csrf_token_are_rejected() {
    let server = TestServer::start();
    let project_id = project(&server, "csrf", "public");
    let (alice, _) = user_with_token(&server, "alice", "api");
    add_member(&server, project_id, alice, 40);
    let mut browser = Browser::new(&server);
    assert_eq!(browser.sign_in("alice", PASSWORD).status, 303);

    let missing = browser.post_form("/root/csrf/-/ml/models", &[("name", "forged")]);
    assert_eq!(missing.status, 403);
    assert!(missing.text().contains("CSRF"));
    let wrong = browser.post_form(
        "/root/csrf/-/ml/models",
        &[("authenticity_token", "guessed"), ("name", "forged")],
    );
    assert_eq!(wrong.status, 403);
    let multipart = browser.post_multipart(
        "/root/csrf/-/ml/models/1/versions",
        &[("version", "1.0.0")],
        Some(("x.bin", b"x")),
    );
    assert!(matches!(multipart.status, 403 | 404));
    let models = Api::root(&server).get(&format!("/api/v4/projects/{project_id}/ml/models"));
    assert_eq!(models.json(), json!([]), "nothing was created");

    // The sign-in form has its own token, bound to a cookie.
    let mut stranger = Browser::new(&server);
    let forged = stranger.post_form(
        "/users/sign_in",
        &[("username", "alice"), ("password", PASSWORD)],
    );
    assert_eq!(forged.status, 403);

    // Signing out ends the session for good.
    let home = browser.get("/").text();
    let out = browser.post_form(
        "/users/sign_out",
        &[("authenticity_token", &csrf_token(&home))],
    );
    assert_eq!(out.status, 303);
    let old_cookie = "modelyard_session=".to_string();
    assert!(!browser.cookie_header().contains(&old_cookie));
    let after = browser.get("/root/csrf/-/ml/models/new");
    assert_eq!(after.status, 303, "signed out: back to the sign-in page");
}

#[test]
fn descriptions_render_as_text_not_markup() {
    let server = TestServer::start();
    let project_id = project(&server, "xss", "public");
    let created = Api::root(&server).post_json(
        &format!("/api/v4/projects/{project_id}/ml/models"),
        json!({ "name": "xss", "description": "<script>alert(1)</script>\n\n[x](javascript:alert(2)) <img src=x onerror=alert(3)>" }),
    );
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_u64().unwrap();
    let page = Browser::new(&server)
        .get(&format!("/root/xss/-/ml/models/{id}"))
        .text();
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains("<script>alert(1)"));
    assert!(!page.contains("javascript:alert"));
    assert!(!page.contains("<img"));
}

#[test]
fn who_sees_which_page() {
    let server = TestServer::start();
    let public = project(&server, "open", "public");
    let private = project(&server, "secret", "private");
    let root = Api::root(&server);
    for id in [public, private] {
        let reply = root.post_json(
            &format!("/api/v4/projects/{id}/ml/models"),
            json!({ "name": format!("model-of-{id}") }),
        );
        assert_eq!(reply.status, 201);
    }
    let private_model = root
        .get(&format!("/api/v4/projects/{private}/ml/models"))
        .json()[0]["id"]
        .as_u64()
        .unwrap();
    let mut anonymous = Browser::new(&server);
    assert_eq!(anonymous.get("/root/open/-/ml/models").status, 200);
    let home = anonymous.get("/").text();
    assert!(home.contains("root/open") && !home.contains("secret"));
    for path in [
        "/root/secret".to_string(),
        "/root/secret/-/ml/models".to_string(),
        format!("/root/secret/-/ml/models/{private_model}"),
        "/root/secret/-/ml/experiments".to_string(),
        "/root/nonexistent/-/ml/models".to_string(),
    ] {
        let reply = anonymous.get(&path);
        assert_eq!(reply.status, 404, "{path}");
        assert!(!reply.text().contains(&format!("model-of-{private}")));
    }
    let sign_in = anonymous.get("/root/open/-/ml/models/new");
    assert_eq!(sign_in.status, 303);
    assert!(location(&sign_in).starts_with("/users/sign_in?return_to="));

    // A Guest sees the private registry but may not change it.
    let (guest, _) = user_with_token(&server, "guest", "api");
    add_member(&server, private, guest, 10);
    let mut browser = Browser::new(&server);
    assert_eq!(browser.sign_in("guest", PASSWORD).status, 303);
    let models = browser.get("/root/secret/-/ml/models");
    assert_eq!(models.status, 200);
    assert!(models.text().contains(&format!("model-of-{private}")));
    assert!(!models.text().contains("Create model"));
    assert_eq!(browser.get("/root/secret/-/ml/models/new").status, 403);
    let token = csrf_token(&browser.get("/").text());
    let refused = browser.post_form(
        "/root/secret/-/ml/models",
        &[("authenticity_token", &token), ("name", "sneaky")],
    );
    assert_eq!(refused.status, 403);
    let delete = browser.post_form(
        &format!("/root/secret/-/ml/models/{private_model}/delete"),
        &[("authenticity_token", &token)],
    );
    assert_eq!(delete.status, 403);

    // A disabled registry is not there at all.
    let disabled = root.send(
        "PUT",
        &format!("/api/v4/projects/{public}"),
        &[("Content-Type", "application/json")],
        br#"{"model_registry_access_level": "disabled"}"#,
    );
    assert_eq!(disabled.status, 200, "{}", disabled.text());
    assert_eq!(anonymous.get("/root/open/-/ml/models").status, 404);
    assert_eq!(anonymous.get("/root/open").status, 200);
}

#[test]
fn a_version_shows_its_metric_charts_and_ci_links() {
    let server = TestServer::start();
    let project_id = project(&server, "charts", "public");
    let root = Api::root(&server);
    let ml = |rest: &str| format!("/api/v4/projects/{project_id}/ml/{rest}");
    let model = root
        .post_json(&ml("models"), json!({ "name": "ranker" }))
        .json();
    let experiment = model["experiment_iid"].as_u64().unwrap();
    let metrics: Vec<_> = (0..50)
        .map(|step| json!({ "key": "loss", "value": 1.0 / (step as f64 + 1.0), "step": step }))
        .collect();
    let candidate = root.post_json(
        &ml(&format!("experiments/{experiment}/candidates")),
        json!({ "name": "run-1", "params": [{"key": "lr", "value": "0.01"}], "metrics": metrics }),
    );
    assert_eq!(candidate.status, 201, "{}", candidate.text());
    let version = root.post_json(
        &ml("models/ranker/versions"),
        json!({
            "version": "2.0.0",
            "candidate_iid": candidate.json()["iid"],
            "ci_job": {
                "job_id": "4242", "name": "train", "url": "https://ci.example/jobs/4242",
                "pipeline_id": "77", "pipeline_url": "https://ci.example/pipelines/77",
                "merge_request_iid": "9", "merge_request_url": "https://ci.example/mr/9",
                "merge_request_title": "Better ranking", "user": "alice"
            }
        }),
    );
    assert_eq!(version.status, 201, "{}", version.text());
    let page = Browser::new(&server)
        .get(&format!(
            "/root/charts/-/ml/models/{}/versions/{}",
            model["id"],
            version.json()["id"]
        ))
        .text();
    let start = page.find("<polyline").expect("a chart");
    let points_at = start + page[start..].find(" points=\"").unwrap() + 9;
    let points_end = points_at + page[points_at..].find('"').unwrap();
    assert_eq!(page[points_at..points_end].split_whitespace().count(), 50);
    for link in [
        "https://ci.example/jobs/4242",
        "https://ci.example/pipelines/77",
        "https://ci.example/mr/9",
    ] {
        assert!(page.contains(&format!("href=\"{link}\"")), "{link}");
    }
    assert!(page.contains("Better ranking") && page.contains("alice"));
    assert!(page.contains(">lr<") && page.contains(">0.01<"));
}

#[test]
fn static_assets_and_unknown_paths() {
    let server = TestServer::start();
    let mut browser = Browser::new(&server);
    let css = browser.get("/-/static/modelyard.css");
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert_eq!(browser.get("/-/static/nothing.js").status, 404);
    let api = browser.get("/api/v4/nothing");
    assert_eq!(api.status, 404);
    assert!(
        api.json()["message"].is_string(),
        "API paths keep JSON errors"
    );
    let page = browser.get("/nobody/nothing/-/ml/models");
    assert_eq!(page.status, 404);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
}

#[test]
fn root_signs_in_with_the_configured_password_and_edits_a_model_card() {
    let server = TestServer::start_with(&["--root-password", "root password 123"]);
    let project_id = project(&server, "cards", "private");
    let created = Api::root(&server).post_json(
        &format!("/api/v4/projects/{project_id}/ml/models"),
        json!({ "name": "cardy" }),
    );
    let id = created.json()["id"].as_u64().unwrap();
    let mut browser = Browser::new(&server);
    assert_eq!(browser.sign_in("root", "wrong").status, 401);
    assert_eq!(browser.sign_in("root", "root password 123").status, 303);

    let edit = format!("/root/cards/-/ml/models/{id}/edit");
    let token = csrf_token(&browser.get(&edit).text());
    let too_long = "x".repeat(10_001);
    let refused = browser.post_form(
        &edit,
        &[("authenticity_token", &token), ("description", &too_long)],
    );
    assert_eq!(refused.status, 400);
    assert!(refused.text().contains("at most 10000 characters"));
    let saved = browser.post_form(
        &edit,
        &[
            ("authenticity_token", &token),
            ("description", "## Inputs\n\n- amount"),
        ],
    );
    assert_eq!(saved.status, 303);
    let page = browser.get(&location(&saved)).text();
    assert!(page.contains("<h2>Inputs</h2>") && page.contains("<li>amount</li>"));
    let api = Api::root(&server).get(&format!("/api/v4/projects/{project_id}/ml/models/{id}"));
    assert_eq!(api.json()["description"], "## Inputs\n\n- amount");

    let deleted = browser.post_form(
        &format!("/root/cards/-/ml/models/{id}/delete"),
        &[("authenticity_token", &token)],
    );
    assert_eq!(deleted.status, 303);
    assert_eq!(location(&deleted), "/root/cards/-/ml/models");
    let gone = Api::root(&server).get(&format!("/api/v4/projects/{project_id}/ml/models/{id}"));
    assert_eq!(gone.status, 404);
}

#[test]
fn cookies_are_secure_behind_https() {
    let server = TestServer::start();
    user_with_token(&server, "alice", "api");
    let form = raw(
        &server.base,
        "GET",
        "/users/sign_in",
        &[("X-Forwarded-Proto", "https")],
        b"",
    );
    let set = form.header("set-cookie").expect("the sign-in CSRF cookie");
    assert!(set.contains("Secure") && set.contains("HttpOnly"));
    let token = csrf_token(&form.text());
    let cookie = set.split(';').next().unwrap().to_string();
    let body = format!("authenticity_token={token}&username=alice&password=correct+horse+battery");
    let signed_in = raw(
        &server.base,
        "POST",
        "/users/sign_in",
        &[
            ("X-Forwarded-Proto", "https"),
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    );
    assert_eq!(signed_in.status, 303);
    let session = signed_in
        .headers
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("modelyard_session="))
        .map(|(_, v)| v.clone())
        .expect("a session cookie");
    assert!(session.contains("Secure") && session.contains("SameSite=Lax"));
}

/// Posts `multipart/form-data`: text fields, then several `file` parts.
fn multipart_files(fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----modelyardTestBoundaryFiles0123456789";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    for (file_name, bytes) in files {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A public project `runs` with an experiment of runs logged through MLflow's REST API; returns
/// the project id and the experiment's iid.
fn experiment_of_runs(server: &TestServer) -> (u64, String) {
    let project_id = project(server, "runs", "public");
    let root = Api::root(server);
    let mlflow = |path: &str, body: serde_json::Value| {
        let reply = root.post_json(
            &format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow/{path}"),
            body,
        );
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        reply.json()
    };
    let experiment = mlflow("experiments/create", json!({ "name": "tuning" }))["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut parent = String::new();
    for i in 0..6 {
        let mut tags =
            vec![json!({ "key": "team", "value": if i < 3 { "risk" } else { "growth" } })];
        if i == 5 {
            tags.push(json!({ "key": "mlflow.parentRunId", "value": parent }));
        }
        let run = mlflow(
            "runs/create",
            json!({ "experiment_id": experiment, "run_name": format!("run-{i}"),
                    "start_time": 1_700_000_000_000i64 + i * 60_000, "tags": tags }),
        );
        let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
        mlflow(
            "runs/log-batch",
            json!({ "run_id": run_id,
                    "params": [{"key": "lr", "value": if i % 2 == 0 { "0.01" } else { "0.1" }}, {"key": "depth", "value": i.to_string()}],
                    "metrics": [{"key": "auc", "value": 0.7 + i as f64 * 0.05, "step": 0, "timestamp": 1_700_000_000_000i64},
                                {"key": "auc", "value": 0.71 + i as f64 * 0.05, "step": 1, "timestamp": 1_700_000_001_000i64}] }),
        );
        mlflow(
            "runs/update",
            json!({ "run_id": run_id, "status": "FINISHED", "end_time": 1_700_000_000_000i64 + i * 60_000 + 90_000 }),
        );
        if i == 4 {
            parent = run_id.clone();
        }
        if i == 3 {
            mlflow("runs/delete", json!({ "run_id": run_id }));
        }
    }
    (project_id, experiment)
}

/// The run names of the runs table, in order.
fn run_names(page: &str) -> Vec<String> {
    page.split("<td class=\"run\">")
        .skip(1)
        .filter_map(|cell| {
            let link = cell.split("</a>").next()?;
            Some(link.rsplit('>').next()?.to_string())
        })
        .collect()
}

#[test]
fn the_runs_table_sorts_filters_picks_columns_and_pages() {
    let server = TestServer::start();
    let (_, experiment) = experiment_of_runs(&server);
    let page_of = |query: &str| {
        Browser::new(&server).get(&format!("/root/runs/-/ml/experiments/{experiment}{query}"))
    };
    let all = page_of("");
    assert_eq!(all.status, 200);
    let names = run_names(&all.text());
    assert_eq!(
        names,
        ["run-4", "run-5", "run-2", "run-1", "run-0"],
        "newest first, the child under its parent, the deleted run hidden"
    );
    assert!(all.text().contains("<tr class=\"child\""));
    assert!(all.text().contains("1m 30s"), "durations");
    let by_auc = page_of("?order_by=metrics.auc+ASC");
    assert_eq!(
        run_names(&by_auc.text()),
        ["run-0", "run-1", "run-2", "run-4", "run-5"]
    );
    assert!(by_auc.text().contains("aria-sort=\"ascending\""));
    let by_param = page_of("?order_by=params.depth+DESC");
    assert_eq!(
        run_names(&by_param.text()),
        ["run-4", "run-5", "run-2", "run-1", "run-0"],
        "by depth, the child still under its parent"
    );
    let filtered = page_of("?filter=metrics.auc+%3E+0.75+and+params.lr+%3D+%270.01%27");
    assert_eq!(run_names(&filtered.text()), ["run-4", "run-2"]);
    let bad = page_of("?filter=metrics.auc+%3E");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("id=\"search-error\"") && bad.text().contains("Invalid filter"));
    let deleted = page_of("?deleted=1");
    assert!(run_names(&deleted.text()).contains(&"run-3".to_string()));
    // Columns: the default has params and metrics; a tag when picked.
    assert!(!all.text().contains("data-order=\"tags.team\""));
    let picked = page_of("?pick=1&col=tags.team&col=metrics.auc").text();
    assert!(picked.contains("data-order=\"tags.team\"") && picked.contains(">growth<"));
    assert!(!picked.contains("data-order=\"params.lr\""));
    // Pages with the search's tokens.
    let first = page_of("?per_page=2").text();
    assert_eq!(run_names(&first).len(), 2);
    let marker = "rel=\"next\" href=\"";
    let start = first.find(marker).expect("a next page") + marker.len();
    let next = first[start..first[start..].find('"').unwrap() + start].replace("&amp;", "&");
    let second = Browser::new(&server).get(&next);
    assert_eq!(second.status, 200);
    assert_eq!(run_names(&second.text()), ["run-2", "run-1"]);
    assert_eq!(
        page_of("?page_token=zzz").status,
        400,
        "a bad token is explained"
    );
}

#[test]
fn runs_and_versions_compare_side_by_side() {
    let server = TestServer::start();
    let (project_id, experiment) = experiment_of_runs(&server);
    let mut browser = Browser::new(&server);
    let compare = browser
        .get(&format!(
            "/root/runs/-/ml/experiments/{experiment}/compare?runs=1,2&runs=3"
        ))
        .text();
    assert!(compare.contains("id=\"compare-params\""));
    assert!(compare.contains("<tr class=\"diff\" data-key=\"depth\">"));
    assert!(compare.contains("id=\"compare-charts\""));
    assert_eq!(
        compare.matches("<polyline class=\"line").count(),
        3,
        "one line per run"
    );
    let one = browser.get(&format!(
        "/root/runs/-/ml/experiments/{experiment}/compare?runs=1"
    ));
    assert_eq!(one.status, 400);
    assert_eq!(
        browser
            .get(&format!(
                "/root/runs/-/ml/experiments/{experiment}/compare?runs=1,999"
            ))
            .status,
        400
    );

    let root = Api::root(&server);
    let model = root
        .post_json(
            &format!("/api/v4/projects/{project_id}/ml/models"),
            json!({ "name": "m" }),
        )
        .json();
    for (version, weights) in [("1.0.0", "a"), ("1.1.0", "b")] {
        for (file, body) in [("weights.bin", weights), ("config.json", "{}")] {
            let put = root.put_bytes(
                &format!("/api/v4/projects/{project_id}/packages/generic/m/{version}/{file}"),
                body.as_bytes(),
            );
            assert_eq!(put.status, 201, "{}", put.text());
        }
    }
    let page = browser
        .get(&format!(
            "/root/runs/-/ml/models/{}/compare?versions=1.0.0,1.1.0",
            model["id"]
        ))
        .text();
    assert!(page.contains("<tr class=\"diff\" data-file=\"weights.bin\">"));
    assert!(page.contains("<tr class=\"same\" data-file=\"config.json\">"));
    let missing = browser.get(&format!(
        "/root/runs/-/ml/models/{}/compare?versions=1.0.0,9.9.9",
        model["id"]
    ));
    assert_eq!(missing.status, 400);
    assert!(missing.text().contains("has no version 9.9.9"));
}

#[test]
fn aliases_tags_files_and_descriptions_from_the_version_page() {
    let server = TestServer::start();
    let project_id = project(&server, "trust", "private");
    let (reporter, _) = user_with_token(&server, "rita", "api");
    add_member(&server, project_id, reporter, 20);
    let root = Api::root(&server);
    let model = root
        .post_json(
            &format!("/api/v4/projects/{project_id}/ml/models"),
            json!({ "name": "m" }),
        )
        .json();
    let mut ids = Vec::new();
    for version in ["1.0.0", "1.1.0", "2.0.0-rc.1"] {
        let made = root.post_json(
            &format!("/api/v4/projects/{project_id}/ml/models/m/versions"),
            json!({ "version": version }),
        );
        assert_eq!(made.status, 201, "{}", made.text());
        ids.push(made.json()["id"].as_u64().unwrap());
    }
    let model_url = format!("/root/trust/-/ml/models/{}", model["id"]);
    let v = |i: usize| format!("{model_url}/versions/{}", ids[i]);
    let mut browser = Browser::new(&server);
    assert_eq!(browser.sign_in("rita", PASSWORD).status, 303);
    let token = csrf_token(&browser.get(&v(0)).text());

    // A Reporter moves an alias from one version to another.
    for i in [0, 1] {
        let set = browser.post_form(
            &format!("{}/aliases", v(i)),
            &[("authenticity_token", &token), ("alias", "champion")],
        );
        assert_eq!(set.status, 303, "{}", set.text());
    }
    let page = browser.get(&v(1)).text();
    assert!(page.contains("models:/m@champion"));
    assert!(!browser.get(&v(0)).text().contains("models:/m@champion"));
    let card = browser.get(&model_url).text();
    assert!(card.contains("id=\"model-aliases\"") && card.contains("@champion"));
    assert!(browser
        .get("/root/trust/-/ml/models")
        .text()
        .contains("@champion"));
    let bad = browser.post_form(
        &format!("{}/aliases", v(0)),
        &[("authenticity_token", &token), ("alias", "latest")],
    );
    assert_eq!(bad.status, 400);
    let removed = browser.post_form(
        &format!("{}/aliases/delete", v(1)),
        &[("authenticity_token", &token), ("alias", "champion")],
    );
    assert_eq!(removed.status, 303);
    assert!(!browser.get(&v(1)).text().contains("models:/m@champion"));

    // "latest" is the highest release, not the prerelease above it.
    let versions = browser.get(&format!("{model_url}?tab=versions")).text();
    let latest_row = versions.find("data-version=\"1.1.0\"").unwrap();
    assert!(versions[latest_row..]
        .split("</tr>")
        .next()
        .unwrap()
        .contains("latest"));
    let rc_row = versions.find("data-version=\"2.0.0-rc.1\"").unwrap();
    assert!(!versions[rc_row..]
        .split("</tr>")
        .next()
        .unwrap()
        .contains(">latest<"));
    let matching = browser
        .get(&format!("{model_url}?tab=versions&search=~1.0"))
        .text();
    assert!(
        matching.contains("data-version=\"1.0.0\"") && !matching.contains("data-version=\"1.1.0\"")
    );
    let wildcard = browser
        .get(&format!("{model_url}?tab=versions&search=1.*"))
        .text();
    assert!(
        wildcard.contains("data-version=\"1.0.0\"") && wildcard.contains("data-version=\"1.1.0\"")
    );
    let nonsense = browser.get(&format!("{model_url}?tab=versions&search=%5E%5E"));
    assert!(nonsense.text().contains("not a SemVer requirement"));

    // Tags of versions and models, set and deleted.
    for (action, fields) in [
        (
            format!("{}/tags", v(0)),
            vec![("key", "dataset"), ("value", "march")],
        ),
        (
            format!("{model_url}/tags"),
            vec![("key", "owner"), ("value", "risk-team")],
        ),
    ] {
        let mut all = vec![("authenticity_token", token.as_str())];
        all.extend(fields);
        assert_eq!(browser.post_form(&action, &all).status, 303);
    }
    assert!(browser.get(&v(0)).text().contains(">march<"));
    assert!(browser.get(&model_url).text().contains(">risk-team<"));
    let deleted = browser.post_form(
        &format!("{}/tags", v(0)),
        &[("authenticity_token", &token), ("delete", "dataset")],
    );
    assert_eq!(deleted.status, 303);
    assert!(!browser.get(&v(0)).text().contains(">march<"));

    // The description, then several files at once added to the existing version.
    let described = browser.post_form(
        &format!("{}/edit", v(0)),
        &[
            ("authenticity_token", &token),
            ("description", "Retrained **in March**."),
        ],
    );
    assert_eq!(described.status, 303);
    assert!(browser
        .get(&v(0))
        .text()
        .contains("<strong>in March</strong>"));
    let (content_type, body) = multipart_files(
        &[("authenticity_token", &token), ("subfolder", "eval")],
        &[("scores.csv", b"a,b\n1,2\n"), ("notes.txt", b"hello")],
    );
    let added = browser.send(
        "POST",
        &format!("{}/files", v(0)),
        &[("Content-Type", &content_type)],
        &body,
    );
    assert_eq!(added.status, 303, "{}", added.text());
    let files = root.get(&format!(
        "/api/v4/projects/{project_id}/packages/generic/m/1.0.0/eval/notes.txt"
    ));
    assert_eq!(files.body, b"hello");
    let (content_type, body) = multipart_files(&[], &[("x.txt", b"x")]);
    let forged = browser.send(
        "POST",
        &format!("{}/files", v(0)),
        &[("Content-Type", &content_type)],
        &body,
    );
    assert_eq!(forged.status, 403, "no CSRF token, no file");

    // A Reporter does not delete files (Maintainers do): no button, and a 403.
    let page = browser.get(&v(0)).text();
    assert!(!page.contains("/files/delete"));
    let file_id = root
        .get(&format!(
            "/api/v4/projects/{project_id}/packages?package_name=m"
        ))
        .json()
        .as_array()
        .and_then(|packages| packages.iter().find(|p| p["version"] == "1.0.0").cloned())
        .map(|p| p["id"].as_u64().unwrap())
        .map(|package| {
            root.get(&format!(
                "/api/v4/projects/{project_id}/packages/{package}/package_files"
            ))
            .json()[0]["id"]
                .as_u64()
                .unwrap()
        })
        .unwrap();
    let refused = browser.post_form(
        &format!("{}/files/delete", v(0)),
        &[
            ("authenticity_token", &token),
            ("file_id", &file_id.to_string()),
        ],
    );
    assert_eq!(refused.status, 403);
}

#[test]
fn previews_of_csv_mlmodel_images_and_the_candidate_curl() {
    let server = TestServer::start();
    let project_id = project(&server, "files", "public");
    let root = Api::root(&server);
    let model = root
        .post_json(
            &format!("/api/v4/projects/{project_id}/ml/models"),
            json!({ "name": "m" }),
        )
        .json();
    let files: [(&str, &[u8]); 5] = [
        ("data/rows.csv", b"id,name\n1,\"a, b\"\n2,c\n"),
        ("MLmodel", b"flavors: {}\nsignature:\n  inputs: '[{\"type\": \"double\", \"name\": \"amount\"}]'\n  outputs: '[{\"type\": \"long\"}]'\n"),
        ("plot.png", b"\x89PNG\r\n\x1a\nnot really"),
        ("page.html", b"<script>alert(1)</script>"),
        ("weights.bin", b"\x00\x01\x02"),
    ];
    for (name, body) in files {
        let put = root.put_bytes(
            &format!("/api/v4/projects/{project_id}/packages/generic/m/1.0.0/{name}"),
            body,
        );
        assert_eq!(put.status, 201, "{}", put.text());
    }
    let version = root
        .get(&format!(
            "/api/v4/projects/{project_id}/ml/models/m/versions/1.0.0"
        ))
        .json();
    let base = format!(
        "/root/files/-/ml/models/{}/versions/{}",
        model["id"], version["id"]
    );
    let browser = || Browser::new(&server);
    let csv = browser()
        .get(&format!("{base}/preview/data/rows.csv"))
        .text();
    assert!(
        csv.contains("id=\"csv-preview\"")
            && csv.contains("<th>name</th>")
            && csv.contains("<td>a, b</td>")
    );
    let mlmodel = browser().get(&format!("{base}/preview/MLmodel")).text();
    assert!(mlmodel.contains("data-part=\"inputs\"") && mlmodel.contains(">amount<"));
    let html = browser().get(&format!("{base}/preview/page.html")).text();
    assert!(html.contains("&lt;script&gt;") && !html.contains("<script>alert"));
    assert!(browser()
        .get(&format!("{base}/preview/weights.bin"))
        .text()
        .contains("binary file"));
    let image = browser().get(&format!("{base}/raw/plot.png"));
    assert_eq!(image.status, 200);
    assert_eq!(image.header("content-type"), Some("image/png"));
    assert_eq!(
        browser().get(&format!("{base}/raw/page.html")).status,
        404,
        "only images are served inline"
    );
    assert_eq!(
        browser().get(&format!("{base}/preview/nothing.txt")).status,
        404
    );

    // A candidate's curl commands name the ML model files API, which serves them.
    let experiment = model["experiment_iid"].as_u64().unwrap();
    let candidate = root
        .post_json(
            &format!("/api/v4/projects/{project_id}/ml/experiments/{experiment}/candidates"),
            json!({ "name": "run", "metadata": [{"key": "mlflow.note.content", "value": "Tried **dropout**."}] }),
        )
        .json();
    let iid = candidate["iid"].as_u64().unwrap();
    let api_file = format!(
        "/api/v4/projects/{project_id}/packages/ml_models/candidate:{iid}/files/out/model.pkl"
    );
    assert_eq!(root.put_bytes(&api_file, b"pickle").status, 201);
    let page = browser()
        .get(&format!("/root/files/-/ml/candidates/{iid}"))
        .text();
    assert!(
        page.contains(&format!("{}{api_file}", server.base)),
        "curl URL: {page}"
    );
    assert!(
        page.contains("<strong>dropout</strong>"),
        "the run's description"
    );
    assert_eq!(root.get(&api_file).body, b"pickle");
    assert!(
        browser()
            .get(&format!(
                "/root/files/-/ml/candidates/{iid}/preview/out/model.pkl"
            ))
            .status
            == 200
    );
}

#[test]
fn tokens_page_404_navigation_favicon_and_markdown() {
    let server = TestServer::start();
    let project_id = project(&server, "home", "private");
    let (alice, _) = user_with_token(&server, "alice", "api");
    let (bob, _) = user_with_token(&server, "bob", "api");
    add_member(&server, project_id, alice, 30);
    let mut anonymous = Browser::new(&server);
    let tokens = "/-/user_settings/personal_access_tokens";
    let away = anonymous.get(tokens);
    assert_eq!(away.status, 303);
    assert!(location(&away).starts_with("/users/sign_in?return_to="));

    let mut browser = Browser::new(&server);
    assert_eq!(browser.sign_in("alice", PASSWORD).status, 303);
    let form = browser.get(tokens);
    assert_eq!(form.status, 200);
    let token = csrf_token(&form.text());
    let created = browser.post_form(
        tokens,
        &[
            ("authenticity_token", &token),
            ("name", "laptop"),
            ("scopes", "read_api"),
        ],
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let page = created.text();
    let marker = "id=\"new-token\"";
    let at = page.find(marker).unwrap();
    let code = &page[at..];
    let secret = code[code.find("<code>").unwrap() + 6..code.find("</code>").unwrap()].to_string();
    let me = Api::with_token(&server, &secret).get("/api/v4/user");
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["username"], "alice");
    let unnamed = browser.post_form(tokens, &[("authenticity_token", &token), ("scopes", "api")]);
    assert_eq!(unnamed.status, 400);
    let listed = browser.get(tokens).text();
    assert!(!listed.contains(&secret), "the secret is shown once");
    // Bob's token is not Alice's to revoke.
    let bobs = Api::root(&server).post_json(
        &format!("/api/v4/users/{bob}/personal_access_tokens"),
        json!({ "name": "bobs", "scopes": ["api"] }),
    );
    assert_eq!(bobs.status, 201, "{}", bobs.text());
    let bobs_id = bobs.json()["id"].as_u64().unwrap();
    let refused = browser.post_form(
        &format!("{tokens}/{bobs_id}/revoke"),
        &[("authenticity_token", &token)],
    );
    assert_eq!(refused.status, 404);
    let mine = listed
        .split("data-token=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let revoked = browser.post_form(
        &format!("{tokens}/{mine}/revoke"),
        &[("authenticity_token", &token)],
    );
    assert_eq!(revoked.status, 303);
    assert_eq!(
        Api::with_token(&server, &secret).get("/api/v4/user").status,
        401
    );

    let missing = browser.get("/root/home/-/ml/models/424242");
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("class=\"error-nav\"") && missing.text().contains("skip-link"));
    let icon = browser.get("/favicon.ico");
    assert_eq!(icon.status, 200);
    assert_eq!(icon.header("content-type"), Some("image/svg+xml"));
    let mut bobs_browser = Browser::new(&server);
    assert_eq!(bobs_browser.sign_in("bob", PASSWORD).status, 303);
    let empty = bobs_browser.get("/").text();
    assert!(
        empty.contains(&format!("{}/api/v4/projects", server.base)),
        "the fresh-install empty state names this server: {empty}"
    );

    let model = Api::root(&server).post_json(
        &format!("/api/v4/projects/{project_id}/ml/models"),
        json!({ "name": "m", "description": "- [x] trained\n- [ ] shipped\n\nAs noted.[^n]\n\n[^n]: A footnote." }),
    );
    let card = browser
        .get(&format!("/root/home/-/ml/models/{}", model.json()["id"]))
        .text();
    assert!(card.contains("type=\"checkbox\"") && card.contains("class=\"footnote\""));
    assert!(card.contains("aria-current=\"page\""), "the current tab");
}

#[test]
fn maintainers_set_the_trusted_gitlab_projects_in_the_ci_cd_settings() {
    let server = TestServer::start();
    let project_id = project(&server, "vision", "private");
    let (alice, _) = user_with_token(&server, "alice", "api");
    let (dev, _) = user_with_token(&server, "dev", "api");
    add_member(&server, project_id, alice, 40);
    add_member(&server, project_id, dev, 30);
    let page = "/root/vision/-/settings/ci_cd";

    let mut browser = Browser::new(&server);
    assert_eq!(browser.sign_in("dev", PASSWORD).status, 303);
    assert_eq!(
        browser.get(page).status,
        403,
        "a Developer does not see the settings"
    );
    let mut browser = Browser::new(&server);
    assert_eq!(browser.sign_in("alice", PASSWORD).status, 303);
    let project_page = browser.get("/root/vision");
    assert!(project_page.text().contains("CI/CD settings"));
    let form = browser.get(page);
    assert_eq!(form.status, 200, "{}", form.text());
    let token = csrf_token(&form.text());
    let saved = browser.post_form(
        page,
        &[
            ("authenticity_token", &token),
            ("ci_job_token_gitlab_projects", "ml-team/trainer\n  42 \n"),
            ("ci_job_token_access_level", "20"),
        ],
    );
    assert_eq!(saved.status, 303, "{}", saved.text());
    let shown = Api::root(&server).get(&format!("/api/v4/projects/{project_id}"));
    assert_eq!(
        shown.json()["ci_job_token_gitlab_projects"],
        serde_json::json!(["ml-team/trainer", "42"])
    );
    assert_eq!(shown.json()["ci_job_token_access_level"], 20);
    let again = browser.get(page);
    assert!(again.text().contains("ml-team/trainer"));
}

#[test]
fn a_promotion_policy_refusal_is_shown_where_the_alias_is_moved() {
    let server = TestServer::start();
    let project_id = project(&server, "policy", "private");
    let (maintainer, _) = user_with_token(&server, "mona", "api");
    add_member(&server, project_id, maintainer, 40);
    let root = Api::root(&server);
    let model = root
        .post_json(
            &format!("/api/v4/projects/{project_id}/ml/models"),
            json!({ "name": "m" }),
        )
        .json();
    let settings = serde_json::to_vec(&json!({
        "protected_aliases": ["production"],
        "promotion_rules": ["metrics.auc >= 0.92", "no_prerelease"],
    }))
    .unwrap();
    let set = root.send(
        "PATCH",
        &format!("/api/v4/projects/{project_id}/ml/models/m"),
        &[("Content-Type", "application/json")],
        &settings,
    );
    assert_eq!(set.status, 200, "{}", set.text());
    let made = root.post_json(
        &format!("/api/v4/projects/{project_id}/ml/models/m/versions"),
        json!({ "version": "1.0.0-rc.1" }),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let version_url = format!(
        "/root/policy/-/ml/models/{}/versions/{}",
        model["id"],
        made.json()["id"]
    );
    let mut browser = Browser::new(&server);
    assert_eq!(browser.sign_in("mona", PASSWORD).status, 303);
    let page = browser.get(&version_url).text();
    // The form says which rules protected aliases need.
    assert!(page.contains("id=\"promotion-rules\""), "{page}");
    assert!(
        page.contains("<code>metrics.auc &gt;= 0.92</code>"),
        "{page}"
    );
    let token = csrf_token(&page);
    let refused = browser.post_form(
        &format!("{version_url}/aliases"),
        &[("authenticity_token", &token), ("alias", "production")],
    );
    assert_eq!(refused.status, 409, "{}", refused.text());
    let html = refused.text();
    // The version page again, with the refusal naming each failed rule.
    assert!(html.contains("id=\"set-alias\""), "{html}");
    assert!(html.contains("Promotion policy refused"), "{html}");
    assert!(
        html.contains("metrics.auc &gt;= 0.92 (alias production -&gt; 1.0.0-rc.1: the version's run has no metric 'auc')"),
        "{html}"
    );
    assert!(html.contains("no_prerelease (alias production"), "{html}");
    // An unprotected alias moves from the same form.
    let moved = browser.post_form(
        &format!("{version_url}/aliases"),
        &[("authenticity_token", &token), ("alias", "champion")],
    );
    assert_eq!(moved.status, 303, "{}", moved.text());
}
