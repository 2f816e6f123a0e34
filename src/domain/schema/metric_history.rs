//! Metric histories, in chunks: the points one call logs for one metric are one row,
//! `(candidate, metric, first step, chunk id) → points`, sorted by step, timestamp and value.
//! A directory entry under the same key (`max step, count`) lets readers pick chunks without
//! reading their points. A history reads as a merge of its chunks in step order (chunks logged
//! out of order may overlap; identical points are kept once, MLflow's rule), and a page, a seek
//! or a chart sample fetches only the chunks it needs. One row per metric per call instead of
//! one per point is what lets a log-batch of 1,000 points be a handful of writes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::{key, sortable_i64};
use crate::domain::ml_records::MetricPoint;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

/// A point's place in a history: step, timestamp, value bits.
pub type Pos = (i64, i64, u64);

const POINT: usize = 24;

fn pos_of(point: &MetricPoint) -> Pos {
    (point.step, point.timestamp, point.value.to_bits())
}

/// `(candidate, metric)`: every chunk of one metric.
pub(crate) fn metric_prefix(candidate_id: u64, name: &str) -> Vec<u8> {
    key().id(candidate_id).str(name).build()
}

fn chunk_key(candidate_id: u64, name: &str, first_step: i64, chunk_id: u64) -> Vec<u8> {
    key()
        .raw(&metric_prefix(candidate_id, name))
        .raw(&sortable_i64(first_step))
        .id(chunk_id)
        .build()
}

fn encode_points(points: &[Pos]) -> Vec<u8> {
    let mut out = Vec::with_capacity(points.len() * POINT);
    for (step, timestamp, bits) in points {
        out.extend_from_slice(&step.to_be_bytes());
        out.extend_from_slice(&timestamp.to_be_bytes());
        out.extend_from_slice(&bits.to_be_bytes());
    }
    out
}

fn point_at(chunk: &[u8], i: usize) -> Option<Pos> {
    let raw = chunk.get(i * POINT..(i + 1) * POINT)?;
    let field = |r: std::ops::Range<usize>| -> Option<[u8; 8]> { raw.get(r)?.try_into().ok() };
    Some((
        i64::from_be_bytes(field(0..8)?),
        i64::from_be_bytes(field(8..16)?),
        u64::from_be_bytes(field(16..24)?),
    ))
}

fn points_in(chunk: &[u8]) -> usize {
    chunk.len() / POINT
}

/// The first index of a chunk whose point comes after `after`.
fn first_after(chunk: &[u8], after: Pos) -> usize {
    let (mut lo, mut hi) = (0, points_in(chunk));
    while lo < hi {
        let mid = (lo + hi) / 2;
        match point_at(chunk, mid) {
            Some(p) if p <= after => lo = mid + 1,
            _ => hi = mid,
        }
    }
    lo
}

fn encode_header(max_step: i64, count: usize) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..8].copy_from_slice(&max_step.to_be_bytes());
    out[8..].copy_from_slice(&(count as u32).to_be_bytes());
    out
}

/// A directory entry: the chunk's key, its first and last steps and how many points it holds.
#[derive(Debug, Clone)]
struct Chunk {
    key: Vec<u8>,
    first_step: i64,
    max_step: i64,
    count: usize,
}

fn chunk_of(prefix_len: usize, key: Vec<u8>, header: &[u8]) -> Option<Chunk> {
    let first: [u8; 8] = key.get(prefix_len..prefix_len + 8)?.try_into().ok()?;
    let first_step = (u64::from_be_bytes(first) ^ (1 << 63)) as i64;
    let max_step = i64::from_be_bytes(header.get(0..8)?.try_into().ok()?);
    let count = u32::from_be_bytes(header.get(8..12)?.try_into().ok()?) as usize;
    Some(Chunk {
        key,
        first_step,
        max_step,
        count,
    })
}

fn bad_chunk() -> StoreError {
    StoreError::Decode {
        table: Table::Metrics.name(),
        reason: "bad metric chunk".into(),
    }
}

/// Records one call's points of one metric as a chunk (sorted, identical points once);
/// returns how many points it holds.
pub fn append(
    tx: &dyn Txn,
    candidate_id: u64,
    name: &str,
    chunk_id: u64,
    points: &[&MetricPoint],
) -> Result<usize, TxFail> {
    let mut sorted: Vec<Pos> = points.iter().map(|p| pos_of(p)).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
        return Ok(0);
    };
    let k = chunk_key(candidate_id, name, first.0, chunk_id);
    tx.put(Table::Metrics, &k, &encode_points(&sorted))?;
    tx.put(
        Table::MetricChunks,
        &k,
        &encode_header(last.0, sorted.len()),
    )?;
    Ok(sorted.len())
}

