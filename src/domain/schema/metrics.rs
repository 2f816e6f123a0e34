//! Metrics of candidates. Three kinds of rows:
//! - history: chunks of points ([`super::metric_history`]), one per metric per call (or a call's
//!   points appended to the metric's last chunk while it is small and they come after it);
//! - latest: `(candidate, key) → point`, the point with the highest step, then timestamp
//!   (MLflow's `latest_metrics`), kept on write so that nothing reads a history to show a run;
//! - by value: `(experiment, key, value, candidate)`, every run's latest value in number order, so
//!   that a run search ordered or filtered by a metric walks an index.

use super::metric_history;
use super::revisions::{self, Parent};
use super::{id_key, key, sortable_f64, IndexEntry, Seek};
use crate::domain::ml_records::MetricPoint;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

/// The run a metric belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub candidate_id: u64,
    pub experiment_id: u64,
}

fn count_key(candidate_id: u64, name: &str) -> Vec<u8> {
    key()
        .str("metric_points")
        .id(candidate_id)
        .str(name)
        .build()
}

fn latest_key(candidate_id: u64, name: &str) -> Vec<u8> {
    key().id(candidate_id).str(name).build()
}

fn value_prefix(experiment_id: u64, name: &str) -> Vec<u8> {
    key().id(experiment_id).str(name).build()
}

fn value_key(experiment_id: u64, name: &str, value: f64, candidate_id: u64) -> Vec<u8> {
    key()
        .raw(&value_prefix(experiment_id, name))
        .raw(&sortable_f64(value))
        .id(candidate_id)
        .build()
}

/// A point as stored: value bits, timestamp and step, 24 bytes (NaN and infinities survive).
fn encode(point: &MetricPoint) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[..8].copy_from_slice(&point.value.to_bits().to_be_bytes());
    out[8..16].copy_from_slice(&point.timestamp.to_be_bytes());
    out[16..].copy_from_slice(&point.step.to_be_bytes());
    out
}

fn decode(name: String, value: &[u8]) -> Option<MetricPoint> {
    let field =
        |range: std::ops::Range<usize>| -> Option<[u8; 8]> { value.get(range)?.try_into().ok() };
    Some(MetricPoint {
        key: name,
        value: f64::from_bits(u64::from_be_bytes(field(0..8)?)),
        timestamp: i64::from_be_bytes(field(8..16)?),
        step: i64::from_be_bytes(field(16..24)?),
    })
}

/// The metric name in a key that starts with an id.
fn name_in(k: &[u8]) -> Option<String> {
    let rest = k.get(8..)?;
    let end = rest.iter().position(|b| *b == 0)?;
    String::from_utf8(rest[..end].to_vec()).ok()
}

fn decode_row(k: &[u8], value: &[u8]) -> Result<MetricPoint, StoreError> {
    name_in(k)
        .and_then(|name| decode(name, value))
        .ok_or(StoreError::Decode {
            table: Table::Metrics.name(),
            reason: "bad metric row".into(),
        })
}

/// Which of two points of one metric is the latest: higher step, then later timestamp, then
/// the order of the history (value bits).
fn order_of(point: &MetricPoint) -> (i64, i64, u64) {
    (point.step, point.timestamp, point.value.to_bits())
}

/// How many points a chunk holds at most (3 KiB), whether one call writes it or several
/// calls append to it; a call with more points of one metric writes several chunks. Small
/// chunks keep sled's leaves (up to 17 entries) far below the size at which sled writes a
/// page as a file of its own (a quarter of its 512 KiB segment), which 24 KiB chunks
/// crossed: every rewrite of such a leaf created, wrote and later deleted a file.
const CHUNK_POINTS: usize = 128;

/// A call's sorted points of one metric cut into chunks of about [`CHUNK_POINTS`], never
/// between two points of one step, so that the chunks of one call start at different steps
/// (and their keys, which share the call's chunk id, differ).
fn pieces<'a, 'p>(sorted: &'a [&'p MetricPoint]) -> impl Iterator<Item = &'a [&'p MetricPoint]> {
    let mut rest = sorted;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len().min(CHUNK_POINTS);
        while end < rest.len() && rest[end].step == rest[end - 1].step {
            end += 1;
        }
        let (piece, after) = rest.split_at(end);
        rest = after;
        Some(piece)
    })
}

