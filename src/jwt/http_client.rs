//! The HTTP client the crate fetches keys and introspects tokens with: proxies from the
//! environment, extra root certificates, or a client you built.

use std::fmt;
use std::time::Duration;

use reqwest::{Certificate, Client, Response, Url, redirect};

use crate::error::ConfigError;

/// How requests to identity providers leave the process. By default `HTTPS_PROXY`,
/// `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` are honoured (as curl reads them), the
/// system's root certificates are trusted, and redirects are followed only within the
/// same origin (at most three).
#[derive(Clone, Default)]
pub(crate) struct Egress {
    no_proxy: bool,
    roots: Vec<Certificate>,
    client: Option<Client>,
}

impl fmt::Debug for Egress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Egress")
            .field("proxy_from_env", &!self.no_proxy)
            .field("extra_roots", &self.roots.len())
            .field("own_client", &self.client.is_some())
            .finish()
    }
}

impl Egress {
    pub(crate) fn without_proxy(&mut self) {
        self.no_proxy = true;
    }
    pub(crate) fn add_roots_pem(&mut self, pem: &[u8]) -> Result<(), ConfigError> {
        let certs = Certificate::from_pem_bundle(pem)
            .map_err(|_| ConfigError::new("root certificates: not a PEM bundle"))?;
        if certs.is_empty() {
            return Err(ConfigError::new(
                "root certificates: no certificate in the PEM",
            ));
        }
        self.roots.extend(certs);
        Ok(())
    }
    pub(crate) fn use_client(&mut self, client: Client) {
        self.client = Some(client);
    }

    /// The client: the caller's own, or one built with `timeout` and these settings.
    pub(crate) fn client(&self, timeout: Duration) -> Result<Client, ConfigError> {
        self.build(timeout, true)
    }

    /// As [`client`](Self::client), but a client built here follows no redirect (for
    /// token endpoints and APIs that receive credentials).
    #[cfg(feature = "oauth")]
    pub(crate) fn client_without_redirects(
        &self,
        timeout: Duration,
    ) -> Result<Client, ConfigError> {
        self.build(timeout, false)
    }

    fn build(&self, timeout: Duration, follow_same_origin: bool) -> Result<Client, ConfigError> {
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
            .timeout(timeout)
            .connect_timeout(timeout)
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
