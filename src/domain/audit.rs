//! The audit log: who changed what, when, from where, and how it was before and after.
//!
//! Every write of the domain ([`Registry::write`], [`Registry::delete_listed`]) runs its
//! transaction with an audit [`Context`]: the request's actor (noted when the caller was
//! authenticated and when a project access check let it through), its token and its client
//! address. The schema layer's `put`/`remove` then record an [`AuditEvent`] for each audited
//! record they change, in that same transaction (see [`schema::audit_events`]). Sign-ins,
//! failed authentications and (when configured) downloads are recorded by the methods here.
//! Old events are pruned in the background in bounded batches ([`Registry::prune_audit`]).

use std::cell::RefCell;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::access::{Action, Caller};
use super::error::{Error, Result};
use super::paging::{Page, PageRequest};
use super::projects::ProjectAccess;
use super::records::{now, PackageFile, Timestamp};
use super::schema::audit_events::{self as events, Target, Walk};
use super::schema::{self, audit_events::AuditEvents};
use super::Registry;
use crate::store::meta::{TxError, TxFail, TxFailKind};

/// One audited change or event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditEvent {
    pub id: u64,
    pub created_at: Timestamp,
    /// The user who acted (`None`: nobody signed in, or the server itself).
    pub author_id: Option<u64>,
    pub author_name: Option<String>,
    /// The personal access token the request presented.
    pub token_id: Option<u64>,
    /// The client's address.
    pub ip_address: Option<String>,
    /// The project the change belongs to (none for users, tokens and sign-ins).
    pub project_id: Option<u64>,
    /// What changed: `Project`, `User`, `Model`, `ModelVersion`, `PackageFile`, ...
    pub entity_type: String,
    pub entity_id: u64,
    /// The object's path or name (`group/project`, `model 1.2.0`, ...).
    pub entity_path: String,
    /// `created`, `updated`, `deleted`, `signed_in`, `authentication_failed`, `downloaded`.
    pub action: String,
    /// The fields an update changed.
    #[serde(default)]
    pub changes: Vec<String>,
    /// A summary of the object before and after (changed fields only for updates; secrets
    /// redacted, long values cut).
    #[serde(default)]
    pub before: Option<Value>,
    #[serde(default)]
    pub after: Option<Value>,
    #[serde(default)]
    pub message: String,
}

impl AuditEvent {
    /// The event in GitLab's audit event shape (the API and `modelyard audit export`).
    pub fn to_json(&self) -> Value {
        let mut details = json!({
            "custom_message": self.message,
            "action": self.action,
            "author_name": self.author_name,
            "target_id": self.entity_id,
            "target_type": self.entity_type,
            "target_details": self.entity_path,
            "ip_address": self.ip_address,
            "entity_path": self.entity_path,
            "token_id": self.token_id,
        });
        if !self.changes.is_empty() {
            details["change"] = json!(self.changes.join(", "));
        }
        if self.changes.len() == 1 {
            let field = &self.changes[0];
            let from = self.before.as_ref().and_then(|b| b.get(field)).cloned();
            let to = self.after.as_ref().and_then(|a| a.get(field)).cloned();
            details["from"] = from.unwrap_or(Value::Null);
            details["to"] = to.unwrap_or(Value::Null);
        }
        if let Some(before) = &self.before {
            details["before"] = before.clone();
        }
        if let Some(after) = &self.after {
            details["after"] = after.clone();
        }
        json!({
            "id": self.id,
            "author_id": self.author_id.map(|id| id as i64).unwrap_or(-1),
            "entity_id": self.entity_id,
            "entity_type": self.entity_type,
            "event_type": self.event_type(),
            "event_name": self.event_type(),
            "project_id": self.project_id,
            "details": details,
            "created_at": self.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
    }

    /// `model_created`, `user_signed_in`, ...
    pub fn event_type(&self) -> String {
        format!("{}_{}", snake(&self.entity_type), self.action)
    }
}

fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// What the audit log records and keeps.
#[derive(Debug, Clone, Copy)]
pub struct AuditSettings {
    pub enabled: bool,
    /// Whether every download is an event too.
    pub downloads: bool,
    /// How long events are kept, in seconds (0: forever).
    pub retention_seconds: u64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            enabled: true,
            downloads: false,
            retention_seconds: 365 * 86_400,
        }
    }
}

