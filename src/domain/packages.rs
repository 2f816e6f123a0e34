//! Packages and their files: GitLab's generic package semantics on the blob store.

use super::access::{Action, Caller};
use super::error::{Error, Result};
use super::names;
use super::paging::{Page, PageRequest};
use super::projects::ProjectAccess;
use super::records::{now, Package, PackageFile, PackageStatus, PackageType, Project};
use super::schema::revisions::{Parent, ReadSet};
use super::schema::{self, files::Files, packages::Packages};
use super::{Attempt, Registry};
use crate::store::blobs::ByteStream;
use crate::store::checksum::Expected;
use crate::store::meta::{abort, TxError, Txn};

/// Where a file goes: package name, version and type, and the file's path inside the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTarget {
    pub package_name: String,
    pub version: String,
    pub package_type: PackageType,
    pub file_name: String,
}

/// An upload's content once durable and checked, before it is recorded.
pub(crate) struct Received {
    pub stored: crate::store::blobs::StoredBlob,
    pub status: Option<PackageStatus>,
    /// The head of the content, kept while it streamed past (see [`super::formats`]); `None`
    /// when no body streamed (the head is then read from the stored blob).
    pub head: Option<super::formats::Sniffer>,
}

/// What an upload's content is: a body still to stream, or the bytes of a resumable upload,
/// already staged and hashed as they arrived (see [`super::uploads`]).
pub enum Content {
    Stream(ByteStream),
    Staged(Staged),
}

/// A complete resumable upload: its staged bytes and the digests computed while they arrived.
pub struct Staged {
    pub(crate) upload_id: String,
    pub(crate) size: u64,
    pub(crate) digests: crate::store::checksum::Digests,
}

/// An upload's body and what the client declared about it.
pub struct IncomingFile {
    pub body: Content,
    pub declared_len: Option<u64>,
    pub status: Option<PackageStatus>,
    /// The digests the client declared: the body must have them, or nothing is recorded.
    pub expected: Expected,
    /// Deploy by checksum: no body; the declared sha256 names content the caller can read.
    pub deploy: bool,
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

/// The refusal of a model name that generic packages of the project use (DESIGN §2, name
/// ownership), naming some of them.
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

/// A package the caller may not even see is not found, as packages of other projects are.
fn hide_refusal(decision: Result<()>) -> Result<()> {
    match decision {
        Err(Error::NotFound(_)) => Err(Error::NotFound("Package")),
        other => other,
    }
}

/// A package with its files, listed before the transaction that removes them.
pub(crate) struct PackageContents {
    package: Package,
    files: Vec<PackageFile>,
}

impl PackageOrder {
    fn index(self) -> schema::packages::Order {
        match self {
            PackageOrder::CreatedAt => schema::packages::Order::Created,
            PackageOrder::Name => schema::packages::Order::Name,
            PackageOrder::Version => schema::packages::Order::Version,
            PackageOrder::Type => schema::packages::Order::Type,
        }
    }
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
        self.store_package_file(&access.project, caller, target, incoming, limit)
            .await
            .map(|(_, file)| file)
    }

    /// Streams a file into the blob store and records it in its package (created if absent) in
    /// one transaction, made durable before returning. Permission checks are the caller's.
    pub(crate) async fn store_package_file(
        &self,
        project: &Project,
        caller: &Caller,
        target: FileTarget,
        incoming: IncomingFile,
        limit: u64,
    ) -> Result<(Package, PackageFile)> {
        super::trust::check_package_name(caller, &target.package_name)?;
        self.refuse_sealed_target(project.id, &target)?;
        self.refuse_duplicate(project, &target)?;
        let received = self.receive(caller, project, incoming, limit).await?;
        self.record_package_file(project, caller, target, received)
            .await
    }

    /// A file the target's package has already, when the project refuses duplicates: checked
    /// before any byte is received (and again in the recording transaction).
    pub(crate) fn refuse_duplicate(&self, project: &Project, target: &FileTarget) -> Result<()> {
        let duplicates_allowed =
            project.generic_duplicates_allowed || target.package_type != PackageType::Generic;
        if !duplicates_allowed {
            if let Ok(package) = self.find_package(project.id, target) {
                if schema::files::newest(self.meta.as_ref(), package.id, &target.file_name)?
                    .is_some()
                {
                    return Err(Error::DuplicateNotAllowed);
                }
            }
        }
        Ok(())
    }

