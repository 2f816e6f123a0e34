//! Searching an experiment's runs with MLflow's filter and order-by syntax: the MLflow API's
//! `runs/search` and the web UI's runs table.
//!
//! A search walks one ordered index and tests each run it meets with point reads of the fields
//! its filter names (a param, a tag, the latest value of a metric: never a history), until the
//! page is full:
//! - by start time (the default, newest first) or by name: the experiments' run indexes; with a
//!   `params.<key> = '<value>'` clause, the index of the runs with that param value instead;
//! - by a metric: every run by its latest value of the metric, starting at the bound that the
//!   filter's clauses on that metric give and stopping at the other one; runs without the metric
//!   follow, newest first;
//! - by anything else (several order clauses, a param, a tag, another attribute): every run of
//!   the experiments, sorted (the one order whose cost grows with the experiment, not the page).
//!
//! Page tokens are cursors into the walked index (`k`, `p` and `m` followed by the key), or an
//! offset (`o`) for sorted searches.

use base64::Engine;

use super::candidates::RunOrder;
use super::error::{Error, Result};
use super::ml_records::{Candidate, Lifecycle, TagOwner};
use super::schema::merge_sorted;
use super::schema::metrics::ValueRange;
use super::search_syntax::{self, Clause, FieldKind, FieldValue, Literal, Op, OrderBy};
use super::Registry;

/// What to search for.
#[derive(Debug, Clone)]
pub struct RunQuery {
    pub experiments: Vec<u64>,
    pub clauses: Vec<Clause>,
    pub order: Vec<OrderBy>,
    pub lifecycles: Vec<Lifecycle>,
    pub max_results: usize,
    /// The `next_token` of the previous page.
    pub page_token: Option<String>,
}

/// One page of runs and the token of the next page, when there is one.
#[derive(Debug, Clone)]
pub struct RunPage {
    pub runs: Vec<Candidate>,
    pub next_token: Option<String>,
}

/// A run's fields as a search reads them: each on first use, one point read each.
pub struct RunFields<'a> {
    registry: &'a Registry,
    pub candidate: Candidate,
}

impl<'a> RunFields<'a> {
    pub fn new(registry: &'a Registry, candidate: Candidate) -> Self {
        RunFields {
            registry,
            candidate,
        }
    }

    pub fn field(&self, field: &search_syntax::Field) -> Option<FieldValue> {
        let text = |s: &str| Some(FieldValue::Str(s.to_string()));
        let id = self.candidate.id;
        match field.kind {
            FieldKind::Param => self
                .registry
                .param(id, &field.name)
                .ok()
                .flatten()
                .map(FieldValue::Str),
            FieldKind::Tag => self
                .registry
                .tag(TagOwner::Candidate(id), &field.name)
                .ok()
                .flatten()
                .map(FieldValue::Str),
            FieldKind::Metric => self
                .registry
                .latest_metric(id, &field.name)
                .ok()
                .flatten()
                .map(|m| FieldValue::Num(m.value)),
            FieldKind::Attribute => match field.name.as_str() {
                "status" => text(self.candidate.status.as_str()),
                "run_name" | "name" => text(&self.candidate.name),
                "run_id" | "run_uuid" => text(&self.candidate.run_id),
                "user_id" => self
                    .candidate
                    .user_id
                    .and_then(|id| self.registry.user(id).ok())
                    .and_then(|u| text(&u.username)),
                "start_time" | "created" => Some(FieldValue::Num(self.candidate.start_time as f64)),
                "end_time" => self.candidate.end_time.map(|t| FieldValue::Num(t as f64)),
                "duration" => self
                    .candidate
                    .end_time
                    .map(|end| FieldValue::Num((end - self.candidate.start_time) as f64)),
                "lifecycle_stage" => text(self.candidate.lifecycle.as_str()),
                _ => None,
            },
        }
    }

    fn matches(&self, clauses: &[Clause]) -> bool {
        search_syntax::matches(clauses, |f| self.field(f))
    }
}

