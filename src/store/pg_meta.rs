//! Metadata in PostgreSQL: the same ordered key-value tables as the embedded store, one SQL
//! table per [`Table`] (`key bytea PRIMARY KEY, value bytea`), created by the migrations in
//! `migrations/` (run at start, recorded in `_sqlx_migrations`). `bytea` compares bytewise, so
//! the key order, prefix scans and cursors are the embedded store's.
//!
//! **Sync trait, async driver.** [`MetaStore`] is synchronous; sqlx is async. Every call runs as
//! a task on a small runtime of this module's own ([`runtime`]), where the connection pool lives,
//! and the calling thread waits for its answer. When the caller is a worker of a multi-thread
//! tokio runtime (the server), the wait is wrapped in `tokio::task::block_in_place`, which hands
//! the worker's other tasks to another thread first, so no async worker is ever blocked; on a
//! current-thread runtime (the admin commands, `#[tokio::test]`s) `block_in_place` would panic,
//! and there the thread simply waits: nothing else shares it. Because the pool's I/O is driven by
//! its own runtime, this works from any thread (the group-commit flusher, `spawn_blocking`,
//! plain threads) and never deadlocks on the caller's runtime.
//!
//! **Transactions** run at SERIALIZABLE: the domain's transactions are read-check-write
//! sequences over point keys (is this name taken? which number is next? did this revision
//! change?), and serializable snapshot isolation makes every such sequence safe against a
//! concurrent one on another replica, write skew included, without the domain naming the rows
//! to lock (REPEATABLE READ would need `SELECT ... FOR UPDATE` on every read, and cannot lock a
//! row that does not exist yet: exactly the "is this name free" case). A transaction that loses
//! (SQLSTATE 40001 serialization failure, 40P01 deadlock) runs again, up to
//! [`MAX_ATTEMPTS`] times with a short randomized back-off. Reads go to the database; writes
//! are buffered (so the body's own reads see them) and sent at commit as one statement per
//! table and kind (`INSERT ... SELECT FROM UNNEST(...) ON CONFLICT DO UPDATE`, `DELETE ... =
//! ANY(...)`). Uniqueness comes from the primary keys: the unique indexes' keys are the project
//! path, the model name, the version string, the package file rule.
//!
//! **Scans** read lazily, one page per query, by keyset (`key > $last ORDER BY key LIMIT n`),
//! never a whole table. **Durability**: a commit is durable when it returns, so `flush` does
//! nothing and [`MetaStore::durable_on_commit`] tells the group commit not to wait.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

use super::meta::{
    Entries, KvIter, MetaStore, StoreError, Table, TransactError, TxFail, TxFailKind, Txn,
};

/// The schema: one migration creates every table of [`Table::ALL`]; later layouts add more.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How many times a transaction runs before a serialization failure is returned.
pub const MAX_ATTEMPTS: usize = 64;
/// Connections per process.
const POOL_SIZE: u32 = 16;
/// The first page of a scan; later pages grow up to [`MAX_PAGE`] (listings mostly read a few
/// entries, exports and upgrades read many).
const FIRST_PAGE: i64 = 64;
const MAX_PAGE: i64 = 1024;

/// The runtime that drives the pools' connections (two threads; they mostly wait on sockets).
fn runtime() -> Result<&'static tokio::runtime::Runtime, StoreError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("metadata-pg")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|_| StoreError::Invariant("the PostgreSQL driver's runtime could not start"))
}

/// Runs `work` on the driver's runtime and waits for it without blocking an async worker.
fn block<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime()?.spawn(async move {
        let _ = tx.send(work.await);
    });
    let wait = move || rx.recv();
    let answer = match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    };
    answer.map_err(|_| StoreError::Invariant("a PostgreSQL call ended without an answer"))
}

fn engine(error: sqlx::Error) -> StoreError {
    StoreError::engine(error)
}

/// Whether a transaction that failed so should run again.
fn retryable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("40001" | "40P01")),
        _ => false,
    }
}

/// `postgres://user:***@host/db`: a URL fit for logs and errors.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "postgres://(unparsable URL)".to_string(),
    }
}

