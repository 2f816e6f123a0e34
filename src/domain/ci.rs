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

/// Merges newer fields over older ones.
pub fn merge(old: Option<CiJob>, new: Option<CiJob>) -> Option<CiJob> {
    match (old, new) {
        (None, new) => new,
        (old, None) => old,
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
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
