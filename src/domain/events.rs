//! Webhooks: a project's hooks, the events its changes announce (written to the outbox in the
//! change's own transaction, see [`schema::outbox`]) and the log of their deliveries. Sending is
//! done after commit by `crate::webhooks`.

use std::cell::RefCell;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::json;

use super::access::{Action, Caller};
use super::error::{Error, Result};
use super::event_records::{Delivery, DeliveryStatus, Hook, GITLAB_EVENTS, REGISTRY_EVENTS};
use super::paging::{Page, PageRequest};
use super::projects::ProjectAccess;
use super::records::now;
use super::schema::outbox::{self, Actor, Announce};
use super::schema::{self, hooks::Hooks, outbox::Deliveries};
use super::Registry;
use crate::store::meta::abort;

tokio::task_local! {
    static ACTOR: RefCell<Actor>;
}

/// Runs a request with a slot for its actor: the caller a project access check let through,
/// named in the payloads of the events its changes announce.
pub async fn with_actor_slot<F: Future>(request: F) -> F::Output {
    ACTOR.scope(RefCell::new(None), request).await
}

/// Notes the caller of the request being served (outside a request: nothing).
pub fn note_actor(caller: &Caller) {
    if let Some(user) = caller.user() {
        let _ = ACTOR.try_with(|slot| {
            *slot.borrow_mut() = Some((user.id, user.username.clone()));
        });
    }
}

/// The actor of the request being served, if any.
pub fn actor() -> Actor {
    ACTOR.try_with(|slot| slot.borrow().clone()).unwrap_or(None)
}

/// How much longer than an attempt's timeout a claim on a delivery holds (see
/// [`Registry::claim_delivery`]).
const CLAIM_MARGIN: Duration = Duration::from_secs(5);

/// How events are delivered.
#[derive(Debug, Clone, Copy)]
pub struct EventSettings {
    /// Whether hooks may target loopback, private and link-local addresses.
    pub allow_private: bool,
    /// The first retry's delay; each next one doubles, up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// How long an event is retried before it is given up.
    pub retry_for: Duration,
    /// How long one delivery attempt may take.
    pub timeout: Duration,
}

impl Default for EventSettings {
    fn default() -> Self {
        EventSettings {
            allow_private: false,
            retry_base: Duration::from_secs(10),
            retry_cap: Duration::from_secs(3600),
            retry_for: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
        }
    }
}

/// What a hook is created with or changed to; `None`: unchanged (or the default when created).
#[derive(Debug, Default, Clone)]
pub struct HookInput {
    pub url: Option<String>,
    /// `Some(None)` clears the token.
    pub token: Option<Option<String>>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// `(flag, on)` for flags given.
    pub flags: Vec<(String, bool)>,
    pub enable_ssl_verification: Option<bool>,
}

/// Whether an address is loopback, private, link-local or otherwise not on the public internet.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 0
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Resolves a hook's URL and refuses it when it is not http(s) or (without `allow_private`)
/// when any of its addresses is private. Returns the host and the addresses to connect to.
pub async fn resolve_target(url: &str, allow_private: bool) -> Result<(String, Vec<SocketAddr>)> {
    let parsed = url::Url::parse(url).map_err(|e| Error::bad(format!("url is invalid: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::bad("url must be an http or https URL"));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| Error::bad("url has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| Error::bad("url has no port"))?;
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| Error::bad(format!("url's host {host} does not resolve: {e}")))?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(Error::bad(format!("url's host {host} does not resolve")));
    }
    if !allow_private {
        if let Some(private) = addresses.iter().find(|a| is_private(a.ip())) {
            return Err(Error::bad(format!(
                "Invalid url given: {host} resolves to {}, a loopback, private or link-local address; \
                 requests to the local network are not allowed (the admin may allow them with \
                 --webhook-allow-private)",
                private.ip()
            )));
        }
    }
    Ok((host, addresses))
}

fn known_flag(flag: &str) -> bool {
    REGISTRY_EVENTS.contains(&flag) || GITLAB_EVENTS.contains(&flag)
}

/// The object kind a test delivery of `trigger` (a flag name) announces.
fn trigger_kind(trigger: &str) -> Option<&'static str> {
    Some(match trigger {
        "model_events" => "model",
        "version_events" => "version",
        "file_events" => "file",
        "alias_events" => "alias",
        "tag_events" => "tag",
        "run_events" => "run",
        "package_events" => "package",
        "push_events" => "push",
        "tag_push_events" => "tag_push",
        "merge_requests_events" => "merge_request",
        "issues_events" | "confidential_issues_events" => "issue",
        "note_events" | "confidential_note_events" => "note",
        "job_events" => "build",
        "pipeline_events" => "pipeline",
        "wiki_page_events" => "wiki_page",
        "releases_events" => "release",
        _ => return None,
    })
}