/// What a request knows about where it comes from.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub address: Option<IpAddr>,
    pub token_id: Option<u64>,
}

tokio::task_local! {
    static REQUEST: RefCell<RequestInfo>;
}

/// Runs a request with its client address and a slot for the token it presents.
pub async fn with_request<F: Future>(address: Option<IpAddr>, request: F) -> F::Output {
    REQUEST
        .scope(
            RefCell::new(RequestInfo {
                address,
                token_id: None,
            }),
            request,
        )
        .await
}

/// Notes the personal access token the request authenticated with.
pub fn note_token(token_id: u64) {
    let _ = REQUEST.try_with(|slot| slot.borrow_mut().token_id = Some(token_id));
}

/// The request being served (outside a request: nothing known).
pub fn request_info() -> RequestInfo {
    REQUEST
        .try_with(|slot| slot.borrow().clone())
        .unwrap_or_default()
}

/// Who and where a write comes from, for the events its transaction records.
#[derive(Clone)]
pub struct Context {
    pub author: Option<(u64, String)>,
    pub token_id: Option<u64>,
    pub address: Option<String>,
    /// The events of one write are numbered from `base` (a fresh id of the store taken before
    /// the transaction, shifted: ids cannot be drawn inside a transaction); `next` counts them.
    base: u64,
    next: Arc<std::sync::atomic::AtomicU64>,
}

/// How many events one write may number (beyond, the ids of a later write could repeat).
const EVENTS_PER_WRITE_BITS: u32 = 24;

impl Context {
    /// A fresh event id, unique over the life of the store.
    fn next_id(&self) -> std::result::Result<u64, TxFail> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n >= 1 << EVENTS_PER_WRITE_BITS {
            return Err(TxFail(TxFailKind::Decode(
                crate::store::meta::StoreError::Engine("too many audit events in one write".into()),
            )));
        }
        Ok((self.base << EVENTS_PER_WRITE_BITS) | n)
    }
}

thread_local! {
    /// The audit context of the transaction running on this thread, if it is audited.
    static WRITING: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// The audit context of the transaction running on this thread.
pub fn context() -> Option<Context> {
    WRITING.with(|w| w.borrow().clone())
}

/// Runs `body` (a transaction) with `context` as the audit context of this thread.
pub(crate) fn within<R>(context: Option<Context>, body: impl FnOnce() -> R) -> R {
    struct Restore(Option<Context>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            WRITING.with(|w| *w.borrow_mut() = previous);
        }
    }
    let previous = WRITING.with(|w| w.replace(context));
    let _restore = Restore(previous);
    body()
}

/// Fields whose values never enter the log.
const SECRET_FIELDS: &[&str] = &["password_hash", "secret_sha256", "secret", "token"];
/// Longer strings are cut to this many characters.
const MAX_TEXT: usize = 200;
/// Longer arrays are cut to this many items.
const MAX_ITEMS: usize = 20;

