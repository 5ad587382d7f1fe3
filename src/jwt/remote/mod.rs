//! [`RemoteJwks`]: a JWKS fetched over HTTP(S), directly or through OIDC discovery,
//! with a careful cache.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::jose::algorithm::Algorithm;
use reqwest::{Client, Url};

use crate::clock::unix_secs;
use crate::error::{AuthError, ConfigError};
use crate::jose::keys::KeySet;
use crate::metrics;

mod fetch;
mod options;
mod startup;

use self::fetch::Failure;
pub use self::options::JwksOptions;

#[derive(Debug)]
pub(crate) struct Cached {
    pub keys: KeySet,
    fetched_at: Instant,
    ttl: Duration,
    body_hash: [u8; 32],
}

impl Cached {
    fn refresh_at(&self) -> Instant {
        self.fetched_at + self.ttl.mul_f32(0.8)
    }
    fn expires_at(&self) -> Instant {
        self.fetched_at + self.ttl
    }
}

enum Endpoint {
    Jwks(Url),
    Oidc {
        issuer: String,
        discovery: Url,
        jwks: RwLock<Option<Url>>,
    },
}

struct Inner {
    endpoint: Endpoint,
    allowed: Vec<Algorithm>,
    opts: JwksOptions,
    client: Client,
    state: RwLock<Option<Arc<Cached>>>,
    fetch_lock: tokio::sync::Mutex<()>,
    last_failure: Mutex<Option<Instant>>,
    last_kid_refetch: Mutex<Option<Instant>>,
    last_success: Mutex<Option<SystemTime>>,
    /// Why the last fetch failed, until one succeeds.
    last_problem: Mutex<Option<Failure>>,
    version: AtomicU64,
    generation: AtomicU64,
    refreshing: AtomicBool,
    fetches: AtomicU64,
}

/// The state of a [`RemoteJwks`] key set, from [`RemoteJwks::health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwksHealth {
    /// When a fetch last succeeded.
    pub last_success: Option<SystemTime>,
    /// Usable keys in the current set.
    pub keys: usize,
    /// The set is past its TTL (refreshes are failing or under way).
    pub stale: bool,
    /// A set within the staleness bound is at hand: tokens can be verified.
    pub usable: bool,
    /// Why the last fetch failed, while no fetch has succeeded since.
    pub problem: Option<&'static str>,
    /// That failure says the configuration is wrong (the provider answered, but not with
    /// what was configured: an issuer that differs, no usable key, no such document),
    /// rather than that the provider could not be reached.
    pub misconfigured: bool,
}

/// Keys from a JWKS URL or from OIDC discovery, cached.
///
/// - single-flight: concurrent misses share one fetch; no lock is held across network
///   I/O except the fetch's own single-flight lock;
/// - refresh ahead of expiry in the background, honouring `Cache-Control: max-age`;
/// - keeps serving the last good set for a bounded time when refreshes fail, fails
///   closed (503) when there is none;
/// - an unknown `kid` triggers at most one refetch per cooldown;
/// - timeout, response size cap, redirects only to the same origin.
///
/// Fetches are lazy: construction never touches the network.
///
/// ```
/// use portcullis::jwt::{Algorithm, JwksOptions, RemoteJwks};
/// let jwks = RemoteJwks::new("https://issuer.example/.well-known/jwks.json", [Algorithm::RS256], JwksOptions::default()).unwrap();
/// let oidc = RemoteJwks::discover("https://issuer.example", [Algorithm::RS256], JwksOptions::default()).unwrap();
/// assert!(RemoteJwks::new("http://issuer.example/jwks", [Algorithm::RS256], JwksOptions::default()).is_err());
/// # let _ = (jwks, oidc);
/// ```
#[derive(Clone)]
pub struct RemoteJwks {
    inner: Arc<Inner>,
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = match &self.inner.endpoint {
            Endpoint::Jwks(u) => u.as_str(),
            Endpoint::Oidc { discovery, .. } => discovery.as_str(),
        };
        f.debug_struct("RemoteJwks")
            .field("url", &url)
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    /// Keys from a JWKS URL, usable with `allowed` algorithms.
    pub fn new(
        url: &str,
        allowed: impl IntoIterator<Item = Algorithm>,
        opts: JwksOptions,
    ) -> Result<Self, ConfigError> {
        let url = opts.egress.url(url)?;
        Self::build(Endpoint::Jwks(url), allowed, opts)
    }

