//! Command line and environment: every flag can also be set with a `MODELYARD_*` variable.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};

/// A value that must never be printed.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "modelyard",
    version,
    about = "A self-hosted machine-learning model registry"
)]
pub struct Cli {
    /// Where metadata (sled) and file contents (blobs) live.
    #[arg(
        long,
        global = true,
        env = "MODELYARD_DATA_DIR",
        default_value = "./modelyard-data"
    )]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub blobs: BlobArgs,
    /// Where the metadata lives: `sled` (embedded, under the data dir) or a PostgreSQL URL
    /// (`postgres://user:password@host:5432/db`, shared by replicas). The password is never
    /// printed.
    #[arg(
        long,
        global = true,
        env = "MODELYARD_METADATA",
        default_value = "sled",
        hide_env_values = true,
        hide_default_value = false
    )]
    pub metadata: Metadata,
    #[command(subcommand)]
    pub command: Command,
}

/// Where file contents live: the data dir (default) or an S3-compatible bucket. S3 credentials
/// come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and the other usual `AWS_*`
/// variables); they are never printed.
#[derive(Debug, Clone, Args)]
pub struct BlobArgs {
    /// `local` (under the data dir) or `s3://bucket/prefix`.
    #[arg(long, global = true, env = "MODELYARD_BLOBS", default_value = "local")]
    pub blobs: String,
    /// S3 endpoint URL (garage, MinIO, s3s-fs...); AWS's when unset.
    #[arg(long, global = true, env = "MODELYARD_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 region.
    #[arg(long, global = true, env = "MODELYARD_S3_REGION")]
    pub s3_region: Option<String>,
    /// Path-style S3 requests (`endpoint/bucket/key`), as most self-hosted servers want.
    #[arg(long, global = true, env = "MODELYARD_S3_PATH_STYLE")]
    pub s3_path_style: bool,
    /// Allow a plain `http://` S3 endpoint.
    #[arg(long, global = true, env = "MODELYARD_S3_ALLOW_HTTP")]
    pub s3_allow_http: bool,
    /// Downloads of S3 blobs answer `307` to a presigned URL (valid 15 minutes) instead of
    /// streaming through the server.
    #[arg(long, global = true, env = "MODELYARD_BLOBS_REDIRECT")]
    pub blobs_redirect: bool,
}

impl Default for BlobArgs {
    fn default() -> Self {
        BlobArgs {
            blobs: "local".into(),
            s3_endpoint: None,
            s3_region: None,
            s3_path_style: false,
            s3_allow_http: false,
            blobs_redirect: false,
        }
    }
}

impl BlobArgs {
    /// The S3 bucket to use, or `None` for the local disk.
    pub fn s3(&self) -> Result<Option<crate::store::s3_blobs::S3Config>, String> {
        if self.blobs == "local" {
            return Ok(None);
        }
        let mut config = crate::store::s3_blobs::S3Config::from_url(&self.blobs)?;
        config.endpoint = self.s3_endpoint.clone();
        config.region = self.s3_region.clone();
        config.path_style = self.s3_path_style;
        config.allow_http = self.s3_allow_http;
        config.redirect = self
            .blobs_redirect
            .then_some(std::time::Duration::from_secs(15 * 60));
        Ok(Some(config))
    }
}

/// The `--metadata` option as given; [`Metadata::location`] says what it names. Parsing never
/// fails in clap, whose error would echo the value (a mistyped URL, password and all).
#[derive(Clone)]
pub struct Metadata(String);

/// Where the metadata store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataLocation<'a> {
    /// sled under the data dir.
    Sled,
    /// A PostgreSQL database.
    Postgres(&'a str),
}

impl Metadata {
    pub fn sled() -> Metadata {
        Metadata("sled".to_string())
    }

    pub fn location(&self) -> anyhow::Result<MetadataLocation<'_>> {
        let value = self.0.trim();
        if value == "sled" {
            Ok(MetadataLocation::Sled)
        } else if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            Ok(MetadataLocation::Postgres(value))
        } else {
            let shown = value.split(['@', ':']).next().unwrap_or_default();
            anyhow::bail!(
                "--metadata must be `sled` or a `postgres://` URL (got a value starting with {shown:?})"
            )
        }
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location() {
            Ok(MetadataLocation::Postgres(url)) => {
                write!(f, "{}", crate::store::pg_meta::redacted(url))
            }
            Ok(MetadataLocation::Sled) => f.write_str("sled"),
            Err(_) => f.write_str("(invalid)"),
        }
    }
}