/// Why opening the database failed, without the URL's password.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the PostgreSQL URL is not valid: {0}")]
    Url(String),
    #[error("connecting to PostgreSQL at {url}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("running the PostgreSQL migrations on {url}")]
    Migrate {
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("the PostgreSQL schema lacks the table {0} after the migrations")]
    Missing(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct PgMeta {
    pool: PgPool,
    /// Statements sent since the store opened ([`MetaStore::round_trips`]).
    queries: Arc<AtomicU64>,
}

/// Counts one statement (or `n`) sent to the server.
fn sent(queries: &AtomicU64, n: u64) {
    queries.fetch_add(n, Ordering::Relaxed);
}

impl PgMeta {
    /// Connects, runs the migrations not yet recorded (an advisory lock keeps replicas starting
    /// at once from racing), and checks that every table exists.
    pub fn open(url: &str) -> Result<PgMeta, OpenError> {
        let shown = redacted(url);
        let options: PgConnectOptions = url.parse().map_err(|e: sqlx::Error| {
            // sqlx's message names the part that is wrong, never the password.
            OpenError::Url(match e {
                sqlx::Error::Configuration(inner) => inner.to_string(),
                _ => "unrecognised".to_string(),
            })
        })?;
        let options = options
            .statement_cache_capacity(1024)
            .application_name("modelyard");
        let pool = block(async move {
            let pool = PgPoolOptions::new()
                .max_connections(POOL_SIZE)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await
                .map_err(|source| OpenError::Connect {
                    url: shown.clone(),
                    source,
                })?;
            MIGRATOR
                .run(&pool)
                .await
                .map_err(|source| OpenError::Migrate { url: shown, source })?;
            Ok::<_, OpenError>(pool)
        })??;
        let meta = PgMeta {
            pool,
            queries: Arc::new(AtomicU64::new(0)),
        };
        let present = meta.tables()?;
        for table in Table::ALL {
            if !present.iter().any(|name| name == table.name()) {
                return Err(OpenError::Missing(table.name()));
            }
        }
        Ok(meta)
    }

    /// The tables of the `public` schema.
    pub fn tables(&self) -> Result<Vec<String>, StoreError> {
        let pool = self.pool.clone();
        block(async move {
            sqlx::query_scalar::<_, String>(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            )
            .fetch_all(&pool)
            .await
        })?
        .map_err(engine)
    }

    /// Moves the id sequence so that [`MetaStore::next_id`] answers above `used` from now on
    /// (never backwards): `modelyard migrate` continues the ids of the store it copied.
    pub fn continue_ids_after(&self, used: u64) -> Result<(), StoreError> {
        let used = i64::try_from(used)
            .map_err(|_| StoreError::Invariant("an id above the PostgreSQL sequence's range"))?;
        let pool = self.pool.clone();
        block(async move {
            sqlx::query(
                "SELECT setval('modelyard_ids', GREATEST($1, \
                 (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM modelyard_ids)))",
            )
            .bind(used.max(1))
            .execute(&pool)
            .await
        })?
        .map(|_| ())
        .map_err(engine)
    }

    fn scan_range(&self, table: Table, range: Range, reverse: bool) -> KvIter<'_> {
        Box::new(Scan {
            pool: self.pool.clone(),
            queries: self.queries.clone(),
            table,
            range,
            reverse,
            buffer: VecDeque::new(),
            done: false,
            page: FIRST_PAGE,
        })
    }
}

/// The statements of one table, built once: table names come from [`Table::name`] only (fixed
/// lowercase identifiers, quoted), every value is a bind parameter.
struct Statements {
    get: String,
    get_many: String,
    /// The first `$3` entries of each range `[$1[i], $2[i])`, tagged with the range's ordinal.
    scan_many: String,
    /// The last `$3` entries of each range, highest key first.
    scan_many_rev: String,
    upsert: String,
    delete: String,
    clear: String,
    /// By [`scan_variant`]: lower bound (none, `>=`, `>`) x upper bound (none, `<`) x direction.
    scans: Vec<String>,
}

