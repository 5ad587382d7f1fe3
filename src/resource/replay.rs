//! [`ReplayCache`]: each DPoP proof is accepted once, in this process or on every
//! instance sharing a Redis.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::authenticator::BoxFuture;
use crate::clock::unix_secs;
use crate::error::AuthError;

/// Where proofs already seen are remembered.
pub(crate) trait ReplayBackend: Send + Sync + 'static {
    /// Records the proof `key` of `owner` (who presented it: issuer and subject) until
    /// `expires` (Unix seconds): `Ok(true)` the first time, `Ok(false)` for a replay,
    /// an error when the backend cannot tell.
    fn first_use(&self, key: [u8; 32], owner: Owner<'_>, expires: u64) -> Use<'_>;
}

/// Who presented a proof: its token's issuer and subject. In memory, one owner holds
/// at most a tenth of the capacity (a back-channel logout token is its own owner).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) subject: &'a str,
}

/// The answer of a backend: at once (memory) or after a round trip (Redis).
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum Use<'a> {
    Now(Result<bool, AuthError>),
    Later(BoxFuture<'a, Result<bool, AuthError>>),
}

/// The proofs a [`Dpop`](super::Dpop) has accepted, each remembered until it could no
/// longer pass the `iat` window (its `iat` + the window + the clock skew), keyed by a
/// SHA-256 of the proof key's thumbprint and its `jti`.
///
/// - [`ReplayCache::memory`] (the default): this process only, at most `capacity` live
///   entries (100 000 by default, at most about 9 MiB); when full of live entries, new proofs
///   are refused with 503 until some expire, never accepted unchecked. One principal
///   (a token's issuer and subject) holds at most a tenth of the capacity: beyond it,
///   its new proofs are refused with 429 until some expire, so one token holder
///   minting proofs cannot fill the cache for everyone.
/// - `ReplayCache::redis` (feature `redis`): one `SET NX` per proof on a Redis every
///   instance shares, so a proof replayed on another instance is refused too; Redis
///   unreachable is a 503.
///
/// ```
/// use portcullis::resource::ReplayCache;
/// let cache = ReplayCache::memory().with_capacity(10_000);
/// # let _ = cache;
/// ```
#[derive(Clone)]
pub struct ReplayCache(pub(crate) Arc<dyn ReplayBackend>);

impl fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplayCache")
    }
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::memory()
    }
}

/// The key a proof is remembered under.
pub(crate) fn proof_key(jkt: &str, jti: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(jkt.as_bytes());
    h.update([0]);
    h.update(jti.as_bytes());
    h.finalize().into()
}