/// How a search walks the runs.
enum Walk {
    Index(RunOrder, bool),
    Param {
        key: String,
        value: String,
        descending: bool,
    },
    Metric(String, bool),
    Sorted,
}

/// A `params.<key> = '<value>'` clause, whose runs an index lists.
fn param_equality(clauses: &[Clause]) -> Option<(String, String)> {
    clauses
        .iter()
        .find_map(|c| match (c.field.kind, c.op, &c.value) {
            (FieldKind::Param, Op::Eq, Literal::Str(v)) => Some((c.field.name.clone(), v.clone())),
            _ => None,
        })
}

/// The bounds the filter's clauses put on a metric's value.
fn metric_range(clauses: &[Clause], metric: &str) -> ValueRange {
    let mut range = ValueRange::default();
    for c in clauses {
        if c.field.kind != FieldKind::Metric || c.field.name != metric {
            continue;
        }
        let Literal::Num(v) = c.value else { continue };
        if v.is_nan() {
            continue;
        }
        let raise = |lo: Option<f64>| Some(lo.map_or(v, |lo: f64| lo.max(v)));
        let lower = |hi: Option<f64>| Some(hi.map_or(v, |hi: f64| hi.min(v)));
        match c.op {
            Op::Gt | Op::Ge => range.lo = raise(range.lo),
            Op::Lt | Op::Le => range.hi = lower(range.hi),
            Op::Eq => {
                range.lo = raise(range.lo);
                range.hi = lower(range.hi);
            }
            _ => {}
        }
    }
    range
}

fn walk_for(order: &[OrderBy], clauses: &[Clause]) -> Walk {
    let by_start = |descending: bool| match param_equality(clauses) {
        Some((key, value)) => Walk::Param {
            key,
            value,
            descending,
        },
        None => Walk::Index(RunOrder::StartTime, descending),
    };
    match order {
        [] => by_start(true),
        [one] => match (one.field.kind, one.field.name.as_str()) {
            (FieldKind::Attribute, "start_time" | "created") => by_start(one.descending),
            (FieldKind::Attribute, "run_name" | "name") => {
                Walk::Index(RunOrder::Name, one.descending)
            }
            (FieldKind::Metric, name) => Walk::Metric(name.to_string(), one.descending),
            _ => Walk::Sorted,
        },
        _ => Walk::Sorted,
    }
}

enum Token {
    Start,
    Key(Vec<u8>),
    MissingMetric(Vec<u8>),
    Offset(usize),
}

fn bad_token(t: &str) -> Error {
    Error::bad(format!("Invalid page token '{t}'"))
}

fn parse_token(raw: Option<&str>) -> Result<Token> {
    let decode = |t: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .map_err(|_| bad_token(t))
    };
    match raw.filter(|t| !t.is_empty()) {
        None => Ok(Token::Start),
        Some(t) => match t.split_at_checked(1) {
            Some(("k" | "p", rest)) => Ok(Token::Key(decode(rest)?)),
            Some(("m", rest)) => Ok(Token::MissingMetric(decode(rest)?)),
            Some(("o", rest)) => rest.parse().map(Token::Offset).map_err(|_| bad_token(t)),
            _ => Err(bad_token(t)),
        },
    }
}

/// A cursor as a page token.
pub fn key_token(kind: char, key: &[u8]) -> String {
    format!(
        "{kind}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
    )
}

/// The cursor of a page token made by [`key_token`].
pub fn token_key(raw: Option<&str>) -> Result<Option<Vec<u8>>> {
    match parse_token(raw)? {
        Token::Start => Ok(None),
        Token::Key(k) => Ok(Some(k)),
        _ => Err(Error::bad("Invalid page token")),
    }
}

