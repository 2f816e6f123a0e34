//! The records of the model registry: models, versions, experiments, candidates (runs), their
//! params, metrics and tags, and CI job links.

use serde::{Deserialize, Serialize};

use super::records::Timestamp;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Model {
    pub id: u64,
    pub project_id: u64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub author_id: Option<u64>,
    /// The model's default experiment, `[model]<name>`.
    pub experiment_id: u64,
    /// The last per-model version sequence number handed out (MLflow's `version`).
    #[serde(default)]
    pub version_seq: u64,
    /// The highest version by SemVer precedence, prereleases included (what the next automatic
    /// version follows); kept as versions are created and deleted.
    #[serde(default)]
    pub latest_version: Option<String>,
    /// The highest release (no prerelease): what "latest" means when the model has one.
    #[serde(default)]
    pub latest_release: Option<String>,
    /// Aliases only Maintainers move or delete (`production`, say).
    #[serde(default)]
    pub protected_aliases: Vec<String>,
    /// When releases of this model are sealed without being asked to.
    #[serde(default)]
    pub auto_seal: AutoSeal,
    /// How versions' SemVer bumps are checked against their `MLmodel` signature.
    #[serde(default)]
    pub signature_policy: super::signatures::SignaturePolicy,
    /// The rules a version passes before a protected alias moves to it or it is sealed
    /// (`metrics.auc >= 0.92`, `ci_link`, `no_prerelease`), in canonical spelling; see
    /// [`super::promotion`].
    #[serde(default)]
    pub promotion_rules: Vec<String>,
    /// Which versions a retention run deletes (none: nothing goes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<super::retention::RetentionRules>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelVersion {
    pub id: u64,
    pub project_id: u64,
    pub model_id: u64,
    /// A valid SemVer 2.0.0 string.
    pub version: String,
    /// Per-model sequence number: 1, 2, 3… in creation order.
    pub seq: u64,
    #[serde(default)]
    pub description: String,
    pub author_id: Option<u64>,
    /// The candidate holding this version's params, metrics and CI link.
    pub candidate_id: u64,
    /// The `ml_model` package `<model name>/<version>` holding the files.
    pub package_id: u64,
    /// Where the files came from, as the client named it (`runs:/…`, `models:/…`).
    #[serde(default)]
    pub source: Option<String>,
    /// The run that produced this version, when the client named one.
    #[serde(default)]
    pub source_run_id: Option<String>,
    /// MLflow's (deprecated) stage: Staging, Production or Archived; `None` when unset.
    #[serde(default)]
    pub stage: Option<String>,
    /// Set once the version is sealed: its files never change again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<Seal>,
    /// A signature check that found the SemVer bump too small (the model's policy warns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_check: Option<super::signatures::SignatureCheck>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A sealed version's frozen manifest: its digest, and who sealed it when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Seal {
    /// `sha256:<hex>` of the canonical JSON of the sealed manifest.
    pub manifest_digest: String,
    pub sealed_at: Timestamp,
    /// The sealer as the manifest names them (a username, or the CI identity).
    pub sealed_by: String,
    #[serde(default)]
    pub sealed_by_id: Option<u64>,
}

/// A model's automatic sealing of releases (prereleases are never sealed automatically).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum AutoSeal {
    /// Versions are sealed only when asked to (`POST .../seal`).
    #[default]
    Off,
    /// A release made by promoting a candidate is sealed as it is created.
    OnPromote,
    /// A release created with its files in one step (promotion, MLflow's
    /// `create_model_version` from a source, an OCI push) is sealed as it is created.
    OnCreateWithFiles,
}

impl AutoSeal {
    pub fn parse(s: &str) -> Option<AutoSeal> {
        match s {
            "off" => Some(AutoSeal::Off),
            "on_promote" => Some(AutoSeal::OnPromote),
            "on_create_with_files" => Some(AutoSeal::OnCreateWithFiles),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AutoSeal::Off => "off",
            AutoSeal::OnPromote => "on_promote",
            AutoSeal::OnCreateWithFiles => "on_create_with_files",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    #[default]
    Active,
    Deleted,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Active => "active",
            Lifecycle::Deleted => "deleted",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Experiment {
    pub id: u64,
    pub project_id: u64,
    /// Per-project number; MLflow's `experiment_id`.
    pub iid: u64,
    pub name: String,
    /// Set for a model's default experiment.
    pub model_id: Option<u64>,
    pub creator_id: Option<u64>,
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// The `artifact_location` an MLflow client asked for: recorded and returned; artifacts are
    /// still stored here.
    #[serde(default)]
    pub artifact_location: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Scheduled,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    pub fn parse(s: &str) -> Option<RunStatus> {
        match s.to_ascii_uppercase().as_str() {
            "RUNNING" => Some(RunStatus::Running),
            "SCHEDULED" => Some(RunStatus::Scheduled),
            "FINISHED" => Some(RunStatus::Finished),
            "FAILED" => Some(RunStatus::Failed),
            "KILLED" => Some(RunStatus::Killed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }
}

/// Where a job that produced a candidate or version ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct CiJob {
    pub job_id: Option<String>,
    pub job_name: Option<String>,
    pub job_url: Option<String>,
    pub pipeline_id: Option<String>,
    pub pipeline_url: Option<String>,
    pub ref_name: Option<String>,
    pub commit_sha: Option<String>,
    pub merge_request_iid: Option<String>,
    pub merge_request_title: Option<String>,
    pub merge_request_url: Option<String>,
    pub user: Option<String>,
    /// Who verified the link (`gitlab job token: https://gitlab.example.com`, `oidc: <issuer>`);
    /// `None` for links taken from tags or request bodies. A verified link is never changed by
    /// tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<String>,
}

impl CiJob {
    pub fn is_empty(&self) -> bool {
        *self == CiJob::default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Candidate {
    pub id: u64,
    pub project_id: u64,
    /// Per-project number.
    pub iid: u64,
    /// 32 lower-case hex digits; MLflow's `run_id`.
    pub run_id: String,
    pub experiment_id: u64,
    pub name: String,
    pub status: RunStatus,
    /// Milliseconds since the epoch.
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub user_id: Option<u64>,
    /// MLflow's `user_id` as the client gave it (the request's `user_id`, else its `mlflow.user`
    /// tag); absent, the authenticated user's name is shown.
    #[serde(default)]
    pub mlflow_user: Option<String>,
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// Set when the candidate is a version's (created with it, or promoted).
    pub model_version_id: Option<u64>,
    #[serde(default)]
    pub ci: Option<CiJob>,
    pub created_at: Timestamp,
}

/// One logged value of a metric.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetricPoint {
    pub key: String,
    pub value: f64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub step: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// What a tag belongs to; part of the tag table's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagOwner {
    Experiment(u64),
    Candidate(u64),
    Model(u64),
    Version(u64),
    /// A model's aliases: key = alias, value = the version's id.
    ModelAlias(u64),
    LoggedModel(u64),
}

impl TagOwner {
    pub fn key_prefix(self) -> Vec<u8> {
        let (kind, id) = match self {
            TagOwner::Experiment(id) => (1u8, id),
            TagOwner::Candidate(id) => (2, id),
            TagOwner::Model(id) => (3, id),
            TagOwner::Version(id) => (4, id),
            TagOwner::ModelAlias(id) => (5, id),
            TagOwner::LoggedModel(id) => (6, id),
        };
        let mut key = vec![kind];
        key.extend_from_slice(&id.to_be_bytes());
        key
    }
}
