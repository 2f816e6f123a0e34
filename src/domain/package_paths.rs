//! What a generic package URL names. `/packages/generic/<name>/<version>/<file>` is a plain
//! generic package, unless `<name>` is a model of the project: then it is that model's version
//! package (created on upload when absent), and on download the version slot may also hold a
//! SemVer requirement (`^1.2`) that resolves to the newest matching version.

use semver::Version;

use super::access::{Action, Caller};
use super::error::{Error, Result};
use super::ml_records::{Model, ModelVersion};
use super::names;
use super::packages::{generic_target, join_file_path, FileTarget, IncomingFile};
use super::projects::ProjectAccess;
use super::records::PackageFile;
use super::Registry;

/// A generic package path, split and percent-decoded but not yet validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericPath {
    pub name: String,
    pub version: String,
    pub path: Option<String>,
    pub file_name: String,
}

pub enum Destination {
    Generic(FileTarget),
    ModelVersion {
        /// Boxed: a model record is much larger than a generic target.
        model: Box<Model>,
        version: String,
        file_name: String,
    },
}

/// A model file found for a download, and whether the version came from a requirement.
pub struct ModelDownload {
    pub version: ModelVersion,
    pub file: PackageFile,
}

impl Registry {
    /// The model this path names, if the caller may see the registry and the model exists.
    fn model_of_path(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        name: &str,
    ) -> Result<Option<Model>> {
        if access.check(caller, Action::ReadRegistry).is_err() {
            return Ok(None);
        }
        match self.model_by_name(access.project.id, name) {
            Ok(model) => Ok(Some(model)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    fn model_file_path(parts: &GenericPath) -> Result<String> {
        if let Some(path) = &parts.path {
            names::file_path(path)?;
        }
        names::generic_file_name(&parts.file_name)?;
        Ok(join_file_path(parts.path.as_deref(), &parts.file_name))
    }

    /// Where an upload to a generic package path goes. A model's name is the model's whoever
    /// uploads (name ownership, DESIGN §2): even a caller who may not see the registry never
    /// creates a generic package under it; the model upload's own check answers them.
    pub fn generic_destination(
        &self,
        access: &ProjectAccess,
        parts: &GenericPath,
    ) -> Result<Destination> {
        let model = match self.model_by_name(access.project.id, &parts.name) {
            Ok(model) => Some(model),
            Err(Error::NotFound(_)) => None,
            Err(other) => return Err(other),
        };
        if let Some(model) = model {
            let file_name = Self::model_file_path(parts)?;
            return Ok(Destination::ModelVersion {
                model: Box::new(model),
                version: parts.version.clone(),
                file_name,
            });
        }
        Ok(Destination::Generic(generic_target(
            &parts.name,
            &parts.version,
            parts.path.as_deref(),
            &parts.file_name,
        )?))
    }

    /// `PUT /packages/generic/...`: a model version's file (Reporter+) or a generic package file
    /// (Developer+).
    pub async fn upload_to_generic_path(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        parts: &GenericPath,
        incoming: IncomingFile,
    ) -> Result<PackageFile> {
        super::trust::check_package_name(caller, &parts.name)?;
        match self.generic_destination(access, parts)? {
            Destination::Generic(target) => {
                self.upload_generic(caller, access, target, incoming).await
            }
            Destination::ModelVersion {
                model,
                version,
                file_name,
            } => self
                .upload_version_file(caller, access, &model, &version, &file_name, incoming)
                .await
                .map(|(_, file)| file),
        }
    }

    /// `GET /packages/generic/...`: the newest file under the path. For a model, the version slot
    /// is an exact version or a requirement; `Ok(Err(file))` is a plain generic package's file.
    pub fn download_from_generic_path(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        parts: &GenericPath,
    ) -> Result<std::result::Result<ModelDownload, PackageFile>> {
        super::trust::check_package_name(caller, &parts.name)?;
        let Some(model) = self.model_of_path(caller, access, &parts.name)? else {
            let target = generic_target(
                &parts.name,
                &parts.version,
                parts.path.as_deref(),
                &parts.file_name,
            )?;
            return self.generic_download(caller, access, &target).map(Err);
        };
        let file_name = Self::model_file_path(parts)?;
        let version = if Version::parse(&parts.version).is_ok() {
            match self.version_by_string(model.id, &parts.version) {
                Ok(version) => version,
                Err(Error::NotFound(_)) => {
                    // Not a model version: a generic package of the same name may still exist.
                    let target = generic_target(
                        &parts.name,
                        &parts.version,
                        parts.path.as_deref(),
                        &parts.file_name,
                    )?;
                    return self.generic_download(caller, access, &target).map(Err);
                }
                Err(other) => return Err(other),
            }
        } else {
            self.resolve_version(caller, access, &model, &parts.version)?
        };
        let file = self.version_file(&version, &file_name)?;
        Ok(Ok(ModelDownload { version, file }))
    }
}
