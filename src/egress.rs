//! Calls out to identity providers: discovery, key sets, introspection, identity-proxy
//! keys and the OAuth token exchange all leave the process through one [`Egress`]: its
//! timeout, response size cap, proxy rules, private roots and URL rules.
//!
//! ```
//! use std::time::Duration;
//! use portcullis::egress::Egress;
//! use portcullis::jwt::JwksOptions;
//!
//! let egress = Egress::default()
//!     .with_timeout(Duration::from_secs(2))
//!     .without_proxy();
//! let options = JwksOptions::default().with_egress(egress);
//! # let _ = options;
//! ```

use std::fmt;
use std::time::Duration;

use reqwest::{Certificate, Client, Response, Url, redirect};

use crate::error::ConfigError;

/// How requests to identity providers leave the process. Defaults: 5 s timeout per
/// request, responses up to 256 KiB, `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and
/// `NO_PROXY` honoured (as curl reads them), the system's root certificates trusted,
/// redirects followed only within the same origin (at most three; none where
/// credentials are sent), https only (plain http for loopback hosts).
#[derive(Clone)]
pub struct Egress {
    pub(crate) timeout: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) allow_http: bool,
    no_proxy: bool,
    roots: Vec<Certificate>,
    client: Option<Client>,
}

impl Default for Egress {
    fn default() -> Self {
        Egress {
            timeout: Duration::from_secs(5),
            max_response_bytes: 256 * 1024,
            allow_http: false,
            no_proxy: false,
            roots: Vec::new(),
            client: None,
        }
    }
}

impl fmt::Debug for Egress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Egress")
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("allow_http", &self.allow_http)
            .field("proxy_from_env", &!self.no_proxy)
            .field("extra_roots", &self.roots.len())
            .field("own_client", &self.client.is_some())
            .finish()
    }
}

impl Egress {
    /// Whole-request timeout for one call (default 5 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Largest response body accepted (default 256 KiB), checked against
    /// `Content-Length` and while reading.
    pub fn with_max_response_bytes(mut self, n: usize) -> Self {
        self.max_response_bytes = n;
        self
    }
    /// Ignore `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` (honoured by default, with
    /// `NO_PROXY`): connect to the identity provider directly.
    pub fn without_proxy(mut self) -> Self {
        self.no_proxy = true;
        self
    }
    /// Also trust the root certificates in `pem` (one or more PEM certificates), for an
    /// identity provider or a TLS-intercepting proxy with a private CA. The system's
    /// roots stay trusted.
    ///
    /// ```
    /// use portcullis::egress::Egress;
    /// assert!(Egress::default().with_root_certificates_pem(b"not a certificate").is_err());
    /// ```
    ///
    /// # Errors
    /// `pem` holds no certificate, or a malformed one.
    pub fn with_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, ConfigError> {
        let certs = Certificate::from_pem_bundle(pem)
            .map_err(|_| ConfigError::new("root certificates: not a PEM bundle"))?;
        if certs.is_empty() {
            return Err(ConfigError::new(
                "root certificates: no certificate in the PEM",
            ));
        }
        self.roots.extend(certs);
        Ok(self)
    }
    /// Call out with a client you built (mTLS, a custom resolver, your proxy rules). Its
    /// own settings apply, redirects included (build it with
    /// `redirect(reqwest::redirect::Policy::none())` if it carries credentials to token
    /// or introspection endpoints); the timeout and size cap here still bound each call.
    pub fn with_http_client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }
    /// Allow plain `http://` URLs for non-loopback hosts (not recommended).
    pub fn with_insecure_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// `raw` as a URL when it is https, or http with `with_insecure_http` or on a
    /// loopback host.
    pub(crate) fn url(&self, raw: &str) -> Result<Url, ConfigError> {
        check_url(raw, self.allow_http)
    }

    /// The body of `resp`, within this egress's size cap.
    pub(crate) async fn read(&self, resp: Response) -> Result<Vec<u8>, &'static str> {
        read_capped(resp, self.max_response_bytes).await
    }

    /// The client: the caller's own, or one built with these settings.
    pub(crate) fn client(&self) -> Result<Client, ConfigError> {
        self.build(true)
    }

    /// As [`client`](Self::client), but a client built here follows no redirect (for
    /// token and introspection endpoints and APIs that receive credentials).
    pub(crate) fn client_without_redirects(&self) -> Result<Client, ConfigError> {
        self.build(false)
    }

    fn build(&self, follow_same_origin: bool) -> Result<Client, ConfigError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let same_origin_only = redirect::Policy::custom(|attempt| {
            let first = attempt.previous().first().cloned();
            match first {
                _ if attempt.previous().len() > 3 => attempt.stop(),
                Some(first) if same_origin(&first, attempt.url()) => attempt.follow(),
                _ => attempt.stop(),
            }
        });
        let policy = if follow_same_origin {
            same_origin_only
        } else {
            redirect::Policy::none()
        };
        let mut b = Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .redirect(policy);
        if self.no_proxy {
            b = b.no_proxy();
        }
        if !self.roots.is_empty() {
            b = b.tls_certs_merge(self.roots.iter().cloned());
        }
        b.build()
            .map_err(|_| ConfigError::new("HTTP client could not be built"))
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The body of `resp`, refused once it exceeds `cap` bytes (checked against
/// `Content-Length` first, then while reading).
pub(crate) async fn read_capped(mut resp: Response, cap: usize) -> Result<Vec<u8>, &'static str> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err("response too large");
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|_| "reading the response failed")?
    {
        if body.len() + chunk.len() > cap {
            return Err("response too large");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_only_except_on_loopback_or_when_asked() {
        let e = Egress::default();
        assert!(e.url("https://a.example/k").is_ok());
        assert!(e.url("http://127.0.0.1:8/k").is_ok());
        assert!(e.url("http://[::1]:8/k").is_ok());
        assert!(e.url("http://localhost/k").is_ok());
        let refused = |r: Result<Url, ConfigError>| r.unwrap_err().to_string();
        assert!(refused(e.url("http://a.example/k")).contains("must be https"));
        assert!(refused(e.url("file:///etc/passwd")).contains("must be https"));
        assert!(refused(e.url("not a url")).contains("not a URL"));
        let e = e.with_insecure_http(true);
        assert!(e.url("http://a.example/k").is_ok());
        assert!(refused(e.url("ftp://a.example/k")).contains("must be https"));
    }
}