fn cut(value: &Value, depth: usize) -> Value {
    match value {
        Value::String(s) if s.chars().count() > MAX_TEXT => {
            let kept: String = s.chars().take(MAX_TEXT).collect();
            Value::String(format!("{kept}… ({} characters)", s.chars().count()))
        }
        Value::Array(items) => {
            let mut out: Vec<Value> = items
                .iter()
                .take(MAX_ITEMS)
                .map(|v| cut(v, depth + 1))
                .collect();
            if items.len() > MAX_ITEMS {
                out.push(json!(format!("… ({} items)", items.len())));
            }
            Value::Array(out)
        }
        Value::Object(map) if depth >= 2 => Value::String(format!("{{{} fields}}", map.len())),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), summarize_field(k, v, depth + 1)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn summarize_field(name: &str, value: &Value, depth: usize) -> Value {
    if SECRET_FIELDS.contains(&name) && !value.is_null() {
        return json!("[redacted]");
    }
    cut(value, depth)
}

/// A record as the log keeps it.
pub fn summarize(record: &Value) -> Value {
    cut(record, 0)
}

/// The fields that differ between two records, with their before and after values.
fn diff(old: &Value, new: &Value) -> (Vec<String>, Value, Value) {
    let empty = Map::new();
    let old = old.as_object().unwrap_or(&empty);
    let new = new.as_object().unwrap_or(&empty);
    let mut changes = Vec::new();
    let mut before = Map::new();
    let mut after = Map::new();
    for (field, value) in new {
        let was = old.get(field).unwrap_or(&Value::Null);
        if was != value {
            changes.push(field.clone());
            before.insert(field.clone(), summarize_field(field, was, 1));
            after.insert(field.clone(), summarize_field(field, value, 1));
        }
    }
    for (field, was) in old {
        if !new.contains_key(field) {
            changes.push(field.clone());
            before.insert(field.clone(), summarize_field(field, was, 1));
            after.insert(field.clone(), Value::Null);
        }
    }
    (changes, Value::Object(before), Value::Object(after))
}

/// The event of a change of a record, with the summary of before and after.
pub(crate) fn change_event(
    context: &Context,
    target: Target,
    action: &str,
    old: Option<Value>,
    new: Option<Value>,
) -> std::result::Result<AuditEvent, TxFail> {
    let (changes, before, after) = match (&old, &new) {
        (Some(old), Some(new)) => {
            let (changes, before, after) = diff(old, new);
            (changes, Some(before), Some(after))
        }
        _ => (
            Vec::new(),
            old.as_ref().map(summarize),
            new.as_ref().map(summarize),
        ),
    };
    let message = format!("{} {action}", human(target.entity_type));
    Ok(AuditEvent {
        id: context.next_id()?,
        created_at: now(),
        author_id: context.author.as_ref().map(|a| a.0),
        author_name: context.author.as_ref().map(|a| a.1.clone()),
        token_id: context.token_id,
        ip_address: context.address.clone(),
        project_id: target.project_id,
        entity_type: target.entity_type.to_string(),
        entity_id: target.entity_id,
        entity_path: target.path,
        action: action.to_string(),
        changes,
        before,
        after,
        message,
    })
}

fn human(entity_type: &str) -> String {
    snake(entity_type).replace('_', " ")
}

/// What an audit listing asks for (GitLab's filters).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    pub entity_type: Option<String>,
    pub entity_id: Option<u64>,
    pub author_id: Option<u64>,
}

impl AuditQuery {
    fn filtered(&self) -> bool {
        self.created_after.is_some()
            || self.created_before.is_some()
            || self.entity_type.is_some()
            || self.entity_id.is_some()
            || self.author_id.is_some()
    }

    /// Whether an index entry's value passes the filters the index does not answer.
    fn admits(&self, value: &[u8]) -> bool {
        let Some((author, entity, kind)) = events::filter_parts(value) else {
            return false;
        };
        self.author_id.is_none_or(|a| a == author)
            && self.entity_id.is_none_or(|e| e == entity)
            && self
                .entity_type
                .as_deref()
                .is_none_or(|t| t.as_bytes() == kind)
    }
}

/// A page of events and whether it is known to be the last.
pub struct AuditPage {
    pub page: Page<AuditEvent>,
    /// Whether `page.total` is exact (kept counts answer unfiltered listings only).
    pub total_known: bool,
    /// Whether more events follow this page.
    pub more: bool,
}

