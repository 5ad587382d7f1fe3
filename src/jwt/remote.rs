//! [`RemoteJwks`]: a JWKS fetched over HTTP(S), directly or through OIDC discovery,
//! with a careful cache.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::algorithm::Algorithm;
use http::header::{ACCEPT, CACHE_CONTROL};
use reqwest::{Client, Url};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::http_client::{Egress, read_capped};
use super::keys::KeySet;
use super::strict_json::parse_map;
use crate::Startup;
use crate::clock::unix_secs;
use crate::error::{AuthError, ConfigError};
use crate::metrics;

/// Fetch and cache settings for [`RemoteJwks`]. Defaults: 5 s timeout, 256 KiB cap,
/// 30 s unknown-`kid` cooldown, TTL from `Cache-Control: max-age` clamped to
/// 60 s..24 h (5 min when absent), refresh at 80 % of the TTL, stale keys served up to
/// 1 h after expiry while refreshes fail, 2 s back-off after a failed fetch, https only
/// (plain http allowed for loopback hosts).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JwksOptions {
    pub(crate) timeout: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) unknown_kid_cooldown: Duration,
    pub(crate) default_ttl: Duration,
    pub(crate) min_ttl: Duration,
    pub(crate) max_ttl: Duration,
    pub(crate) max_stale: Duration,
    pub(crate) failure_backoff: Duration,
    pub(crate) allow_http: bool,
    pub(crate) egress: Egress,
}

impl Default for JwksOptions {
    fn default() -> Self {
        JwksOptions {
            timeout: Duration::from_secs(5),
            max_response_bytes: 256 * 1024,
            unknown_kid_cooldown: Duration::from_secs(30),
            default_ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            max_stale: Duration::from_secs(3600),
            failure_backoff: Duration::from_secs(2),
            allow_http: false,
            egress: Egress::default(),
        }
    }
}

impl JwksOptions {
    /// Whole-request timeout for one fetch.
    pub fn with_timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }
    /// Largest response body accepted.
    pub fn with_max_response_bytes(mut self, n: usize) -> Self {
        self.max_response_bytes = n;
        self
    }
    /// At most one refetch for unknown `kid`s per this interval.
    pub fn with_unknown_kid_cooldown(mut self, d: Duration) -> Self {
        self.unknown_kid_cooldown = d;
        self
    }
    /// TTL when the response has no `max-age`.
    pub fn with_default_ttl(mut self, d: Duration) -> Self {
        self.default_ttl = d;
        self
    }
    /// Bounds for the TTL taken from `Cache-Control`.
    pub fn with_ttl_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.min_ttl = min;
        self.max_ttl = max.max(min);
        self
    }
    /// How long past expiry the last good set is still served while refreshes fail.
    pub fn with_max_stale(mut self, d: Duration) -> Self {
        self.max_stale = d;
        self
    }
    /// Pause after a failed fetch before trying again.
    pub fn with_failure_backoff(mut self, d: Duration) -> Self {
        self.failure_backoff = d;
        self
    }
    /// Ignore `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` (honoured by default, with
    /// `NO_PROXY`): connect to the identity provider directly.
    pub fn without_proxy(mut self) -> Self {
        self.egress.without_proxy();
        self
    }
    /// Also trust the root certificates in `pem` (one or more PEM certificates), for an
    /// identity provider or a TLS-intercepting proxy with a private CA. The system's
    /// roots stay trusted.
    ///
    /// ```
    /// use portcullis::jwt::JwksOptions;
    /// assert!(JwksOptions::default().with_root_certificates_pem(b"not a certificate").is_err());
    /// ```
    ///
    /// # Errors
    /// `pem` holds no certificate, or a malformed one.
    pub fn with_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, ConfigError> {
        self.egress.add_roots_pem(pem)?;
        Ok(self)
    }
    /// Fetch with a client you built (mTLS, a custom resolver, your proxy rules). Its
    /// own settings apply, redirects included; the timeout and size cap here still
    /// bound each fetch.
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.egress.use_client(client);
        self
    }
    /// Allow plain `http://` URLs for non-loopback hosts (not recommended).
    pub fn with_insecure_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }
}

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

/// Why a fetch failed: the provider could not be reached (retry soon), or it answered
/// with something that says the configuration is wrong (retry slowly, tell the operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Unreachable(&'static str),
    Misconfigured(&'static str),
}

impl Failure {
    fn reason(self) -> &'static str {
        match self {
            Failure::Unreachable(r) | Failure::Misconfigured(r) => r,
        }
    }
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

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `raw` as a URL when it is https, or http with `allow_http` or on a loopback host.
pub(crate) fn check_url(raw: &str, allow_http: bool) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|_| ConfigError::new(format!("not a URL: {raw}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_http || is_loopback(&url) => Ok(url),
        _ => Err(ConfigError::new(format!("URL must be https: {raw}"))),
    }
}