    /// The bytes of an upload made durable (or, for a deploy by checksum, the content it names),
    /// with the declared digests checked: nothing is recorded yet.
    pub(crate) async fn receive(
        &self,
        caller: &Caller,
        project: &Project,
        incoming: IncomingFile,
        limit: u64,
    ) -> Result<Received> {
        if incoming.declared_len.is_some_and(|len| len > limit) {
            return Err(Error::TooLarge);
        }
        let status = incoming.status;
        if incoming.deploy {
            let stored = self.deployed_content(caller, project, incoming).await?;
            return Ok(Received {
                stored,
                status,
                head: None,
            });
        }
        let body = match incoming.body {
            Content::Stream(body) => body,
            // A resumable upload's bytes are staged already; its head is read from the blob.
            Content::Staged(staged) => {
                let stored = self.install_staged(staged, &incoming.expected).await?;
                return Ok(Received {
                    stored,
                    status,
                    head: None,
                });
            }
        };
        // The sniffer sees the chunks the hasher sees, and keeps a bounded head of them.
        let sniffer = std::sync::Arc::new(std::sync::Mutex::new(super::formats::Sniffer::new()));
        let tap = sniffer.clone();
        let body: ByteStream = Box::pin(futures_util::StreamExt::inspect(body, move |chunk| {
            if let Ok(chunk) = chunk {
                if let Ok(mut sniffer) = tap.lock() {
                    sniffer.feed(chunk);
                }
            }
        }));
        let stored = self
            .blobs
            .put_checked(body, limit, &incoming.expected)
            .await?;
        let head = sniffer.lock().map(|mut s| std::mem::take(&mut *s)).ok();
        Ok(Received {
            stored,
            status,
            head,
        })
    }

    /// What a received file is, from the head kept while it streamed, or else from the first
    /// bytes of its stored blob (bounded by [`super::formats::MAX_HEADER`]).
    async fn file_format(
        &self,
        head: Option<super::formats::Sniffer>,
        sha256: &str,
        file_name: &str,
    ) -> Option<super::formats::FormatFacts> {
        let sniffer = match head {
            Some(sniffer) => sniffer,
            None => self.sniff_blob(sha256).await,
        };
        sniffer.finish(file_name)
    }

    async fn sniff_blob(&self, sha256: &str) -> super::formats::Sniffer {
        use futures_util::StreamExt;
        let mut sniffer = super::formats::Sniffer::new();
        let Ok(mut blob) = self.blobs.open(sha256, None).await else {
            return sniffer;
        };
        while sniffer.wants_more() {
            match blob.next().await {
                Some(Ok(chunk)) => sniffer.feed(&chunk),
                Some(Err(_)) | None => break,
            }
        }
        sniffer
    }

    /// Records received content as a file of its package (created if absent), durably.
    pub(crate) async fn record_package_file(
        &self,
        project: &Project,
        caller: &Caller,
        target: FileTarget,
        received: Received,
    ) -> Result<(Package, PackageFile)> {
        super::trust::check_package_name(caller, &target.package_name)?;
        let creator = caller.user_id();
        let ci = caller.ci().cloned();
        let duplicates_allowed =
            project.generic_duplicates_allowed || target.package_type != PackageType::Generic;
        let Received {
            stored,
            status,
            head,
        } = received;
        let format = self
            .file_format(head, &stored.digests.sha256, &target.file_name)
            .await;
        // An MLmodel file of a version: its signature against the release it follows.
        let is_mlmodel = target.package_type == PackageType::MlModel
            && super::signatures::is_mlmodel(&target.file_name);
        let signature_check = if is_mlmodel {
            self.signature_verdict(
                project.id,
                &target.package_name,
                &target.version,
                &target.file_name,
                &stored.digests.sha256,
            )
            .await?
        } else {
            None
        };
        let new_package_id = self.new_id()?;
        let file_id = self.new_id()?;
        let at = now();
        let result = self
            .write(|tx| {
                let existing = schema::packages::load_by_identity(
                    tx,
                    project.id,
                    &target.package_name,
                    &target.version,
                    target.package_type,
                )?;
                if existing.is_none()
                    && target.package_type == PackageType::Generic
                    && schema::models::name_taken(tx, project.id, &target.package_name)?
                {
                    // A model of that name was created since the upload was routed.
                    return abort(name_owned_by_model(&target.package_name));
                }
                if let Some(package) = &existing {
                    super::sealing::ensure_package_unsealed(tx, package)?;
                }
                let mut package = existing.unwrap_or_else(|| Package {
                    id: new_package_id,
                    project_id: project.id,
                    name: target.package_name.clone(),
                    version: target.version.clone(),
                    package_type: target.package_type,
                    status: PackageStatus::Default,
                    creator_id: creator,
                    created_at: at,
                    updated_at: at,
                    ci: ci.clone(),
                });
                if !duplicates_allowed
                    && schema::files::path_taken(tx, package.id, &target.file_name)?
                {
                    return abort(Error::DuplicateNotAllowed);
                }
                if let Some(status) = status {
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
                    ci: ci.clone(),
                    format: format.clone(),
                };
                schema::put::<Packages>(tx, &package)?;
                schema::put::<Files>(tx, &file)?;
                if is_mlmodel {
                    // The new MLmodel's finding replaces the last one (none: cleared).
                    super::signatures::record_finding(tx, &package, signature_check.as_ref())?;
                }
                Ok((package, file))
            })
            .await?;
        Ok(result)
    }

