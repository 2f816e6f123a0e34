//! The domain: plain Rust over the storage traits, no HTTP types. Every operation an API offers
//! is a method of [`Registry`], grouped by subject in the submodules.

pub mod access;
pub mod accounts;
pub mod artifacts;
pub mod ci;
pub mod error;
pub mod experiments;
pub mod logged_models;
pub mod maintenance;
pub mod ml_records;
pub mod models;
pub mod names;
pub mod package_paths;
pub mod packages;
pub mod paging;
pub mod projects;
pub mod records;
pub mod semver_rules;
pub mod sessions;
pub mod version_labels;

use std::sync::Arc;

use crate::store::blobs::BlobStore;
use crate::store::group_commit::GroupCommit;
use crate::store::meta::MetaStore;

pub use error::{Error, Result};

/// Size limits of uploads, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub generic_file_bytes: u64,
    pub model_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            generic_file_bytes: 5 * 1024 * 1024 * 1024,
            model_file_bytes: 10 * 1024 * 1024 * 1024,
        }
    }
}

pub struct Registry {
    pub(crate) meta: Arc<dyn MetaStore>,
    pub(crate) blobs: Arc<dyn BlobStore>,
    commits: GroupCommit,
    pub limits: Limits,
    /// The last answer of [`Registry::storage_writable`], and when it was found.
    readiness: std::sync::Mutex<Option<(std::time::Instant, std::result::Result<(), String>)>>,
}

impl Registry {
    pub fn new(meta: Arc<dyn MetaStore>, blobs: Arc<dyn BlobStore>, limits: Limits) -> Self {
        Registry {
            commits: GroupCommit::new(meta.clone()),
            meta,
            blobs,
            limits,
            readiness: std::sync::Mutex::new(None),
        }
    }

    pub fn blobs(&self) -> &dyn BlobStore {
        self.blobs.as_ref()
    }

    /// Makes every committed change durable before the caller acknowledges it. Concurrent
    /// callers share flushes (group commit).
    pub async fn persist(&self) -> Result<()> {
        Ok(self.commits.durable().await?)
    }

    /// Synchronous flush for shutdown and admin commands.
    pub fn persist_blocking(&self) -> Result<()> {
        Ok(self.commits.flush_now()?)
    }

    /// How many durable writes (metadata flushes) have been made.
    pub fn flush_count(&self) -> u64 {
        self.commits.flush_count()
    }

    /// Whether the stores take writes: a small file written and synced where uploads are
    /// staged, and a metadata write made durable. The answer is kept for a second, so that
    /// readiness probes cannot turn into a stream of syncs. `Err` says what cannot write.
    pub fn storage_writable(&self) -> std::result::Result<(), String> {
        let mut last = self.readiness.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, answer)) = last.as_ref() {
            if at.elapsed() < std::time::Duration::from_secs(1) {
                return answer.clone();
            }
        }
        let answer = self.probe_writes();
        *last = Some((std::time::Instant::now(), answer.clone()));
        answer
    }

    fn probe_writes(&self) -> std::result::Result<(), String> {
        use crate::store::meta::{Table, TxnExt};
        self.blobs
            .probe_write()
            .map_err(|e| format!("the blob store cannot write: {e}"))?;
        let stamp = records::now().to_rfc3339();
        self.meta
            .transaction(|tx| {
                tx.put_json(Table::Counters, b"readiness", &stamp)?;
                Ok::<_, crate::store::meta::TxError<Error>>(())
            })
            .map_err(|e| format!("the metadata store cannot write: {e}"))?;
        self.meta
            .flush()
            .map_err(|e| format!("the metadata store cannot write: {e}"))
    }

    /// Reads a record by id, lets `change` modify it, and writes it back, in one transaction.
    pub(crate) fn update_record<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        table: crate::store::meta::Table,
        id: u64,
        what: &'static str,
        mut change: impl FnMut(&mut T),
    ) -> Result<T> {
        use crate::store::meta::{abort, TxnExt};
        let key = crate::store::keys::id(id);
        self.meta.transaction(|tx| {
            let Some(mut record) = tx.get_json::<T>(table, &key)? else {
                return abort(Error::NotFound(what));
            };
            change(&mut record);
            tx.put_json(table, &key, &record)?;
            Ok(record)
        })
    }

    pub(crate) fn new_id(&self) -> Result<u64> {
        Ok(self.meta.next_id()?)
    }
}