/// Appends points that all come after a chunk's last to that chunk; returns how many.
pub fn extend(
    tx: &dyn Txn,
    candidate_id: u64,
    name: &str,
    first_step: i64,
    chunk_id: u64,
    sorted: &[&MetricPoint],
) -> Result<usize, TxFail> {
    let k = chunk_key(candidate_id, name, first_step, chunk_id);
    let mut points = tx.get(Table::Metrics, &k)?.unwrap_or_default();
    let added: Vec<Pos> = sorted.iter().map(|p| pos_of(p)).collect();
    points.extend_from_slice(&encode_points(&added));
    let max_step = added.last().map(|p| p.0).unwrap_or(first_step);
    tx.put(Table::Metrics, &k, &points)?;
    tx.put(
        Table::MetricChunks,
        &k,
        &encode_header(max_step, points_in(&points)),
    )?;
    Ok(added.len())
}

/// The last point of every chunk of one metric, and how many points they hold (what the
/// upgrade derives a metric's latest point and count from).
pub fn last_and_count(
    meta: &dyn MetaStore,
    candidate_id: u64,
    name: &str,
) -> Result<(Option<MetricPoint>, usize), StoreError> {
    let mut best: Option<Pos> = None;
    let mut count = 0;
    for chunk in directory(meta, candidate_id, name) {
        let chunk = chunk?;
        count += chunk.count;
        let points = meta
            .get(Table::Metrics, &chunk.key)?
            .ok_or_else(bad_chunk)?;
        if let Some(last) = points_in(&points)
            .checked_sub(1)
            .and_then(|i| point_at(&points, i))
        {
            if best.is_none_or(|b| last > b) {
                best = Some(last);
            }
        }
    }
    Ok((best.map(|p| point(name, p)), count))
}

/// The directory of one metric's chunks, by first step.
fn directory<'a>(
    meta: &'a dyn MetaStore,
    candidate_id: u64,
    name: &str,
) -> impl Iterator<Item = Result<Chunk, StoreError>> + 'a {
    let prefix = metric_prefix(candidate_id, name);
    let prefix_len = prefix.len();
    meta.scan(Table::MetricChunks, &prefix).map(move |entry| {
        let (k, header) = entry?;
        chunk_of(prefix_len, k, &header).ok_or_else(bad_chunk)
    })
}

/// The names of a candidate's metrics with their chunk keys (to delete them with it).
pub fn chunk_keys_of(meta: &dyn MetaStore, candidate_id: u64) -> Result<Vec<Vec<u8>>, StoreError> {
    meta.scan(Table::MetricChunks, &super::id_key(candidate_id))
        .map(|entry| entry.map(|(k, _)| k))
        .collect()
}

/// Removes chunks (and their directory entries) by key.
pub fn purge(tx: &dyn Txn, keys: &[Vec<u8>]) -> Result<(), TxFail> {
    for k in keys {
        tx.delete(Table::Metrics, k)?;
        tx.delete(Table::MetricChunks, k)?;
    }
    Ok(())
}

/// One metric's points in step order after `after` (all of them without it): a lazy merge of
/// its chunks that fetches a chunk only when the merge reaches its first step.
pub struct Merge<'a> {
    meta: &'a dyn MetaStore,
    /// Chunk bodies read ahead (by [`heads_of`]), taken before asking the store.
    preloaded: HashMap<Vec<u8>, Vec<u8>>,
    chunks: std::iter::Peekable<Box<dyn Iterator<Item = Result<Chunk, StoreError>> + 'a>>,
    open: Vec<(Vec<u8>, usize)>,
    heap: BinaryHeap<Reverse<(Pos, usize)>>,
    after: Option<Pos>,
    last: Option<Pos>,
    failed: bool,
}

impl<'a> Merge<'a> {
    pub fn new(meta: &'a dyn MetaStore, candidate_id: u64, name: &str, after: Option<Pos>) -> Self {
        let directory = directory(meta, candidate_id, name).collect::<Vec<_>>();
        Merge::over(meta, directory, HashMap::new(), after)
    }

