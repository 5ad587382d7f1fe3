//! [`BearerAuth`]: `Authorization: Bearer <jwt>` (RFC 6750) as an [`Authenticator`].

use std::borrow::Cow;

use http::HeaderMap;
use http::header::AUTHORIZATION;
use http::request::Parts;

use super::introspection::Introspection;
use super::token_source::TokenSources;
use super::verifier::JwtVerifier;
use crate::authenticator::{Authenticator, Detected};
use crate::challenge::Challenge;
use crate::context::{AuthContext, Scheme};
use crate::error::{AuthError, ConfigError};
use crate::http::authorization::{has_scheme, names_scheme, strip_scheme};
use crate::http::cookies::is_token;
use crate::limit::AttemptLimiter;

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
    challenge: Challenge,
    verifier: Verifier,
    sources: TokenSources,
    limiter: Option<AttemptLimiter>,
}

#[derive(Debug, Clone)]
enum Verifier {
    Jwt(JwtVerifier),
    Introspection(Introspection),
}

impl BearerAuth {
    /// Bearer auth for `realm`, verifying with `verifier`.
    pub fn new(realm: &str, verifier: JwtVerifier) -> Self {
        BearerAuth {
            challenge: Challenge::bearer(realm),
            verifier: Verifier::Jwt(verifier),
            sources: TokenSources::default(),
            limiter: None,
        }
    }
    /// Bearer auth for `realm` with opaque tokens checked at an RFC 7662 introspection
    /// endpoint. See [`Introspection`] for an example.
    pub fn introspection(realm: &str, introspection: Introspection) -> Self {
        introspection.warn_when_misconfigured();
        BearerAuth {
            challenge: Challenge::bearer(realm),
            verifier: Verifier::Introspection(introspection),
            sources: TokenSources::default(),
            limiter: None,
        }
    }
    /// Bearer auth for the tokens of an OpenID Connect `issuer`, meant for `audience`,
    /// ready to use: discovery and the first key fetch happen now, so a wrong issuer URL
    /// fails here with an error that says so, not as 503s on the first requests.
    ///
    /// Tokens must carry `iss` equal to `issuer` and `aud` naming `audience`; the
    /// asymmetric algorithms are accepted (RS256..RS512, PS256..PS512, ES256, ES384,
    /// EdDSA), each key bound to the algorithm its JWK names; verified tokens are cached.
    /// For other rules, build a [`JwtVerifier`] from [`Issuer`](super::Issuer) and
    /// [`RemoteJwks::discover`](super::RemoteJwks::discover).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), portcullis::ConfigError> {
    /// use portcullis::{AuthLayer, jwt::BearerAuth};
    /// let bearer = BearerAuth::oidc("https://login.example.com", "my-api").await?;
    /// let layer = AuthLayer::required(bearer);
    /// # Ok(()) }
    /// ```
    pub async fn oidc(issuer: &str, audience: &str) -> Result<Self, ConfigError> {
        use super::{Algorithm::*, Issuer, JwksOptions, RemoteJwks, TokenCache, Validation};
        let algorithms = [
            RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA,
        ];
        let jwks = RemoteJwks::discover(issuer, algorithms, JwksOptions::default())?;
        jwks.fetch_now().await?;
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

/// The credential bytes from `Authorization: Bearer <token>`, not yet checked against
/// the RFC 6750 `b68token` syntax (see [`b68token`]).
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&[u8], AuthError> {
    let value = headers.get(AUTHORIZATION).ok_or_else(AuthError::missing)?;
    bearer_value(value.as_bytes())
}

/// The token of an `Authorization` value: [`bearer_token`] of a header already read.
fn bearer_value(value: &[u8]) -> Result<&[u8], AuthError> {
    let token = strip_scheme(value, "bearer")
        .ok_or_else(|| AuthError::malformed("bearer: bad authorization header"))?
        .trim_ascii_end();
    Ok(token)
}

/// The token as text when it is an RFC 6750 `b68token`, an error otherwise. Runs before
/// any parsing; a token cache hit skips it, as the cached token passed it (or the
/// stricter JWS parse) before.
pub(crate) fn b68token(token: &[u8]) -> Result<&str, AuthError> {
    let body_end = token.iter().rposition(|b| *b != b'=').map_or(0, |i| i + 1);
    let valid = body_end > 0
        && token[..body_end]
            .iter()
            .fold(true, |ok, b| ok & B68TOKEN[usize::from(*b)]);
    if !valid {
        return Err(AuthError::malformed("bearer: token has invalid characters"));
    }
    // All ASCII by now, so this cannot fail.
    std::str::from_utf8(token).map_err(|_| AuthError::malformed("bearer: not ascii"))
}

/// Bytes allowed in an RFC 6750 `b68token` (before its trailing `=` padding).
static B68TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        i += 1;
    }
    t
};

impl Authenticator for BearerAuth {
    fn scheme(&self) -> Scheme {
        Scheme::Bearer
    }
    fn challenge(&self) -> Option<Challenge> {
        Some(self.challenge.clone())
    }
    fn detect(&self, parts: &Parts) -> bool {
        if self.sources.header_only() {
            has_scheme(&parts.headers, "bearer")
        } else {
            self.sources.detect(parts)
        }
    }
    async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        let token = self.token(parts)?;
        if let Verifier::Jwt(v) = &self.verifier
            && let Some(ctx) = v.cached(&token)
        {
            return v.admit(ctx, &token);
        }
        // Boxed so that this future stays small: the full verification (with a remote
        // key fetch) is a large state machine.
        Box::pin(self.verify_in_full(b68token(&token)?, parts)).await
    }
    fn authenticate_now(&self, parts: &Parts) -> Option<Result<AuthContext, AuthError>> {
        self.answer_now(self.token(parts))
    }
    fn detect_now(&self, parts: &Parts) -> Detected {
        let token = if self.sources.header_only() {
            match parts.headers.get(AUTHORIZATION) {
                Some(v) if names_scheme(v.as_bytes(), "bearer") => {
                    bearer_value(v.as_bytes()).map(Cow::Borrowed)
                }
                _ => return Detected::Absent,
            }
        } else if self.sources.detect(parts) {
            self.sources.token(parts)
        } else {
            return Detected::Absent;
        };
        self.answer_now(token).into()
    }
}

impl BearerAuth {
    /// [`Authenticator::authenticate_now`] with the credential already read: a cached
    /// token's context, or `None` when it must be verified.
    fn answer_now(
        &self,
        token: Result<Cow<'_, [u8]>, AuthError>,
    ) -> Option<Result<AuthContext, AuthError>> {
        let Verifier::Jwt(v) = &self.verifier else {
            return None;
        };
        match token {
            Ok(token) => v.answer_cached(&token),
            Err(e) => Some(Err(e)),
        }
    }
}

impl BearerAuth {
    /// The request's credential bytes: from the `Authorization` header, or from the
    /// configured sources.
    fn token<'a>(&self, parts: &'a Parts) -> Result<Cow<'a, [u8]>, AuthError> {
        if self.sources.header_only() {
            bearer_token(&parts.headers).map(Cow::Borrowed)
        } else {
            self.sources.token(parts)
        }
    }
}
