//! The AWS Application Load Balancer's `x-amzn-oidc-data` token: keys fetched one PEM
//! per `kid`, the `signer` checked, base64 padding tolerated.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use reqwest::{Client, Url};

use crate::clock::unix_secs_f64;
use crate::context::{AuthContext, Scheme};
use crate::error::{AuthError, ConfigError};
use crate::jwt::http_client::read_capped;
use crate::jwt::remote::check_url;
use crate::jwt::strict_json::{Json, parse_object};
use crate::jwt::{Algorithm, Claims, ClaimsMapping, JwksOptions, KeySet, Validation, VerifyingKey};
use crate::revocation::Revocations;

/// The ALB pads its base64url segments (`=`), which RFC 7515 forbids; accepted here only.
const PADDED_OR_NOT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Most keys remembered (the ALB rotates rarely; one region's balancers share keys).
const MAX_KEYS: usize = 32;
/// Largest PEM accepted from the key endpoint.
const MAX_PEM_BYTES: usize = 8 * 1024;
/// After a `kid` the endpoint did not know, no other unknown `kid` is fetched for this long.
const UNKNOWN_KID_PAUSE: Duration = Duration::from_secs(1);

struct Inner {
    base: String,
    client: Client,
    timeout: Duration,
    keys: Mutex<HashMap<String, VerifyingKey>>,
    fetch: tokio::sync::Mutex<Option<Instant>>,
    healthy: AtomicBool,
}

/// The region's key endpoint, with the keys fetched so far.
#[derive(Clone)]
pub(super) struct AlbKeys {
    inner: Arc<Inner>,
}

impl AlbKeys {
    pub(super) fn new(base: &str, options: &JwksOptions) -> Result<Self, ConfigError> {
        let url = check_url(base, options.allow_http)?;
        Ok(AlbKeys {
            inner: Arc::new(Inner {
                base: url.as_str().trim_end_matches('/').to_owned(),
                client: options.egress.client(options.timeout)?,
                timeout: options.timeout,
                keys: Mutex::new(HashMap::new()),
                fetch: tokio::sync::Mutex::new(None),
                healthy: AtomicBool::new(true),
            }),
        })
    }

    /// False while the key endpoint is failing.
    pub(super) fn ready(&self) -> bool {
        self.inner.healthy.load(Ordering::Relaxed)
    }

    fn cached(&self, kid: &str) -> Option<VerifyingKey> {
        self.inner
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(kid)
            .cloned()
    }

    /// The key for `kid`: cached, or fetched (one fetch at a time; after an unknown
    /// `kid`, a pause before the next).
    async fn key(&self, kid: &str) -> Result<VerifyingKey, AuthError> {
        if let Some(k) = self.cached(kid) {
            return Ok(k);
        }
        let mut last_unknown = self.inner.fetch.lock().await;
        if let Some(k) = self.cached(kid) {
            return Ok(k);
        }
        if last_unknown.is_some_and(|t| t.elapsed() < UNKNOWN_KID_PAUSE) {
            return Err(AuthError::unavailable("aws alb: key fetch paused"));
        }
        match self.fetch(kid).await {
            Ok(Some(key)) => {
                self.inner.healthy.store(true, Ordering::Relaxed);
                let mut keys = self.inner.keys.lock().unwrap_or_else(|p| p.into_inner());
                if keys.len() >= MAX_KEYS {
                    keys.clear();
                }
                keys.insert(kid.to_owned(), key.clone());
                Ok(key)
            }
            Ok(None) => {
                *last_unknown = Some(Instant::now());
                Err(AuthError::invalid("aws alb: unknown kid"))
            }
            Err(reason) => {
                *last_unknown = Some(Instant::now());
                self.inner.healthy.store(false, Ordering::Relaxed);
                tracing::warn!(endpoint = %self.inner.base, reason, "fetching an ALB key failed");
                Err(AuthError::unavailable("aws alb: key endpoint unavailable"))
            }
        }
    }

    /// `Ok(None)` when the endpoint does not know `kid` (404/403), an error when it
    /// cannot be asked.
    async fn fetch(&self, kid: &str) -> Result<Option<VerifyingKey>, &'static str> {
        let url = Url::parse(&format!("{}/{kid}", self.inner.base)).map_err(|_| "bad key URL")?;
        let resp = self
            .inner
            .client
            .get(url)
            .timeout(self.inner.timeout)
            .send()
            .await
            .map_err(|_| "request failed or timed out")?;
        match resp.status().as_u16() {
            200 => {}
            403 | 404 => return Ok(None),
            _ => return Err("key endpoint did not answer 200"),
        }
        let pem = read_capped(resp, MAX_PEM_BYTES).await?;
        let set = KeySet::new()
            .with_pem(Some(kid), Algorithm::ES256, &pem)
            .map_err(|_| "key endpoint sent no P-256 public key")?;
        Ok(set.keys().first().cloned())
    }
}

/// Verifies ALB tokens with keys from [`AlbKeys`].
#[derive(Clone)]
pub(super) struct AlbVerifier {
    pub(super) keys: AlbKeys,
    pub(super) validation: Validation,
    pub(super) signer: String,
    pub(super) mapping: ClaimsMapping,
    pub(super) revocations: Option<Revocations>,
}

/// A `kid` safe to put in a URL path: the ALB's are UUIDs.
fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 128
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl AlbVerifier {
    pub(super) async fn verify(&self, token: &str) -> Result<AuthContext, AuthError> {
        if token.len() > crate::DEFAULT_MAX_CREDENTIAL_BYTES {
            return Err(AuthError::invalid("aws alb: token too large"));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::invalid("aws alb: not a three-part JWS"));
        };
        let decode = |seg: &str| {
            PADDED_OR_NOT
                .decode(seg)
                .map_err(|_| AuthError::invalid("aws alb: bad base64url"))
        };
        let (header, payload, signature) = (decode(h)?, decode(p)?, decode(s)?);
        let header =
            parse_object(&header).ok_or_else(|| AuthError::invalid("aws alb: bad header"))?;
        let text = |name: &str| match header.get(name) {
            Some(Json::String(v)) => Some(v.as_ref()),
            _ => None,
        };
        if text("alg") != Some("ES256") {
            return Err(AuthError::invalid("aws alb: alg is not ES256"));
        }
        if ["crit", "b64", "zip", "enc", "jku", "x5u", "jwk"]
            .iter()
            .any(|n| header.contains_key(n))
        {
            return Err(AuthError::invalid("aws alb: unsupported header parameter"));
        }
        if text("signer") != Some(self.signer.as_str()) {
            return Err(AuthError::invalid(
                "aws alb: signer is not this load balancer",
            ));
        }
        let kid = text("kid")
            .filter(|k| valid_kid(k))
            .ok_or_else(|| AuthError::invalid("aws alb: missing or bad kid"))?;
        let key = self.keys.key(kid).await?;
        let message = &token[..h.len() + 1 + p.len()];
        if !key.verify(message.as_bytes(), &signature) {
            return Err(AuthError::invalid("aws alb: bad signature"));
        }
        let claims =
            parse_object(&payload).ok_or_else(|| AuthError::invalid("aws alb: bad claims"))?;
        self.validation.check_claims(&claims, unix_secs_f64())?;
        let builder = self
            .mapping
            .identity(&Claims::new(&claims), Scheme::IdentityProxy, &[])?;
        drop(claims);
        let ctx = builder.with_raw_claims(payload).build();
        match &self.revocations {
            Some(r) => r.check_token(&ctx, token.as_bytes()).map(|()| ctx),
            None => Ok(ctx),
        }
    }
}
