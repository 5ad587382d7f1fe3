//! [`BearerAuth`]: `Authorization: Bearer <jwt>` (RFC 6750) as an [`Authenticator`].

use std::borrow::Cow;
use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::request::Parts;

use super::token_source::TokenSources;
use super::verifier::JwtVerifier;
use crate::Startup;
use crate::authenticator::{Authenticator, Check};
use crate::challenge::Challenge;
use crate::context::{AuthContext, Scheme};
use crate::error::{AuthError, ConfigError};
use crate::http::authorization::{
    BAD_BEARER, b68token, names_scheme, scheme_credential, strip_scheme, token_in,
};
use crate::http::cookies::is_token;
use crate::introspection::Introspection;
use crate::limit::AttemptLimiter;
use crate::resource::{Bound, Dpop, ProtectedResource, once};

/// Bearer JWT authentication. Errors carry RFC 6750 codes in `WWW-Authenticate`:
/// `invalid_request` (400) for a malformed header, `invalid_token` (401) for a bad token.
///
/// ```
/// use axum::{Router, routing::get};
/// use portcullis::{AuthLayer, jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, KeySet, Validation}};
///
/// let keys = KeySet::new().with_hmac_secret(&[7u8; 32], Algorithm::HS256).unwrap();
/// let verifier = JwtVerifier::new(Issuer::new(keys, Validation::new([Algorithm::HS256]).with_audience("api")));
/// let app: Router = Router::new()
///     .route("/api/me", get(|| async { "ok" }))
///     .layer(AuthLayer::required(BearerAuth::new("api", verifier)));
/// ```
#[derive(Debug, Clone)]
pub struct BearerAuth {
    realm: Arc<str>,
    challenge: Challenge,
    verifier: Verifier,
    sources: TokenSources,
    limiter: Option<AttemptLimiter>,
    /// RFC 9728 metadata URL, for the challenges.
    resource_metadata: Option<String>,
    dpop: Option<Arc<Dpop>>,
    dpop_challenge: Option<Challenge>,
}

#[derive(Debug, Clone)]
enum Verifier {
    Jwt(JwtVerifier),
    Introspection(Introspection),
}

