//! Candidates (MLflow runs): found by run id and by per-project iid; listed per experiment in
//! creation order, by start time and by name, each split by lifecycle so that deleted runs are a
//! different prefix; counted per experiment and lifecycle.

use super::revisions::Parent;
use super::{count, id_key, key, merge_streams, Index, IndexEntry, Schema};
use crate::domain::ml_records::{Candidate, Lifecycle};
use crate::store::meta::{KvIter, MetaStore, StoreError, Table, TxFail, Txn};

pub struct Candidates;

/// The orders of [`stream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Created,
    StartTime,
    Name,
}

fn lifecycle_byte(lifecycle: Lifecycle) -> u8 {
    match lifecycle {
        Lifecycle::Active => 0,
        Lifecycle::Deleted => 1,
    }
}

fn run_id_key(run_id: &str) -> Vec<u8> {
    key().str(run_id).build()
}

fn iid_key(project_id: u64, iid: u64) -> Vec<u8> {
    key().id(project_id).id(iid).build()
}

fn listing_prefix(experiment_id: u64, lifecycle: Lifecycle) -> Vec<u8> {
    key()
        .id(experiment_id)
        .raw(&[lifecycle_byte(lifecycle)])
        .build()
}

const LISTING_PREFIX_LEN: usize = 9;

fn entry_by_run_id(c: &Candidate) -> Option<IndexEntry> {
    Some((run_id_key(&c.run_id), id_key(c.id)))
}

fn entry_by_iid(c: &Candidate) -> Option<IndexEntry> {
    Some((iid_key(c.project_id, c.iid), id_key(c.id)))
}

fn entry_by_experiment(c: &Candidate) -> Option<IndexEntry> {
    Some((key().id(c.experiment_id).id(c.id).build(), Vec::new()))
}

fn entry_by_start(c: &Candidate) -> Option<IndexEntry> {
    let k = key()
        .raw(&listing_prefix(c.experiment_id, c.lifecycle))
        .raw(&super::sortable_i64(c.start_time))
        .id(c.id)
        .build();
    Some((k, Vec::new()))
}

fn entry_by_name(c: &Candidate) -> Option<IndexEntry> {
    let k = key()
        .raw(&listing_prefix(c.experiment_id, c.lifecycle))
        .str(&c.name)
        .id(c.id)
        .build();
    Some((k, Vec::new()))
}

const INDEXES: &[Index<Candidate>] = &[
    Index {
        table: Table::CandidatesByRunId,
        entry: entry_by_run_id,
    },
    Index {
        table: Table::CandidatesByIid,
        entry: entry_by_iid,
    },
    Index {
        table: Table::CandidatesByExperiment,
        entry: entry_by_experiment,
    },
    Index {
        table: Table::CandidatesByStart,
        entry: entry_by_start,
    },
    Index {
        table: Table::CandidatesByName,
        entry: entry_by_name,
    },
];

fn count_key(experiment_id: u64, lifecycle: Lifecycle) -> Vec<u8> {
    key()
        .str("candidates")
        .raw(&listing_prefix(experiment_id, lifecycle))
        .build()
}

impl Schema for Candidates {
    type Record = Candidate;
    const TABLE: Table = Table::Candidates;

    fn audited(r: &Candidate) -> Option<super::audit_events::Target> {
        Some(super::audit_events::Target {
            entity_type: "Run",
            entity_id: r.id,
            project_id: Some(r.project_id),
            path: r.run_id.clone(),
        })
    }

    fn announce(c: &Candidate) -> Option<super::outbox::Announce> {
        Some(super::outbox::Announce {
            flag: "run_events",
            kind: "run",
            project_id: c.project_id,
            path: format!("/api/v4/projects/{}/ml/candidates/{}", c.project_id, c.iid),
        })
    }

    fn key(c: &Candidate) -> Vec<u8> {
        id_key(c.id)
    }

    fn indexes() -> &'static [Index<Candidate>] {
        INDEXES
    }

    fn counted(c: &Candidate) -> Vec<Vec<u8>> {
        vec![count_key(c.experiment_id, c.lifecycle)]
    }

    fn parent(c: &Candidate) -> Option<Parent> {
        Some(Parent::Experiment(c.experiment_id))
    }
}

