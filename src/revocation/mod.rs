//! [`Revocations`]: tokens, subjects and sessions refused before they expire, checked on
//! every request by every scheme, in process or shared by every instance through Redis.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use portcullis::revocation::Revocations;
//! let revocations = Revocations::memory();
//! // Sign out everywhere: every token of `alice` issued before now, and her sessions.
//! revocations.revoke_subject(None, "alice", portcullis::testing::now()).await.unwrap();
//! # });
//! ```

#[cfg(feature = "redis")]
mod redis;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::authenticator::BoxFuture;
use crate::clock::unix_secs;
use crate::context::AuthContext;
use crate::error::AuthError;

#[cfg(feature = "redis")]
pub use self::redis::{RedisRevocations, RedisRevocationsBuilder};

/// One revocation, as it is stored and broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// The token with this `jti` (or [`token_hash`] of the token) from `issuer` (empty for
    /// tokens without `iss`), until `expires` (the token's `exp`).
    Token {
        issuer: String,
        id: String,
        expires: u64,
    },
    /// Every credential of `subject` issued at or before `as_of`; `issuer` `None` for all.
    Subject {
        issuer: Option<String>,
        subject: String,
        as_of: u64,
    },
    /// The session whose context's `session_id` is `id`, until `expires`.
    Session { id: String, expires: u64 },
    /// Sessions an OpenID Connect provider's back-channel logout ended: the one with
    /// provider session id `sid`, or every one of provider subject `sub`, made at or
    /// before `as_of`.
    Provider {
        issuer: String,
        key: ProviderKey,
        as_of: u64,
    },
}

/// What a back-channel logout names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ProviderKey {
    Sid(String),
    Sub(String),
}

impl ProviderKey {
    fn encoded(&self) -> String {
        match self {
            ProviderKey::Sid(s) => format!("sid:{s}"),
            ProviderKey::Sub(s) => format!("sub:{s}"),
        }
    }
    fn decode(text: &str) -> Option<Self> {
        if let Some(s) = text.strip_prefix("sid:") {
            Some(ProviderKey::Sid(s.to_owned()))
        } else {
            text.strip_prefix("sub:")
                .map(|s| ProviderKey::Sub(s.to_owned()))
        }
    }
}

/// The issuer scope of a subject revocation that ends sessions only (not tokens): what
/// [`SessionManager::logout_everywhere`](crate::session::SessionManager::logout_everywhere)
/// publishes for other instances' local caches.
pub const SESSION_SCOPE: &str = "portcullis:sessions";

/// How long a subject revocation is kept: longer than any credential it can refuse
/// (sessions live at most 12 h by default, tokens usually less).
const SUBJECT_TTL: u64 = 30 * 24 * 3600;

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl Entry {
    /// The field it is stored under, and its value (`expires` or `as_of`).
    pub(crate) fn encode(&self) -> (String, u64) {
        match self {
            Entry::Token {
                issuer,
                id,
                expires,
            } => (format!("t\u{1f}{issuer}\u{1f}{id}"), *expires),
            Entry::Subject {
                issuer,
                subject,
                as_of,
            } => (
                format!("s\u{1f}{}\u{1f}{subject}", issuer.as_deref().unwrap_or("*")),
                *as_of,
            ),
            Entry::Session { id, expires } => (format!("x\u{1f}{id}"), *expires),
            Entry::Provider { issuer, key, as_of } => {
                (format!("o\u{1f}{issuer}\u{1f}{}", key.encoded()), *as_of)
            }
        }
    }
    /// The inverse of [`encode`](Self::encode); `None` for anything else.
    pub(crate) fn decode(field: &str, value: u64) -> Option<Entry> {
        let mut parts = field.split('\u{1f}');
        let entry = match (parts.next()?, parts.next()?, parts.next()) {
            ("t", issuer, Some(id)) => Entry::Token {
                issuer: issuer.to_owned(),
                id: id.to_owned(),
                expires: value,
            },
            ("s", issuer, Some(subject)) => Entry::Subject {
                issuer: (issuer != "*").then(|| issuer.to_owned()),
                subject: subject.to_owned(),
                as_of: value,
            },
            ("x", id, None) => Entry::Session {
                id: id.to_owned(),
                expires: value,
            },
            ("o", issuer, Some(key)) => Entry::Provider {
                issuer: issuer.to_owned(),
                key: ProviderKey::decode(key)?,
                as_of: value,
            },
            _ => return None,
        };
        parts.next().is_none().then_some(entry)
    }
    /// The Unix time after which the entry can refuse nothing.
    pub(crate) fn useless_after(&self) -> u64 {
        match self {
            Entry::Token { expires, .. } | Entry::Session { expires, .. } => *expires,
            Entry::Subject { as_of, .. } | Entry::Provider { as_of, .. } => {
                as_of.saturating_add(SUBJECT_TTL)
            }
        }
    }
}

