//! The history of a model's aliases: one record per move, keyed `(model, alias, seq)` so that a
//! reversed scan lists an alias's moves newest first.

use super::counters::{self, Sequence};
use super::{key, Schema, Seek};
use crate::domain::event_records::AliasMove;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct AliasMoves;

fn prefix(model_id: u64, alias: &str) -> Vec<u8> {
    key().id(model_id).str(alias).build()
}

fn count_key(model_id: u64, alias: &str) -> Vec<u8> {
    key().str("alias_moves").id(model_id).str(alias).build()
}

impl Schema for AliasMoves {
    type Record = AliasMove;
    const TABLE: Table = Table::AliasMoves;

    fn key(m: &AliasMove) -> Vec<u8> {
        key().id(m.model_id).str(&m.alias).id(m.seq).build()
    }

    fn counted(m: &AliasMove) -> Vec<Vec<u8>> {
        vec![count_key(m.model_id, &m.alias)]
    }
}

/// The next sequence number of an alias's moves. The sequence is per model: moves of all the
/// model's aliases share it, which keeps each alias's moves in order.
pub fn next_seq(tx: &dyn Txn, model_id: u64) -> Result<u64, TxFail> {
    counters::next(tx, model_id, Sequence::AliasMove)
}

pub fn count_of(meta: &dyn MetaStore, model_id: u64, alias: &str) -> Result<usize, StoreError> {
    super::count(meta, &count_key(model_id, alias))
}

/// A page of an alias's moves, newest first.
pub fn page_of(
    meta: &dyn MetaStore,
    model_id: u64,
    alias: &str,
    seek: &Seek,
    take: usize,
) -> Result<Vec<AliasMove>, StoreError> {
    let page = super::page(
        meta,
        Table::AliasMoves,
        &prefix(model_id, alias),
        true,
        seek,
        take,
    )?;
    page.entries
        .iter()
        .map(|(_, value)| crate::store::meta::decode(Table::AliasMoves, value))
        .collect()
}

/// Writes a move.
pub fn record(tx: &dyn Txn, m: &AliasMove) -> Result<(), TxFail> {
    super::put::<AliasMoves>(tx, m)?;
    Ok(())
}