pub fn get(meta: &dyn MetaStore, id: u64) -> Result<Option<Candidate>, StoreError> {
    super::get::<Candidates>(meta, &id_key(id))
}

pub fn load(tx: &dyn Txn, id: u64) -> Result<Option<Candidate>, TxFail> {
    super::load::<Candidates>(tx, &id_key(id))
}

pub fn by_run_id(meta: &dyn MetaStore, run_id: &str) -> Result<Option<Candidate>, StoreError> {
    super::get_by_index::<Candidates>(meta, Table::CandidatesByRunId, &run_id_key(run_id))
}

pub fn by_iid(
    meta: &dyn MetaStore,
    project_id: u64,
    iid: u64,
) -> Result<Option<Candidate>, StoreError> {
    super::get_by_index::<Candidates>(meta, Table::CandidatesByIid, &iid_key(project_id, iid))
}

pub fn count_in(
    meta: &dyn MetaStore,
    experiment_id: u64,
    lifecycle: Lifecycle,
) -> Result<usize, StoreError> {
    count(meta, &count_key(experiment_id, lifecycle))
}

/// How many candidates in `lifecycle` each experiment has, in the order asked (one batched
/// read).
pub fn counts_in(
    meta: &dyn MetaStore,
    experiment_ids: &[u64],
    lifecycle: Lifecycle,
) -> Result<Vec<usize>, StoreError> {
    let keys: Vec<Vec<u8>> = experiment_ids
        .iter()
        .map(|id| count_key(*id, lifecycle))
        .collect();
    super::counts(meta, &keys)
}

/// Every candidate id of an experiment, oldest first.
pub fn ids_of(meta: &dyn MetaStore, experiment_id: u64) -> Result<Vec<u64>, StoreError> {
    super::all_ids(
        meta,
        Table::CandidatesByExperiment,
        &id_key(experiment_id),
        super::IdIn::Key,
    )
}

/// The candidates of some experiments and lifecycles in one order, merged, as index entries
/// (the candidate id ends each key). `after` continues after a key of this stream.
pub fn stream<'a>(
    meta: &'a dyn MetaStore,
    experiments: &[u64],
    lifecycles: &[Lifecycle],
    order: Order,
    descending: bool,
    after: Option<&[u8]>,
) -> Box<dyn Iterator<Item = Result<IndexEntry, StoreError>> + 'a> {
    if order == Order::Created {
        // Creation order is id order: experiments' id-ordered lists, lifecycle filtered later.
        let streams = experiments
            .iter()
            .map(|e| {
                let prefix = id_key(*e);
                let iter: KvIter<'a> = match after {
                    Some(after) => {
                        let mut from = prefix.clone();
                        from.extend_from_slice(after.get(8..).unwrap_or_default());
                        meta.scan_after(Table::CandidatesByExperiment, &prefix, &from, descending)
                    }
                    None if descending => meta.scan_rev(Table::CandidatesByExperiment, &prefix),
                    None => meta.scan(Table::CandidatesByExperiment, &prefix),
                };
                (8, iter)
            })
            .collect();
        return Box::new(merge_streams(streams, descending));
    }
    let table = match order {
        Order::Name => Table::CandidatesByName,
        _ => Table::CandidatesByStart,
    };
    let suffix = after.map(|a| a.get(LISTING_PREFIX_LEN..).unwrap_or_default().to_vec());
    let mut streams = Vec::new();
    for e in experiments {
        for l in lifecycles {
            let prefix = listing_prefix(*e, *l);
            let iter: KvIter<'a> = match &suffix {
                Some(suffix) => {
                    let mut from = prefix.clone();
                    from.extend_from_slice(suffix);
                    meta.scan_after(table, &prefix, &from, descending)
                }
                None if descending => meta.scan_rev(table, &prefix),
                None => meta.scan(table, &prefix),
            };
            streams.push((LISTING_PREFIX_LEN, iter));
        }
    }
    Box::new(merge_streams(streams, descending))
}

/// The candidate an entry of [`stream`] names.
pub fn candidate_of(entry: &IndexEntry) -> Option<u64> {
    super::trailing_id(&entry.0)
}