/// The maps of the local copy: a fast fixed hasher, since only operators insert keys
/// (a request can look keys up, which a collision cannot slow down much, but never add).
type Map<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;

/// The local copy every check reads. Nested by issuer and subject so that a check
/// looks up borrowed strings and allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct Set {
    /// issuer -> token id -> expiry.
    tokens: Map<String, Map<String, u64>>,
    /// Token ids that are hashes (tokens without `jti`): only then is a token hashed.
    hashed: usize,
    /// subject -> (issuer or every issuer, as of).
    subjects: Map<String, Vec<(Option<String>, u64)>>,
    /// session id -> expiry.
    sessions: Map<String, u64>,
    /// provider issuer -> back-channel logout key -> as of.
    providers: Map<String, Map<ProviderKey, u64>>,
}

impl Set {
    pub(crate) fn apply(&mut self, e: Entry) {
        match e {
            Entry::Token {
                issuer,
                id,
                expires,
            } => {
                let hashed = id.starts_with(HASH_PREFIX);
                let ids = self.tokens.entry(issuer).or_default();
                if ids.insert(id, expires).is_none() && hashed {
                    self.hashed += 1;
                }
            }
            Entry::Subject {
                issuer,
                subject,
                as_of,
            } => {
                let list = self.subjects.entry(subject).or_default();
                match list.iter_mut().find(|(i, _)| *i == issuer) {
                    Some((_, at)) => *at = (*at).max(as_of),
                    None => list.push((issuer, as_of)),
                }
            }
            Entry::Session { id, expires } => {
                self.sessions.insert(id, expires);
            }
            Entry::Provider { issuer, key, as_of } => {
                let at = self
                    .providers
                    .entry(issuer)
                    .or_default()
                    .entry(key)
                    .or_default();
                *at = (*at).max(as_of);
            }
        }
    }
    fn sweep(&mut self, now: u64) {
        for ids in self.tokens.values_mut() {
            ids.retain(|_, exp| *exp > now);
        }
        self.tokens.retain(|_, ids| !ids.is_empty());
        self.hashed = self
            .tokens
            .values()
            .flat_map(|ids| ids.keys())
            .filter(|id| id.starts_with(HASH_PREFIX))
            .count();
        self.sessions.retain(|_, exp| *exp > now);
        for list in self.subjects.values_mut() {
            list.retain(|(_, as_of)| as_of.saturating_add(SUBJECT_TTL) > now);
        }
        self.subjects.retain(|_, list| !list.is_empty());
        for keys in self.providers.values_mut() {
            keys.retain(|_, as_of| as_of.saturating_add(SUBJECT_TTL) > now);
        }
        self.providers.retain(|_, keys| !keys.is_empty());
    }
    fn len(&self) -> usize {
        self.tokens.values().map(Map::len).sum::<usize>()
            + self.subjects.values().map(Vec::len).sum::<usize>()
            + self.sessions.len()
            + self.providers.values().map(Map::len).sum::<usize>()
    }
}

/// How the id of a token without `jti` starts (the rest is its SHA-256, hex).
const HASH_PREFIX: &str = "sha256:";

/// A lock-free pre-check: 4 096 bits, one set per key inserted (subjects, token ids,
/// session ids). A clear bit proves a key absent, so a credential that is not revoked
/// (almost every request) skips the lock and the maps; a set bit sends it to them.
/// Bits are only cleared by a full reload.
pub(crate) struct Filter([AtomicU64; 64]);

