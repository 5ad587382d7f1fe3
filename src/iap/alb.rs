//! The AWS Application Load Balancer's `x-amzn-oidc-data` token: keys fetched one PEM
//! per `kid`, the `signer` checked, base64 padding tolerated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use reqwest::{Client, Url};

use crate::clock::unix_secs_f64;
use crate::context::{AuthContext, Scheme};
use crate::egress::read_capped;
use crate::error::{AuthError, ConfigError};
use crate::jose::strict_json::{Json, parse_object};
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
/// At most one key fetch per this interval, whatever the requests ask for.
const FETCH_INTERVAL: Duration = Duration::from_millis(200);
/// A `kid` the endpoint did not know is refused without a fetch for this long.
const UNKNOWN_KID_TTL: Duration = Duration::from_secs(10);
/// After a failed fetch with no answer since, readiness is false for this long.
const FAILURE_MEMORY: Duration = Duration::from_secs(30);
/// Most unknown kids remembered (negative cache) and most kids waiting for a fetch.
const MAX_TRACKED_KIDS: usize = 1024;

/// Which kid is fetched next and what the endpoint said lately.
#[derive(Default)]
struct FetchState {
    /// Kids the endpoint did not know, and when it said so.
    unknown: HashMap<String, Instant>,
    /// Kids requests asked for that are neither known nor refused, with how many
    /// requests asked: the most asked-for is fetched first, so a key every user's
    /// token names is learnt before any of a flood's invented kids.
    wanted: HashMap<String, u32>,
    last_fetch: Option<Instant>,
    last_failure: Option<Instant>,
    last_answer: Option<Instant>,
}

impl FetchState {
    fn refused(&self, kid: &str) -> bool {
        self.unknown
            .get(kid)
            .is_some_and(|at| at.elapsed() < UNKNOWN_KID_TTL)
    }
    fn want(&mut self, kid: &str) {
        if !self.wanted.contains_key(kid) && self.wanted.len() >= MAX_TRACKED_KIDS {
            // Full of kids asked for once (a flood): they go, the popular ones stay.
            self.wanted.retain(|_, n| *n > 1);
            if self.wanted.len() >= MAX_TRACKED_KIDS {
                return;
            }
        }
        *self.wanted.entry(kid.to_owned()).or_default() += 1;
    }
    /// The kid to fetch now: the most asked-for, `kid` on a tie.
    fn next(&self, kid: &str) -> String {
        let mine = self.wanted.get(kid).copied().unwrap_or(1);
        self.wanted
            .iter()
            .filter(|(_, n)| **n > mine)
            .max_by_key(|(_, n)| **n)
            .map_or_else(|| kid.to_owned(), |(k, _)| k.clone())
    }
    fn refuse(&mut self, kid: String) {
        if self.unknown.len() >= MAX_TRACKED_KIDS {
            self.unknown.retain(|_, at| at.elapsed() < UNKNOWN_KID_TTL);
            if self.unknown.len() >= MAX_TRACKED_KIDS {
                self.unknown.clear();
            }
        }
        self.unknown.insert(kid, Instant::now());
    }
}

struct Inner {
    base: String,
    client: Client,
    timeout: Duration,
    keys: Mutex<HashMap<String, VerifyingKey>>,
    /// Held while a fetch runs: one at a time.
    fetching: tokio::sync::Mutex<()>,
    state: Mutex<FetchState>,
}

/// The region's key endpoint, with the keys fetched so far.
#[derive(Clone)]
pub(super) struct AlbKeys {
    inner: Arc<Inner>,
}

impl AlbKeys {
    pub(super) fn new(base: &str, options: &JwksOptions) -> Result<Self, ConfigError> {
        let url = options.egress.url(base)?;
        Ok(AlbKeys {
            inner: Arc::new(Inner {
                base: url.as_str().trim_end_matches('/').to_owned(),
                client: options.egress.client()?,
                timeout: options.egress.timeout,
                keys: Mutex::new(HashMap::new()),
                fetching: tokio::sync::Mutex::new(()),
                state: Mutex::new(FetchState::default()),
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FetchState> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// False while the key endpoint is failing: its last fetch failed (no answer at
    /// all, or not 200/403/404), nothing has answered since, and that was less than
    /// 30 s ago. Any answer, "unknown kid" included, shows it reachable.
    pub(super) fn ready(&self) -> bool {
        let s = self.state();
        match (s.last_failure, s.last_answer) {
            (Some(failed), answered) => {
                answered.is_some_and(|a| a > failed) || failed.elapsed() >= FAILURE_MEMORY
            }
            (None, _) => true,
        }
    }

    fn cached(&self, kid: &str) -> Option<VerifyingKey> {
        self.inner
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(kid)
            .cloned()
    }

    /// The key for `kid`: cached; refused without a fetch when the endpoint said it
    /// does not know it within the last 10 s; else fetched, at most one fetch per
    /// 200 ms, the most asked-for kid first. A request whose kid is not the one
    /// fetched gets 503 (retry): under a flood of invented kids, a kid real tokens
    /// carry wins the next fetch as soon as two requests named it.
    async fn key(&self, kid: &str) -> Result<VerifyingKey, AuthError> {
        if let Some(k) = self.cached(kid) {
            return Ok(k);
        }
        let unknown = || AuthError::invalid("aws alb: unknown kid");
        let pending = || AuthError::unavailable("aws alb: key fetch pending").with_retry_after(1);
        {
            let mut s = self.state();
            if s.refused(kid) {
                return Err(unknown());
            }
            s.want(kid);
        }
        let Ok(_turn) = tokio::time::timeout(self.inner.timeout, self.inner.fetching.lock()).await
        else {
            return Err(pending());
        };
        if let Some(k) = self.cached(kid) {
            return Ok(k);
        }
        let target = {
            let s = self.state();
            if s.refused(kid) {
                return Err(unknown());
            }
            if s.last_fetch.is_some_and(|t| t.elapsed() < FETCH_INTERVAL) {
                return Err(pending());
            }
            s.next(kid)
        };
        let outcome = self.fetch(&target).await;
        let mut s = self.state();
        s.last_fetch = Some(Instant::now());
        s.wanted.remove(&target);
        let result = match outcome {
            Ok(Some(key)) => {
                s.last_answer = Some(Instant::now());
                let mut keys = self.inner.keys.lock().unwrap_or_else(|p| p.into_inner());
                if keys.len() >= MAX_KEYS {
                    keys.clear();
                }
                keys.insert(target.clone(), key.clone());
                Ok(key)
            }
            Ok(None) => {
                s.last_answer = Some(Instant::now());
                s.refuse(target.clone());
                Err(unknown())
            }
            Err(reason) => {
                s.last_failure = Some(Instant::now());
                tracing::warn!(endpoint = %self.inner.base, reason, "fetching an ALB key failed");
                Err(AuthError::unavailable("aws alb: key endpoint unavailable"))
            }
        };
        if target == kid {
            result
        } else {
            Err(pending())
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
