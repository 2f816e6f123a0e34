//! Models as OCI repositories (DESIGN: the OCI distribution surface). A repository is
//! `<project path>/<model name>`; its tags are the versions (SemVer, `+` written `_`), and the
//! floating tags `1`, `1.2` and `latest` resolve to the newest matching release. A version's
//! manifest is generated from its files (their blobs are the layers, served where they are) unless
//! a client pushed one that still describes them. Pushing a manifest under a version tag creates
//! or extends that version with the manifest's layers as files, by reference. Every decision on
//! who may do what goes through [`super::access`], as on every other surface.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::{json, Value};

use super::access::{Action, Caller};
use super::error::{Error, Result};
use super::ml_records::{Model, ModelVersion, TagOwner};
use super::models::NewModel;
use super::names;
use super::oci_manifest::{self as manifest, OciCode, IMAGE_MANIFEST, TITLE};
use super::oci_records::{
    GeneratedRole, OciBlob, OciGenerated, OciLayerRef, OciManifest, UploadSession,
};
use super::projects::ProjectAccess;
use super::records::{now, PackageFile, PackageType};
use super::schema::{
    self, files::Files, oci_blobs::OciBlobs, oci_generated::OciGeneratedDigests,
    oci_manifests::OciManifests, oci_uploads::UploadSessions,
};
use super::semver_rules;
use super::versions::NewVersion;
use super::Registry;
use crate::store::blobs::{ByteStream, StoredBlob};
use crate::store::meta::abort;

/// How many referrers one answer lists at most.
pub const REFERRERS_PAGE: usize = 1000;
/// How many segments a repository name may have.
const MAX_SEGMENTS: usize = 32;

/// One lock per upload session: its chunks are appended one request at a time.
#[derive(Default)]
pub struct UploadLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl UploadLocks {
    fn of(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.to_string()).or_default().clone()
    }

    fn forget(&self, id: &str) {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.remove(id);
    }
}

/// A repository the caller may act on: the project, and the model name inside it (the model
/// itself when it exists; a push creates it).
#[derive(Debug, Clone)]
pub struct Repository {
    pub access: ProjectAccess,
    pub name: String,
    pub model: Option<Model>,
}

impl Repository {
    fn project_id(&self) -> u64 {
        self.access.project.id
    }

    fn model(&self) -> Result<&Model> {
        self.model.as_ref().ok_or_else(|| {
            Error::oci(
                OciCode::NameUnknown,
                format!("repository '{}' is not known", self.full_name()),
            )
        })
    }

    pub fn full_name(&self) -> String {
        format!(
            "{}/{}",
            self.access.project.path_with_namespace(),
            self.name
        )
    }
}

/// What a manifest reference names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    /// A sha256, hex.
    Digest(String),
}

impl Reference {
    pub fn parse(raw: &str) -> Result<Reference> {
        if raw.contains(':') {
            return manifest::parse_digest(raw).map(Reference::Digest);
        }
        if !manifest::is_tag(raw) {
            return Err(Error::oci(
                OciCode::TagInvalid,
                format!("'{raw}' is neither a tag nor a digest"),
            ));
        }
        Ok(Reference::Tag(raw.to_string()))
    }
}

/// A manifest as served.
#[derive(Debug, Clone)]
pub struct ManifestBody {
    pub bytes: Vec<u8>,
    pub media_type: String,
    /// sha256 hex.
    pub digest: String,
}

/// Where a blob's bytes come from.
#[derive(Debug, Clone)]
pub enum BlobSource {
    /// In the blob store under its sha256.
    Stored { sha256: String, size: u64 },
    /// Generated (a version's config).
    Generated(Vec<u8>),
}

/// What a manifest push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: String,
    pub subject: Option<String>,
    pub version: Option<ModelVersion>,
}

/// The requirement a floating tag stands for: `latest`, `1` (1.x), `1.2` (1.2.x); `None` for
/// other tags.
fn floating_requirement(tag: &str) -> Option<String> {
    if tag == "latest" {
        return Some("latest".into());
    }
    let parts: Vec<&str> = tag.split('.').collect();
    let numeric = |p: &&str| {
        !p.is_empty()
            && p.len() <= 20
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u64>().is_ok()
    };
    match parts.as_slice() {
        [_] | [_, _] if parts.iter().all(numeric) => Some(format!("~{tag}")),
        _ => None,
    }
}

/// The version a tag that names one exactly stands for: its SemVer string, canonical.
fn exact_version_of(tag: &str) -> Option<String> {
    let version = manifest::version_of_tag(tag);
    match semver_rules::parse_version(&version) {
        Ok(parsed) if parsed.to_string() == version => Some(version),
        _ => None,
    }
}

fn manifest_unknown(reference: &str) -> Error {
    Error::oci(
        OciCode::ManifestUnknown,
        format!("manifest '{reference}' is not known"),
    )
}

fn blob_unknown(sha256: &str) -> Error {
    Error::oci(
        OciCode::BlobUnknown,
        format!("blob sha256:{sha256} is not known in this repository"),
    )
}