impl ReplayCache {
    /// Proofs remembered in this process.
    pub fn memory() -> Self {
        Self::memory_with_capacity(100_000)
    }
    /// At most `capacity` live proofs in memory (ignored by Redis).
    pub fn with_capacity(self, capacity: usize) -> Self {
        Self::memory_with_capacity(capacity.max(1))
    }
    fn memory_with_capacity(capacity: usize) -> Self {
        ReplayCache(Arc::new(Memory::new(capacity)))
    }
    /// Records a proof's first use (see [`ReplayBackend::first_use`]).
    pub(crate) fn first_use(&self, key: [u8; 32], owner: Owner<'_>, expires: u64) -> Use<'_> {
        self.0.first_use(key, owner, expires)
    }
}

struct Memory {
    seen: Mutex<Seen>,
    capacity: usize,
    /// Most live entries of one owner.
    share: usize,
    /// Keys the owners' fingerprints, so nobody can aim at another's share.
    owners: RandomState,
}

impl Memory {
    fn new(capacity: usize) -> Self {
        Memory {
            seen: Mutex::default(),
            capacity,
            share: (capacity / 10).max(1),
            owners: RandomState::new(),
        }
    }
}

/// The proofs remembered, each until its expiry (Unix seconds), with its owner's
/// fingerprint; and how many each owner holds.
#[derive(Default)]
struct Seen {
    until: HashMap<[u8; 32], (u64, u64)>,
    held: HashMap<u64, usize>,
    /// When expired entries were last swept out: at most once a second while full (a
    /// clock stepped back sweeps too), so a cache kept full of live proofs refuses in
    /// constant time, not a scan each.
    swept_at: u64,
}

impl ReplayBackend for Memory {
    fn first_use(&self, key: [u8; 32], owner: Owner<'_>, expires: u64) -> Use<'_> {
        Use::Now(self.first_use_at(key, owner, expires, unix_secs()))
    }
}

impl Seen {
    /// One entry of `owner` less; an owner holding none is forgotten, so there are never
    /// more owners than entries.
    fn release(&mut self, owner: u64) {
        if let Some(n) = self.held.get_mut(&owner) {
            *n -= 1;
            if *n == 0 {
                self.held.remove(&owner);
            }
        }
    }
    /// Removes expired entries and recounts what each owner holds.
    fn sweep(&mut self, now: u64) {
        self.swept_at = now;
        self.until.retain(|_, (until, _)| *until > now);
        self.held.clear();
        for (_, owner) in self.until.values() {
            *self.held.entry(*owner).or_default() += 1;
        }
    }
}

impl Memory {
    /// [`first_use`](ReplayBackend::first_use) at `now` (Unix seconds).
    fn first_use_at(
        &self,
        key: [u8; 32],
        owner: Owner<'_>,
        expires: u64,
        now: u64,
    ) -> Result<bool, AuthError> {
        let owner = self.owners.hash_one((owner.issuer, owner.subject));
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((until, _)) = seen.until.get(&key)
            && *until > now
        {
            return Ok(false);
        }
        let held = |seen: &Seen| seen.held.get(&owner).copied().unwrap_or(0);
        let full =
            |seen: &Seen| seen.until.len() >= self.capacity && !seen.until.contains_key(&key);
        if (full(&seen) || held(&seen) >= self.share) && seen.swept_at != now {
            // At most once a second (a clock stepped back sweeps too), so a cache kept
            // full of live proofs refuses in constant time, not a scan each.
            seen.sweep(now);
        }
        if full(&seen) {
            return Err(AuthError::unavailable("dpop: replay cache full"));
        }
        if held(&seen) >= self.share {
            return Err(AuthError::too_many_attempts(1).with_reason("dpop: too many live proofs"));
        }
        if let Some((_, previous)) = seen.until.insert(key, (expires, owner)) {
            // An expired entry of the same key, replaced.
            seen.release(previous);
        }
        *seen.held.entry(owner).or_default() += 1;
        Ok(true)
    }
}

#[cfg(feature = "redis")]
mod shared {
    use super::*;
    use crate::redis::Conn;

    struct Shared {
        conn: Conn,
        prefix: String,
    }

    impl ReplayBackend for Shared {
        /// No share per owner here: Redis's own memory limit bounds the entries.
        fn first_use(&self, key: [u8; 32], _: Owner<'_>, expires: u64) -> Use<'_> {
            Use::Later(Box::pin(async move {
                use std::fmt::Write;
                let mut name = self.prefix.clone();
                for b in key {
                    let _ = write!(name, "{b:02x}");
                }
                let mut conn = self.conn.clone();
                let set: Option<String> = redis::cmd("SET")
                    .arg(name)
                    .arg(1)
                    .arg("NX")
                    .arg("EXAT")
                    .arg(expires.max(unix_secs() + 1))
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = %crate::redis::describe(e), "dpop replay cache unavailable");
                        AuthError::unavailable("dpop: replay cache unavailable")
                    })?;
                Ok(set.is_some())
            }))
        }
    }

