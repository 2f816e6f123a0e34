//! Packages and their files: GitLab's generic package semantics on the blob store.

use super::access::{Action, Caller};
use super::error::{Error, Result};
use super::names;
use super::paging::{Page, PageRequest};
use super::projects::ProjectAccess;
use super::records::{now, Package, PackageFile, PackageStatus, PackageType, Project};
use super::Registry;
use crate::store::blobs::ByteStream;
use crate::store::keys::{self, Key};
use crate::store::meta::{abort, Table, TxFail, Txn, TxnExt};

/// Where a file goes: package name, version and type, and the file's path inside the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTarget {
    pub package_name: String,
    pub version: String,
    pub package_type: PackageType,
    pub file_name: String,
}

/// An upload's body and what the client declared about it.
pub struct IncomingFile {
    pub body: ByteStream,
    pub declared_len: Option<u64>,
    pub status: Option<PackageStatus>,
}

#[derive(Debug, Clone, Default)]
pub struct PackageFilter {
    pub package_type: Option<PackageType>,
    /// Substring match, as GitLab's `package_name`.
    pub package_name: Option<String>,
    pub package_version: Option<String>,
    pub status: Option<PackageStatus>,
    pub order_by: PackageOrder,
    pub descending: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PackageOrder {
    #[default]
    CreatedAt,
    Name,
    Version,
    Type,
}

impl PackageOrder {
    pub fn parse(s: &str) -> Option<PackageOrder> {
        match s {
            "created_at" => Some(PackageOrder::CreatedAt),
            "name" => Some(PackageOrder::Name),
            "version" => Some(PackageOrder::Version),
            "type" => Some(PackageOrder::Type),
            _ => None,
        }
    }
}

fn package_key(project_id: u64, name: &str, version: &str, package_type: PackageType) -> Vec<u8> {
    Key::new()
        .id(project_id)
        .str(name)
        .str(version)
        .str(package_type.as_str())
        .build()
}

/// The count of generic packages named `name` in a project, kept in `Counters` next to the
/// per-project iid counters (those keys are one string part, these two, so they never meet).
/// Name ownership (DESIGN §2) is decided on it inside the transactions that create models and
/// generic packages: both read the key the other writes, so the engine orders them.
fn generic_name_key(project_id: u64, name: &str) -> Vec<u8> {
    Key::new()
        .id(project_id)
        .str("generic_packages_named")
        .str(name)
        .build()
}

/// How many generic packages are named `name`, as far as the kept count knows (data written
/// before the count existed is found by [`Registry::generic_packages_named`]).
pub(crate) fn generic_name_count(tx: &dyn Txn, project_id: u64, name: &str) -> Result<u64, TxFail> {
    Ok(tx
        .get(Table::Counters, &generic_name_key(project_id, name))?
        .and_then(|v| keys::last_id(&v))
        .unwrap_or(0))
}

fn add_generic_name(tx: &dyn Txn, project_id: u64, name: &str) -> Result<(), TxFail> {
    let count = generic_name_count(tx, project_id, name)?.saturating_add(1);
    tx.put(
        Table::Counters,
        &generic_name_key(project_id, name),
        &keys::id(count),
    )
}

/// Forgets every generic package of the name (they became a model's versions).
pub(crate) fn clear_generic_name(tx: &dyn Txn, project_id: u64, name: &str) -> Result<(), TxFail> {
    tx.delete(Table::Counters, &generic_name_key(project_id, name))
}

/// Forgets one generic package of the name; at zero the name is free again.
pub(crate) fn drop_generic_name(tx: &dyn Txn, project_id: u64, name: &str) -> Result<(), TxFail> {
    let key = generic_name_key(project_id, name);
    match generic_name_count(tx, project_id, name)? {
        0 | 1 => tx.delete(Table::Counters, &key),
        n => tx.put(Table::Counters, &key, &keys::id(n - 1)),
    }
}

/// The refusal of a model name that generic packages own; `refused` says what was refused
/// ("Model 'x' cannot be created"), `versions` lists the packages found, may be empty.
pub(crate) fn name_owned_by_generic(refused: &str, name: &str, versions: &[String]) -> Error {
    let listed = match versions {
        [] => String::new(),
        [one] => format!(" ({name}/{one})"),
        many => {
            let shown: Vec<String> = many.iter().take(5).map(|v| format!("{name}/{v}")).collect();
            let more = many.len().saturating_sub(5);
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!(" ({}{tail})", shown.join(", "))
        }
    };
    Error::NameTaken(format!(
        "{refused}: the package name '{name}' belongs to generic packages of this project{listed}. A package name is either generic packages or one model; delete those packages first, or have a Maintainer adopt them as versions (adopt_generic_packages)"
    ))
}

/// The refusal of a new generic package under a model's name.
pub(crate) fn name_owned_by_model(name: &str) -> Error {
    Error::NameTaken(format!(
        "The package name '{name}' belongs to the model '{name}' of this project: its uploads are model versions"
    ))
}

fn head_key(package_id: u64, file_name: &str) -> Vec<u8> {
    Key::new().id(package_id).str(file_name).build()
}

/// Joins GitLab's optional `path` and `file_name` into the stored file path.
pub fn join_file_path(path: Option<&str>, file_name: &str) -> String {
    match path {
        Some(dir) if !dir.is_empty() => format!("{dir}/{file_name}"),
        _ => file_name.to_string(),
    }
}

impl Registry {
    /// `PUT /packages/generic/:name/:version/(:path/):file_name` for a plain generic package.
    pub async fn upload_generic(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        target: FileTarget,
        incoming: IncomingFile,
    ) -> Result<PackageFile> {
        access.check(caller, Action::WritePackages)?;
        let limit = self.limits.generic_file_bytes;
        self.store_package_file(&access.project, caller.user_id(), target, incoming, limit)
            .await
            .map(|(_, file)| file)
    }

