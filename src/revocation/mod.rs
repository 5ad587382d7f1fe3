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

mod entry;
mod filter;
mod local;
#[cfg(feature = "redis")]
mod redis;
mod set;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::clock::unix_secs;
use crate::context::AuthContext;
use crate::error::AuthError;

pub(crate) use self::entry::Entry;
#[cfg(feature = "session")]
pub(crate) use self::entry::ProviderKey;
pub use self::entry::SESSION_SCOPE;
use self::entry::SUBJECT_TTL;
use self::local::{Backend, Local};
#[cfg(feature = "redis")]
pub use self::redis::{RedisRevocations, RedisRevocationsBuilder};
pub(crate) use self::set::token_hash;
use self::set::{Set, subject_revoked};

/// Revoked tokens, subjects and sessions. Cheap to clone; attach one to
/// [`JwtVerifier::with_revocations`](crate::jwt::JwtVerifier::with_revocations),
/// Cloudflare Access and [`SessionConfig::with_revocations`](crate::session::SessionConfig::with_revocations).
///
/// - Scoped per issuer: two issuers' `sub` or `jti` values never collide.
/// - Checked on every request, verified-token cache hits included, from an in-process
///   copy: no round trip. A revoked credential is a 401 (`invalid_token` for bearer).
/// - [`Revocations::memory`] keeps the list in this process; [`Revocations::redis`]
///   (feature `redis`) shares it with every instance and keeps each copy current
///   ([`RedisRevocations::builder`] for more settings).
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

    /// A list shared through Redis by every instance, under `<prefix>revoked`, the
    /// prefix taken as given (`"app:"` gives `app:revoked`; unlike the limiter and the
    /// replay cache, no `:` is added) (see
    /// [`RedisRevocations`] for how copies stay current and the bound on their lag;
    /// [`RedisRevocations::builder`] for replica acknowledgements).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), portcullis::StoreError> {
    /// use portcullis::revocation::Revocations;
    /// let revocations = Revocations::redis("redis://127.0.0.1:6379", "app:").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The URL does not parse, Redis cannot be reached, or the list cannot be loaded
    /// within 5 s.
    #[cfg(feature = "redis")]
    pub async fn redis(url: &str, prefix: &str) -> Result<Self, crate::StoreError> {
        RedisRevocations::builder(url)
            .with_prefix(prefix)
            .connect()
            .await
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

#[cfg(test)]
mod tests;
