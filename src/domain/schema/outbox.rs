//! The outbox: one [`Delivery`] per event and hook, written in the transaction of the change it
//! announces; keyed `(hook, seq)` so that a hook's deliveries go out in order. Pending ones are
//! also in an index the deliverer walks (at start too: nothing is lost by a restart).

use std::cell::Cell;

use serde_json::{json, Value};

use super::counters::{self, Sequence};
use super::{id_key, key, Index, IndexEntry, Schema};
use crate::domain::event_records::{Delivery, DeliveryStatus};
use crate::domain::records::{now, Project};
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct Deliveries;

pub fn delivery_key(hook_id: u64, seq: u64) -> Vec<u8> {
    key().id(hook_id).id(seq).build()
}

fn entry_pending(d: &Delivery) -> Option<IndexEntry> {
    (d.status == DeliveryStatus::Pending).then(|| (delivery_key(d.hook_id, d.seq), Vec::new()))
}

const INDEXES: &[Index<Delivery>] = &[Index {
    table: Table::DeliveriesPending,
    entry: entry_pending,
}];

fn hook_count(hook_id: u64) -> Vec<u8> {
    key().str("deliveries_of").id(hook_id).build()
}

impl Schema for Deliveries {
    type Record = Delivery;
    const TABLE: Table = Table::Deliveries;

    fn key(d: &Delivery) -> Vec<u8> {
        delivery_key(d.hook_id, d.seq)
    }

    fn indexes() -> &'static [Index<Delivery>] {
        INDEXES
    }

    fn counted(d: &Delivery) -> Vec<Vec<u8>> {
        vec![hook_count(d.hook_id)]
    }
}

thread_local! {
    /// Set when a transaction on this thread wrote to the outbox: the writer wakes the
    /// deliverer once the change is durable.
    static WROTE: Cell<bool> = const { Cell::new(false) };
}

/// Whether the outbox was written since the last call (and forgets it).
pub fn take_wrote() -> bool {
    WROTE.with(|w| w.replace(false))
}

/// What a change announces: the hook flag it needs, the object's kind, its project and the
/// path of its link.
pub struct Announce {
    pub flag: &'static str,
    pub kind: &'static str,
    pub project_id: u64,
    pub path: String,
}

/// Who made the change, for payloads: `(id, username)`.
pub type Actor = Option<(u64, String)>;

/// The hooks of the project that want such an event. Costs one read when the server has no
/// hook.
pub fn targets(tx: &dyn Txn, what: &Announce) -> Result<Vec<u64>, TxFail> {
    if !super::hooks::any(tx)? {
        return Ok(Vec::new());
    }
    Ok(super::hooks::routes(tx, what.project_id)?
        .hooks
        .into_iter()
        .filter(|(_, flags)| flags.iter().any(|f| f == what.flag))
        .map(|(id, _)| id)
        .collect())
}

/// Writes a delivery of the event to each of `hooks`, with the actor of the request.
pub fn announce(
    tx: &dyn Txn,
    what: &Announce,
    hooks: &[u64],
    action: &str,
    object: Value,
) -> Result<(), TxFail> {
    let project = super::load::<super::projects::Projects>(tx, &id_key(what.project_id))?;
    let actor = crate::domain::events::actor();
    let payload = payload(
        what.kind,
        action,
        object,
        &actor,
        project.as_ref(),
        what.project_id,
    );
    for hook_id in hooks {
        enqueue(tx, *hook_id, what, &payload, None)?;
    }
    Ok(())
}

/// The JSON body of an event (its `url` is added at delivery).
pub fn payload(
    kind: &str,
    action: &str,
    object: Value,
    actor: &Actor,
    project: Option<&Project>,
    project_id: u64,
) -> Value {
    let user = match actor {
        Some((id, username)) => json!({"id": id, "username": username}),
        None => Value::Null,
    };
    let project = match project {
        Some(p) => json!({
            "id": p.id,
            "name": p.name,
            "path_with_namespace": format!("{}/{}", p.namespace, p.path),
        }),
        None => json!({"id": project_id}),
    };
    json!({
        "object_kind": kind,
        "event": format!("{kind}.{action}"),
        "event_type": action,
        "user": user,
        "project": project,
        "object_attributes": object,
    })
}

/// Appends a delivery to a hook's outbox; `message_id` is kept by a resend.
pub fn enqueue(
    tx: &dyn Txn,
    hook_id: u64,
    what: &Announce,
    payload: &Value,
    message_id: Option<&str>,
) -> Result<Delivery, TxFail> {
    let seq = counters::next(tx, hook_id, Sequence::HookDelivery)?;
    let created_at = now();
    let delivery = Delivery {
        hook_id,
        seq,
        project_id: what.project_id,
        message_id: message_id
            .map(str::to_string)
            .unwrap_or_else(|| format!("msg_{hook_id}_{seq}")),
        event: payload["event"].as_str().unwrap_or_default().to_string(),
        object_kind: what.kind.to_string(),
        payload: payload.clone(),
        path: what.path.clone(),
        created_at,
        status: DeliveryStatus::Pending,
        attempts: 0,
        response_code: None,
        duration_ms: None,
        error: None,
        next_attempt_ms: created_at.timestamp_millis(),
        finished_at: None,
    };
    super::put::<Deliveries>(tx, &delivery)?;
    WROTE.with(|w| w.set(true));
    Ok(delivery)
}

pub fn get(meta: &dyn MetaStore, hook_id: u64, seq: u64) -> Result<Option<Delivery>, StoreError> {
    super::get::<Deliveries>(meta, &delivery_key(hook_id, seq))
}

pub fn load(tx: &dyn Txn, hook_id: u64, seq: u64) -> Result<Option<Delivery>, TxFail> {
    super::load::<Deliveries>(tx, &delivery_key(hook_id, seq))
}

pub fn count_of(meta: &dyn MetaStore, hook_id: u64) -> Result<usize, StoreError> {
    super::count(meta, &hook_count(hook_id))
}

/// A page of a hook's deliveries, newest first.
pub fn page_of(
    meta: &dyn MetaStore,
    hook_id: u64,
    seek: &super::Seek,
    take: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let page = super::page(meta, Table::Deliveries, &id_key(hook_id), true, seek, take)?;
    page.entries
        .iter()
        .map(|(_, value)| crate::store::meta::decode(Table::Deliveries, value))
        .collect()
}

/// The first pending delivery of each hook: the ones whose turn it is. Skips over the rest of
/// a hook's queue without reading it.
pub fn heads(meta: &dyn MetaStore) -> Result<Vec<Delivery>, StoreError> {
    let mut heads = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let next = match &after {
            None => meta.scan(Table::DeliveriesPending, &[]).next(),
            Some(after) => meta
                .scan_after(Table::DeliveriesPending, &[], after, false)
                .next(),
        };
        let Some(entry) = next else { break };
        let (k, _) = entry?;
        let (Some(hook_id), Some(seq)) = (crate::store::keys::id_at(&k, 0), super::trailing_id(&k))
        else {
            break;
        };
        if let Some(delivery) = get(meta, hook_id, seq)? {
            heads.push(delivery);
        }
        after = Some(delivery_key(hook_id, u64::MAX));
    }
    Ok(heads)
}

/// Every delivery key of a hook (to delete them with it).
pub fn keys_of(meta: &dyn MetaStore, hook_id: u64) -> Result<Vec<Vec<u8>>, StoreError> {
    meta.scan(Table::Deliveries, &id_key(hook_id))
        .map(|entry| entry.map(|(k, _)| k))
        .collect()
}