/// A metric's row in the latest table: its latest point and where its history ends (the last
/// chunk, to append small calls to).
struct Latest {
    point: Option<MetricPoint>,
    tail: Option<Tail>,
}

#[derive(Clone, Copy)]
struct Tail {
    first_step: i64,
    chunk_id: u64,
    count: u32,
    last: metric_history::Pos,
}

fn decode_latest(name: &str, bytes: &[u8]) -> Latest {
    let point = decode(name.to_string(), bytes);
    let tail = (|| {
        let field =
            |r: std::ops::Range<usize>| -> Option<[u8; 8]> { bytes.get(r)?.try_into().ok() };
        Some(Tail {
            first_step: i64::from_be_bytes(field(24..32)?),
            chunk_id: u64::from_be_bytes(field(32..40)?),
            count: u32::from_be_bytes(bytes.get(40..44)?.try_into().ok()?),
            last: (
                i64::from_be_bytes(field(44..52)?),
                i64::from_be_bytes(field(52..60)?),
                u64::from_be_bytes(field(60..68)?),
            ),
        })
    })();
    Latest { point, tail }
}

fn encode_latest(point: &MetricPoint, tail: &Tail) -> Vec<u8> {
    let mut out = Vec::with_capacity(68);
    out.extend_from_slice(&encode(point));
    out.extend_from_slice(&tail.first_step.to_be_bytes());
    out.extend_from_slice(&tail.chunk_id.to_be_bytes());
    out.extend_from_slice(&tail.count.to_be_bytes());
    out.extend_from_slice(&tail.last.0.to_be_bytes());
    out.extend_from_slice(&tail.last.1.to_be_bytes());
    out.extend_from_slice(&tail.last.2.to_be_bytes());
    out
}

/// Records points: per metric a chunk of history (or an append to its last chunk), its count,
/// its latest point and its place in the by-value index. A handful of writes per metric, however
/// many points. `chunk_id` is a fresh id (from the store's id sequence) that names this call's
/// chunks.
pub fn log(tx: &dyn Txn, run: Run, points: &[MetricPoint], chunk_id: u64) -> Result<(), TxFail> {
    if points.is_empty() {
        return Ok(());
    }
    // By metric, then in order; of points at the same place the first sent is kept.
    let mut all: Vec<&MetricPoint> = points.iter().collect();
    all.sort_by(|a, b| {
        a.key
            .cmp(&b.key)
            .then_with(|| order_of(a).cmp(&order_of(b)))
    });
    all.dedup_by(|a, b| a.key == b.key && order_of(a) == order_of(b));
    for sorted in all.chunk_by(|a, b| a.key == b.key) {
        let (Some(first), Some(last)) = (sorted.first().copied(), sorted.last().copied()) else {
            continue;
        };
        let name = first.key.as_str();
        let latest_row = latest_key(run.candidate_id, name);
        let current = match tx.get(Table::LatestMetrics, &latest_row)? {
            Some(bytes) => decode_latest(name, &bytes),
            None => Latest {
                point: None,
                tail: None,
            },
        };
        let appendable = current.tail.filter(|tail| {
            order_of(first) > tail.last && tail.count as usize + sorted.len() <= CHUNK_POINTS
        });
        let tail = match appendable {
            Some(tail) => {
                let added = metric_history::extend(
                    tx,
                    run.candidate_id,
                    name,
                    tail.first_step,
                    tail.chunk_id,
                    sorted,
                )?;
                Tail {
                    count: tail.count + added as u32,
                    last: order_of(last),
                    ..tail
                }
            }
            None => {
                let mut tail = None;
                for piece in pieces(sorted) {
                    let added =
                        metric_history::append(tx, run.candidate_id, name, chunk_id, piece)?;
                    tail = piece.first().zip(piece.last()).map(|(first, last)| Tail {
                        first_step: first.step,
                        chunk_id,
                        count: added as u32,
                        last: order_of(last),
                    });
                }
                let Some(tail) = tail else { continue };
                tail
            }
        };
        super::add_to_count(tx, &count_key(run.candidate_id, name), sorted.len() as i64)?;
        let newest = match &current.point {
            Some(p) if order_of(p) >= order_of(last) => p.clone(),
            previous => {
                if let Some(previous) = previous {
                    tx.delete(
                        Table::MetricsByValue,
                        &value_key(run.experiment_id, name, previous.value, run.candidate_id),
                    )?;
                }
                tx.put(
                    Table::MetricsByValue,
                    &value_key(run.experiment_id, name, last.value, run.candidate_id),
                    &[],
                )?;
                last.clone()
            }
        };
        tx.put(
            Table::LatestMetrics,
            &latest_row,
            &encode_latest(&newest, &tail),
        )?;
    }
    revisions::bump(tx, Parent::Candidate(run.candidate_id))
}

