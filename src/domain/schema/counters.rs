//! Per-project sequences (`iid`s of experiments and candidates), allocated inside the
//! transaction that uses the number.

use super::key;
use crate::store::meta::{Table, TxFail, Txn};

/// Which sequence.
#[derive(Debug, Clone, Copy)]
pub enum Sequence {
    ExperimentIid,
    CandidateIid,
    /// Per hook (keyed by the hook's id): the order of its deliveries.
    HookDelivery,
    /// Per model (keyed by the model's id) and alias: the order of the alias's moves.
    AliasMove,
}

impl Sequence {
    fn name(self) -> &'static str {
        match self {
            Sequence::ExperimentIid => "experiment_iid",
            Sequence::CandidateIid => "candidate_iid",
            Sequence::HookDelivery => "hook_delivery",
            Sequence::AliasMove => "alias_move",
        }
    }
}

/// The next number of a project's sequence.
pub fn next(tx: &dyn Txn, project_id: u64, sequence: Sequence) -> Result<u64, TxFail> {
    let k = key().id(project_id).str(sequence.name()).build();
    let next = tx
        .get(Table::Counters, &k)?
        .and_then(|v| super::trailing_id(&v))
        .unwrap_or(0)
        + 1;
    tx.put(Table::Counters, &k, &super::id_key(next))?;
    Ok(next)
}

/// Writes the time of a readiness probe (a write that proves the store takes writes).
pub fn stamp_readiness(tx: &dyn Txn, stamp: &str) -> Result<(), TxFail> {
    use crate::store::meta::TxnExt;
    tx.put_json(Table::Counters, b"readiness", &stamp)
}
