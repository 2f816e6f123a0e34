//! CI job links from `gitlab.CI_*` tags: a job running in GitLab CI tags its MLflow run with its
//! predefined variables, and the run (or the version it becomes) links back to the job.

use super::ml_records::CiJob;

/// The tag prefix under which CI variables travel.
pub const CI_TAG_PREFIX: &str = "gitlab.";

/// Applies one tag to a CI link; returns whether the tag was a CI tag. `None` clears the field
/// (a deleted tag).
pub fn apply_tag(ci: &mut CiJob, key: &str, value: Option<&str>) -> bool {
    let Some(variable) = key.strip_prefix(CI_TAG_PREFIX) else {
        return false;
    };
    if ci.verified_by.is_some() {
        // Tags anyone can type never change a link a CI identity's verification made.
        return false;
    }
    let field = match variable {
        "CI_JOB_ID" => &mut ci.job_id,
        "CI_JOB_NAME" => &mut ci.job_name,
        "CI_JOB_URL" => &mut ci.job_url,
        "CI_PIPELINE_ID" => &mut ci.pipeline_id,
        "CI_PIPELINE_URL" => &mut ci.pipeline_url,
        "CI_COMMIT_REF_NAME" | "CI_COMMIT_BRANCH" => &mut ci.ref_name,
        "CI_COMMIT_SHA" => &mut ci.commit_sha,
        "CI_MERGE_REQUEST_IID" => &mut ci.merge_request_iid,
        "CI_MERGE_REQUEST_TITLE" => &mut ci.merge_request_title,
        "CI_MERGE_REQUEST_URL" => &mut ci.merge_request_url,
        "GITLAB_USER_LOGIN" | "CI_USER" => &mut ci.user,
        _ => return false,
    };
    *field = value.filter(|v| !v.is_empty()).map(str::to_string);
    true
}

/// Builds a link from a set of tags; `None` when no CI tag is among them.
pub fn from_tags<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<CiJob> {
    let mut ci = CiJob::default();
    let mut project_url = None;
    for (key, value) in tags {
        if key == "gitlab.CI_MERGE_REQUEST_PROJECT_URL" {
            project_url = Some(value.to_string());
        }
        apply_tag(&mut ci, key, Some(value));
    }
    if ci.merge_request_url.is_none() {
        if let (Some(base), Some(iid)) = (project_url, &ci.merge_request_iid) {
            ci.merge_request_url = Some(format!(
                "{}/-/merge_requests/{iid}",
                base.trim_end_matches('/')
            ));
        }
    }
    (!ci.is_empty()).then_some(ci)
}

/// Merges newer fields over older ones. A verified link (from a CI identity) is kept as it is
/// against unverified ones (tags, request bodies) and replaces them.
pub fn merge(old: Option<CiJob>, new: Option<CiJob>) -> Option<CiJob> {
    match (old, new) {
        (None, new) => new,
        (old, None) => old,
        (Some(old), Some(new)) if old.verified_by.is_some() && new.verified_by.is_none() => {
            Some(old)
        }
        (Some(_), Some(new)) if new.verified_by.is_some() => Some(new),
        (Some(old), Some(new)) => Some(CiJob {
            job_id: new.job_id.or(old.job_id),
            job_name: new.job_name.or(old.job_name),
            job_url: new.job_url.or(old.job_url),
            pipeline_id: new.pipeline_id.or(old.pipeline_id),
            pipeline_url: new.pipeline_url.or(old.pipeline_url),
            ref_name: new.ref_name.or(old.ref_name),
            commit_sha: new.commit_sha.or(old.commit_sha),
            merge_request_iid: new.merge_request_iid.or(old.merge_request_iid),
            merge_request_title: new.merge_request_title.or(old.merge_request_title),
            merge_request_url: new.merge_request_url.or(old.merge_request_url),
            user: new.user.or(old.user),
            verified_by: None,
        }),
    }
}

/// A merge request pipeline's ref (`refs/merge-requests/<iid>/head` or `/merge`): its iid.
fn merge_request_of(git_ref: Option<&str>) -> Option<String> {
    let rest = git_ref?.strip_prefix("refs/merge-requests/")?;
    let (iid, _) = rest.split_once('/')?;
    (!iid.is_empty() && iid.bytes().all(|b| b.is_ascii_digit())).then(|| iid.to_string())
}