/// Every point of a candidate's metrics (one metric's when `name` is given), by metric, step
/// and timestamp.
pub fn history(
    meta: &dyn MetaStore,
    candidate_id: u64,
    name: Option<&str>,
) -> Result<Vec<MetricPoint>, StoreError> {
    let names: Vec<String> = match name {
        Some(name) => vec![name.to_string()],
        None => latest_all(meta, candidate_id)?
            .into_iter()
            .map(|p| p.key)
            .collect(),
    };
    let mut out = Vec::new();
    for name in names {
        for p in metric_history::Merge::new(meta, candidate_id, &name, None) {
            out.push(metric_history::point(&name, p?));
        }
    }
    Ok(out)
}

/// A page of one metric's history in step order, and the cursor after it (a point's place).
pub fn history_page(
    meta: &dyn MetaStore,
    candidate_id: u64,
    name: &str,
    seek: &Seek,
    take: usize,
) -> Result<(Vec<MetricPoint>, Option<Vec<u8>>), StoreError> {
    let (after, skip) = match seek {
        Seek::After(cursor) => (metric_history::pos_of_cursor(cursor), 0),
        Seek::Offset(n) => (None, *n),
    };
    let mut merge = metric_history::Merge::new(meta, candidate_id, name, after).skip(skip);
    let mut points = Vec::with_capacity(take.min(4096));
    let mut last = None;
    for p in merge.by_ref().take(take) {
        let p = p?;
        points.push(metric_history::point(name, p));
        last = Some(p);
    }
    let more = merge.next().transpose()?.is_some();
    Ok((points, last.filter(|_| more).map(metric_history::cursor_of)))
}

/// How many points of one metric are recorded (a kept count; a point logged again in a later
/// call is counted again, though histories show it once).
pub fn count_of(meta: &dyn MetaStore, candidate_id: u64, name: &str) -> Result<usize, StoreError> {
    super::count(meta, &count_key(candidate_id, name))
}

/// The first `take` points of one metric, in step order, and whether it has more.
pub fn head(
    meta: &dyn MetaStore,
    candidate_id: u64,
    name: &str,
    take: usize,
) -> Result<(Vec<MetricPoint>, bool), StoreError> {
    let (points, next) = history_page(meta, candidate_id, name, &Seek::Offset(0), take)?;
    Ok((points, next.is_some()))
}

/// [`head`] of several `(candidate, metric)` pairs at once, in the order asked: the chunk
/// directories in one batched read, the chunks the heads need in another.
pub fn heads_of(
    meta: &dyn MetaStore,
    metrics: &[(u64, &str)],
    take: usize,
) -> Result<Vec<(Vec<MetricPoint>, bool)>, StoreError> {
    metric_history::heads_of(meta, metrics, take)
}

/// About `max_points` points of one metric spread over its steps, first and last included:
/// what a chart draws, reading only the chunks that hold the sampled steps.
pub fn sample(
    meta: &dyn MetaStore,
    candidate_id: u64,
    name: &str,
    max_points: usize,
) -> Result<Vec<MetricPoint>, StoreError> {
    metric_history::sample(meta, candidate_id, name, max_points)
}

/// Whether a cursor is a place in a history.
pub fn history_cursor_fits(cursor: &[u8]) -> bool {
    metric_history::pos_of_cursor(cursor).is_some()
}

/// The latest point of each of a candidate's metrics, by metric name.
pub fn latest_all(meta: &dyn MetaStore, candidate_id: u64) -> Result<Vec<MetricPoint>, StoreError> {
    Ok(latest_all_of(meta, &[candidate_id])?
        .pop()
        .unwrap_or_default())
}