impl Default for Filter {
    fn default() -> Self {
        Filter(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl Filter {
    fn bit(key: &str) -> (usize, u64) {
        use std::hash::{BuildHasher, Hasher};
        let mut h = rustc_hash::FxBuildHasher.build_hasher();
        h.write(key.as_bytes());
        // The multiply in FxHasher mixes best into the high bits.
        let b = (h.finish() >> 52) as usize;
        (b >> 6, 1u64 << (b & 63))
    }
    fn insert(&self, key: &str) {
        let (word, mask) = Self::bit(key);
        self.0[word].fetch_or(mask, Ordering::Release);
    }
    fn may_contain(&self, key: &str) -> bool {
        let (word, mask) = Self::bit(key);
        self.0[word].load(Ordering::Acquire) & mask != 0
    }
    /// Holds exactly `keys` afterwards. Each word is replaced whole, so a key present
    /// before and after keeps its bit at every moment.
    fn replace<'k>(&self, keys: impl Iterator<Item = &'k str>) {
        let mut words = [0u64; 64];
        for k in keys {
            let (word, mask) = Self::bit(k);
            words[word] |= mask;
        }
        for (w, new) in self.0.iter().zip(words) {
            w.store(new, Ordering::Release);
        }
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Filter")
    }
}

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
    warned_at: AtomicU64,
    writes: AtomicU64,
    /// Subjects, token ids and session ids present in `set` (and maybe more).
    filter: Filter,
    /// Some token is revoked by hash: jti-less tokens must be hashed and looked up.
    hashed: AtomicBool,
    /// Some back-channel logout is on the list: OpenID Connect sessions are looked up.
    providers: AtomicBool,
}

impl Local {
    fn new(synced: bool) -> Self {
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
    fn filter_key(e: &Entry) -> Option<&str> {
        match e {
            Entry::Token { id, .. } if id.starts_with(HASH_PREFIX) => None,
            Entry::Provider { .. } => None,
            Entry::Token { id, .. } | Entry::Session { id, .. } => Some(id),
            Entry::Subject { subject, .. } => Some(subject),
        }
    }

    /// Marks what `e` adds in the filter (before it is in the set: a reader that finds
    /// the bit but not yet the entry just takes the slow path once).
    fn note(&self, e: &Entry) {
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

/// Revoked tokens, subjects and sessions. Cheap to clone; attach one to
/// [`JwtVerifier::with_revocations`](crate::jwt::JwtVerifier::with_revocations),
/// Cloudflare Access and [`SessionConfig::with_revocations`](crate::session::SessionConfig::with_revocations).
///
/// - Scoped per issuer: two issuers' `sub` or `jti` values never collide.
/// - Checked on every request, verified-token cache hits included, from an in-process
///   copy: no round trip. A revoked credential is a 401 (`invalid_token` for bearer).
/// - [`Revocations::memory`] keeps the list in this process; `RedisRevocations`
///   (feature `redis`) shares it with every instance and keeps each copy current.
#[derive(Clone)]
pub struct Revocations {
    local: Arc<Local>,
    backend: Option<Arc<dyn Backend>>,
    max_staleness: Option<Duration>,
}

impl fmt::Debug for Revocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revocations")
            .field("synced", &self.local.synced.load(Ordering::Relaxed))
            .field("max_staleness", &self.max_staleness)
            .finish_non_exhaustive()
    }
}

impl Revocations {
    /// A list kept in this process only.
    pub fn memory() -> Self {
        Revocations {
            local: Arc::new(Local::new(true)),
            backend: None,
            max_staleness: None,
        }
    }