    /// Streams a file into the blob store and records it in its package (created if absent) in
    /// one transaction, made durable before returning. Permission checks are the caller's.
    pub(crate) async fn store_package_file(
        &self,
        project: &Project,
        creator: Option<u64>,
        target: FileTarget,
        incoming: IncomingFile,
        limit: u64,
    ) -> Result<(Package, PackageFile)> {
        if incoming.declared_len.is_some_and(|len| len > limit) {
            return Err(Error::TooLarge);
        }
        if !project.generic_duplicates_allowed && target.package_type == PackageType::Generic {
            if let Ok(package) = self.find_package(project.id, &target) {
                if self
                    .meta
                    .get(Table::FileHeads, &head_key(package.id, &target.file_name))?
                    .is_some()
                {
                    return Err(Error::DuplicateNotAllowed);
                }
            }
        }
        let stored = self.blobs.put(incoming.body, limit).await?;
        let new_package_id = self.new_id()?;
        let file_id = self.new_id()?;
        let at = now();
        let by_name = package_key(
            project.id,
            &target.package_name,
            &target.version,
            target.package_type,
        );
        let duplicates_allowed =
            project.generic_duplicates_allowed || target.package_type != PackageType::Generic;
        let result = self.meta.transaction(|tx| {
            let mut package = match tx.get(Table::PackagesByName, &by_name)? {
                Some(id) => match tx.get_json::<Package>(Table::Packages, &id)? {
                    Some(package) => package,
                    None => return abort(Error::NotFound("Package")),
                },
                None => {
                    if target.package_type == PackageType::Generic {
                        // A model of that name may have been created since the route was chosen.
                        if tx.exists(
                            Table::ModelsByName,
                            &super::models::model_name_key(project.id, &target.package_name),
                        )? {
                            return abort(name_owned_by_model(&target.package_name));
                        }
                        add_generic_name(tx, project.id, &target.package_name)?;
                    }
                    let package = Package {
                        id: new_package_id,
                        project_id: project.id,
                        name: target.package_name.clone(),
                        version: target.version.clone(),
                        package_type: target.package_type,
                        status: PackageStatus::Default,
                        creator_id: creator,
                        created_at: at,
                        updated_at: at,
                    };
                    tx.put(Table::PackagesByName, &by_name, &keys::id(package.id))?;
                    tx.put(
                        Table::PackagesByProject,
                        &Key::new().id(project.id).id(package.id).build(),
                        &[],
                    )?;
                    package
                }
            };
            let head = head_key(package.id, &target.file_name);
            if !duplicates_allowed && tx.exists(Table::FileHeads, &head)? {
                return abort(Error::DuplicateNotAllowed);
            }
            if let Some(status) = incoming.status {
                package.status = status;
            }
            package.updated_at = at;
            let file = PackageFile {
                id: file_id,
                package_id: package.id,
                project_id: project.id,
                file_name: target.file_name.clone(),
                size: stored.size,
                md5: stored.digests.md5.clone(),
                sha1: stored.digests.sha1.clone(),
                sha256: stored.digests.sha256.clone(),
                created_at: at,
            };
            tx.put_json(Table::Packages, &keys::id(package.id), &package)?;
            put_file(tx, &file)?;
            Ok((package, file))
        })?;
        self.persist().await?;
        Ok(result)
    }

    pub fn find_package(&self, project_id: u64, target: &FileTarget) -> Result<Package> {
        let key = package_key(
            project_id,
            &target.package_name,
            &target.version,
            target.package_type,
        );
        let id = self
            .meta
            .get(Table::PackagesByName, &key)?
            .ok_or(Error::NotFound("Package"))?;
        self.meta
            .get_json(Table::Packages, &id)?
            .ok_or(Error::NotFound("Package"))
    }

