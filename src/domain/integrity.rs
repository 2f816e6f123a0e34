//! Integrity: deploy by checksum (a PUT without a body naming content the caller can already
//! read). The digests a client declares for a body are checked by the blob store itself
//! (`BlobStore::put_checked`) before anything is recorded.

use futures_util::StreamExt;

use super::access::{Action, Caller};
use super::error::{Error, Result};
use super::packages::IncomingFile;
use super::records::{PackageFile, Project};
use super::schema;
use super::Registry;
use crate::store::blobs::StoredBlob;
use crate::store::checksum::Digests;

/// How many recorded copies of one content deploy by checksum looks at across projects.
const COPIES_LOOKED_AT: usize = 200;

/// The answer when no readable copy exists: the same whether the content exists elsewhere or
/// not, so that deploy by checksum never tells what other projects hold.
fn no_readable_copy() -> Error {
    Error::NotFoundMessage(
        "404 No file with this sha256 that you can read: upload the content instead".into(),
    )
}

impl Registry {
    /// The blob a deploy by checksum links: a file with the declared sha256 that the caller can
    /// read, in `project` first, then in any other project they can read. The body must be
    /// empty; other declared digests must match the recorded ones.
    pub(crate) async fn deployed_content(
        &self,
        caller: &Caller,
        project: &Project,
        incoming: IncomingFile,
    ) -> Result<StoredBlob> {
        let Some(sha256) = incoming.expected.sha256.clone() else {
            return Err(Error::bad(
                "X-Checksum-Deploy needs the content's sha256: send X-Checksum-Sha256 or a Content-Digest with sha-256",
            ));
        };
        if incoming.expected.sha512.is_some() {
            return Err(Error::bad(
                "a deploy by checksum is checked by sha-256 (and sha1/md5): leave sha-512 out",
            ));
        }
        if incoming.declared_len.is_some_and(|len| len > 0) {
            return Err(Error::bad(
                "a deploy by checksum (X-Checksum-Deploy: true) has no body",
            ));
        }
        let super::packages::Content::Stream(mut body) = incoming.body else {
            return Err(Error::bad(
                "a deploy by checksum (X-Checksum-Deploy: true) has no body",
            ));
        };
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|_| Error::BodyInterrupted)?;
            if !chunk.is_empty() {
                return Err(Error::bad(
                    "a deploy by checksum (X-Checksum-Deploy: true) has no body",
                ));
            }
        }
        let source = self.readable_copy(caller, project, &sha256)?;
        let source = source.ok_or_else(no_readable_copy)?;
        if !self.blobs.exists(&source.sha256).await? {
            return Err(no_readable_copy());
        }
        let digests = Digests {
            md5: source.md5.clone(),
            sha1: source.sha1.clone(),
            sha256: source.sha256.clone(),
        };
        if let Some(mismatch) = incoming.expected.mismatch(&digests, None) {
            return Err(Error::bad(format!(
                "the content with this sha256 has {} {}, but the request declared {}: nothing was recorded",
                mismatch.algorithm, mismatch.actual, mismatch.declared
            )));
        }
        Ok(StoredBlob {
            size: source.size,
            digests,
        })
    }

    /// A file with this content that the caller may read: in `project` first, then elsewhere.
    fn readable_copy(
        &self,
        caller: &Caller,
        project: &Project,
        sha256: &str,
    ) -> Result<Option<PackageFile>> {
        let meta = self.meta.as_ref();
        let mut candidates: Vec<(u64, u64)> = Vec::new();
        for (file_id, package_id) in schema::files::with_sha256(meta, project.id, sha256, 16)? {
            candidates.push((file_id, package_id));
        }
        let mut others: Vec<(u64, u64, u64)> =
            schema::files::anywhere_with_sha256(meta, sha256, COPIES_LOOKED_AT)?;
        others.retain(|(project_id, _, _)| *project_id != project.id);
        let mut by_project: Vec<(u64, Vec<(u64, u64)>)> = vec![(project.id, candidates)];
        for (project_id, file_id, package_id) in others {
            match by_project.last_mut() {
                Some((last, files)) if *last == project_id => files.push((file_id, package_id)),
                _ => by_project.push((project_id, vec![(file_id, package_id)])),
            }
        }
        for (project_id, files) in by_project {
            if files.is_empty() {
                continue;
            }
            let Ok(access) = self.project_for(caller, &project_id.to_string()) else {
                continue;
            };
            for (file_id, package_id) in files {
                let Ok(package) = self.package(project_id, package_id) else {
                    continue;
                };
                if access
                    .check(caller, Action::read_packages_of(package.package_type))
                    .is_err()
                {
                    continue;
                }
                if super::trust::check_package_name(caller, &package.name).is_err() {
                    continue;
                }
                if let Ok(file) = self.package_file(file_id) {
                    if file.sha256 == sha256 {
                        return Ok(Some(file));
                    }
                }
            }
        }
        Ok(None)
    }
}

/// One file of a version's manifest (fields in key order: the JSON is canonical).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// What a version holds: every file's path, size and sha256, the model and the version. Its
/// canonical JSON (keys sorted, no whitespace) is what archives carry as `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub files: Vec<ManifestFile>,
    pub model: String,
    /// When a sealed manifest was sealed (RFC 3339, milliseconds, UTC); absent until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_at: Option<String>,
    /// Who sealed it; absent until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_by: Option<String>,
    pub version: String,
}

impl Manifest {
    /// The canonical JSON: struct fields are declared in key order, serialized compactly.
    pub fn canonical_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// `sha256:<hex>` of the canonical JSON.
    pub fn digest(&self) -> String {
        digest_of_json(&self.canonical_json())
    }
}

/// `sha256:<hex>` of a manifest's canonical JSON.
pub fn digest_of_json(canonical: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(canonical)))
}

impl Registry {
    /// A model's version named by a URL's version slot: a version id, an exact SemVer version, or
    /// a requirement (`^1.2`, `latest`), as downloads resolve it.
    pub fn version_for_slot(
        &self,
        caller: &Caller,
        access: &super::projects::ProjectAccess,
        model: &super::ml_records::Model,
        slot: &str,
    ) -> Result<super::ml_records::ModelVersion> {
        access.check(caller, Action::ReadRegistry)?;
        if let Ok(id) = slot.parse::<u64>() {
            return self
                .version(id)
                .ok()
                .filter(|v| v.model_id == model.id)
                .ok_or(Error::NotFound("Model version"));
        }
        if semver::Version::parse(slot).is_ok() {
            return self.version_by_string(model.id, slot);
        }
        self.resolve_version(caller, access, model, slot)
    }

    /// A version's files (the newest of each path, by path) and its manifest: for a sealed
    /// version, the manifest frozen when it was sealed.
    pub fn version_manifest(
        &self,
        model: &super::ml_records::Model,
        version: &super::ml_records::ModelVersion,
    ) -> Result<(Vec<PackageFile>, Manifest)> {
        let files = self.version_files(version)?;
        if version.seal.is_some() {
            let manifest = self.sealed_manifest(version)?;
            super::sealing::check_sealed_files(version, &manifest, &files)?;
            return Ok((files, manifest));
        }
        let manifest = Manifest {
            files: files
                .iter()
                .map(|f| ManifestFile {
                    path: f.file_name.clone(),
                    sha256: f.sha256.clone(),
                    size: f.size,
                })
                .collect(),
            model: model.name.clone(),
            sealed_at: None,
            sealed_by: None,
            version: version.version.clone(),
        };
        Ok((files, manifest))
    }
}
