//! [`MemoryStore`]: the embedded default, for one process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::store::{SessionRecord, SessionStore, StoreError};
use crate::authenticator::BoxFuture;
use crate::clock::unix_secs;

/// Sessions in process memory, swept of expired records every 64 creations (and on
/// [`sweep`](MemoryStore::sweep)). Sessions vanish on restart and are not shared
/// between processes: use Redis or Postgres when you run more than one.
///
/// ```
/// let store = portcullis::session::MemoryStore::new();
/// assert_eq!(store.len(), 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    records: Mutex<HashMap<String, SessionRecord>>,
    creates: AtomicU64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    fn map(&self) -> MutexGuard<'_, HashMap<String, SessionRecord>> {
        self.inner.records.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Number of records (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.map().len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Removes expired records; returns how many.
    pub fn sweep(&self) -> usize {
        let now = unix_secs();
        let mut map = self.map();
        let before = map.len();
        map.retain(|_, r| !r.is_expired(now));
        before - map.len()
    }
}

impl SessionStore for MemoryStore {
    fn create<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if self.inner.creates.fetch_add(1, Ordering::Relaxed) % 64 == 63 {
                self.sweep();
            }
            self.map().insert(record.id_hash.clone(), record.clone());
            Ok(())
        })
    }
    fn load<'a>(
        &'a self,
        id_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        Box::pin(async move { Ok(self.map().get(id_hash).cloned()) })
    }
    fn touch<'a>(
        &'a self,
        id_hash: &'a str,
        touched_at: u64,
        idle_expires_at: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if let Some(r) = self.map().get_mut(id_hash) {
                r.touch(touched_at, idle_expires_at);
            }
            Ok(())
        })
    }
    fn delete<'a>(&'a self, id_hash: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { Ok(self.map().remove(id_hash).is_some()) })
    }
    fn delete_all_for_subject<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut map = self.map();
            let before = map.len();
            map.retain(|_, r| r.subject != subject);
            Ok((before - map.len()) as u64)
        })
    }
}
