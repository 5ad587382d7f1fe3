//! [`CachingStore`]: a bounded in-process copy of a remote store's records, so that a
//! Redis or PostgreSQL session answers at memory speed.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::store::{SessionRecord, SessionStore};
use crate::StoreError;
use crate::authenticator::BoxFuture;
use crate::clock::unix_secs;
use crate::error::{ConfigError, ErrorKind};
use crate::revocation::{Revocations, SESSION_SCOPE};

struct Cached {
    record: Arc<SessionRecord>,
    fetched: Instant,
}

/// Any [`SessionStore`] with a bounded local copy in front, kept honest by a revocation
/// list the instances share.
///
/// Reads are served from the copy while it is younger than the TTL (5 s by default) and
/// the record is not close to its expiry; near its idle or absolute expiry a record is
/// always read from the store. Every write goes to the store and updates (or drops) the
/// copy. Instances tell each other through `revocations` (shared through Redis with
/// [`RedisRevocations`](crate::revocation::RedisRevocations)): a logout, rotation or
/// login that ends a session, and a logout everywhere, are published there and refused
/// by every instance from the next request on (a logout everywhere also ends sessions
/// started in the same second); sessions revoked there are refused, from the copy and
/// from the store. Data and role changes made by another instance show within the TTL.
/// While the list cannot prove itself current, copies are not served (503).
///
/// Give the manager the same list ([`SessionConfig::with_revocations`](super::SessionConfig::with_revocations)),
/// as below: the session layer then checks it once more after a refresh hook, and
/// back-channel logout publishes through it.
///
/// At most [`with_capacity`](Self::with_capacity) records (100 000 by default) are
/// kept; when full of live copies the copy is emptied, never grown.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use portcullis::revocation::Revocations;
/// use portcullis::session::{CachingStore, RedisStore, SessionConfig, SessionManager};
/// let revocations = Revocations::redis("redis://127.0.0.1:6379", "app:").await?;
/// let store = CachingStore::new(RedisStore::connect("redis://127.0.0.1:6379").await?, revocations.clone())
///     .with_ttl(Duration::from_secs(5))?;
/// let config = SessionConfig::default().with_revocations(revocations);
/// let manager = SessionManager::new(store, config);
/// # Ok(()) }
/// ```
pub struct CachingStore {
    inner: Arc<dyn SessionStore>,
    revocations: Revocations,
    map: RwLock<HashMap<String, Cached>>,
    capacity: usize,
    ttl: Duration,
}

