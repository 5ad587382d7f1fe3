//! Metrics (feature `metrics`), on the [`metrics`](https://docs.rs/metrics) facade: every
//! name and label is here, and README's table lists them. Label values come from fixed
//! sets (schemes, error codes, the code's own reasons, route templates, configured
//! URLs), never from a subject, a token or a request path. Without the feature every
//! function is empty and inlined away.

// Without the feature nothing here is used; without `jwt` or `session`, their names are not.
#![cfg_attr(
    not(all(feature = "metrics", feature = "jwt", feature = "session")),
    allow(dead_code)
)]

#[cfg(feature = "metrics")]
use std::time::Instant;

use crate::context::Scheme;

/// Authentication outcomes: `portcullis_auth_total{scheme, outcome, reason}`.
pub(crate) const AUTH_TOTAL: &str = "portcullis_auth_total";
/// Policy decisions: `portcullis_policy_decisions_total{route, outcome}`.
pub(crate) const POLICY_TOTAL: &str = "portcullis_policy_decisions_total";
/// Uncached JWT verifications: `portcullis_jwt_verify_seconds{alg}` (histogram).
pub(crate) const JWT_VERIFY_SECONDS: &str = "portcullis_jwt_verify_seconds";
/// Verified-token cache: `portcullis_token_cache_total{result}` (`hit`, `miss`, `evict`).
pub(crate) const TOKEN_CACHE_TOTAL: &str = "portcullis_token_cache_total";
/// Parsed JWS headers: `portcullis_header_cache_total{result}` (`hit`, `miss`).
pub(crate) const HEADER_CACHE_TOTAL: &str = "portcullis_header_cache_total";
/// JWKS fetches: `portcullis_jwks_fetches_total{url, result}` (`ok`, `error`).
pub(crate) const JWKS_FETCHES_TOTAL: &str = "portcullis_jwks_fetches_total";
/// Keys in the current set: `portcullis_jwks_keys{url}` (gauge).
pub(crate) const JWKS_KEYS: &str = "portcullis_jwks_keys";
/// Unix time of the last good fetch: `portcullis_jwks_last_success_seconds{url}` (gauge).
pub(crate) const JWKS_LAST_SUCCESS: &str = "portcullis_jwks_last_success_seconds";
/// A set past its TTL served while refreshes fail: `portcullis_jwks_stale_served_total{url}`.
pub(crate) const JWKS_STALE_TOTAL: &str = "portcullis_jwks_stale_served_total";
/// Refetches for an unknown `kid`: `portcullis_jwks_unknown_kid_refetches_total{url}`.
pub(crate) const JWKS_UNKNOWN_KID_TOTAL: &str = "portcullis_jwks_unknown_kid_refetches_total";
/// Session store calls: `portcullis_session_store_seconds{op, result}` (histogram).
pub(crate) const STORE_SECONDS: &str = "portcullis_session_store_seconds";