    pub fn find_package(&self, project_id: u64, target: &FileTarget) -> Result<Package> {
        schema::packages::find(
            self.meta.as_ref(),
            project_id,
            &target.package_name,
            &target.version,
            target.package_type,
        )?
        .ok_or(Error::NotFound("Package"))
    }

    /// The generic packages named `name` in a project, oldest first.
    pub fn generic_packages_named(&self, project_id: u64, name: &str) -> Result<Vec<Package>> {
        schema::packages::named(self.meta.as_ref(), project_id, PackageType::Generic, name)?
            .into_iter()
            .map(|id| self.package(project_id, id))
            .collect()
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
        schema::packages::get(self.meta.as_ref(), package_id)?
            .filter(|p| p.project_id == project_id)
            .ok_or(Error::NotFound("Package"))
    }

    pub fn package_file(&self, file_id: u64) -> Result<PackageFile> {
        schema::files::get(self.meta.as_ref(), file_id)?.ok_or(Error::NotFound("Package file"))
    }

    /// The newest file of a package with this path: what a download serves.
    pub fn newest_file(&self, package_id: u64, file_name: &str) -> Result<PackageFile> {
        schema::files::newest(self.meta.as_ref(), package_id, file_name)?
            .ok_or(Error::NotFound("Package file"))
    }

    /// `GET /packages/generic/...` of a plain generic package.
    pub fn generic_download(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        target: &FileTarget,
    ) -> Result<PackageFile> {
        access.check(caller, Action::ReadPackages)?;
        super::trust::check_package_name(caller, &target.package_name)?;
        let package = self.find_package(access.project.id, target)?;
        self.newest_file(package.id, &target.file_name)
    }

    /// Files of a package, oldest first (every record, duplicates included).
    pub fn package_files(&self, package_id: u64) -> Result<Vec<PackageFile>> {
        schema::files::ids_of(self.meta.as_ref(), package_id)?
            .into_iter()
            .map(|id| self.package_file(id))
            .collect()
    }

    /// A page of a package's files in upload order.
    pub fn package_files_page(
        &self,
        package_id: u64,
        page: PageRequest,
    ) -> Result<Page<PackageFile>> {
        let (ids, next) =
            schema::files::page(self.meta.as_ref(), package_id, &page.seek(), page.per_page)?;
        let items = schema::files::get_ids(self.meta.as_ref(), &ids)?;
        let total = schema::files::count_of(self.meta.as_ref(), package_id)?;
        Ok(Page::keyed(items, total, page, next))
    }

    /// The newest record of each file name in a package, sorted by name.
    pub fn current_files(&self, package_id: u64) -> Result<Vec<PackageFile>> {
        Ok(schema::files::current(self.meta.as_ref(), package_id)?)
    }

    /// The newest record of each file below `dir/` in a package (all of it for an empty dir).
    pub fn current_files_under(&self, package_id: u64, dir: &str) -> Result<Vec<PackageFile>> {
        Ok(schema::files::current_under(
            self.meta.as_ref(),
            package_id,
            dir,
        )?)
    }