/// The latest point of each metric of each of several candidates, by metric name, in the order
/// of `candidate_ids`: one batched read for a page of runs.
pub fn latest_all_of(
    meta: &dyn MetaStore,
    candidate_ids: &[u64],
) -> Result<Vec<Vec<MetricPoint>>, StoreError> {
    let prefixes: Vec<Vec<u8>> = candidate_ids.iter().map(|id| id_key(*id)).collect();
    meta.scan_many(Table::LatestMetrics, &prefixes, usize::MAX)?
        .into_iter()
        .map(|entries| {
            entries
                .into_iter()
                .map(|(k, v)| decode_row(&k, &v))
                .collect()
        })
        .collect()
}

/// The latest point of one metric.
pub fn latest(
    meta: &dyn MetaStore,
    candidate_id: u64,
    name: &str,
) -> Result<Option<MetricPoint>, StoreError> {
    Ok(meta
        .get(Table::LatestMetrics, &latest_key(candidate_id, name))?
        .and_then(|v| decode(name.to_string(), &v)))
}

/// Bounds on a metric's value that a search knows every match lies within (inclusive; the
/// search still tests each run).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ValueRange {
    pub lo: Option<f64>,
    pub hi: Option<f64>,
}

/// The runs of an experiment by their latest value of a metric (ascending, or descending),
/// as `(index key, ())` entries whose keys end with the candidate id; runs without the metric
/// are not in it. The walk starts at the range's first bound (or after `after`, a key of this
/// stream for any experiment searched together) and stops past its other bound.
pub fn runs_by_value<'a>(
    meta: &'a dyn MetaStore,
    experiment_id: u64,
    name: &str,
    descending: bool,
    after: Option<&[u8]>,
    range: ValueRange,
) -> Box<dyn Iterator<Item = Result<IndexEntry, StoreError>> + 'a> {
    let prefix = value_prefix(experiment_id, name);
    let bound = |v: f64, fill: u8| {
        let mut k = prefix.clone();
        k.extend_from_slice(&sortable_f64(v));
        k.extend_from_slice(&[fill; 8]);
        k
    };
    let lo = range.lo.map(|v| bound(v, 0));
    let hi = range.hi.map(|v| bound(v, u8::MAX));
    let iter = match (after, descending) {
        (Some(after), _) => {
            let mut from = id_key(experiment_id);
            from.extend_from_slice(after.get(8..).unwrap_or_default());
            meta.scan_after(Table::MetricsByValue, &prefix, &from, descending)
        }
        (None, false) => match &lo {
            Some(lo) => meta.scan_from(Table::MetricsByValue, &prefix, lo),
            None => meta.scan(Table::MetricsByValue, &prefix),
        },
        (None, true) => match &hi {
            Some(hi) => meta.scan_after(Table::MetricsByValue, &prefix, hi, true),
            None => meta.scan_rev(Table::MetricsByValue, &prefix),
        },
    };
    Box::new(iter.take_while(move |entry| match entry {
        Ok((k, _)) if descending => lo.as_ref().is_none_or(|lo| k >= lo),
        Ok((k, _)) => hi.as_ref().is_none_or(|hi| k <= hi),
        Err(_) => true,
    }))
}

/// The length of the prefix of [`runs_by_value`] keys (what a merge orders after).
pub fn by_value_prefix_len(name: &str) -> usize {
    8 + name.len() + 1
}

/// The candidate an entry of [`runs_by_value`] names.
pub fn run_of(entry: &IndexEntry) -> Option<u64> {
    super::trailing_id(&entry.0)
}

/// What a candidate's metrics occupy, read before the transaction that removes them.
pub struct Owned {
    chunks: Vec<Vec<u8>>,
    latest: Vec<MetricPoint>,
}

pub fn owned(meta: &dyn MetaStore, candidate_id: u64) -> Result<Owned, StoreError> {
    Ok(Owned {
        chunks: metric_history::chunk_keys_of(meta, candidate_id)?,
        latest: latest_all(meta, candidate_id)?,
    })
}

/// Removes everything [`owned`] listed.
pub fn purge(tx: &dyn Txn, run: Run, owned: &Owned) -> Result<(), TxFail> {
    metric_history::purge(tx, &owned.chunks)?;
    for point in &owned.latest {
        tx.delete(Table::Counts, &count_key(run.candidate_id, &point.key))?;
        tx.delete(
            Table::LatestMetrics,
            &latest_key(run.candidate_id, &point.key),
        )?;
        tx.delete(
            Table::MetricsByValue,
            &value_key(run.experiment_id, &point.key, point.value, run.candidate_id),
        )?;
    }
    Ok(())
}

