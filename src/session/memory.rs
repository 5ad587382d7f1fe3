//! [`MemoryStore`]: the embedded default, for one process.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::store::{SessionRecord, SessionStore};
use crate::StoreError;
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

/// Records by id hash. The keys are SHA-256 hex of random ids, so the map hashes only
/// their first 16 characters (already uniform; nobody can choose them).
type Records = HashMap<String, Arc<SessionRecord>, BuildHasherDefault<PrefixHasher>>;

#[derive(Default)]
struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        if self.0 == 0
            && let Some(head) = bytes.get(..16)
        {
            let (a, b) = head.split_at(8);
            let word = |w: &[u8]| u64::from_le_bytes(w.try_into().unwrap_or_default());
            // A multiply spreads the hex digits' low bits into the high bits hashbrown uses.
            self.0 = (word(a) ^ word(b).rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        } else {
            for b in bytes {
                self.0 = self.0.rotate_left(5) ^ u64::from(*b);
            }
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    records: Mutex<Records>,
    creates: AtomicU64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    fn map(&self) -> MutexGuard<'_, Records> {
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
            self.map()
                .insert(record.id_hash.clone(), Arc::new(record.clone()));
            Ok(())
        })
    }
    fn load<'a>(
        &'a self,
        id_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        Box::pin(async move { Ok(self.map().get(id_hash).map(|r| (**r).clone())) })
    }
    fn load_now(&self, id_hash: &str) -> Option<Result<Option<Arc<SessionRecord>>, StoreError>> {
        Some(Ok(self.map().get(id_hash).cloned()))
    }
    fn replace<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            Ok(match self.map().get_mut(&record.id_hash) {
                Some(r) if r.version == record.version => {
                    // A new `Arc`: a request may still hold the old version, lent records never change.
                    let mut next = record.clone();
                    next.version += 1;
                    *r = Arc::new(next);
                    true
                }
                _ => false,
            })
        })
    }
    fn rotate<'a>(
        &'a self,
        record: &'a SessionRecord,
        new_id_hash: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let old_id_hash = record.id_hash.as_str();
        Box::pin(async move {
            let mut map = self.map();
            let Some(mut rec) = map.remove(old_id_hash) else {
                return Ok(false);
            };
            let r = Arc::make_mut(&mut rec);
            r.id_hash = new_id_hash.to_owned();
            r.changed();
            map.insert(new_id_hash.to_owned(), rec);
            Ok(true)
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