    /// The generic packages named `name` in a project, found through the name index (each
    /// name has few versions): what a model of that name would take over.
    pub fn generic_packages_named(&self, project_id: u64, name: &str) -> Result<Vec<Package>> {
        let prefix = Key::new().id(project_id).str(name).build();
        let mut found = Vec::new();
        for entry in self.meta.scan(Table::PackagesByName, &prefix) {
            let (key, id) = entry?;
            if !key.ends_with(&Key::new().str(PackageType::Generic.as_str()).build()) {
                continue;
            }
            let package: Option<Package> = self.meta.get_json(Table::Packages, &id)?;
            if let Some(package) = package.filter(|p| p.package_type == PackageType::Generic) {
                found.push(package);
            }
        }
        Ok(found)
    }

    /// A package of the project as the packages API shows it: 404 when the caller may not read
    /// packages of its type (an `ml_model` package of a registry hidden from them).
    pub fn visible_package(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        package_id: u64,
    ) -> Result<Package> {
        access.check(caller, Action::ReadPackages)?;
        let package = self.package(access.project.id, package_id)?;
        hide_refusal(access.check(caller, Action::read_packages_of(package.package_type)))?;
        Ok(package)
    }

    pub fn package(&self, project_id: u64, package_id: u64) -> Result<Package> {
        self.meta
            .get_json::<Package>(Table::Packages, &keys::id(package_id))?
            .filter(|p| p.project_id == project_id)
            .ok_or(Error::NotFound("Package"))
    }

    pub fn package_file(&self, file_id: u64) -> Result<PackageFile> {
        self.meta
            .get_json(Table::PackageFiles, &keys::id(file_id))?
            .ok_or(Error::NotFound("Package file"))
    }

    /// The newest file of a package with this path: what a download serves.
    pub fn newest_file(&self, package_id: u64, file_name: &str) -> Result<PackageFile> {
        let id = self
            .meta
            .get(Table::FileHeads, &head_key(package_id, file_name))?
            .ok_or(Error::NotFound("Package file"))?;
        self.package_file(keys::last_id(&id).ok_or(Error::NotFound("Package file"))?)
    }

    /// `GET /packages/generic/...` of a plain generic package.
    pub fn generic_download(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        target: &FileTarget,
    ) -> Result<PackageFile> {
        access.check(caller, Action::ReadPackages)?;
        let package = self.find_package(access.project.id, target)?;
        self.newest_file(package.id, &target.file_name)
    }

    /// Files of a package, oldest first.
    pub fn package_files(&self, package_id: u64) -> Result<Vec<PackageFile>> {
        self.meta
            .scan_keys(Table::FilesByPackage, &keys::id(package_id))
            .map(|key| {
                let key = key?;
                self.package_file(keys::last_id(&key).ok_or(Error::NotFound("Package file"))?)
            })
            .collect()
    }

    pub fn packages_of(&self, project_id: u64) -> Result<Vec<Package>> {
        self.meta
            .scan_keys(Table::PackagesByProject, &keys::id(project_id))
            .map(|key| {
                let key = key?;
                let id = keys::last_id(&key).ok_or(Error::NotFound("Package"))?;
                self.package(project_id, id)
            })
            .collect()
    }

    pub fn list_packages(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        filter: &PackageFilter,
        page: PageRequest,
    ) -> Result<Page<Package>> {
        access.check(caller, Action::ReadPackages)?;
        let models_visible = access
            .check(caller, Action::read_packages_of(PackageType::MlModel))
            .is_ok();
        let mut packages: Vec<Package> = self
            .packages_of(access.project.id)?
            .into_iter()
            .filter(|p| models_visible || p.package_type != PackageType::MlModel)
            .filter(|p| filter.package_type.is_none_or(|t| p.package_type == t))
            .filter(|p| {
                filter
                    .package_name
                    .as_deref()
                    .is_none_or(|n| p.name.contains(n))
            })
            .filter(|p| {
                filter
                    .package_version
                    .as_deref()
                    .is_none_or(|v| p.version == v)
            })
            .filter(|p| p.status == filter.status.unwrap_or(PackageStatus::Default))
            .collect();
        packages.sort_by(|a, b| {
            let order = match filter.order_by {
                PackageOrder::CreatedAt => a.created_at.cmp(&b.created_at),
                PackageOrder::Name => a.name.cmp(&b.name),
                PackageOrder::Version => a.version.cmp(&b.version),
                PackageOrder::Type => a.package_type.as_str().cmp(b.package_type.as_str()),
            }
            .then(a.id.cmp(&b.id));
            if filter.descending {
                order.reverse()
            } else {
                order
            }
        });
        Ok(Page::of(packages, page))
    }