    /// A merge of a directory already read, with some of its chunks' bodies.
    fn over(
        meta: &'a dyn MetaStore,
        directory: Vec<Result<Chunk, StoreError>>,
        preloaded: HashMap<Vec<u8>, Vec<u8>>,
        after: Option<Pos>,
    ) -> Self {
        let chunks: Box<dyn Iterator<Item = Result<Chunk, StoreError>> + 'a> =
            Box::new(directory.into_iter());
        Merge {
            meta,
            preloaded,
            chunks: chunks.peekable(),
            open: Vec::new(),
            heap: BinaryHeap::new(),
            after,
            last: None,
            failed: false,
        }
    }

    fn open_chunk(&mut self, chunk: Chunk) -> Result<(), StoreError> {
        if self.after.is_some_and(|after| chunk.max_step < after.0) {
            return Ok(());
        }
        let points = match self.preloaded.remove(&chunk.key) {
            Some(points) => points,
            None => self
                .meta
                .get(Table::Metrics, &chunk.key)?
                .ok_or_else(bad_chunk)?,
        };
        let start = match self.after {
            Some(after) => first_after(&points, after),
            None => 0,
        };
        if let Some(p) = point_at(&points, start) {
            let index = self.open.len();
            self.open.push((points, start));
            self.heap.push(Reverse((p, index)));
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Pos>, StoreError> {
        loop {
            // Open every chunk that could hold the smallest point not yet merged.
            loop {
                let open_next = match (self.chunks.peek(), self.heap.peek()) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(Ok(next)), Some(Reverse((top, _)))) => next.first_step <= top.0,
                    (Some(Err(_)), _) => true,
                };
                if !open_next {
                    break;
                }
                match self.chunks.next() {
                    Some(Ok(chunk)) => self.open_chunk(chunk)?,
                    Some(Err(error)) => return Err(error),
                    None => break,
                }
            }
            let Some(Reverse((p, index))) = self.heap.pop() else {
                return Ok(None);
            };
            let (points, at) = &mut self.open[index];
            *at += 1;
            if let Some(next) = point_at(points, *at) {
                self.heap.push(Reverse((next, index)));
            }
            if self.last == Some(p) {
                continue; // the same point logged twice
            }
            self.last = Some(p);
            return Ok(Some(p));
        }
    }
}

impl Iterator for Merge<'_> {
    type Item = Result<Pos, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.step() {
            Ok(Some(p)) => Some(Ok(p)),
            Ok(None) => None,
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}

