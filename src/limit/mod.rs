//! [`AttemptLimiter`]: failed-attempt limits per user and client, per client and per
//! user, in process or shared by every instance through Redis.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use portcullis::{User, Users, limit::AttemptLimiter};
//! let users = Users::new().with_user("alice", User::plain("pw"));
//! let limiter = AttemptLimiter::memory();
//! # let mut parts = http::Request::new(()).into_parts().0;
//! # parts.extensions.insert(axum::extract::ConnectInfo(std::net::SocketAddr::from(([198, 51, 100, 1], 9))));
//! // In a login handler, with the request head (`http::request::Parts` is an extractor):
//! assert!(limiter.verify(&users, "alice", "pw", &parts).await.is_ok());
//! # });
//! ```

mod keys;
mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::request::Parts;

use self::keys::Client;
pub(crate) use self::keys::Keys;
pub use self::memory::MemoryLimits;
#[cfg(feature = "redis")]
use self::redis::RedisLimits;

use crate::StoreError;
use crate::authenticator::BoxFuture;
use crate::error::{AuthError, ErrorKind};
use crate::http::client_address::TrustedProxies;
#[cfg(any(feature = "basic", feature = "session"))]
use crate::passwords::{User, Users};

/// The thresholds. Defaults: 5 failures per user and client per minute (then 429 until
/// the minute ends); 100 failures per client per 10 minutes, whatever the user names
/// (credential stuffing); 20 failures per user per 15 minutes from any client (password
/// spraying), after which that user's attempts are spaced out, 1 s doubling to at most
/// 30 s apart: slowed, never locked, so nobody can lock a real user out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Failures per (user, client) per window.
    pub per_user_client: (u32, Duration),
    /// Failures per client per window.
    pub per_client: (u32, Duration),
    /// Failures per user per window before backing off.
    pub per_user: (u32, Duration),
    /// The longest gap the per-user back-off asks for.
    pub max_backoff: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_user_client: (5, Duration::from_secs(60)),
            per_client: (100, Duration::from_secs(600)),
            per_user: (20, Duration::from_secs(900)),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// The thresholds for failed credentials that name no user (bearer tokens,
    /// Cloudflare assertions, session cookies), counted per client: 30 failures per
    /// minute, and the client's 100 per 10 minutes shared with password attempts.
    pub fn credentials() -> Self {
        Limits {
            per_user_client: (30, Duration::from_secs(60)),
            per_user: (1_000, Duration::from_secs(60)),
            ..Limits::default()
        }
    }
    /// `n` failures per user and client per `window` (the showcase's 5 per minute).
    pub fn per_user_client(mut self, n: u32, window: Duration) -> Self {
        self.per_user_client = (n.max(1), window);
        self
    }
    /// `n` failures per client per `window`, over all user names.
    pub fn per_client(mut self, n: u32, window: Duration) -> Self {
        self.per_client = (n.max(1), window);
        self
    }
    /// `n` failures per user per `window` before that user's attempts back off.
    pub fn per_user(mut self, n: u32, window: Duration) -> Self {
        self.per_user = (n.max(1), window);
        self
    }
    /// The back-off delay: 1 s after the per-user limit, doubling up to `max`.
    pub(crate) fn backoff_ms(&self, excess: u32) -> u64 {
        let max = self.max_backoff.as_millis() as u64;
        1000u64.saturating_mul(1u64 << excess.min(30)).min(max)
    }
}

/// A backend's answer to one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Counted against all three counters.
    Allowed,
    /// Refused (and not counted); retry after this many milliseconds.
    Refused(u64),
}

/// How an attempt ended, for its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    /// The password was right: the user's counters start from zero, the client's gets
    /// this attempt back.
    Success,
    /// Nothing was verified (a backend outage, a dropped request): every counter gets
    /// the attempt back.
    GiveBack,
}

/// Where the counters live.
pub(crate) trait Backend: Send + Sync + 'static {
    /// True when the backend keeps counters by name ([`Keys::names`]) rather than by
    /// fingerprint.
    fn named(&self) -> bool {
        false
    }
    /// Checks all three limits and, when none refuses, counts the attempt on all three,
    /// atomically.
    fn attempt<'a>(
        &'a self,
        keys: &'a Keys,
        limits: &'a Limits,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Verdict, StoreError>>;
    /// Records how a counted attempt ended.
    fn settle<'a>(&'a self, keys: &'a Keys, how: Settle) -> BoxFuture<'a, Result<(), StoreError>>;
    /// [`attempt`](Self::attempt) without waiting or boxing, for in-process backends;
    /// `None` sends the caller to `attempt`.
    fn try_attempt(&self, _keys: &Keys, _limits: &Limits, _now_ms: u64) -> Option<Verdict> {
        None
    }
    /// [`settle`](Self::settle) without waiting or boxing; false sends the caller to
    /// `settle`.
    fn try_settle(&self, _keys: &Keys, _how: Settle) -> bool {
        false
    }
}

