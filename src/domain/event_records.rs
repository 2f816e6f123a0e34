//! The records of events: webhooks, their deliveries (the outbox) and alias moves.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::records::Timestamp;

/// The registry events a hook can subscribe to, one flag each.
pub const REGISTRY_EVENTS: [&str; 7] = [
    "model_events",
    "version_events",
    "file_events",
    "alias_events",
    "tag_events",
    "run_events",
    "package_events",
];

/// GitLab's own hook flags: kept and shown for GitLab clients; nothing in a registry pushes
/// code, so only test deliveries ever use them.
pub const GITLAB_EVENTS: [&str; 11] = [
    "push_events",
    "tag_push_events",
    "merge_requests_events",
    "issues_events",
    "confidential_issues_events",
    "note_events",
    "confidential_note_events",
    "job_events",
    "pipeline_events",
    "wiki_page_events",
    "releases_events",
];

/// A project's webhook.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hook {
    pub id: u64,
    pub project_id: u64,
    pub url: String,
    /// The secret: sent as `X-Gitlab-Token` and the key of the Standard Webhooks signature.
    /// Never shown.
    pub token: Option<String>,
    pub name: String,
    pub description: String,
    /// The flags that are on, by name (of [`REGISTRY_EVENTS`] and [`GITLAB_EVENTS`]).
    pub events: Vec<String>,
    pub enable_ssl_verification: bool,
    pub created_at: Timestamp,
}

impl Hook {
    pub fn wants(&self, flag: &str) -> bool {
        self.events.iter().any(|e| e == flag)
    }
}

/// What the outbox keeps of a project's hooks to route events inside a transaction (which
/// cannot scan): each hook's id and flags.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HookRoutes {
    pub hooks: Vec<(u64, Vec<String>)>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not delivered yet: waiting for its turn or its next attempt.
    Pending,
    Delivered,
    /// Given up after the retry period.
    Failed,
}

/// One event for one hook: a record of the outbox, written in the transaction of the change it
/// announces, delivered after commit in `seq` order per hook.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    pub hook_id: u64,
    /// The hook's sequence: deliveries go out in this order.
    pub seq: u64,
    pub project_id: u64,
    /// The Standard Webhooks `webhook-id`: the same for a resend of the same event.
    pub message_id: String,
    /// `version.created`, ...
    pub event: String,
    /// `version`, ...; the GitLab header is `X-Gitlab-Event: <Kind> Hook`.
    pub object_kind: String,
    /// The payload without its `url`, which is made of the external URL at delivery.
    pub payload: Value,
    /// The path of the object's link below the external URL.
    pub path: String,
    pub created_at: Timestamp,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub response_code: Option<u16>,
    pub duration_ms: Option<u64>,
    pub error: Option<String>,
    /// When the next attempt is due (ms since the epoch).
    pub next_attempt_ms: i64,
    pub finished_at: Option<Timestamp>,
}

/// One move of a model's alias: kept forever, listed newest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AliasMove {
    pub model_id: u64,
    pub alias: String,
    /// The alias's sequence of moves.
    pub seq: u64,
    pub project_id: u64,
    pub user_id: Option<u64>,
    pub username: Option<String>,
    pub from_version_id: Option<u64>,
    pub from_version: Option<String>,
    /// `None`: the alias was deleted.
    pub to_version_id: Option<u64>,
    pub to_version: Option<String>,
    pub reason: Option<String>,
    pub created_at: Timestamp,
}