/// The first `$3` entries of each range `[$1[i], $2[i])` of a table in `direction` (`ASC`,
/// `DESC`), tagged with the range's ordinal.
fn scan_many_sql(name: &str, direction: &str) -> String {
    format!(
        "SELECT r.i, t.key, t.value \
         FROM UNNEST($1::bytea[], $2::bytea[]) WITH ORDINALITY AS r(lo, hi, i) \
         CROSS JOIN LATERAL (SELECT key, value FROM \"{name}\" \
           WHERE key >= r.lo AND key < r.hi ORDER BY key {direction} LIMIT $3) t \
         ORDER BY r.i, t.key {direction}"
    )
}

fn statements(table: Table) -> &'static Statements {
    static ALL: OnceLock<Vec<Statements>> = OnceLock::new();
    &ALL.get_or_init(|| {
        Table::ALL
            .iter()
            .map(|table| {
                let name = table.name();
                let mut scans = Vec::new();
                for lower in ["", "key >= $1", "key > $1"] {
                    for upper in [false, true] {
                        for reverse in [false, true] {
                            let mut conditions = Vec::new();
                            if !lower.is_empty() {
                                conditions.push(lower.to_string());
                            }
                            if upper {
                                conditions.push(format!("key < ${}", conditions.len() + 1));
                            }
                            let limit = conditions.len() + 1;
                            let filter = if conditions.is_empty() {
                                String::new()
                            } else {
                                format!(" WHERE {}", conditions.join(" AND "))
                            };
                            let order = if reverse { "DESC" } else { "ASC" };
                            scans.push(format!(
                                "SELECT key, value FROM \"{name}\"{filter} ORDER BY key {order} LIMIT ${limit}"
                            ));
                        }
                    }
                }
                Statements {
                    get: format!("SELECT value FROM \"{name}\" WHERE key = $1"),
                    get_many: format!(
                        "SELECT key, value FROM \"{name}\" WHERE key = ANY($1::bytea[])"
                    ),
                    scan_many: scan_many_sql(name, "ASC"),
                    scan_many_rev: scan_many_sql(name, "DESC"),
                    upsert: format!(
                        "INSERT INTO \"{name}\" (key, value) \
                         SELECT * FROM UNNEST($1::bytea[], $2::bytea[]) \
                         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
                    ),
                    delete: format!("DELETE FROM \"{name}\" WHERE key = ANY($1)"),
                    clear: format!("DELETE FROM \"{name}\""),
                    scans,
                }
            })
            .collect()
    })[table.index()]
}

fn scan_variant(range: &Range, reverse: bool) -> usize {
    let lower = match &range.lower {
        None => 0,
        Some((_, true)) => 1,
        Some((_, false)) => 2,
    };
    let upper = usize::from(range.upper.is_some());
    (lower * 2 + upper) * 2 + usize::from(reverse)
}

/// Key bounds of a scan; `None` is unbounded. Upper bounds are always exclusive.
#[derive(Clone, Default)]
struct Range {
    lower: Option<(Vec<u8>, bool)>,
    upper: Option<Vec<u8>>,
}

impl Range {
    fn prefix(prefix: &[u8]) -> Range {
        Range {
            lower: (!prefix.is_empty()).then(|| (prefix.to_vec(), true)),
            upper: prefix_end(prefix),
        }
    }
}

/// The first key above every key that starts with `prefix`; `None` when there is none.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A lazy scan: one keyset query per page.
struct Scan {
    pool: PgPool,
    queries: Arc<AtomicU64>,
    table: Table,
    range: Range,
    reverse: bool,
    buffer: VecDeque<(Vec<u8>, Vec<u8>)>,
    done: bool,
    page: i64,
}