    /// Fails open for at most `bound`: while the shared list cannot be proved current
    /// (Redis unreachable, a partition, a failover), keep answering from the last copy
    /// for up to `bound` after it was last current, instead of refusing with 503, and
    /// report ready meanwhile. A revocation made in that time is not enforced here until
    /// the copy catches up. Off by default; logged at ERROR at most every 10 s while it
    /// is in use.
    ///
    /// ```
    /// use std::time::Duration;
    /// use portcullis::revocation::Revocations;
    /// let revocations = Revocations::memory().with_fail_open_for(Duration::from_secs(30));
    /// # let _ = revocations;
    /// ```
    pub fn with_fail_open_for(mut self, bound: Duration) -> Self {
        tracing::warn!(
            bound_secs = bound.as_secs(),
            "revocations fail open: an out-of-sync copy keeps answering for up to this long"
        );
        self.max_staleness = Some(bound);
        self
    }

    /// Revokes the token with `jti` `id` from `issuer` (`""` when the token has no `iss`)
    /// until `expires` (its `exp`; the entry is dropped afterwards). For a token without
    /// `jti`, use [`revoke_context`](Self::revoke_context), which revokes it by its hash.
    pub async fn revoke_token(
        &self,
        issuer: &str,
        id: &str,
        expires: u64,
    ) -> Result<(), AuthError> {
        self.write(Entry::Token {
            issuer: issuer.to_owned(),
            id: id.to_owned(),
            expires,
        })
        .await
    }
    /// Revokes the token a context was verified from: by its `jti`, or else by a hash of
    /// what the issuer signed (`header.payload`, never the signature, so a second valid
    /// signature over the same claims is refused too).
    pub async fn revoke_context(&self, ctx: &AuthContext, token: &str) -> Result<(), AuthError> {
        let id = match ctx.token_id() {
            Some(jti) => jti.to_owned(),
            None => token_hash(token.as_bytes()),
        };
        let expires = ctx.expires_at().unwrap_or(unix_secs() + SUBJECT_TTL);
        self.revoke_token(ctx.issuer().unwrap_or(""), &id, expires)
            .await
    }
    /// Refuses every token of `subject` issued at or before `as_of` (or without `iat`)
    /// and every session created at or before it: "sign out everywhere". Times are whole
    /// seconds, so `as_of` = now also refuses what was issued earlier in the same second
    /// (and what is issued later in it: a new login works from the next second on).
    /// `issuer` `None`: all issuers and sessions.
    pub async fn revoke_subject(
        &self,
        issuer: Option<&str>,
        subject: &str,
        as_of: u64,
    ) -> Result<(), AuthError> {
        self.write(Entry::Subject {
            issuer: issuer.map(str::to_owned),
            subject: subject.to_owned(),
            as_of,
        })
        .await
    }
    /// Revokes one session by the `session_id` of its context, until `expires`.
    pub async fn revoke_session(&self, session_id: &str, expires: u64) -> Result<(), AuthError> {
        self.write(Entry::Session {
            id: session_id.to_owned(),
            expires,
        })
        .await
    }

    async fn write(&self, entry: Entry) -> Result<(), AuthError> {
        if let Some(b) = &self.backend {
            b.publish(&entry).await.map_err(|e| {
                tracing::warn!(error = %e, "revocation could not be stored");
                AuthError::unavailable("revocation store unavailable")
            })?;
        }
        // Applied here at once too (the broadcast brings it to the others).
        self.local.apply(entry);
        Ok(())
    }

    /// How many entries the local copy holds.
    pub fn len(&self) -> usize {
        self.local
            .set
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
    /// True when nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether the local copy refuses `ctx` (its `jti`, subject or session; a token
    /// without `jti` is matched by hash only through the request path). For operators:
    /// it does not look at freshness.
    pub fn is_revoked(&self, ctx: &AuthContext) -> bool {
        let set = self.local.set.read().unwrap_or_else(|p| p.into_inner());
        let session = ctx
            .session_id()
            .is_some_and(|id| set.sessions.contains_key(id));
        let token = match (set.tokens.get(ctx.issuer().unwrap_or("")), ctx.token_id()) {
            (Some(ids), Some(jti)) => ids.contains_key(jti),
            _ => false,
        };
        session || token || subject_revoked(&set, ctx.issuer(), ctx.subject(), ctx.issued_at())
    }
    /// True when the local copy is current (or within the staleness bound).
    pub fn ready(&self) -> bool {
        self.fresh()
    }

    fn fresh(&self) -> bool {
        if self.local.synced.load(Ordering::Acquire) {
            return true;
        }
        match self.max_staleness {
            Some(bound) => {
                let now = unix_secs();
                let age = now.saturating_sub(self.local.synced_at.load(Ordering::Acquire));
                let open = age <= bound.as_secs();
                let last = self.local.warned_at.load(Ordering::Relaxed);
                if open
                    && now >= last + 10
                    && self
                        .local
                        .warned_at
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::error!(
                        age_secs = age,
                        "revocation list out of sync: failing open, answering from the last copy"
                    );
                }
                open
            }
            None => false,
        }
    }

