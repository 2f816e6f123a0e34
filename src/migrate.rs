//! `modelyard migrate`: moving an embedded data dir (sled + blobs on local disk, as `serve`
//! with no store options keeps it) into the stores that `--metadata` and `--blobs` name
//! (PostgreSQL, an S3 bucket), so that replicas can be started on them with the same options.
//!
//! The steps, on a stopped server (the data dir's lock is held throughout):
//! 1. open the source as `serve` does (its schema upgrade runs) and the destination; refuse, with
//!    nothing written, a destination database that holds any record (a migrate copies into an
//!    empty database only: after an interrupted one, drop and re-create the database and run it
//!    again);
//! 2. copy every blob through the destination's normal put path (hashed while written; blobs
//!    already there are skipped, so a rerun after an interruption copies only the rest), a few
//!    at once;
//! 3. copy every metadata table raw, in bounded batches (`store::copy`), and move the
//!    destination's id sequence above every id the source handed out (the schema version and
//!    the counters are table entries, copied with the rest);
//! 4. verify: each table's entry count and content digest on both sides, and every blob the
//!    source references re-hashed from the destination; a summary on stdout, progress on
//!    stderr, a non-zero exit on any mismatch.
//!
//! Blobs go first so that an interruption before the metadata leaves the database empty: the
//! rerun is accepted and skips the blobs already copied.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures_util::StreamExt;

use crate::config::{BlobArgs, Metadata, MetadataLocation, MigrateArgs};
use crate::domain::Limits;
use crate::server::open_registry;
use crate::store::blobs::{BlobError, BlobStore};
use crate::store::copy;
use crate::store::pg_meta::{redacted, PgMeta};
use crate::store::s3_blobs::S3Blobs;

/// How often a long step reports on stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What the blob copy did.
#[derive(Debug, Default)]
struct BlobsCopied {
    total: usize,
    copied: usize,
    skipped: usize,
    bytes: u64,
}

/// A blob the source references, as the destination has it.
enum BlobCheck {
    Ok,
    Missing,
    Corrupt(String),
}