impl Registry {
    /// The audit context of a write made now, by the request being served.
    pub(crate) fn audit_context(&self) -> Option<Context> {
        if !self.audit.enabled {
            return None;
        }
        let request = request_info();
        let base = match self.meta.next_id() {
            Ok(base) => base,
            Err(error) => {
                tracing::warn!(%error, "no id for audit events: the write is not audited");
                return None;
            }
        };
        Some(Context {
            author: super::events::actor(),
            token_id: request.token_id,
            address: request.address.map(|a| a.to_string()),
            base,
            next: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        })
    }

    /// A project's audit events, newest first (Maintainers and above).
    pub fn project_audit_events(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        query: &AuditQuery,
        request: PageRequest,
    ) -> Result<AuditPage> {
        access.check(caller, Action::ReadAuditLog)?;
        let total = (!query.filtered())
            .then(|| events::total_of(self.meta.as_ref(), access.project.id))
            .transpose()?;
        self.audit_page(Walk::Project(access.project.id), query, request, total)
    }

    /// Every audit event, newest first (admins).
    pub fn instance_audit_events(
        &self,
        caller: &Caller,
        query: &AuditQuery,
        request: PageRequest,
    ) -> Result<AuditPage> {
        require_admin(caller)?;
        let total = (!query.filtered())
            .then(|| events::total(self.meta.as_ref()))
            .transpose()?;
        let walk = match (&query.author_id, &query.entity_type) {
            (Some(author), _) => Walk::Author(*author),
            (None, Some(kind)) => Walk::Type(kind.clone()),
            (None, None) => Walk::All,
        };
        self.audit_page(walk, query, request, total)
    }

    /// One of a project's events.
    pub fn project_audit_event(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        id: u64,
    ) -> Result<AuditEvent> {
        access.check(caller, Action::ReadAuditLog)?;
        match events::get(self.meta.as_ref(), id)? {
            Some(event) if event.project_id == Some(access.project.id) => Ok(event),
            _ => Err(Error::NotFound("Audit event")),
        }
    }

    /// One event (admins).
    pub fn instance_audit_event(&self, caller: &Caller, id: u64) -> Result<AuditEvent> {
        require_admin(caller)?;
        events::get(self.meta.as_ref(), id)?.ok_or(Error::NotFound("Audit event"))
    }

