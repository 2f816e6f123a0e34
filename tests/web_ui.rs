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