impl FromStr for Metadata {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Metadata(s.to_string()))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Manage users (on a stopped server's data dir).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage personal access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Manage project members.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Delete blobs no file record references.
    Gc {
        /// Keep unreferenced blobs stored less than this many seconds ago: an upload in flight
        /// on a running replica has its blob before its record. Default: 3600 on PostgreSQL
        /// metadata (replicas may be serving), 0 on sled (its lock means no server is running).
        #[arg(long, value_name = "SECONDS")]
        older_than: Option<u64>,
        /// Delete even when the metadata store references none of the stored blobs (which is
        /// what pointing `gc` at the wrong database or bucket looks like).
        #[arg(long)]
        force: bool,
    },
    /// Re-hash every blob and check every file record's blob; exits non-zero on a problem.
    Verify,
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Retention: run every model's rules (for cron).
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Copy the metadata and every referenced blob into an empty directory, then verify the copy.
    /// The copy is a data dir: `serve --data-dir <DEST>` restores it.
    Backup {
        /// Where to write the backup (must not exist or be empty).
        dest: PathBuf,
    },
    /// Move this data dir (its embedded metadata and local blobs) into the stores `--metadata`
    /// (PostgreSQL) and `--blobs` (S3) name, then verify the copy; on a stopped server, into an
    /// empty database. Serve with the same options afterwards.
    Migrate(MigrateArgs),
    /// Client: upload a directory as a model version (resumable tus uploads, several files at
    /// once; run it again after an interruption to resume).
    Push(Box<PushArgs>),
    /// Client: download a model version, or the newest matching a requirement (`^1.2`), into a
    /// directory, every file verified against the version's manifest (resumed when run again).
    Pull(Box<PullArgs>),
}

