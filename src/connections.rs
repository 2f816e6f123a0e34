//! The server's open connections, counted against a cap. Every connection is either busy (a
//! request is being served, its response still being sent) or idle (before its first request,
//! or kept alive between two). When a new connection arrives at the cap, the connection idle
//! the longest is asked to close (hyper closes an idle connection at once); when none is idle,
//! the new connection is refused. So a flood of idle connections cannot use up the open-file
//! limit, and a health check on a fresh connection is still answered.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::sync::Notify;

/// The cap when none is configured: half the open-file limit (each request may open files of
/// its own), less a reserve for the stores, and at most 10,000.
pub fn default_cap(open_file_limit: u64) -> usize {
    (open_file_limit.saturating_sub(256) / 2).clamp(16, 10_000) as usize
}

/// The soft open-file limit of this process.
pub fn open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    }
}

struct Entry {
    /// Requests being served (responses being sent).
    busy: usize,
    /// When the connection last became idle (or was accepted).
    idle_since: Instant,
    /// Asked to close; no longer counted against the cap.
    shedding: bool,
    shed: Arc<Notify>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    live: HashMap<u64, Entry>,
}

pub struct Connections {
    cap: usize,
    table: Mutex<Table>,
    /// When a refusal was last logged (so that a flood is not also a flood of log lines).
    last_warning: Mutex<Option<Instant>>,
}

/// One admitted connection: asks it to close when shed, and leaves the table when dropped.
pub struct Admitted {
    connections: Arc<Connections>,
    id: u64,
    pub shed: Arc<Notify>,
}

impl Connections {
    pub fn new(cap: usize) -> Arc<Connections> {
        Arc::new(Connections {
            cap: cap.max(1),
            table: Mutex::new(Table::default()),
            last_warning: Mutex::new(None),
        })
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a new connection, shedding the longest-idle one at the cap; `None` when every
    /// connection is busy.
    pub fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut table = self.table();
        let counted = table.live.values().filter(|e| !e.shedding).count();
        if counted >= self.cap {
            let oldest_idle = table
                .live
                .iter_mut()
                .filter(|(_, e)| !e.shedding && e.busy == 0)
                .min_by_key(|(_, e)| e.idle_since);
            match oldest_idle {
                Some((_, entry)) => {
                    entry.shedding = true;
                    entry.shed.notify_one();
                }
                None => {
                    drop(table);
                    self.warn_refused();
                    return None;
                }
            }
        }
        let id = table.next_id;
        table.next_id += 1;
        let shed = Arc::new(Notify::new());
        table.live.insert(
            id,
            Entry {
                busy: 0,
                idle_since: Instant::now(),
                shedding: false,
                shed: shed.clone(),
            },
        );
        Some(Admitted {
            connections: self.clone(),
            id,
            shed,
        })
    }

    fn warn_refused(&self) {
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
            *last = Some(Instant::now());
            tracing::warn!(
                cap = self.cap,
                "refusing connections: all {} are busy (--max-connections)",
                self.cap
            );
        }
    }

    /// How many connections are open (shed ones included until they have closed).
    pub fn open(&self) -> usize {
        self.table().live.len()
    }
}

impl Admitted {
    /// Marks a request as begun; the returned guard marks it done when dropped (with the
    /// response body, once it has been sent).
    pub fn request(&self) -> Busy {
        if let Some(entry) = self.connections.table().live.get_mut(&self.id) {
            entry.busy += 1;
        }
        Busy {
            connections: self.connections.clone(),
            id: self.id,
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.connections.table().live.remove(&self.id);
    }
}

/// A request in progress on a connection.
pub struct Busy {
    connections: Arc<Connections>,
    id: u64,
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(entry) = self.connections.table().live.get_mut(&self.id) {
            entry.busy = entry.busy.saturating_sub(1);
            if entry.busy == 0 {
                entry.idle_since = Instant::now();
            }
        }
    }
}

/// A response body that keeps its request counted as busy until it has been sent (or
/// dropped).
pub struct BusyBody {
    pub inner: Body,
    pub busy: Busy,
}

impl http_body::Body for BusyBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_idle_connection_is_shed_at_the_cap() {
        let connections = Connections::new(2);
        let first = connections.admit().unwrap();
        let second = connections.admit().unwrap();
        let _busy = first.request();
        // At the cap: the idle one (second) is shed, not the busy one.
        let third = connections.admit().unwrap();
        assert!(connections.table().live[&second.id].shedding);
        assert!(!connections.table().live[&first.id].shedding);
        drop(second);
        // Busy and idle: the idle third goes next.
        let _fourth = connections.admit().unwrap();
        assert!(connections.table().live[&third.id].shedding);
        assert_eq!(connections.open(), 3);
    }

    #[test]
    fn with_every_connection_busy_a_new_one_is_refused() {
        let connections = Connections::new(1);
        let only = connections.admit().unwrap();
        let busy = only.request();
        assert!(connections.admit().is_none());
        drop(busy);
        assert!(connections.admit().is_some());
    }

    #[test]
    fn the_default_cap_follows_the_open_file_limit() {
        assert_eq!(default_cap(1024), 384);
        assert_eq!(default_cap(1 << 20), 10_000);
        assert_eq!(default_cap(100), 16);
    }
}