impl RemoteJwks {
    /// Keys from a JWKS URL, usable with `allowed` algorithms.
    pub fn new(
        url: &str,
        allowed: impl IntoIterator<Item = Algorithm>,
        opts: JwksOptions,
    ) -> Result<Self, ConfigError> {
        let url = check_url(url, opts.allow_http)?;
        Self::build(Endpoint::Jwks(url), allowed, opts)
    }

    /// Keys found through OIDC discovery at `<issuer>/.well-known/openid-configuration`;
    /// the document's `issuer` must equal `issuer` exactly.
    pub fn discover(
        issuer: &str,
        allowed: impl IntoIterator<Item = Algorithm>,
        opts: JwksOptions,
    ) -> Result<Self, ConfigError> {
        let base = check_url(issuer, opts.allow_http)?;
        let discovery = check_url(
            &format!(
                "{}/.well-known/openid-configuration",
                base.as_str().trim_end_matches('/')
            ),
            opts.allow_http,
        )?;
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
        let client = opts.egress.client(opts.timeout)?;
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

    /// Fetches the key set now (through discovery for an issuer), so that a wrong URL, an
    /// issuer mismatch or an empty key set shows at start-up; returns how many keys are
    /// usable. Afterwards the usual cache rules apply. The error says whether the
    /// provider could not be reached or answered with something that does not match the
    /// configuration.
    pub async fn fetch_now(&self) -> Result<usize, ConfigError> {
        let _guard = self.inner.fetch_lock.lock().await;
        match self.fetch_keys().await {
            Ok(cached) => Ok(self.install(cached).keys.len()),
            Err(failure) => {
                self.failed(failure);
                Err(ConfigError::new(match failure {
                    Failure::Unreachable(reason) => format!(
                        "signing keys from {self:?} could not be fetched: {reason}; the provider is unreachable (start with Startup::Wait to start anyway)"
                    ),
                    Failure::Misconfigured(reason) => format!(
                        "signing keys from {self:?} do not match the configuration: {reason}; check the issuer or JWKS URL"
                    ),
                }))
            }
        }
    }

    /// Gets the key set as `startup` says: [`Startup::FailFast`] fetches now and fails
    /// on any problem ([`fetch_now`](Self::fetch_now)); [`Startup::Wait`] returns at once
    /// and fetches in the background until the provider answers (see [`Startup`]).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), portcullis::ConfigError> {
    /// use portcullis::Startup;
    /// use portcullis::jwt::{Algorithm, JwksOptions, RemoteJwks};
    /// let jwks = RemoteJwks::discover("https://login.example.com", [Algorithm::RS256], JwksOptions::default())?;
    /// jwks.start(Startup::Wait).await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(&self, startup: Startup) -> Result<(), ConfigError> {
        match startup {
            Startup::FailFast => self.fetch_now().await.map(drop),
            Startup::Wait => {
                self.spawn_warm_up();
                Ok(())
            }
        }
    }

    /// Fetches in the background until a set is at hand: every [`Startup::RETRY_MIN`]
    /// doubling to [`Startup::RETRY_MAX`] (each wait jittered by up to a quarter) while the
    /// provider cannot be reached, every [`Startup::RETRY_MISCONFIGURED`] while it answers
    /// with something that does not match the configuration. Holds the set weakly: it
    /// ends when the set is dropped.
    fn spawn_warm_up(&self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        handle.spawn(async move {
            let mut wait = Startup::RETRY_MIN;
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let this = RemoteJwks { inner };
                if this.snapshot().is_some() {
                    return;
                }
                let outcome = {
                    let _guard = this.inner.fetch_lock.lock().await;
                    if this.snapshot().is_some() {
                        return;
                    }
                    this.fetch_keys().await
                };
                let pause = match outcome {
                    Ok(cached) => {
                        this.install(cached);
                        tracing::info!(endpoint = ?this, "signing keys fetched; ready");
                        return;
                    }
                    Err(failure) => {
                        this.failed(failure);
                        match failure {
                            Failure::Unreachable(_) => {
                                let p = wait;
                                wait = (wait * 2).min(Startup::RETRY_MAX);
                                p
                            }
                            Failure::Misconfigured(_) => Startup::RETRY_MISCONFIGURED,
                        }
                    }
                };
                drop(this);
                tokio::time::sleep(jittered(pause)).await;
            }
        });
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

