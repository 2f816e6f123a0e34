//! Schema versions and the upgrade runner.
//!
//! The metadata store records the version of its layout under `Table::Counters` key
//! `schema_version` (a big-endian u64, like every counter). A data dir without it was written
//! by v0.1, whose layout is version 1. At start, [`run`] brings the store to the version this build
//! writes by running, in order, the steps after the recorded one; each step ends by recording its
//! version and flushing, so an interrupted upgrade resumes at the step it was in, and a finished one
//! is never run again. A fresh store is stamped with the current version without running any.
//!
//! Steps see the store through [`MetaStore`] only; the schema layer supplies them (building the
//! indexes a layout adds from the records already there) in `domain::schema::upgrade::STEPS`.

use std::time::{Duration, Instant};

use super::keys;
use super::meta::{MetaStore, StoreError, Table};

/// Where the schema version is recorded.
pub const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";

/// The layout of v0.1, and of any store that records no version.
pub const FIRST_VERSION: u32 = 1;

/// One upgrade: from version `n` (its place in the list of steps plus one) to `n + 1`.
pub struct Step {
    /// What it does, for the log: "versions by SemVer precedence index", say.
    pub name: &'static str,
    /// Rewrites or adds what the next layout needs. It may be interrupted at any point and run
    /// again from the start, so it must be idempotent (write index entries, don't count them up).
    pub run: fn(&dyn MetaStore, &mut Progress) -> Result<(), StoreError>,
}

/// The version a store is at once `steps` have run.
pub fn current_version(steps: &[Step]) -> u32 {
    FIRST_VERSION + steps.len() as u32
}

/// The recorded schema version; 1 when none is recorded (a v0.1 data dir).
pub fn schema_version(meta: &dyn MetaStore) -> Result<u32, StoreError> {
    match meta.get(Table::Counters, SCHEMA_VERSION_KEY)? {
        None => Ok(FIRST_VERSION),
        Some(bytes) => keys::last_id(&bytes)
            .filter(|_| bytes.len() == 8)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or(StoreError::Decode {
                table: Table::Counters.name(),
                reason: format!("schema_version is not a version number: {bytes:?}"),
            }),
    }
}

/// Records the schema version (not flushed: the caller makes it durable).
pub fn record_schema_version(meta: &dyn MetaStore, version: u32) -> Result<(), StoreError> {
    let value = keys::id(u64::from(version));
    meta.transaction(|tx| {
        tx.put(Table::Counters, SCHEMA_VERSION_KEY, &value)?;
        Ok::<_, super::meta::TxError<StoreError>>(())
    })
}

/// Whether the store holds no record at all (a data dir being created).
fn is_empty(meta: &dyn MetaStore) -> Result<bool, StoreError> {
    for table in Table::ALL {
        if meta.scan(table, b"").next().transpose()?.is_some() {
            return Ok(false);
        }
    }
    Ok(true)
}

#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error(
        "the metadata was written by a newer modelyard (schema version {found}; this build knows \
         up to {known}): refusing to open it; run the newer release, or restore a backup"
    )]
    Newer { found: u32, known: u32 },
    #[error("upgrading the metadata from schema version {from} ({step})")]
    Step {
        from: u32,
        step: &'static str,
        #[source]
        source: StoreError,
    },
    #[error("reading or recording the schema version")]
    Store(#[from] StoreError),
}

/// What [`run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgraded {
    pub from: u32,
    pub to: u32,
    /// Whether the store was empty and was only stamped with the current version.
    pub fresh: bool,
}

