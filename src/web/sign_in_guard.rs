//! What stands between the sign-in form and argon2: a password check costs 19 MiB and tens of
//! milliseconds of a core, so anonymous callers must not be able to run many at once.
//!
//! - at most as many checks run at once as there are cores; a caller waits briefly for one of
//!   them and is otherwise told to come back (429 with `Retry-After`);
//! - each client address and each username may try a few times a minute (token buckets,
//!   `governor`);
//! - a username is locked for a while after repeated failures in a row, whether or not such a
//!   user exists (so that a lock tells nothing about which names exist), and the lock is
//!   logged.
//!
//! State is in memory: a restart forgets locks and buckets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::Semaphore;

/// The knobs of the guard (`serve --sign-in-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInPolicy {
    /// Attempts per minute per client address and per username; 0 for no limit.
    pub per_minute: u32,
    /// Failures in a row that lock a username; 0 never locks.
    pub lockout_failures: u32,
    /// How long a lock lasts.
    pub lockout: Duration,
    /// Password checks at once; 0 for the number of cores.
    pub concurrent_checks: usize,
    /// How long an attempt waits for a free check before it is refused.
    pub queue_wait: Duration,
}

impl Default for SignInPolicy {
    fn default() -> Self {
        SignInPolicy {
            per_minute: 10,
            lockout_failures: 10,
            lockout: Duration::from_secs(600),
            concurrent_checks: 0,
            queue_wait: Duration::from_secs(2),
        }
    }
}

/// Why an attempt is not even checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Too many attempts from this address or for this username.
    Throttled { retry_after: Duration },
    /// Too many failures in a row for this username.
    Locked { retry_after: Duration },
    /// Every password check is busy.
    Busy { retry_after: Duration },
}

impl Refusal {
    pub fn retry_after(&self) -> Duration {
        match self {
            Refusal::Throttled { retry_after }
            | Refusal::Locked { retry_after }
            | Refusal::Busy { retry_after } => *retry_after,
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            Refusal::Throttled { .. } => {
                "Too many sign-in attempts. Wait a moment before trying again."
            }
            Refusal::Locked { .. } => {
                "Too many failed sign-in attempts for this username: it is locked for a while."
            }
            Refusal::Busy { .. } => "The server is busy signing others in. Try again shortly.",
        }
    }
}

/// Failures in a row of one username.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// Usernames whose failures are remembered at most; the oldest are forgotten beyond this.
const MAX_TRACKED_USERNAMES: usize = 100_000;
/// Keys a rate limiter keeps before it drops those whose buckets are full again.
const RETAIN_ABOVE: usize = 10_000;

type Job = Box<dyn FnOnce() + Send>;

pub struct SignInGuard {
    policy: SignInPolicy,
    /// One per checking thread: a check waits for a slot, then goes to a free thread.
    slots: Arc<Semaphore>,
    jobs: Mutex<mpsc::Sender<Job>>,
    by_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    by_username: Option<DefaultKeyedRateLimiter<String>>,
    failures: Mutex<HashMap<String, Failures>>,
}