    pub fn delete_package(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        package_id: u64,
    ) -> Result<()> {
        access.check(caller, Action::DeletePackages)?;
        let package = self.package(access.project.id, package_id)?;
        hide_refusal(access.check(caller, Action::delete_packages_of(package.package_type)))?;
        self.remove_package(&package)
    }

    /// Removes a package and all its file records in one transaction. Blobs stay until `gc`.
    pub(crate) fn remove_package(&self, package: &Package) -> Result<()> {
        let files = self.package_files(package.id)?;
        self.meta
            .transaction(|tx| remove_package_in(tx, package, &files))
    }

    pub fn delete_package_file(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        package_id: u64,
        file_id: u64,
    ) -> Result<()> {
        access.check(caller, Action::DeletePackages)?;
        let package = self.package(access.project.id, package_id)?;
        hide_refusal(access.check(caller, Action::delete_packages_of(package.package_type)))?;
        let file = self.package_file(file_id)?;
        if file.package_id != package.id {
            return Err(Error::NotFound("Package file"));
        }
        let previous = self
            .package_files(package.id)?
            .into_iter()
            .filter(|f| f.file_name == file.file_name && f.id != file.id)
            .max_by_key(|f| f.id);
        self.meta.transaction(|tx| {
            if !tx.exists(Table::PackageFiles, &keys::id(file.id))? {
                return abort(Error::NotFound("Package file"));
            }
            remove_file_in(tx, &file)?;
            let head = head_key(package.id, &file.file_name);
            if tx.get(Table::FileHeads, &head)?.as_deref() == Some(&keys::id(file.id)[..]) {
                match &previous {
                    Some(prev) => tx.put(Table::FileHeads, &head, &keys::id(prev.id))?,
                    None => tx.delete(Table::FileHeads, &head)?,
                }
            }
            Ok(())
        })
    }
}

/// A package the caller may not even see is not found, as packages of other projects are.
fn hide_refusal(decision: Result<()>) -> Result<()> {
    match decision {
        Err(Error::NotFound(_)) => Err(Error::NotFound("Package")),
        other => other,
    }
}

/// Records a file and makes it the newest of its name.
pub(crate) fn put_file(tx: &dyn Txn, file: &PackageFile) -> Result<(), crate::store::meta::TxFail> {
    tx.put_json(Table::PackageFiles, &keys::id(file.id), file)?;
    tx.put(
        Table::FilesByPackage,
        &Key::new().id(file.package_id).id(file.id).build(),
        &[],
    )?;
    tx.put(
        Table::FileHeads,
        &head_key(file.package_id, &file.file_name),
        &keys::id(file.id),
    )
}

fn remove_file_in(tx: &dyn Txn, file: &PackageFile) -> Result<(), crate::store::meta::TxFail> {
    tx.delete(Table::PackageFiles, &keys::id(file.id))?;
    tx.delete(
        Table::FilesByPackage,
        &Key::new().id(file.package_id).id(file.id).build(),
    )
}

/// Removes file records with every record of their names (so their heads go too).
pub(crate) fn remove_files_in(
    tx: &dyn Txn,
    package: &Package,
    files: &[PackageFile],
) -> Result<(), crate::store::meta::TxFail> {
    for file in files {
        remove_file_in(tx, file)?;
        tx.delete(Table::FileHeads, &head_key(package.id, &file.file_name))?;
    }
    Ok(())
}

pub(crate) fn remove_package_in(
    tx: &dyn Txn,
    package: &Package,
    files: &[PackageFile],
) -> Result<(), crate::store::meta::TxError<Error>> {
    remove_files_in(tx, package, files)?;
    if package.package_type == PackageType::Generic {
        drop_generic_name(tx, package.project_id, &package.name)?;
    }
    tx.delete(
        Table::PackagesByName,
        &package_key(
            package.project_id,
            &package.name,
            &package.version,
            package.package_type,
        ),
    )?;
    tx.delete(
        Table::PackagesByProject,
        &Key::new().id(package.project_id).id(package.id).build(),
    )?;
    tx.delete(Table::Packages, &keys::id(package.id))?;
    Ok(())
}

/// Validates the parts of a generic package path.
pub fn generic_target(
    name: &str,
    version: &str,
    path: Option<&str>,
    file_name: &str,
) -> Result<FileTarget> {
    names::package_name(name)?;
    names::package_version(version)?;
    if let Some(path) = path {
        names::file_path(path)?;
    }
    names::generic_file_name(file_name)?;
    Ok(FileTarget {
        package_name: name.to_string(),
        version: version.to_string(),
        package_type: PackageType::Generic,
        file_name: join_file_path(path, file_name),
    })
}