    /// Keys found through OIDC discovery at `<issuer>/.well-known/openid-configuration`;
    /// the document's `issuer` must equal `issuer` exactly.
    pub fn discover(
        issuer: &str,
        allowed: impl IntoIterator<Item = Algorithm>,
        opts: JwksOptions,
    ) -> Result<Self, ConfigError> {
        let base = opts.egress.url(issuer)?;
        let discovery = opts.egress.url(&format!(
            "{}/.well-known/openid-configuration",
            base.as_str().trim_end_matches('/')
        ))?;
        Self::build(
            Endpoint::Oidc {
                issuer: issuer.to_owned(),
                discovery,
                jwks: RwLock::new(None),
            },
            allowed,
            opts,
        )
    }

    fn build(
        endpoint: Endpoint,
        allowed: impl IntoIterator<Item = Algorithm>,
        opts: JwksOptions,
    ) -> Result<Self, ConfigError> {
        let client = opts.egress.client()?;
        Ok(RemoteJwks {
            inner: Arc::new(Inner {
                endpoint,
                allowed: allowed.into_iter().collect(),
                opts,
                client,
                state: RwLock::new(None),
                fetch_lock: tokio::sync::Mutex::new(()),
                last_failure: Mutex::new(None),
                last_kid_refetch: Mutex::new(None),
                last_success: Mutex::new(None),
                last_problem: Mutex::new(None),
                version: AtomicU64::new(0),
                generation: AtomicU64::new(0),
                refreshing: AtomicBool::new(false),
                fetches: AtomicU64::new(0),
            }),
        })
    }

    /// How many fetches (JWKS and discovery) were attempted so far.
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// The generation of the key set (it changes whenever the set's content changes),
    /// or `None` when there is no set within its staleness bound. Starts a background
    /// refresh once the set is due for one, so cached tokens keep their keys fresh.
    pub(crate) fn live_generation(&self) -> Option<u64> {
        let generation = self.generation();
        let (refresh_at, usable_until) = {
            let state = self.inner.state.read().unwrap_or_else(|p| p.into_inner());
            let c = state.as_ref()?;
            (c.refresh_at(), c.expires_at() + self.inner.opts.max_stale)
        };
        let now = Instant::now();
        if now >= refresh_at {
            if now >= usable_until {
                return None;
            }
            self.spawn_refresh();
        }
        Some(generation)
    }

    /// The generation of the key set, whatever its age.
    pub(crate) fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    fn snapshot(&self) -> Option<Arc<Cached>> {
        self.inner
            .state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The current key set, fetching or refreshing as the cache rules say.
    pub(crate) async fn current(&self) -> Result<Arc<Cached>, AuthError> {
        let now = Instant::now();
        let version = self.inner.version.load(Ordering::Acquire);
        match self.snapshot() {
            Some(c) if now < c.refresh_at() => Ok(c),
            Some(c) if now < c.expires_at() + self.inner.opts.max_stale => {
                if now >= c.expires_at() {
                    metrics::jwks_stale_served(self.url());
                }
                self.spawn_refresh();
                Ok(c)
            }
            _ => self.refresh(version).await,
        }
    }

    /// After a token named a `kid` the set lacks: refetch, at most once per cooldown.
    pub(crate) async fn refetch_for_unknown_kid(&self, seen: &Arc<Cached>) -> Option<Arc<Cached>> {
        let now = Instant::now();
        {
            let mut last = self
                .inner
                .last_kid_refetch
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(t) = *last
                && now.duration_since(t) < self.inner.opts.unknown_kid_cooldown
            {
                return None;
            }
            // A set fetched within the last second (or cooldown, if shorter) is as fresh
            // as a refetch would be.
            if now.duration_since(seen.fetched_at)
                < self
                    .inner
                    .opts
                    .unknown_kid_cooldown
                    .min(Duration::from_secs(1))
            {
                return None;
            }
            *last = Some(now);
        }
        let version = self.inner.version.load(Ordering::Acquire);
        metrics::jwks_unknown_kid(self.url());
        self.refresh(version).await.ok()
    }

    fn spawn_refresh(&self) {
        if self.inner.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.inner.refreshing.store(false, Ordering::Release);
            return;
        };
        let this = self.clone();
        let version = self.inner.version.load(Ordering::Acquire);
        handle.spawn(async move {
            let _ = this.refresh(version).await;
            this.inner.refreshing.store(false, Ordering::Release);
        });
    }

