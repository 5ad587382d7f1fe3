//! One fetch of a key set: discovery when the issuer is known, the JWKS, its TTL, and
//! why it failed ([`Failure`]).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http::header::{ACCEPT, CACHE_CONTROL};
use reqwest::Url;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Cached, Endpoint, RemoteJwks};
use crate::jose::keys::KeySet;
use crate::jose::strict_json::parse_map;

/// Why a fetch failed: the provider could not be reached (retry soon), or it answered
/// with something that says the configuration is wrong (retry slowly, tell the operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Unreachable(&'static str),
    Misconfigured(&'static str),
}

impl Failure {
    pub(super) fn reason(self) -> &'static str {
        match self {
            Failure::Unreachable(r) | Failure::Misconfigured(r) => r,
        }
    }
}

impl RemoteJwks {
    pub(super) async fn fetch_keys(&self) -> Result<Cached, Failure> {
        use Failure::Misconfigured as Wrong;
        let url =
            match &self.inner.endpoint {
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
                            let u =
                                self.inner.opts.egress.url(raw).map_err(|_| {
                                    Wrong("discovery jwks_uri is not an allowed URL")
                                })?;
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
        let cap = self.inner.opts.egress.max_response_bytes;
        let resp = self
            .inner
            .client
            .get(url.clone())
            .header(ACCEPT, "application/json")
            .timeout(self.inner.opts.egress.timeout)
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
        let body = crate::egress::read_capped(resp, cap).await.map_err(|e| {
            if e == "response too large" {
                Failure::Misconfigured("key endpoint response larger than the size cap")
            } else {
                Failure::Unreachable("key endpoint response cut short")
            }
        })?;
        Ok((body, max_age))
    }
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
}