impl BearerAuth {
    /// Bearer auth for `realm`, verifying with `verifier`.
    pub fn new(realm: &str, verifier: JwtVerifier) -> Self {
        Self::with_verifier(realm, Verifier::Jwt(verifier))
    }
    fn with_verifier(realm: &str, verifier: Verifier) -> Self {
        BearerAuth {
            realm: realm.into(),
            challenge: Challenge::bearer(realm),
            verifier,
            sources: TokenSources::default(),
            limiter: None,
            resource_metadata: None,
            dpop: None,
            dpop_challenge: None,
        }
    }
    /// Bearer auth for `realm` with opaque tokens checked at an RFC 7662 introspection
    /// endpoint. See [`Introspection`] for an example.
    pub fn introspection(realm: &str, introspection: Introspection) -> Self {
        introspection.warn_when_misconfigured();
        Self::with_verifier(realm, Verifier::Introspection(introspection))
    }
    /// Bearer auth for the tokens of an OpenID Connect `issuer`, meant for `audience`,
    /// with discovery and the key fetch done as `startup` says: [`Startup::Wait`] starts
    /// at once and answers 503 (not ready) until the issuer answers, [`Startup::FailFast`]
    /// fetches now and fails on any problem. A malformed issuer URL fails either way.
    ///
    /// Tokens must carry `iss` equal to `issuer` and `aud` naming `audience`; the
    /// asymmetric algorithms are accepted (RS256..RS512, PS256..PS512, ES256, ES384,
    /// EdDSA), each key bound to the algorithm its JWK names; verified tokens are cached.
    /// For other rules, build a [`JwtVerifier`] from [`Issuer`](super::Issuer) and
    /// [`RemoteJwks::discover`](super::RemoteJwks::discover).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), portcullis::ConfigError> {
    /// use portcullis::{AuthLayer, Startup, jwt::BearerAuth};
    /// let bearer = BearerAuth::oidc("https://login.example.com", "my-api", Startup::Wait).await?;
    /// let layer = AuthLayer::required(bearer);
    /// # Ok(()) }
    /// ```
    pub async fn oidc(issuer: &str, audience: &str, startup: Startup) -> Result<Self, ConfigError> {
        use super::{Algorithm::*, Issuer, JwksOptions, RemoteJwks, TokenCache, Validation};
        let algorithms = [
            RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA,
        ];
        let jwks = RemoteJwks::discover(issuer, algorithms, JwksOptions::default())?;
        jwks.start(startup).await?;
        let validation = Validation::new(algorithms)
            .with_issuer(issuer)
            .with_audience(audience);
        let verifier =
            JwtVerifier::new(Issuer::new(jwks, validation)).with_token_cache(TokenCache::new());
        Ok(BearerAuth::new(audience, verifier))
    }
    /// Also read the token from a `Sec-WebSocket-Protocol` entry `<prefix><token>` on
    /// WebSocket upgrades (browsers cannot set `Authorization` on a WebSocket). Answer
    /// the handshake with the protocol your app speaks (axum:
    /// `WebSocketUpgrade::protocols(["chat"])`), never the token entry.
    ///
    /// ```
    /// # use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, KeySet, Validation};
    /// # let keys = KeySet::new().with_hmac_secret(&[7u8; 32], Algorithm::HS256).unwrap();
    /// # let verifier = JwtVerifier::new(Issuer::new(keys, Validation::new([Algorithm::HS256]).with_audience("api")));
    /// // new WebSocket(url, ["chat", "bearer." + token])
    /// let bearer = BearerAuth::new("api", verifier).with_websocket_protocol("bearer.")?;
    /// # Ok::<(), portcullis::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// `prefix` is empty, longer than 64 bytes or not made of token characters.
    pub fn with_websocket_protocol(mut self, prefix: &str) -> Result<Self, ConfigError> {
        if !is_token(prefix) {
            return Err(ConfigError::new(format!(
                "not a WebSocket subprotocol prefix: {prefix:?}"
            )));
        }
        self.sources.protocol_prefix = Some(prefix.to_owned());
        Ok(self)
    }
    /// Also read the token from query parameter `name`, on WebSocket upgrade requests
    /// only (anywhere else it is ignored). This crate never logs it, but a request
    /// logger outside the auth layer sees the URI: keep such a logger off the route, or
    /// prefer [`with_websocket_protocol`](Self::with_websocket_protocol).
    ///
    /// # Errors
    /// `name` is empty, longer than 64 bytes or has separators.
    pub fn with_query_parameter_on_upgrade(mut self, name: &str) -> Result<Self, ConfigError> {
        if !is_token(name) {
            return Err(ConfigError::new(format!(
                "not a query parameter name: {name:?}"
            )));
        }
        self.sources.query = Some(name.to_owned());
        Ok(self)
    }
    /// Also read the token from cookie `name`. Browsers attach cookies on their own, so
    /// unsafe methods and WebSocket upgrades from other sites are refused (403) when the
    /// token came from it; see [`with_csrf_guard`](Self::with_csrf_guard).
    ///
    /// # Errors
    /// `name` is empty, longer than 64 bytes or has separators.
    pub fn with_cookie(mut self, name: &str) -> Result<Self, ConfigError> {
        if !is_token(name) {
            return Err(ConfigError::new(format!("not a cookie name: {name:?}")));
        }
        self.sources.cookie = Some(name.to_owned());
        Ok(self)
    }
    /// Which cross-site requests carrying the token cookie are refused (default
    /// [`CsrfGuard::default`](crate::CsrfGuard::default)).
    pub fn with_csrf_guard(mut self, csrf: crate::CsrfGuard) -> Self {
        self.sources.csrf = csrf;
        self
    }
    /// Limit failed tokens per client with `limiter` (its
    /// [credential limits](crate::limit::AttemptLimiter::with_credential_limits)): a
    /// client past them gets 429 with `Retry-After` before its next token is checked.
    /// Only tokens checked in full count (token cache misses, introspection calls):
    /// a valid cached token never touches the limiter.
    pub fn with_limiter(mut self, limiter: AttemptLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }
    /// This API is the RFC 9728 protected `resource`: every 401 and 403 carries
    /// `resource_metadata="<its metadata URL>"`, and tokens must name the resource's
    /// identifier in `aud` unless an audience is configured already (RFC 8707 audience
    /// binding: a token for another resource is refused).
    ///
    /// ```
    /// # use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, KeySet, Validation};
    /// use portcullis::resource::ProtectedResource;
    /// # let keys = KeySet::new().with_hmac_secret(&[7u8; 32], Algorithm::HS256)?;
    /// let resource = ProtectedResource::new("https://api.example.com/mcp")?
    ///     .with_authorization_server("https://login.example.com")?;
    /// // No `with_audience`: tokens must name https://api.example.com/mcp.
    /// let verifier = JwtVerifier::new(Issuer::new(keys, Validation::new([Algorithm::HS256])));
    /// let bearer = BearerAuth::new("mcp", verifier).with_resource(&resource);
    /// # let _ = bearer; Ok::<(), portcullis::ConfigError>(())
    /// ```
    pub fn with_resource(mut self, resource: &ProtectedResource) -> Self {
        let url = resource.metadata_url();
        self.challenge = self.challenge.with_resource_metadata(&url);
        self.dpop_challenge = self.dpop_challenge.map(|c| c.with_resource_metadata(&url));
        self.resource_metadata = Some(url);
        self.verifier = match self.verifier {
            Verifier::Jwt(v) => Verifier::Jwt(v.with_default_audience(resource.identifier())),
            Verifier::Introspection(i) => {
                Verifier::Introspection(i.with_default_audience(resource.identifier()))
            }
        };
        self
    }
    /// Accept DPoP-bound tokens ([`Dpop`]): `Authorization: DPoP <token>` with a proof
    /// in the `DPoP` header, checked on every request (a verified token stays cached).
    pub fn with_dpop(mut self, dpop: Dpop) -> Self {
        let mut challenge = Challenge::dpop(&self.realm, dpop.algorithms());
        if let Some(url) = &self.resource_metadata {
            challenge = challenge.with_resource_metadata(url);
        }
        self.dpop_challenge = Some(challenge);
        self.dpop = Some(Arc::new(dpop));
        self
    }
    /// True when the issuers' keys are at hand (for a readiness probe). Always true
    /// for introspection: the endpoint is only asked about real tokens.
    pub async fn ready(&self) -> bool {
        match &self.verifier {
            Verifier::Jwt(v) => v.ready().await,
            Verifier::Introspection(_) => true,
        }
    }
    /// The JWT verifier (`None` for introspection).
    pub fn verifier(&self) -> Option<&JwtVerifier> {
        match &self.verifier {
            Verifier::Jwt(v) => Some(v),
            Verifier::Introspection(_) => None,
        }
    }
}