    /// Single-flight fetch; `seen_version` is the version the caller saw before waiting.
    async fn refresh(&self, seen_version: u64) -> Result<Arc<Cached>, AuthError> {
        let _guard = self.inner.fetch_lock.lock().await;
        if self.inner.version.load(Ordering::Acquire) != seen_version {
            // Another caller fetched while this one waited: share its outcome, under the
            // same staleness bound (a failed fetch leaves the old, possibly too old, set).
            return self.stale_or_unavailable();
        }
        let backoff = *self
            .inner
            .last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(t) = backoff
            && t.elapsed() < self.inner.opts.failure_backoff
        {
            return self.stale_or_unavailable();
        }
        match self.fetch_keys().await {
            Ok(cached) => Ok(self.install(cached)),
            Err(failure) => {
                self.failed(failure);
                self.stale_or_unavailable()
            }
        }
    }

    /// Records a failed fetch: logged (an error when it says the configuration is
    /// wrong), kept for [`health`](Self::health), and the request-driven backoff starts.
    fn failed(&self, failure: Failure) {
        metrics::jwks_fetched(self.url(), None, 0);
        match failure {
            Failure::Unreachable(reason) => {
                tracing::warn!(endpoint = ?self, reason, "fetching signing keys failed");
            }
            Failure::Misconfigured(reason) => {
                tracing::error!(
                    endpoint = ?self,
                    reason,
                    "signing keys: the provider answered, but not as configured; check the issuer or JWKS URL"
                );
            }
        }
        *self
            .inner
            .last_problem
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(failure);
        *self
            .inner
            .last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        self.inner.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Makes a freshly fetched set the current one.
    fn install(&self, cached: Cached) -> Arc<Cached> {
        metrics::jwks_fetched(self.url(), Some(cached.keys.len()), unix_secs());
        *self
            .inner
            .last_success
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(SystemTime::now());
        let cached = Arc::new(cached);
        let mut state = self.inner.state.write().unwrap_or_else(|p| p.into_inner());
        let changed = state
            .as_ref()
            .is_none_or(|old| old.body_hash != cached.body_hash);
        *state = Some(cached.clone());
        drop(state);
        if changed {
            self.inner.generation.fetch_add(1, Ordering::AcqRel);
        }
        self.inner.version.fetch_add(1, Ordering::AcqRel);
        *self
            .inner
            .last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
        *self
            .inner
            .last_problem
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
        cached
    }

    /// The URL fetched: the JWKS, or the discovery document.
    fn url(&self) -> &str {
        match &self.inner.endpoint {
            Endpoint::Jwks(u) => u.as_str(),
            Endpoint::Oidc { discovery, .. } => discovery.as_str(),
        }
    }

    /// How the key set is doing, for dashboards and readiness checks.
    pub fn health(&self) -> JwksHealth {
        let now = Instant::now();
        let snapshot = self.snapshot();
        let problem = *self
            .inner
            .last_problem
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let last_success = *self
            .inner
            .last_success
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        JwksHealth {
            last_success,
            keys: snapshot.as_ref().map_or(0, |c| c.keys.len()),
            stale: snapshot.as_ref().is_some_and(|c| now >= c.expires_at()),
            usable: snapshot
                .as_ref()
                .is_some_and(|c| now < c.expires_at() + self.inner.opts.max_stale),
            problem: problem.map(Failure::reason),
            misconfigured: matches!(problem, Some(Failure::Misconfigured(_))),
        }
    }

    /// True when a key set within its staleness bound is at hand, fetching one first if
    /// there is none (for a readiness probe: `/ready` answers 503 until the IdP has
    /// answered once, and again once its keys are too old).
    pub async fn ready(&self) -> bool {
        self.current().await.is_ok()
    }

    fn stale_or_unavailable(&self) -> Result<Arc<Cached>, AuthError> {
        match self.snapshot() {
            Some(c) if Instant::now() < c.expires_at() + self.inner.opts.max_stale => {
                if Instant::now() >= c.expires_at() {
                    metrics::jwks_stale_served(self.url());
                }
                Ok(c)
            }
            _ => Err(AuthError::unavailable("signing keys unavailable")),
        }
    }
}
