//! Admin commands on a stopped server's data dir.

use std::fs::File;
use std::path::Path;

use anyhow::{anyhow, bail, Context};

use crate::config::BlobArgs;
use crate::config::{
    AuditCommand, MemberCommand, ProjectCommand, RetentionCommand, TokenCommand, UserCommand,
};
use crate::config::{Metadata, MetadataLocation};
use crate::domain::access::Caller;
use crate::domain::accounts::NewUser;
use crate::domain::maintenance::GcOptions;
use crate::domain::projects::NewProject;
use crate::domain::records::{AccessLevel, Scope, Visibility};
use crate::domain::{Limits, Registry};
use crate::server::{open_registry, open_registry_on, open_registry_with};
use crate::store::blobs::BlobStore;

/// Runs an admin command (anything but `serve`).
pub async fn run(
    data_dir: &Path,
    metadata: &Metadata,
    blobs: &BlobArgs,
    command: crate::config::Command,
) -> anyhow::Result<()> {
    use crate::config::Command;
    match command {
        Command::Serve(_) | Command::Push(_) | Command::Pull(_) => {
            bail!("serve, push and pull are not admin commands")
        }
        Command::User(c) => user(data_dir, metadata, c).await,
        Command::Token(c) => token(data_dir, metadata, c).await,
        Command::Project(c) => project(data_dir, metadata, c).await,
        Command::Member(c) => member(data_dir, metadata, c).await,
        Command::Gc { older_than, force } => gc(data_dir, metadata, blobs, older_than, force).await,
        Command::Verify => verify(data_dir, metadata, blobs).await,
        Command::Backup { dest } => backup(data_dir, metadata, blobs, &dest).await,
        Command::Audit(c) => audit(data_dir, metadata, c).await,
        Command::Retention(c) => retention(data_dir, metadata, blobs, c).await,
        Command::Migrate(args) => crate::migrate::migrate(data_dir, metadata, blobs, &args).await,
    }
}

