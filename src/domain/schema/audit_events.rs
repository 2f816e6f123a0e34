//! The audit log: one [`AuditEvent`] per change, written by [`super::put`] and [`super::remove`]
//! (and by the few writes that are not records: tags, sign-ins, failed authentications,
//! downloads) inside the change's own transaction, while a write of the domain has an audit
//! context (see `crate::domain::audit`).
//!
//! Keyed by id; listed newest first from indexes ordered by time: all events
//! `(time, id)`, a project's `(project, time, id)`, an author's `(author, time, id)` and an
//! entity type's `(type, time, id)`. Each index entry's value carries what the filters look at
//! (author, entity id, entity type), so that a filtered page decodes only the events it returns.

use serde_json::Value;

use super::{id_key, key, sortable_i64, Index, IndexEntry, Schema};
use crate::domain::audit::{self, AuditEvent};
use crate::domain::records::Timestamp;
use crate::store::meta::{decode, MetaStore, StoreError, Table, TxFail, Txn};

pub struct AuditEvents;

/// What a change is about: the object's kind (GitLab's `entity_type`), id, project and path.
pub struct Target {
    pub entity_type: &'static str,
    pub entity_id: u64,
    pub project_id: Option<u64>,
    pub path: String,
}

fn time_part(at: &Timestamp) -> [u8; 8] {
    sortable_i64(at.timestamp_millis())
}

/// The first index key of events at `millis` or later under `prefix`.
pub fn time_bound(prefix: &[u8], millis: i64) -> Vec<u8> {
    key().raw(prefix).raw(&sortable_i64(millis)).build()
}

/// What a filter reads from an index entry: author (0: none), entity id, entity type.
fn filter_value(e: &AuditEvent) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + e.entity_type.len());
    v.extend_from_slice(&e.author_id.unwrap_or(0).to_be_bytes());
    v.extend_from_slice(&e.entity_id.to_be_bytes());
    v.extend_from_slice(e.entity_type.as_bytes());
    v
}

/// The parts of an index entry's value: author (0: none), entity id, entity type.
pub fn filter_parts(value: &[u8]) -> Option<(u64, u64, &[u8])> {
    let author = u64::from_be_bytes(value.get(0..8)?.try_into().ok()?);
    let entity = u64::from_be_bytes(value.get(8..16)?.try_into().ok()?);
    Some((author, entity, value.get(16..)?))
}

fn entry_by_time(e: &AuditEvent) -> Option<IndexEntry> {
    Some((
        key().raw(&time_part(&e.created_at)).id(e.id).build(),
        filter_value(e),
    ))
}

fn entry_by_project(e: &AuditEvent) -> Option<IndexEntry> {
    let project = e.project_id?;
    Some((
        key()
            .raw(&project_prefix(project))
            .raw(&time_part(&e.created_at))
            .id(e.id)
            .build(),
        filter_value(e),
    ))
}

fn entry_by_author(e: &AuditEvent) -> Option<IndexEntry> {
    let author = e.author_id?;
    Some((
        key()
            .raw(&author_prefix(author))
            .raw(&time_part(&e.created_at))
            .id(e.id)
            .build(),
        filter_value(e),
    ))
}

fn entry_by_type(e: &AuditEvent) -> Option<IndexEntry> {
    Some((
        key()
            .raw(&type_prefix(&e.entity_type))
            .raw(&time_part(&e.created_at))
            .id(e.id)
            .build(),
        filter_value(e),
    ))
}

pub fn project_prefix(project_id: u64) -> Vec<u8> {
    id_key(project_id)
}

pub fn author_prefix(author_id: u64) -> Vec<u8> {
    id_key(author_id)
}

pub fn type_prefix(entity_type: &str) -> Vec<u8> {
    key().str(entity_type).build()
}

const INDEXES: &[Index<AuditEvent>] = &[
    Index {
        table: Table::AuditByTime,
        entry: entry_by_time,
    },
    Index {
        table: Table::AuditByProject,
        entry: entry_by_project,
    },
    Index {
        table: Table::AuditByAuthor,
        entry: entry_by_author,
    },
    Index {
        table: Table::AuditByType,
        entry: entry_by_type,
    },
];

fn all_count() -> Vec<u8> {
    key().str("audit_events").build()
}

fn project_count(project_id: u64) -> Vec<u8> {
    key().str("audit_events_of").id(project_id).build()
}

impl Schema for AuditEvents {
    type Record = AuditEvent;
    const TABLE: Table = Table::AuditEvents;

    fn key(e: &AuditEvent) -> Vec<u8> {
        id_key(e.id)
    }

    fn indexes() -> &'static [Index<AuditEvent>] {
        INDEXES
    }

    fn counted(e: &AuditEvent) -> Vec<Vec<u8>> {
        let mut counts = vec![all_count()];
        if let Some(project) = e.project_id {
            counts.push(project_count(project));
        }
        counts
    }
}