    /// Refuses a token's context when it is revoked, or when the list cannot be trusted.
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    pub(crate) fn check_token(&self, ctx: &AuthContext, token: &[u8]) -> Result<(), AuthError> {
        let jti = ctx.token_id();
        let by_hash = jti.is_none() && self.local.hashed.load(Ordering::Acquire);
        let Some(set) = self.lookup(ctx.subject(), jti, by_hash)? else {
            return Ok(());
        };
        if subject_revoked(&set, ctx.issuer(), ctx.subject(), ctx.issued_at()) {
            return Err(AuthError::invalid("revoked: subject"));
        }
        if let Some(ids) = set.tokens.get(ctx.issuer().unwrap_or("")) {
            let revoked = match jti {
                Some(jti) => ids.contains_key(jti),
                None => set.hashed > 0 && ids.contains_key(&token_hash(token)),
            };
            if revoked {
                return Err(AuthError::invalid("revoked: token"));
            }
        }
        Ok(())
    }

    /// Refuses a session's context when it, or its subject, is revoked, or its
    /// OpenID Connect provider logged it out (back-channel).
    #[cfg_attr(not(feature = "session"), allow(dead_code))]
    pub(crate) fn check_session(&self, ctx: &AuthContext) -> Result<(), AuthError> {
        let id = ctx.session_id();
        #[cfg(feature = "session")]
        let provider = ctx
            .provider_session()
            .filter(|_| self.local.providers.load(Ordering::Acquire));
        #[cfg(not(feature = "session"))]
        let provider: Option<&()> = None;
        let Some(set) = self.lookup(ctx.subject(), id, provider.is_some())? else {
            return Ok(());
        };
        if subject_revoked(&set, Some(SESSION_SCOPE), ctx.subject(), ctx.issued_at()) {
            return Err(AuthError::invalid("revoked: subject"));
        }
        if id.is_some_and(|id| set.sessions.contains_key(id)) {
            return Err(AuthError::invalid("revoked: session"));
        }
        #[cfg(feature = "session")]
        if let Some(p) = provider
            && let Some(keys) = set.providers.get(&p.issuer)
        {
            let made = ctx.issued_at().unwrap_or(0);
            let by_sid = p
                .sid
                .as_ref()
                .and_then(|s| keys.get(&ProviderKey::Sid(s.clone())));
            let by_sub = keys.get(&ProviderKey::Sub(p.subject.clone()));
            if by_sid.into_iter().chain(by_sub).any(|as_of| made <= *as_of) {
                return Err(AuthError::invalid(
                    "revoked: provider logged the session out",
                ));
            }
        }
        Ok(())
    }

    /// Ends the sessions an OpenID Connect provider's back-channel logout names, made
    /// at or before `as_of`, on every instance sharing this list.
    #[cfg(feature = "oauth")]
    pub(crate) async fn provider_logout(
        &self,
        issuer: &str,
        key: ProviderKey,
        as_of: u64,
    ) -> Result<(), AuthError> {
        self.write(Entry::Provider {
            issuer: issuer.to_owned(),
            key,
            as_of,
        })
        .await
    }