impl Registry {
    pub async fn create_hook(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        input: HookInput,
    ) -> Result<Hook> {
        access.check(caller, Action::ManageHooks)?;
        let url = input.url.clone().ok_or_else(|| Error::missing("url"))?;
        resolve_target(&url, self.event_settings.allow_private).await?;
        let mut events: Vec<String> = REGISTRY_EVENTS
            .iter()
            .chain(["push_events"].iter())
            .map(|s| s.to_string())
            .collect();
        apply_flags(&mut events, &input.flags)?;
        let hook = Hook {
            id: self.new_id()?,
            project_id: access.project.id,
            url,
            token: input.token.clone().flatten().filter(|t| !t.is_empty()),
            name: input.name.clone().unwrap_or_default(),
            description: input.description.clone().unwrap_or_default(),
            events,
            enable_ssl_verification: input.enable_ssl_verification.unwrap_or(true),
            created_at: now(),
        };
        self.write(|tx| {
            schema::put::<Hooks>(tx, &hook)?;
            Ok(())
        })
        .await?;
        Ok(hook)
    }

    pub fn hook(&self, caller: &Caller, access: &ProjectAccess, hook_id: u64) -> Result<Hook> {
        access.check(caller, Action::ManageHooks)?;
        match schema::hooks::get(self.meta.as_ref(), hook_id)? {
            Some(hook) if hook.project_id == access.project.id => Ok(hook),
            _ => Err(Error::NotFound("Hook")),
        }
    }