/// Limits failed authentication attempts. Cheap to clone (shared state); one limiter can
/// serve every login route and Basic. See [`Limits`] for the rules and defaults.
///
/// - The client is the connection's address ([`TrustedProxies`] for proxies); IPv6
///   clients count per /64. Without any address, every client shares one budget per
///   user, and an error is logged once.
/// - An attempt counts before its password is checked, so parallel guesses cannot
///   slip past. Refusals are 429 with `Retry-After`, the same for known and unknown
///   user names.
/// - Backends: [`MemoryLimits`] (bounded, per process) or Redis
///   ([`AttemptLimiter::redis`], one atomic round trip per attempt, shared by every
///   instance). When Redis
///   is unreachable attempts fail closed (503) unless
///   [`with_memory_fallback`](Self::with_memory_fallback) was set.
#[derive(Clone)]
pub struct AttemptLimiter {
    backend: Arc<dyn Backend>,
    fallback: Option<Arc<MemoryLimits>>,
    limits: Limits,
    credential_limits: Limits,
    proxies: TrustedProxies,
    client_key: Option<Arc<ClientKeyFn>>,
    warned_unknown: Arc<AtomicBool>,
}

type ClientKeyFn = dyn Fn(&Parts) -> Option<String> + Send + Sync;

impl fmt::Debug for AttemptLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttemptLimiter")
            .field("limits", &self.limits)
            .field("fallback", &self.fallback.is_some())
            .finish_non_exhaustive()
    }
}

