//! The records of the OCI distribution surface: blobs pushed to a repository before a manifest
//! names them, manifests pushed as they were sent (signatures, attestations, versions pushed by
//! OCI clients), the digests of the manifests and configs generated for versions, and upload
//! sessions. A repository is `(project, model name)`; digests are lower-case sha256 hex.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::records::Timestamp;

/// A blob pushed to a repository: its bytes are in the blob store under `sha256`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OciBlob {
    pub project_id: u64,
    pub repository: String,
    pub sha256: String,
    pub size: u64,
    pub md5: String,
    pub sha1: String,
    pub created_at: Timestamp,
}

/// A layer as a pushed manifest names it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OciLayerRef {
    pub sha256: String,
    #[serde(default)]
    pub title: Option<String>,
}

/// A manifest pushed by a client, kept byte for byte in the blob store under `digest`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OciManifest {
    pub project_id: u64,
    pub repository: String,
    pub digest: String,
    pub media_type: String,
    #[serde(default)]
    pub artifact_type: Option<String>,
    pub size: u64,
    /// The digest of the manifest this one refers to (the referrers API lists it there).
    #[serde(default)]
    pub subject: Option<String>,
    /// The version this manifest was pushed as (its tag), while it is that tag's manifest.
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub config_sha256: Option<String>,
    #[serde(default)]
    pub config_media_type: Option<String>,
    #[serde(default)]
    pub layers: Vec<OciLayerRef>,
    pub created_at: Timestamp,
}

/// What a generated digest is of.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GeneratedRole {
    Manifest,
    Config,
}

/// A digest the registry generated for a version (its manifest or config), so that a client
/// asking for it by digest finds the version to generate it from again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OciGenerated {
    pub project_id: u64,
    pub repository: String,
    pub digest: String,
    pub version_id: u64,
    pub role: GeneratedRole,
}

/// A blob upload in progress: its bytes so far are the blob store's upload of the same id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UploadSession {
    pub id: String,
    pub project_id: u64,
    pub repository: String,
    pub user_id: Option<u64>,
    pub created_at: Timestamp,
}