pub async fn migrate(
    data_dir: &Path,
    metadata: &Metadata,
    blobs: &BlobArgs,
    args: &MigrateArgs,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let parallel = args.parallel.clamp(1, 64);
    if !data_dir.join("meta").is_dir() {
        bail!(
            "{} holds no embedded metadata (no meta/ directory): migrate copies a data dir that \
             `modelyard serve` keeps with its default stores",
            data_dir.display()
        );
    }
    let to_meta = metadata.location()?;
    let to_s3 = blobs.s3().map_err(anyhow::Error::msg)?;
    if to_meta == MetadataLocation::Sled && to_s3.is_none() {
        bail!(
            "nothing to migrate to: give the destination as --metadata postgres://... and/or \
             --blobs s3://bucket/prefix (the options the servers will run with)"
        );
    }

    // The source, as `serve` opens it with no store options: sled and the local blobs, brought
    // to this build's schema. Its lock keeps a server off the data dir while this runs.
    eprintln!("migrate: opening {}", data_dir.display());
    let source = open_registry(data_dir, Limits::default(), 16)
        .with_context(|| format!("opening the data dir {}", data_dir.display()))?;

    let destination_meta = match to_meta {
        MetadataLocation::Sled => None,
        MetadataLocation::Postgres(url) => {
            let shown = redacted(url);
            eprintln!("migrate: opening the destination database {shown}");
            let pg = PgMeta::open(url).with_context(|| format!("opening {shown}"))?;
            if let Some(table) = copy::first_nonempty(&pg)? {
                bail!(
                    "the destination database {shown} is not empty (its table {table} holds \
                     records): migrate copies into an empty database only, and has written \
                     nothing. If an earlier migrate was interrupted, drop and re-create the \
                     database and run it again (blobs already copied are skipped)",
                    table = table.name()
                );
            }
            Some((pg, shown))
        }
    };
    let destination_blobs: Option<(Arc<dyn BlobStore>, String)> = match &to_s3 {
        None => None,
        Some(config) => {
            let store = S3Blobs::open(config).context("opening the S3 blob store")?;
            store
                .clean_staging()
                .await
                .with_context(|| format!("reaching the S3 bucket {}", config.bucket))?;
            Some((Arc::new(store), blobs.blobs.clone()))
        }
    };

    // 2. The blobs.
    let copied_blobs = match &destination_blobs {
        Some((into, shown)) => {
            eprintln!("migrate: copying blobs into {shown}");
            copy_blobs(source.shared_blobs(), into.clone(), parallel).await?
        }
        None => BlobsCopied::default(),
    };

    // 3. The metadata.
    let copied_tables = match &destination_meta {
        Some((pg, shown)) => {
            eprintln!("migrate: copying the metadata into {shown}");
            let mut last = Instant::now();
            let tables = copy::copy_store(source.meta.as_ref(), pg, &mut |table, rows| {
                if last.elapsed() >= PROGRESS_EVERY {
                    eprintln!("migrate: table {table}: {rows} rows so far");
                    last = Instant::now();
                }
            })
            .context("copying the metadata")?;
            for table in tables.iter().filter(|t| t.source.rows > 0) {
                eprintln!("migrate: table {}: {} rows", table.name, table.source.rows);
            }
            // Every id the source handed out stays taken: the sequence continues above them.
            let used = source.meta.next_id()?;
            pg.continue_ids_after(used)?;
            // The copied schema version is this build's: the upgrade finds nothing to do.
            crate::store::upgrade::run(pg, crate::domain::schema::upgrade::STEPS)
                .with_context(|| format!("checking the schema version of {shown}"))?;
            Some(tables)
        }
        None => None,
    };

    // 4. Verification.
    eprintln!("migrate: verifying");
    let (mut problems, rows, meta_bytes) = match (&copied_tables, &destination_meta) {
        (Some(tables), Some((pg, _))) => verify_tables(tables, pg)?,
        _ => (0, 0, 0),
    };
    let blob_store: Arc<dyn BlobStore> = match &destination_blobs {
        Some((into, _)) => into.clone(),
        None => source.shared_blobs(),
    };
    let referenced = source.referenced_blobs()?;
    let referenced_count = referenced.len();
    problems += verify_blobs(referenced, blob_store, parallel).await?;

    let metadata_line = match (&copied_tables, &destination_meta) {
        (Some(tables), Some((_, shown))) => format!(
            "{} tables, {rows} rows ({meta_bytes} bytes) into {shown}",
            tables.len()
        ),
        _ => "metadata left in the data dir".to_string(),
    };
    let blobs_line = match &destination_blobs {
        Some((_, shown)) => format!(
            "{} blobs ({} copied, {} already there; {} bytes copied) into {shown}",
            copied_blobs.total, copied_blobs.copied, copied_blobs.skipped, copied_blobs.bytes
        ),
        None => "blobs left in the data dir".to_string(),
    };
    println!(
        "migrate: {metadata_line}; {blobs_line}; {referenced_count} referenced blobs re-hashed; \
         {problems} problems; {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if problems > 0 {
        bail!("the migrated copy failed verification ({problems} problems)");
    }
    eprintln!(
        "migrate: done; start the servers with the same --metadata and --blobs options (each \
         with its own --data-dir)"
    );
    Ok(())
}

