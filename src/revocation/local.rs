//! [`Local`]: the local copy and its freshness, shared with a backend's sync task, and
//! the [`Backend`] a shared list writes through.

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::entry::Entry;
use super::filter::Filter;
use super::set::{HASH_PREFIX, Set};
use crate::authenticator::BoxFuture;
use crate::clock::unix_secs;

/// Where revocations are written and how they reach every instance.
pub(crate) trait Backend: Send + Sync + 'static {
    /// Stores `entry` for every instance (and, through the subscription, for this one).
    fn publish<'a>(&'a self, entry: &'a Entry) -> BoxFuture<'a, Result<(), String>>;
}

/// The local copy and its freshness, shared with a backend's sync task.
pub(crate) struct Local {
    pub(crate) set: RwLock<Set>,
    /// True once anything was ever revoked: checks skip everything until then.
    pub(crate) any: AtomicBool,
    /// The copy is complete and being kept current.
    pub(crate) synced: AtomicBool,
    /// When it was last known complete (Unix seconds).
    pub(crate) synced_at: AtomicU64,
    /// When failing open was last logged (Unix seconds).
    pub(super) warned_at: AtomicU64,
    pub(super) writes: AtomicU64,
    /// Subjects, token ids and session ids present in `set` (and maybe more).
    pub(super) filter: Filter,
    /// Some token is revoked by hash: jti-less tokens must be hashed and looked up.
    pub(super) hashed: AtomicBool,
    /// Some back-channel logout is on the list: OpenID Connect sessions are looked up.
    pub(super) providers: AtomicBool,
}

impl Local {
    pub(super) fn new(synced: bool) -> Self {
        Local {
            set: RwLock::new(Set::default()),
            any: AtomicBool::new(false),
            synced: AtomicBool::new(synced),
            synced_at: AtomicU64::new(unix_secs()),
            warned_at: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            filter: Filter::default(),
            hashed: AtomicBool::new(false),
            providers: AtomicBool::new(false),
        }
    }

    /// The key `e` is found under in the filter; `None` for a hash-based token entry
    /// and a back-channel logout (each has a flag of its own).
    pub(super) fn filter_key(e: &Entry) -> Option<&str> {
        match e {
            Entry::Token { id, .. } if id.starts_with(HASH_PREFIX) => None,
            Entry::Provider { .. } => None,
            Entry::Token { id, .. } | Entry::Session { id, .. } => Some(id),
            Entry::Subject { subject, .. } => Some(subject),
        }
    }

    /// Marks what `e` adds in the filter (before it is in the set: a reader that finds
    /// the bit but not yet the entry just takes the slow path once).
    pub(super) fn note(&self, e: &Entry) {
        match (e, Self::filter_key(e)) {
            (_, Some(k)) => self.filter.insert(k),
            (Entry::Provider { .. }, None) => self.providers.store(true, Ordering::Release),
            (_, None) => self.hashed.store(true, Ordering::Release),
        }
    }
    pub(crate) fn apply(&self, e: Entry) {
        self.note(&e);
        let mut set = self.set.write().unwrap_or_else(|p| p.into_inner());
        set.apply(e);
        // Expired entries go every 1024 writes, so the copy stays bounded by what is live.
        if self.writes.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            set.sweep(unix_secs());
        }
        self.any.store(true, Ordering::Release);
    }
    /// Replaces the whole copy (a resync) and marks it current.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn replace(&self, entries: Vec<Entry>) {
        let now = unix_secs();
        let live: Vec<Entry> = entries
            .into_iter()
            .filter(|e| e.useless_after() > now)
            .collect();
        let mut set = self.set.write().unwrap_or_else(|p| p.into_inner());
        // New bits before the new set; a bit that stays keeps its bit throughout.
        self.filter
            .replace(live.iter().filter_map(Self::filter_key));
        let hashed = live
            .iter()
            .any(|e| matches!(e, Entry::Token { id, .. } if id.starts_with(HASH_PREFIX)));
        let providers = live.iter().any(|e| matches!(e, Entry::Provider { .. }));
        let mut fresh = Set::default();
        for e in live {
            fresh.apply(e);
        }
        let any = fresh.len() > 0;
        *set = fresh;
        // Only now can hash-based entries and logouts be dropped from the pre-check.
        self.hashed.store(hashed, Ordering::Release);
        self.providers.store(providers, Ordering::Release);
        drop(set);
        if any {
            self.any.store(true, Ordering::Release);
        }
        self.synced_at.store(now, Ordering::Release);
        self.synced.store(true, Ordering::Release);
    }
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn lost(&self) {
        if self.synced.swap(false, Ordering::AcqRel) {
            self.synced_at.store(unix_secs(), Ordering::Release);
        }
    }
}
