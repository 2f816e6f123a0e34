//! The metadata store: an ordered key-value store with multi-table transactions.
//!
//! The domain talks to this trait only; `sled_meta` is the embedded implementation. Values are
//! serde-JSON documents, keys are built with [`crate::store::keys`] so that prefix scans return
//! records in listing order.

use serde::{de::DeserializeOwned, Serialize};

/// Every kind of record and every index lives in its own table. The schema layer
/// (`crate::domain::schema`) is the only code that names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Users,
    UsersByName,
    Tokens,
    TokensByHash,
    TokensByUser,
    Sessions,
    Projects,
    ProjectsByPath,
    Members,
    MembersByUser,
    Packages,
    PackagesByName,
    PackagesByProject,
    PackagesByCreated,
    PackagesByNameOrder,
    PackagesByVersionOrder,
    PackageFiles,
    FilesByPackage,
    FileHeads,
    Models,
    ModelsByName,
    ModelsByCreated,
    ModelsByUpdated,
    Versions,
    VersionsByModel,
    VersionsByPrecedence,
    ReleasesByPrecedence,
    VersionsBySeq,
    VersionsByStage,
    Experiments,
    ExperimentsByName,
    ExperimentsByProject,
    Candidates,
    CandidatesByRunId,
    CandidatesByExperiment,
    CandidatesByIid,
    CandidatesByStart,
    CandidatesByName,
    Params,
    ParamsByValue,
    Metrics,
    MetricChunks,
    LatestMetrics,
    MetricsByValue,
    Tags,
    Counters,
    Counts,
    Revisions,
    LoggedModels,
    LoggedModelsByKey,
    LoggedModelsByExperiment,
    FilesBySha256,
    OciBlobs,
    OciManifests,
    OciManifestsByTag,
    OciReferrers,
    OciDigests,
    OciUploads,
    Groups,
    GroupsByPath,
    GroupMembers,
    GroupMembersByUser,
    DeployTokens,
    DeployTokensByHash,
    DeployTokensByProject,
    TrustedPublishers,
    TrustedPublishersByProject,
    CiTokens,
    CiTokensByHash,
    CiTokensByExpiry,
    RunDatasetInputs,
    RunModelLinks,
    LoggedModelMetrics,
    VersionsBySourceRun,
    VersionsByUpdated,
    ProjectVersionsByUpdated,
    Hooks,
    HooksByProject,
    ProjectHooks,
    Deliveries,
    DeliveriesPending,
    AliasMoves,
    FilesByContent,
    AuditEvents,
    AuditByTime,
    AuditByProject,
    AuditByAuthor,
    AuditByType,
    Usage,
    SealedManifests,
    VersionsByManifest,
    ResumableUploads,
    ResumableUploadsByExpiry,
}