/// A counter handle registered with the recorder on first use and reused after that:
/// the recorder's key lookup happens once, not once per request (the `metrics` crate's
/// intended use). Install your recorder before serving requests. Empty without the
/// feature.
#[derive(Debug, Clone, Default)]
pub(crate) struct CachedCounter(#[cfg(feature = "metrics")] std::sync::OnceLock<metrics::Counter>);

impl CachedCounter {
    #[cfg(feature = "metrics")]
    fn increment(&self, register: impl FnOnce() -> metrics::Counter) {
        self.0.get_or_init(register).increment(1);
    }
}

/// Starts timing when the feature is on; nothing otherwise.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timer(#[cfg(feature = "metrics")] Instant);

impl Timer {
    #[inline(always)]
    pub(crate) fn start() -> Self {
        Timer(
            #[cfg(feature = "metrics")]
            Instant::now(),
        )
    }
    #[cfg(feature = "metrics")]
    fn seconds(self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// One authentication decided other than by success: `outcome` is `anonymous` or an
/// error code; `reason` the code's own static reason.
#[inline(always)]
pub(crate) fn auth(scheme: Option<Scheme>, outcome: &'static str, reason: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(AUTH_TOTAL,
        "scheme" => scheme.map_or("none", Scheme::as_str),
        "outcome" => outcome,
        "reason" => reason)
    .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (scheme, outcome, reason);
}

/// One successful authentication by `scheme`, counted through `handles[index]`.
#[inline(always)]
pub(crate) fn auth_success(handles: &[CachedCounter], index: usize, scheme: Scheme) {
    #[cfg(feature = "metrics")]
    if let Some(handle) = handles.get(index) {
        handle.increment(|| {
            metrics::counter!(AUTH_TOTAL, "scheme" => scheme.as_str(), "outcome" => "success", "reason" => "")
        });
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (handles, index, scheme);
}

/// One policy decision on `route` (the matched template, or `""`).
#[inline(always)]
pub(crate) fn policy(route: &str, outcome: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(POLICY_TOTAL, "route" => route.to_owned(), "outcome" => outcome).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (route, outcome);
}

/// One uncached verification with `alg`, timed from `timer`.
#[inline(always)]
pub(crate) fn jwt_verified(alg: &'static str, timer: Timer) {
    #[cfg(feature = "metrics")]
    metrics::histogram!(JWT_VERIFY_SECONDS, "alg" => alg).record(timer.seconds());
    #[cfg(not(feature = "metrics"))]
    let _ = (alg, timer);
}

/// Hit and miss handles of one cache.
#[derive(Debug, Clone, Default)]
pub(crate) struct HitMiss {
    hit: CachedCounter,
    miss: CachedCounter,
}

/// A token cache lookup: a hit or a miss.
#[inline(always)]
pub(crate) fn token_cache_lookup(handles: &HitMiss, hit: bool) {
    #[cfg(feature = "metrics")]
    if hit {
        handles
            .hit
            .increment(|| metrics::counter!(TOKEN_CACHE_TOTAL, "result" => "hit"));
    } else {
        handles
            .miss
            .increment(|| metrics::counter!(TOKEN_CACHE_TOTAL, "result" => "miss"));
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (handles, hit);
}

/// Token cache entries evicted because the cache was full.
#[inline(always)]
pub(crate) fn token_cache_evicted(n: u64) {
    #[cfg(feature = "metrics")]
    metrics::counter!(TOKEN_CACHE_TOTAL, "result" => "evict").increment(n);
    #[cfg(not(feature = "metrics"))]
    let _ = n;
}

/// A header cache lookup: a hit or a miss.
#[inline(always)]
pub(crate) fn header_cache_lookup(handles: &HitMiss, hit: bool) {
    #[cfg(feature = "metrics")]
    if hit {
        handles
            .hit
            .increment(|| metrics::counter!(HEADER_CACHE_TOTAL, "result" => "hit"));
    } else {
        handles
            .miss
            .increment(|| metrics::counter!(HEADER_CACHE_TOTAL, "result" => "miss"));
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (handles, hit);
}

/// A JWKS fetch from `url` finished; on success with `keys` keys at Unix time `now`.
#[inline(always)]
pub(crate) fn jwks_fetched(url: &str, keys: Option<usize>, now: u64) {
    #[cfg(feature = "metrics")]
    {
        let url = url.to_owned();
        let result = if keys.is_some() { "ok" } else { "error" };
        metrics::counter!(JWKS_FETCHES_TOTAL, "url" => url.clone(), "result" => result)
            .increment(1);
        if let Some(n) = keys {
            metrics::gauge!(JWKS_KEYS, "url" => url.clone()).set(n as f64);
            metrics::gauge!(JWKS_LAST_SUCCESS, "url" => url).set(now as f64);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (url, keys, now);
}

/// The set of `url` was served past its TTL (refreshes failing).
#[inline(always)]
pub(crate) fn jwks_stale_served(url: &str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(JWKS_STALE_TOTAL, "url" => url.to_owned()).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = url;
}

/// A token named a `kid` the set of `url` lacked, and a refetch was made.
#[inline(always)]
pub(crate) fn jwks_unknown_kid(url: &str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(JWKS_UNKNOWN_KID_TOTAL, "url" => url.to_owned()).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = url;
}

/// A session store call `op` finished (`ok`, `error` or `timeout`), timed from `timer`.
#[inline(always)]
pub(crate) fn store_call(op: &'static str, result: &'static str, timer: Timer) {
    #[cfg(feature = "metrics")]
    metrics::histogram!(STORE_SECONDS, "op" => op, "result" => result).record(timer.seconds());
    #[cfg(not(feature = "metrics"))]
    let _ = (op, result, timer);
}
