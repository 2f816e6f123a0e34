//! Offline maintenance of the stores: garbage collection and verification.

use std::collections::HashSet;

use super::error::Result;
use super::records::PackageFile;
use super::schema;
use super::Registry;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub kept: usize,
    pub removed: usize,
    pub freed_bytes: u64,
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

    /// Deletes blobs no file record references. Run on a stopped server: an upload in flight
    /// has a blob but no record yet.
    pub async fn gc(&self) -> Result<GcReport> {
        let referenced = self.referenced_blobs()?;
        let mut report = GcReport::default();
        for upload in self.oci_orphan_uploads().await? {
            self.blobs.discard_upload(&upload).await?;
        }
        for sha256 in self.blobs.list().await? {
            if referenced.contains(&sha256) {
                report.kept += 1;
            } else {
                report.freed_bytes += self.blobs.remove(&sha256).await?;
                report.removed += 1;
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
