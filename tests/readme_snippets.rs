//! The README's snippets, run as a new user (or a CI job) would run them: the Quickstart's shell
//! block against a fresh server, and the CI section's setup commands, GitLab CI job-token and
//! `id_tokens:` scripts and GitHub Actions step against a stub GitLab and local OIDC issuers.

mod common;

use std::path::Path;
use std::process::Command;

use common::stubs::{StubGitlab, StubIssuer, ACTIONS_REQUEST_TOKEN};
use common::*;
use serde_json::json;

/// The README's fenced blocks: (info string, body).
fn readme_blocks() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in readme.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_string(), String::new())),
            (Some(_), Some(_)) => blocks.push(open.take().expect("open block")),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

fn snippet(name: &str) -> String {
    readme_block(&format!("ci-snippet={name}"))
}

/// The commands of a GitLab CI job's `script:` (YAML plain or single-quoted items).
fn gitlab_script(yaml: &str) -> String {
    let mut commands = Vec::new();
    let mut in_script = false;
    for line in yaml.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("script:") {
            in_script = true;
            continue;
        }
        if in_script {
            match trimmed.strip_prefix("- ") {
                Some(item) => {
                    let item = item.trim();
                    let command = match item.strip_prefix('\'').and_then(|i| i.strip_suffix('\'')) {
                        Some(quoted) => quoted.replace("''", "'"),
                        None => item.to_string(),
                    };
                    commands.push(command);
                }
                None => in_script = false,
            }
        }
    }
    assert!(!commands.is_empty(), "no script in {yaml}");
    commands.join("\n")
}

/// The value of a `key: value` line of a YAML block.
fn yaml_value(yaml: &str, key: &str) -> String {
    yaml.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{key}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {key} in {yaml}"))
}

