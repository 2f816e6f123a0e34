//! Download counts per file and per version (its package), counted in memory on the download
//! path and written in one transaction per flush interval by a background task (and at a clean
//! shutdown), so that a download costs a short lock, never a write. A crash loses at most one
//! interval's counts.

use std::collections::HashMap;
use std::sync::Mutex;

use super::error::Result;
use super::records::{now, PackageFile, Timestamp};
use super::schema::usage::{self, Counted};
use super::Registry;
use crate::store::meta::TxError;

/// Counts not yet written.
#[derive(Debug, Default)]
pub struct UsageCounters {
    pub enabled: bool,
    pending: Mutex<HashMap<Counted, (u64, Timestamp)>>,
}

impl UsageCounters {
    pub fn new(enabled: bool) -> Self {
        UsageCounters {
            enabled,
            pending: Mutex::new(HashMap::new()),
        }
    }

    fn add(&self, counted: Counted, at: Timestamp) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let entry = pending.entry(counted).or_insert((0, at));
        entry.0 += 1;
        entry.1 = at;
    }

    fn pending(&self, counted: Counted) -> Option<(u64, Timestamp)> {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.get(&counted).copied()
    }

    fn take(&self) -> HashMap<Counted, (u64, Timestamp)> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *pending)
    }

    fn put_back(&self, counts: HashMap<Counted, (u64, Timestamp)>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (counted, (count, at)) in counts {
            let entry = pending.entry(counted).or_insert((0, at));
            entry.0 += count;
            entry.1 = entry.1.max(at);
        }
    }
}

/// How often something was downloaded, and when last.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UsageView {
    pub download_count: u64,
    pub last_downloaded_at: Option<Timestamp>,
}

impl Registry {
    /// Counts a download of a file (and of its package's version).
    pub fn count_download(&self, file: &PackageFile) {
        if !self.usage.enabled {
            return;
        }
        let at = now();
        self.usage.add(Counted::File(file.id), at);
        self.usage.add(Counted::Package(file.package_id), at);
    }

    /// Writes the counts kept in memory, in one transaction; how many entries it wrote.
    pub async fn flush_usage(&self) -> Result<usize> {
        let counts = self.usage.take();
        if counts.is_empty() {
            return Ok(0);
        }
        let written = self
            .write(|tx| {
                for (counted, (count, at)) in &counts {
                    usage::add(tx, *counted, *count, *at)?;
                }
                Ok::<_, TxError<super::Error>>(counts.len())
            })
            .await;
        match written {
            Ok(n) => Ok(n),
            Err(error) => {
                // Keep them for the next flush.
                self.usage.put_back(counts);
                Err(error)
            }
        }
    }

    fn usage_of(&self, counted: Counted) -> Result<UsageView> {
        let stored = usage::get(self.meta.as_ref(), counted)?;
        Ok(self.with_pending(counted, stored))
    }

    /// A stored count with the downloads not yet flushed added.
    fn with_pending(&self, counted: Counted, stored: Option<usage::Usage>) -> UsageView {
        let pending = self.usage.pending(counted);
        let mut view = UsageView {
            download_count: stored.as_ref().map_or(0, |u| u.download_count),
            last_downloaded_at: stored.and_then(|u| u.last_downloaded_at),
        };
        if let Some((count, at)) = pending {
            view.download_count += count;
            view.last_downloaded_at = Some(view.last_downloaded_at.map_or(at, |t| t.max(at)));
        }
        view
    }

    /// The downloads of several files or packages, in the order asked (one batched read).
    pub fn usages_of(&self, counted: &[Counted]) -> Result<Vec<UsageView>> {
        let stored = usage::get_of(self.meta.as_ref(), counted)?;
        Ok(counted
            .iter()
            .zip(stored)
            .map(|(counted, stored)| self.with_pending(*counted, stored))
            .collect())
    }

    /// A file's downloads.
    pub fn file_usage(&self, file_id: u64) -> Result<UsageView> {
        self.usage_of(Counted::File(file_id))
    }

    /// A version's downloads: those of its package's files.
    pub fn package_usage(&self, package_id: u64) -> Result<UsageView> {
        self.usage_of(Counted::Package(package_id))
    }
}