impl BearerAuth {
    /// The full check of a token the cache does not hold, within the limiter.
    async fn verify_in_full(&self, token: &str, parts: &Parts) -> Result<AuthContext, AuthError> {
        let check = async {
            match &self.verifier {
                Verifier::Jwt(v) => v.verify_uncached(token).await,
                Verifier::Introspection(i) => i.verify(token).await,
            }
        };
        AttemptLimiter::credential_check(self.limiter.as_ref(), parts, check).await
    }
}

impl Authenticator for BearerAuth {
    type Credential = PresentedToken;
    fn scheme(&self) -> Scheme {
        Scheme::Bearer
    }
    fn challenge(&self) -> Option<Challenge> {
        match (&self.dpop, &self.dpop_challenge) {
            (Some(d), Some(c)) if d.is_required() => Some(c.clone()),
            _ => Some(self.challenge.clone()),
        }
    }
    fn challenges(&self) -> Vec<Challenge> {
        match (&self.dpop, &self.dpop_challenge) {
            (Some(d), Some(c)) if d.is_required() => vec![c.clone()],
            (Some(_), Some(c)) => vec![self.challenge.clone(), c.clone()],
            _ => vec![self.challenge.clone()],
        }
    }
    fn check(&self, parts: &Parts) -> Check<PresentedToken> {
        let (token, is_dpop) = match self.credential(parts) {
            None => return Check::Absent,
            Some(Ok(credential)) => credential,
            Some(Err(e)) => return Check::Ready(Err(e)),
        };
        // A token from a cookie, query or WebSocket protocol entry is not under the
        // layer's `Authorization` cap: refused here before it is copied or hashed.
        let cap = match &self.verifier {
            Verifier::Jwt(v) => v.max_token_bytes(),
            Verifier::Introspection(_) => crate::DEFAULT_MAX_CREDENTIAL_BYTES,
        };
        if token.len() > cap {
            return Check::Ready(Err(AuthError::invalid("bearer: token too large")));
        }
        let pending = |cached| {
            Check::Pending(PresentedToken {
                token: token.clone().into_owned(),
                is_dpop,
                cached,
            })
        };
        let Verifier::Jwt(v) = &self.verifier else {
            return pending(None);
        };
        // The one look into the token cache; a cached token passed `b68token` before.
        let ctx = match v.cached(&token) {
            None => return pending(None),
            Some(ctx) => match v.admit(ctx, &token) {
                Ok(ctx) => ctx,
                Err(e) => return Check::Ready(Err(e)),
            },
        };
        let Some(dpop) = &self.dpop else {
            return Check::Ready(Ok(ctx));
        };
        if is_dpop {
            // The proof is checked and spent in `authenticate`, once the layer has
            // chosen this scheme: a request refused for carrying two credentials
            // leaves its proof unused.
            return pending(Some(ctx));
        }
        // A Bearer request: only the check that the token is not DPoP-bound, which
        // has no side effect.
        Check::Ready(dpop.admit_bearer(ctx))
    }
    async fn authenticate(
        &self,
        presented: PresentedToken,
        parts: &Parts,
    ) -> Result<AuthContext, AuthError> {
        let PresentedToken {
            token,
            is_dpop,
            cached,
        } = presented;
        let ctx = match cached {
            Some(ctx) => ctx,
            // Boxed so that this future stays small: the full verification (with a
            // remote key fetch) is a large state machine.
            None => Box::pin(self.verify_in_full(b68token(&token)?, parts)).await?,
        };
        let Some(dpop) = &self.dpop else {
            return Ok(ctx);
        };
        if !is_dpop {
            return dpop.admit_bearer(ctx);
        }
        match dpop.bind(ctx, parts, &token)? {
            Bound::Admitted(ctx) => Ok(ctx),
            Bound::Replay(ctx, first) => once(first.await).map(|()| ctx),
        }
    }
}

