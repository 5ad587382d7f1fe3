//! [`JwksOptions`]: how a [`RemoteJwks`](super::RemoteJwks) fetches and caches, and which
//! URLs it may fetch.

use std::time::Duration;

use reqwest::Url;

use super::super::http_client::Egress;
use crate::error::ConfigError;

/// Fetch and cache settings for [`RemoteJwks`](super::RemoteJwks). Defaults: 5 s timeout, 256 KiB cap,
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