/// Takes matching runs from an ordered stream until the page is full; the key of the last one
/// taken when more may follow.
fn fill(
    registry: &Registry,
    stream: impl Iterator<Item = Result<(Vec<u8>, Candidate)>>,
    clauses: &[Clause],
    max: usize,
    out: &mut Vec<Candidate>,
) -> Result<Option<Vec<u8>>> {
    let mut last = None;
    for entry in stream {
        let (key, candidate) = entry?;
        let fields = RunFields::new(registry, candidate);
        if fields.matches(clauses) {
            if out.len() == max {
                return Ok(last);
            }
            out.push(fields.candidate);
            last = Some(key);
        }
    }
    Ok(None)
}

impl Registry {
    /// One page of the runs of some experiments that match a filter, in the order asked for.
    pub fn search_runs(&self, query: &RunQuery) -> Result<RunPage> {
        let max = query.max_results.max(1);
        let lifecycles = &query.lifecycles;
        let experiments = &query.experiments;
        let clauses = &query.clauses;
        let admitted = |entry: &Result<(Vec<u8>, Candidate)>| match entry {
            Ok((_, c)) => lifecycles.contains(&c.lifecycle),
            Err(_) => true,
        };
        let token = parse_token(query.page_token.as_deref())?;
        let mut found = Vec::new();
        let next = match (walk_for(&query.order, clauses), token) {
            (Walk::Index(order, descending), token @ (Token::Start | Token::Key(_))) => {
                let after = match &token {
                    Token::Key(k) => Some(k.as_slice()),
                    _ => None,
                };
                let stream =
                    self.candidates_stream(experiments, lifecycles, order, descending, after);
                fill(self, stream, clauses, max, &mut found)?.map(|k| key_token('k', &k))
            }
            (
                Walk::Param {
                    key,
                    value,
                    descending,
                },
                token @ (Token::Start | Token::Key(_)),
            ) => {
                let after = match &token {
                    Token::Key(k) => Some(k.clone()),
                    _ => None,
                };
                let offset = Registry::param_stream_prefix_len(&key, &value);
                let streams: Vec<_> = experiments
                    .iter()
                    .map(|e| {
                        let stream = self.candidates_with_param(
                            *e,
                            &key,
                            &value,
                            descending,
                            after.as_deref(),
                        );
                        (offset, stream)
                    })
                    .collect();
                let merged =
                    merge_sorted(streams, |entry: &(Vec<u8>, Candidate)| &entry.0, descending)
                        .filter(admitted);
                fill(self, merged, clauses, max, &mut found)?.map(|k| key_token('p', &k))
            }
            (
                Walk::Metric(metric, descending),
                token @ (Token::Start | Token::Key(_) | Token::MissingMetric(_)),
            ) => self.search_by_metric(query, &metric, descending, token, &mut found)?,
            (_, token) => {
                let start = match token {
                    Token::Offset(n) => n,
                    Token::Start => 0,
                    _ => return Err(Error::bad("Invalid page token for this order_by")),
                };
                // Each run's sort values are read once, not at every comparison.
                let mut all = Vec::new();
                for entry in
                    self.candidates_stream(experiments, lifecycles, RunOrder::StartTime, true, None)
                {
                    let (_, candidate) = entry?;
                    let fields = RunFields::new(self, candidate);
                    if fields.matches(clauses) {
                        let keys: Vec<Option<FieldValue>> =
                            query.order.iter().map(|o| fields.field(&o.field)).collect();
                        all.push((keys, fields));
                    }
                }
                all.sort_by(|(a_keys, a), (b_keys, b)| {
                    query
                        .order
                        .iter()
                        .zip(a_keys.iter().zip(b_keys))
                        .map(|(o, (x, y))| {
                            let ord = search_syntax::compare(x.as_ref(), y.as_ref());
                            if o.descending {
                                ord.reverse()
                            } else {
                                ord
                            }
                        })
                        .find(|o| o.is_ne())
                        .unwrap_or_else(|| b.candidate.start_time.cmp(&a.candidate.start_time))
                });
                let end = start.saturating_add(max);
                let next = (end < all.len()).then(|| format!("o{end}"));
                found = all
                    .into_iter()
                    .skip(start)
                    .take(max)
                    .map(|(_, f)| f.candidate)
                    .collect();
                next
            }
        };
        Ok(RunPage {
            runs: found,
            next_token: next,
        })
    }