    fn audit_page(
        &self,
        walk: Walk,
        query: &AuditQuery,
        request: PageRequest,
        total: Option<usize>,
    ) -> Result<AuditPage> {
        let meta = self.meta.as_ref();
        let from = query.created_after.map(|t| t.timestamp_millis());
        let to = query.created_before.map(|t| t.timestamp_millis());
        let matching = events::walk(meta, &walk, from, to, true, request.cursor())
            .filter(|entry| entry.as_ref().map_or(true, |(_, v)| query.admits(v)));
        let mut entries = Vec::with_capacity(request.per_page);
        let mut more = false;
        for entry in matching.skip(request.offset()) {
            let entry = entry?;
            if entries.len() == request.per_page {
                more = true;
                break;
            }
            entries.push(entry);
        }
        let next_cursor = if more {
            entries.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        let mut items = Vec::with_capacity(entries.len());
        for entry in &entries {
            if let Some(event) = events::event_of(meta, entry)? {
                items.push(event);
            }
        }
        let shown = request.offset() + items.len() + usize::from(more);
        Ok(AuditPage {
            page: Page::keyed(items, total.unwrap_or(shown), request, next_cursor),
            total_known: total.is_some(),
            more,
        })
    }

    /// Every event created at `since` or later, oldest first, a page at a time (for
    /// `modelyard audit export`): `visit` sees each one.
    pub fn export_audit(
        &self,
        since: Option<Timestamp>,
        mut visit: impl FnMut(&AuditEvent) -> std::io::Result<()>,
    ) -> Result<usize> {
        let meta = self.meta.as_ref();
        let mut written = 0;
        let walk = events::walk(
            meta,
            &Walk::All,
            since.map(|t| t.timestamp_millis()),
            None,
            false,
            None,
        );
        for entry in walk {
            let entry = entry?;
            if let Some(event) = events::event_of(meta, &entry)? {
                visit(&event).map_err(|e| Error::bad(format!("writing the export: {e}")))?;
                written += 1;
            }
        }
        Ok(written)
    }

    /// Removes events older than the retention, at most `batch` per transaction and `batches`
    /// transactions per call; how many went.
    pub async fn prune_audit(&self, batch: usize, batches: usize) -> Result<usize> {
        if self.audit.retention_seconds == 0 {
            return Ok(0);
        }
        let cutoff = now() - chrono::Duration::seconds(self.audit.retention_seconds as i64);
        let mut pruned = 0;
        for _ in 0..batches {
            let ids = events::expired(self.meta.as_ref(), cutoff.timestamp_millis(), batch)?;
            if ids.is_empty() {
                break;
            }
            self.meta.transaction(|tx| {
                for id in &ids {
                    events::remove(tx, *id)?;
                }
                Ok::<_, TxError<Error>>(())
            })?;
            self.persist().await?;
            pruned += ids.len();
            if ids.len() < batch {
                break;
            }
        }
        Ok(pruned)
    }

    /// Records a request whose credentials were refused.
    pub async fn audit_failed_authentication(&self, reason: &str) -> Result<()> {
        let Some(context) = self.audit_context() else {
            return Ok(());
        };
        let event = AuditEvent {
            message: format!("authentication failed: {reason}"),
            ..self.plain_event(&context, "Authentication", 0, None, "failed", "")?
        };
        self.write_event(event).await
    }

    /// Records a sign-in to the web UI, or a refused one, by username.
    pub async fn audit_sign_in(
        &self,
        username: &str,
        user: Option<(u64, String)>,
        address: Option<IpAddr>,
    ) -> Result<()> {
        if !self.audit.enabled {
            return Ok(());
        }
        let context = Context {
            author: user.clone(),
            token_id: None,
            address: address.map(|a| a.to_string()),
            base: 0,
            next: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        };
        let (action, message) = match &user {
            Some(_) => ("signed_in", format!("{username} signed in")),
            None => (
                "sign_in_failed",
                format!("failed sign-in as {username}: invalid username or password"),
            ),
        };
        let entity_id = user.as_ref().map(|u| u.0).unwrap_or(0);
        let event = AuditEvent {
            message,
            ..self.plain_event(&context, "User", entity_id, None, action, username)?
        };
        self.write_event(event).await
    }

    /// Records a download of a file, when downloads are audited.
    pub async fn audit_download(&self, file: &PackageFile) -> Result<()> {
        if !self.audit.downloads {
            return Ok(());
        }
        let Some(context) = self.audit_context() else {
            return Ok(());
        };
        let event = AuditEvent {
            message: format!("downloaded {}", file.file_name),
            after: Some(
                json!({"package_id": file.package_id, "size": file.size, "sha256": file.sha256}),
            ),
            ..self.plain_event(
                &context,
                "PackageFile",
                file.id,
                Some(file.project_id),
                "downloaded",
                &file.file_name,
            )?
        };
        self.write_event(event).await
    }

    /// Records a promotion policy's refusal of an alias move or a seal (`action`:
    /// `promotion_refused`, `seal_refused`), with the failed rules.
    pub(crate) async fn audit_policy_refusal(
        &self,
        caller: &Caller,
        model: &super::ml_records::Model,
        version: &super::ml_records::ModelVersion,
        action: &str,
        refusal: &super::promotion::Refusal,
    ) -> Result<()> {
        let Some(mut context) = self.audit_context() else {
            return Ok(());
        };
        if context.author.is_none() {
            context.author = caller.user().map(|u| (u.id, u.username.clone()));
        }
        let event = AuditEvent {
            message: refusal.message.clone(),
            after: Some(json!({ "failed_rules": refusal.failed_rules })),
            ..self.plain_event(
                &context,
                "ModelVersion",
                version.id,
                Some(model.project_id),
                action,
                &format!("{} {}", model.name, version.version),
            )?
        };
        self.write_event(event).await
    }

    /// Records a real retention run of a model: what it deleted by which rule, and the bytes
    /// it reclaimed (each deleted version has its own `ModelVersion` event too).
    pub(crate) async fn audit_retention(
        &self,
        report: &super::retention::RetentionReport,
    ) -> Result<()> {
        let Some(context) = self.audit_context() else {
            return Ok(());
        };
        let model = &report.plan.model;
        let deleted: Vec<Value> = report
            .plan
            .delete
            .iter()
            .filter(|d| report.deleted.contains(&d.version.version))
            .map(|d| json!(format!("{} ({})", d.version.version, d.rule.as_str())))
            .collect();
        let event = AuditEvent {
            message: format!(
                "retention deleted {} versions of model {} and reclaimed {} bytes",
                report.deleted.len(),
                model.name,
                report.bytes_reclaimed
            ),
            after: Some(summarize(&json!({
                "rules": report.plan.rules.to_json(),
                "deleted": deleted,
                "skipped": report.skipped.len(),
                "blobs_removed": report.blobs_removed,
                "bytes_reclaimed": report.bytes_reclaimed,
            }))),
            ..self.plain_event(
                &context,
                "Model",
                model.id,
                Some(model.project_id),
                "retention_run",
                &model.name,
            )?
        };
        self.write_event(event).await
    }

    fn plain_event(
        &self,
        context: &Context,
        entity_type: &str,
        entity_id: u64,
        project_id: Option<u64>,
        action: &str,
        path: &str,
    ) -> Result<AuditEvent> {
        Ok(AuditEvent {
            id: self.new_id()? << EVENTS_PER_WRITE_BITS,
            created_at: now(),
            author_id: context.author.as_ref().map(|a| a.0),
            author_name: context.author.as_ref().map(|a| a.1.clone()),
            token_id: context.token_id,
            ip_address: context.address.clone(),
            project_id,
            entity_type: entity_type.to_string(),
            entity_id,
            entity_path: path.to_string(),
            action: action.to_string(),
            changes: Vec::new(),
            before: None,
            after: None,
            message: String::new(),
        })
    }

    async fn write_event(&self, event: AuditEvent) -> Result<()> {
        self.meta.transaction(|tx| {
            schema::put::<AuditEvents>(tx, &event)?;
            Ok::<_, TxError<Error>>(())
        })?;
        self.persist().await
    }
}

fn require_admin(caller: &Caller) -> Result<()> {
    match caller {
        Caller::Anonymous => Err(Error::Unauthorized),
        c if c.is_admin() => Ok(()),
        _ => Err(Error::Forbidden),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_cut_long_values_and_hide_secrets() {
        let long = "x".repeat(500);
        let record = json!({"name": "m", "description": long, "password_hash": "$argon2id$..."});
        let s = summarize(&record);
        assert_eq!(s["name"], "m");
        assert!(s["description"]
            .as_str()
            .unwrap()
            .ends_with("(500 characters)"));
        assert_eq!(s["password_hash"], "[redacted]");
        let (changes, before, after) = diff(
            &json!({"a": 1, "b": "same", "secret_sha256": "old"}),
            &json!({"a": 2, "b": "same", "secret_sha256": "new"}),
        );
        assert_eq!(changes, vec!["a", "secret_sha256"]);
        assert_eq!(before, json!({"a": 1, "secret_sha256": "[redacted]"}));
        assert_eq!(after, json!({"a": 2, "secret_sha256": "[redacted]"}));
    }

    #[test]
    fn event_types_are_snake_case() {
        assert_eq!(snake("ModelVersion"), "model_version");
        assert_eq!(snake("User"), "user");
    }
}
