//! [`JwksOptions`]: how a [`RemoteJwks`](super::RemoteJwks) fetches and caches, and which
//! URLs it may fetch.

use std::time::Duration;

use crate::egress::Egress;

/// Fetch and cache settings for [`RemoteJwks`](super::RemoteJwks): how the keys are
/// fetched ([`Egress`]: by default 5 s timeout, 256 KiB cap, https only) and cached. Defaults:
/// 30 s unknown-`kid` cooldown, TTL from `Cache-Control: max-age` clamped to
/// 60 s..24 h (5 min when absent), refresh at 80 % of the TTL, stale keys served up to
/// 1 h after expiry while refreshes fail, 2 s back-off after a failed fetch.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JwksOptions {
    pub(crate) unknown_kid_cooldown: Duration,
    pub(crate) default_ttl: Duration,
    pub(crate) min_ttl: Duration,
    pub(crate) max_ttl: Duration,
    pub(crate) max_stale: Duration,
    pub(crate) failure_backoff: Duration,
    pub(crate) egress: Egress,
}

impl Default for JwksOptions {
    fn default() -> Self {
        JwksOptions {
            unknown_kid_cooldown: Duration::from_secs(30),
            default_ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            max_stale: Duration::from_secs(3600),
            failure_backoff: Duration::from_secs(2),
            egress: Egress::default(),
        }
    }
}

impl JwksOptions {
    /// How the keys are fetched: timeout, size cap, proxies, private roots, URL rules.
    pub fn with_egress(mut self, egress: Egress) -> Self {
        self.egress = egress;
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
}
