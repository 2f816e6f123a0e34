//! Sealed versions: a version's manifest (every file's path, size and sha256; the model and
//! version; who sealed it and when) frozen as canonical JSON, whose sha256 is the manifest
//! digest. After sealing, nothing changes the version's files on any surface: every write path
//! that adds, replaces or removes a package's files asks [`ensure_unsealed`] inside its own
//! transaction, so a seal and a concurrent change are serialized by the store.

use chrono::SecondsFormat;

use super::access::{Action, Caller, Identity};
use super::error::{Error, Result};
use super::integrity::{digest_of_json, Manifest, ManifestFile};
use super::ml_records::{AutoSeal, Model, ModelVersion, Seal};
use super::packages::FileTarget;
use super::projects::ProjectAccess;
use super::records::{now, Package, PackageFile, PackageType};
use super::schema::revisions::Parent;
use super::schema::sealed_manifests::{SealedManifest, SealedManifests};
use super::schema::{self, models::Models, versions::Versions};
use super::Registry;
use crate::store::meta::{abort, TxError, Txn};

/// The refusal of a change to a sealed version's files.
pub(crate) fn sealed_refusal(model: &str, version: &ModelVersion) -> Error {
    let digest = version
        .seal
        .as_ref()
        .map(|s| s.manifest_digest.as_str())
        .unwrap_or_default();
    Error::Sealed(format!(
        "Version {} of model '{model}' is sealed (manifest {digest}): its files cannot be added, replaced or deleted, and the version cannot be deleted. Publish a new version instead",
        version.version
    ))
}

/// The one check of the write paths that change a package's files (uploads on every surface,
/// file and package deletes, MLflow artifact deletes, OCI pushes): refused with
/// [`Error::Sealed`] when the package holds a sealed version's files. Runs inside the
/// change's transaction.
pub(crate) fn ensure_unsealed<E: From<Error>>(
    tx: &dyn Txn,
    package_id: u64,
) -> std::result::Result<(), TxError<E>> {
    match schema::packages::load(tx, package_id)? {
        Some(package) => ensure_package_unsealed(tx, &package),
        None => Ok(()),
    }
}

/// [`ensure_unsealed`] for a package already read in the transaction.
pub(crate) fn ensure_package_unsealed<E: From<Error>>(
    tx: &dyn Txn,
    package: &Package,
) -> std::result::Result<(), TxError<E>> {
    if package.package_type != PackageType::MlModel {
        return Ok(());
    }
    let Some(model) = schema::models::load_by_name(tx, package.project_id, &package.name)? else {
        return Ok(());
    };
    let Some(version) = schema::versions::load_by_string(tx, model.id, &package.version)? else {
        return Ok(());
    };
    if version.package_id == package.id && version.seal.is_some() {
        return abort(E::from(sealed_refusal(&model.name, &version)));
    }
    Ok(())
}

/// The same for removing a version itself (its delete, its model's delete).
pub(crate) fn ensure_version_unsealed<E: From<Error>>(
    tx: &dyn Txn,
    version_id: u64,
) -> std::result::Result<(), TxError<E>> {
    let Some(version) = schema::versions::load(tx, version_id)? else {
        return Ok(());
    };
    if version.seal.is_some() {
        let model = schema::models::load(tx, version.model_id)?
            .map(|m| m.name)
            .unwrap_or_default();
        return abort(E::from(sealed_refusal(&model, &version)));
    }
    Ok(())
}

/// How a sealed manifest names the sealer.
fn sealer_name(caller: &Caller) -> String {
    if let Some(user) = caller.user() {
        return user.username.clone();
    }
    match caller.machine().map(|m| &m.identity) {
        Some(Identity::GitlabJob {
            gitlab_url,
            project_path,
            ..
        }) => format!("gitlab-job:{gitlab_url}/{project_path}"),
        Some(Identity::Oidc { issuer, .. }) => format!("oidc:{issuer}"),
        Some(Identity::DeployToken { username, .. }) => format!("deploy-token:{username}"),
        None => "anonymous".into(),
    }
}

/// Whether the current files of a sealed version are those of its manifest (they are unless
/// something bypassed the domain).
pub(crate) fn check_sealed_files(
    version: &ModelVersion,
    manifest: &Manifest,
    files: &[PackageFile],
) -> Result<()> {
    let same = files.len() == manifest.files.len()
        && files
            .iter()
            .zip(&manifest.files)
            .all(|(f, m)| f.file_name == m.path && f.sha256 == m.sha256 && f.size == m.size);
    if same {
        Ok(())
    } else {
        tracing::error!(
            version_id = version.id,
            "the files of a sealed version differ from its sealed manifest"
        );
        Err(Error::Conflict(format!(
            "The files of sealed version {} differ from its sealed manifest: ask an administrator to run `modelyard verify`",
            version.version
        )))
    }
}

/// Whether a model's automatic sealing applies to a version just created.
pub(crate) fn auto_seals(
    policy: AutoSeal,
    version: &str,
    promoted: bool,
    with_files: bool,
) -> bool {
    let release = semver::Version::parse(version).is_ok_and(|v| v.pre.is_empty());
    release
        && match policy {
            AutoSeal::Off => false,
            AutoSeal::OnPromote => promoted,
            AutoSeal::OnCreateWithFiles => with_files,
        }
}

