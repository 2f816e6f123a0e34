//! Offline maintenance of the stores: garbage collection and verification.

use std::collections::HashSet;
use std::time::SystemTime;

use super::error::{Error, Result};
use super::records::PackageFile;
use super::schema;
use super::Registry;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Referenced blobs.
    pub kept: usize,
    pub removed: usize,
    pub freed_bytes: u64,
    /// Unreferenced blobs left because they were stored at or after `stored_before`.
    pub recent: usize,
}

/// What `gc` may delete.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Only blobs stored before this: one stored later may belong to an upload in flight on a
    /// running replica, whose record is not written yet.
    pub stored_before: SystemTime,
    /// Delete even when the metadata references none of the stored blobs.
    pub force: bool,
}

impl Default for GcOptions {
    /// Everything unreferenced, now (a stopped single server).
    fn default() -> Self {
        GcOptions {
            stored_before: SystemTime::now(),
            force: false,
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub blobs_checked: usize,
    /// Blobs whose content no longer hashes to their address.
    pub corrupt: Vec<String>,
    /// File records whose blob is gone: (file id, sha256).
    pub missing: Vec<(u64, String)>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty() && self.missing.is_empty()
    }
}

impl Registry {
    fn all_files(&self) -> Result<Vec<PackageFile>> {
        Ok(schema::files::all(self.meta.as_ref()).collect::<Result<_, _>>()?)
    }

    /// Every sha256 some file record points at.
    pub fn referenced_blobs(&self) -> Result<HashSet<String>> {
        let mut referenced: HashSet<String> =
            self.all_files()?.into_iter().map(|f| f.sha256).collect();
        // Blobs and manifests pushed over OCI that no file records (yet).
        referenced.extend(self.oci_referenced_blobs()?);
        Ok(referenced)
    }

    /// Deletes blobs no file record references that were stored before
    /// `options.stored_before` (an upload in flight has a blob but no record yet).
    ///
    /// Refuses, deleting nothing, when blobs are stored but the metadata references none of
    /// them, unless `options.force`: that is a metadata store and a blob store that do not
    /// belong together (a wrong `--metadata` URL, a fresh database beside a shared bucket), and
    /// going on would delete every file of the registry that does own the bucket.
    pub async fn gc(&self, options: &GcOptions) -> Result<GcReport> {
        let referenced = self.referenced_blobs()?;
        let stored = self.blobs.list().await?;
        if !options.force
            && !stored.is_empty()
            && !stored.iter().any(|sha256| referenced.contains(sha256))
        {
            return Err(Error::bad(format!(
                "the metadata store references none of the {} stored blobs: are --metadata and \
                 --blobs the stores of one registry? Nothing was deleted (--force deletes them)",
                stored.len()
            )));
        }
        let mut report = GcReport::default();
        for upload in self.oci_orphan_uploads().await? {
            self.blobs.discard_upload(&upload).await?;
        }
        for sha256 in stored {
            if referenced.contains(&sha256) {
                report.kept += 1;
                continue;
            }
            match self
                .blobs
                .remove_unless_stored_since(&sha256, options.stored_before)
                .await?
            {
                Some(freed) => {
                    report.freed_bytes += freed;
                    report.removed += 1;
                }
                None => report.recent += 1,
            }
        }
        Ok(report)
    }

    /// Re-hashes every blob and checks that every file record has its blob.
    pub async fn verify(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        for sha256 in self.blobs.list().await? {
            report.blobs_checked += 1;
            if self.blobs.rehash(&sha256).await? != sha256 {
                report.corrupt.push(sha256);
            }
        }
        for file in self.all_files()? {
            if !self.blobs.exists(&file.sha256).await? {
                report.missing.push((file.id, file.sha256));
            }
        }
        Ok(report)
    }
}
