//! JSON shapes of GitLab's REST objects.

use chrono::SecondsFormat;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use crate::domain::ml_records::CiJob;
use crate::domain::records::{
    DeployToken, Group, GroupMember, Member, Package, PackageFile, PersonalAccessToken, Project,
    Timestamp, TrustedPublisher, User,
};

pub fn time(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Characters GitLab keeps as they are in a stored file name.
const FILE_NAME_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'_')
    .remove(b'-')
    .remove(b'+');

/// A file path as GitLab stores it: one percent-encoded component (`a/b/f` → `a%2Fb%2Ff`).
pub fn encoded_file_name(file_name: &str) -> String {
    utf8_percent_encode(file_name, FILE_NAME_KEEP).to_string()
}

pub fn user(user: &User, base: &str, with_private: bool) -> Value {
    let mut v = json!({
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "state": "active",
        "locked": false,
        "avatar_url": null,
        "web_url": format!("{base}/{}", user.username),
        "created_at": time(&user.created_at),
        "is_admin": user.admin,
        "bot": user.bot,
    });
    if with_private {
        v["email"] = json!(user.email);
    }
    v
}

pub fn token(token: &PersonalAccessToken, today: chrono::NaiveDate, secret: Option<&str>) -> Value {
    let mut v = json!({
        "id": token.id,
        "name": token.name,
        "revoked": token.revoked,
        "created_at": time(&token.created_at),
        "scopes": token.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "user_id": token.user_id,
        "last_used_at": null,
        "active": token.is_active(today),
        "expires_at": token.expires_at.map(|d| d.format("%Y-%m-%d").to_string()),
    });
    if let Some(secret) = secret {
        v["token"] = json!(secret);
    }
    v
}

pub fn project(project: &Project, base: &str, namespace: Value) -> Value {
    let full_path = project.path_with_namespace();
    json!({
        "id": project.id,
        "name": project.name,
        "path": project.path,
        "description": project.description,
        "name_with_namespace": format!("{} / {}", project.namespace, project.name),
        "path_with_namespace": full_path,
        "namespace": namespace,
        "visibility": project.visibility.as_str(),
        "created_at": time(&project.created_at),
        "creator_id": project.creator_id,
        "web_url": format!("{base}/{full_path}"),
        "default_branch": null,
        "packages_enabled": true,
        "model_registry_access_level": project.model_registry_access_level.as_str(),
        "model_experiments_access_level": project.model_registry_access_level.as_str(),
        "generic_duplicates_allowed": project.generic_duplicates_allowed,
        "ci_job_token_gitlab_projects": project.ci_job_token_gitlab_projects,
        "ci_job_token_access_level": project.ci_job_token_access_level as u8,
        "_links": {
            "self": format!("{base}/api/v4/projects/{}", project.id),
            "members": format!("{base}/api/v4/projects/{}/members", project.id),
        },
    })
}

pub fn member(member: &Member, user: &User, base: &str) -> Value {
    let mut v = self::user(user, base, false);
    v["access_level"] = json!(member.access_level as u8);
    v["created_at"] = json!(time(&member.created_at));
    v["expires_at"] = json!(member.expires_at.map(|d| d.format("%Y-%m-%d").to_string()));
    v
}

pub fn package(package: &Package, project: &Project, base: &str) -> Value {
    let web_path = format!(
        "/{}/-/packages/{}",
        project.path_with_namespace(),
        package.id
    );
    json!({
        "id": package.id,
        "name": package.name,
        "version": package.version,
        "package_type": package.package_type.as_str(),
        "status": package.status.as_str(),
        "created_at": time(&package.created_at),
        "last_downloaded_at": null,
        "tags": [],
        "pipeline": package.ci.as_ref().map(pipeline),
        "pipelines": package.ci.as_ref().map(pipeline).into_iter().collect::<Vec<_>>(),
        "_links": {
            "web_path": web_path,
            "delete_api_path": format!("{base}/api/v4/projects/{}/packages/{}", project.id, package.id),
        },
    })
}