fn upload_unknown(id: &str) -> Error {
    Error::oci(
        OciCode::BlobUploadUnknown,
        format!("upload '{id}' is not known"),
    )
}

fn one_chunk(bytes: Vec<u8>) -> ByteStream {
    Box::pin(futures_util::stream::once(async move {
        Ok::<Bytes, std::io::Error>(Bytes::from(bytes))
    }))
}

/// Whether a pushed manifest's layers are exactly a version's current files.
fn describes(pushed: &OciManifest, files: &[PackageFile]) -> bool {
    if pushed.layers.len() != files.len() {
        return false;
    }
    let mut layers: Vec<(&str, &str)> = pushed
        .layers
        .iter()
        .map(|l| (l.title.as_deref().unwrap_or(""), l.sha256.as_str()))
        .collect();
    layers.sort_unstable();
    let mut current: Vec<(&str, &str)> = files
        .iter()
        .map(|f| (f.file_name.as_str(), f.sha256.as_str()))
        .collect();
    current.sort_unstable();
    layers == current
}

impl Registry {
    /// Resolves `<project path>/<model>` for a caller who wants to read (`write == false`) or
    /// push to it. The longest project path that exists wins. A project the caller may not
    /// see is `NotFound("Project")`, as everywhere.
    pub fn oci_repository(&self, caller: &Caller, name: &str, write: bool) -> Result<Repository> {
        let segments: Vec<&str> = name.split('/').collect();
        if segments.len() < 3
            || segments.len() > MAX_SEGMENTS
            || segments.iter().any(|s| s.is_empty())
        {
            return Err(Error::oci(
                OciCode::NameInvalid,
                format!("'{name}' is not a repository: use <namespace>/<project>/<model>"),
            ));
        }
        let action = if write {
            Action::WriteRegistry
        } else {
            Action::ReadRegistry
        };
        super::access::precheck(caller, action)?;
        for split in (2..segments.len()).rev() {
            let path = segments[..split].join("/");
            match self.find_project(&path) {
                Ok(_) => {}
                Err(Error::NotFound(_)) => continue,
                Err(other) => return Err(other),
            }
            let access = self.project_for(caller, &path)?;
            access.check(caller, action)?;
            let model_name = segments[split..].join("/");
            names::model_name(&model_name)
                .map_err(|e| Error::oci(OciCode::NameInvalid, e.to_string()))?;
            let model = match self.model_by_name(access.project.id, &model_name) {
                Ok(model) => Some(model),
                Err(Error::NotFound(_)) => None,
                Err(other) => return Err(other),
            };
            return Ok(Repository {
                access,
                name: model_name,
                model,
            });
        }
        Err(Error::NotFound("Project"))
    }

    /// The version a tag stands for: an exact version, or the newest release a floating tag
    /// (`1`, `1.2`, `latest`) matches.
    pub fn oci_tag_version(&self, repo: &Repository, tag: &str) -> Result<ModelVersion> {
        let model = repo.model()?;
        if let Some(requirement) = floating_requirement(tag) {
            let parsed = semver_rules::parse_requirement(&requirement)?;
            return schema::versions::resolve(self.meta.as_ref(), model.id, &parsed)?
                .ok_or_else(|| manifest_unknown(tag));
        }
        let version = exact_version_of(tag).ok_or_else(|| manifest_unknown(tag))?;
        match self.version_by_string(model.id, &version) {
            Ok(v) => Ok(v),
            Err(Error::NotFound(_)) => Err(manifest_unknown(tag)),
            Err(other) => Err(other),
        }
    }

    fn generate_for(
        &self,
        repo: &Repository,
        version: &ModelVersion,
    ) -> Result<(manifest::Generated, Vec<PackageFile>)> {
        let files = self.version_files(version)?;
        let metadata = self.tags(TagOwner::Version(version.id))?;
        let author = match version.author_id {
            Some(id) => self.user(id).ok().map(|u| u.username),
            None => None,
        };
        let generated =
            manifest::generate(&repo.name, version, &metadata, author.as_deref(), &files);
        Ok((generated, files))
    }