/// Records the change of an audited record, when the write has an audit context: `old` and
/// `new` as JSON (`None`: did not exist / no longer exists). A change that changes nothing is
/// not recorded.
pub fn changed(
    tx: &dyn Txn,
    target: Target,
    old: Option<Value>,
    new: Option<Value>,
) -> Result<(), TxFail> {
    let Some(context) = audit::context() else {
        return Ok(());
    };
    let action = match (&old, &new) {
        (None, Some(_)) => "created",
        (Some(a), Some(b)) if a != b => "updated",
        (Some(_), Some(_)) => return Ok(()),
        (Some(_), None) => "deleted",
        (None, None) => return Ok(()),
    };
    let event = audit::change_event(&context, target, action, old, new)?;
    record(tx, &event)
}

/// Writes an event.
pub fn record(tx: &dyn Txn, event: &AuditEvent) -> Result<(), TxFail> {
    super::put::<AuditEvents>(tx, event)?;
    Ok(())
}

pub fn get(meta: &dyn MetaStore, id: u64) -> Result<Option<AuditEvent>, StoreError> {
    super::get::<AuditEvents>(meta, &id_key(id))
}

pub fn remove(tx: &dyn Txn, id: u64) -> Result<(), TxFail> {
    super::remove::<AuditEvents>(tx, &id_key(id))?;
    Ok(())
}

pub fn total(meta: &dyn MetaStore) -> Result<usize, StoreError> {
    super::count(meta, &all_count())
}

pub fn total_of(meta: &dyn MetaStore, project_id: u64) -> Result<usize, StoreError> {
    super::count(meta, &project_count(project_id))
}

/// Which index a listing walks, and under which prefix.
pub enum Walk {
    All,
    Project(u64),
    Author(u64),
    Type(String),
}

impl Walk {
    fn table_and_prefix(&self) -> (Table, Vec<u8>) {
        match self {
            Walk::All => (Table::AuditByTime, Vec::new()),
            Walk::Project(id) => (Table::AuditByProject, project_prefix(*id)),
            Walk::Author(id) => (Table::AuditByAuthor, author_prefix(*id)),
            Walk::Type(t) => (Table::AuditByType, type_prefix(t)),
        }
    }
}

/// The entries of an index between two times (milliseconds, both included), newest first
/// (oldest first when `!newest_first`), starting after `cursor` when given.
pub fn walk<'a>(
    meta: &'a dyn MetaStore,
    walk: &Walk,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    newest_first: bool,
    cursor: Option<&[u8]>,
) -> impl Iterator<Item = Result<IndexEntry, StoreError>> + 'a {
    let (table, prefix) = walk.table_and_prefix();
    let plen = prefix.len();
    let iter = if newest_first {
        let start = match (cursor, to_ms) {
            (Some(c), _) => c.to_vec(),
            (None, Some(to)) => time_bound(&prefix, to.saturating_add(1)),
            (None, None) => {
                let mut end = prefix.clone();
                end.extend_from_slice(&[0xff; 17]);
                end
            }
        };
        meta.scan_after(table, &prefix, &start, true)
    } else {
        match (cursor, from_ms) {
            (Some(c), _) => meta.scan_after(table, &prefix, c, false),
            (None, Some(from)) => meta.scan_from(table, &prefix, &time_bound(&prefix, from)),
            (None, None) => meta.scan(table, &prefix),
        }
    };
    let millis_of = move |k: &[u8]| -> i64 {
        let raw: [u8; 8] = k
            .get(plen..plen + 8)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 8]);
        (u64::from_be_bytes(raw) ^ (1 << 63)) as i64
    };
    iter.take_while(move |entry| match entry {
        Ok((k, _)) => {
            let t = millis_of(k);
            if newest_first {
                from_ms.is_none_or(|from| t >= from)
            } else {
                to_ms.is_none_or(|to| t <= to)
            }
        }
        Err(_) => true,
    })
}

/// The event an index entry names.
pub fn event_of(
    meta: &dyn MetaStore,
    entry: &IndexEntry,
) -> Result<Option<AuditEvent>, StoreError> {
    match super::trailing_id(&entry.0) {
        Some(id) => get(meta, id),
        None => Ok(None),
    }
}

/// The ids of the oldest events created before `before_ms`, at most `take` of them.
pub fn expired(meta: &dyn MetaStore, before_ms: i64, take: usize) -> Result<Vec<u64>, StoreError> {
    let mut ids = Vec::new();
    for entry in walk(meta, &Walk::All, None, Some(before_ms - 1), false, None).take(take) {
        let (k, _) = entry?;
        if let Some(id) = super::trailing_id(&k) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Decodes a stored event.
pub fn decode_event(bytes: &[u8]) -> Result<AuditEvent, StoreError> {
    decode(Table::AuditEvents, bytes)
}