    async fn fetch_keys(&self) -> Result<Cached, Failure> {
        use Failure::Misconfigured as Wrong;
        let url = match &self.inner.endpoint {
            Endpoint::Jwks(u) => u.clone(),
            Endpoint::Oidc {
                issuer,
                discovery,
                jwks,
            } => {
                let known = jwks.read().unwrap_or_else(|p| p.into_inner()).clone();
                match known {
                    Some(u) => u,
                    None => {
                        let (body, _) = self.get(discovery).await?;
                        let doc = parse_map(&body)
                            .ok_or(Wrong("discovery document is not a JSON object"))?;
                        if doc.get("issuer").and_then(Value::as_str) != Some(issuer.as_str()) {
                            return Err(Wrong(
                                "discovery issuer does not match the configured issuer",
                            ));
                        }
                        let raw = doc
                            .get("jwks_uri")
                            .and_then(Value::as_str)
                            .ok_or(Wrong("discovery has no jwks_uri"))?;
                        let u = check_url(raw, self.inner.opts.allow_http)
                            .map_err(|_| Wrong("discovery jwks_uri is not an allowed URL"))?;
                        *jwks.write().unwrap_or_else(|p| p.into_inner()) = Some(u.clone());
                        u
                    }
                }
            }
        };
        let result = self.get(&url).await;
        if result.is_err()
            && let Endpoint::Oidc { jwks, .. } = &self.inner.endpoint
        {
            // Rediscover next time: the provider may have moved its keys.
            *jwks.write().unwrap_or_else(|p| p.into_inner()) = None;
        }
        let (body, max_age) = result?;
        let keys = KeySet::from_jwks(&body, &self.inner.allowed, false)
            .map_err(|_| Wrong("JWKS is not a JSON object with a keys array"))?;
        if keys.is_empty() {
            return Err(Wrong("JWKS has no usable keys"));
        }
        let o = &self.inner.opts;
        let ttl = max_age.unwrap_or(o.default_ttl).clamp(o.min_ttl, o.max_ttl);
        Ok(Cached {
            keys,
            fetched_at: Instant::now(),
            ttl,
            body_hash: Sha256::digest(&body).into(),
        })
    }

    async fn get(&self, url: &Url) -> Result<(Vec<u8>, Option<Duration>), Failure> {
        self.inner.fetches.fetch_add(1, Ordering::Relaxed);
        let cap = self.inner.opts.max_response_bytes;
        let resp = self
            .inner
            .client
            .get(url.clone())
            .header(ACCEPT, "application/json")
            .timeout(self.inner.opts.timeout)
            .send()
            .await
            .map_err(|_| Failure::Unreachable("request failed or timed out"))?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            // A server error, a rate limit or a gateway's timeout is an outage; any
            // other answer (404, 401, a redirect elsewhere) says the URL is wrong.
            let outage = status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::REQUEST_TIMEOUT;
            return Err(if outage {
                Failure::Unreachable("key endpoint answered with a server error")
            } else {
                Failure::Misconfigured("key endpoint did not answer 200")
            });
        }
        let max_age = resp
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_max_age);
        let body = read_capped(resp, cap)
            .await
            .map_err(|_| Failure::Unreachable("key endpoint response too large or cut short"))?;
        Ok((body, max_age))
    }
}

/// `d`, shortened by up to a quarter at random, so instances that lost their provider
/// together do not retry in step.
fn jittered(d: Duration) -> Duration {
    let quarter = d / 4;
    let cut = quarter.mul_f64(rand_unit());
    d - cut
}

/// A number in [0, 1) from the OS's randomness (zero when it has none).
fn rand_unit() -> f64 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

/// `max-age` from a Cache-Control value; `no-store`/`no-cache` mean zero.
fn parse_max_age(v: &str) -> Option<Duration> {
    let mut age = None;
    for d in v.split(',') {
        let d = d.trim();
        if d.eq_ignore_ascii_case("no-store") || d.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if let Some((k, val)) = d.split_once('=')
            && k.trim().eq_ignore_ascii_case("max-age")
        {
            age = val
                .trim()
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control() {
        assert_eq!(
            parse_max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(parse_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(parse_max_age("public"), None);
        assert_eq!(parse_max_age("max-age=abc"), None);
    }

    #[test]
    fn url_rules() {
        let o = JwksOptions::default();
        assert!(check_url("https://a.example/k", o.allow_http).is_ok());
        assert!(check_url("http://127.0.0.1:8/k", o.allow_http).is_ok());
        assert!(check_url("http://localhost/k", o.allow_http).is_ok());
        assert!(check_url("http://a.example/k", o.allow_http).is_err());
        assert!(check_url("file:///etc/passwd", o.allow_http).is_err());
        assert!(check_url("http://a.example/k", o.with_insecure_http(true).allow_http).is_ok());
    }
}