    pub fn hooks(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        request: PageRequest,
    ) -> Result<Page<Hook>> {
        access.check(caller, Action::ManageHooks)?;
        let meta = self.meta.as_ref();
        let ids = schema::hooks::page_of(
            meta,
            access.project.id,
            &schema::Seek::Offset(request.offset()),
            request.per_page,
        )?;
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(hook) = schema::hooks::get(meta, id)? {
                items.push(hook);
            }
        }
        let total = schema::hooks::count_of(meta, access.project.id)?;
        Ok(Page::keyed(items, total, request, None))
    }

    pub async fn update_hook(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        hook_id: u64,
        input: HookInput,
    ) -> Result<Hook> {
        let current = self.hook(caller, access, hook_id)?;
        if let Some(url) = &input.url {
            resolve_target(url, self.event_settings.allow_private).await?;
        }
        let mut events = current.events.clone();
        apply_flags(&mut events, &input.flags)?;
        self.write(|tx| {
            let Some(hook) = schema::hooks::load(tx, hook_id)? else {
                return abort(Error::NotFound("Hook"));
            };
            let updated = Hook {
                url: input.url.clone().unwrap_or(hook.url.clone()),
                token: match &input.token {
                    Some(token) => token.clone().filter(|t| !t.is_empty()),
                    None => hook.token.clone(),
                },
                name: input.name.clone().unwrap_or(hook.name.clone()),
                description: input
                    .description
                    .clone()
                    .unwrap_or(hook.description.clone()),
                events: events.clone(),
                enable_ssl_verification: input
                    .enable_ssl_verification
                    .unwrap_or(hook.enable_ssl_verification),
                ..hook
            };
            schema::put::<Hooks>(tx, &updated)?;
            Ok(updated)
        })
        .await
    }

    /// Deletes a hook and its delivery log.
    pub async fn delete_hook(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        hook_id: u64,
    ) -> Result<()> {
        self.hook(caller, access, hook_id)?;
        let keys = schema::outbox::keys_of(self.meta.as_ref(), hook_id)?;
        self.write(|tx| {
            for key in &keys {
                schema::remove::<Deliveries>(tx, key)?;
            }
            schema::remove::<Hooks>(tx, &schema::id_key(hook_id))?;
            Ok(())
        })
        .await
    }

    /// A page of a hook's deliveries, newest first.
    pub fn hook_events(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        hook_id: u64,
        request: PageRequest,
    ) -> Result<Page<Delivery>> {
        self.hook(caller, access, hook_id)?;
        let meta = self.meta.as_ref();
        let items = schema::outbox::page_of(
            meta,
            hook_id,
            &schema::Seek::Offset(request.offset()),
            request.per_page,
        )?;
        let total = schema::outbox::count_of(meta, hook_id)?;
        Ok(Page::keyed(items, total, request, None))
    }

    /// Sends an event again: a new delivery at the end of the hook's queue, with the same
    /// payload and `webhook-id`.
    pub async fn resend_hook_event(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        hook_id: u64,
        seq: u64,
    ) -> Result<Delivery> {
        self.hook(caller, access, hook_id)?;
        let done = self
            .write(|tx| {
                let Some(original) = schema::outbox::load(tx, hook_id, seq)? else {
                    return abort(Error::NotFound("Hook event"));
                };
                let what = Announce {
                    flag: "",
                    kind: kind_name(&original.object_kind),
                    project_id: original.project_id,
                    path: original.path.clone(),
                };
                Ok(outbox::enqueue(
                    tx,
                    hook_id,
                    &what,
                    &original.payload,
                    Some(&original.message_id),
                )?)
            })
            .await?;
        Ok(done)
    }

    /// GitLab's test delivery: a sample event of the trigger's kind, queued like any other.
    pub async fn test_hook(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        hook_id: u64,
        trigger: &str,
    ) -> Result<Delivery> {
        self.hook(caller, access, hook_id)?;
        let kind = trigger_kind(trigger).ok_or_else(|| {
            Error::bad(format!(
                "trigger '{trigger}' is invalid: use one of {}",
                REGISTRY_EVENTS
                    .iter()
                    .chain(GITLAB_EVENTS.iter())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let project = access.project.clone();
        let payload = outbox::payload(
            kind,
            "test",
            json!({"test": true, "trigger": trigger}),
            &actor(),
            Some(&project),
            project.id,
        );
        let what = Announce {
            flag: "",
            kind,
            project_id: project.id,
            path: format!("/api/v4/projects/{}", project.id),
        };
        self.write(|tx| Ok(outbox::enqueue(tx, hook_id, &what, &payload, None)?))
            .await
    }

    /// The deliveries whose turn it is: the first pending one of each hook.
    pub fn outbox_heads(&self) -> Result<Vec<Delivery>> {
        Ok(schema::outbox::heads(self.meta.as_ref())?)
    }

    /// Claims a due delivery for one attempt, for this process alone: in one transaction, a
    /// delivery still pending and still due is moved out of reach (its next attempt put a lease
    /// ahead: the send timeout and a margin) before anything is sent. Replicas sharing one
    /// metadata store read the same outbox; the transaction lets one of them win and the others
    /// see it not due. `false`: delivered, or claimed, since the head was read. A claimant that
    /// dies mid-send leaves the delivery due again once the lease is over (at least once).
    pub async fn claim_delivery(&self, delivery: &Delivery) -> Result<bool> {
        let lease = self.event_settings.timeout + CLAIM_MARGIN;
        let (hook_id, seq) = (delivery.hook_id, delivery.seq);
        self.write(|tx| {
            let Some(mut current) = schema::outbox::load(tx, hook_id, seq)? else {
                return Ok(false);
            };
            let now_ms = now().timestamp_millis();
            if current.status != DeliveryStatus::Pending || current.next_attempt_ms > now_ms {
                return Ok(false);
            }
            current.next_attempt_ms = now_ms.saturating_add(lease.as_millis() as i64);
            schema::put::<Deliveries>(tx, &current)?;
            Ok(true)
        })
        .await
    }

    /// The hook a delivery goes to (none: deleted).
    pub fn hook_of(&self, delivery: &Delivery) -> Result<Option<Hook>> {
        Ok(schema::hooks::get(self.meta.as_ref(), delivery.hook_id)?)
    }

    /// Records the outcome of a delivery attempt: delivered, due again later, or given up.
    pub async fn record_attempt(&self, delivery: &Delivery, outcome: Attempted) -> Result<()> {
        let settings = self.event_settings;
        let (hook_id, seq) = (delivery.hook_id, delivery.seq);
        self.write(|tx| {
            let Some(mut current) = schema::outbox::load(tx, hook_id, seq)? else {
                return Ok(());
            };
            if current.status != DeliveryStatus::Pending {
                return Ok(());
            }
            let at = now();
            current.attempts += 1;
            current.response_code = outcome.response_code;
            current.duration_ms = Some(outcome.duration_ms);
            current.error = outcome.error.clone();
            if outcome.delivered {
                current.status = DeliveryStatus::Delivered;
                current.finished_at = Some(at);
            } else if outcome.give_up
                || (at - current.created_at).to_std().unwrap_or_default() >= settings.retry_for
            {
                current.status = DeliveryStatus::Failed;
                current.finished_at = Some(at);
            } else {
                let exponent = current.attempts.saturating_sub(1).min(30);
                let delay = settings
                    .retry_base
                    .saturating_mul(1u32 << exponent)
                    .min(settings.retry_cap);
                current.next_attempt_ms = at.timestamp_millis() + delay.as_millis() as i64;
            }
            schema::put::<Deliveries>(tx, &current)?;
            Ok(())
        })
        .await
    }
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, Default)]
pub struct Attempted {
    pub delivered: bool,
    /// The hook is gone: nothing will ever deliver it.
    pub give_up: bool,
    pub response_code: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
}

fn kind_name(kind: &str) -> &'static str {
    const KINDS: [&str; 16] = [
        "model",
        "version",
        "file",
        "alias",
        "tag",
        "run",
        "package",
        "push",
        "tag_push",
        "merge_request",
        "issue",
        "note",
        "build",
        "pipeline",
        "wiki_page",
        "release",
    ];
    KINDS
        .iter()
        .find(|k| **k == kind)
        .copied()
        .unwrap_or("event")
}

fn apply_flags(events: &mut Vec<String>, flags: &[(String, bool)]) -> Result<()> {
    for (flag, on) in flags {
        if !known_flag(flag) {
            return Err(Error::bad(format!("unknown event flag {flag}")));
        }
        events.retain(|e| e != flag);
        if *on {
            events.push(flag.clone());
        }
    }
    events.sort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_recognised() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "fd00::1",
            "0.0.0.0",
            "::ffff:127.0.0.1",
            "100.64.0.1",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
    }
}
