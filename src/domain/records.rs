//! The records the metadata store holds for accounts, projects and packages.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

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
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Api,
    ReadApi,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "api" => Some(Scope::Api),
            "read_api" => Some(Scope::ReadApi),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Api => "api",
            Scope::ReadApi => "read_api",
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
}

impl PackageFile {
    /// The last path segment: what a download is saved as.
    pub fn base_name(&self) -> &str {
        self.file_name.rsplit('/').next().unwrap_or(&self.file_name)
    }
}
