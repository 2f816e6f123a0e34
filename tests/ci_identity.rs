//! CI identities against a real server: GitLab job tokens verified by a stub GitLab's
//! `/api/v4/job`, OIDC ID tokens of a local issuer (trusted publishing), deploy tokens and
//! project access tokens. Whatever a CI identity creates records its verified CI link.

mod common;

use base64::Engine;
use common::stubs::StubGitlab;
use common::*;
use serde_json::json;

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn upload(server: &TestServer, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    raw(&server.base, "PUT", path, headers, body)
}

/// A private project of root's that trusts the jobs of `trusted` GitLab projects.
fn trusting_project(server: &TestServer, name: &str, trusted: &[&str]) -> u64 {
    let id = project(server, name, "private");
    let reply = Api::root(server).put_json(
        &format!("/api/v4/projects/{id}"),
        json!({ "ci_job_token_gitlab_projects": trusted }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json()["ci_job_token_gitlab_projects"],
        json!(trusted),
        "the setting is shown"
    );
    id
}

#[test]
fn job_tokens_of_trusted_projects_upload_and_link_what_they_create() {
    let gitlab = StubGitlab::start();
    let job = gitlab.add_job("job-token-1", 101, 42, "ml-team/trainer");
    let server = TestServer::start_with(&["--gitlab-url", &gitlab.url]);
    let id = trusting_project(&server, "fraud", &["ml-team/trainer"]);
    let root = Api::root(&server);
    let model = root.post_json(
        &format!("/api/v4/projects/{id}/ml/models"),
        json!({ "name": "fraud" }),
    );
    assert_eq!(model.status, 201, "{}", model.text());

    // GitLab's documented snippet: JOB-TOKEN header, upload of a model version's file.
    let reply = upload(
        &server,
        &format!("/api/v4/projects/{id}/packages/generic/fraud/1.0.0/model.onnx"),
        &[("JOB-TOKEN", "job-token-1")],
        b"onnx bytes",
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let version = root.get(&format!(
        "/api/v4/projects/{id}/ml/models/fraud/versions/1.0.0"
    ));
    assert_eq!(version.status, 200, "{}", version.text());
    let ci = &version.json()["ci_job"];
    assert_eq!(ci["job_id"], "101");
    assert_eq!(ci["name"], "train");
    assert_eq!(ci["url"], job["web_url"]);
    assert_eq!(ci["pipeline_id"], "1101");
    assert_eq!(ci["pipeline_url"], job["pipeline"]["web_url"]);
    assert_eq!(ci["ref"], "main");
    assert_eq!(ci["sha"], job["pipeline"]["sha"]);
    assert_eq!(ci["user"], "alice");
    assert_eq!(
        ci["verified_by"],
        format!("gitlab job token: {}", gitlab.url)
    );

    // `--user gitlab-ci-token:$CI_JOB_TOKEN`, a plain generic package: 201, and the package
    // and its file carry the pipeline.
    let auth = basic("gitlab-ci-token", "job-token-1");
    let reply = upload(
        &server,
        &format!(
            "/api/v4/projects/{id}/packages/generic/data/2024-01/train.csv?select=package_file"
        ),
        &[("Authorization", &auth)],
        b"a,b\n1,2\n",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let file = reply.json();
    assert_eq!(file["pipelines"][0]["id"], 1101);
    assert_eq!(file["pipelines"][0]["job"]["id"], "101");
    let packages = root.get(&format!("/api/v4/projects/{id}/packages?package_name=data"));
    assert_eq!(
        packages.json()[0]["pipeline"]["id"],
        1101,
        "{}",
        packages.text()
    );
    assert_eq!(
        packages.json()[0]["pipeline"]["sha"],
        job["pipeline"]["sha"]
    );

    // `job_token=` as python-gitlab's job_token sends it is the same identity.
    let reply = upload(
        &server,
        &format!(
            "/api/v4/projects/{id}/packages/generic/data/2024-02/train.csv?job_token=job-token-1"
        ),
        &[],
        b"x",
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    // Verified once, then cached (at most a minute).
    assert_eq!(gitlab.calls(), 1, "the job is asked for once");

    // Typed CI tags do not override the verified link: an MLflow run the job creates.
    let run = raw(
        &server.base,
        "POST",
        &format!("/api/v4/projects/{id}/ml/mlflow/api/2.0/mlflow/runs/create"),
        &[
            ("JOB-TOKEN", "job-token-1"),
            ("Content-Type", "application/json"),
        ],
        json!({
            "experiment_id": model.json()["experiment_iid"].to_string(),
            "tags": [{ "key": "gitlab.CI_JOB_ID", "value": "666" }]
        })
        .to_string()
        .as_bytes(),
    );
    assert_eq!(run.status, 200, "{}", run.text());
    let run_id = run.json()["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let candidates = root.get(&format!(
        "/api/v4/projects/{id}/ml/experiments/{}/candidates",
        model.json()["experiment_iid"]
    ));
    let candidate = candidates
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["run_id"] == run_id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("run listed: {}", candidates.text()));
    assert_eq!(candidate["ci_job"]["job_id"], "101", "{candidate}");

    // A job acts as a Developer: no package deletes, no settings.
    let package_id = packages.json()[0]["id"].as_u64().unwrap();
    let delete = raw(
        &server.base,
        "DELETE",
        &format!("/api/v4/projects/{id}/packages/{package_id}"),
        &[("JOB-TOKEN", "job-token-1")],
        b"",
    );
    assert_eq!(delete.status, 403, "{}", delete.text());
    let settings = raw(
        &server.base,
        "PUT",
        &format!("/api/v4/projects/{id}?ci_job_token_gitlab_projects=evil/repo"),
        &[("JOB-TOKEN", "job-token-1")],
        b"",
    );
    assert_eq!(settings.status, 403, "{}", settings.text());
    assert!(
        settings.text().contains("cannot change"),
        "{}",
        settings.text()
    );
}

#[test]
fn untrusted_finished_and_unknown_job_tokens_are_refused_naming_why() {
    let gitlab = StubGitlab::start();
    gitlab.add_job("foreign-job", 7, 77, "someone/else");
    gitlab.add_job("short-job", 8, 42, "ml-team/trainer");
    let server = TestServer::start_with(&["--gitlab-url", &gitlab.url]);
    let id = trusting_project(&server, "fraud", &["ml-team/trainer", "12345"]);
    let path = format!("/api/v4/projects/{id}/packages/generic/pkg/1.0.0/f.bin");

    // A job of a project this one does not trust: 403, naming the setting.
    let reply = upload(&server, &path, &[("JOB-TOKEN", "foreign-job")], b"x");
    assert_eq!(reply.status, 403, "{}", reply.text());
    let message = reply.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("someone/else"), "{message}");
    assert!(
        message.contains("ci_job_token_gitlab_projects"),
        "{message}"
    );
    // ... and it does not download from the private project either.
    let reply = raw(
        &server.base,
        "GET",
        &path,
        &[("JOB-TOKEN", "foreign-job")],
        b"",
    );
    assert_eq!(reply.status, 403, "{}", reply.text());

    // A token GitLab does not know (revoked, finished): 401 with the reason.
    let reply = upload(&server, &path, &[("JOB-TOKEN", "never-issued")], b"x");
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("finished"),
        "{}",
        reply.text()
    );
    // A job that finishes: its token stops working once the cache entry (a minute at most) is
    // gone; a fresh server has no cache.
    gitlab.finish("short-job");
    let reply = upload(&server, &path, &[("JOB-TOKEN", "short-job")], b"x");
    assert_eq!(reply.status, 401, "{}", reply.text());
    let auth = basic("gitlab-ci-token", "short-job");
    let reply = upload(&server, &path, &[("Authorization", &auth)], b"x");
    assert_eq!(reply.status, 401, "{}", reply.text());

    // Without --gitlab-url, job tokens are refused and the answer says why.
    let plain = TestServer::start();
    let id = project(&plain, "p", "private");
    let reply = upload(
        &plain,
        &format!("/api/v4/projects/{id}/packages/generic/pkg/1.0.0/f.bin"),
        &[("JOB-TOKEN", "anything")],
        b"x",
    );
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert!(reply.text().contains("--gitlab-url"), "{}", reply.text());
}