/// Fills the merge request of a link whose ref names one, with its URL under `project_url`.
fn with_merge_request(mut ci: CiJob, project_url: Option<String>) -> CiJob {
    if let Some(iid) = merge_request_of(ci.ref_name.as_deref()) {
        ci.merge_request_url = project_url.map(|url| format!("{url}/-/merge_requests/{iid}"));
        ci.merge_request_iid = Some(iid);
    }
    ci
}

/// The link of a GitLab CI job as its GitLab's `GET /api/v4/job` describes it.
pub fn from_gitlab_job(gitlab_url: &str, job: &serde_json::Value) -> CiJob {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let pipeline = &job["pipeline"];
    let project_url = job["web_url"]
        .as_str()
        .and_then(|url| url.split_once("/-/jobs/"))
        .map(|(project, _)| project.to_string());
    let ci = CiJob {
        job_id: text(&job["id"]),
        job_name: text(&job["name"]),
        job_url: text(&job["web_url"]),
        pipeline_id: text(&pipeline["id"]),
        pipeline_url: text(&pipeline["web_url"]),
        ref_name: text(&job["ref"]).or_else(|| text(&pipeline["ref"])),
        commit_sha: text(&pipeline["sha"]).or_else(|| text(&job["commit"]["id"])),
        merge_request_iid: None,
        merge_request_title: None,
        merge_request_url: None,
        user: text(&job["user"]["username"]),
        verified_by: Some(format!("gitlab job token: {gitlab_url}")),
    };
    with_merge_request(ci, project_url)
}