pub fn package_file(file: &PackageFile) -> Value {
    json!({
        "id": file.id,
        "package_id": file.package_id,
        "project_id": file.project_id,
        "created_at": time(&file.created_at),
        "updated_at": time(&file.created_at),
        "file_name": encoded_file_name(&file.file_name),
        "size": file.size,
        "file_store": 1,
        "file_md5": file.md5,
        "file_sha1": file.sha1,
        "file_sha256": file.sha256,
        "file": { "url": format!("/packages/{}/files/{}", file.package_id, file.id) },
        "verification_retry_at": null,
        "verified_at": null,
        "verification_failure": null,
        "verification_retry_count": null,
        "verification_checksum": null,
        "verification_state": 0,
        "verification_started_at": null,
        "new_file_path": null,
        "file_final_path": null,
        "status": "default",
        "pipelines": file.ci.as_ref().map(pipeline).into_iter().collect::<Vec<_>>(),
        "format": file.format.as_ref().map(|f| f.format.clone()),
        "format_facts": file.format.as_ref().map(format_facts),
        "format_error": file.format.as_ref().and_then(|f| f.error.clone()),
        "format_warning": file.format.as_ref().and_then(|f| f.warning()),
    })
}

/// The header facts of a safetensors or GGUF file.
fn format_facts(facts: &crate::domain::formats::FormatFacts) -> Value {
    json!({
        "tensor_count": facts.tensor_count,
        "dtypes": facts.dtypes,
        "parameter_count": facts.parameter_count,
    })
}

fn date(d: Option<chrono::NaiveDate>) -> Value {
    json!(d.map(|d| d.format("%Y-%m-%d").to_string()))
}

pub fn group(group: &Group, base: &str) -> Value {
    json!({
        "id": group.id,
        "name": group.name,
        "path": group.path,
        "full_path": group.full_path,
        "full_name": group.full_path.replace('/', " / "),
        "description": group.description,
        "visibility": group.visibility.as_str(),
        "parent_id": group.parent_id,
        "web_url": format!("{base}/groups/{}", group.full_path),
        "avatar_url": null,
        "created_at": time(&group.created_at),
    })
}

pub fn group_namespace(group: &Group, base: &str) -> Value {
    json!({
        "id": group.id,
        "name": group.name,
        "path": group.path,
        "kind": "group",
        "full_path": group.full_path,
        "parent_id": group.parent_id,
        "avatar_url": null,
        "web_url": format!("{base}/groups/{}", group.full_path),
    })
}

pub fn user_namespace(user: &User, base: &str) -> Value {
    json!({
        "id": user.id,
        "name": user.name,
        "path": user.username,
        "kind": "user",
        "full_path": user.username,
        "parent_id": null,
        "avatar_url": null,
        "web_url": format!("{base}/{}", user.username),
    })
}

pub fn group_member(member: &GroupMember, user: &User, base: &str) -> Value {
    let mut v = self::user(user, base, false);
    v["access_level"] = json!(member.access_level as u8);
    v["created_at"] = json!(time(&member.created_at));
    v["expires_at"] = date(member.expires_at);
    v
}

pub fn deploy_token(token: &DeployToken, today: chrono::NaiveDate, secret: Option<&str>) -> Value {
    let mut v = json!({
        "id": token.id,
        "name": token.name,
        "username": token.username,
        "expires_at": date(token.expires_at),
        "scopes": token.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "revoked": token.revoked,
        "expired": token.expires_at.is_some_and(|d| d <= today),
        "package_names": token.package_names,
    });
    if let Some(secret) = secret {
        v["token"] = json!(secret);
    }
    v
}

pub fn project_token(
    token: &PersonalAccessToken,
    level: crate::domain::records::AccessLevel,
    today: chrono::NaiveDate,
    secret: Option<&str>,
) -> Value {
    let mut v = self::token(token, today, secret);
    v["access_level"] = json!(level as u8);
    v
}

pub fn trusted_publisher(rule: &TrustedPublisher) -> Value {
    json!({
        "id": rule.id,
        "project_id": rule.project_id,
        "issuer": rule.issuer,
        "claims": rule.claims,
        "access_level": rule.access_level as u8,
        "description": rule.description,
        "created_at": time(&rule.created_at),
    })
}

/// A verified CI link as GitLab's `pipeline` object of a package shows it.
pub fn pipeline(ci: &CiJob) -> Value {
    json!({
        "id": ci.pipeline_id.as_deref().and_then(|id| id.parse::<u64>().ok()),
        "sha": ci.commit_sha,
        "ref": ci.ref_name,
        "web_url": ci.pipeline_url,
        "user": { "username": ci.user },
        "job": { "id": ci.job_id, "name": ci.job_name, "web_url": ci.job_url },
        "verified_by": ci.verified_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_file_names_are_one_encoded_component() {
        assert_eq!(encoded_file_name("a/b/model.onnx"), "a%2Fb%2Fmodel.onnx");
        assert_eq!(encoded_file_name("my model+1.pkl"), "my%20model+1.pkl");
    }
}