    /// A page of a project's packages. Without a name filter this reads the page's index
    /// entries only; a name filter reads the project's distinct package names first.
    pub fn list_packages(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        filter: &PackageFilter,
        page: PageRequest,
    ) -> Result<Page<Package>> {
        access.check(caller, Action::ReadPackages)?;
        super::trust::may_list_packages(caller)?;
        let project_id = access.project.id;
        let status = filter.status.unwrap_or(PackageStatus::Default);
        // `ml_model` packages are the registry's: hidden where the registry is hidden.
        let models_visible = access
            .check(caller, Action::read_packages_of(PackageType::MlModel))
            .is_ok();
        let mut filter = filter.clone();
        if !models_visible {
            match filter.package_type {
                Some(PackageType::MlModel) => {
                    return Ok(Page::keyed(Vec::new(), 0, page, None));
                }
                _ => filter.package_type = Some(PackageType::Generic),
            }
        }
        let filter = &filter;
        let names = match (&filter.package_name, &filter.package_version) {
            (None, None) => None,
            _ => Some(self.matching_package_names(project_id, status, filter)?),
        };
        if let Some(version) = &filter.package_version {
            // An exact version: one lookup per matching name.
            let mut found = Vec::new();
            for name in names.iter().flatten() {
                for t in filter_types(filter.package_type) {
                    if let Some(p) =
                        schema::packages::find(self.meta.as_ref(), project_id, name, version, t)?
                    {
                        if p.status == status {
                            found.push(p);
                        }
                    }
                }
            }
            sort_packages(&mut found, filter);
            return Ok(Page::of(found, page));
        }
        let listing = schema::packages::Listing {
            project_id,
            status,
            package_type: filter.package_type,
            names: names.as_deref(),
            order: filter.order_by.index(),
            descending: filter.descending,
        };
        if let Some(cursor) = page.cursor() {
            if !schema::packages::keyset_supported(&listing) {
                return Err(Error::KeysetUnsupported);
            }
            if !schema::packages::cursor_fits(project_id, cursor) {
                return Err(Error::invalid("cursor"));
            }
        } else if page.is_keyset() && !schema::packages::keyset_supported(&listing) {
            return Err(Error::KeysetUnsupported);
        }
        let total = match &names {
            None => schema::packages::total(
                self.meta.as_ref(),
                project_id,
                status,
                filter.package_type,
            )?,
            Some(names) => {
                let mut total = 0;
                for t in filter_types(filter.package_type) {
                    for (name, n) in
                        schema::packages::names(self.meta.as_ref(), project_id, status, t)?
                    {
                        if names.contains(&name) {
                            total += n;
                        }
                    }
                }
                total
            }
        };
        let (ids, next) =
            schema::packages::page(self.meta.as_ref(), &listing, &page.seek(), page.per_page)?;
        let items = schema::packages::get_ids(self.meta.as_ref(), &ids)?
            .into_iter()
            .filter(|p| p.project_id == project_id)
            .collect();
        Ok(Page::keyed(items, total, page, next))
    }

    /// The distinct package names of a project that a name filter matches, by name.
    fn matching_package_names(
        &self,
        project_id: u64,
        status: PackageStatus,
        filter: &PackageFilter,
    ) -> Result<Vec<String>> {
        let mut names: Vec<String> = Vec::new();
        for t in filter_types(filter.package_type) {
            for (name, _) in schema::packages::names(self.meta.as_ref(), project_id, status, t)? {
                let matches = filter
                    .package_name
                    .as_deref()
                    .is_none_or(|needle| name.contains(needle));
                if matches && !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names.sort();
        Ok(names)
    }

    pub async fn delete_package(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        package_id: u64,
    ) -> Result<()> {
        access.check(caller, Action::DeletePackages)?;
        let package = self.package(access.project.id, package_id)?;
        hide_refusal(access.check(caller, Action::delete_packages_of(package.package_type)))?;
        self.remove_package(&package).await
    }

    /// Lists a package's files, noting the package whose children they are.
    pub(crate) fn package_contents(
        &self,
        seen: &mut ReadSet,
        package: Package,
    ) -> Result<PackageContents> {
        seen.note(self.meta.as_ref(), Parent::Package(package.id))?;
        let files = self.package_files(package.id)?;
        Ok(PackageContents { package, files })
    }

    /// Removes a package and all its file records in one transaction. Blobs stay until `gc`.
    pub(crate) async fn remove_package(&self, package: &Package) -> Result<()> {
        self.delete_listed(
            |seen| match schema::packages::get(self.meta.as_ref(), package.id)? {
                Some(p) => Ok(Some(self.package_contents(seen, p)?)),
                None => Ok(None),
            },
            |tx, contents| {
                if let Some(contents) = contents {
                    super::sealing::ensure_unsealed(tx, contents.package.id)?;
                    remove_package_in(tx, contents)?;
                }
                Ok(())
            },
        )
        .await
    }

    pub async fn delete_package_file(
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
        self.write(|tx| {
            super::sealing::ensure_unsealed(tx, package.id)?;
            if schema::remove::<Files>(tx, &schema::id_key(file.id))?.is_none() {
                return abort(Error::NotFound("Package file"));
            }
            Ok(())
        })
        .await
    }
}

fn filter_types(package_type: Option<PackageType>) -> Vec<PackageType> {
    match package_type {
        Some(t) => vec![t],
        None => schema::packages::TYPES.to_vec(),
    }
}

fn sort_packages(packages: &mut [Package], filter: &PackageFilter) {
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
}

/// Removes file records (the package stays).
pub(crate) fn remove_files_in(
    tx: &dyn Txn,
    files: &[PackageFile],
) -> Result<(), crate::store::meta::TxFail> {
    for file in files {
        schema::remove::<Files>(tx, &schema::id_key(file.id))?;
    }
    Ok(())
}

/// Removes a package with every file [`Registry::package_contents`] listed.
pub(crate) fn remove_package_in(
    tx: &dyn Txn,
    contents: &PackageContents,
) -> Result<(), TxError<Attempt>> {
    remove_files_in(tx, &contents.files)?;
    schema::remove::<Packages>(tx, &schema::id_key(contents.package.id))?;
    schema::revisions::forget(tx, Parent::Package(contents.package.id))?;
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
