//! [`JwtVerifier`]: signature, header and claim checks for one or more issuers.

use std::sync::Arc;

use super::cache::{Stamp, TokenCache};
use super::header_cache::HeaderCache;
use super::issuer::{Issuer, KeySource, Mapping};
use super::tenants::Tenants;
use super::token::{Header, parse, parse_claims};
use crate::clock::unix_secs_f64;
use crate::context::{AuthContext, Scheme};
use crate::error::AuthError;
use crate::jose::claims::Claims;
use crate::jose::strict_json::{Json, Object};
use crate::metrics;
use crate::revocation::Revocations;

/// Verifies tokens from one or more issuers; the right one is picked by `iss`
/// (which is then verified with that issuer's own keys). Optionally caches verified tokens.
///
/// ```
/// use portcullis::jwt::{Algorithm, Issuer, JwtVerifier, KeySet, TokenCache, Validation};
/// let keys = KeySet::new().with_hmac_secret(&[7u8; 32], Algorithm::HS256).unwrap();
/// let validation = Validation::new([Algorithm::HS256]).with_audience("api");
/// let verifier = JwtVerifier::new(Issuer::new(keys, validation))
///     .with_token_cache(TokenCache::new());
/// # let _ = verifier;
/// ```
#[derive(Clone, Debug)]
pub struct JwtVerifier {
    issuers: Arc<[Issuer]>,
    /// Issuers resolved per token (several tenants); their cache slots follow the
    /// static issuers' indexes.
    tenants: Option<Arc<Tenants>>,
    cache: Option<Arc<TokenCache>>,
    headers: Arc<HeaderCache<Header>>,
    max_token_bytes: usize,
    revocations: Option<Revocations>,
}

/// The issuer a token is verified with: one of the verifier's, or a tenant's.
enum Picked<'a> {
    Static(&'a Issuer),
    Tenant(Arc<Issuer>, String),
}

impl std::ops::Deref for Picked<'_> {
    type Target = Issuer;
    fn deref(&self) -> &Issuer {
        match self {
            Picked::Static(i) => i,
            Picked::Tenant(i, _) => i,
        }
    }
}