#[test]
fn the_ci_job_level_is_configurable_up_to_maintainer() {
    let gitlab = StubGitlab::start();
    gitlab.add_job("maintainer-job", 9, 42, "ml-team/trainer");
    let server = TestServer::start_with(&["--gitlab-url", &gitlab.url]);
    let id = trusting_project(&server, "fraud", &["42"]);
    let root = Api::root(&server);
    let too_high = root.put_json(
        &format!("/api/v4/projects/{id}"),
        json!({ "ci_job_token_access_level": 50 }),
    );
    assert_eq!(too_high.status, 400, "{}", too_high.text());
    let reporter = root.put_json(
        &format!("/api/v4/projects/{id}"),
        json!({ "ci_job_token_access_level": 20 }),
    );
    assert_eq!(reporter.status, 200, "{}", reporter.text());
    let path = format!("/api/v4/projects/{id}/packages/generic/pkg/1.0.0/f.bin");
    let reply = upload(&server, &path, &[("JOB-TOKEN", "maintainer-job")], b"x");
    assert_eq!(
        reply.status,
        403,
        "a Reporter job uploads no generic packages: {}",
        reply.text()
    );
    root.put_json(
        &format!("/api/v4/projects/{id}"),
        json!({ "ci_job_token_access_level": "maintainer" }),
    );
    let reply = upload(&server, &path, &[("JOB-TOKEN", "maintainer-job")], b"x");
    assert_eq!(reply.status, 201, "{}", reply.text());
    let packages = root.get(&format!("/api/v4/projects/{id}/packages"));
    let package_id = packages.json()[0]["id"].as_u64().unwrap();
    let delete = raw(
        &server.base,
        "DELETE",
        &format!("/api/v4/projects/{id}/packages/{package_id}"),
        &[("JOB-TOKEN", "maintainer-job")],
        b"",
    );
    assert_eq!(delete.status, 204, "{}", delete.text());
}