    /// The copy to look a credential up in, or `None` when the lock-free pre-check
    /// clears it (by its `subject`, its own `key`, unless `always`: a token revoked by
    /// hash or a back-channel logout may name it). Fails while the list cannot be
    /// trusted.
    fn lookup(
        &self,
        subject: &str,
        key: Option<&str>,
        always: bool,
    ) -> Result<Option<std::sync::RwLockReadGuard<'_, Set>>, AuthError> {
        if !self.fresh() {
            return Err(AuthError::unavailable("revocation list not current"));
        }
        let local = &*self.local;
        if !local.any.load(Ordering::Acquire) {
            return Ok(None);
        }
        let maybe = always
            || local.filter.may_contain(subject)
            || key.is_some_and(|k| local.filter.may_contain(k));
        if !maybe {
            return Ok(None);
        }
        Ok(Some(local.set.read().unwrap_or_else(|p| p.into_inner())))
    }

    #[cfg(feature = "redis")]
    pub(crate) fn shared(local: Arc<Local>, backend: Arc<dyn Backend>) -> Self {
        Revocations {
            local,
            backend: Some(backend),
            max_staleness: None,
        }
    }
    #[cfg(feature = "redis")]
    pub(crate) fn new_local() -> Arc<Local> {
        Arc::new(Local::new(false))
    }
}

/// Whether `subject` (under `issuer`, or under any issuer) is revoked for a credential
/// issued at `issued_at` (at or before the revocation's `as_of`; `None`: unknown, so
/// revoked).
fn subject_revoked(set: &Set, issuer: Option<&str>, subject: &str, issued_at: Option<u64>) -> bool {
    let Some(list) = set.subjects.get(subject) else {
        return false;
    };
    list.iter().any(|(scope, as_of)| {
        let applies = match scope {
            None => true,
            Some(s) => issuer == Some(s.as_str()),
        };
        applies && issued_at.is_none_or(|iat| iat <= *as_of)
    })
}

/// `sha256:` and the hex SHA-256 of what identifies a token without `jti`: for a JWS
/// (three dot-separated parts), its signing input `header.payload` only. The signature
/// is left out because it is not unique: ECDSA accepts `(r, n - s)` beside `(r, s)`, and
/// a lenient base64 reading accepts padded and unpadded spellings, so a second valid
/// token with the same claims could be made without the key. Anything else is hashed
/// whole.
pub(crate) fn token_hash(token: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write;
    let mut out = String::with_capacity(HASH_PREFIX.len() + 64);
    out.push_str(HASH_PREFIX);
    for b in Sha256::digest(signing_input(token)) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The `header.payload` of a three-part JWS; anything else whole.
fn signing_input(token: &[u8]) -> &[u8] {
    let mut dots = memchr::memchr_iter(b'.', token);
    match (dots.next(), dots.next(), dots.next()) {
        (Some(_), Some(second), None) => &token[..second],
        _ => token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Scheme;

    fn ctx(iss: &str, sub: &str, iat: u64, jti: Option<&str>) -> AuthContext {
        let mut b = AuthContext::builder(sub, Scheme::Bearer)
            .with_issuer(iss)
            .with_issued_at(iat);
        if let Some(j) = jti {
            b = b.with_token_id(j);
        }
        b.build()
    }

    #[test]
    fn entries_round_trip_and_garbage_is_refused() {
        let all = [
            Entry::Token {
                issuer: "https://a".into(),
                id: "j1".into(),
                expires: 9,
            },
            Entry::Subject {
                issuer: None,
                subject: "alice".into(),
                as_of: 5,
            },
            Entry::Subject {
                issuer: Some("https://b".into()),
                subject: "bob".into(),
                as_of: 6,
            },
            Entry::Session {
                id: "0123456789abcdef".into(),
                expires: 7,
            },
        ];
        for e in all {
            let (f, v) = e.encode();
            assert_eq!(Entry::decode(&f, v), Some(e));
        }
        for bad in [
            "",
            "t",
            "t\u{1f}x",
            "q\u{1f}a\u{1f}b",
            "x\u{1f}a\u{1f}b",
            "t\u{1f}a\u{1f}b\u{1f}c",
        ] {
            assert_eq!(Entry::decode(bad, 1), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn scoped_per_issuer_and_by_issue_time() {
        let r = Revocations::memory();
        let t = b"token";
        assert!(
            r.check_token(&ctx("https://a", "alice", 100, None), t)
                .is_ok()
        );
        r.revoke_subject(Some("https://a"), "alice", 150)
            .await
            .unwrap();
        assert!(
            r.check_token(&ctx("https://a", "alice", 100, None), t)
                .is_err()
        );
        assert!(
            r.check_token(&ctx("https://a", "alice", 200, None), t)
                .is_ok()
        );
        assert!(
            r.check_token(&ctx("https://b", "alice", 100, None), t)
                .is_ok(),
            "other issuer"
        );
        r.revoke_token("https://b", "j9", u64::MAX).await.unwrap();
        assert!(
            r.check_token(&ctx("https://b", "bob", 1, Some("j9")), t)
                .is_err()
        );
        assert!(
            r.check_token(&ctx("https://a", "bob", 1, Some("j9")), t)
                .is_ok(),
            "same jti, other issuer"
        );
        // Without jti, the token's hash.
        r.revoke_token("https://b", &token_hash(b"raw"), u64::MAX)
            .await
            .unwrap();
        assert!(
            r.check_token(&ctx("https://b", "carol", 1, None), b"raw")
                .is_err()
        );
        assert!(
            r.check_token(&ctx("https://b", "carol", 1, None), b"other")
                .is_ok()
        );
    }

    #[test]
    fn the_pre_filter_never_misses_a_key() {
        let f = Filter::default();
        let keys: Vec<String> = (0..5_000).map(|i| format!("subject-{i}")).collect();
        for k in &keys[..2_500] {
            f.insert(k);
        }
        assert!(keys[..2_500].iter().all(|k| f.may_contain(k)));
        f.replace(keys[1_000..].iter().map(String::as_str));
        assert!(keys[1_000..].iter().all(|k| f.may_contain(k)));
        // Mostly clear for absent keys when few are present.
        let small = Filter::default();
        small.replace(keys[..50].iter().map(String::as_str));
        let false_positives = keys[50..].iter().filter(|k| small.may_contain(k)).count();
        assert!(false_positives < keys.len() / 20, "{false_positives}");
    }

    #[tokio::test]
    async fn a_reload_keeps_every_live_revocation_refused() {
        let r = Revocations::memory();
        let old = ctx("https://a", "alice", 1, Some("j"));
        r.revoke_token("https://a", "j", u64::MAX).await.unwrap();
        r.local.replace(vec![
            Entry::Token {
                issuer: "https://a".into(),
                id: "j".into(),
                expires: u64::MAX,
            },
            Entry::Subject {
                issuer: None,
                subject: "bob".into(),
                as_of: u64::MAX,
            },
        ]);
        assert!(r.check_token(&old, b"t").is_err());
        assert!(
            r.check_token(&ctx("https://a", "bob", 1, None), b"t")
                .is_err()
        );
        r.local.replace(Vec::new());
        assert!(
            r.check_token(&old, b"t").is_ok(),
            "a reload drops what is gone"
        );
    }

    #[test]
    fn a_token_is_identified_by_what_was_signed_not_by_its_signature() {
        assert_eq!(token_hash(b"h.p.sig1"), token_hash(b"h.p.sig2"));
        assert_eq!(token_hash(b"h.p.sig"), token_hash(b"h.p.sig=="));
        assert_ne!(token_hash(b"h.p.sig"), token_hash(b"h.q.sig"));
        assert_ne!(token_hash(b"h.p.sig"), token_hash(b"g.p.sig"));
        // Not a JWS: hashed whole, so opaque tokens never share an id.
        assert_ne!(token_hash(b"opaque.a"), token_hash(b"opaque.b"));
        assert_ne!(token_hash(b"a.b.c.d"), token_hash(b"a.b.c.e"));
        assert_ne!(token_hash(b"abc"), token_hash(b"abd"));
    }

    #[test]
    fn expired_entries_are_swept() {
        let mut set = Set::default();
        set.apply(Entry::Token {
            issuer: "i".into(),
            id: "a".into(),
            expires: 10,
        });
        set.apply(Entry::Token {
            issuer: "i".into(),
            id: "b".into(),
            expires: 1000,
        });
        set.apply(Entry::Session {
            id: "s".into(),
            expires: 10,
        });
        set.sweep(500);
        assert_eq!(set.len(), 1);
    }
}