impl JwtVerifier {
    /// Verify tokens of `issuer`.
    pub fn new(issuer: Issuer) -> Self {
        JwtVerifier {
            issuers: Arc::from(vec![issuer]),
            tenants: None,
            cache: None,
            headers: Arc::default(),
            max_token_bytes: crate::DEFAULT_MAX_CREDENTIAL_BYTES,
            revocations: None,
        }
    }
    /// Verify tokens of the issuers `tenants` admits (one per tenant, resolved from each
    /// token's `iss`), with a verified-token cache. [`with_issuer`](Self::with_issuer)
    /// adds fixed issuers beside them.
    pub fn for_tenants(tenants: Tenants) -> Self {
        JwtVerifier {
            issuers: Arc::from(Vec::new()),
            tenants: Some(Arc::new(tenants)),
            cache: Some(Arc::new(TokenCache::new())),
            headers: Arc::default(),
            max_token_bytes: crate::DEFAULT_MAX_CREDENTIAL_BYTES,
            revocations: None,
        }
    }
    /// Also trust `issuer`; every issuer must then configure its `iss` value.
    ///
    /// The result has a token cache of its own (same settings, empty): a verifier that
    /// trusts other issuers must never see entries verified under this one's.
    pub fn with_issuer(mut self, issuer: Issuer) -> Self {
        let mut v = self.issuers.to_vec();
        v.push(issuer);
        self.issuers = v.into();
        self.cache = self.cache.map(|c| Arc::new(c.empty_like()));
        self
    }
    /// Every issuer that names no audience (and did not opt out of the check) requires
    /// `audience`; a fresh token cache, as the rules changed.
    pub(crate) fn with_default_audience(mut self, audience: &str) -> Self {
        let mut issuers = self.issuers.to_vec();
        for i in &mut issuers {
            if i.validation.audiences.is_empty() && !i.validation.any_audience {
                i.validation.audiences.push(audience.to_owned());
            }
        }
        self.issuers = issuers.into();
        self.tenants = self
            .tenants
            .map(|t| Arc::new(Arc::unwrap_or_clone(t).with_default_audience(audience)));
        self.cache = self.cache.map(|c| Arc::new(c.empty_like()));
        self
    }
    /// Refuse tokens revoked in `revocations` (checked on every request, cache hits
    /// included).
    pub fn with_revocations(mut self, revocations: Revocations) -> Self {
        self.revocations = Some(revocations);
        self
    }
    /// Cache verified tokens.
    pub fn with_token_cache(mut self, cache: TokenCache) -> Self {
        self.cache = Some(Arc::new(cache));
        self
    }
    /// The largest token verified, for a scheme that reads tokens outside the layer's
    /// `Authorization` cap.
    pub(crate) fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }
    /// Reject tokens longer than `n` bytes before parsing (default
    /// [`DEFAULT_MAX_CREDENTIAL_BYTES`](crate::DEFAULT_MAX_CREDENTIAL_BYTES), 8 KiB).
    pub fn with_max_token_bytes(mut self, n: usize) -> Self {
        self.max_token_bytes = n;
        self
    }
    /// The issuers.
    pub fn issuers(&self) -> &[Issuer] {
        &self.issuers
    }
    /// True when every issuer's keys are at hand (remote sets are fetched if needed);
    /// see [`RemoteJwks::ready`](super::RemoteJwks::ready).
    pub async fn ready(&self) -> bool {
        for issuer in self.issuers.iter() {
            if let KeySource::Remote(r) = &issuer.keys
                && !r.ready().await
            {
                return false;
            }
        }
        true
    }

    fn pick(&self, claims: &Object<'_>) -> Result<(usize, Picked<'_>), AuthError> {
        if self.issuers.len() == 1 && self.tenants.is_none() {
            return Ok((0, Picked::Static(&self.issuers[0])));
        }
        let Some(Json::String(iss)) = claims.get("iss") else {
            return Err(AuthError::invalid("jwt: missing or bad iss"));
        };
        if let Some((i, issuer)) = self
            .issuers
            .iter()
            .enumerate()
            .find(|(_, i)| i.validation.issuers.iter().any(|x| **x == **iss))
        {
            return Ok((i, Picked::Static(issuer)));
        }
        let tenant = match &self.tenants {
            Some(t) => t.resolve(iss).map_err(|e| {
                tracing::warn!(error = %e, "tenant issuer could not be set up");
                AuthError::unavailable("jwt: tenant issuer unavailable")
            })?,
            None => None,
        };
        match tenant {
            Some(r) => Ok((
                self.issuers.len().saturating_add(r.slot as usize),
                Picked::Tenant(r.issuer, r.tenant),
            )),
            None => Err(AuthError::invalid("jwt: unknown issuer")),
        }
    }

    /// The live key-set generation of the issuer a verified-token cache entry points at
    /// (a tenant's while it is cached); see [`Issuer::live_generation`].
    fn live_generation_at(&self, index: usize) -> Option<u64> {
        match self.issuers.get(index) {
            Some(i) => i.live_generation(),
            None => {
                let slot = index.checked_sub(self.issuers.len())? as u64;
                self.tenants.as_ref()?.by_slot(slot)?.live_generation()
            }
        }
    }

    /// Verifies `token` and returns its context.
    pub async fn verify(&self, token: &str) -> Result<AuthContext, AuthError> {
        match self.cached(token.as_bytes()) {
            Some(ctx) => self.admit(ctx, token.as_bytes()),
            None => self.verify_uncached(token).await,
        }
    }

    /// `ctx` (of `token`), unless it is revoked.
    pub(crate) fn admit(&self, ctx: AuthContext, token: &[u8]) -> Result<AuthContext, AuthError> {
        match &self.revocations {
            Some(r) => r.check_token(&ctx, token).map(|()| ctx),
            None => Ok(ctx),
        }
    }

    /// The context of `token` when the token cache holds it, still valid under the
    /// current keys. A hit means `token` equals, byte for byte, a token this verifier
    /// already verified in full.
    pub(crate) fn cached(&self, token: &[u8]) -> Option<AuthContext> {
        let hit = self.cache_lookup(token);
        if let Some(cache) = &self.cache {
            metrics::token_cache_lookup(&cache.lookups, hit.is_some());
        }
        hit
    }

    fn cache_lookup(&self, token: &[u8]) -> Option<AuthContext> {
        let cache = self.cache.as_ref()?;
        if token.len() > self.max_token_bytes {
            return None;
        }
        cache.get(token, |i| self.live_generation_at(i), unix_secs_f64())
    }

    /// Verifies `token` in full (no cache lookup) and caches the result.
    pub(crate) async fn verify_uncached(&self, token: &str) -> Result<AuthContext, AuthError> {
        let timer = metrics::Timer::start();
        let now = unix_secs_f64();
        if token.len() > self.max_token_bytes {
            return Err(AuthError::invalid("jwt: token too large"));
        }
        let parsed = parse(token, self.max_token_bytes, &self.headers)?;
        let claims = parse_claims(&parsed.payload)?;
        let (index, issuer) = self.pick(&claims)?;
        if !issuer.validation.algorithms.contains(&parsed.header.alg) {
            return Err(AuthError::invalid("jwt: algorithm not allowed"));
        }
        issuer.validation.check_typ(parsed.header.typ.as_deref())?;
        // Key generation before verifying: a rotation during verification must not
        // leave an entry marked with the new generation.
        let generation = issuer.generation();
        issuer.check_signature(&parsed).await?;
        metrics::jwt_verified(parsed.header.alg.as_str(), timer);
        let window = issuer.validation.check_claims(&claims, now)?;
        let view = Claims::new(&claims);
        let mut builder = match &issuer.mapping {
            Mapping::Claims(m) => m.identity(&view, Scheme::Bearer, &issuer.validation.issuers)?,
            Mapping::Custom(f) => f(&view)?,
        };
        // A tenant's issuer decides the tenant, whatever a claim says.
        if let Picked::Tenant(_, tenant) = &issuer {
            builder = builder.with_tenant(tenant.as_str());
        }
        // What revocation checks need on every request, cache hits included.
        if let Some(iat) = view.number("iat")? {
            builder = builder.with_issued_at(iat as u64);
        }
        if let Some(jti) = view.string("jti")? {
            builder = builder.with_token_id(jti);
        }
        builder = builder.with_key_binding(view.key_binding());
        drop(claims);
        let ctx = builder.with_raw_claims(parsed.payload).build();
        if let Some(cache) = &self.cache {
            let stamp = Stamp {
                exp: window.exp,
                nbf: window.nbf,
                leeway: issuer.validation.leeway.as_secs_f64(),
                issuer: index,
                generation,
            };
            cache.insert(token, ctx.clone(), stamp, now);
        }
        self.admit(ctx, token.as_bytes())
    }
}