/// Where a client command talks to and what it moves.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The server's URL.
    #[arg(long, env = "MODELYARD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An API token (`api` scope to push, `read_api` is enough to pull).
    #[arg(long, env = "MODELYARD_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,
    /// The project: its id or `namespace/path`.
    #[arg(long, env = "MODELYARD_PROJECT")]
    pub project: String,
    /// The model's name.
    #[arg(long, env = "MODELYARD_MODEL")]
    pub model: String,
    /// The version (push: a SemVer version; pull: a version, `latest` or a requirement).
    #[arg(long, env = "MODELYARD_MODEL_VERSION")]
    pub version: String,
    /// Files transferred at once.
    #[arg(long, env = "MODELYARD_PARALLEL", default_value_t = 4)]
    pub parallel: usize,
    /// Milliseconds to wait after each chunk (push) or MiB (pull): slows a transfer down, for
    /// tests that interrupt one.
    #[arg(long, hide = true, default_value_t = 0)]
    pub pause_ms: u64,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Blobs copied (and re-hashed when verifying) at once.
    #[arg(long, env = "MODELYARD_MIGRATE_PARALLEL", default_value_t = 4)]
    pub parallel: usize,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Size of each uploaded chunk, in MiB.
    #[arg(long, env = "MODELYARD_CHUNK_MIB", default_value_t = 64)]
    pub chunk_mib: u64,
    /// Seal the version once every file is pushed (`POST .../versions/:version/seal`; a
    /// Maintainer's token): its files never change again, and its manifest digest is printed.
    #[arg(long, env = "MODELYARD_SEAL")]
    pub seal: bool,
    /// The directory whose files (with their sub-paths) become the version's files.
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Where the files go (created if absent).
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the chosen one is printed).
    #[arg(long, env = "MODELYARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// A second address serving only `/metrics`, to anyone who can reach it (on the main address
    /// `/metrics` is for administrators).
    #[arg(long, env = "MODELYARD_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// The URL clients use to reach this server, for links in responses.
    #[arg(long, env = "MODELYARD_EXTERNAL_URL")]
    pub external_url: Option<String>,
    /// Largest generic package file, in bytes.
    #[arg(long, env = "MODELYARD_MAX_FILE_SIZE", default_value_t = 5 * 1024 * 1024 * 1024)]
    pub max_file_size: u64,
    /// Largest model file, in bytes.
    #[arg(long, env = "MODELYARD_MAX_MODEL_FILE_SIZE", default_value_t = 10 * 1024 * 1024 * 1024)]
    pub max_model_file_size: u64,
    /// Hours a resumable (tus) upload is kept after its last chunk; stale uploads and their
    /// staged bytes are removed in the background (fractions allowed).
    #[arg(long, env = "MODELYARD_UPLOAD_EXPIRY_HOURS", default_value_t = 24.0)]
    pub upload_expiry_hours: f64,
    /// Token of the root administrator; generated on first start when unset.
    #[arg(long, env = "MODELYARD_ROOT_TOKEN", hide_env_values = true)]
    pub root_token: Option<Secret>,
    /// Password of the root administrator for the web UI; set (or changed) at start when given.
    #[arg(long, env = "MODELYARD_ROOT_PASSWORD", hide_env_values = true)]
    pub root_password: Option<Secret>,
    /// Metadata cache size in MiB.
    #[arg(long, env = "MODELYARD_CACHE_MB", default_value_t = 16)]
    pub cache_mb: u64,
    /// Seconds a request body may stay silent; also the grace before the minimum rate applies.
    #[arg(long, env = "MODELYARD_BODY_IDLE_TIMEOUT", default_value_t = 30)]
    pub body_idle_timeout: u64,
    /// Lowest average rate of a request body after the grace period, in bytes per second.
    #[arg(long, env = "MODELYARD_BODY_MIN_RATE", default_value_t = 1024)]
    pub body_min_rate: u64,
    /// Seconds a client may take to send a request's headers (counted from when the server is
    /// ready for them, so an idle keep-alive connection is closed after this long too).
    #[arg(long, env = "MODELYARD_HEADER_READ_TIMEOUT", default_value_t = 30)]
    pub header_read_timeout: u64,
    /// Most connections open at once; at the cap a new one closes the one idle the longest
    /// (0: half the open-file limit, at most 10,000).
    #[arg(long, env = "MODELYARD_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,
    /// Sign-in attempts per minute allowed from one client address, and for one username
    /// (0: no limit).
    #[arg(long, env = "MODELYARD_SIGN_IN_RATE", default_value_t = 10)]
    pub sign_in_rate: u32,
    /// Failed sign-ins in a row after which a username is locked (0: never).
    #[arg(long, env = "MODELYARD_SIGN_IN_LOCKOUT", default_value_t = 10)]
    pub sign_in_lockout: u32,
    /// How long a locked username stays locked, in seconds.
    #[arg(long, env = "MODELYARD_SIGN_IN_LOCKOUT_SECONDS", default_value_t = 600)]
    pub sign_in_lockout_seconds: u64,
    /// GitLab instances whose CI job tokens are verified (their `GET /api/v4/job`); repeatable,
    /// or comma-separated in the variable.
    #[arg(long, env = "MODELYARD_GITLAB_URL", value_delimiter = ',')]
    pub gitlab_url: Vec<String>,
    /// OIDC issuers whose ID tokens are accepted for trusted publishing (GitLab's URL for GitLab
    /// CI `id_tokens:`, `https://token.actions.githubusercontent.com` for GitHub Actions);
    /// repeatable, or comma-separated in the variable.
    #[arg(long, env = "MODELYARD_OIDC_ISSUER", value_delimiter = ',')]
    pub oidc_issuer: Vec<String>,
    /// The audience (`aud`) ID tokens must be minted for; default: the external URL.
    #[arg(long, env = "MODELYARD_OIDC_AUDIENCE", value_delimiter = ',')]
    pub oidc_audience: Vec<String>,
    /// Log format: text or json.
    #[arg(long, env = "MODELYARD_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Let webhooks target loopback, private and link-local addresses (refused by default).
    #[arg(long, env = "MODELYARD_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
    /// The first webhook retry's delay in milliseconds; each next one doubles.
    #[arg(
        long,
        hide = true,
        env = "MODELYARD_WEBHOOK_RETRY_BASE_MS",
        default_value_t = 10_000
    )]
    pub webhook_retry_base_ms: u64,
    /// The longest delay between webhook retries, in milliseconds.
    #[arg(
        long,
        hide = true,
        env = "MODELYARD_WEBHOOK_RETRY_CAP_MS",
        default_value_t = 3_600_000
    )]
    pub webhook_retry_cap_ms: u64,
    /// How long a webhook event is retried before it is given up, in seconds.
    #[arg(
        long,
        hide = true,
        env = "MODELYARD_WEBHOOK_RETRY_FOR",
        default_value_t = 86_400
    )]
    pub webhook_retry_for: u64,
    /// How long one webhook delivery attempt may take, in seconds.
    #[arg(long, env = "MODELYARD_WEBHOOK_TIMEOUT", default_value_t = 10)]
    pub webhook_timeout: u64,
    /// The audit log: on (every change, sign-in and failed authentication is recorded) or off.
    #[arg(long, env = "MODELYARD_AUDIT", default_value = "on", value_parser = ["on", "off"])]
    pub audit: String,
    /// Record every file download in the audit log too.
    #[arg(long, env = "MODELYARD_AUDIT_DOWNLOADS")]
    pub audit_downloads: bool,
    /// How many days audit events are kept (0: forever); older ones are pruned in the background.
    #[arg(long, env = "MODELYARD_AUDIT_RETENTION_DAYS", default_value_t = 365)]
    pub audit_retention_days: u64,
    /// The retention in seconds, overriding the days (for tests).
    #[arg(long, hide = true, env = "MODELYARD_AUDIT_RETENTION_SECONDS")]
    pub audit_retention_seconds: Option<u64>,
    /// How often expired audit events are pruned, in seconds.
    #[arg(
        long,
        hide = true,
        env = "MODELYARD_AUDIT_PRUNE_INTERVAL",
        default_value_t = 3600
    )]
    pub audit_prune_interval: u64,
    /// Download counts per version and file: on or off.
    #[arg(
        long,
        env = "MODELYARD_USAGE_COUNTING",
        default_value = "on",
        value_parser = ["on", "off"]
    )]
    pub usage_counting: String,
    /// How often the download counts kept in memory are written, in seconds (a crash loses at
    /// most this long's counts).
    #[arg(long, env = "MODELYARD_USAGE_FLUSH_SECONDS", default_value_t = 10)]
    pub usage_flush_seconds: u64,
    /// Days added to the clock retention judges ages by (for tests).
    #[arg(
        long,
        hide = true,
        env = "MODELYARD_RETENTION_CLOCK_OFFSET_DAYS",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub retention_clock_offset_days: i64,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write the audit events created at or after `--since` (all without it) to stdout as JSON
    /// lines, oldest first, in the API's shape.
    Export {
        /// An RFC 3339 time, e.g. 2026-01-31T00:00:00Z.
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Run the retention rules of every model that has some: delete what they take, remove the
    /// blobs nothing references any more, audit it; print a JSON summary on stdout.
    Run {
        /// Only report what would go and the bytes that would be freed; change nothing.
        #[arg(long, env = "MODELYARD_RETENTION_DRY_RUN")]
        dry_run: bool,
        /// Days added to the clock the rules judge ages by (for tests).
        #[arg(
            long,
            hide = true,
            env = "MODELYARD_RETENTION_CLOCK_OFFSET_DAYS",
            default_value_t = 0,
            allow_negative_numbers = true
        )]
        clock_offset_days: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    Create {
        username: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long)]
        email: Option<String>,
        /// Password for the web UI (read from MODELYARD_USER_PASSWORD if unset).
        #[arg(long, env = "MODELYARD_USER_PASSWORD", hide_env_values = true)]
        password: Option<Secret>,
        #[arg(long)]
        admin: bool,
    },
    List,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token; its secret is printed once.
    Create {
        username: String,
        #[arg(long, default_value = "cli")]
        name: String,
        /// api or read_api; repeatable.
        #[arg(long = "scope", default_value = "api")]
        scopes: Vec<String>,
        /// YYYY-MM-DD
        #[arg(long)]
        expires_at: Option<String>,
    },
    Revoke {
        id: u64,
    },
    List {
        username: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create `namespace/path`, owned by `--owner` (default root).
    Create {
        path_with_namespace: String,
        #[arg(long, default_value = "root")]
        owner: String,
        #[arg(long, default_value = "private")]
        visibility: String,
    },
    List,
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Add or change a member: level is guest, reporter, developer, maintainer, owner or 10-50.
    Add {
        project: String,
        username: String,
        level: String,
    },
    /// Remove a member (a project's last Owner stays).
    Remove { project: String, username: String },
}