/// A GitHub Actions step's `run: |` block.
fn github_run(yaml: &str) -> String {
    let mut lines = yaml.lines();
    let run = lines
        .by_ref()
        .find(|l| l.trim_start().starts_with("run: |"))
        .expect("a run: | step");
    let indent = run.len() - run.trim_start().len();
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .map(|l| l.trim_start())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs a script with bash (`-euo pipefail`) in `dir`; panics with its output on failure.
fn run(script: &str, dir: &Path, env: &[(&str, &str)]) -> String {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .expect("bash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the snippet failed:\n{script}\n---\n{text}"
    );
    text
}

#[test]
fn the_quickstart_runs_as_written() {
    let server = TestServer::start();
    let work = tempfile::tempdir().expect("work dir");
    std::fs::create_dir(work.path().join("modelyard-data")).expect("data dir stand-in");
    std::fs::write(
        work.path().join("modelyard-data/initial_root_token"),
        ROOT_TOKEN,
    )
    .expect("token file");
    let quickstart = readme_blocks()
        .into_iter()
        .find(|(info, body)| info == "sh" && body.contains("export TOKEN="))
        .expect("the Quickstart's shell block")
        .1
        .replace("http://127.0.0.1:8080", &server.base);
    run(&quickstart, work.path(), &[]);
    let uploaded = std::fs::read(work.path().join("model.onnx")).expect("the snippet made a file");
    let downloaded = std::fs::read(work.path().join("downloaded.onnx")).expect("downloaded");
    assert_eq!(uploaded.len(), 1 << 20);
    assert_eq!(uploaded, downloaded);
    let version =
        Api::root(&server).get("/api/v4/projects/root%2Ffraud/ml/models/fraud/versions/1.2.0");
    assert_eq!(
        version.status,
        200,
        "the upload made a model version: {}",
        version.text()
    );
}

#[test]
fn the_ci_snippets_publish_with_verified_links() {
    let gitlab = StubGitlab::start();
    gitlab.add_job("readme-job-token", 4711, 42, "ml-team/trainer");
    let gitlab_issuer = StubIssuer::start();
    let github_issuer = StubIssuer::start();
    let id_token_yaml = snippet("gitlab-id-token");
    let audience = yaml_value(&id_token_yaml, "aud");
    let issuers = format!("{},{}", gitlab_issuer.url, github_issuer.url);
    let server = TestServer::start_with(&[
        "--gitlab-url",
        &gitlab.url,
        "--oidc-issuer",
        &issuers,
        "--oidc-audience",
        &audience,
    ]);
    let root = Api::root(&server);
    let group = root.post_json("/api/v4/groups", json!({ "name": "ml-team" }));
    assert_eq!(group.status, 201, "{}", group.text());
    let project = root.post_json(
        "/api/v4/projects",
        json!({ "name": "fraud", "namespace_id": group.json()["id"] }),
    );
    assert_eq!(project.status, 201, "{}", project.text());
    let model = root.post_json(
        "/api/v4/projects/ml-team%2Ffraud/ml/models",
        json!({ "name": "fraud" }),
    );
    assert_eq!(model.status, 201, "{}", model.text());

    let work = tempfile::tempdir().expect("work dir");
    let admin_env = [
        ("TOKEN", ROOT_TOKEN),
        ("MODELYARD_URL", server.base.as_str()),
        ("GITLAB_URL", gitlab_issuer.url.as_str()),
        ("GITHUB_ISSUER", github_issuer.url.as_str()),
    ];
    run(&snippet("setup-job-token"), work.path(), &admin_env);
    run(
        &snippet("setup-trusted-publishers"),
        work.path(),
        &admin_env,
    );

    let versions = |v: &str| {
        root.get(&format!(
            "/api/v4/projects/ml-team%2Ffraud/ml/models/fraud/versions/{v}"
        ))
    };

    // GitLab CI with the job token.
    let job_env = [
        ("CI_JOB_TOKEN", "readme-job-token"),
        ("CI_PIPELINE_IID", "17"),
        ("MODELYARD_URL", server.base.as_str()),
    ];
    run(
        &gitlab_script(&snippet("gitlab-job-token")),
        work.path(),
        &job_env,
    );
    let version = versions("1.0.17");
    assert_eq!(version.status, 200, "{}", version.text());
    assert_eq!(version.json()["ci_job"]["job_id"], "4711");
    assert_eq!(version.json()["ci_job"]["user"], "alice");

    // GitLab CI with `id_tokens:`.
    let id_token = gitlab_issuer.mint(
        gitlab_issuer.gitlab_claims(&audience, "ml-team/trainer", "main"),
        false,
    );
    let oidc_env = [
        ("MODELYARD_ID_TOKEN", id_token.as_str()),
        ("CI_PIPELINE_IID", "18"),
        ("MODELYARD_URL", server.base.as_str()),
    ];
    run(&gitlab_script(&id_token_yaml), work.path(), &oidc_env);
    let version = versions("1.1.18");
    assert_eq!(version.status, 200, "{}", version.text());
    assert_eq!(version.json()["ci_job"]["job_id"], "5151");
    assert_eq!(
        version.json()["ci_job"]["verified_by"],
        format!("oidc: {}", gitlab_issuer.url)
    );

    // GitHub Actions.
    github_issuer.set_actions_claims(json!({
        "repository": "octo/trainer", "workflow": "release", "ref": "refs/tags/v2.0.0",
        "sha": "feedface", "run_id": "31337", "actor": "octocat"
    }));
    let request_url = github_issuer.actions_request_url();
    let actions_env = [
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", ACTIONS_REQUEST_TOKEN),
        ("ACTIONS_ID_TOKEN_REQUEST_URL", request_url.as_str()),
        ("GITHUB_RUN_NUMBER", "3"),
        ("MODELYARD_URL", server.base.as_str()),
    ];
    let step = github_run(&snippet("github-actions"));
    // The step names the server by its external URL, which is also the audience it asks for.
    let step = step.replace("audience=$MODELYARD_URL", &format!("audience={audience}"));
    run(&step, work.path(), &actions_env);
    let version = versions("2.0.3");
    assert_eq!(version.status, 200, "{}", version.text());
    assert_eq!(version.json()["ci_job"]["pipeline_id"], "31337");
    assert_eq!(version.json()["ci_job"]["user"], "octocat");
}

/// The push/pull, format-hints and signature-policy snippets, in that order, against a fresh
/// server: a directory pushed and sealed, pulled by requirement, its safetensors file's facts
/// printed, and the model's signature policy set.
#[test]
fn the_push_pull_format_and_signature_snippets_run_as_written() {
    let server = TestServer::start();
    project(&server, "fraud", "private");
    let work = tempfile::tempdir().expect("work dir");
    let dir = work.path().join("model-dir");
    std::fs::create_dir_all(dir.join("weights")).expect("model dir");
    // A safetensors file: the header's length, the header, the tensor's 24 bytes.
    let header = br#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#;
    let mut weights = (header.len() as u64).to_le_bytes().to_vec();
    weights.extend_from_slice(header);
    weights.extend_from_slice(&[7u8; 24]);
    std::fs::write(dir.join("weights/model.safetensors"), &weights).expect("weights");
    std::fs::write(dir.join("README.txt"), b"fraud model\n").expect("readme");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_modelyard"))
        .parent()
        .expect("the binary's directory");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [("TOKEN", ROOT_TOKEN), ("PATH", path.as_str())];
    let local = |name: &str| snippet(name).replace("http://127.0.0.1:8080", &server.base);

    let pushed = run(&local("push-pull"), work.path(), &env);
    assert!(pushed.contains("sealed fraud 1.3.0: sha256:"), "{pushed}");
    assert_eq!(
        std::fs::read(work.path().join("deployed/weights/model.safetensors")).expect("pulled"),
        weights
    );
    assert_eq!(
        std::fs::read(work.path().join("deployed/README.txt")).expect("pulled"),
        b"fraud model\n"
    );
    let version =
        Api::root(&server).get("/api/v4/projects/root%2Ffraud/ml/models/fraud/versions/1.3.0");
    assert_eq!(version.json()["sealed"], true, "{}", version.text());

    let formats = run(&local("format-hints"), work.path(), &env);
    assert!(
        formats.contains("model.safetensors safetensors 1 None"),
        "{formats}"
    );
    let policy = run(&local("signature-policy"), work.path(), &env);
    assert!(
        policy.contains(r#""signature_policy":"enforce""#),
        "{policy}"
    );
}