/// Records a metric's count and latest row from its history (the upgrade's rebuild).
pub fn reindex(
    tx: &dyn Txn,
    run: Run,
    name: &str,
    count: usize,
    latest: &MetricPoint,
) -> Result<(), TxFail> {
    super::add_to_count(tx, &count_key(run.candidate_id, name), count as i64)?;
    // No tail: the next call starts a chunk of its own.
    let mut row = encode(latest).to_vec();
    row.truncate(24);
    tx.put(
        Table::LatestMetrics,
        &latest_key(run.candidate_id, name),
        &row,
    )?;
    tx.put(
        Table::MetricsByValue,
        &value_key(run.experiment_id, name, latest.value, run.candidate_id),
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_rows_round_trip_non_finite_values_and_tails() {
        for value in [1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0] {
            let point = MetricPoint {
                key: "loss".into(),
                value,
                timestamp: 1_700_000_000_000,
                step: -3,
            };
            let tail = Tail {
                first_step: -9,
                chunk_id: 77,
                count: 12,
                last: (5, 6, 7),
            };
            let back = decode_latest("loss", &encode_latest(&point, &tail));
            let p = back.point.unwrap();
            assert_eq!(p.value.to_bits(), value.to_bits());
            assert_eq!((p.timestamp, p.step), (point.timestamp, point.step));
            let t = back.tail.unwrap();
            assert_eq!(
                (t.first_step, t.chunk_id, t.count, t.last),
                (-9, 77, 12, (5, 6, 7))
            );
            assert!(decode_latest("loss", &encode(&point)).tail.is_none());
        }
    }

    fn points(steps: impl Iterator<Item = i64>) -> Vec<MetricPoint> {
        steps
            .enumerate()
            .map(|(i, step)| MetricPoint {
                key: "loss".into(),
                value: i as f64,
                timestamp: 1_700_000_000_000 + i as i64,
                step,
            })
            .collect()
    }

    #[test]
    fn pieces_hold_at_most_a_chunk_and_never_split_a_step() {
        let logged = points((0..1000).map(|i| i / 3));
        let sorted: Vec<&MetricPoint> = logged.iter().collect();
        let cut: Vec<&[&MetricPoint]> = pieces(&sorted).collect();
        assert_eq!(cut.iter().map(|p| p.len()).sum::<usize>(), 1000);
        for (a, b) in cut.iter().zip(cut.iter().skip(1)) {
            assert!(a.len() <= CHUNK_POINTS + 2, "{} points in a chunk", a.len());
            assert!(
                a[a.len() - 1].step < b[0].step,
                "a step split over two chunks"
            );
        }
        let one_step = points(std::iter::repeat_n(4, 300));
        let sorted: Vec<&MetricPoint> = one_step.iter().collect();
        assert_eq!(pieces(&sorted).count(), 1);
    }

    #[test]
    fn large_calls_are_stored_in_small_chunks_and_read_back_whole() {
        use crate::store::meta::TxError;
        use crate::store::sled_meta::SledMeta;
        let dir = tempfile::tempdir().unwrap();
        let sled = SledMeta::open(dir.path(), 1 << 20).unwrap();
        let meta: &dyn MetaStore = &sled;
        let run = Run {
            candidate_id: 7,
            experiment_id: 1,
        };
        let first = points(0..1000);
        let second = points(1000..1100);
        for (call, logged) in [(100, &first), (101, &second)] {
            meta.transaction(|tx| {
                log(tx, run, logged, call)?;
                Ok::<_, TxError<StoreError>>(())
            })
            .unwrap();
        }
        let chunks: Vec<usize> = meta
            .scan(Table::Metrics, &super::super::id_key(7))
            .map(|row| row.unwrap().1.len() / 24)
            .collect();
        assert!(chunks.len() >= 1100 / CHUNK_POINTS, "{chunks:?}");
        assert!(chunks.iter().all(|n| *n <= CHUNK_POINTS), "{chunks:?}");
        let back = history(meta, 7, Some("loss")).unwrap();
        let steps: Vec<i64> = back.iter().map(|p| p.step).collect();
        assert_eq!(steps, (0..1100).collect::<Vec<_>>());
        assert_eq!(count_of(meta, 7, "loss").unwrap(), 1100);
        assert_eq!(latest(meta, 7, "loss").unwrap().unwrap().step, 1099);
    }
}