    /// Runs by a metric's latest value, within the bounds the filter gives, then the runs
    /// without the metric, newest first.
    fn search_by_metric(
        &self,
        query: &RunQuery,
        metric: &str,
        descending: bool,
        token: Token,
        found: &mut Vec<Candidate>,
    ) -> Result<Option<String>> {
        let max = query.max_results.max(1);
        let lifecycles = &query.lifecycles;
        let mut next = None;
        if !matches!(token, Token::MissingMetric(_)) {
            let after = match &token {
                Token::Key(k) => Some(k.clone()),
                _ => None,
            };
            let range = metric_range(&query.clauses, metric);
            let offset = Registry::metric_stream_prefix_len(metric);
            let streams: Vec<_> = query
                .experiments
                .iter()
                .map(|e| {
                    let stream =
                        self.candidates_by_metric(*e, metric, descending, after.as_deref(), range);
                    (offset, stream)
                })
                .collect();
            let merged = merge_sorted(streams, |entry: &(Vec<u8>, Candidate)| &entry.0, descending)
                .filter(|entry| match entry {
                    Ok((_, c)) => lifecycles.contains(&c.lifecycle),
                    Err(_) => true,
                });
            next = fill(self, merged, &query.clauses, max, found)?.map(|k| key_token('k', &k));
        }
        // Runs without the metric match no clause on it: only a filter without one admits them.
        let without_possible = !query
            .clauses
            .iter()
            .any(|c| c.field.kind == FieldKind::Metric && c.field.name == metric && c.op != Op::Ne);
        if next.is_none() && without_possible {
            if found.len() == max && !matches!(token, Token::MissingMetric(_)) {
                // The metric's runs filled the page exactly: the runs without it come next.
                next = Some(key_token('m', &[]));
            } else if found.len() < max {
                let after = match &token {
                    Token::MissingMetric(k) if !k.is_empty() => Some(k.as_slice()),
                    _ => None,
                };
                let without = self
                    .candidates_stream(
                        &query.experiments,
                        lifecycles,
                        RunOrder::StartTime,
                        true,
                        after,
                    )
                    .filter(|entry| match entry {
                        Ok((_, c)) => matches!(self.latest_metric(c.id, metric), Ok(None)),
                        Err(_) => true,
                    });
                let room = max - found.len();
                let mut rest = Vec::new();
                next = fill(self, without, &query.clauses, room, &mut rest)?
                    .map(|k| key_token('m', &k));
                found.extend(rest);
            }
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::search_syntax::parse_filter;

    #[test]
    fn plans_follow_the_filter_and_the_order() {
        let clauses =
            parse_filter("metrics.auc > 0.9 and metrics.auc <= 0.99 and params.lr = '0.1'")
                .unwrap();
        assert_eq!(
            metric_range(&clauses, "auc"),
            ValueRange {
                lo: Some(0.9),
                hi: Some(0.99)
            }
        );
        assert_eq!(metric_range(&clauses, "loss"), ValueRange::default());
        assert!(matches!(
            walk_for(&[], &clauses),
            Walk::Param { ref key, ref value, descending: true } if key == "lr" && value == "0.1"
        ));
        let by_metric = search_syntax::parse_order_by(&["metrics.auc DESC".into()]).unwrap();
        assert!(matches!(walk_for(&by_metric, &clauses), Walk::Metric(ref m, true) if m == "auc"));
        let two = search_syntax::parse_order_by(&["metrics.auc".into(), "name".into()]).unwrap();
        assert!(matches!(walk_for(&two, &[]), Walk::Sorted));
        assert!(parse_token(Some("zzz")).is_err());
        assert!(parse_token(Some("k%%")).is_err());
        assert!(matches!(parse_token(Some("o12")), Ok(Token::Offset(12))));
    }
}