impl Table {
    pub const ALL: [Table; 93] = [
        Table::Users,
        Table::UsersByName,
        Table::Tokens,
        Table::TokensByHash,
        Table::TokensByUser,
        Table::Sessions,
        Table::Projects,
        Table::ProjectsByPath,
        Table::Members,
        Table::MembersByUser,
        Table::Packages,
        Table::PackagesByName,
        Table::PackagesByProject,
        Table::PackagesByCreated,
        Table::PackagesByNameOrder,
        Table::PackagesByVersionOrder,
        Table::PackageFiles,
        Table::FilesByPackage,
        Table::FileHeads,
        Table::Models,
        Table::ModelsByName,
        Table::ModelsByCreated,
        Table::ModelsByUpdated,
        Table::Versions,
        Table::VersionsByModel,
        Table::VersionsByPrecedence,
        Table::ReleasesByPrecedence,
        Table::VersionsBySeq,
        Table::VersionsByStage,
        Table::Experiments,
        Table::ExperimentsByName,
        Table::ExperimentsByProject,
        Table::Candidates,
        Table::CandidatesByRunId,
        Table::CandidatesByExperiment,
        Table::CandidatesByIid,
        Table::CandidatesByStart,
        Table::CandidatesByName,
        Table::Params,
        Table::ParamsByValue,
        Table::Metrics,
        Table::MetricChunks,
        Table::LatestMetrics,
        Table::MetricsByValue,
        Table::Tags,
        Table::Counters,
        Table::Counts,
        Table::Revisions,
        Table::LoggedModels,
        Table::LoggedModelsByKey,
        Table::LoggedModelsByExperiment,
        Table::FilesBySha256,
        Table::OciBlobs,
        Table::OciManifests,
        Table::OciManifestsByTag,
        Table::OciReferrers,
        Table::OciDigests,
        Table::OciUploads,
        Table::Groups,
        Table::GroupsByPath,
        Table::GroupMembers,
        Table::GroupMembersByUser,
        Table::DeployTokens,
        Table::DeployTokensByHash,
        Table::DeployTokensByProject,
        Table::TrustedPublishers,
        Table::TrustedPublishersByProject,
        Table::CiTokens,
        Table::CiTokensByHash,
        Table::CiTokensByExpiry,
        Table::RunDatasetInputs,
        Table::RunModelLinks,
        Table::LoggedModelMetrics,
        Table::VersionsBySourceRun,
        Table::VersionsByUpdated,
        Table::ProjectVersionsByUpdated,
        Table::Hooks,
        Table::HooksByProject,
        Table::ProjectHooks,
        Table::Deliveries,
        Table::DeliveriesPending,
        Table::AliasMoves,
        Table::FilesByContent,
        Table::AuditEvents,
        Table::AuditByTime,
        Table::AuditByProject,
        Table::AuditByAuthor,
        Table::AuditByType,
        Table::Usage,
        Table::SealedManifests,
        Table::VersionsByManifest,
        Table::ResumableUploads,
        Table::ResumableUploadsByExpiry,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::UsersByName => "users_by_name",
            Table::Tokens => "tokens",
            Table::TokensByHash => "tokens_by_hash",
            Table::TokensByUser => "tokens_by_user",
            Table::Sessions => "sessions",
            Table::Projects => "projects",
            Table::ProjectsByPath => "projects_by_path",
            Table::Members => "members",
            Table::MembersByUser => "members_by_user",
            Table::Packages => "packages",
            Table::PackagesByName => "packages_by_name",
            Table::PackagesByProject => "packages_by_project",
            Table::PackagesByCreated => "packages_by_created",
            Table::PackagesByNameOrder => "packages_by_name_order",
            Table::PackagesByVersionOrder => "packages_by_version_order",
            Table::PackageFiles => "package_files",
            Table::FilesByPackage => "files_by_package",
            Table::FileHeads => "file_heads",
            Table::Models => "models",
            Table::ModelsByName => "models_by_name",
            Table::ModelsByCreated => "models_by_created",
            Table::ModelsByUpdated => "models_by_updated",
            Table::Versions => "versions",
            Table::VersionsByModel => "versions_by_model",
            Table::VersionsByPrecedence => "versions_by_precedence",
            Table::ReleasesByPrecedence => "releases_by_precedence",
            Table::VersionsBySeq => "versions_by_seq",
            Table::VersionsByStage => "versions_by_stage",
            Table::Experiments => "experiments",
            Table::ExperimentsByName => "experiments_by_name",
            Table::ExperimentsByProject => "experiments_by_project",
            Table::Candidates => "candidates",
            Table::CandidatesByRunId => "candidates_by_run_id",
            Table::CandidatesByExperiment => "candidates_by_experiment",
            Table::CandidatesByIid => "candidates_by_iid",
            Table::CandidatesByStart => "candidates_by_start",
            Table::CandidatesByName => "candidates_by_name",
            Table::Params => "params",
            Table::ParamsByValue => "params_by_value",
            Table::Metrics => "metrics",
            Table::MetricChunks => "metric_chunks",
            Table::LatestMetrics => "latest_metrics",
            Table::MetricsByValue => "metrics_by_value",
            Table::Tags => "tags",
            Table::Counters => "counters",
            Table::Counts => "counts",
            Table::Revisions => "revisions",
            Table::LoggedModels => "logged_models",
            Table::LoggedModelsByKey => "logged_models_by_key",
            Table::LoggedModelsByExperiment => "logged_models_by_experiment",
            Table::FilesBySha256 => "files_by_sha256",
            Table::OciBlobs => "oci_blobs",
            Table::OciManifests => "oci_manifests",
            Table::OciManifestsByTag => "oci_manifests_by_tag",
            Table::OciReferrers => "oci_referrers",
            Table::OciDigests => "oci_digests",
            Table::OciUploads => "oci_uploads",
            Table::Groups => "groups",
            Table::GroupsByPath => "groups_by_path",
            Table::GroupMembers => "group_members",
            Table::GroupMembersByUser => "group_members_by_user",
            Table::DeployTokens => "deploy_tokens",
            Table::DeployTokensByHash => "deploy_tokens_by_hash",
            Table::DeployTokensByProject => "deploy_tokens_by_project",
            Table::TrustedPublishers => "trusted_publishers",
            Table::TrustedPublishersByProject => "trusted_publishers_by_project",
            Table::CiTokens => "ci_tokens",
            Table::CiTokensByHash => "ci_tokens_by_hash",
            Table::CiTokensByExpiry => "ci_tokens_by_expiry",
            Table::RunDatasetInputs => "run_dataset_inputs",
            Table::RunModelLinks => "run_model_links",
            Table::LoggedModelMetrics => "logged_model_metrics",
            Table::VersionsBySourceRun => "versions_by_source_run",
            Table::VersionsByUpdated => "versions_by_updated",
            Table::ProjectVersionsByUpdated => "project_versions_by_updated",
            Table::Hooks => "hooks",
            Table::HooksByProject => "hooks_by_project",
            Table::ProjectHooks => "project_hooks",
            Table::Deliveries => "deliveries",
            Table::DeliveriesPending => "deliveries_pending",
            Table::AliasMoves => "alias_moves",
            Table::FilesByContent => "files_by_content",
            Table::AuditEvents => "audit_events",
            Table::AuditByTime => "audit_by_time",
            Table::AuditByProject => "audit_by_project",
            Table::AuditByAuthor => "audit_by_author",
            Table::AuditByType => "audit_by_type",
            Table::Usage => "usage",
            Table::SealedManifests => "sealed_manifests",
            Table::VersionsByManifest => "versions_by_manifest",
            Table::ResumableUploads => "resumable_uploads",
            Table::ResumableUploadsByExpiry => "resumable_uploads_by_expiry",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Trees of earlier layouts that the upgrade removes.
pub const RETIRED_TABLES: [&str; 1] = ["models_by_project"];

/// A failure of the storage engine itself (I/O, corruption, undecodable record). Each variant
/// keeps its cause as `source()`, so the log line of a 500 can print the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine failed; the source says how.
    #[error("metadata store engine failed")]
    Engine(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// I/O on the metadata files.
    #[error("metadata store I/O: {action}")]
    Io {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A record that is not the JSON its table holds, or a value that cannot be encoded.
    #[error("metadata record in {table} is not decodable")]
    Json {
        table: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The disk holding the metadata is full.
    #[error("metadata store: no space left on the storage device")]
    Full,
    /// A record that breaks its table's rules otherwise.
    #[error("metadata record in {table} is not decodable: {reason}")]
    Decode { table: &'static str, reason: String },
    /// A flush that several requests waited for (the group commit) failed.
    #[error("the shared metadata flush failed")]
    Flush(#[source] std::sync::Arc<StoreError>),
    /// The store broke one of its own invariants.
    #[error("metadata store: {0}")]
    Invariant(&'static str),
}

impl StoreError {
    pub fn engine(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Engine(Box::new(error))
    }

    /// Whether the store failed because its disk is full (also when a shared flush did).
    pub fn is_full(&self) -> bool {
        match self {
            StoreError::Full => true,
            StoreError::Flush(inner) => inner.is_full(),
            StoreError::Io { source, .. } => is_disk_full(source),
            _ => false,
        }
    }
}

/// ENOSPC, whatever the platform calls it.
pub fn is_disk_full(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::StorageFull || error.raw_os_error() == Some(28)
}

/// Why a transaction body stopped: the engine wants a retry or failed (opaque, must be
/// propagated with `?`), or the body aborted on purpose.
pub struct TxFail(pub(crate) TxFailKind);

pub(crate) enum TxFailKind {
    Engine(Box<dyn std::any::Any + Send>),
    Decode(StoreError),
    Abort,
}

impl std::fmt::Debug for TxFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TxFail")
    }
}

/// The view a transaction body gets: point reads and writes on any table.
pub trait Txn {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, TxFail>;
    fn put(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), TxFail>;
    fn delete(&self, table: Table, key: &[u8]) -> Result<(), TxFail>;
}

/// Key-value entries of one table, in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

pub type KvIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + 'a>;

/// An ordered key-value store with transactions over several tables and an explicit
/// durability point.
pub trait MetaStore: Send + Sync + 'static {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// The values of several keys of one table, in the order of `keys` (`None` where a key has
    /// no entry; a key given twice is answered twice). What a page of index entries is turned
    /// into records with: a database server answers it in one round trip. The default asks
    /// [`MetaStore::get`] once per key (right for an embedded store, whose reads are local).
    fn get_many(&self, table: Table, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter().map(|key| self.get(table, key)).collect()
    }
    /// The first `limit` entries under each of several prefixes of one table, each prefix's in
    /// key order, answered in the order of `prefixes`. What the children of a page of records
    /// (their params, tags, files, ...) are read with: a database server answers it in one round
    /// trip. The default scans once per prefix (right for an embedded store).
    fn scan_many(
        &self,
        table: Table,
        prefixes: &[Vec<u8>],
        limit: usize,
    ) -> Result<Vec<Entries>, StoreError> {
        prefixes
            .iter()
            .map(|prefix| self.scan(table, prefix).take(limit).collect())
            .collect()
    }
    /// The same from the other end: the last `limit` entries under each prefix, highest key
    /// first (a model's highest version in each stage, for a page of models).
    fn scan_many_rev(
        &self,
        table: Table,
        prefixes: &[Vec<u8>],
        limit: usize,
    ) -> Result<Vec<Entries>, StoreError> {
        prefixes
            .iter()
            .map(|prefix| self.scan_rev(table, prefix).take(limit).collect())
            .collect()
    }
    /// Entries whose key starts with `prefix`, in key order.
    fn scan(&self, table: Table, prefix: &[u8]) -> KvIter<'_>;
    /// Entries whose key starts with `prefix`, in reverse key order.
    fn scan_rev(&self, table: Table, prefix: &[u8]) -> KvIter<'_>;
    /// Entries whose key starts with `prefix` and lies strictly after `after` in the scan's
    /// direction (forward: keys above `after`; `reverse`: keys below it).
    fn scan_after(&self, table: Table, prefix: &[u8], after: &[u8], reverse: bool) -> KvIter<'_>;
    /// Entries whose key starts with `prefix` and is at least `start`, in key order: a seek.
    fn scan_from(&self, table: Table, prefix: &[u8], start: &[u8]) -> KvIter<'_>;
    /// Removes every entry of a table (upgrades rebuilding an index; not transactional).
    fn clear(&self, table: Table) -> Result<(), StoreError>;
    /// Removes a table of an earlier layout, if it exists.
    fn drop_retired(&self, name: &str) -> Result<(), StoreError>;
    /// Runs `body` atomically; it may be run more than once on conflicts.
    fn transact(
        &self,
        body: &mut dyn FnMut(&dyn Txn) -> Result<(), TxFail>,
    ) -> Result<(), TransactError>;
    /// A fresh id, unique over the life of the store.
    fn next_id(&self) -> Result<u64, StoreError>;
    /// Makes every committed transaction durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// Whether a committed transaction is durable already (a database server that syncs at
    /// commit): then waiting for a flush is pointless, and the group commit does not.
    fn durable_on_commit(&self) -> bool {
        false
    }
    /// How many statements the store has sent to a database server since it opened (`None`
    /// for an embedded store): shown on `/metrics`, and how tests see that a listing costs a
    /// fixed number of round trips whatever its page size.
    fn round_trips(&self) -> Option<u64> {
        None
    }
}

#[derive(Debug)]
pub enum TransactError {
    Aborted,
    Store(StoreError),
}

/// What a typed transaction body returns on failure: its own error, or the store's.
pub enum TxError<E> {
    Abort(E),
    Fail(TxFail),
}

impl<E> From<TxFail> for TxError<E> {
    fn from(fail: TxFail) -> Self {
        TxError::Fail(fail)
    }
}

/// Aborts a transaction with a domain error.
pub fn abort<T, E>(error: E) -> Result<T, TxError<E>> {
    Err(TxError::Abort(error))
}

impl dyn MetaStore {
    /// Runs a typed transaction body: `Ok` commits, `abort(e)` rolls back and returns `e`.
    pub fn transaction<R, E>(
        &self,
        mut body: impl FnMut(&dyn Txn) -> Result<R, TxError<E>>,
    ) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        let mut outcome: Option<Result<R, E>> = None;
        let result = self.transact(&mut |tx| match body(tx) {
            Ok(value) => {
                outcome = Some(Ok(value));
                Ok(())
            }
            Err(TxError::Abort(error)) => {
                outcome = Some(Err(error));
                Err(TxFail(TxFailKind::Abort))
            }
            Err(TxError::Fail(fail)) => {
                outcome = None;
                Err(fail)
            }
        });
        match result {
            Ok(()) | Err(TransactError::Aborted) => outcome.unwrap_or_else(|| {
                Err(E::from(StoreError::Invariant(
                    "transaction ended without an outcome",
                )))
            }),
            Err(TransactError::Store(error)) => Err(E::from(error)),
        }
    }

    pub fn get_json<T: DeserializeOwned>(
        &self,
        table: Table,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        self.get(table, key)?
            .map(|bytes| decode(table, &bytes))
            .transpose()
    }

    /// Decoded values of every entry under `prefix`, in key order.
    pub fn scan_json<T: DeserializeOwned>(
        &self,
        table: Table,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<T, StoreError>> + '_ {
        self.scan(table, prefix)
            .map(move |entry| entry.and_then(|(_, value)| decode(table, &value)))
    }

    /// Keys under `prefix`, in key order.
    pub fn scan_keys(
        &self,
        table: Table,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<Vec<u8>, StoreError>> + '_ {
        self.scan(table, prefix).map(|entry| entry.map(|(k, _)| k))
    }
}

/// Typed reads and writes inside a transaction.
pub trait TxnExt: Txn {
    fn get_json<T: DeserializeOwned>(&self, table: Table, key: &[u8]) -> Result<Option<T>, TxFail> {
        match self.get(table, key)? {
            Some(bytes) => decode(table, &bytes)
                .map(Some)
                .map_err(|e| TxFail(TxFailKind::Decode(e))),
            None => Ok(None),
        }
    }

    fn put_json<T: Serialize>(&self, table: Table, key: &[u8], value: &T) -> Result<(), TxFail> {
        let bytes = serde_json::to_vec(value).map_err(|source| {
            TxFail(TxFailKind::Decode(StoreError::Json {
                table: table.name(),
                source,
            }))
        })?;
        self.put(table, key, &bytes)
    }

    fn exists(&self, table: Table, key: &[u8]) -> Result<bool, TxFail> {
        Ok(self.get(table, key)?.is_some())
    }
}

impl<T: Txn + ?Sized> TxnExt for T {}

pub fn decode<T: DeserializeOwned>(table: Table, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Json {
        table: table.name(),
        source,
    })
}
