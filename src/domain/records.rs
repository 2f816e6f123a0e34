//! The records the metadata store holds for accounts, projects and packages.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::ml_records::CiJob;

pub type Timestamp = DateTime<Utc>;

pub fn now() -> Timestamp {
    Utc::now()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: u64,
    pub username: String,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    /// argon2id PHC string; `None` for users who only use tokens.
    #[serde(default)]
    pub password_hash: Option<String>,
    pub admin: bool,
    pub created_at: Timestamp,
    /// A project access token's bot: a member of one project, never signs in.
    #[serde(default)]
    pub bot: bool,
}

/// Scopes of personal and project access tokens, as GitLab names them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Everything the token's user may do.
    Api,
    /// Reads only.
    ReadApi,
    /// The user's own account (`GET /user`, `GET /users`), nothing of projects.
    ReadUser,
    /// GitLab's container registry scopes: understood and kept; they grant nothing here.
    ReadRegistry,
    WriteRegistry,
    /// With an administrator's token: act as another user (`Sudo` header, `sudo` parameter).
    Sudo,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::Api,
        Scope::ReadApi,
        Scope::ReadUser,
        Scope::ReadRegistry,
        Scope::WriteRegistry,
        Scope::Sudo,
    ];

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Api => "api",
            Scope::ReadApi => "read_api",
            Scope::ReadUser => "read_user",
            Scope::ReadRegistry => "read_registry",
            Scope::WriteRegistry => "write_registry",
            Scope::Sudo => "sudo",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PersonalAccessToken {
    pub id: u64,
    pub user_id: u64,
    pub name: String,
    /// sha256 of the secret, hex; the secret itself is never stored.
    pub secret_sha256: String,
    pub scopes: Vec<Scope>,
    #[serde(default)]
    pub expires_at: Option<NaiveDate>,
    pub revoked: bool,
    pub created_at: Timestamp,
}

impl PersonalAccessToken {
    pub fn is_active(&self, today: NaiveDate) -> bool {
        !self.revoked && self.expires_at.is_none_or(|expiry| today < expiry)
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Public,
    Internal,
    Private,
}

impl Visibility {
    pub fn parse(s: &str) -> Option<Visibility> {
        match s {
            "public" => Some(Visibility::Public),
            "internal" => Some(Visibility::Internal),
            "private" => Some(Visibility::Private),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Internal => "internal",
            Visibility::Private => "private",
        }
    }
}

/// `model_registry_access_level` as GitLab spells it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FeatureAccess {
    Enabled,
    Private,
    Disabled,
}