impl AttemptLimiter {
    fn with_backend(backend: Arc<dyn Backend>) -> Self {
        AttemptLimiter {
            backend,
            fallback: None,
            limits: Limits::default(),
            credential_limits: Limits::credentials(),
            proxies: TrustedProxies::default(),
            client_key: None,
            warned_unknown: Arc::default(),
        }
    }
    /// An in-process limiter ([`MemoryLimits::default`]), default [`Limits`].
    pub fn memory() -> Self {
        Self::in_memory(MemoryLimits::default())
    }
    /// An in-process limiter over `counters`, default [`Limits`].
    pub fn in_memory(counters: MemoryLimits) -> Self {
        Self::with_backend(Arc::new(counters))
    }
    /// A limiter whose counters live in Redis under `prefix` (a `:` is added unless it
    /// ends with one), shared by every instance that uses the same Redis and prefix:
    /// attempts spread over instances draw on one budget. Default [`Limits`].
    ///
    /// One round trip per attempt (a Lua script over the three counters, atomic); 2 s
    /// connection and response timeouts, automatic reconnects. Takes the URL forms of
    /// [`RedisStore::connect`](crate::session::RedisStore::connect): a single node, a
    /// Sentinel-watched primary or a cluster. On a cluster the prefix becomes a hash tag
    /// (`{app:limit:}uc:…`), so one limiter's counters share a slot and an attempt stays
    /// one round trip. Counters live in memory on the primary and replicate
    /// asynchronously: after a failover they may restart from zero (a burst gets one
    /// more window).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), portcullis::StoreError> {
    /// use portcullis::limit::AttemptLimiter;
    /// let limiter = AttemptLimiter::redis("redis://127.0.0.1:6379", "app:limit:").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The URL does not parse, Redis cannot be reached, or a cluster prefix holds a
    /// malformed `{tag}`.
    #[cfg(feature = "redis")]
    pub async fn redis(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let counters = RedisLimits::connect(url, prefix).await?;
        Ok(Self::with_backend(Arc::new(counters)))
    }
    /// Other thresholds.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// Other thresholds for failed credentials that name no user (default
    /// [`Limits::credentials`]): their "per user and client" counter is per client.
    pub fn with_credential_limits(mut self, limits: Limits) -> Self {
        self.credential_limits = limits;
        self
    }
    /// Read client addresses through these proxies.
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = proxies;
        self
    }
    /// Identify clients with your own function (an API key id, a header your proxy
    /// sets) instead of their address; `None` falls back to the address.
    pub fn with_client_key<F>(mut self, f: F) -> Self
    where
        F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    {
        self.client_key = Some(Arc::new(f));
        self
    }
    /// When the backend fails (Redis unreachable), count in this process instead of
    /// answering 503: each instance then enforces the limits on its own.
    pub fn with_memory_fallback(mut self) -> Self {
        self.fallback = Some(Arc::new(MemoryLimits::default()));
        self
    }

    /// The client: the custom function's key, else its address.
    fn client(&self, parts: &Parts) -> Client {
        if let Some(key) = self.client_key.as_ref().and_then(|f| f(parts)) {
            return Client::Custom(key);
        }
        match self.proxies.client(parts) {
            Some(ip) => Client::Address(ip),
            None => {
                if !self.warned_unknown.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        "attempt limiter: the request has no client address, so every client \
                         shares one budget per user name and anyone can slow a user down; \
                         serve with `into_make_service_with_connect_info::<SocketAddr>()` or set \
                         `AttemptLimiter::with_client_key`"
                    );
                }
                Client::Unknown
            }
        }
    }

    /// The counters of a password attempt for `user` from the client of `parts`.
    fn keys(&self, user: &str, parts: &Parts) -> Keys {
        Keys::password(user, &self.client(parts), self.backend.named())
    }

    /// Counts one attempt for `user` from the client of `parts`, or refuses it: 429
    /// with `Retry-After`, or 503 when the backend is down (and no fallback is set).
    pub async fn begin(&self, user: &str, parts: &Parts) -> Result<LimitedAttempt, AuthError> {
        self.count(self.keys(user, parts), self.limits).await
    }

    /// Counts one check of a credential that names no user (a bearer token, an
    /// identity-proxy assertion, a session cookie) from the client of `parts`, under
    /// the [credential limits](Self::with_credential_limits), or refuses it (429).
    /// Authenticators call it only when a credential is about to be checked in full (a
    /// token cache miss, a store lookup): valid cached credentials never reach it.
    pub async fn begin_credential(&self, parts: &Parts) -> Result<LimitedAttempt, AuthError> {
        let keys = Keys::credential(&self.client(parts), self.backend.named());
        self.count(keys, self.credential_limits).await
    }

    /// Runs `check` (the full check of a credential that names no user) within the
    /// credential limits of `limiter`, or just runs it without one.
    #[cfg_attr(not(any(feature = "jwt", feature = "session")), allow(dead_code))]
    pub(crate) async fn credential_check<T>(
        limiter: Option<&AttemptLimiter>,
        parts: &Parts,
        check: impl std::future::Future<Output = Result<T, AuthError>>,
    ) -> Result<T, AuthError> {
        let Some(limiter) = limiter else {
            return check.await;
        };
        let attempt = limiter.begin_credential(parts).await?;
        let result = check.await;
        attempt.finish(&result).await;
        result
    }

    async fn count(&self, keys: Keys, limits: Limits) -> Result<LimitedAttempt, AuthError> {
        let now = crate::clock::unix_millis();
        if let Some(verdict) = self.backend.try_attempt(&keys, &limits, now) {
            return Self::decided(verdict, self.backend.clone(), keys);
        }
        let (verdict, backend) = match self.backend.attempt(&keys, &limits, now).await {
            Ok(v) => (v, self.backend.clone()),
            Err(e) => match &self.fallback {
                Some(memory) => {
                    tracing::warn!(error = %e, "attempt limiter backend failed; counting in this process");
                    let memory: Arc<dyn Backend> = memory.clone();
                    let v = memory.attempt(&keys, &limits, now).await;
                    (v.unwrap_or(Verdict::Allowed), memory)
                }
                None => {
                    tracing::warn!(error = %e, "attempt limiter backend failed");
                    return Err(AuthError::unavailable("attempt limiter unavailable"));
                }
            },
        };
        Self::decided(verdict, backend, keys)
    }

    fn decided(
        verdict: Verdict,
        backend: Arc<dyn Backend>,
        keys: Keys,
    ) -> Result<LimitedAttempt, AuthError> {
        match verdict {
            Verdict::Allowed => Ok(LimitedAttempt {
                backend,
                keys,
                open: true,
            }),
            Verdict::Refused(ms) => Err(AuthError::too_many_attempts(ms.div_ceil(1000))),
        }
    }

    #[cfg(any(feature = "basic", feature = "session"))]
    /// Checks `name` and `password` against `users` within the limits: the helper for
    /// login handlers. Errors: 429 when limited, 401 for a wrong name or password (the
    /// same answer for both), 503 when the limiter or the password check is unavailable.
    pub async fn verify<'u>(
        &self,
        users: &'u Users,
        name: &str,
        password: &str,
        parts: &Parts,
    ) -> Result<&'u User, AuthError> {
        let attempt = self.begin(name, parts).await?;
        let result = users.verify(name, password).await;
        attempt.finish(&result).await;
        result
    }
}

/// One counted attempt; dropped without an outcome, it is given back.
#[must_use]
pub struct LimitedAttempt {
    backend: Arc<dyn Backend>,
    keys: Keys,
    open: bool,
}

impl fmt::Debug for LimitedAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitedAttempt").finish_non_exhaustive()
    }
}

impl LimitedAttempt {
    /// Records the outcome of the check this attempt was counted for: a success resets
    /// the user's counters, invalid credentials stay counted, anything else (an outage)
    /// gives the attempt back.
    pub async fn finish<T>(mut self, result: &Result<T, AuthError>) {
        self.open = false;
        let how = match result {
            Ok(_) => Settle::Success,
            Err(e) if e.kind() == ErrorKind::InvalidCredentials => return,
            Err(_) => Settle::GiveBack,
        };
        if self.backend.try_settle(&self.keys, how) {
            return;
        }
        if let Err(e) = self.backend.settle(&self.keys, how).await {
            tracing::warn!(error = %e, "attempt limiter could not record an outcome");
        }
    }
}

impl Drop for LimitedAttempt {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let (backend, keys) = (self.backend.clone(), self.keys.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = backend.settle(&keys, Settle::GiveBack).await;
            });
        }
    }
}