/// A token as read, and whether it came as `Authorization: DPoP`.
type Credential<'a> = (Cow<'a, [u8]>, bool);

/// The token a request presented to [`BearerAuth`], as its
/// [`check`](Authenticator::check) read it, for the verification that waits.
pub struct PresentedToken {
    token: Vec<u8>,
    /// Whether it came as `Authorization: DPoP` (only then a proof is expected).
    is_dpop: bool,
    /// Its context, when the token cache held it (the DPoP replay check waits).
    cached: Option<AuthContext>,
}

impl std::fmt::Debug for PresentedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedToken")
            .field("token", &"[redacted]")
            .field("is_dpop", &self.is_dpop)
            .finish_non_exhaustive()
    }
}

impl BearerAuth {
    /// The credential and whether it came as `Authorization: DPoP`; `None` when the
    /// request carries none. One read of `Authorization` tells absent, Bearer and DPoP
    /// apart.
    fn credential<'a>(&self, parts: &'a Parts) -> Option<Result<Credential<'a>, AuthError>> {
        let header = parts.headers.get(AUTHORIZATION).map(|v| v.as_bytes());
        if self.sources.header_only() {
            // One look at the scheme: it decides the source and yields the token.
            let v = header?;
            if let Some(t) = scheme_credential(v, "bearer") {
                return Some(token_in(t, BAD_BEARER).map(|t| (Cow::Borrowed(t), false)));
            }
            if self.dpop.is_some()
                && let Some(t) = scheme_credential(v, "dpop")
            {
                return Some(token_in(t, BAD_DPOP).map(|t| (Cow::Borrowed(t), true)));
            }
            return None;
        }
        if self.dpop.is_some()
            && let Some(v) = header
            && names_scheme(v, "dpop")
        {
            if self.sources.detect_besides_header(parts) {
                return Some(Err(AuthError::conflicting()));
            }
            return Some(
                token_in(strip_scheme(v, "dpop"), BAD_DPOP).map(|t| (Cow::Borrowed(t), true)),
            );
        }
        self.sources.read(parts).map(|t| t.map(|t| (t, false)))
    }
}

/// The refusal of an `Authorization: DPoP` header with no token.
const BAD_DPOP: &str = "dpop: bad authorization header";