/// Compares each copied table with the destination's, printing a line per mismatch. Returns
/// the mismatches, and the rows and bytes the source held.
fn verify_tables(tables: &[copy::CopiedTable], pg: &PgMeta) -> anyhow::Result<(usize, u64, u64)> {
    let (mut problems, mut rows, mut bytes) = (0, 0, 0);
    for check in copy::check_copy(tables, pg)? {
        rows += check.source.rows;
        bytes += check.source.bytes;
        if !check.matches() {
            problems += 1;
            println!(
                "MISMATCH table {}: {} rows in the data dir, {} in the destination{}",
                check.name,
                check.source.rows,
                check.destination.rows,
                if check.source.rows == check.destination.rows {
                    " (with different contents)"
                } else {
                    ""
                }
            );
        }
    }
    Ok((problems, rows, bytes))
}

/// Re-hashes every referenced blob from `store`, `parallel` at once, printing a line for each
/// one missing or corrupt; returns how many were.
async fn verify_blobs(
    referenced: std::collections::HashSet<String>,
    store: Arc<dyn BlobStore>,
    parallel: usize,
) -> anyhow::Result<usize> {
    let total = referenced.len();
    let mut checks = futures_util::stream::iter(referenced)
        .map(|sha256| {
            let store = store.clone();
            async move {
                let check = match store.rehash(&sha256).await {
                    Ok(actual) if actual == sha256 => BlobCheck::Ok,
                    Ok(actual) => BlobCheck::Corrupt(actual),
                    Err(BlobError::Missing(_)) => BlobCheck::Missing,
                    Err(error) => {
                        return Err(anyhow!(error).context(format!("re-reading blob {sha256}")))
                    }
                };
                Ok((sha256, check))
            }
        })
        .buffer_unordered(parallel);
    let (mut problems, mut checked) = (0, 0usize);
    let mut last = Instant::now();
    while let Some(result) = checks.next().await {
        let (sha256, check) = result?;
        checked += 1;
        match check {
            BlobCheck::Ok => {}
            BlobCheck::Missing => {
                problems += 1;
                println!("MISSING blob {sha256}: referenced, but not in the destination");
            }
            BlobCheck::Corrupt(actual) => {
                problems += 1;
                println!("CORRUPT blob {sha256}: the destination's content hashes to {actual}");
            }
        }
        if last.elapsed() >= PROGRESS_EVERY {
            eprintln!("migrate: verified {checked}/{total} blobs");
            last = Instant::now();
        }
    }
    Ok(problems)
}

/// Copies every blob of `from` missing in `into`, `parallel` at once, each streamed through
/// `into`'s put (hashed while written) and checked against its name.
async fn copy_blobs(
    from: Arc<dyn BlobStore>,
    into: Arc<dyn BlobStore>,
    parallel: usize,
) -> anyhow::Result<BlobsCopied> {
    let names = from.list().await.context("listing the data dir's blobs")?;
    let mut done = BlobsCopied {
        total: names.len(),
        ..BlobsCopied::default()
    };
    let mut copies = futures_util::stream::iter(names)
        .map(|sha256| {
            let (from, into) = (from.clone(), into.clone());
            async move {
                if into.exists(&sha256).await? {
                    return Ok(None);
                }
                let body = from.open(&sha256, None).await?;
                let stored = into.put(body, u64::MAX).await?;
                if stored.digests.sha256 != sha256 {
                    bail!(
                        "the data dir's blob {sha256} reads as {} (run `modelyard verify` on the \
                         data dir)",
                        stored.digests.sha256
                    );
                }
                Ok(Some(stored.size))
            }
        })
        .buffer_unordered(parallel);
    let mut last = Instant::now();
    while let Some(result) = copies.next().await {
        match result.context("copying a blob")? {
            Some(size) => {
                done.copied += 1;
                done.bytes += size;
            }
            None => done.skipped += 1,
        }
        if last.elapsed() >= PROGRESS_EVERY {
            eprintln!(
                "migrate: blobs {}/{} ({} bytes copied)",
                done.copied + done.skipped,
                done.total,
                done.bytes
            );
            last = Instant::now();
        }
    }
    eprintln!(
        "migrate: blobs: {} copied, {} already there",
        done.copied, done.skipped
    );
    Ok(done)
}
