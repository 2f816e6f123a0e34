//! Sends the outbox: a background task delivers each hook's pending events in order, one at a
//! time per hook, retrying with exponential backoff. Woken by writes that announce events, and
//! at start (pending deliveries of an earlier run are picked up).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::domain::event_records::{Delivery, Hook};
use crate::domain::events::{resolve_target, Attempted};
use crate::domain::Registry;

/// The Standard Webhooks signature of a message: `v1,<base64 HMAC-SHA256("{id}.{ts}.{body}")>`.
/// A secret of the form `whsec_<base64>` is the base64-decoded key, as the standard says;
/// any other token is the key as it is.
pub fn signature(secret: &str, message_id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec());
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap_or_else(|_| {
        <Hmac<Sha256> as KeyInit>::new_from_slice(b"").expect("hmac takes any key")
    });
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

/// GitLab's `X-Gitlab-Event` for an object kind: `Version Hook`, `Model Hook`, ...
pub fn gitlab_event(kind: &str) -> String {
    let words: Vec<String> = kind
        .split('_')
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect();
    format!("{} Hook", words.join(" "))
}

/// Starts the deliverer; `base_url` makes the payloads' links.
pub fn spawn(registry: Arc<Registry>, base_url: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(registry, base_url))
}

async fn run(registry: Arc<Registry>, base_url: String) {
    let in_flight: Arc<Mutex<HashSet<u64>>> = Arc::default();
    let wake = registry.outbox_wake.clone();
    loop {
        let mut wait = Duration::from_secs(60);
        match registry.outbox_heads() {
            Ok(heads) => {
                let now = chrono::Utc::now().timestamp_millis();
                let mut due = Vec::new();
                for delivery in heads {
                    let due_in = delivery.next_attempt_ms - now;
                    if due_in > 0 {
                        wait = wait.min(Duration::from_millis(due_in as u64));
                    } else {
                        due.push(delivery);
                    }
                }
                // A delivery read here was committed with its change, but perhaps not yet
                // flushed: make both durable before anyone hears of the change, so that a crash
                // can never announce a change it lost.
                if !due.is_empty() {
                    if let Err(error) = registry.persist().await {
                        tracing::error!(%error, "flushing before webhook deliveries failed");
                        due.clear();
                        wait = Duration::from_secs(5);
                    }
                }
                for delivery in due {
                    let started = in_flight
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(delivery.hook_id);
                    if !started {
                        continue;
                    }
                    let (registry, base_url, in_flight) =
                        (registry.clone(), base_url.clone(), in_flight.clone());
                    tokio::spawn(async move {
                        let hook_id = delivery.hook_id;
                        // No other attempt of this hook runs in this process now; the claim
                        // in the store keeps other replicas off it too. The head was read
                        // before the flush; the attempt before may have delivered it since.
                        match registry.claim_delivery(&delivery).await {
                            Ok(true) => attempt(&registry, delivery, &base_url).await,
                            Ok(false) => {}
                            Err(error) => {
                                tracing::error!(%error, "claiming a webhook delivery failed")
                            }
                        }
                        in_flight
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&hook_id);
                        registry.outbox_wake.notify_one();
                    });
                }
            }
            Err(error) => {
                tracing::error!(%error, "reading the webhook outbox failed");
                wait = Duration::from_secs(5);
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One attempt at a delivery, and its outcome recorded.
async fn attempt(registry: &Registry, delivery: Delivery, base_url: &str) {
    let outcome = match registry.hook_of(&delivery) {
        Ok(Some(hook)) => send(registry, &hook, &delivery, base_url).await,
        Ok(None) => Attempted {
            give_up: true,
            error: Some("the hook was deleted".into()),
            ..Attempted::default()
        },
        Err(error) => {
            tracing::error!(%error, "reading a webhook failed");
            return;
        }
    };
    if !outcome.delivered {
        tracing::info!(
            hook = delivery.hook_id,
            seq = delivery.seq,
            code = ?outcome.response_code,
            error = ?outcome.error,
            "webhook delivery failed; retrying later"
        );
    }
    if let Err(error) = registry.record_attempt(&delivery, outcome).await {
        tracing::error!(%error, "recording a webhook delivery failed");
    }
}

/// The body a delivery sends: its payload with the link made of the external URL.
pub fn body_of(delivery: &Delivery, base_url: &str) -> Vec<u8> {
    let mut payload = delivery.payload.clone();
    if let Some(object) = payload.as_object_mut() {
        object.insert(
            "url".into(),
            serde_json::Value::String(format!("{base_url}{}", delivery.path)),
        );
    }
    serde_json::to_vec(&payload).unwrap_or_default()
}

async fn send(registry: &Registry, hook: &Hook, delivery: &Delivery, base_url: &str) -> Attempted {
    let settings = registry.event_settings;
    let started = Instant::now();
    let failed = |error: String, code: Option<u16>| Attempted {
        delivered: false,
        give_up: false,
        response_code: code,
        duration_ms: started.elapsed().as_millis() as u64,
        error: Some(error),
    };
    // The address is checked again now: a name may resolve elsewhere than when the hook was
    // made. The request goes to the address checked.
    let (host, addresses) = match resolve_target(&hook.url, settings.allow_private).await {
        Ok(target) => target,
        Err(error) => return failed(error.to_string(), None),
    };
    let Some(address): Option<SocketAddr> = addresses.first().copied() else {
        return failed("the hook's host does not resolve".into(), None);
    };
    let client = match reqwest::Client::builder()
        .resolve(&host, address)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .danger_accept_invalid_certs(!hook.enable_ssl_verification)
        .build()
    {
        Ok(client) => client,
        Err(error) => return failed(format!("building the HTTP client failed: {error}"), None),
    };
    let body = body_of(delivery, base_url);
    let timestamp = chrono::Utc::now().timestamp();
    let mut request = client
        .post(&hook.url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("modelyard/", env!("CARGO_PKG_VERSION")),
        )
        .header("webhook-id", &delivery.message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("x-gitlab-event", gitlab_event(&delivery.object_kind))
        .header("x-gitlab-event-uuid", &delivery.message_id)
        .header("x-modelyard-event", &delivery.event);
    if let Some(token) = &hook.token {
        request = request
            .header(
                "webhook-signature",
                signature(token, &delivery.message_id, timestamp, &body),
            )
            .header("x-gitlab-token", token);
    }
    match request.body(body).send().await {
        Ok(response) => {
            let code = response.status().as_u16();
            // Read (a bounded part of) the answer so that the connection ends cleanly.
            let _ = tokio::time::timeout(Duration::from_secs(1), response.bytes()).await;
            if (200..300).contains(&code) {
                Attempted {
                    delivered: true,
                    give_up: false,
                    response_code: Some(code),
                    duration_ms: started.elapsed().as_millis() as u64,
                    error: None,
                }
            } else {
                failed(format!("the receiver answered {code}"), Some(code))
            }
        }
        Err(error) => failed(format!("sending failed: {error}"), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(gitlab_event("version"), "Version Hook");
        assert_eq!(gitlab_event("tag_push"), "Tag Push Hook");
    }
}
