//! [`TokenCache`]: remembers verified tokens so repeat requests skip the crypto.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::RwLock;
use std::time::Duration;

use foldhash::fast::RandomState;

use crate::context::AuthContext;
use crate::prehashed::PrehashedMap;

/// What a cache entry must be re-checked against on every hit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    pub exp: f64,
    pub nbf: Option<f64>,
    /// The verifying issuer's leeway, in seconds.
    pub leeway: f64,
    pub issuer: usize,
    pub generation: u64,
}

struct Entry {
    token: Box<str>,
    ctx: AuthContext,
    issuer: usize,
    generation: u64,
    /// When it was inserted (seconds since the Unix epoch, the clock `exp` is read on):
    /// a clock that went back before it serves no hit.
    inserted: f64,
    /// Served until: `exp` plus leeway, or `inserted` plus the cache's `max_ttl` if sooner.
    until: f64,
    /// Served from: `nbf` less leeway (when the token has one).
    from: Option<f64>,
}

impl Entry {
    fn live_at(&self, now: f64) -> bool {
        self.inserted <= now && now < self.until && self.from.is_none_or(|from| from <= now)
    }
}

/// A bounded cache of verified tokens, so repeat requests skip the signature check.
///
/// - keyed by the whole token (the hash covers its signature tail, equality the full text);
/// - `exp` (or `iat` + the validation's max age, if sooner) and `nbf` are re-checked on
///   every hit, with the validation leeway;
/// - entries die with the key set they were verified under (rotation flushes them, and
///   a remote set past its staleness bound serves no hit);
/// - entries belong to one verifier: [`JwtVerifier::with_issuer`](super::JwtVerifier::with_issuer)
///   starts an empty cache;
/// - each entry lives at most `max_ttl` (default 5 min);
/// - tokens over `max_token_bytes` (default 8 KiB, as every credential cap) are not cached;
/// - at most `max_entries` (default 10 000): expired entries are swept when full,
///   and the cache is cleared if that is not enough.
///
/// ```
/// use std::time::Duration;
/// use portcullis::jwt::TokenCache;
/// let cache = TokenCache::new().with_max_entries(50_000).with_max_ttl(Duration::from_secs(60));
/// # let _ = cache;
/// ```
pub struct TokenCache {
    map: RwLock<PrehashedMap<Entry>>,
    hasher: RandomState,
    max_entries: usize,
    max_ttl: Duration,
    max_token_bytes: usize,
    pub(crate) lookups: crate::metrics::HitMiss,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("max_entries", &self.max_entries)
            .field("max_ttl", &self.max_ttl)
            .finish_non_exhaustive()
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new()
    }
}

/// Bytes of the token's tail that are hashed (the signature, random for valid tokens).
/// Tokens sharing a tail share a slot at worst: a hit still needs the whole token equal.
const HASHED_TAIL: usize = 24;

impl TokenCache {
    /// A cache with the defaults above.
    pub fn new() -> Self {
        TokenCache {
            map: RwLock::new(HashMap::default()),
            hasher: RandomState::default(),
            max_entries: 10_000,
            max_ttl: Duration::from_secs(300),
            max_token_bytes: crate::DEFAULT_MAX_CREDENTIAL_BYTES,
            lookups: Default::default(),
        }
    }
    /// Bound the number of entries.
    pub fn with_max_entries(mut self, n: usize) -> Self {
        self.max_entries = n.max(1);
        self
    }
    /// Bound how long one entry lives.
    pub fn with_max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }
    /// Tokens longer than this are not cached.
    pub fn with_max_token_bytes(mut self, n: usize) -> Self {
        self.max_token_bytes = n;
        self
    }
    /// An empty cache with the same settings.
    pub(crate) fn empty_like(&self) -> Self {
        TokenCache {
            map: RwLock::new(HashMap::default()),
            hasher: RandomState::default(),
            max_entries: self.max_entries,
            max_ttl: self.max_ttl,
            max_token_bytes: self.max_token_bytes,
            lookups: Default::default(),
        }
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The map key: foldhash of the length and the signature tail, under this cache's
    /// random seed. Only tokens verified in full are inserted, so no client chooses
    /// where entries land; a lookup's hash only picks the slot to compare against.
    fn key(&self, token: &[u8]) -> u64 {
        let b = token;
        let tail = &b[b.len().saturating_sub(HASHED_TAIL)..];
        self.hasher.hash_one((b.len(), tail))
    }

    /// A cached context if `token` was verified under the current key set of `issuer` and is still within its validity.
    pub(crate) fn get(
        &self,
        token: &[u8],
        live_generation: impl Fn(usize) -> Option<u64>,
        now: f64,
    ) -> Option<AuthContext> {
        let key = self.key(token);
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let e = map.get(&key)?;
        let live = *e.token.as_bytes() == *token
            && e.live_at(now)
            && live_generation(e.issuer) == Some(e.generation);
        live.then(|| e.ctx.clone())
    }

    pub(crate) fn insert(&self, token: &str, ctx: AuthContext, stamp: Stamp, now: f64) {
        if token.len() > self.max_token_bytes {
            return;
        }
        let key = self.key(token.as_bytes());
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.max_entries && !map.contains_key(&key) {
            map.retain(|_, e| e.live_at(now));
            if map.len() >= self.max_entries {
                crate::metrics::token_cache_evicted(map.len() as u64);
                map.clear();
            }
        }
        map.insert(
            key,
            Entry {
                token: token.into(),
                ctx,
                issuer: stamp.issuer,
                generation: stamp.generation,
                inserted: now,
                until: served_until(stamp.exp + stamp.leeway, now + self.max_ttl.as_secs_f64()),
                from: stamp.nbf.map(|nbf| nbf - stamp.leeway),
            },
        );
    }
}