    impl ReplayCache {
        /// Proofs remembered in Redis at `url` (any of the forms
        /// [`RedisStore::connect`](crate::session::RedisStore::connect) takes), shared by
        /// every instance using the same `prefix` (keys `<prefix>dpop:<hash>`, one per
        /// proof, expiring with the proof's window).
        ///
        /// ```no_run
        /// # async fn f() -> Result<(), portcullis::StoreError> {
        /// use portcullis::resource::ReplayCache;
        /// let cache = ReplayCache::redis("redis://127.0.0.1:6379", "app:").await?;
        /// # let _ = cache; Ok(()) }
        /// ```
        pub async fn redis(url: &str, prefix: &str) -> Result<Self, crate::StoreError> {
            let link = crate::redis::connect(url, std::time::Duration::from_secs(2))
                .await
                .map_err(crate::StoreError::new)?;
            Ok(ReplayCache(Arc::new(Shared {
                conn: link.conn,
                prefix: format!("{}dpop:", crate::redis::key_prefix(prefix)),
            })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_accepted_once_and_a_full_cache_refuses() {
        let cache = ReplayCache::memory().with_capacity(2);
        let now = unix_secs();
        // Each proof its own principal's (its `jti`): the shares (a tenth of 2) stay
        // out of it.
        let once = |jti: &str| {
            let owner = Owner {
                issuer: "https://idp.example",
                subject: jti,
            };
            match cache.first_use(proof_key("j", jti), owner, now + 60) {
                Use::Now(r) => r,
                Use::Later(_) => unreachable!(),
            }
        };
        assert!(once("1").unwrap());
        assert!(!once("1").unwrap());
        assert!(once("2").unwrap());
        assert!(
            once("3").is_err_and(|e| e.reason() == "dpop: replay cache full"),
            "full of live proofs: refused, not accepted unchecked"
        );
        // Still full within the same second: refused again, without another sweep.
        assert!(once("3").is_err_and(|e| e.reason() == "dpop: replay cache full"));
        // A proof already seen is still told apart from a new one while full.
        assert!(!once("1").unwrap());
        assert_ne!(proof_key("ab", "c"), proof_key("a", "bc"));
    }

    const ALICE: Owner<'static> = Owner {
        issuer: "https://idp.example",
        subject: "alice",
    };

    #[test]
    fn one_owner_holds_at_most_a_tenth_of_the_cache() {
        let cache = Memory::new(100);
        let t = 1_000_000;
        let bob = Owner {
            subject: "bob",
            ..ALICE
        };
        let too_many = |r: Result<bool, AuthError>| {
            r.is_err_and(|e| e.kind() == crate::ErrorKind::TooManyAttempts)
        };
        for i in 0..10 {
            let k = proof_key("j", &i.to_string());
            assert!(cache.first_use_at(k, ALICE, t + 5, t).unwrap());
        }
        // Alice's eleventh live proof is refused (429), and not remembered...
        assert!(too_many(cache.first_use_at(
            proof_key("j", "x"),
            ALICE,
            t + 5,
            t
        )));
        // ...a replay of one she holds is still told as a replay...
        assert!(
            !cache
                .first_use_at(proof_key("j", "3"), ALICE, t + 5, t)
                .unwrap()
        );
        // ...and Bob is not affected.
        assert!(
            cache
                .first_use_at(proof_key("k", "1"), bob, t + 5, t)
                .unwrap()
        );
        // Once her proofs expire, the next second's sweep gives her share back.
        assert!(
            cache
                .first_use_at(proof_key("j", "x"), ALICE, t + 60, t + 10)
                .unwrap()
        );
        let seen = cache.seen.lock().unwrap();
        assert_eq!(seen.until.len(), 1);
        assert_eq!(seen.held.len(), 1, "owners are never more than entries");
    }

    #[test]
    fn a_full_cache_sweeps_expired_proofs_at_most_once_a_second() {
        // One owner may fill it here (a share as large as the capacity).
        let cache = Memory {
            share: 2,
            ..Memory::new(2)
        };
        let t = 1_000_000;
        let full =
            |r: Result<bool, AuthError>| r.is_err_and(|e| e.reason() == "dpop: replay cache full");
        // Two proofs valid until t + 5 fill it.
        assert!(
            cache
                .first_use_at(proof_key("j", "a"), ALICE, t + 5, t)
                .unwrap()
        );
        assert!(
            cache
                .first_use_at(proof_key("j", "b"), ALICE, t + 5, t)
                .unwrap()
        );
        // Full of live proofs: refused (this sweep finds nothing to remove)...
        assert!(full(cache.first_use_at(
            proof_key("j", "c"),
            ALICE,
            t + 60,
            t
        )));
        // ...and at t + 10, when both have expired, a sweep makes room.
        assert!(
            cache
                .first_use_at(proof_key("j", "c"), ALICE, t + 60, t + 10)
                .unwrap()
        );
        assert_eq!(cache.seen.lock().unwrap().until.len(), 1);
        assert!(
            cache
                .first_use_at(proof_key("j", "d"), ALICE, t + 11, t + 10)
                .unwrap()
        );
        // Full again; "d" expires at t + 11, but within the second of the last sweep
        // nothing is swept: refused at once, however many ask.
        for _ in 0..3 {
            assert!(full(cache.first_use_at(
                proof_key("j", "e"),
                ALICE,
                t + 60,
                t + 10
            )));
        }
        // The next second's sweep removes "d".
        assert!(
            cache
                .first_use_at(proof_key("j", "e"), ALICE, t + 60, t + 12)
                .unwrap()
        );
        // A replay is still told apart from a new proof while full.
        assert!(
            !cache
                .first_use_at(proof_key("j", "c"), ALICE, t + 60, t + 12)
                .unwrap()
        );
    }
}
