//! The domain: plain Rust over the storage traits, no HTTP types. Every operation an API offers
//! is a method of [`Registry`], grouped by subject in the submodules.

pub mod access;
pub mod accounts;
pub mod artifacts;
pub mod audit;
pub mod candidates;
pub mod ci;
pub mod error;
pub mod event_records;
pub mod events;
pub mod experiments;
pub mod formats;
pub mod groups;
pub mod integrity;
pub mod logged_models;
pub mod maintenance;
pub mod ml_records;
pub mod models;
pub mod names;
pub mod oci;
pub mod oci_manifest;
pub mod oci_records;
pub mod package_paths;
pub mod packages;
pub mod page_reads;
pub mod paging;
pub mod projects;
pub mod promotion;
pub mod records;
pub mod retention;
pub mod run_links;
pub mod run_search;
pub mod schema;
pub mod sealing;
pub mod search_syntax;
pub mod semver_rules;
pub mod sessions;
pub mod signatures;
pub mod trust;
pub mod uploads;
pub mod usage;
pub mod version_labels;
pub mod versions;

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
    /// OCI upload sessions receive one chunk at a time.
    pub(crate) oci_uploads: oci::UploadLocks,
    /// How webhooks are delivered.
    pub event_settings: events::EventSettings,
    /// Woken when a durable write put events in the outbox.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// What the audit log records and keeps.
    pub audit: audit::AuditSettings,
    /// Download counts not yet written.
    pub usage: usage::UsageCounters,
    /// Resumable uploads receive one chunk at a time and keep their digests between chunks.
    pub(crate) resumable: uploads::UploadSessions,
    /// How long a resumable upload lives after its last chunk.
    pub upload_expiry: std::time::Duration,
    /// Added to the clock retention judges ages by (tests make versions old with it).
    pub retention_clock_offset: chrono::Duration,
}

impl Registry {
    pub fn new(meta: Arc<dyn MetaStore>, blobs: Arc<dyn BlobStore>, limits: Limits) -> Self {
        Registry {
            commits: GroupCommit::new(meta.clone()),
            meta,
            blobs,
            limits,
            readiness: std::sync::Mutex::new(None),
            oci_uploads: oci::UploadLocks::default(),
            event_settings: events::EventSettings::default(),
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
            audit: audit::AuditSettings::default(),
            usage: usage::UsageCounters::new(true),
            resumable: uploads::UploadSessions::default(),
            upload_expiry: std::time::Duration::from_secs(24 * 3600),
            retention_clock_offset: chrono::Duration::zero(),
        }
    }

    pub fn blobs(&self) -> &dyn BlobStore {
        self.blobs.as_ref()
    }

    /// This registry on another blob store (its metadata unchanged).
    pub fn with_blobs(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.blobs = blobs;
        self
    }

    /// The blob store, for a stream that outlives the request's borrow (archives).
    pub fn shared_blobs(&self) -> Arc<dyn BlobStore> {
        self.blobs.clone()
    }

    /// Makes every committed change durable. Concurrent callers share flushes (group commit).
    /// Writes call it through [`Registry::write`]; nothing outside the domain needs it.
    pub(crate) async fn persist(&self) -> Result<()> {
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

    /// Statements sent to the metadata database since the start (`None` on the embedded store).
    pub fn metadata_round_trips(&self) -> Option<u64> {
        self.meta.round_trips()
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
        // Called on a blocking thread (see `api::ops`).
        tokio::runtime::Handle::current()
            .block_on(self.blobs.probe_write())
            .map_err(|e| format!("the blob store cannot write: {e}"))?;
        let stamp = records::now().to_rfc3339();
        self.meta
            .transaction(|tx| {
                schema::counters::stamp_readiness(tx, &stamp)?;
                Ok::<_, crate::store::meta::TxError<Error>>(())
            })
            .map_err(|e| format!("the metadata store cannot write: {e}"))?;
        self.meta
            .flush()
            .map_err(|e| format!("the metadata store cannot write: {e}"))
    }

    /// The one way the domain writes: runs `body` as one transaction and returns once its
    /// changes are durable (concurrent writers share the flush: group commit). Handlers never
    /// flush themselves.
    pub(crate) async fn write<R>(
        &self,
        body: impl FnMut(&dyn crate::store::meta::Txn) -> Result<R, crate::store::meta::TxError<Error>>,
    ) -> Result<R> {
        schema::outbox::take_wrote();
        let done = audit::within(self.audit_context(), || self.meta.transaction(body))?;
        let announced = schema::outbox::take_wrote();
        self.persist().await?;
        if announced {
            self.outbox_wake.notify_one();
        }
        Ok(done)
    }

    /// Reads a record by id, lets `change` modify it, and writes it back with its indexes, in
    /// one durable transaction.
    pub(crate) async fn update_record<S: schema::Schema>(
        &self,
        id: u64,
        what: &'static str,
        mut change: impl FnMut(&mut S::Record),
    ) -> Result<S::Record> {
        use crate::store::meta::abort;
        let key = schema::id_key(id);
        self.write(|tx| {
            let Some(mut record) = schema::load::<S>(tx, &key)? else {
                return abort(Error::NotFound(what));
            };
            change(&mut record);
            schema::put::<S>(tx, &record)?;
            Ok(record)
        })
        .await
    }

    /// Runs a change that must list what it touches before its transaction (sled transactions
    /// cannot scan): `list` gathers and notes the parents it read in a
    /// [`schema::revisions::ReadSet`]; `change` runs in one transaction that commits only if
    /// none of them changed meanwhile, and otherwise everything is listed again.
    pub(crate) async fn delete_listed<L, R>(
        &self,
        mut list: impl FnMut(&mut schema::revisions::ReadSet) -> Result<L>,
        mut change: impl FnMut(
            &dyn crate::store::meta::Txn,
            &L,
        ) -> std::result::Result<R, crate::store::meta::TxError<Attempt>>,
    ) -> Result<R> {
        use crate::store::meta::abort;
        const ATTEMPTS: usize = 16;
        for _ in 0..ATTEMPTS {
            let mut seen = schema::revisions::ReadSet::new();
            let listed = list(&mut seen)?;
            schema::outbox::take_wrote();
            let outcome = audit::within(self.audit_context(), || {
                self.meta.transaction(|tx| {
                    if !seen.unchanged(tx)? {
                        return abort(Attempt::Stale);
                    }
                    change(tx, &listed)
                })
            });
            let announced = schema::outbox::take_wrote();
            match outcome {
                Ok(done) => {
                    self.persist().await?;
                    if announced {
                        self.outbox_wake.notify_one();
                    }
                    return Ok(done);
                }
                Err(Attempt::Stale) => continue,
                Err(Attempt::Failed(error)) => return Err(error),
            }
        }
        Err(Error::bad(
            "the records changed concurrently too often; try again",
        ))
    }

    pub(crate) fn new_id(&self) -> Result<u64> {
        Ok(self.meta.next_id()?)
    }
}

/// How a transaction of [`Registry::delete_listed`] ended when it did not commit.
pub(crate) enum Attempt {
    /// What was listed changed before the transaction: list again.
    Stale,
    Failed(Error),
}

impl From<Error> for Attempt {
    fn from(error: Error) -> Self {
        Attempt::Failed(error)
    }
}

impl From<crate::store::meta::StoreError> for Attempt {
    fn from(error: crate::store::meta::StoreError) -> Self {
        Attempt::Failed(Error::Store(error))
    }
}