/// The sooner of a token's end and an entry's end. Written out rather than `f64::min`,
/// which would pick the entry's end for a NaN `exp`: here a NaN (which token validation
/// never lets through) ends the entry at once.
fn served_until(token_end: f64, entry_end: f64) -> f64 {
    if entry_end < token_end {
        entry_end
    } else {
        token_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Scheme;

    const TOKEN: &str =
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXRhaWwtYnl0ZXMtaGVyZQ";

    fn cache_with_one(max_ttl: u64, inserted: f64) -> TokenCache {
        let cache = TokenCache::new().with_max_ttl(Duration::from_secs(max_ttl));
        let stamp = Stamp {
            exp: inserted + 3600.0,
            nbf: None,
            leeway: 0.0,
            issuer: 0,
            generation: 7,
        };
        let ctx = AuthContext::builder("alice", Scheme::Bearer).build();
        cache.insert(TOKEN, ctx, stamp, inserted);
        cache
    }

    fn hit(cache: &TokenCache, token: &[u8], generation: u64, now: f64) -> bool {
        cache.get(token, |_| Some(generation), now).is_some()
    }

    #[test]
    fn an_entry_lives_at_most_max_ttl_even_when_its_token_lives_longer() {
        let cache = cache_with_one(60, 1_000.0);
        assert!(hit(&cache, TOKEN.as_bytes(), 7, 1_059.0));
        assert!(!hit(&cache, TOKEN.as_bytes(), 7, 1_060.5));
        // A clock stepped back before the insertion does not stretch the entry's life.
        assert!(!hit(&cache, TOKEN.as_bytes(), 7, 990.0));
    }

    #[test]
    fn exp_and_nbf_are_checked_with_the_verifying_issuers_leeway() {
        let stamp = Stamp {
            exp: 1_010.0,
            nbf: Some(1_006.0),
            leeway: 5.0,
            issuer: 0,
            generation: 7,
        };
        let cache = TokenCache::new();
        let ctx = AuthContext::builder("alice", Scheme::Bearer).build();
        cache.insert(TOKEN, ctx, stamp, 1_000.0);
        // Served from nbf less leeway...
        assert!(!hit(&cache, TOKEN.as_bytes(), 7, 1_000.5));
        assert!(hit(&cache, TOKEN.as_bytes(), 7, 1_001.0));
        // ...until exp plus leeway.
        assert!(hit(&cache, TOKEN.as_bytes(), 7, 1_014.9));
        assert!(!hit(&cache, TOKEN.as_bytes(), 7, 1_015.0));
        // A NaN expiry (which validation never lets through) is never served.
        let cache = TokenCache::new();
        let ctx = AuthContext::builder("alice", Scheme::Bearer).build();
        let nan = Stamp {
            exp: f64::NAN,
            nbf: None,
            ..stamp
        };
        cache.insert(TOKEN, ctx, nan, 1_000.0);
        assert!(!hit(&cache, TOKEN.as_bytes(), 7, 1_000.0));
    }

    #[test]
    fn a_hit_needs_the_same_token_and_key_set_generation() {
        let cache = cache_with_one(300, 1_000.0);
        assert!(hit(&cache, TOKEN.as_bytes(), 7, 1_001.0));
        // Another key set: no hit.
        assert!(!hit(&cache, TOKEN.as_bytes(), 8, 1_001.0));
        // Same length and signature tail, another payload: same slot, no hit.
        let forged = TOKEN.replacen("eyJzdWIiOiJhbGljZSJ9", "eyJzdWIiOiJib2JieSJ9", 1);
        assert_ne!(forged, TOKEN);
        assert_eq!(forged.len(), TOKEN.len());
        assert_eq!(cache.key(forged.as_bytes()), cache.key(TOKEN.as_bytes()));
        assert!(!hit(&cache, forged.as_bytes(), 7, 1_001.0));
    }
}