/// The link an OIDC ID token's claims describe: GitLab CI's (`project_path`, `job_id`,
/// `pipeline_id`, `ref`, `sha`, `user_login`) or GitHub Actions' (`repository`, `run_id`,
/// `workflow`, `ref`, `sha`, `actor`).
pub fn from_oidc_claims(
    issuer: &str,
    claims: &std::collections::BTreeMap<String, String>,
) -> CiJob {
    let claim = |k: &str| claims.get(k).filter(|v| !v.is_empty()).cloned();
    let base = issuer.trim_end_matches('/');
    let mut ci = CiJob {
        ref_name: claim("ref"),
        commit_sha: claim("sha"),
        verified_by: Some(format!("oidc: {issuer}")),
        ..CiJob::default()
    };
    if let Some(repository) = claim("repository") {
        // GitHub Actions: the run is the pipeline; the job is the workflow's run attempt.
        let server = if base == "https://token.actions.githubusercontent.com" {
            "https://github.com".to_string()
        } else {
            base.to_string()
        };
        let run_url =
            claim("run_id").map(|run| format!("{server}/{repository}/actions/runs/{run}"));
        ci.pipeline_id = claim("run_id");
        ci.pipeline_url = run_url.clone();
        ci.job_id = claim("run_id");
        ci.job_name = claim("workflow").or_else(|| claim("job_workflow_ref"));
        ci.job_url = run_url;
        ci.user = claim("actor");
    } else {
        let project = claim("project_path");
        ci.job_id = claim("job_id");
        ci.pipeline_id = claim("pipeline_id");
        ci.user = claim("user_login");
        if let Some(project) = &project {
            ci.job_url = ci
                .job_id
                .as_ref()
                .map(|job| format!("{base}/{project}/-/jobs/{job}"));
            ci.pipeline_url = ci
                .pipeline_id
                .as_ref()
                .map(|p| format!("{base}/{project}/-/pipelines/{p}"));
        }
        ci.ref_name = ci.ref_name.or_else(|| claim("ref_path"));
        let project_url = project.map(|p| format!("{base}/{p}"));
        return with_merge_request(ci, project_url);
    }
    ci
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verified_link_is_not_changed_by_tags() {
        let job = serde_json::json!({
            "id": 8, "name": "train", "ref": "main", "web_url": "https://gl/team/p/-/jobs/8",
            "pipeline": {"id": 3, "project_id": 5, "sha": "abc", "ref": "main", "web_url": "https://gl/team/p/-/pipelines/3"},
            "user": {"username": "alice"}
        });
        let verified = from_gitlab_job("https://gl", &job);
        assert_eq!(verified.job_id.as_deref(), Some("8"));
        assert_eq!(verified.commit_sha.as_deref(), Some("abc"));
        assert_eq!(verified.user.as_deref(), Some("alice"));
        let typed = from_tags([("gitlab.CI_JOB_ID", "666")]);
        let kept = merge(Some(verified.clone()), typed.clone()).unwrap();
        assert_eq!(kept, verified);
        assert_eq!(merge(typed, Some(verified.clone())).unwrap(), verified);
        let mut ci = verified.clone();
        assert!(!apply_tag(&mut ci, "gitlab.CI_JOB_ID", Some("1")));
        assert_eq!(ci, verified);
    }

    #[test]
    fn merge_request_pipelines_link_their_merge_request() {
        let job = serde_json::json!({
            "id": 8, "ref": "refs/merge-requests/12/head", "web_url": "https://gl/team/p/-/jobs/8",
            "pipeline": {"id": 3, "project_id": 5}
        });
        let ci = from_gitlab_job("https://gl", &job);
        assert_eq!(ci.merge_request_iid.as_deref(), Some("12"));
        assert_eq!(
            ci.merge_request_url.as_deref(),
            Some("https://gl/team/p/-/merge_requests/12")
        );
        let branch = serde_json::json!({"id": 8, "ref": "main", "pipeline": {"id": 3}});
        assert_eq!(
            from_gitlab_job("https://gl", &branch).merge_request_iid,
            None
        );
        assert_eq!(merge_request_of(Some("refs/merge-requests/x/head")), None);
    }

    #[test]
    fn oidc_claims_make_a_link() {
        let claims: std::collections::BTreeMap<String, String> = [
            ("project_path", "team/p"),
            ("job_id", "9"),
            ("pipeline_id", "4"),
            ("ref", "main"),
            ("sha", "def"),
            ("user_login", "bob"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let ci = from_oidc_claims("https://gl/", &claims);
        assert_eq!(ci.job_url.as_deref(), Some("https://gl/team/p/-/jobs/9"));
        assert_eq!(ci.user.as_deref(), Some("bob"));
        let github: std::collections::BTreeMap<String, String> = [
            ("repository", "octo/repo"),
            ("run_id", "77"),
            ("workflow", "release"),
            ("actor", "octocat"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let ci = from_oidc_claims("https://token.actions.githubusercontent.com", &github);
        assert_eq!(
            ci.job_url.as_deref(),
            Some("https://github.com/octo/repo/actions/runs/77")
        );
        assert_eq!(ci.job_name.as_deref(), Some("release"));
    }

    #[test]
    fn tags_make_a_link() {
        let ci = from_tags([
            ("gitlab.CI_JOB_ID", "42"),
            ("gitlab.CI_JOB_URL", "https://ci/jobs/42"),
            ("gitlab.CI_MERGE_REQUEST_IID", "7"),
            ("gitlab.CI_MERGE_REQUEST_PROJECT_URL", "https://gl/team/p/"),
            ("gitlab.GITLAB_USER_LOGIN", "alice"),
            ("unrelated", "x"),
        ])
        .unwrap();
        assert_eq!(ci.job_id.as_deref(), Some("42"));
        assert_eq!(
            ci.merge_request_url.as_deref(),
            Some("https://gl/team/p/-/merge_requests/7")
        );
        assert_eq!(ci.user.as_deref(), Some("alice"));
        assert!(from_tags([("mlflow.user", "x")]).is_none());
    }

    #[test]
    fn deleting_a_tag_clears_its_field() {
        let mut ci =
            from_tags([("gitlab.CI_JOB_ID", "1"), ("gitlab.CI_PIPELINE_ID", "2")]).unwrap();
        assert!(apply_tag(&mut ci, "gitlab.CI_JOB_ID", None));
        assert_eq!(ci.job_id, None);
        assert_eq!(ci.pipeline_id.as_deref(), Some("2"));
        assert!(!apply_tag(&mut ci, "other", None));
    }
}