impl Scan {
    fn fetch(&mut self) -> Result<(), StoreError> {
        let sql = statements(self.table).scans[scan_variant(&self.range, self.reverse)].as_str();
        let binds: Vec<Vec<u8>> = self
            .range
            .lower
            .iter()
            .map(|(key, _)| key.clone())
            .chain(self.range.upper.iter().cloned())
            .collect();
        let limit = self.page;
        let pool = self.pool.clone();
        sent(&self.queries, 1);
        let rows = block(async move {
            let mut query = sqlx::query(sql);
            for bind in binds {
                query = query.bind(bind);
            }
            let rows = query.bind(limit).fetch_all(&pool).await?;
            rows.into_iter()
                .map(|row| Ok((row.try_get::<Vec<u8>, _>(0)?, row.try_get::<Vec<u8>, _>(1)?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?
        .map_err(engine)?;
        if (rows.len() as i64) < limit {
            self.done = true;
        }
        if let Some((last, _)) = rows.last() {
            if self.reverse {
                self.range.upper = Some(last.clone());
            } else {
                self.range.lower = Some((last.clone(), false));
            }
        }
        self.page = (self.page * 4).min(MAX_PAGE);
        self.buffer.extend(rows);
        Ok(())
    }
}

impl Iterator for Scan {
    type Item = Result<(Vec<u8>, Vec<u8>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(row) = self.buffer.pop_front() {
            return Some(Ok(row));
        }
        if self.done {
            return None;
        }
        if let Err(error) = self.fetch() {
            self.done = true;
            return Some(Err(error));
        }
        self.buffer.pop_front().map(Ok)
    }
}

/// An engine failure inside a transaction body, carried through [`TxFail`].
struct PgFail(sqlx::Error);

fn fail(error: sqlx::Error) -> TxFail {
    TxFail(TxFailKind::Engine(Box::new(PgFail(error))))
}

fn lost(error: StoreError) -> TxFail {
    TxFail(TxFailKind::Decode(error))
}

type PgTx = Transaction<'static, Postgres>;

/// Buffered writes: (table index, key) to the new value, `None` for a delete.
type Writes = BTreeMap<(usize, Vec<u8>), Option<Vec<u8>>>;

/// A transaction body's view: reads go to the open transaction (after the buffered writes),
/// writes are buffered until commit.
struct PgTxn {
    tx: RefCell<Option<PgTx>>,
    writes: RefCell<Writes>,
    queries: Arc<AtomicU64>,
}

impl Txn for PgTxn {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, TxFail> {
        if let Some(written) = self.writes.borrow().get(&(table.index(), key.to_vec())) {
            return Ok(written.clone());
        }
        let Some(mut tx) = self.tx.borrow_mut().take() else {
            return Err(lost(StoreError::Invariant(
                "a PostgreSQL transaction was lost",
            )));
        };
        let sql = statements(table).get.as_str();
        let key = key.to_vec();
        sent(&self.queries, 1);
        let (tx, found) = block(async move {
            let found = sqlx::query_scalar::<_, Vec<u8>>(sql)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await;
            (tx, found)
        })
        .map_err(lost)?;
        *self.tx.borrow_mut() = Some(tx);
        found.map_err(fail)
    }

    fn put(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), TxFail> {
        self.writes
            .borrow_mut()
            .insert((table.index(), key.to_vec()), Some(value.to_vec()));
        Ok(())
    }

    fn delete(&self, table: Table, key: &[u8]) -> Result<(), TxFail> {
        self.writes
            .borrow_mut()
            .insert((table.index(), key.to_vec()), None);
        Ok(())
    }
}

/// The buffered writes of a transaction, by table: keys and values to upsert, keys to delete.
type Batches = BTreeMap<usize, (Vec<Vec<u8>>, Vec<Vec<u8>>, Vec<Vec<u8>>)>;

fn batches(writes: Writes) -> Batches {
    let mut out = Batches::new();
    for ((table, key), value) in writes {
        let entry = out.entry(table).or_default();
        match value {
            Some(value) => {
                entry.0.push(key);
                entry.1.push(value);
            }
            None => entry.2.push(key),
        }
    }
    out
}

/// Sends the buffered writes and commits.
async fn commit(mut tx: PgTx, batches: Batches) -> Result<(), sqlx::Error> {
    for (table, (keys, values, deleted)) in batches {
        let sql = statements(Table::ALL[table]);
        if !keys.is_empty() {
            sqlx::query(sql.upsert.as_str())
                .bind(keys)
                .bind(values)
                .execute(&mut *tx)
                .await?;
        }
        if !deleted.is_empty() {
            sqlx::query(sql.delete.as_str())
                .bind(deleted)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await
}

/// What one run of a transaction body came to.
enum Outcome {
    Committed,
    Retry(sqlx::Error),
    Done(Result<(), TransactError>),
}

impl PgMeta {
    fn attempt(&self, body: &mut dyn FnMut(&dyn Txn) -> Result<(), TxFail>) -> Outcome {
        let pool = self.pool.clone();
        sent(&self.queries, 1);
        let begun =
            block(async move { pool.begin_with("BEGIN ISOLATION LEVEL SERIALIZABLE").await });
        let tx = match begun {
            Ok(Ok(tx)) => tx,
            Ok(Err(error)) if retryable(&error) => return Outcome::Retry(error),
            Ok(Err(error)) => return Outcome::Done(Err(TransactError::Store(engine(error)))),
            Err(error) => return Outcome::Done(Err(TransactError::Store(error))),
        };
        let view = PgTxn {
            tx: RefCell::new(Some(tx)),
            writes: RefCell::new(BTreeMap::new()),
            queries: self.queries.clone(),
        };
        let result = body(&view);
        let PgTxn { tx, writes, .. } = view;
        let tx = tx.into_inner();
        match result {
            Ok(()) => {
                let Some(tx) = tx else {
                    return Outcome::Done(Err(TransactError::Store(StoreError::Invariant(
                        "a PostgreSQL transaction was lost",
                    ))));
                };
                let batches = batches(writes.into_inner());
                let statements: usize = batches
                    .values()
                    .map(|(keys, _, deleted)| {
                        usize::from(!keys.is_empty()) + usize::from(!deleted.is_empty())
                    })
                    .sum();
                sent(&self.queries, statements as u64 + 1);
                match block(commit(tx, batches)) {
                    Ok(Ok(())) => Outcome::Committed,
                    Ok(Err(error)) if retryable(&error) => Outcome::Retry(error),
                    Ok(Err(error)) => Outcome::Done(Err(TransactError::Store(engine(error)))),
                    Err(error) => Outcome::Done(Err(TransactError::Store(error))),
                }
            }
            Err(failure) => {
                if let Some(tx) = tx {
                    // A failed statement leaves the transaction unusable; end it either way.
                    sent(&self.queries, 1);
                    let _ = block(async move { tx.rollback().await });
                }
                match failure.0 {
                    TxFailKind::Abort => Outcome::Done(Err(TransactError::Aborted)),
                    TxFailKind::Decode(error) => Outcome::Done(Err(TransactError::Store(error))),
                    TxFailKind::Engine(any) => match any.downcast::<PgFail>() {
                        Ok(pg) if retryable(&pg.0) => Outcome::Retry(pg.0),
                        Ok(pg) => Outcome::Done(Err(TransactError::Store(engine(pg.0)))),
                        Err(_) => Outcome::Done(Err(TransactError::Store(StoreError::Invariant(
                            "foreign transaction failure",
                        )))),
                    },
                }
            }
        }
    }
}

impl PgMeta {
    /// The first (`reverse`: last) `limit` entries under each prefix, in one statement for
    /// every prefix that has an upper bound.
    fn scan_ranges(
        &self,
        table: Table,
        prefixes: &[Vec<u8>],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<Entries>, StoreError> {
        let mut out = vec![Vec::new(); prefixes.len()];
        if limit == 0 {
            return Ok(out);
        }
        let mut bounded = Vec::new();
        for (slot, prefix) in prefixes.iter().enumerate() {
            match prefix_end(prefix).filter(|_| !prefix.is_empty()) {
                Some(end) => bounded.push((slot, prefix.clone(), end)),
                None => {
                    let entries = if reverse {
                        self.scan_rev(table, prefix)
                    } else {
                        self.scan(table, prefix)
                    };
                    out[slot] = entries.take(limit).collect::<Result<_, _>>()?
                }
            }
        }
        if bounded.is_empty() {
            return Ok(out);
        }
        let sql = if reverse {
            statements(table).scan_many_rev.as_str()
        } else {
            statements(table).scan_many.as_str()
        };
        let lows: Vec<Vec<u8>> = bounded.iter().map(|(_, low, _)| low.clone()).collect();
        let ends: Vec<Vec<u8>> = bounded.iter().map(|(_, _, end)| end.clone()).collect();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let pool = self.pool.clone();
        sent(&self.queries, 1);
        let rows = block(async move {
            let rows = sqlx::query(sql)
                .bind(lows)
                .bind(ends)
                .bind(limit)
                .fetch_all(&pool)
                .await?;
            rows.into_iter()
                .map(|row| {
                    Ok((
                        row.try_get::<i64, _>(0)?,
                        row.try_get::<Vec<u8>, _>(1)?,
                        row.try_get::<Vec<u8>, _>(2)?,
                    ))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?
        .map_err(engine)?;
        for (ordinal, key, value) in rows {
            let slot = usize::try_from(ordinal - 1)
                .ok()
                .and_then(|i| bounded.get(i))
                .and_then(|(slot, _, _)| out.get_mut(*slot))
                .ok_or(StoreError::Invariant("a range ordinal out of bounds"))?;
            slot.push((key, value));
        }
        Ok(out)
    }
}

impl MetaStore for PgMeta {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let sql = statements(table).get.as_str();
        let key = key.to_vec();
        let pool = self.pool.clone();
        sent(&self.queries, 1);
        block(async move {
            sqlx::query_scalar::<_, Vec<u8>>(sql)
                .bind(key)
                .fetch_optional(&pool)
                .await
        })?
        .map_err(engine)
    }

    /// One `SELECT key, value ... WHERE key = ANY($1)` for the whole batch (the distinct keys),
    /// answered in the order asked.
    fn get_many(&self, table: Table, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut distinct: Vec<Vec<u8>> = keys.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let sql = statements(table).get_many.as_str();
        let pool = self.pool.clone();
        sent(&self.queries, 1);
        let rows = block(async move {
            let rows = sqlx::query(sql).bind(distinct).fetch_all(&pool).await?;
            rows.into_iter()
                .map(|row| Ok((row.try_get::<Vec<u8>, _>(0)?, row.try_get::<Vec<u8>, _>(1)?)))
                .collect::<Result<std::collections::HashMap<_, _>, sqlx::Error>>()
        })?
        .map_err(engine)?;
        Ok(keys.iter().map(|key| rows.get(key).cloned()).collect())
    }

    /// One statement for every prefix: a lateral join of the prefixes' key ranges, each read by
    /// the primary key's index up to `limit`. A prefix with no upper bound (empty, or all 0xFF
    /// bytes: none of the schema's) is scanned on its own.
    fn scan_many(
        &self,
        table: Table,
        prefixes: &[Vec<u8>],
        limit: usize,
    ) -> Result<Vec<Entries>, StoreError> {
        self.scan_ranges(table, prefixes, limit, false)
    }

    fn scan_many_rev(
        &self,
        table: Table,
        prefixes: &[Vec<u8>],
        limit: usize,
    ) -> Result<Vec<Entries>, StoreError> {
        self.scan_ranges(table, prefixes, limit, true)
    }

    fn scan(&self, table: Table, prefix: &[u8]) -> KvIter<'_> {
        self.scan_range(table, Range::prefix(prefix), false)
    }

    fn scan_rev(&self, table: Table, prefix: &[u8]) -> KvIter<'_> {
        self.scan_range(table, Range::prefix(prefix), true)
    }

    fn scan_after(&self, table: Table, prefix: &[u8], after: &[u8], reverse: bool) -> KvIter<'_> {
        let mut range = Range::prefix(prefix);
        let end = prefix_end(prefix);
        let beyond_end = end.as_deref().is_some_and(|end| after >= end);
        if reverse {
            if after <= prefix {
                return Box::new(std::iter::empty());
            }
            if !beyond_end {
                range.upper = Some(after.to_vec());
            }
        } else {
            if beyond_end {
                return Box::new(std::iter::empty());
            }
            if after >= prefix {
                range.lower = Some((after.to_vec(), false));
            }
        }
        self.scan_range(table, range, reverse)
    }

    fn scan_from(&self, table: Table, prefix: &[u8], start: &[u8]) -> KvIter<'_> {
        let mut range = Range::prefix(prefix);
        if start > prefix {
            if let Some(end) = &range.upper {
                if start >= end.as_slice() {
                    return Box::new(std::iter::empty());
                }
            }
            range.lower = Some((start.to_vec(), true));
        }
        self.scan_range(table, range, false)
    }

    fn clear(&self, table: Table) -> Result<(), StoreError> {
        let sql = statements(table).clear.as_str();
        let pool = self.pool.clone();
        sent(&self.queries, 1);
        block(async move { sqlx::query(sql).execute(&pool).await })?
            .map(|_| ())
            .map_err(engine)
    }

    fn drop_retired(&self, name: &str) -> Result<(), StoreError> {
        if !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(StoreError::Invariant(
                "a retired table's name is not an identifier",
            ));
        }
        let sql = format!("DROP TABLE IF EXISTS \"{name}\"");
        let pool = self.pool.clone();
        sent(&self.queries, 1);
        block(async move { sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await })?
            .map(|_| ())
            .map_err(engine)
    }

    fn transact(
        &self,
        body: &mut dyn FnMut(&dyn Txn) -> Result<(), TxFail>,
    ) -> Result<(), TransactError> {
        let mut last = None;
        for attempt in 0..MAX_ATTEMPTS {
            match self.attempt(body) {
                Outcome::Committed => return Ok(()),
                Outcome::Done(result) => return result,
                Outcome::Retry(error) => {
                    last = Some(error);
                    // Randomized, growing back-off: the losers of a conflict spread out.
                    let cap = 1u64 << attempt.min(6);
                    let pause = Duration::from_micros(rand::random::<u64>() % (cap * 1000) + 200);
                    block(async move { tokio::time::sleep(pause).await })
                        .map_err(TransactError::Store)?;
                }
            }
        }
        tracing::warn!(
            attempts = MAX_ATTEMPTS,
            "a metadata transaction kept conflicting with concurrent ones"
        );
        Err(TransactError::Store(match last {
            Some(error) => engine(error),
            None => StoreError::Invariant("a transaction ran no attempt"),
        }))
    }

    fn next_id(&self) -> Result<u64, StoreError> {
        let pool = self.pool.clone();
        sent(&self.queries, 1);
        let id = block(async move {
            sqlx::query_scalar::<_, i64>("SELECT nextval('modelyard_ids')")
                .fetch_one(&pool)
                .await
        })?
        .map_err(engine)?;
        u64::try_from(id).map_err(|_| StoreError::Invariant("the id sequence went negative"))
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Every commit is durable when it returns (synchronous_commit, the server's business).
        Ok(())
    }

    fn durable_on_commit(&self) -> bool {
        true
    }

    fn round_trips(&self) -> Option<u64> {
        Some(self.queries.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table has a migration: a new `Table` without one fails here (and `open` refuses a
    /// database that lacks one).
    #[test]
    fn the_migrations_create_every_table() {
        let sql: String = MIGRATOR
            .iter()
            .map(|migration| migration.sql.as_str().to_string())
            .collect();
        for table in Table::ALL {
            let create = format!("CREATE TABLE \"{}\" (key bytea PRIMARY KEY", table.name());
            assert!(
                sql.contains(&create),
                "no migration creates the table {} (add one under migrations/)",
                table.name()
            );
        }
    }

    #[test]
    fn urls_in_messages_hide_the_password() {
        let shown = redacted("postgres://alice:s3cret@db.example:5432/registry");
        assert_eq!(shown, "postgres://alice:***@db.example:5432/registry");
        assert!(!redacted("postgres://h/db").contains("***"));
    }

    #[test]
    fn a_bad_url_is_refused_without_its_password() {
        let Err(error) = PgMeta::open("postgres://alice:s3cret@db.example:notaport/registry")
        else {
            panic!("a URL with a bad port opened");
        };
        let text = format!("{error:#}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}