/// Brings the store to the version `steps` lead to, logging each step and its progress.
pub fn run(meta: &dyn MetaStore, steps: &[Step]) -> Result<Upgraded, UpgradeError> {
    let known = current_version(steps);
    let recorded = meta.get(Table::Counters, SCHEMA_VERSION_KEY)?.is_some();
    let found = schema_version(meta)?;
    if found > known {
        return Err(UpgradeError::Newer { found, known });
    }
    if !recorded && is_empty(meta)? {
        record_schema_version(meta, known)?;
        meta.flush()?;
        tracing::debug!(schema_version = known, "new metadata store");
        return Ok(Upgraded {
            from: known,
            to: known,
            fresh: true,
        });
    }
    if found == known {
        if !recorded {
            // A v0.1 store and a build with no steps: record the version so later builds know it.
            record_schema_version(meta, known)?;
            meta.flush()?;
            tracing::info!(
                schema_version = known,
                "metadata written by v0.1: its schema version is now recorded"
            );
        } else {
            tracing::debug!(schema_version = known, "metadata schema is current");
        }
        return Ok(Upgraded {
            from: found,
            to: known,
            fresh: false,
        });
    }
    let started = Instant::now();
    tracing::info!(
        from = found,
        to = known,
        steps = known - found,
        "upgrading the metadata schema"
    );
    for (index, step) in steps
        .iter()
        .enumerate()
        .skip((found - FIRST_VERSION) as usize)
    {
        let from = FIRST_VERSION + index as u32;
        let step_started = Instant::now();
        tracing::info!(
            from,
            to = from + 1,
            step = step.name,
            "upgrade step started"
        );
        let mut progress = Progress::new(step.name);
        (step.run)(meta, &mut progress)
            .and_then(|()| record_schema_version(meta, from + 1))
            .and_then(|()| meta.flush())
            .map_err(|source| UpgradeError::Step {
                from,
                step: step.name,
                source,
            })?;
        tracing::info!(
            from,
            to = from + 1,
            step = step.name,
            records = progress.done,
            elapsed_ms = step_started.elapsed().as_millis() as u64,
            "upgrade step finished"
        );
    }
    tracing::info!(
        schema_version = known,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "metadata schema upgraded"
    );
    Ok(Upgraded {
        from: found,
        to: known,
        fresh: false,
    })
}

/// Progress of a step: it counts the records it has handled, and a log line says how far it got
/// at most once every few seconds.
pub struct Progress {
    step: &'static str,
    done: u64,
    last_log: Instant,
    every: Duration,
}

impl Progress {
    fn new(step: &'static str) -> Self {
        Progress {
            step,
            done: 0,
            last_log: Instant::now(),
            every: Duration::from_secs(5),
        }
    }

    /// Counts `records` more handled records.
    pub fn advance(&mut self, records: u64) {
        self.done += records;
        if self.last_log.elapsed() >= self.every {
            self.last_log = Instant::now();
            tracing::info!(step = self.step, records = self.done, "upgrade in progress");
        }
    }