impl SignInGuard {
    pub fn new(policy: SignInPolicy) -> SignInGuard {
        let checks = match policy.concurrent_checks {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let quota = NonZeroU32::new(policy.per_minute).map(Quota::per_minute);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..checks {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-check-{i}"))
                .spawn(move || loop {
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return, // the guard is gone
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "could not start a password-check thread");
            }
        }
        SignInGuard {
            policy,
            slots: Arc::new(Semaphore::new(checks)),
            jobs: Mutex::new(jobs),
            by_address: quota.map(DefaultKeyedRateLimiter::keyed),
            by_username: quota.map(DefaultKeyedRateLimiter::keyed),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Whether an attempt for `username` from `address` may be checked at all.
    pub fn admit(&self, address: Option<IpAddr>, username: &str) -> Result<(), Refusal> {
        let username = username.to_lowercase();
        if let Some(until) = self.locked_until(&username) {
            return Err(Refusal::Locked {
                retry_after: until.saturating_duration_since(Instant::now()),
            });
        }
        let now = DefaultClock::default().now();
        if let (Some(limiter), Some(address)) = (&self.by_address, address) {
            if limiter.len() > RETAIN_ABOVE {
                limiter.retain_recent();
            }
            limiter
                .check_key(&address)
                .map_err(|not_until| Refusal::Throttled {
                    retry_after: not_until.wait_time_from(now),
                })?;
        }
        if let Some(limiter) = &self.by_username {
            if limiter.len() > RETAIN_ABOVE {
                limiter.retain_recent();
            }
            limiter
                .check_key(&username)
                .map_err(|not_until| Refusal::Throttled {
                    retry_after: not_until.wait_time_from(now),
                })?;
        }
        Ok(())
    }

    /// Runs `check` (a password check) on one of the guard's own threads, after waiting
    /// briefly for one to be free. The threads are few and long-lived, so that argon2's
    /// memory is reused by them instead of being left behind in the allocator's arenas of
    /// many short-lived blocking threads.
    pub async fn run_check<T: Send + 'static>(
        &self,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Refusal> {
        let busy = Refusal::Busy {
            retry_after: Duration::from_secs(1),
        };
        let permit =
            match tokio::time::timeout(self.policy.queue_wait, self.slots.clone().acquire_owned())
                .await
            {
                Ok(Ok(permit)) => permit,
                _ => return Err(busy),
            };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(check());
            drop(permit);
        });
        let sent = self
            .jobs
            .lock()
            .map_err(|_| busy.clone())?
            .send(job)
            .is_ok();
        if !sent {
            return Err(busy);
        }
        rx.await.map_err(|_| busy)
    }

    /// A wrong password (or an unknown username) for `username`; locks it after too many.
    pub fn failed(&self, username: &str, address: Option<IpAddr>) {
        if self.policy.lockout_failures == 0 {
            return;
        }
        let username = username.to_lowercase();
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_TRACKED_USERNAMES && !failures.contains_key(&username) {
            forget_oldest(&mut failures, self.policy.lockout);
        }
        let entry = failures.entry(username.clone()).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        if entry.locked_until.is_some_and(|until| until <= now) {
            entry.count = 0;
            entry.locked_until = None;
        }
        entry.count += 1;
        entry.last = now;
        if entry.count >= self.policy.lockout_failures && entry.locked_until.is_none() {
            entry.locked_until = Some(now + self.policy.lockout);
            tracing::warn!(
                username = %username,
                address = ?address,
                failures = entry.count,
                locked_for_seconds = self.policy.lockout.as_secs(),
                "sign-in locked after repeated failures"
            );
        }
    }

    /// A successful sign-in clears the username's failures.
    pub fn succeeded(&self, username: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&username.to_lowercase());
    }

    fn locked_until(&self, username: &str) -> Option<Instant> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures
            .get(username)
            .and_then(|f| f.locked_until)
            .filter(|until| *until > Instant::now())
    }
}

/// Makes room: drops failures older than a lock (and expired locks), else the oldest tenth.
fn forget_oldest(failures: &mut HashMap<String, Failures>, lockout: Duration) {
    let now = Instant::now();
    failures.retain(|_, f| match f.locked_until {
        Some(until) => until > now,
        None => now.duration_since(f.last) < lockout,
    });
    if failures.len() >= MAX_TRACKED_USERNAMES {
        let mut ages: Vec<(Instant, String)> =
            failures.iter().map(|(k, f)| (f.last, k.clone())).collect();
        ages.sort();
        for (_, key) in ages.into_iter().take(MAX_TRACKED_USERNAMES / 10) {
            failures.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(per_minute: u32, lockout_failures: u32) -> SignInPolicy {
        SignInPolicy {
            per_minute,
            lockout_failures,
            ..SignInPolicy::default()
        }
    }

    #[test]
    fn addresses_and_usernames_are_throttled() {
        let guard = SignInGuard::new(policy(3, 0));
        let here = Some(IpAddr::from([10, 0, 0, 1]));
        let there = Some(IpAddr::from([10, 0, 0, 2]));
        for name in ["a", "b", "c"] {
            assert!(guard.admit(here, name).is_ok());
        }
        let refused = guard.admit(here, "d").unwrap_err();
        assert!(matches!(refused, Refusal::Throttled { .. }));
        assert!(refused.retry_after() > Duration::ZERO);
        // Another address may try, but not for a username tried too often.
        assert!(guard.admit(there, "e").is_ok());
        assert!(guard.admit(there, "A").is_ok());
        assert!(guard.admit(there, "a").is_ok());
        assert!(matches!(
            guard.admit(there, "a"),
            Err(Refusal::Throttled { .. })
        ));
    }

    #[test]
    fn repeated_failures_lock_a_username_until_it_expires() {
        let mut p = policy(0, 3);
        p.lockout = Duration::from_millis(200);
        let guard = SignInGuard::new(p);
        for _ in 0..2 {
            guard.failed("Alice", None);
        }
        assert!(guard.admit(None, "alice").is_ok());
        guard.failed("alice", None);
        assert!(matches!(
            guard.admit(None, "ALICE"),
            Err(Refusal::Locked { .. })
        ));
        assert!(guard.admit(None, "bob").is_ok());
        std::thread::sleep(Duration::from_millis(250));
        assert!(guard.admit(None, "alice").is_ok());
        guard.succeeded("alice");
        guard.failed("alice", None);
        assert!(guard.admit(None, "alice").is_ok());
    }
}