impl Registry {
    /// `POST .../versions/:version/seal` (Maintainers): freezes the version's manifest.
    /// Idempotent: a sealed version is returned as it is.
    pub async fn seal_version(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        version_id: u64,
    ) -> Result<ModelVersion> {
        access.check(caller, Action::SealVersion)?;
        let version = self.project_version(access, version_id)?;
        if version.seal.is_some() {
            return Ok(version);
        }
        let model = self.model(version.model_id)?;
        self.check_seal_policy(caller, &model, &version).await?;
        self.seal_now(caller, version.id).await
    }

    /// Seals a version with the files it has now (no permission check: the caller's).
    pub(crate) async fn seal_now(&self, caller: &Caller, version_id: u64) -> Result<ModelVersion> {
        let sealed_by = sealer_name(caller);
        let sealed_by_id = caller.user_id();
        self.delete_listed(
            |seen| {
                let version = self.version(version_id)?;
                let model = self.model(version.model_id)?;
                // A file added or removed meanwhile bumps the package: everything is listed
                // again, so the manifest is exactly the files the seal commits with.
                seen.note(self.meta.as_ref(), Parent::Package(version.package_id))?;
                let files = self.version_files(&version)?;
                Ok((model, files))
            },
            |tx, (model, files)| {
                let Some(current) = schema::versions::load(tx, version_id)? else {
                    return abort(Error::NotFound("Model version").into());
                };
                if current.seal.is_some() {
                    return Ok(current);
                }
                let at = now();
                let at =
                    chrono::DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at);
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
                    sealed_at: Some(at.to_rfc3339_opts(SecondsFormat::Millis, true)),
                    sealed_by: Some(sealed_by.clone()),
                    version: current.version.clone(),
                };
                let canonical = manifest.canonical_json();
                let digest = digest_of_json(&canonical);
                schema::put::<SealedManifests>(
                    tx,
                    &SealedManifest {
                        version_id,
                        digest: digest.clone(),
                        canonical: String::from_utf8_lossy(&canonical).into_owned(),
                    },
                )?;
                let sealed = ModelVersion {
                    seal: Some(Seal {
                        manifest_digest: digest,
                        sealed_at: at,
                        sealed_by: sealed_by.clone(),
                        sealed_by_id,
                    }),
                    updated_at: at,
                    ..current
                };
                schema::put::<Versions>(tx, &sealed)?;
                Ok(sealed)
            },
        )
        .await
    }

    /// The manifest a sealed version was sealed with.
    pub fn sealed_manifest(&self, version: &ModelVersion) -> Result<Manifest> {
        let stored = schema::sealed_manifests::get(self.meta.as_ref(), version.id)?
            .ok_or(Error::NotFound("Sealed manifest"))?;
        let manifest: Manifest = serde_json::from_str(&stored.canonical)
            .map_err(|e| Error::Conflict(format!("the sealed manifest is unreadable: {e}")))?;
        // The canonical form is a function of the manifest: it reads back byte for byte.
        if manifest.canonical_json() != stored.canonical.as_bytes() {
            return Err(Error::Conflict(
                "the sealed manifest does not read back to its canonical form".into(),
            ));
        }
        Ok(manifest)
    }

    /// The sealed version of a model whose manifest has this digest (`sha256:<64 hex>`).
    pub fn version_by_manifest_digest(&self, model: &Model, digest: &str) -> Result<ModelVersion> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::bad(format!(
                "'{digest}' is not a manifest digest: sha256: and 64 hexadecimal digits"
            )));
        }
        let digest = format!("sha256:{}", hex.to_ascii_lowercase());
        schema::versions::by_manifest_digest(self.meta.as_ref(), model.id, &digest)?.ok_or_else(
            || {
                Error::NotFoundMessage(format!(
                    "No sealed version of model '{}' has the manifest digest {digest}",
                    model.name
                ))
            },
        )
    }

    /// An early answer for an upload to a sealed version (the transaction checks again), so
    /// that a large body is not received in vain.
    pub(crate) fn refuse_sealed_target(&self, project_id: u64, target: &FileTarget) -> Result<()> {
        if target.package_type != PackageType::MlModel {
            return Ok(());
        }
        let Some(model) =
            schema::models::by_name_in(self.meta.as_ref(), project_id, &target.package_name)?
        else {
            return Ok(());
        };
        match schema::versions::by_string_in(self.meta.as_ref(), model.id, &target.version)? {
            Some(version) if version.seal.is_some() => Err(sealed_refusal(&model.name, &version)),
            _ => Ok(()),
        }
    }

    /// Sets when a model's releases are sealed automatically (Maintainers).
    pub async fn set_auto_seal(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        model_id: u64,
        policy: AutoSeal,
    ) -> Result<Model> {
        access.check(caller, Action::SealVersion)?;
        self.project_model(access, model_id)?;
        self.update_record::<Models>(model_id, "Model", |model| {
            model.auto_seal = policy;
            model.updated_at = now();
        })
        .await
    }
}