    /// Notes the digests of a generated manifest and config, so that a later request by digest
    /// finds the version again. Only the first pull of a version's state writes.
    async fn note_generated(
        &self,
        repo: &Repository,
        version: &ModelVersion,
        generated: &manifest::Generated,
    ) -> Result<()> {
        let records = [
            (generated.manifest_digest.clone(), GeneratedRole::Manifest),
            (generated.config_digest.clone(), GeneratedRole::Config),
        ];
        let project_id = repo.project_id();
        let known = records.iter().all(|(digest, _)| {
            matches!(
                schema::oci_generated::get(self.meta.as_ref(), project_id, &repo.name, digest),
                Ok(Some(_))
            )
        });
        if known {
            return Ok(());
        }
        self.write(|tx| {
            for (digest, role) in &records {
                if !schema::oci_generated::exists(tx, project_id, &repo.name, digest)? {
                    schema::put::<OciGeneratedDigests>(
                        tx,
                        &OciGenerated {
                            project_id,
                            repository: repo.name.clone(),
                            digest: digest.clone(),
                            version_id: version.id,
                            role: *role,
                        },
                    )?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn read_pushed(&self, pushed: &OciManifest) -> Result<ManifestBody> {
        let size = self.blobs.stat(&pushed.digest).await?.size;
        let bytes = self.blob_head(&pushed.digest, size as usize).await?;
        Ok(ManifestBody {
            bytes,
            media_type: pushed.media_type.clone(),
            digest: pushed.digest.clone(),
        })
    }

    /// A version's manifest: the one pushed for it while it still describes its files, else
    /// the generated one.
    pub async fn oci_version_manifest(
        &self,
        repo: &Repository,
        version: &ModelVersion,
    ) -> Result<ManifestBody> {
        let pushed = schema::oci_manifests::by_tag(
            self.meta.as_ref(),
            repo.project_id(),
            &repo.name,
            &version.version,
        )?;
        let (generated, files) = self.generate_for(repo, version)?;
        if let Some(pushed) = pushed {
            if describes(&pushed, &files) {
                return self.read_pushed(&pushed).await;
            }
        }
        self.note_generated(repo, version, &generated).await?;
        Ok(ManifestBody {
            bytes: generated.manifest,
            media_type: IMAGE_MANIFEST.to_string(),
            digest: generated.manifest_digest,
        })
    }

    /// `GET /v2/<name>/manifests/<reference>`.
    pub async fn oci_manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
    ) -> Result<ManifestBody> {
        match reference {
            Reference::Tag(tag) => {
                let version = self.oci_tag_version(repo, tag)?;
                self.oci_version_manifest(repo, &version).await
            }
            Reference::Digest(digest) => {
                let project_id = repo.project_id();
                if let Some(pushed) =
                    schema::oci_manifests::get(self.meta.as_ref(), project_id, &repo.name, digest)?
                {
                    return self.read_pushed(&pushed).await;
                }
                let shown = format!("sha256:{digest}");
                let generated =
                    schema::oci_generated::get(self.meta.as_ref(), project_id, &repo.name, digest)?
                        .filter(|g| g.role == GeneratedRole::Manifest)
                        .ok_or_else(|| manifest_unknown(&shown))?;
                let version = self.generated_version(repo, &generated, &shown)?;
                let (now_generated, _) = self.generate_for(repo, &version)?;
                if now_generated.manifest_digest != *digest {
                    return Err(manifest_unknown(&shown));
                }
                Ok(ManifestBody {
                    bytes: now_generated.manifest,
                    media_type: IMAGE_MANIFEST.to_string(),
                    digest: now_generated.manifest_digest,
                })
            }
        }
    }

    fn generated_version(
        &self,
        repo: &Repository,
        generated: &OciGenerated,
        shown: &str,
    ) -> Result<ModelVersion> {
        let model = repo.model()?;
        match self.version(generated.version_id) {
            Ok(v) if v.model_id == model.id => Ok(v),
            Ok(_) | Err(Error::NotFound(_)) => Err(manifest_unknown(shown)),
            Err(other) => Err(other),
        }
    }

    /// The repository's blob with this sha256, with what it was recorded with (md5, sha1, size)
    /// when it is stored: a blob pushed to it, or a file of one of its versions.
    fn stored_blob(&self, repo: &Repository, sha256: &str) -> Result<Option<OciBlob>> {
        let project_id = repo.project_id();
        if let Some(blob) =
            schema::oci_blobs::get(self.meta.as_ref(), project_id, &repo.name, sha256)?
        {
            return Ok(Some(blob));
        }
        for (file_id, package_id) in
            schema::files::with_sha256(self.meta.as_ref(), project_id, sha256, 64)?
        {
            let Some(package) = schema::packages::get(self.meta.as_ref(), package_id)? else {
                continue;
            };
            if package.package_type != PackageType::MlModel || package.name != repo.name {
                continue;
            }
            if let Some(file) = schema::files::get(self.meta.as_ref(), file_id)? {
                return Ok(Some(OciBlob {
                    project_id,
                    repository: repo.name.clone(),
                    sha256: file.sha256,
                    size: file.size,
                    md5: file.md5,
                    sha1: file.sha1,
                    created_at: file.created_at,
                }));
            }
        }
        Ok(None)
    }

    /// `GET|HEAD /v2/<name>/blobs/<digest>`: only blobs of this repository (a digest of
    /// another project's file is unknown here).
    pub fn oci_blob(&self, repo: &Repository, sha256: &str) -> Result<BlobSource> {
        if let Some(blob) = self.stored_blob(repo, sha256)? {
            return Ok(BlobSource::Stored {
                sha256: blob.sha256,
                size: blob.size,
            });
        }
        let project_id = repo.project_id();
        if let Some(pushed) =
            schema::oci_manifests::get(self.meta.as_ref(), project_id, &repo.name, sha256)?
        {
            return Ok(BlobSource::Stored {
                sha256: pushed.digest,
                size: pushed.size,
            });
        }
        if let Some(generated) =
            schema::oci_generated::get(self.meta.as_ref(), project_id, &repo.name, sha256)?
        {
            let shown = format!("sha256:{sha256}");
            let version = self
                .generated_version(repo, &generated, &shown)
                .map_err(|_| blob_unknown(sha256))?;
            let (now_generated, _) = self.generate_for(repo, &version)?;
            match generated.role {
                GeneratedRole::Config if now_generated.config_digest == sha256 => {
                    return Ok(BlobSource::Generated(now_generated.config))
                }
                GeneratedRole::Manifest if now_generated.manifest_digest == sha256 => {
                    return Ok(BlobSource::Generated(now_generated.manifest))
                }
                _ => {}
            }
        }
        Err(blob_unknown(sha256))
    }

    /// `GET /v2/<name>/tags/list`: the versions' tags in byte order, `n` at most, after `last`.
    pub fn oci_tags(
        &self,
        repo: &Repository,
        last: Option<&str>,
        n: usize,
    ) -> Result<(Vec<String>, bool)> {
        let model = repo.model()?;
        let after = last.map(manifest::version_of_tag);
        let (versions, more) =
            schema::versions::strings_after(self.meta.as_ref(), model.id, after.as_deref(), n)?;
        Ok((versions.iter().map(|v| manifest::tag_of(v)).collect(), more))
    }

    /// `GET /v2/<name>/referrers/<digest>`: descriptors of the manifests whose subject it is.
    pub fn oci_referrers(
        &self,
        repo: &Repository,
        subject: &str,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Value>> {
        let project_id = repo.project_id();
        let (digests, _) = schema::oci_manifests::referrers(
            self.meta.as_ref(),
            project_id,
            &repo.name,
            subject,
            None,
            REFERRERS_PAGE,
        )?;
        let mut out = Vec::new();
        for digest in digests {
            let Some(m) =
                schema::oci_manifests::get(self.meta.as_ref(), project_id, &repo.name, &digest)?
            else {
                continue;
            };
            // The spec: an artifact's type, else its config's media type.
            let kind = m
                .artifact_type
                .clone()
                .or_else(|| m.config_media_type.clone());
            if artifact_type.is_some_and(|wanted| kind.as_deref() != Some(wanted)) {
                continue;
            }
            let mut descriptor = json!({
                "mediaType": m.media_type,
                "digest": format!("sha256:{}", m.digest),
                "size": m.size,
            });
            if let Some(kind) = kind {
                descriptor["artifactType"] = json!(kind);
            }
            if !m.annotations.is_empty() {
                descriptor["annotations"] = json!(m.annotations);
            }
            out.push(descriptor);
        }
        Ok(out)
    }

    // ---- pushing ------------------------------------------------------------------------

    /// `POST /v2/<name>/blobs/uploads/`: a new upload session.
    pub async fn oci_start_upload(
        &self,
        caller: &Caller,
        repo: &Repository,
    ) -> Result<UploadSession> {
        let session = UploadSession {
            id: hex::encode(rand::random::<[u8; 16]>()),
            project_id: repo.project_id(),
            repository: repo.name.clone(),
            user_id: caller.user_id(),
            created_at: now(),
        };
        self.blobs.start_upload(&session.id).await?;
        self.write(|tx| {
            schema::put::<UploadSessions>(tx, &session)?;
            Ok(())
        })
        .await?;
        Ok(session)
    }

    fn session_of(&self, repo: &Repository, id: &str) -> Result<UploadSession> {
        if !crate::store::blobs::is_upload_id(id) {
            return Err(upload_unknown(id));
        }
        match schema::oci_uploads::get(self.meta.as_ref(), id)? {
            Some(s) if s.project_id == repo.project_id() && s.repository == repo.name => Ok(s),
            _ => Err(upload_unknown(id)),
        }
    }

    /// `GET /v2/<name>/blobs/uploads/<id>`: how many bytes the upload holds. Waits for a chunk
    /// being received to end, so that the answer is where the next chunk starts.
    pub async fn oci_upload_size(&self, repo: &Repository, id: &str) -> Result<u64> {
        self.session_of(repo, id)?;
        let lock = self.oci_uploads.of(id);
        let _held = lock.lock().await;
        self.blobs
            .upload_size(id)
            .await?
            .ok_or_else(|| upload_unknown(id))
    }

    /// `PATCH /v2/<name>/blobs/uploads/<id>`: appends a chunk that starts at `start` (when the
    /// client says where) and returns the upload's size. A chunk that does not start where the
    /// upload ends, or that arrives while another is being received, is refused (416).
    pub async fn oci_append(
        &self,
        repo: &Repository,
        id: &str,
        start: Option<u64>,
        body: ByteStream,
    ) -> Result<u64> {
        self.session_of(repo, id)?;
        let lock = self.oci_uploads.of(id);
        let Ok(_held) = lock.try_lock() else {
            return Err(Error::oci(
                OciCode::RangeInvalid,
                "another chunk of this upload is being received",
            ));
        };
        let size = self
            .blobs
            .upload_size(id)
            .await?
            .ok_or_else(|| upload_unknown(id))?;
        if start.is_some_and(|start| start != size) {
            return Err(Error::oci(
                OciCode::RangeInvalid,
                format!("the upload holds {size} bytes: the next chunk starts there"),
            ));
        }
        Ok(self
            .blobs
            .append_upload(id, body, self.limits.model_file_bytes)
            .await?)
    }

    /// `PUT /v2/<name>/blobs/uploads/<id>?digest=`: the last chunk (if any), then the blob is
    /// checked against its digest and recorded in the repository.
    pub async fn oci_finish_upload(
        &self,
        repo: &Repository,
        id: &str,
        sha256: &str,
        body: Option<ByteStream>,
    ) -> Result<OciBlob> {
        self.session_of(repo, id)?;
        let lock = self.oci_uploads.of(id);
        let Ok(_held) = lock.try_lock() else {
            return Err(Error::oci(
                OciCode::RangeInvalid,
                "a chunk of this upload is being received",
            ));
        };
        let held = self
            .blobs
            .upload_size(id)
            .await?
            .ok_or_else(|| upload_unknown(id))?;
        let stored = match body {
            // The whole blob in this one request: hashed as it streams, like every upload.
            Some(body) if held == 0 => {
                let stored = self.blobs.put(body, self.limits.model_file_bytes).await?;
                self.blobs.discard_upload(id).await?;
                stored
            }
            Some(body) => {
                self.blobs
                    .append_upload(id, body, self.limits.model_file_bytes)
                    .await?;
                self.blobs.finish_upload(id).await?
            }
            None => self.blobs.finish_upload(id).await?,
        };
        let result = self.record_blob(repo, stored, sha256).await;
        self.write(|tx| {
            schema::oci_uploads::remove(tx, id)?;
            Ok(())
        })
        .await?;
        self.oci_uploads.forget(id);
        result
    }

    /// `DELETE /v2/<name>/blobs/uploads/<id>`.
    pub async fn oci_cancel_upload(&self, repo: &Repository, id: &str) -> Result<()> {
        self.session_of(repo, id)?;
        self.blobs.discard_upload(id).await?;
        self.write(|tx| {
            schema::oci_uploads::remove(tx, id)?;
            Ok(())
        })
        .await?;
        self.oci_uploads.forget(id);
        Ok(())
    }

    /// `POST /v2/<name>/blobs/uploads/?digest=` with the whole blob.
    pub async fn oci_put_blob(
        &self,
        repo: &Repository,
        sha256: &str,
        body: ByteStream,
    ) -> Result<OciBlob> {
        let stored = self.blobs.put(body, self.limits.model_file_bytes).await?;
        self.record_blob(repo, stored, sha256).await
    }

    async fn record_blob(
        &self,
        repo: &Repository,
        stored: StoredBlob,
        sha256: &str,
    ) -> Result<OciBlob> {
        if stored.digests.sha256 != sha256 {
            // The bytes are stored under their own digest; gc reclaims them.
            return Err(Error::oci(
                OciCode::DigestInvalid,
                format!(
                    "the upload's digest is sha256:{}, not sha256:{sha256}",
                    stored.digests.sha256
                ),
            ));
        }
        let blob = OciBlob {
            project_id: repo.project_id(),
            repository: repo.name.clone(),
            sha256: stored.digests.sha256,
            size: stored.size,
            md5: stored.digests.md5,
            sha1: stored.digests.sha1,
            created_at: now(),
        };
        self.put_blob_record(&blob).await?;
        Ok(blob)
    }

    async fn put_blob_record(&self, blob: &OciBlob) -> Result<()> {
        self.write(|tx| {
            if schema::oci_blobs::load(tx, blob.project_id, &blob.repository, &blob.sha256)?
                .is_none()
            {
                schema::put::<OciBlobs>(tx, blob)?;
            }
            Ok(())
        })
        .await
    }

    /// `POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<other>`: the blob of another
    /// repository the caller may read becomes this one's, without a copy. `None` when `from`
    /// does not have it (the client then uploads).
    pub async fn oci_mount(
        &self,
        repo: &Repository,
        sha256: &str,
        from: &Repository,
    ) -> Result<Option<OciBlob>> {
        let Some(found) = self.stored_blob(from, sha256)? else {
            return Ok(None);
        };
        if !self.blobs.exists(sha256).await? {
            return Ok(None);
        }
        let blob = OciBlob {
            project_id: repo.project_id(),
            repository: repo.name.clone(),
            created_at: now(),
            ..found
        };
        self.put_blob_record(&blob).await?;
        Ok(Some(blob))
    }

    /// `PUT /v2/<name>/manifests/<reference>`. Under a version tag the manifest's layers become
    /// the version's files (the model and version are created when absent); by digest it is kept
    /// as it is (signatures and attestations naming a version as their subject).
    pub async fn oci_put_manifest(
        &self,
        caller: &Caller,
        repo: &Repository,
        reference: &Reference,
        bytes: Vec<u8>,
        content_type: Option<&str>,
    ) -> Result<Pushed> {
        let digest = manifest::digest_of(&bytes);
        if let Reference::Digest(named) = reference {
            if *named != digest {
                return Err(Error::oci(
                    OciCode::DigestInvalid,
                    format!("the manifest's digest is sha256:{digest}, not sha256:{named}"),
                ));
            }
        }
        let parsed = manifest::parse(&bytes, content_type)?;
        let mut layer_blobs = Vec::with_capacity(parsed.layers.len());
        for descriptor in parsed.config.iter().chain(&parsed.layers) {
            let Some(blob) = self.stored_blob(repo, &descriptor.sha256)? else {
                return Err(Error::oci(
                    OciCode::ManifestBlobUnknown,
                    format!(
                        "blob sha256:{} is not in this repository: push it first",
                        descriptor.sha256
                    ),
                ));
            };
            if blob.size != descriptor.size {
                return Err(Error::oci(
                    OciCode::SizeInvalid,
                    format!(
                        "blob sha256:{} has {} bytes, not {}",
                        blob.sha256, blob.size, descriptor.size
                    ),
                ));
            }
            layer_blobs.push(blob);
        }
        for child in &parsed.manifests {
            if self
                .oci_manifest(repo, &Reference::Digest(child.sha256.clone()))
                .await
                .is_err()
            {
                return Err(Error::oci(
                    OciCode::ManifestUnknown,
                    format!(
                        "manifest sha256:{} of the index is not in this repository",
                        child.sha256
                    ),
                ));
            }
        }
        let tag_version = match reference {
            Reference::Tag(tag) => Some(self.version_tag_for_push(tag, &parsed)?),
            Reference::Digest(_) => None,
        };
        // The bytes are kept exactly as pushed, content-addressed like everything else.
        let stored = self
            .blobs
            .put(one_chunk(bytes), manifest::MAX_MANIFEST_BYTES as u64)
            .await?;
        let mut record = OciManifest {
            project_id: repo.project_id(),
            repository: repo.name.clone(),
            digest: digest.clone(),
            media_type: parsed.media_type.clone(),
            artifact_type: parsed.artifact_type.clone(),
            size: stored.size,
            subject: parsed.subject.as_ref().map(|s| s.sha256.clone()),
            tag: None,
            annotations: parsed.annotations.clone(),
            config_sha256: parsed.config.as_ref().map(|c| c.sha256.clone()),
            config_media_type: parsed.config.as_ref().map(|c| c.media_type.clone()),
            layers: parsed
                .layers
                .iter()
                .map(|l| OciLayerRef {
                    sha256: l.sha256.clone(),
                    title: l.annotations.get(TITLE).cloned(),
                })
                .collect(),
            created_at: now(),
        };
        let version = match &tag_version {
            Some(version) => Some(
                self.push_version(caller, repo, version, &parsed, &layer_blobs)
                    .await?,
            ),
            None => None,
        };
        record.tag = version.as_ref().map(|v| v.version.clone());
        let project_id = repo.project_id();
        self.write(|tx| {
            if let Some(tag) = &record.tag {
                if let Some(mut previous) =
                    schema::oci_manifests::load_by_tag(tx, project_id, &repo.name, tag)?
                {
                    if previous.digest != record.digest {
                        previous.tag = None;
                        schema::put::<OciManifests>(tx, &previous)?;
                    }
                }
            }
            schema::put::<OciManifests>(tx, &record)?;
            Ok(())
        })
        .await?;
        Ok(Pushed {
            digest,
            subject: record.subject,
            version,
        })
    }

    /// The version a tag pushes to: SemVer versions only, image manifests only, every layer
    /// named by its title.
    fn version_tag_for_push(&self, tag: &str, parsed: &manifest::Parsed) -> Result<String> {
        let Some(version) = exact_version_of(tag) else {
            return Err(Error::oci(
                OciCode::TagInvalid,
                format!(
                    "tag '{tag}' is not a version: tags are the model's versions, which {} (build metadata written with _ for +); push signatures and other artifacts by digest",
                    semver_rules::SEMVER_RULE
                ),
            ));
        };
        if parsed.config.is_none() {
            return Err(Error::oci(
                OciCode::Unsupported,
                "a version is an image manifest: push indexes by digest",
            ));
        }
        for (i, layer) in parsed.layers.iter().enumerate() {
            let Some(title) = layer.annotations.get(TITLE) else {
                return Err(Error::oci(
                    OciCode::ManifestInvalid,
                    format!("layers[{i}] has no {TITLE} annotation: a version's files need names"),
                ));
            };
            check_file_path(title)?;
        }
        Ok(version)
    }

    /// Creates the version (and the model) a tag push names, or adds the layers to the
    /// existing version, by reference (no bytes copied). A layer already there under the same
    /// name with the same content is left as it is.
    async fn push_version(
        &self,
        caller: &Caller,
        repo: &Repository,
        version: &str,
        parsed: &manifest::Parsed,
        blobs: &[OciBlob],
    ) -> Result<ModelVersion> {
        let model = match &repo.model {
            Some(model) => model.clone(),
            None => {
                let created = self
                    .create_model(
                        caller,
                        &repo.access,
                        NewModel {
                            name: repo.name.clone(),
                            description: None,
                            tags: Vec::new(),
                            adopt_generic_packages: false,
                        },
                    )
                    .await;
                match created {
                    Ok(model) => model,
                    Err(Error::AlreadyExists(_)) => {
                        self.model_by_name(repo.project_id(), &repo.name)?
                    }
                    Err(other) => return Err(other),
                }
            }
        };
        let by_sha: HashMap<&str, &OciBlob> =
            blobs.iter().map(|b| (b.sha256.as_str(), b)).collect();
        let mut files = Vec::with_capacity(parsed.layers.len());
        for layer in &parsed.layers {
            let Some(blob) = by_sha.get(layer.sha256.as_str()) else {
                return Err(blob_unknown(&layer.sha256));
            };
            files.push(PackageFile {
                id: 0,
                package_id: 0,
                project_id: repo.project_id(),
                file_name: layer.annotations.get(TITLE).cloned().unwrap_or_default(),
                size: blob.size,
                md5: blob.md5.clone(),
                sha1: blob.sha1.clone(),
                sha256: blob.sha256.clone(),
                created_at: now(),
                ci: None,
                format: None,
            });
        }
        let existing = match self.version_by_string(model.id, version) {
            Ok(v) => Some(v),
            Err(Error::NotFound(_)) => None,
            Err(other) => return Err(other),
        };
        let existing = match existing {
            Some(v) => Some(v),
            None => {
                let created = self
                    .create_version(
                        caller,
                        &repo.access,
                        model.id,
                        NewVersion {
                            version: Some(version.to_string()),
                            source: Some(format!("oci:{}", repo.full_name())),
                            files: files.clone(),
                            ..NewVersion::default()
                        },
                    )
                    .await;
                match created {
                    Ok(v) => return Ok(v),
                    Err(Error::AlreadyExists(_)) => {
                        Some(self.version_by_string(model.id, version)?)
                    }
                    Err(other) => return Err(other),
                }
            }
        };
        let Some(version) = existing else {
            return Err(Error::NotFound("Model version"));
        };
        repo.access.check(caller, Action::WriteRegistry)?;
        let current = self.version_files(&version)?;
        let new: Vec<PackageFile> = files
            .into_iter()
            .filter(|f| {
                !current
                    .iter()
                    .any(|c| c.file_name == f.file_name && c.sha256 == f.sha256)
            })
            .collect();
        let ids = (0..new.len())
            .map(|_| self.new_id())
            .collect::<Result<Vec<_>>>()?;
        let package_id = version.package_id;
        self.write(|tx| {
            if schema::versions::load(tx, version.id)?.is_none() {
                return abort(Error::NotFound("Model version"));
            }
            if !new.is_empty() {
                super::sealing::ensure_unsealed(tx, package_id)?;
            }
            for (file, id) in new.iter().zip(&ids) {
                schema::put::<Files>(
                    tx,
                    &PackageFile {
                        id: *id,
                        package_id,
                        ..file.clone()
                    },
                )?;
            }
            Ok(())
        })
        .await?;
        Ok(version)
    }

    /// `DELETE /v2/<name>/manifests/<reference>`: a version's manifest (by its tag or digest)
    /// deletes the version, as the model registry's own delete does; a pushed manifest of
    /// something else (a signature) is removed.
    pub async fn oci_delete_manifest(
        &self,
        caller: &Caller,
        repo: &Repository,
        reference: &Reference,
    ) -> Result<()> {
        repo.access.check(caller, Action::WriteRegistry)?;
        let project_id = repo.project_id();
        let (version, pushed) = match reference {
            Reference::Tag(tag) => {
                if floating_requirement(tag).is_some() {
                    return Err(Error::oci(
                        OciCode::Unsupported,
                        format!("'{tag}' is a floating tag: delete a version by its own tag"),
                    ));
                }
                let version = self.oci_tag_version(repo, tag)?;
                let pushed = schema::oci_manifests::by_tag(
                    self.meta.as_ref(),
                    project_id,
                    &repo.name,
                    &version.version,
                )?;
                (Some(version), pushed)
            }
            Reference::Digest(digest) => {
                let shown = format!("sha256:{digest}");
                if let Some(pushed) =
                    schema::oci_manifests::get(self.meta.as_ref(), project_id, &repo.name, digest)?
                {
                    let version = match (&pushed.tag, &repo.model) {
                        (Some(tag), Some(model)) => match self.version_by_string(model.id, tag) {
                            Ok(v) => Some(v),
                            Err(Error::NotFound(_)) => None,
                            Err(other) => return Err(other),
                        },
                        _ => None,
                    };
                    (version, Some(pushed))
                } else {
                    let generated = schema::oci_generated::get(
                        self.meta.as_ref(),
                        project_id,
                        &repo.name,
                        digest,
                    )?
                    .filter(|g| g.role == GeneratedRole::Manifest)
                    .ok_or_else(|| manifest_unknown(&shown))?;
                    let version = self.generated_version(repo, &generated, &shown)?;
                    let current = self.oci_version_manifest(repo, &version).await?;
                    if current.digest != *digest {
                        return Err(manifest_unknown(&shown));
                    }
                    (Some(version), None)
                }
            }
        };
        if let Some(version) = &version {
            self.delete_version(caller, &repo.access, version.id)
                .await?;
        }
        if let Some(pushed) = pushed {
            self.write(|tx| {
                schema::oci_manifests::remove(tx, project_id, &repo.name, &pushed.digest)?;
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// `DELETE /v2/<name>/blobs/<digest>`: a blob pushed to the repository and not (or no
    /// longer) needed by a manifest; the files of versions go with their versions.
    pub async fn oci_delete_blob(
        &self,
        caller: &Caller,
        repo: &Repository,
        sha256: &str,
    ) -> Result<()> {
        repo.access.check(caller, Action::WriteRegistry)?;
        let project_id = repo.project_id();
        let removed = self
            .write(|tx| {
                Ok(schema::oci_blobs::remove(tx, project_id, &repo.name, sha256)?.is_some())
            })
            .await?;
        if removed {
            return Ok(());
        }
        if self.stored_blob(repo, sha256)?.is_some() {
            return Err(Error::oci(
                OciCode::Unsupported,
                "this blob is a file of a version: delete the version (its manifest) instead",
            ));
        }
        Err(blob_unknown(sha256))
    }

    /// Every sha256 the OCI records keep (pushed blobs and manifests), for gc.
    pub(crate) fn oci_referenced_blobs(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for blob in schema::oci_blobs::all(self.meta.as_ref()) {
            out.push(blob?.sha256);
        }
        for m in schema::oci_manifests::all(self.meta.as_ref()) {
            out.push(m?.digest);
        }
        Ok(out)
    }

    /// Upload ids on disk with no session (a session removed, or never recorded): neither an
    /// OCI upload session nor a resumable (tus) upload in progress.
    pub(crate) async fn oci_orphan_uploads(&self) -> Result<Vec<String>> {
        let mut sessions = std::collections::HashSet::new();
        for s in schema::oci_uploads::all(self.meta.as_ref()) {
            sessions.insert(s?.id);
        }
        let mut orphans = Vec::new();
        for id in self.blobs.list_uploads().await? {
            if !sessions.contains(&id)
                && !schema::resumable_uploads::exists(self.meta.as_ref(), &id)?
            {
                orphans.push(id);
            }
        }
        Ok(orphans)
    }
}

/// A layer title as a version's file path: segments that do not climb, a file name the ML
/// model files API accepts.
fn check_file_path(title: &str) -> Result<()> {
    let invalid = |e: Error| {
        Error::oci(
            OciCode::ManifestInvalid,
            format!("layer title '{title}': {e}"),
        )
    };
    let (dir, name) = match title.rsplit_once('/') {
        Some((dir, name)) => (Some(dir), name),
        None => (None, title),
    };
    if let Some(dir) = dir {
        names::file_path(dir).map_err(invalid)?;
    }
    names::model_file_name(name).map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floating_tags_and_exact_versions() {
        assert_eq!(floating_requirement("latest").as_deref(), Some("latest"));
        assert_eq!(floating_requirement("1").as_deref(), Some("~1"));
        assert_eq!(floating_requirement("1.2").as_deref(), Some("~1.2"));
        assert_eq!(floating_requirement("1.2.3"), None);
        assert_eq!(floating_requirement("v1"), None);
        assert_eq!(floating_requirement("99999999999999999999999"), None);
        assert_eq!(exact_version_of("1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(exact_version_of("1.2.3_b.1").as_deref(), Some("1.2.3+b.1"));
        assert_eq!(exact_version_of("1.2"), None);
        assert_eq!(exact_version_of("01.2.3"), None);
        assert_eq!(
            Reference::parse("1.2").unwrap(),
            Reference::Tag("1.2".into())
        );
        assert!(matches!(
            Reference::parse("a b"),
            Err(Error::Oci(OciCode::TagInvalid, _))
        ));
        assert!(matches!(
            Reference::parse("md5:00"),
            Err(Error::Oci(OciCode::Unsupported, _))
        ));
    }

    #[test]
    fn layer_titles_are_file_paths() {
        assert!(check_file_path("model.onnx").is_ok());
        assert!(check_file_path("dir/model.onnx").is_ok());
        assert!(check_file_path("../x").is_err());
        assert!(check_file_path("/etc/passwd").is_err());
        assert!(check_file_path("a//b").is_err());
    }
}