/// `retention run`: every model with rules, as root (a stopped server's data dir); one JSON
/// object on stdout with a report per model in the API's shape, and the totals.
pub async fn retention(
    data_dir: &Path,
    metadata: &Metadata,
    blobs: &BlobArgs,
    command: RetentionCommand,
) -> anyhow::Result<()> {
    let RetentionCommand::Run {
        dry_run,
        clock_offset_days,
    } = command;
    // A real run removes the blobs nothing references any more: the store the server uses.
    let mut registry = open_with(data_dir, metadata, blobs).await?;
    registry.retention_clock_offset = crate::server::retention_offset(clock_offset_days)?;
    let root = as_admin(&registry, "root")?;
    let run = async {
        let mut reports = Vec::new();
        let (mut deleted, mut freed, mut reclaimed) = (0usize, 0u64, 0u64);
        for model in registry.models_with_retention()? {
            let project = model.project_id.to_string();
            let access = registry.project_for(&root, &project)?;
            let report = registry
                .run_retention(&root, &access, model.id, dry_run)
                .await
                .with_context(|| format!("retention of model {} (id {})", model.name, model.id))?;
            deleted += if dry_run {
                report.plan.delete.len()
            } else {
                report.deleted.len()
            };
            freed += report.plan.bytes_freed();
            reclaimed += report.bytes_reclaimed;
            reports.push(crate::api::registry::retention::report_view(&report));
        }
        anyhow::Ok(serde_json::json!({
            "dry_run": dry_run,
            "models": reports,
            "versions_deleted": deleted,
            "bytes_freed": freed,
            "bytes_reclaimed": if dry_run { serde_json::Value::Null } else { reclaimed.into() },
        }))
    };
    let summary = crate::domain::events::with_actor_slot(run).await?;
    registry.persist_blocking()?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

/// `audit export`: JSON lines on stdout, oldest first; reads only.
pub async fn audit(
    data_dir: &Path,
    metadata: &Metadata,
    command: AuditCommand,
) -> anyhow::Result<()> {
    use std::io::Write;
    match command {
        AuditCommand::Export { since } => {
            let since = since
                .map(|s| {
                    chrono::DateTime::parse_from_rfc3339(&s)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .map_err(|e| anyhow!("--since {s} is not an RFC 3339 time: {e}"))
                })
                .transpose()?;
            let registry = open_registry_on(data_dir, metadata, Limits::default(), 16)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let written = registry.export_audit(since, |event| {
                serde_json::to_writer(&mut out, &event.to_json())?;
                out.write_all(b"\n")
            })?;
            out.flush()?;
            eprintln!("audit export: {written} events");
            Ok(())
        }
    }
}

async fn open(data_dir: &Path, metadata: &Metadata) -> anyhow::Result<Registry> {
    open_with(data_dir, metadata, &BlobArgs::default()).await
}

/// The registry on the data dir's metadata and the blob store `blobs` names (gc, verify and
/// backup read the blobs, a retention run removes some; the other commands only the metadata).
async fn open_with(
    data_dir: &Path,
    metadata: &Metadata,
    blobs: &BlobArgs,
) -> anyhow::Result<Registry> {
    let registry = open_registry_with(data_dir, metadata, blobs, Limits::default(), 16).await?;
    registry.bootstrap_root(None).await?;
    Ok(registry)
}

/// Whoever runs an admin command holds the data dir, so the command acts with administrator
/// rights, on behalf of `username` (who becomes, say, the Owner of a project it creates). Rules
/// that bind admins too, such as keeping a project's last Owner, still apply.
fn as_admin(registry: &Registry, username: &str) -> anyhow::Result<Caller> {
    let user = registry
        .user_by_name(username)
        .map_err(|_| anyhow!("no user named {username}"))?;
    Ok(Caller::from_user(
        crate::domain::records::User {
            admin: true,
            ..user
        },
        &[Scope::Api],
    ))
}

pub async fn user(
    data_dir: &Path,
    metadata: &Metadata,
    command: UserCommand,
) -> anyhow::Result<()> {
    let registry = open(data_dir, metadata).await?;
    match command {
        UserCommand::Create {
            username,
            name,
            email,
            password,
            admin,
        } => {
            let user = registry
                .create_user(NewUser {
                    username: &username,
                    name: &name,
                    email: email.as_deref(),
                    password: password.as_ref().map(|p| p.0.as_str()),
                    admin,
                })
                .await?;
            println!("created user {} (id {})", user.username, user.id);
        }
        UserCommand::List => {
            for user in registry.users()? {
                println!(
                    "{}\t{}\t{}{}",
                    user.id,
                    user.username,
                    user.name,
                    if user.admin { "\tadmin" } else { "" }
                );
            }
        }
    }
    registry.persist_blocking()?;
    Ok(())
}

pub async fn token(
    data_dir: &Path,
    metadata: &Metadata,
    command: TokenCommand,
) -> anyhow::Result<()> {
    let registry = open(data_dir, metadata).await?;
    match command {
        TokenCommand::Create {
            username,
            name,
            scopes,
            expires_at,
        } => {
            let user = registry
                .user_by_name(&username)
                .map_err(|_| anyhow!("no user named {username}"))?;
            let scopes = scopes
                .iter()
                .map(|s| {
                    Scope::parse(s).ok_or_else(|| anyhow!("unknown scope {s} (api, read_api)"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let expires_at = expires_at
                .map(|d| {
                    chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                        .context("expires_at: YYYY-MM-DD")
                })
                .transpose()?;
            let issued = registry
                .create_token(user.id, &name, &scopes, expires_at)
                .await?;
            println!("{}", issued.secret);
            eprintln!("token id {} for {}", issued.token.id, user.username);
        }
        TokenCommand::Revoke { id } => {
            registry.revoke_token(id).await?;
            println!("revoked token {id}");
        }
        TokenCommand::List { username } => {
            let user = registry
                .user_by_name(&username)
                .map_err(|_| anyhow!("no user named {username}"))?;
            for t in registry.tokens_of(user.id)? {
                let scopes: Vec<_> = t.scopes.iter().map(|s| s.as_str()).collect();
                println!(
                    "{}\t{}\t{}\t{}",
                    t.id,
                    t.name,
                    scopes.join(","),
                    if t.revoked { "revoked" } else { "active" }
                );
            }
        }
    }
    registry.persist_blocking()?;
    Ok(())
}

pub async fn project(
    data_dir: &Path,
    metadata: &Metadata,
    command: ProjectCommand,
) -> anyhow::Result<()> {
    let registry = open(data_dir, metadata).await?;
    match command {
        ProjectCommand::Create {
            path_with_namespace,
            owner,
            visibility,
        } => {
            let (namespace, path) = path_with_namespace
                .rsplit_once('/')
                .ok_or_else(|| anyhow!("give the project as namespace/path"))?;
            let visibility = Visibility::parse(&visibility)
                .ok_or_else(|| anyhow!("visibility is public, internal or private"))?;
            let project = registry
                .create_project(
                    &as_admin(&registry, &owner)?,
                    NewProject {
                        name: Some(path.to_string()),
                        path: Some(path.to_string()),
                        namespace: Some(namespace.to_string()),
                        visibility: Some(visibility),
                        ..NewProject::default()
                    },
                )
                .await?;
            println!(
                "created project {} (id {})",
                project.path_with_namespace(),
                project.id
            );
        }
        ProjectCommand::List => {
            for p in registry.all_projects()? {
                println!(
                    "{}\t{}\t{}",
                    p.id,
                    p.path_with_namespace(),
                    p.visibility.as_str()
                );
            }
        }
    }
    registry.persist_blocking()?;
    Ok(())
}

pub async fn member(
    data_dir: &Path,
    metadata: &Metadata,
    command: MemberCommand,
) -> anyhow::Result<()> {
    let registry = open(data_dir, metadata).await?;
    let root = as_admin(&registry, "root")?;
    match command {
        MemberCommand::Add {
            project,
            username,
            level,
        } => {
            let level = AccessLevel::parse(&level)
                .ok_or_else(|| anyhow!("unknown access level {level}"))?;
            let access = registry.project_for(&root, &project)?;
            let user = registry
                .user_by_name(&username)
                .map_err(|_| anyhow!("no user named {username}"))?;
            registry
                .set_member(&root, &access, user.id, level, None, None)
                .await?;
            registry.persist_blocking()?;
            println!(
                "{} is now {:?} of {}",
                user.username,
                level,
                access.project.path_with_namespace()
            );
        }
        MemberCommand::Remove { project, username } => {
            let access = registry.project_for(&root, &project)?;
            let user = registry
                .user_by_name(&username)
                .map_err(|_| anyhow!("no user named {username}"))?;
            registry.remove_member(&root, &access, user.id).await?;
            registry.persist_blocking()?;
            println!(
                "{} is no longer a member of {}",
                user.username,
                access.project.path_with_namespace()
            );
        }
    }
    Ok(())
}

pub async fn gc(
    data_dir: &Path,
    metadata: &Metadata,
    blobs: &BlobArgs,
    older_than: Option<u64>,
    force: bool,
) -> anyhow::Result<()> {
    let older_than = older_than.unwrap_or(match metadata.location()? {
        MetadataLocation::Sled => 0,
        MetadataLocation::Postgres(_) => 3600,
    });
    let registry = open_with(data_dir, metadata, blobs).await?;
    let report = registry
        .gc(&GcOptions {
            stored_before: std::time::SystemTime::now()
                .checked_sub(std::time::Duration::from_secs(older_than))
                .unwrap_or(std::time::UNIX_EPOCH),
            force,
        })
        .await?;
    print!(
        "gc: kept {} blobs, removed {} ({} bytes freed)",
        report.kept, report.removed, report.freed_bytes
    );
    if report.recent > 0 {
        print!(
            "; {} unreferenced blobs stored in the last {older_than} s left for a later run",
            report.recent
        );
    }
    println!();
    Ok(())
}

pub async fn verify(data_dir: &Path, metadata: &Metadata, blobs: &BlobArgs) -> anyhow::Result<()> {
    let registry = open_with(data_dir, metadata, blobs).await?;
    let report = registry.verify().await?;
    for sha in &report.corrupt {
        println!("CORRUPT blob {sha}: its content no longer matches its sha256");
    }
    for (file_id, sha) in &report.missing {
        println!("MISSING blob {sha} of package file {file_id}");
    }
    println!(
        "verify: {} blobs checked, {} corrupt, {} missing",
        report.blobs_checked,
        report.corrupt.len(),
        report.missing.len()
    );
    if !report.is_clean() {
        bail!("verification found problems");
    }
    Ok(())
}

/// A cold backup: while this process holds the metadata lock (so no server writes), the flushed
/// sled files and every blob a file record references are copied and fsynced into `dest`; then
/// the copy is opened and verified like `verify` would. Unreferenced blobs are left behind.
pub async fn backup(
    data_dir: &Path,
    metadata: &Metadata,
    blobs: &BlobArgs,
    dest: &Path,
) -> anyhow::Result<()> {
    if dest.exists() && dest.read_dir()?.next().is_some() {
        bail!(
            "{} is not empty; back up into a new directory",
            dest.display()
        );
    }
    if metadata.location()? != MetadataLocation::Sled {
        bail!(
            "the metadata is in PostgreSQL: back it up with pg_dump (and the blobs with the \
             storage's own tools); `backup` copies an embedded data dir"
        );
    }
    let registry = open_with(data_dir, metadata, blobs).await?;
    registry.persist_blocking()?;
    let meta_files = copy_dir(&data_dir.join("meta"), &dest.join("meta"))?;
    let into = crate::store::local_blobs::LocalBlobs::open(dest)
        .with_context(|| format!("creating the blob store in {}", dest.display()))?;
    let mut blobs = 0u64;
    let mut bytes = 0u64;
    for sha256 in registry.referenced_blobs()? {
        // Read through the blob store (local or S3) and written, hashed and synced into the
        // copy's own local blob store.
        let body = registry.blobs().open(&sha256, None).await?;
        let copied = into.put(body, u64::MAX).await?;
        if copied.digests.sha256 != sha256 {
            bail!("blob {sha256} read back as {}", copied.digests.sha256);
        }
        bytes += copied.size;
        blobs += 1;
    }
    drop(registry);

    let copy = open_registry(dest, Limits::default(), 16)?;
    let report = copy.verify().await?;
    if !report.is_clean() {
        bail!(
            "the backup in {} failed verification: {} corrupt, {} missing",
            dest.display(),
            report.corrupt.len(),
            report.missing.len()
        );
    }
    println!(
        "backup: {meta_files} metadata files and {blobs} blobs ({bytes} bytes) copied to {}; verified",
        dest.display()
    );
    Ok(())
}

/// Copies a directory tree, each file and directory fsynced; returns the number of files.
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<u64> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let mut files = 0;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            files += copy_dir(&entry.path(), &target)?;
        } else {
            copy_synced(&entry.path(), &target)?;
            files += 1;
        }
    }
    File::open(to)?.sync_all()?;
    Ok(files)
}

fn copy_synced(from: &Path, to: &Path) -> anyhow::Result<u64> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let size = std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    File::open(to)?.sync_all()?;
    if let Some(parent) = to.parent() {
        File::open(parent)?.sync_all()?;
    }
    Ok(size)
}