    pub fn done(&self) -> u64 {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled_meta::SledMeta;

    fn store() -> (tempfile::TempDir, SledMeta) {
        let dir = tempfile::tempdir().unwrap();
        let meta = SledMeta::open(dir.path(), 1 << 20).unwrap();
        (dir, meta)
    }

    fn put(meta: &SledMeta, table: Table, key: &[u8], value: &[u8]) {
        let meta: &dyn MetaStore = meta;
        meta.transaction(|tx| {
            tx.put(table, key, value)?;
            Ok::<_, crate::store::meta::TxError<StoreError>>(())
        })
        .unwrap();
    }

    fn mark(meta: &dyn MetaStore, progress: &mut Progress, key: &[u8]) -> Result<(), StoreError> {
        progress.advance(1);
        meta.transaction(|tx| {
            tx.put(Table::Counters, key, b"done")?;
            Ok::<_, crate::store::meta::TxError<StoreError>>(())
        })
    }

    const TWO_STEPS: &[Step] = &[
        Step {
            name: "first",
            run: |meta, progress| mark(meta, progress, b"step-1"),
        },
        Step {
            name: "second",
            run: |meta, progress| mark(meta, progress, b"step-2"),
        },
    ];

    #[test]
    fn a_store_without_a_version_is_a_v0_1_store() {
        let (_dir, meta) = store();
        assert_eq!(schema_version(&meta).unwrap(), 1);
        record_schema_version(&meta, 7).unwrap();
        assert_eq!(schema_version(&meta).unwrap(), 7);
        put(&meta, Table::Counters, SCHEMA_VERSION_KEY, b"seven");
        assert!(matches!(
            schema_version(&meta),
            Err(StoreError::Decode { .. })
        ));
    }

    #[test]
    fn a_fresh_store_is_stamped_without_running_steps() {
        let (_dir, meta) = store();
        let done = run(&meta, TWO_STEPS).unwrap();
        assert_eq!(
            done,
            Upgraded {
                from: 3,
                to: 3,
                fresh: true
            }
        );
        assert_eq!(schema_version(&meta).unwrap(), 3);
        assert_eq!(meta.get(Table::Counters, b"step-1").unwrap(), None);
    }

    #[test]
    fn an_old_store_runs_the_steps_once_in_order() {
        let (_dir, meta) = store();
        put(&meta, Table::Users, b"a user", b"{}");
        assert_eq!(run(&meta, &TWO_STEPS[..1]).unwrap().to, 2);
        assert_eq!(schema_version(&meta).unwrap(), 2);
        assert!(meta.get(Table::Counters, b"step-1").unwrap().is_some());
        assert_eq!(meta.get(Table::Counters, b"step-2").unwrap(), None);
        // A newer build runs only the step after the recorded version...
        put(&meta, Table::Counters, b"step-1", b"again?");
        let done = run(&meta, TWO_STEPS).unwrap();
        assert_eq!((done.from, done.to, done.fresh), (2, 3, false));
        assert_eq!(
            meta.get(Table::Counters, b"step-1").unwrap().as_deref(),
            Some(&b"again?"[..])
        );
        assert!(meta.get(Table::Counters, b"step-2").unwrap().is_some());
        // ...and nothing once the store is current.
        put(&meta, Table::Counters, b"step-2", b"again?");
        assert_eq!(run(&meta, TWO_STEPS).unwrap().from, 3);
        assert_eq!(
            meta.get(Table::Counters, b"step-2").unwrap().as_deref(),
            Some(&b"again?"[..])
        );
    }

    #[test]
    fn a_v0_1_store_gets_its_version_recorded_by_a_build_without_steps() {
        let (_dir, meta) = store();
        put(&meta, Table::Users, b"a user", b"{}");
        assert_eq!(meta.get(Table::Counters, SCHEMA_VERSION_KEY).unwrap(), None);
        let done = run(&meta, &[]).unwrap();
        assert_eq!((done.from, done.to, done.fresh), (1, 1, false));
        assert_eq!(
            meta.get(Table::Counters, SCHEMA_VERSION_KEY).unwrap(),
            Some(keys::id(1))
        );
    }

    #[test]
    fn a_store_from_a_newer_build_is_refused() {
        let (_dir, meta) = store();
        record_schema_version(&meta, 9).unwrap();
        let error = run(&meta, TWO_STEPS).unwrap_err();
        assert!(matches!(error, UpgradeError::Newer { found: 9, known: 3 }));
        assert!(error.to_string().contains("newer modelyard"), "{error}");
    }

    #[test]
    fn a_failing_step_names_itself_and_keeps_the_cause() {
        const FAILING: &[Step] = &[Step {
            name: "broken index",
            run: |_, _| {
                Err(StoreError::Io {
                    action: "reading",
                    source: std::io::Error::other("disk on fire"),
                })
            },
        }];
        let (_dir, meta) = store();
        put(&meta, Table::Users, b"a user", b"{}");
        let error = run(&meta, FAILING).unwrap_err();
        let chain = crate::domain::error::chain(&error);
        assert!(chain.contains("broken index"), "{chain}");
        assert!(chain.ends_with("reading: disk on fire"), "{chain}");
        assert_eq!(schema_version(&meta).unwrap(), 1, "not recorded");
    }
}
