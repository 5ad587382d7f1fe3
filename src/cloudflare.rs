//! Cloudflare Access: verify the `Cf-Access-Jwt-Assertion` JWT.
//!
//! ```
//! use portcullis::{AuthLayer, cloudflare::CloudflareAccess};
//! let cf = CloudflareAccess::new("myteam", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
//!     .unwrap()
//!     .with_service_token("ci-bot.access");
//! let layer = AuthLayer::required(cf);
//! # let _ = layer;
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::GetAll;
use http::request::Parts;
use http::{HeaderName, HeaderValue};

use crate::authenticator::{Authenticator, Detected};
use crate::challenge::Challenge;
use crate::context::{AuthContext, AuthContextBuilder, PrincipalKind, Scheme};
use crate::error::{AuthError, ConfigError};
use crate::http::cookies::{BadCookie, cookie_value};
use crate::http::csrf::CsrfGuard;
use crate::jwt::{
    Algorithm, Claims, Issuer, JwksOptions, JwtVerifier, RemoteJwks, TokenCache, Validation,
};
use crate::limit::AttemptLimiter;

/// The header Cloudflare Access sets on every proxied request.
pub const ASSERTION_HEADER: HeaderName = HeaderName::from_static("cf-access-jwt-assertion");
/// The cookie Cloudflare Access sets in the browser.
pub const AUTHORIZATION_COOKIE: &str = "CF_Authorization";

/// The Cloudflare Access authenticator.
///
/// - RS256 only; keys from `https://<team>.cloudflareaccess.com/cdn-cgi/access/certs`
///   (overridable) with the JWKS cache rules;
/// - `iss` exactly `https://<team>.cloudflareaccess.com`; `aud` must contain the
///   application tag (exact element match); `exp`/`nbf` with 30 s skew; `type` must be `app`;
/// - identity headers such as `Cf-Access-Authenticated-User-Email` are ignored;
/// - service tokens (`common_name`, empty `sub`) become service principals only when
///   their client id is allowlisted;
/// - unsafe or WebSocket requests from other sites are refused (403), whether the token
///   came in the header or in the `CF_Authorization` cookie (read only when enabled).
#[derive(Clone)]
pub struct CloudflareAccess {
    cfg: Config,
    jwks: RemoteJwks,
    verifier: JwtVerifier,
}

impl fmt::Debug for CloudflareAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudflareAccess")
            .field("team", &self.cfg.team)
            .field("certs_url", &self.cfg.certs_url)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Config {
    team: String,
    aud: String,
    certs_url: String,
    options: JwksOptions,
    service_tokens: Arc<Vec<String>>,
    leeway: Duration,
    allow_cookie: bool,
    csrf: CsrfGuard,
    cache: bool,
    revocations: Option<crate::revocation::Revocations>,
    limiter: Option<AttemptLimiter>,
}

