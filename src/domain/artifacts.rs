//! Packages seen as directory trees: what MLflow's artifact API lists, copies and deletes.

use super::access::{Action, Caller};
use super::error::{Error, Result};
use super::names;
use super::packages::{FileTarget, IncomingFile};
use super::projects::ProjectAccess;
use super::records::PackageFile;
use super::Registry;
use crate::store::meta::abort;

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name relative to the listed directory.
    pub name: String,
    pub is_dir: bool,
    pub size: Option<u64>,
}

/// `prefix` without slashes at either end; empty for the root.
pub fn normalize_prefix(prefix: &str) -> &str {
    prefix.trim_matches('/')
}

/// The part of `file_name` below `dir`, if it is below it.
fn below<'a>(file_name: &'a str, dir: &str) -> Option<&'a str> {
    if dir.is_empty() {
        return Some(file_name);
    }
    file_name.strip_prefix(dir)?.strip_prefix('/')
}

impl Registry {
    /// The direct children of `dir` in a package: files with their size, sub-directories once.
    pub fn list_dir(&self, package_id: u64, dir: &str) -> Result<Vec<DirEntry>> {
        let dir = normalize_prefix(dir);
        let mut entries: Vec<DirEntry> = Vec::new();
        for file in self.current_files_under(package_id, dir)? {
            let Some(rest) = below(&file.file_name, dir) else {
                continue;
            };
            match rest.split_once('/') {
                Some((sub, _)) => {
                    if !entries.iter().any(|e| e.is_dir && e.name == sub) {
                        entries.push(DirEntry {
                            name: sub.to_string(),
                            is_dir: true,
                            size: None,
                        });
                    }
                }
                None => entries.push(DirEntry {
                    name: rest.to_string(),
                    is_dir: false,
                    size: Some(file.size),
                }),
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// The current files at or below `path`, renamed relative to it (a file named exactly
    /// `path` keeps its base name). What a version made from a source references.
    pub fn files_under(&self, package_id: u64, path: &str) -> Result<Vec<PackageFile>> {
        let path = normalize_prefix(path);
        let mut out = Vec::new();
        let exact = match path {
            "" => None,
            _ => match self.newest_file(package_id, path) {
                Ok(file) => Some(file),
                Err(Error::NotFound(_)) => None,
                Err(other) => return Err(other),
            },
        };
        for file in exact
            .into_iter()
            .chain(self.current_files_under(package_id, path)?)
        {
            let relative = if file.file_name == path {
                file.base_name().to_string()
            } else {
                match below(&file.file_name, path) {
                    Some(rest) => rest.to_string(),
                    None => continue,
                }
            };
            out.push(PackageFile {
                file_name: relative,
                ..file
            });
        }
        Ok(out)
    }

    /// Stores an artifact (a model file of a run, logged model or version) at `target`.
    pub async fn upload_artifact(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        target: FileTarget,
        incoming: IncomingFile,
    ) -> Result<PackageFile> {
        access.check(caller, Action::WriteRegistry)?;
        if target.file_name.is_empty() {
            return Err(Error::bad("an artifact path must name a file"));
        }
        names::file_path(&target.file_name)?;
        let limit = self.limits.model_file_bytes;
        let (_, file) = self
            .store_package_file(&access.project, caller, target, incoming, limit)
            .await?;
        Ok(file)
    }

    /// Deletes every file record at or below `path` in a package. Blobs stay until `gc`.
    pub async fn delete_files_under(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        package_id: u64,
        path: &str,
    ) -> Result<usize> {
        access.check(caller, Action::WriteRegistry)?;
        let package = self.package(access.project.id, package_id)?;
        let path = normalize_prefix(path);
        let doomed: Vec<PackageFile> = self
            .package_files(package.id)?
            .into_iter()
            .filter(|f| {
                path.is_empty() || f.file_name == path || below(&f.file_name, path).is_some()
            })
            .collect();
        if doomed.is_empty() {
            return Err(Error::NotFound("Artifact"));
        }
        let count = doomed.len();
        self.write(|tx| {
            if doomed.is_empty() {
                return abort(Error::NotFound("Artifact"));
            }
            super::sealing::ensure_unsealed(tx, package.id)?;
            super::packages::remove_files_in(tx, &doomed)?;
            Ok(())
        })
        .await?;
        Ok(count)
    }
}

impl Registry {
    /// The first `max` bytes of a stored file (fewer when it is shorter): what a preview shows.
    pub async fn file_head(&self, file: &PackageFile, max: usize) -> Result<Vec<u8>> {
        self.blob_head(&file.sha256, max.min(file.size as usize))
            .await
    }

    /// The first `max` bytes of a stored blob (fewer when it is shorter), read as a range.
    pub async fn blob_head(&self, sha256: &str, max: usize) -> Result<Vec<u8>> {
        use futures_util::StreamExt;
        let size = self.blobs().stat(sha256).await?.size;
        let end = size.min(max as u64);
        let mut head = Vec::with_capacity(end as usize);
        if end == 0 {
            return Ok(head);
        }
        let mut stream = self.blobs().open(sha256, Some(0..end)).await?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(crate::store::blobs::BlobError::from_io)?;
            let room = (end as usize).saturating_sub(head.len());
            head.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if head.len() >= end as usize {
                break;
            }
        }
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_only_matches_whole_segments() {
        assert_eq!(below("folder/a.txt", "folder"), Some("a.txt"));
        assert_eq!(below("folder2/a.txt", "folder"), None);
        assert_eq!(below("a.txt", ""), Some("a.txt"));
        assert_eq!(normalize_prefix("/x/y/"), "x/y");
    }
}