const AUD: &str = "https://modelyard.test";

fn oidc_server(issuer: &common::stubs::StubIssuer) -> TestServer {
    TestServer::start_with(&["--oidc-issuer", &issuer.url, "--oidc-audience", AUD])
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn add_rule(server: &TestServer, project_id: u64, rule: serde_json::Value) -> Reply {
    Api::root(server).post_json(
        &format!("/api/v4/projects/{project_id}/trusted_publishers"),
        rule,
    )
}

#[test]
fn trusted_publishing_with_matching_id_tokens() {
    let issuer = common::stubs::StubIssuer::start();
    let server = oidc_server(&issuer);
    let id = project(&server, "fraud", "private");
    let root = Api::root(&server);
    let rule = add_rule(
        &server,
        id,
        json!({
            "issuer": issuer.url,
            "claims": { "project_path": "ml-team/trainer", "ref": "main", "ref_protected": true },
            "access_level": 30,
            "description": "main of the trainer"
        }),
    );
    assert_eq!(rule.status, 201, "{}", rule.text());
    assert_eq!(rule.json()["claims"]["ref_protected"], "true");
    let listed = root.get(&format!("/api/v4/projects/{id}/trusted_publishers"));
    assert_eq!(listed.json().as_array().map(Vec::len), Some(1));
    assert_eq!(
        root.post_json(
            &format!("/api/v4/projects/{id}/ml/models"),
            json!({"name": "fraud"})
        )
        .status,
        201
    );

    // GitLab CI `id_tokens:` (ES256): publishes, and the version's CI link is the claims'.
    let token = issuer.mint(issuer.gitlab_claims(AUD, "ml-team/trainer", "main"), false);
    let reply = upload(
        &server,
        &format!("/api/v4/projects/{id}/packages/generic/fraud/2.0.0/model.onnx"),
        &[("Authorization", &bearer(&token))],
        b"weights",
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let version = root.get(&format!(
        "/api/v4/projects/{id}/ml/models/fraud/versions/2.0.0"
    ));
    let ci = &version.json()["ci_job"];
    assert_eq!(ci["job_id"], "5151", "{}", version.text());
    assert_eq!(ci["pipeline_id"], "555");
    assert_eq!(ci["ref"], "main");
    assert_eq!(ci["user"], "alice");
    assert_eq!(
        ci["url"],
        format!("{}/ml-team/trainer/-/jobs/5151", issuer.url)
    );
    assert_eq!(ci["verified_by"], format!("oidc: {}", issuer.url));

    // RS256 works the same; the issuer's keys were fetched once and cached.
    let token = issuer.mint(issuer.gitlab_claims(AUD, "ml-team/trainer", "main"), true);
    let reply = upload(
        &server,
        &format!("/api/v4/projects/{id}/packages/generic/fraud/2.0.1/model.onnx"),
        &[("Authorization", &bearer(&token))],
        b"weights",
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(issuer.jwks_fetches(), 1);

    // GitHub Actions claims (repository, workflow) with their own rule.
    let gh = project(&server, "gh", "private");
    let rule = add_rule(
        &server,
        gh,
        json!({ "issuer": issuer.url, "claims": { "repository": "octo/models", "workflow": "release" } }),
    );
    assert_eq!(rule.status, 201, "{}", rule.text());
    let now = common::stubs::now_s();
    let token = issuer.mint(
        json!({
            "aud": AUD, "exp": now + 300, "iat": now,
            "repository": "octo/models", "workflow": "release", "ref": "refs/tags/v1.0.0",
            "sha": "abc123", "run_id": "987", "actor": "octocat"
        }),
        false,
    );
    let reply = upload(
        &server,
        &format!("/api/v4/projects/{gh}/packages/generic/bundle/1.0.0/b.tgz?select=package_file"),
        &[("Authorization", &bearer(&token))],
        b"bundle",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let pipeline = &reply.json()["pipelines"][0];
    assert_eq!(pipeline["id"], 987, "{}", reply.text());
    assert_eq!(pipeline["user"]["username"], "octocat");
    assert_eq!(
        pipeline["web_url"],
        format!("{}/octo/models/actions/runs/987", issuer.url)
    );
}

#[test]
fn id_tokens_with_a_wrong_audience_expired_or_unmatched_claims_are_refused() {
    let issuer = common::stubs::StubIssuer::start();
    let stranger = common::stubs::StubIssuer::start();
    let server = oidc_server(&issuer);
    let id = project(&server, "fraud", "private");
    let rule = add_rule(
        &server,
        id,
        json!({ "issuer": issuer.url, "claims": { "project_path": "ml-team/trainer", "ref": "main" } }),
    );
    assert_eq!(rule.status, 201, "{}", rule.text());
    let path = format!("/api/v4/projects/{id}/packages/generic/pkg/1.0.0/f.bin");
    let try_token =
        |token: String| upload(&server, &path, &[("Authorization", &bearer(&token))], b"x");
    let good = issuer.gitlab_claims(AUD, "ml-team/trainer", "main");

    let wrong_aud = issuer.mint(
        issuer.gitlab_claims("https://elsewhere.test", "ml-team/trainer", "main"),
        false,
    );
    let reply = try_token(wrong_aud);
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert!(reply.text().contains("audience"), "{}", reply.text());

    let mut expired = good.clone();
    expired["exp"] = json!(common::stubs::now_s() - 600);
    let reply = try_token(issuer.mint(expired, false));
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert!(reply.text().contains("expired"), "{}", reply.text());

    let mut early = good.clone();
    early["nbf"] = json!(common::stubs::now_s() + 600);
    let reply = try_token(issuer.mint(early, false));
    assert_eq!(reply.status, 401, "{}", reply.text());

    let branch = issuer.mint(
        issuer.gitlab_claims(AUD, "ml-team/trainer", "feature"),
        false,
    );
    let reply = try_token(branch);
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(
        reply.text().contains("claim ref is 'feature'"),
        "{}",
        reply.text()
    );

    // An issuer the server does not trust, and a token signed by another key under a trusted
    // issuer's name.
    let reply = try_token(stranger.mint(
        stranger.gitlab_claims(AUD, "ml-team/trainer", "main"),
        false,
    ));
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert!(reply.text().contains("not trusted"), "{}", reply.text());
    let mut forged = good.clone();
    forged["iss"] = json!(issuer.url);
    let reply = try_token(stranger.mint(forged, false));
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert!(reply.text().contains("signature"), "{}", reply.text());

    // The good token still works, and nothing was uploaded by the refused ones.
    let reply = try_token(issuer.mint(good, false));
    assert_eq!(reply.status, 201, "{}", reply.text());
    let packages = Api::root(&server).get(&format!("/api/v4/projects/{id}/packages"));
    assert_eq!(packages.header("x-total"), Some("1"));

    // Rules are a Maintainer's business, and need a claim.
    let (_, dev) = user_with_token(&server, "dev", "api");
    let dev_id = Api::root(&server).get("/api/v4/users?username=dev").json()[0]["id"]
        .as_u64()
        .unwrap();
    add_member(&server, id, dev_id, 30);
    let reply = Api::with_token(&server, &dev).post_json(
        &format!("/api/v4/projects/{id}/trusted_publishers"),
        json!({ "issuer": issuer.url, "claims": { "ref": "main" } }),
    );
    assert_eq!(reply.status, 403, "{}", reply.text());
    let reply = add_rule(&server, id, json!({ "issuer": issuer.url, "claims": {} }));
    assert_eq!(reply.status, 400, "{}", reply.text());
    // A rule that names no pipeline (only a ref, or any project) would trust everyone.
    for claims in [
        json!({ "ref": "main" }),
        json!({ "project_path": "*", "ref": "main" }),
    ] {
        let reply = add_rule(
            &server,
            id,
            json!({ "issuer": issuer.url, "claims": claims }),
        );
        assert_eq!(reply.status, 400, "{claims}: {}", reply.text());
        assert!(reply.text().contains("project_path"), "{}", reply.text());
    }
}

#[test]
fn deploy_tokens_pull_from_one_project_read_only_by_default() {
    let server = TestServer::start();
    let id = project(&server, "fraud", "private");
    let other = project(&server, "other", "private");
    let root = Api::root(&server);
    assert_eq!(
        root.post_json(
            &format!("/api/v4/projects/{id}/ml/models"),
            json!({"name": "fraud"})
        )
        .status,
        201
    );
    for (path, body) in [
        ("fraud/1.0.0/model.onnx", &b"v1"[..]),
        ("tools/1.0.0/t.sh", &b"tool"[..]),
    ] {
        let reply = root.put_bytes(
            &format!("/api/v4/projects/{id}/packages/generic/{path}"),
            body,
        );
        assert_eq!(reply.status, 201, "{}", reply.text());
    }
    root.put_bytes(
        &format!("/api/v4/projects/{other}/packages/generic/x/1.0.0/x"),
        b"x",
    );

    let reader = root.post_json(
        &format!("/api/v4/projects/{id}/deploy_tokens"),
        json!({ "name": "prod pull", "scopes": ["read_package_registry"] }),
    );
    assert_eq!(reader.status, 201, "{}", reader.text());
    let reader = reader.json();
    let secret = reader["token"].as_str().unwrap().to_string();
    let username = reader["username"].as_str().unwrap().to_string();
    assert!(username.starts_with("gitlab+deploy-token-"), "{username}");
    let model_path = format!("/api/v4/projects/{id}/packages/generic/fraud/1.0.0/model.onnx");

    // DEPLOY-TOKEN header and Basic <username>:<token> both pull.
    let reply = raw(
        &server.base,
        "GET",
        &model_path,
        &[("DEPLOY-TOKEN", &secret)],
        b"",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body, b"v1");
    let auth = basic(&username, &secret);
    let reply = raw(
        &server.base,
        "GET",
        &model_path,
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let listing = raw(
        &server.base,
        "GET",
        &format!("/api/v4/projects/{id}/packages"),
        &[("DEPLOY-TOKEN", &secret)],
        b"",
    );
    assert_eq!(listing.status, 200, "{}", listing.text());
    // Read-only: no upload. Another project: refused, naming why.
    let reply = upload(
        &server,
        &format!("/api/v4/projects/{id}/packages/generic/tools/1.0.1/t.sh"),
        &[("DEPLOY-TOKEN", &secret)],
        b"x",
    );
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(reply.text().contains("read-only"), "{}", reply.text());
    let reply = raw(
        &server.base,
        "GET",
        &format!("/api/v4/projects/{other}/packages/generic/x/1.0.0/x"),
        &[("DEPLOY-TOKEN", &secret)],
        b"",
    );
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(reply.text().contains("another project"), "{}", reply.text());
    // No settings, no members.
    let reply = raw(
        &server.base,
        "GET",
        &format!("/api/v4/projects/{id}/deploy_tokens"),
        &[("DEPLOY-TOKEN", &secret)],
        b"",
    );
    assert_eq!(reply.status, 403, "{}", reply.text());

    // A write token limited to the model `fraud`: uploads its versions, nothing else.
    let writer = root.post_json(
        &format!("/api/v4/projects/{id}/deploy_tokens"),
        json!({ "name": "push", "username": "pusher", "scopes": ["read_package_registry", "write_package_registry"], "package_names": ["fraud"] }),
    );
    assert_eq!(writer.status, 201, "{}", writer.text());
    let pusher = writer.json()["token"].as_str().unwrap().to_string();
    let reply = upload(
        &server,
        &format!("/api/v4/projects/{id}/packages/generic/fraud/1.1.0/model.onnx"),
        &[("Authorization", &basic("pusher", &pusher))],
        b"v1.1",
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let reply = raw(
        &server.base,
        "GET",
        &format!("/api/v4/projects/{id}/packages/generic/tools/1.0.0/t.sh"),
        &[("DEPLOY-TOKEN", &pusher)],
        b"",
    );
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(
        reply.text().contains("limited to the packages fraud"),
        "{}",
        reply.text()
    );

    // Revoked: 401 at once.
    let token_id = reader["id"].as_u64().unwrap();
    let revoke = root.delete(&format!("/api/v4/projects/{id}/deploy_tokens/{token_id}"));
    assert_eq!(revoke.status, 204, "{}", revoke.text());
    let reply = raw(
        &server.base,
        "GET",
        &model_path,
        &[("DEPLOY-TOKEN", &secret)],
        b"",
    );
    assert_eq!(reply.status, 401, "{}", reply.text());
    let listed = root.get(&format!("/api/v4/projects/{id}/deploy_tokens"));
    assert_eq!(listed.json()[0]["revoked"], true, "{}", listed.text());
    assert!(
        listed.json()[0].get("token").is_none(),
        "the secret is shown once"
    );
    // Bad scopes are a 400.
    let bad = root.post_json(
        &format!("/api/v4/projects/{id}/deploy_tokens"),
        json!({ "name": "x", "scopes": ["api"] }),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
}

#[test]
fn project_access_tokens_are_bot_members() {
    let server = TestServer::start();
    let id = project(&server, "fraud", "private");
    let root = Api::root(&server);
    let created = root.post_json(
        &format!("/api/v4/projects/{id}/access_tokens"),
        json!({ "name": "jenkins", "scopes": ["api"], "access_level": 30 }),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let created = created.json();
    assert_eq!(created["access_level"], 30);
    assert!(
        created["expires_at"].is_string(),
        "an expiry by default: {created}"
    );
    let secret = created["token"].as_str().unwrap().to_string();
    let bot = Api::with_token(&server, &secret);
    let me = bot.get("/api/v4/user");
    assert_eq!(me.json()["bot"], true, "{}", me.text());
    assert!(me.json()["username"]
        .as_str()
        .unwrap()
        .starts_with(&format!("project_{id}_bot_")));
    // A Developer: uploads, does not delete.
    let reply = bot.put_bytes(
        &format!("/api/v4/projects/{id}/packages/generic/a/1.0.0/a"),
        b"a",
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let package = root.get(&format!("/api/v4/projects/{id}/packages")).json()[0]["id"]
        .as_u64()
        .unwrap();
    assert_eq!(
        bot.delete(&format!("/api/v4/projects/{id}/packages/{package}"))
            .status,
        403
    );
    // Only in its own project.
    let other = project(&server, "other", "private");
    assert_eq!(bot.get(&format!("/api/v4/projects/{other}")).status, 404);
    // Listed, and revoked: the bot stops working and leaves the project.
    let listed = root.get(&format!("/api/v4/projects/{id}/access_tokens"));
    assert_eq!(
        listed.json().as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.text()
    );
    let token_id = created["id"].as_u64().unwrap();
    assert_eq!(
        root.delete(&format!("/api/v4/projects/{id}/access_tokens/{token_id}"))
            .status,
        204
    );
    assert_eq!(bot.get("/api/v4/user").status, 401);
    // Nobody grants a bot a level above their own.
    let (maintainer_id, maintainer) = user_with_token(&server, "mia", "api");
    add_member(&server, id, maintainer_id, 40);
    let reply = Api::with_token(&server, &maintainer).post_json(
        &format!("/api/v4/projects/{id}/access_tokens"),
        json!({ "name": "x", "scopes": ["api"], "access_level": 50 }),
    );
    assert_eq!(reply.status, 403, "{}", reply.text());
}

#[test]
fn an_id_token_is_exchanged_for_a_short_lived_project_token() {
    let issuer = common::stubs::StubIssuer::start();
    let server = oidc_server(&issuer);
    let id = project(&server, "fraud", "private");
    let other = project(&server, "other", "private");
    for project_id in [id, other] {
        let rule = add_rule(
            &server,
            project_id,
            json!({ "issuer": issuer.url, "claims": { "project_path": "ml-team/trainer" } }),
        );
        assert_eq!(rule.status, 201, "{}", rule.text());
    }
    let id_token = issuer.mint(issuer.gitlab_claims(AUD, "ml-team/trainer", "main"), false);
    let exchanged = raw(
        &server.base,
        "POST",
        &format!("/api/v4/projects/{id}/trusted_publishers/token"),
        &[("Authorization", &bearer(&id_token))],
        b"",
    );
    assert_eq!(exchanged.status, 201, "{}", exchanged.text());
    assert_eq!(exchanged.json()["expires_in"], 900);
    let token = exchanged.json()["token"].as_str().unwrap().to_string();

    // A PRIVATE-TOKEN client publishes with it; the link is the ID token's.
    let client = Api::with_token(&server, &token);
    let reply = client.put_bytes(
        &format!("/api/v4/projects/{id}/packages/generic/pkg/1.0.0/f.bin?select=package_file"),
        b"x",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["pipelines"][0]["job"]["id"], "5151");
    // Only in the project it was exchanged for.
    let reply = client.put_bytes(
        &format!("/api/v4/projects/{other}/packages/generic/pkg/1.0.0/f.bin"),
        b"x",
    );
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(reply.text().contains("another project"), "{}", reply.text());
    // The project's rules still decide: without its rule, the token does nothing.
    let rules = Api::root(&server).get(&format!("/api/v4/projects/{id}/trusted_publishers"));
    let rule_id = rules.json()[0]["id"].as_u64().unwrap();
    assert_eq!(
        Api::root(&server)
            .delete(&format!(
                "/api/v4/projects/{id}/trusted_publishers/{rule_id}"
            ))
            .status,
        204
    );
    let reply = client.put_bytes(
        &format!("/api/v4/projects/{id}/packages/generic/pkg/1.0.1/f.bin"),
        b"x",
    );
    assert_eq!(reply.status, 403, "{}", reply.text());
    // Neither a personal token nor an exchanged one is exchanged again.
    let again = client.post_json(
        &format!("/api/v4/projects/{other}/trusted_publishers/token"),
        json!({}),
    );
    assert_eq!(again.status, 403, "{}", again.text());
    let root = Api::root(&server).post_json(
        &format!("/api/v4/projects/{id}/trusted_publishers/token"),
        json!({}),
    );
    assert_eq!(root.status, 403, "{}", root.text());
}

#[test]
fn unreachable_verifiers_and_garbage_credentials_are_clear_4xx_or_502() {
    // A GitLab nobody answers at: 502 naming it, never a 500.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let issuer = common::stubs::StubIssuer::start();
    let server = TestServer::start_with(&[
        "--gitlab-url",
        &dead,
        "--oidc-issuer",
        &issuer.url,
        "--oidc-audience",
        AUD,
    ]);
    let id = project(&server, "p", "private");
    let path = format!("/api/v4/projects/{id}/packages/generic/pkg/1.0.0/f.bin");
    let reply = upload(&server, &path, &[("JOB-TOKEN", "t")], b"x");
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert!(reply.text().contains(&dead), "{}", reply.text());
    // Bearer credentials that look like JWTs but are not, or are unsigned: 401.
    for garbage in [
        "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln".to_string(),
        "eyJ!!!.eyJ???.x".to_string(),
        format!(
            "eyJhbGciOiJub25lIn0.{}.",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(json!({"iss": issuer.url, "aud": AUD}).to_string())
        ),
        format!("eyJ{}", "A".repeat(20_000)),
    ] {
        let reply = upload(
            &server,
            &path,
            &[("Authorization", &bearer(&garbage))],
            b"x",
        );
        assert_eq!(reply.status, 401, "{garbage:.40}: {}", reply.text());
    }
}