fn valid_team(team: &str) -> bool {
    !team.is_empty()
        && team.len() <= 63
        && !team.starts_with('-')
        && !team.ends_with('-')
        && team
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn to_context(
    claims: &Claims<'_>,
    service_tokens: &[String],
) -> Result<AuthContextBuilder, AuthError> {
    if claims.string("type").ok().flatten() != Some("app") {
        return Err(AuthError::invalid("cloudflare: token type is not app"));
    }
    let sub = claims.string("sub")?.unwrap_or("");
    let mut builder = if sub.is_empty() {
        let cn = claims
            .string("common_name")
            .ok()
            .flatten()
            .ok_or_else(|| AuthError::invalid("cloudflare: no subject"))?;
        if cn.is_empty() || !service_tokens.iter().any(|t| t == cn) {
            return Err(AuthError::invalid("cloudflare: service token not allowed"));
        }
        AuthContext::builder(cn, Scheme::CloudflareAccess)
            .with_principal_kind(PrincipalKind::Service)
    } else {
        let mut b = AuthContext::builder(sub, Scheme::CloudflareAccess);
        if let Some(e) = claims.string("email")? {
            b = b.with_email(e);
        }
        b
    };
    if let Some(iss) = claims.string("iss")? {
        builder = builder.with_issuer(iss);
    }
    if let Some(exp) = claims.number("exp")? {
        builder = builder.with_expires_at(exp as u64);
    }
    Ok(builder)
}

impl CloudflareAccess {
    /// Access for `team` (the `<team>.cloudflareaccess.com` name) and application `aud` tag.
    pub fn new(team: &str, aud: &str) -> Result<Self, ConfigError> {
        if !valid_team(team) {
            return Err(ConfigError::new(format!(
                "invalid Cloudflare Access team name: {team:?}"
            )));
        }
        if aud.is_empty() || aud.len() > 256 {
            return Err(ConfigError::new("invalid Cloudflare Access AUD tag"));
        }
        let cfg = Config {
            team: team.to_owned(),
            aud: aud.to_owned(),
            certs_url: format!("https://{team}.cloudflareaccess.com/cdn-cgi/access/certs"),
            options: JwksOptions::default(),
            service_tokens: Arc::new(Vec::new()),
            leeway: Duration::from_secs(30),
            allow_cookie: false,
            csrf: CsrfGuard::default(),
            cache: true,
            revocations: None,
            limiter: None,
        };
        let jwks = RemoteJwks::new(&cfg.certs_url, [Algorithm::RS256], cfg.options.clone())?;
        Ok(Self::assemble(cfg, jwks))
    }

    /// The verifier for `cfg`, with keys from `jwks` (built from `cfg`'s URL and options).
    fn assemble(cfg: Config, jwks: RemoteJwks) -> Self {
        let validation = Validation::new([Algorithm::RS256])
            .with_issuer(format!("https://{}.cloudflareaccess.com", cfg.team))
            .with_audience(cfg.aud.clone())
            .with_leeway(cfg.leeway)
            .with_required_sub(false);
        let tokens = cfg.service_tokens.clone();
        let issuer = Issuer::new(jwks.clone(), validation)
            .with_context_mapper(move |claims| to_context(claims, &tokens));
        let mut verifier = JwtVerifier::new(issuer);
        if cfg.cache {
            verifier = verifier.with_token_cache(TokenCache::new());
        }
        if let Some(r) = &cfg.revocations {
            verifier = verifier.with_revocations(r.clone());
        }
        CloudflareAccess {
            cfg,
            jwks,
            verifier,
        }
    }

    /// Applies `f` to the configuration; the key source is kept.
    fn edit(self, f: impl FnOnce(&mut Config)) -> Self {
        let mut cfg = self.cfg;
        f(&mut cfg);
        Self::assemble(cfg, self.jwks)
    }

    /// Applies `f` to the configuration and builds a new key source from it.
    fn edit_keys(self, f: impl FnOnce(&mut Config)) -> Result<Self, ConfigError> {
        let mut cfg = self.cfg;
        f(&mut cfg);
        let jwks = RemoteJwks::new(&cfg.certs_url, [Algorithm::RS256], cfg.options.clone())?;
        Ok(Self::assemble(cfg, jwks))
    }

    /// Fetch keys from `url` instead of the team's certs URL (tests, egress proxies).
    pub fn with_certs_url(self, url: &str) -> Result<Self, ConfigError> {
        let url = url.to_owned();
        self.edit_keys(|c| c.certs_url = url)
    }
    /// Cache and fetch settings for the certs.
    pub fn with_jwks_options(self, options: JwksOptions) -> Result<Self, ConfigError> {
        self.edit_keys(|c| c.options = options)
    }
    /// Accept the service token with this client id (`common_name`, e.g. `abc.access`).
    pub fn with_service_token(self, client_id: impl Into<String>) -> Self {
        let id = client_id.into();
        self.edit(|c| {
            let mut list = (*c.service_tokens).clone();
            list.push(id);
            c.service_tokens = Arc::new(list);
        })
    }
    /// Clock skew for `exp`/`nbf` (default 30 s).
    pub fn with_leeway(self, leeway: Duration) -> Self {
        self.edit(|c| c.leeway = leeway)
    }
    /// Also read the `CF_Authorization` cookie.
    pub fn with_cookie(self) -> Self {
        self.edit(|c| c.allow_cookie = true)
    }
    /// Which cross-site requests are refused (403), on the header and the cookie path
    /// alike (default [`CsrfGuard::default`]).
    ///
    /// Cloudflare adds `Cf-Access-Jwt-Assertion` to every request that carries its
    /// cookie, so for browsers the header is as ambient as a cookie: unsafe methods and
    /// WebSocket upgrades from other sites are refused whichever way the token came.
    /// An API that no browser ever calls may pass [`CsrfGuard::disabled`].
    pub fn with_csrf_guard(self, csrf: CsrfGuard) -> Self {
        self.edit(|c| c.csrf = csrf)
    }
    /// Gets the team's certs as `startup` says
    /// ([`RemoteJwks::start`](crate::jwt::RemoteJwks::start)): fetched now and any problem
    /// an error, or fetched in the background while requests get 503.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), portcullis::ConfigError> {
    /// use portcullis::{Startup, cloudflare::CloudflareAccess};
    /// let access = CloudflareAccess::new("myteam", "aud-tag")?;
    /// access.start(Startup::Wait).await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(&self, startup: crate::Startup) -> Result<(), crate::ConfigError> {
        self.jwks.start(startup).await
    }
    /// True when the team's certs are at hand, fetching them if needed (for a
    /// readiness probe).
    pub async fn ready(&self) -> bool {
        self.jwks.ready().await
    }
    /// How the certs are doing (last fetch, key count, staleness).
    pub fn health(&self) -> crate::jwt::JwksHealth {
        self.jwks.health()
    }
    /// Refuse tokens revoked in `revocations` (by `jti`, hash or subject, per issuer).
    pub fn with_revocations(self, revocations: crate::revocation::Revocations) -> Self {
        self.edit(|c| c.revocations = Some(revocations))
    }
    /// Limit failed assertions per client with `limiter` (its credential limits):
    /// 429 past them. Only assertions checked in full count; a valid cached one never
    /// touches the limiter.
    pub fn with_limiter(self, limiter: AttemptLimiter) -> Self {
        self.edit(|c| c.limiter = Some(limiter))
    }
    /// Turn the verified-token cache off (on by default).
    pub fn without_token_cache(self) -> Self {
        self.edit(|c| c.cache = false)
    }
}

