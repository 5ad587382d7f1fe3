//! A bounded in-process copy of a remote store's records, so that a Redis or
//! PostgreSQL session answers at memory speed; see
//! [`SessionConfig::with_local_cache`](super::SessionConfig::with_local_cache).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::store::{SessionRecord, SessionStore};
use crate::StoreError;
use crate::authenticator::BoxFuture;
use crate::clock::unix_secs;

struct Cached {
    record: Arc<SessionRecord>,
    fetched: Instant,
}

/// The remote store with a local copy in front. Reads are served from the copy while
/// it is younger than the TTL and the record is not close to its expiry; every write
/// goes to the remote store and updates (or drops) the copy. Changes made by other
/// instances reach this one through the revocation list (logouts, rotations, logouts
/// everywhere, revocations: at once, as every request checks it) or when the copy ages
/// out (data and role changes: within the TTL).
pub(crate) struct LocalCache {
    inner: Arc<dyn SessionStore>,
    map: RwLock<HashMap<String, Cached>>,
    capacity: usize,
    ttl: Duration,
}

impl LocalCache {
    pub(crate) fn new(inner: Arc<dyn SessionStore>, capacity: usize, ttl: Duration) -> Self {
        LocalCache {
            inner,
            map: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
            ttl,
        }
    }

    fn remember(&self, record: Arc<SessionRecord>) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.capacity && !map.contains_key(&record.id_hash) {
            let now = Instant::now();
            map.retain(|_, c| now.duration_since(c.fetched) < self.ttl);
            if map.len() >= self.capacity {
                // Still full of live entries: start over rather than scan for the oldest.
                map.clear();
            }
        }
        map.insert(
            record.id_hash.clone(),
            Cached {
                record,
                fetched: Instant::now(),
            },
        );
    }

    fn forget(&self, id_hash: &str) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id_hash);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl SessionStore for LocalCache {
    fn create<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.inner.create(record).await?;
            self.remember(Arc::new(record.clone()));
            Ok(())
        })
    }

    fn load<'a>(
        &'a self,
        id_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        Box::pin(async move {
            let found = self.inner.load(id_hash).await?;
            match &found {
                Some(rec) => self.remember(Arc::new(rec.clone())),
                None => self.forget(id_hash),
            }
            Ok(found)
        })
    }

    /// The copy, while it is younger than the TTL and its record has more than the TTL
    /// left before either expiry (near its end, the remote store decides: another
    /// instance may have slid the idle expiry).
    fn load_now(&self, id_hash: &str) -> Option<Result<Option<Arc<SessionRecord>>, StoreError>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let c = map.get(id_hash)?;
        let fresh = c.fetched.elapsed() < self.ttl;
        let margin = unix_secs() + self.ttl.as_secs() + 1;
        (fresh && c.record.expires_at() > margin).then(|| Ok(Some(c.record.clone())))
    }

    fn replace<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            // Dropped first: a failed or lost write must not leave the old copy serving.
            self.forget(&record.id_hash);
            let replaced = self.inner.replace(record).await?;
            if replaced {
                let mut stored = record.clone();
                stored.version += 1;
                self.remember(Arc::new(stored));
            }
            Ok(replaced)
        })
    }

    fn rotate<'a>(
        &'a self,
        record: &'a SessionRecord,
        new_id_hash: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let old_id_hash = record.id_hash.as_str();
        Box::pin(async move {
            self.forget(old_id_hash);
            self.inner.rotate(record, new_id_hash).await
        })
    }

    fn delete<'a>(&'a self, id_hash: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            self.forget(id_hash);
            self.inner.delete(id_hash).await
        })
    }

    fn delete_all_for_subject<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            self.map
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|_, c| c.record.subject != subject);
            self.inner.delete_all_for_subject(subject).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::MemoryStore;

    fn record(id: &str, subject: &str, now: u64) -> SessionRecord {
        SessionRecord::new(
            format!("{id:0>64}"),
            subject.into(),
            now,
            now + 1800,
            now + 3600,
        )
    }

    #[tokio::test]
    async fn serves_copies_and_forgets_on_every_write() {
        let inner = Arc::new(MemoryStore::new());
        let cache = LocalCache::new(inner.clone(), 100, Duration::from_secs(30));
        let now = unix_secs();
        let a = record("a", "alice", now);
        cache.create(&a).await.unwrap();
        assert!(matches!(cache.load_now(&a.id_hash), Some(Ok(Some(_)))));
        assert!(cache.delete(&a.id_hash).await.unwrap());
        assert!(cache.load_now(&a.id_hash).is_none());
        // Unknown to the copy: the remote store answers, and the copy learns it.
        let b = record("b", "bob", now);
        inner.create(&b).await.unwrap();
        assert!(cache.load_now(&b.id_hash).is_none());
        assert!(cache.load(&b.id_hash).await.unwrap().is_some());
        assert!(cache.load_now(&b.id_hash).is_some());
        cache.delete_all_for_subject("bob").await.unwrap();
        assert!(cache.load_now(&b.id_hash).is_none());
        assert!(inner.load(&b.id_hash).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn near_its_end_or_past_the_ttl_the_remote_store_decides() {
        let inner = Arc::new(MemoryStore::new());
        let cache = LocalCache::new(inner, 100, Duration::from_secs(30));
        let now = unix_secs();
        let mut ending = record("c", "carol", now);
        ending.idle_expires_at = now + 10;
        cache.create(&ending).await.unwrap();
        assert!(cache.load_now(&ending.id_hash).is_none());
        let stale = LocalCache::new(Arc::new(MemoryStore::new()), 100, Duration::ZERO);
        let d = record("d", "dave", now);
        stale.create(&d).await.unwrap();
        assert!(stale.load_now(&d.id_hash).is_none());
    }

    #[tokio::test]
    async fn the_copy_is_bounded() {
        let cache = LocalCache::new(Arc::new(MemoryStore::new()), 64, Duration::from_secs(30));
        let now = unix_secs();
        for i in 0..10_000 {
            cache
                .create(&record(&i.to_string(), "s", now))
                .await
                .unwrap();
            assert!(cache.len() <= 64);
        }
    }
}
