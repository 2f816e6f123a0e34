//! GitLab CI job tokens: `CI_JOB_TOKEN` is verified by calling the job's GitLab
//! `GET /api/v4/job` with it (200: the running job; 401: revoked, finished or unknown). The
//! answer is cached by the token's hash for at most a minute.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use super::{secret_key, ExpiringCache};
use crate::domain::access::{Identity, Machine};
use crate::domain::ci;
use crate::domain::Error;

/// How long a verified job is trusted without asking its GitLab again.
const JOB_TTL: Duration = Duration::from_secs(60);
/// How long a refused token stays refused without asking again.
const REFUSED_TTL: Duration = Duration::from_secs(10);
/// A job document larger than this is not a job.
const MAX_JOB_BYTES: usize = 256 * 1024;

#[derive(Clone)]
enum Verdict {
    Job(Box<Machine>),
    Refused(String),
}

pub struct GitlabJobs {
    client: reqwest::Client,
    urls: Vec<String>,
    cache: Mutex<ExpiringCache<Verdict>>,
}

/// The GitLab project path a job's `web_url` names (`<gitlab>/<path>/-/jobs/<id>`).
fn project_path_of(gitlab_url: &str, web_url: &str) -> Option<String> {
    let rest = web_url.strip_prefix(gitlab_url.trim_end_matches('/'))?;
    let (path, _) = rest.trim_start_matches('/').split_once("/-/")?;
    (!path.is_empty()).then(|| path.to_string())
}

/// The machine a GitLab's job document describes.
fn machine_of(gitlab_url: &str, job: &Value) -> Result<Machine, String> {
    if let Some(status) = job["status"].as_str() {
        if !matches!(status, "running" | "pending" | "created") {
            return Err(format!("the job is {status}"));
        }
    }
    let project_id = job["pipeline"]["project_id"]
        .as_u64()
        .ok_or("the job document has no pipeline.project_id")?;
    let project_path = job["web_url"]
        .as_str()
        .and_then(|url| project_path_of(gitlab_url, url))
        .or_else(|| {
            job["pipeline"]["web_url"]
                .as_str()
                .and_then(|url| project_path_of(gitlab_url, url))
        })
        .ok_or("the job document has no web_url under the GitLab's URL")?;
    Ok(Machine {
        identity: Identity::GitlabJob {
            gitlab_url: gitlab_url.to_string(),
            project_id,
            project_path,
        },
        can_write: true,
        ci: Some(ci::from_gitlab_job(gitlab_url, job)),
    })
}

impl GitlabJobs {
    pub fn new(client: reqwest::Client, urls: Vec<String>) -> Self {
        GitlabJobs {
            client,
            urls: urls
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .filter(|u| !u.is_empty())
                .collect(),
            cache: Mutex::new(ExpiringCache::new(10_000)),
        }
    }

    pub fn is_configured(&self) -> bool {
        !self.urls.is_empty()
    }

    /// The job behind a job token, or why it is refused (401, naming the reason).
    pub async fn verify(&self, token: &str) -> Result<Machine, Error> {
        if self.urls.is_empty() {
            return Err(Error::UnauthorizedBecause(
                "job tokens are not accepted: the server has no --gitlab-url to verify them with"
                    .into(),
            ));
        }
        let key = secret_key(token);
        let cached = self.cache.lock().ok().and_then(|mut c| c.get(&key));
        let verdict = match cached {
            Some(verdict) => verdict,
            None => {
                let verdict = self.ask(token).await?;
                let ttl = match &verdict {
                    Verdict::Job(_) => JOB_TTL,
                    Verdict::Refused(_) => REFUSED_TTL,
                };
                if let Ok(mut cache) = self.cache.lock() {
                    cache.insert(key, verdict.clone(), ttl);
                }
                verdict
            }
        };
        match verdict {
            Verdict::Job(machine) => Ok(*machine),
            Verdict::Refused(reason) => Err(Error::UnauthorizedBecause(reason)),
        }
    }

    /// Asks each configured GitLab in turn; the first that knows the job wins.
    async fn ask(&self, token: &str) -> Result<Verdict, Error> {
        let mut reasons = Vec::new();
        let mut unreachable = Vec::new();
        for gitlab in &self.urls {
            let url = format!("{gitlab}/api/v4/job");
            let response = match self
                .client
                .get(&url)
                .header("JOB-TOKEN", token)
                .send()
                .await
            {
                Ok(response) => response,
                Err(error) => {
                    tracing::warn!(gitlab = %gitlab, error = %error, "GitLab unreachable for a job token");
                    unreachable.push(gitlab.clone());
                    continue;
                }
            };
            let status = response.status();
            if status.is_success() {
                let body = match read_limited(response).await {
                    Some(body) => body,
                    None => {
                        reasons.push(format!("{gitlab} answered a job document that is not JSON"));
                        continue;
                    }
                };
                return Ok(match machine_of(gitlab, &body) {
                    Ok(machine) => Verdict::Job(Box::new(machine)),
                    Err(why) => Verdict::Refused(format!("the job token was refused: {why}")),
                });
            }
            if status.as_u16() == 401 || status.as_u16() == 403 || status.as_u16() == 404 {
                reasons.push(format!(
                    "{gitlab} does not know it (answered {}: the job is finished, the token is revoked, or it is another GitLab's)",
                    status.as_u16()
                ));
            } else {
                tracing::warn!(gitlab = %gitlab, status = status.as_u16(), "GitLab failed to verify a job token");
                unreachable.push(gitlab.clone());
            }
        }
        if reasons.is_empty() && !unreachable.is_empty() {
            return Err(Error::Upstream(format!(
                "the job token could not be verified: {} did not answer",
                unreachable.join(", ")
            )));
        }
        Ok(Verdict::Refused(format!(
            "the job token was refused: {}",
            reasons.join("; ")
        )))
    }
}

/// A JSON body of at most [`MAX_JOB_BYTES`].
pub(crate) async fn read_limited(mut response: reqwest::Response) -> Option<Value> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_JOB_BYTES {
            return None;
        }
    }
    serde_json::from_slice(&body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_path_comes_from_the_job_url() {
        assert_eq!(
            project_path_of(
                "https://gl.example",
                "https://gl.example/team/sub/p/-/jobs/8"
            )
            .as_deref(),
            Some("team/sub/p")
        );
        assert_eq!(
            project_path_of("https://gl.example", "https://other/team/p/-/jobs/8"),
            None
        );
    }

    #[test]
    fn a_finished_job_is_refused() {
        let job = serde_json::json!({
            "id": 8, "status": "success", "web_url": "https://gl/t/p/-/jobs/8",
            "pipeline": {"id": 1, "project_id": 3}
        });
        assert!(machine_of("https://gl", &job)
            .unwrap_err()
            .contains("success"));
        let running = serde_json::json!({
            "id": 8, "status": "running", "web_url": "https://gl/t/p/-/jobs/8",
            "pipeline": {"id": 1, "project_id": 3}
        });
        let machine = machine_of("https://gl", &running).unwrap();
        assert_eq!(
            machine.identity,
            Identity::GitlabJob {
                gitlab_url: "https://gl".into(),
                project_id: 3,
                project_path: "t/p".into()
            }
        );
    }
}