/// The first `take` points of each `(candidate, metric)` in step order, and whether it has
/// more, in the order asked: every directory in one batched read, then in another the chunks
/// those points can be in (in first-step order until `take + 1` points are covered, and every
/// later one that starts no higher than a step covered). A merge that needs one more (the same
/// point logged twice) reads it on its own.
pub fn heads_of(
    meta: &dyn MetaStore,
    metrics: &[(u64, &str)],
    take: usize,
) -> Result<Vec<(Vec<MetricPoint>, bool)>, StoreError> {
    let prefixes: Vec<Vec<u8>> = metrics
        .iter()
        .map(|(candidate_id, name)| metric_prefix(*candidate_id, name))
        .collect();
    let directories: Vec<Vec<Chunk>> = meta
        .scan_many(Table::MetricChunks, &prefixes, usize::MAX)?
        .into_iter()
        .zip(&prefixes)
        .map(|(entries, prefix)| {
            entries
                .into_iter()
                .map(|(k, header)| chunk_of(prefix.len(), k, &header).ok_or_else(bad_chunk))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()?;
    let mut wanted = Vec::new();
    for chunks in &directories {
        let (mut covered, mut highest) = (0usize, i64::MIN);
        for chunk in chunks {
            if covered > take && chunk.first_step > highest {
                break;
            }
            covered += chunk.count;
            highest = highest.max(chunk.max_step);
            wanted.push(chunk.key.clone());
        }
    }
    let bodies = meta.get_many(Table::Metrics, &wanted)?;
    let mut preloaded: HashMap<Vec<u8>, Vec<u8>> = wanted
        .into_iter()
        .zip(bodies)
        .filter_map(|(key, body)| body.map(|body| (key, body)))
        .collect();
    directories
        .into_iter()
        .zip(metrics)
        .map(|(chunks, (_, name))| {
            let own = chunks
                .iter()
                .filter_map(|chunk| preloaded.remove_entry(&chunk.key))
                .collect();
            let mut merge = Merge::over(meta, chunks.into_iter().map(Ok).collect(), own, None);
            let mut points = Vec::with_capacity(take.min(4096));
            for p in merge.by_ref().take(take) {
                points.push(point(name, p?));
            }
            let more = merge.next().transpose()?.is_some();
            Ok((points, more))
        })
        .collect()
}

/// A position as a point of the metric `name`.
pub fn point(name: &str, (step, timestamp, bits): Pos) -> MetricPoint {
    MetricPoint {
        key: name.to_string(),
        value: f64::from_bits(bits),
        timestamp,
        step,
    }
}

/// A position as a cursor, and back.
pub fn cursor_of(p: Pos) -> Vec<u8> {
    let mut out = Vec::with_capacity(POINT);
    out.extend_from_slice(&encode_points(&[p]));
    out
}

pub fn pos_of_cursor(cursor: &[u8]) -> Option<Pos> {
    if cursor.len() != POINT {
        return None;
    }
    point_at(cursor, 0)
}

/// A point's place by step then timestamp as one number, for spreading samples evenly.
fn place(step: i64, timestamp: i64) -> u128 {
    (((step as u64) ^ (1 << 63)) as u128) << 64 | ((timestamp as u64) ^ (1 << 63)) as u128
}

fn unplace(place: u128) -> (i64, i64) {
    (
        (((place >> 64) as u64) ^ (1 << 63)) as i64,
        ((place as u64) ^ (1 << 63)) as i64,
    )
}

/// About `max_points` points spread evenly over a history by step then timestamp (first and
/// last included): the directory says which chunks hold the sampled places, and only those
/// are read.
pub fn sample(
    meta: &dyn MetaStore,
    candidate_id: u64,
    name: &str,
    max_points: usize,
) -> Result<Vec<MetricPoint>, StoreError> {
    let max_points = max_points.max(2);
    let chunks: Vec<Chunk> = directory(meta, candidate_id, name).collect::<Result<_, _>>()?;
    let total: usize = chunks.iter().map(|c| c.count).sum();
    if total <= max_points {
        return Merge::new(meta, candidate_id, name, None)
            .map(|p| p.map(|p| point(name, p)))
            .collect();
    }
    let mut fetched: std::collections::HashMap<Vec<u8>, Vec<u8>> = std::collections::HashMap::new();
    let mut fetch = |chunk: &Chunk| -> Result<Vec<u8>, StoreError> {
        if let Some(points) = fetched.get(&chunk.key) {
            return Ok(points.clone());
        }
        if fetched.len() > 64 {
            fetched.clear();
        }
        let points = meta
            .get(Table::Metrics, &chunk.key)?
            .ok_or_else(bad_chunk)?;
        fetched.insert(chunk.key.clone(), points.clone());
        Ok(points)
    };
    // The first and last places: the merge's first point, the highest chunk's last.
    let Some(first) = Merge::new(meta, candidate_id, name, None)
        .next()
        .transpose()?
    else {
        return Ok(Vec::new());
    };
    let max_step = chunks.iter().map(|c| c.max_step).max().unwrap_or(first.0);
    let mut last = first;
    for chunk in chunks.iter().filter(|c| c.max_step == max_step) {
        let points = fetch(chunk)?;
        if let Some(p) = points_in(&points)
            .checked_sub(1)
            .and_then(|i| point_at(&points, i))
        {
            last = last.max(p);
        }
    }
    let (start, end) = (place(first.0, first.1), place(last.0, last.1));
    let span = end.saturating_sub(start);
    let parts = (max_points - 1) as u128;
    let mut out: Vec<MetricPoint> = Vec::with_capacity(max_points);
    let mut previous: Option<Pos> = None;
    for i in 0..=parts {
        let (step, timestamp) = unplace(start + span / parts * i + span % parts * i / parts);
        // The first point at or after (step, timestamp): among the chunks (by first step) that
        // reach the step, until one starts after the best found.
        let mut best: Option<Pos> = None;
        for chunk in chunks.iter().filter(|c| c.max_step >= step) {
            if best.is_some_and(|b| chunk.first_step > b.0) {
                break;
            }
            let points = fetch(chunk)?;
            let at = match timestamp.checked_sub(1) {
                Some(before) => first_after(&points, (step, before, u64::MAX)),
                None => match step.checked_sub(1) {
                    Some(before) => first_after(&points, (before, i64::MAX, u64::MAX)),
                    None => 0,
                },
            };
            if let Some(p) = point_at(&points, at) {
                if best.is_none_or(|b| p < b) {
                    best = Some(p);
                }
            }
        }
        if let Some(p) = best {
            if previous.is_none_or(|prev| p > prev) {
                out.push(point(name, p));
                previous = Some(p);
            }
        }
    }
    if previous.is_some_and(|p| p < last) {
        out.push(point(name, last));
    }
    Ok(out)
}

/// Every metric of the store that has a history, as `(candidate, name)`, in key order (the
/// upgrade's rebuilds).
pub fn all_metrics(meta: &dyn MetaStore) -> Result<Vec<(u64, String)>, StoreError> {
    let mut out: Vec<(u64, String)> = Vec::new();
    for entry in meta.scan(Table::MetricChunks, &[]) {
        let (k, _) = entry?;
        let candidate_id = crate::store::keys::id_at(&k, 0).ok_or_else(bad_chunk)?;
        let rest = k.get(8..).ok_or_else(bad_chunk)?;
        let end = rest.iter().position(|b| *b == 0).ok_or_else(bad_chunk)?;
        let name = String::from_utf8(rest[..end].to_vec()).map_err(|_| bad_chunk())?;
        if out
            .last()
            .is_none_or(|(c, n)| *c != candidate_id || *n != name)
        {
            out.push((candidate_id, name));
        }
    }
    Ok(out)
}

/// Converts the first release's rows (one per point) of the store into chunks of at most
/// `per_chunk` points, in transactions of one chunk each (each converts its rows and removes
/// them, so an interrupted run resumes); returns how many points moved.
pub fn convert_point_rows(
    meta: &dyn MetaStore,
    per_chunk: usize,
    mut transact: impl FnMut(&mut dyn FnMut(&dyn Txn) -> Result<(), TxFail>) -> Result<(), StoreError>,
    mut next_id: impl FnMut() -> Result<u64, StoreError>,
) -> Result<usize, StoreError> {
    let mut moved = 0;
    loop {
        // One group's next run of old rows: same candidate and metric, at most `per_chunk`.
        let mut group: Option<(u64, String)> = None;
        let mut rows: Vec<(Vec<u8>, Pos)> = Vec::new();
        for entry in meta.scan(Table::Metrics, &[]) {
            let (k, v) = entry?;
            let Some(candidate_id) = crate::store::keys::id_at(&k, 0) else {
                continue;
            };
            let Some(rest) = k.get(8..) else { continue };
            let Some(end) = rest.iter().position(|b| *b == 0) else {
                continue;
            };
            // A first-release row ends with step, timestamp and value bits (24 bytes); a
            // chunk's key with first step and id (16).
            if rest.len() - end - 1 != POINT {
                continue;
            }
            let name = String::from_utf8_lossy(&rest[..end]).into_owned();
            if group
                .as_ref()
                .is_some_and(|(c, n)| *c != candidate_id || *n != name)
            {
                break;
            }
            let field =
                |r: std::ops::Range<usize>| -> Option<[u8; 8]> { v.get(r)?.try_into().ok() };
            let (Some(bits), Some(ts), Some(step)) = (field(0..8), field(8..16), field(16..24))
            else {
                continue;
            };
            group.get_or_insert((candidate_id, name));
            rows.push((
                k,
                (
                    i64::from_be_bytes(step),
                    i64::from_be_bytes(ts),
                    u64::from_be_bytes(bits),
                ),
            ));
            if rows.len() == per_chunk {
                break;
            }
        }
        let Some((candidate_id, name)) = group else {
            return Ok(moved);
        };
        let chunk_id = next_id()?;
        let points: Vec<MetricPoint> = rows.iter().map(|(_, p)| point(&name, *p)).collect();
        let refs: Vec<&MetricPoint> = points.iter().collect();
        transact(&mut |tx| {
            for (k, _) in &rows {
                tx.delete(Table::Metrics, k)?;
            }
            append(tx, candidate_id, &name, chunk_id, &refs)?;
            Ok(())
        })?;
        moved += rows.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_search_and_round_trip() {
        let points = [(1, 5, 9), (2, 0, 0), (2, 1, 3), (7, -1, 4)];
        let chunk = encode_points(&points);
        assert_eq!(points_in(&chunk), 4);
        assert_eq!(first_after(&chunk, (2, 0, 0)), 2);
        assert_eq!(first_after(&chunk, (0, 0, 0)), 0);
        assert_eq!(first_after(&chunk, (9, 0, 0)), 4);
        assert_eq!(point_at(&chunk, 3), Some((7, -1, 4)));
        assert_eq!(pos_of_cursor(&cursor_of((3, -4, 5))), Some((3, -4, 5)));
        assert_eq!(pos_of_cursor(b"short"), None);
    }
}
