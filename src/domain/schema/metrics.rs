//! Metrics of candidates. Three tables:
//! - history: `(candidate, key, step, timestamp, value bits) → point`, so a history scans in step
//!   order and logging the same point twice keeps it once (MLflow's rule);
//! - latest: `(candidate, key) → point`, the point with the highest step, then timestamp
//!   (MLflow's `latest_metrics`), kept on write so that nothing reads a history to show a run;
//! - by value: `(experiment, key, value, candidate)`, every run's latest value in number order, so
//!   that a run search ordered or filtered by a metric walks an index.

use std::collections::HashMap;

use super::revisions::{self, Parent};
use super::{id_key, key, sortable_f64, sortable_i64, IndexEntry, Seek};
use crate::domain::ml_records::MetricPoint;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

/// The run a metric belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub candidate_id: u64,
    pub experiment_id: u64,
}

fn history_key(candidate_id: u64, point: &MetricPoint) -> Vec<u8> {
    key()
        .id(candidate_id)
        .str(&point.key)
        .raw(&sortable_i64(point.step))
        .raw(&sortable_i64(point.timestamp))
        .raw(&point.value.to_bits().to_be_bytes())
        .build()
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

/// A history row as a point (the upgrade reads histories whole).
pub fn decode_history_row(k: &[u8], value: &[u8]) -> Result<MetricPoint, StoreError> {
    decode_row(k, value)
}

/// Which of two points of one metric is the latest: higher step, then later timestamp, then
/// the order of the history (value bits).
fn order_of(point: &MetricPoint) -> (i64, i64, u64) {
    (point.step, point.timestamp, point.value.to_bits())
}

/// Records points; keeps each metric's latest point and its place in the by-value index.
pub fn log(tx: &dyn Txn, run: Run, points: &[MetricPoint]) -> Result<(), TxFail> {
    if points.is_empty() {
        return Ok(());
    }
    let mut newest: HashMap<&str, &MetricPoint> = HashMap::new();
    let mut added: HashMap<&str, i64> = HashMap::new();
    for point in points {
        let row = history_key(run.candidate_id, point);
        // The same point twice is kept once (MLflow's rule) and counted once.
        if tx.get(Table::Metrics, &row)?.is_none() {
            tx.put(Table::Metrics, &row, &encode(point))?;
            *added.entry(point.key.as_str()).or_default() += 1;
        }
        newest
            .entry(point.key.as_str())
            .and_modify(|best| {
                if order_of(point) > order_of(best) {
                    *best = point;
                }
            })
            .or_insert(point);
    }
    for (name, n) in added {
        super::add_to_count(tx, &count_key(run.candidate_id, name), n)?;
    }
    for (name, point) in newest {
        let latest = latest_key(run.candidate_id, name);
        let previous = match tx.get(Table::LatestMetrics, &latest)? {
            Some(bytes) => decode(name.to_string(), &bytes),
            None => None,
        };
        if previous
            .as_ref()
            .is_some_and(|p| order_of(p) >= order_of(point))
        {
            continue;
        }
        if let Some(previous) = &previous {
            tx.delete(
                Table::MetricsByValue,
                &value_key(run.experiment_id, name, previous.value, run.candidate_id),
            )?;
        }
        tx.put(Table::LatestMetrics, &latest, &encode(point))?;
        tx.put(
            Table::MetricsByValue,
            &value_key(run.experiment_id, name, point.value, run.candidate_id),
            &[],
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
    let prefix = match name {
        Some(name) => latest_key(candidate_id, name),
        None => id_key(candidate_id),
    };
    meta.scan(Table::Metrics, &prefix)
        .map(|entry| {
            let (k, v) = entry?;
            decode_row(&k, &v)
        })
        .collect()
}

/// A page of one metric's history in step order, and the cursor after it.
pub fn history_page(
    meta: &dyn MetaStore,
    candidate_id: u64,
    name: &str,
    seek: &Seek,
    take: usize,
) -> Result<(Vec<MetricPoint>, Option<Vec<u8>>), StoreError> {
    let prefix = latest_key(candidate_id, name);
    let page = super::page(meta, Table::Metrics, &prefix, false, seek, take)?;
    let points = page
        .entries
        .iter()
        .map(|(k, v)| decode_row(k, v))
        .collect::<Result<_, _>>()?;
    Ok((points, page.next))
}

/// How many points of one metric are recorded (a kept count).
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

/// About `max_points` points of one metric spread evenly over its history by position in the
/// step order, always with the first and the last: what a chart draws. The kept count says how
/// many points there are; each sample is one seek, so a long history is not read.
pub fn sample(
    meta: &dyn MetaStore,
    candidate_id: u64,
    name: &str,
    max_points: usize,
) -> Result<Vec<MetricPoint>, StoreError> {
    let max_points = max_points.max(2);
    let total = count_of(meta, candidate_id, name)?;
    let prefix = latest_key(candidate_id, name);
    if total <= max_points {
        return history(meta, candidate_id, Some(name));
    }
    // Positions are by step then timestamp: sample the step/timestamp range evenly.
    let first = meta.scan(Table::Metrics, &prefix).next().transpose()?;
    let last = meta.scan_rev(Table::Metrics, &prefix).next().transpose()?;
    let (Some((first_key, first_value)), Some((last_key, last_value))) = (first, last) else {
        return Ok(Vec::new());
    };
    let position = |k: &[u8]| -> u128 {
        let mut bytes = [0u8; 16];
        if let Some(order) = k.get(prefix.len()..prefix.len() + 16) {
            bytes.copy_from_slice(order);
        }
        u128::from_be_bytes(bytes)
    };
    let start = position(&first_key);
    let span = position(&last_key).saturating_sub(start);
    let parts = (max_points - 1) as u128;
    let mut out = vec![decode_row(&first_key, &first_value)?];
    let mut previous = first_key.clone();
    for i in 1..parts {
        let target = start + span / parts * i + span % parts * i / parts;
        let mut from = prefix.clone();
        from.extend_from_slice(&target.to_be_bytes());
        let Some(entry) = meta.scan_from(Table::Metrics, &prefix, &from).next() else {
            break;
        };
        let (k, v) = entry?;
        if k == previous || k >= last_key {
            continue;
        }
        out.push(decode_row(&k, &v)?);
        previous = k;
    }
    out.push(decode_row(&last_key, &last_value)?);
    Ok(out)
}

/// Whether a cursor is a key of one metric's history.
pub fn history_cursor_fits(candidate_id: u64, name: &str, cursor: &[u8]) -> bool {
    cursor.starts_with(&latest_key(candidate_id, name))
}

/// The latest point of each of a candidate's metrics, by metric name.
pub fn latest_all(meta: &dyn MetaStore, candidate_id: u64) -> Result<Vec<MetricPoint>, StoreError> {
    meta.scan(Table::LatestMetrics, &id_key(candidate_id))
        .map(|entry| {
            let (k, v) = entry?;
            decode_row(&k, &v)
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
    history: Vec<Vec<u8>>,
    latest: Vec<MetricPoint>,
}

impl Owned {
    /// The names of the metrics (their counts go with them).
    fn names(&self) -> impl Iterator<Item = &str> {
        self.latest.iter().map(|p| p.key.as_str())
    }
}

pub fn owned(meta: &dyn MetaStore, candidate_id: u64) -> Result<Owned, StoreError> {
    let history = meta
        .scan_keys(Table::Metrics, &id_key(candidate_id))
        .collect::<Result<_, _>>()?;
    Ok(Owned {
        history,
        latest: latest_all(meta, candidate_id)?,
    })
}

/// Removes everything [`owned`] listed.
pub fn purge(tx: &dyn Txn, run: Run, owned: &Owned) -> Result<(), TxFail> {
    for k in &owned.history {
        tx.delete(Table::Metrics, k)?;
    }
    for name in owned.names() {
        tx.delete(Table::Counts, &count_key(run.candidate_id, name))?;
    }
    for point in &owned.latest {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_non_finite_values() {
        for value in [1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0] {
            let point = MetricPoint {
                key: "loss".into(),
                value,
                timestamp: 1_700_000_000_000,
                step: -3,
            };
            let k = history_key(9, &point);
            let back = decode_row(&k, &encode(&point)).unwrap();
            assert_eq!(back.key, "loss");
            assert_eq!(back.value.to_bits(), value.to_bits());
            assert_eq!((back.timestamp, back.step), (point.timestamp, point.step));
        }
    }
}