impl Authenticator for CloudflareAccess {
    fn scheme(&self) -> Scheme {
        Scheme::CloudflareAccess
    }
    fn challenge(&self) -> Option<Challenge> {
        None
    }
    fn detect(&self, parts: &Parts) -> bool {
        !self.carried(parts).is_absent()
    }
    async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        let token = self.assertion(parts, self.carried(parts))?;
        if let Some(ctx) = self.verifier.cached(token.as_bytes()) {
            return self.verifier.admit(ctx, token.as_bytes());
        }
        let check = self.verifier.verify_uncached(token);
        Box::pin(AttemptLimiter::credential_check(
            self.cfg.limiter.as_ref(),
            parts,
            check,
        ))
        .await
    }
    fn authenticate_now(&self, parts: &Parts) -> Option<Result<AuthContext, AuthError>> {
        self.answer_now(self.assertion(parts, self.carried(parts)))
    }
    fn detect_now(&self, parts: &Parts) -> Detected {
        let carried = self.carried(parts);
        if carried.is_absent() {
            return Detected::Absent;
        }
        self.answer_now(self.assertion(parts, carried)).into()
    }
}

/// Where a request carries its assertion, read once.
enum Carried<'a> {
    /// The assertion header's values (none, when cookies are not allowed either).
    Header(GetAll<'a, HeaderValue>),
    /// No header: the cookie, as [`cookie_value`] reads it.
    Cookie(Result<Option<&'a str>, BadCookie>),
}

impl Carried<'_> {
    fn is_absent(&self) -> bool {
        match self {
            Carried::Header(values) => values.iter().next().is_none(),
            Carried::Cookie(cookie) => *cookie == Ok(None),
        }
    }
}

impl CloudflareAccess {
    /// The header's values, else (when allowed) the cookie.
    fn carried<'a>(&self, parts: &'a Parts) -> Carried<'a> {
        let values = parts.headers.get_all(ASSERTION_HEADER);
        if values.iter().next().is_some() || !self.cfg.allow_cookie {
            return Carried::Header(values);
        }
        Carried::Cookie(cookie_value(&parts.headers, AUTHORIZATION_COOKIE))
    }

    /// The cross-site guard, then the one assertion the request carries.
    fn assertion<'a>(&self, parts: &Parts, carried: Carried<'a>) -> Result<&'a str, AuthError> {
        if self.cfg.csrf.is_cross_site(parts) {
            return Err(AuthError::cross_site());
        }
        let token = match carried {
            Carried::Header(values) => {
                let mut values = values.iter();
                match (values.next(), values.next()) {
                    (Some(_), Some(_)) => return Err(AuthError::conflicting()),
                    (Some(v), None) => v
                        .to_str()
                        .map_err(|_| AuthError::invalid("cloudflare: header not ascii"))?,
                    (None, _) => return Err(AuthError::missing()),
                }
            }
            Carried::Cookie(cookie) => cookie
                .map_err(|_| AuthError::invalid("cloudflare: duplicate or unreadable cookie"))?
                .ok_or_else(AuthError::missing)?,
        };
        Ok(token.trim())
    }

    /// A verified assertion's context from the token cache, or `None` when it must be
    /// verified.
    fn answer_now(&self, token: Result<&str, AuthError>) -> Option<Result<AuthContext, AuthError>> {
        match token {
            Ok(token) => self.verifier.answer_cached(token.as_bytes()),
            Err(e) => Some(Err(e)),
        }
    }
}