impl fmt::Debug for CachingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingStore")
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl CachingStore {
    /// `store` with a local copy in front, told about other instances' changes through
    /// `revocations`.
    pub fn new(store: impl SessionStore, revocations: Revocations) -> Self {
        Self::from_arc(Arc::new(store), revocations)
    }
    /// [`new`](Self::new) for a shared store.
    pub fn from_arc(store: Arc<dyn SessionStore>, revocations: Revocations) -> Self {
        CachingStore {
            inner: store,
            revocations,
            map: RwLock::new(HashMap::new()),
            capacity: 100_000,
            ttl: Duration::from_secs(5),
        }
    }
    /// At most `capacity` records in the copy (at least 1; default 100 000).
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }
    /// How old a copy may be served (default 5 s, at most [`MAX_TTL`](Self::MAX_TTL)):
    /// the longest another instance's data or role change takes to show here.
    ///
    /// # Errors
    /// `ttl` is longer than [`MAX_TTL`](Self::MAX_TTL).
    pub fn with_ttl(mut self, ttl: Duration) -> Result<Self, ConfigError> {
        if ttl > Self::MAX_TTL {
            return Err(ConfigError::new(format!(
                "CachingStore: a TTL of {ttl:?} is longer than {:?}",
                Self::MAX_TTL
            )));
        }
        self.ttl = ttl;
        Ok(self)
    }
    /// The longest TTL: one hour. Each ended session stays on the revocation list for
    /// the TTL (and 2 s), so the TTL also bounds how long announcements are kept.
    pub const MAX_TTL: Duration = Duration::from_secs(3600);

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

    /// Whether `record` may be served: `Ok(false)` when its session or subject is
    /// revoked, an error when the list cannot prove itself current.
    fn admitted(&self, record: &SessionRecord) -> Result<bool, StoreError> {
        match self.revocations.check_session(&record.context()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::Unavailable => {
                Err(StoreError::new("revocation list not in sync"))
            }
            Err(_) => Ok(false),
        }
    }

    /// Tells the other instances' copies that the session `id_hash` ended.
    async fn announce_end(&self, id_hash: &str) {
        let id = id_hash.get(..16).unwrap_or(id_hash).to_owned();
        let until = unix_secs() + self.ttl.as_secs() + 2;
        let revocations = self.revocations.clone();
        announce("the end of a session", async move {
            revocations.revoke_session(&id, until).await
        })
        .await;
    }

    /// Tells the other instances that every session of `subject` up to now ended (a
    /// logout everywhere; whole seconds, so everything created within this one ends).
    async fn announce_subject_end(&self, subject: &str) {
        let subject = subject.to_owned();
        let revocations = self.revocations.clone();
        announce("a logout everywhere", async move {
            revocations
                .revoke_subject(Some(SESSION_SCOPE), &subject, unix_secs())
                .await
        })
        .await;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Publishes `what` (a revocation write) and waits for it. It runs as a task of its
/// own, so a caller that gives up (a store timeout around the whole write) never cancels
/// it half-way; a failure is logged: the session is gone from the store already, and
/// other copies age out within the TTL.
async fn announce(
    what: &'static str,
    publish: impl Future<Output = Result<(), crate::AuthError>> + Send + 'static,
) {
    let _ = tokio::spawn(async move {
        if let Err(e) = publish.await {
            tracing::warn!(error = %e.reason(), "could not tell other instances of {what}");
        }
    })
    .await;
}

impl SessionStore for CachingStore {
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
            match found {
                Some(rec) if self.admitted(&rec)? => {
                    self.remember(Arc::new(rec.clone()));
                    Ok(Some(rec))
                }
                _ => {
                    self.forget(id_hash);
                    Ok(None)
                }
            }
        })
    }

    /// The copy, while it is younger than the TTL and its record has more than the TTL
    /// left before either expiry (near its end, the remote store decides: another
    /// instance may have slid the idle expiry).
    fn load_now(&self, id_hash: &str) -> Option<Result<Option<Arc<SessionRecord>>, StoreError>> {
        let record = {
            let map = self.map.read().unwrap_or_else(|p| p.into_inner());
            let c = map.get(id_hash)?;
            let fresh = c.fetched.elapsed() < self.ttl;
            let margin = unix_secs() + self.ttl.as_secs() + 1;
            if !fresh || c.record.expires_at() <= margin {
                return None;
            }
            c.record.clone()
        };
        match self.admitted(&record) {
            Ok(true) => Some(Ok(Some(record))),
            // Revoked: the store decides (the record is gone, or `load` refuses it).
            Ok(false) => {
                self.forget(id_hash);
                None
            }
            Err(e) => Some(Err(e)),
        }
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
            let moved = self.inner.rotate(record, new_id_hash).await?;
            self.announce_end(old_id_hash).await;
            Ok(moved)
        })
    }

    fn delete<'a>(&'a self, id_hash: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            self.forget(id_hash);
            let deleted = self.inner.delete(id_hash).await?;
            self.announce_end(id_hash).await;
            Ok(deleted)
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
            let n = self.inner.delete_all_for_subject(subject).await?;
            self.announce_subject_end(subject).await;
            Ok(n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::MemoryStore;

    fn record(id: &str, subject: &str, now: u64) -> SessionRecord {
        SessionRecord::new(
            format!("{id:0<64}"),
            subject.into(),
            now,
            now + 1800,
            now + 3600,
        )
    }

    #[test]
    fn a_ttl_past_an_hour_is_refused() {
        let e = CachingStore::new(MemoryStore::new(), Revocations::memory())
            .with_ttl(Duration::from_secs(3601))
            .unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
        assert!(
            CachingStore::new(MemoryStore::new(), Revocations::memory())
                .with_ttl(CachingStore::MAX_TTL)
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_revoked_session_is_served_neither_from_the_copy_nor_from_the_store() {
        let inner = Arc::new(MemoryStore::new());
        let revocations = Revocations::memory();
        let cache = CachingStore::from_arc(inner.clone(), revocations.clone())
            .with_ttl(Duration::from_secs(30))
            .unwrap();
        let now = unix_secs();
        let c = record("c", "carol", now);
        cache.create(&c).await.unwrap();
        assert!(matches!(cache.load_now(&c.id_hash), Some(Ok(Some(_)))));
        // Revoked elsewhere (an admin, another instance), still in the store.
        revocations
            .revoke_session(&c.id_hash[..16], now + 60)
            .await
            .unwrap();
        assert!(cache.load_now(&c.id_hash).is_none());
        assert_eq!(cache.load(&c.id_hash).await.unwrap(), None);
        assert!(inner.load(&c.id_hash).await.unwrap().is_some());
        // A logout everywhere published by another instance ends the subject's copies.
        let d = record("d", "dave", now - 5);
        cache.create(&d).await.unwrap();
        revocations
            .revoke_subject(Some(SESSION_SCOPE), "dave", now)
            .await
            .unwrap();
        assert!(cache.load_now(&d.id_hash).is_none());
        assert_eq!(cache.load(&d.id_hash).await.unwrap(), None);
    }

    #[tokio::test]
    async fn serves_copies_and_forgets_on_every_write() {
        let inner = Arc::new(MemoryStore::new());
        let cache = CachingStore::from_arc(inner.clone(), Revocations::memory())
            .with_capacity(100)
            .with_ttl(Duration::from_secs(30))
            .unwrap();
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
        let cache = CachingStore::from_arc(inner, Revocations::memory())
            .with_capacity(100)
            .with_ttl(Duration::from_secs(30))
            .unwrap();
        let now = unix_secs();
        let mut ending = record("c", "carol", now);
        ending.idle_expires_at = now + 10;
        cache.create(&ending).await.unwrap();
        assert!(cache.load_now(&ending.id_hash).is_none());
        let stale = CachingStore::new(MemoryStore::new(), Revocations::memory())
            .with_capacity(100)
            .with_ttl(Duration::ZERO)
            .unwrap();
        let d = record("d", "dave", now);
        stale.create(&d).await.unwrap();
        assert!(stale.load_now(&d.id_hash).is_none());
    }

    #[tokio::test]
    async fn the_copy_is_bounded() {
        let cache = CachingStore::new(MemoryStore::new(), Revocations::memory())
            .with_capacity(64)
            .with_ttl(Duration::from_secs(30))
            .unwrap();
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