impl FeatureAccess {
    pub fn parse(s: &str) -> Option<FeatureAccess> {
        match s {
            "enabled" => Some(FeatureAccess::Enabled),
            "private" => Some(FeatureAccess::Private),
            "disabled" => Some(FeatureAccess::Disabled),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FeatureAccess::Enabled => "enabled",
            FeatureAccess::Private => "private",
            FeatureAccess::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Project {
    pub id: u64,
    pub name: String,
    pub path: String,
    pub namespace: String,
    #[serde(default)]
    pub description: String,
    pub visibility: Visibility,
    pub model_registry_access_level: FeatureAccess,
    pub generic_duplicates_allowed: bool,
    pub creator_id: u64,
    pub created_at: Timestamp,
    /// GitLab projects (paths, numeric ids, or project URLs) whose CI job tokens this project
    /// accepts.
    #[serde(default)]
    pub ci_job_token_gitlab_projects: Vec<String>,
    /// The level those jobs act with (at most Maintainer).
    #[serde(default = "default_ci_level")]
    pub ci_job_token_access_level: AccessLevel,
}

fn default_ci_level() -> AccessLevel {
    AccessLevel::Developer
}

impl Project {
    pub fn path_with_namespace(&self) -> String {
        format!("{}/{}", self.namespace, self.path)
    }
}

/// GitLab's access levels.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(into = "u8", try_from = "u8")]
pub enum AccessLevel {
    Guest = 10,
    Reporter = 20,
    Developer = 30,
    Maintainer = 40,
    Owner = 50,
}

impl From<AccessLevel> for u8 {
    fn from(level: AccessLevel) -> u8 {
        level as u8
    }
}

impl TryFrom<u8> for AccessLevel {
    type Error = String;
    fn try_from(value: u8) -> Result<Self, String> {
        AccessLevel::from_number(value as i64)
            .ok_or_else(|| format!("{value} is not an access level"))
    }
}

impl AccessLevel {
    pub fn from_number(n: i64) -> Option<AccessLevel> {
        match n {
            10 => Some(AccessLevel::Guest),
            20 => Some(AccessLevel::Reporter),
            30 => Some(AccessLevel::Developer),
            40 => Some(AccessLevel::Maintainer),
            50 => Some(AccessLevel::Owner),
            _ => None,
        }
    }

    pub fn parse(s: &str) -> Option<AccessLevel> {
        match s.to_ascii_lowercase().as_str() {
            "guest" => Some(AccessLevel::Guest),
            "reporter" => Some(AccessLevel::Reporter),
            "developer" => Some(AccessLevel::Developer),
            "maintainer" => Some(AccessLevel::Maintainer),
            "owner" => Some(AccessLevel::Owner),
            other => other.parse().ok().and_then(AccessLevel::from_number),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Member {
    pub project_id: u64,
    pub user_id: u64,
    pub access_level: AccessLevel,
    pub created_at: Timestamp,
    #[serde(default)]
    pub expires_at: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PackageType {
    Generic,
    MlModel,
}

impl PackageType {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageType::Generic => "generic",
            PackageType::MlModel => "ml_model",
        }
    }

    pub fn parse(s: &str) -> Option<PackageType> {
        match s {
            "generic" => Some(PackageType::Generic),
            "ml_model" => Some(PackageType::MlModel),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PackageStatus {
    Default,
    Hidden,
}

impl PackageStatus {
    pub fn parse(s: &str) -> Option<PackageStatus> {
        match s {
            "default" => Some(PackageStatus::Default),
            "hidden" => Some(PackageStatus::Hidden),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PackageStatus::Default => "default",
            PackageStatus::Hidden => "hidden",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Package {
    pub id: u64,
    pub project_id: u64,
    pub name: String,
    pub version: String,
    pub package_type: PackageType,
    pub status: PackageStatus,
    pub creator_id: Option<u64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The verified CI job that created the package.
    #[serde(default)]
    pub ci: Option<CiJob>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PackageFile {
    pub id: u64,
    pub package_id: u64,
    pub project_id: u64,
    /// The file's path inside the package, `/`-separated, decoded (`dir/model.onnx`).
    pub file_name: String,
    pub size: u64,
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    pub created_at: Timestamp,
    /// The verified CI job that uploaded the file.
    #[serde(default)]
    pub ci: Option<CiJob>,
    /// What the file is (safetensors, GGUF, ONNX, pickle-based) and its header's facts, found
    /// while it was uploaded; `None` for other files and files of earlier releases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<super::formats::FormatFacts>,
}

impl PackageFile {
    /// The last path segment: what a download is saved as.
    pub fn base_name(&self) -> &str {
        self.file_name.rsplit('/').next().unwrap_or(&self.file_name)
    }
}

/// A group: a namespace with members, whose projects inherit them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Group {
    pub id: u64,
    pub name: String,
    /// The last segment of the path.
    pub path: String,
    /// `parent/…/path`: the namespace of the group's projects.
    pub full_path: String,
    pub parent_id: Option<u64>,
    #[serde(default)]
    pub description: String,
    pub visibility: Visibility,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GroupMember {
    pub group_id: u64,
    pub user_id: u64,
    pub access_level: AccessLevel,
    pub created_at: Timestamp,
    #[serde(default)]
    pub expires_at: Option<NaiveDate>,
}

/// A deploy token's scopes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeployScope {
    ReadPackageRegistry,
    WritePackageRegistry,
}

impl DeployScope {
    pub fn parse(s: &str) -> Option<DeployScope> {
        match s {
            "read_package_registry" => Some(DeployScope::ReadPackageRegistry),
            "write_package_registry" => Some(DeployScope::WritePackageRegistry),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeployScope::ReadPackageRegistry => "read_package_registry",
            DeployScope::WritePackageRegistry => "write_package_registry",
        }
    }
}

/// A project's deploy token: what a deployment pulls packages and models with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeployToken {
    pub id: u64,
    pub project_id: u64,
    pub name: String,
    /// The user name of Basic auth (`gitlab+deploy-token-<id>` unless chosen).
    pub username: String,
    pub secret_sha256: String,
    pub scopes: Vec<DeployScope>,
    /// Package (model) names the token is limited to; empty: all of the project's.
    #[serde(default)]
    pub package_names: Vec<String>,
    #[serde(default)]
    pub expires_at: Option<NaiveDate>,
    pub revoked: bool,
    pub created_at: Timestamp,
}

impl DeployToken {
    pub fn is_active(&self, today: NaiveDate) -> bool {
        !self.revoked && self.expires_at.is_none_or(|expiry| today < expiry)
    }
}

/// A project's trust rule for OIDC ID tokens (trusted publishing): tokens of `issuer` whose
/// claims have every value of `claims` act on the project at `access_level`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrustedPublisher {
    pub id: u64,
    pub project_id: u64,
    pub issuer: String,
    /// Required claim values; a value ending in `*` matches any value with that prefix.
    pub claims: BTreeMap<String, String>,
    pub access_level: AccessLevel,
    #[serde(default)]
    pub description: String,
    pub created_at: Timestamp,
}

/// A short-lived token exchanged for an OIDC ID token (as PyPI's trusted publishing does), for
/// clients that only send `PRIVATE-TOKEN`: it acts as the ID token did, in one project, until it
/// expires. Its project's trust rules are checked again on every use.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CiToken {
    pub id: u64,
    pub project_id: u64,
    pub secret_sha256: String,
    pub issuer: String,
    pub claims: BTreeMap<String, String>,
    #[serde(default)]
    pub ci: Option<CiJob>,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
}
