//! Identity-aware proxies: Cloudflare Access, Google Cloud IAP, AWS Application Load
//! Balancer (OIDC authentication), Pomerium, and a portcullis gateway. Each signs a JWT
//! into a request header; [`IdentityProxy`] verifies it with that proxy's keys and rules
//! and gives the same [`AuthContext`](crate::AuthContext) as every other scheme (scheme
//! [`CloudflareAccess`](crate::Scheme::CloudflareAccess) for Cloudflare Access,
//! [`IdentityProxy`](crate::Scheme::IdentityProxy) for the others).
//!
//! | proxy | header | keys | `iss` | `aud` |
//! |---|---|---|---|---|
//! | Cloudflare Access | `cf-access-jwt-assertion` (or the `CF_Authorization` cookie, [`with_cookie`](IdentityProxy::with_cookie)) | RS256, JWKS at `https://<team>.cloudflareaccess.com/cdn-cgi/access/certs` | `https://<team>.cloudflareaccess.com` | contains the application's AUD tag |
//! | Google IAP | `x-goog-iap-jwt-assertion` | ES256, JWKS at gstatic.com | `https://cloud.google.com/iap` | `/projects/<number>/global/backendServices/<id>` or `/projects/<number>/apps/<project id>` |
//! | AWS ALB | `x-amzn-oidc-data` | ES256, one PEM per `kid` from the region's key endpoint | your IdP's (optional check) | none: the `signer` header must be your load balancer's ARN |
//! | Pomerium | `x-pomerium-jwt-assertion` | ES256, JWKS on the route | the route's host | the route's host |
//!
//! Only put these behind the proxy itself: a client that can reach your service
//! directly can send any header. The signature check is what makes a forged header
//! useless, so nothing else (identity headers such as
//! `x-goog-authenticated-user-email`) is ever read.
//!
//! ```
//! use portcullis::{AuthLayer, iap::IdentityProxy};
//! let iap = IdentityProxy::google_iap("/projects/123456789/global/backendServices/987654321")?;
//! let layer = AuthLayer::required(iap);
//! # Ok::<(), portcullis::ConfigError>(())
//! ```

mod alb;
mod check;
mod cloudflare;
mod proxies;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;

use self::alb::{AlbKeys, AlbVerifier};
pub use self::check::PresentedAssertion;
use crate::context::Scheme;
use crate::error::ConfigError;
use crate::http::csrf::CsrfGuard;
use crate::jwt::{
    Algorithm, ClaimsMapping, Issuer, JwksHealth, JwksOptions, JwtVerifier, RemoteJwks, TokenCache,
    Validation,
};
use crate::limit::AttemptLimiter;
use crate::revocation::Revocations;

/// Cloudflare Access's assertion header.
pub const CLOUDFLARE_ACCESS_HEADER: HeaderName = HeaderName::from_static("cf-access-jwt-assertion");
/// The cookie Cloudflare Access sets in the browser (read only with
/// [`IdentityProxy::with_cookie`]).
pub const CLOUDFLARE_ACCESS_COOKIE: &str = "CF_Authorization";

/// Google IAP's assertion header.
pub const GOOGLE_IAP_HEADER: HeaderName = HeaderName::from_static("x-goog-iap-jwt-assertion");
/// The AWS ALB's user-claims header.
pub const AWS_ALB_HEADER: HeaderName = HeaderName::from_static("x-amzn-oidc-data");
/// Pomerium's assertion header.
pub const POMERIUM_HEADER: HeaderName = HeaderName::from_static("x-pomerium-jwt-assertion");
/// A portcullis gateway's assertion header ([`crate::gateway::AssertionSigner`]).
pub const GATEWAY_HEADER: HeaderName = HeaderName::from_static("x-auth-assertion");

/// Which proxy, with what it needs to know.
#[derive(Debug, Clone)]
enum Kind {
    CloudflareAccess {
        team: String,
        aud: String,
        service_tokens: Arc<Vec<String>>,
        cookie: bool,
    },
    GoogleIap {
        audience: String,
    },
    Pomerium {
        route: String,
    },
    AwsAlb {
        signer: String,
        issuer: Option<String>,
    },
    Gateway {
        issuer: String,
        audience: String,
    },
}

#[derive(Clone)]
struct Config {
    kind: Kind,
    keys_url: String,
    options: JwksOptions,
    leeway: Duration,
    mapping: ClaimsMapping,
    csrf: CsrfGuard,
    cache: bool,
    revocations: Option<Revocations>,
    limiter: Option<AttemptLimiter>,
}

/// Where the keys come from: built from the key URL and options only.
#[derive(Clone)]
enum Source {
    Jwks(RemoteJwks),
    Alb(AlbKeys),
}

#[derive(Clone)]
enum Keys {
    Jwks(RemoteJwks, JwtVerifier),
    Alb(Box<AlbVerifier>),
}

/// A JWT signed by an identity-aware proxy, verified with the proxy's keys and rules.
///
/// Every proxy gets the same treatment: the proxy's algorithm only (RS256 for Cloudflare
/// Access, ES256 for the others), issuer and audience exact, `exp`/`nbf`/`iat` with 30 s
/// leeway, keys fetched and cached under the JWKS rules, verified tokens cached, and
/// unsafe or WebSocket requests from other sites refused (403): the proxy adds its
/// header to every request that carries its session cookie, so for a browser the
/// header is as ambient as a cookie. Identity headers the proxies also send (such as
/// `Cf-Access-Authenticated-User-Email`) are never read.
///
/// The context: subject `sub`, e-mail `email`, tenant `hd` (Google IAP), roles
/// `groups` (Pomerium); change it with [`with_mapping`](Self::with_mapping).
#[derive(Clone)]
pub struct IdentityProxy {
    cfg: Config,
    keys: Keys,
}

impl fmt::Debug for IdentityProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityProxy")
            .field("kind", &self.cfg.kind)
            .field("keys_url", &self.cfg.keys_url)
            .finish_non_exhaustive()
    }
}

impl IdentityProxy {
    fn build(kind: Kind, keys_url: &str, mapping: ClaimsMapping) -> Result<Self, ConfigError> {
        Self::with_new_source(Config {
            kind,
            keys_url: keys_url.to_owned(),
            options: JwksOptions::default(),
            leeway: Duration::from_secs(30),
            mapping,
            csrf: CsrfGuard::default(),
            cache: true,
            revocations: None,
            limiter: None,
        })
    }

    /// The proxy for `cfg`, with a key source built from its URL and options.
    fn with_new_source(cfg: Config) -> Result<Self, ConfigError> {
        let source = match cfg.kind {
            Kind::AwsAlb { .. } => Source::Alb(AlbKeys::new(&cfg.keys_url, &cfg.options)?),
            _ => Source::Jwks(RemoteJwks::new(
                &cfg.keys_url,
                [cfg.kind.algorithm()],
                cfg.options.clone(),
            )?),
        };
        Ok(Self::assemble(cfg, source))
    }

    /// The proxy for `cfg` with keys from `source`.
    fn assemble(cfg: Config, source: Source) -> Self {
        let validation = Validation::new([cfg.kind.algorithm()]).with_leeway(cfg.leeway);
        let validation = match &cfg.kind {
            Kind::CloudflareAccess { team, aud, .. } => validation
                .with_issuer(format!("https://{team}.cloudflareaccess.com"))
                .with_audience(aud.clone())
                .with_required_sub(false),
            Kind::GoogleIap { audience } => validation
                .with_issuer("https://cloud.google.com/iap")
                .with_audience(audience.clone()),
            Kind::Pomerium { route } => validation
                .with_issuer(route.clone())
                .with_audience(route.clone()),
            Kind::AwsAlb { issuer, .. } => match issuer {
                Some(i) => validation.without_audience_check().with_issuer(i.clone()),
                None => validation.without_audience_check(),
            },
            Kind::Gateway { issuer, audience } => validation
                .with_issuer(issuer.clone())
                .with_audience(audience.clone())
                .with_max_age(Duration::from_secs(60)),
        };
        let keys = match source {
            Source::Alb(keys) => Keys::Alb(Box::new(AlbVerifier {
                keys,
                validation,
                // The source follows the kind, so this is always the ALB's ARN; an empty
                // signer would match no token.
                signer: match &cfg.kind {
                    Kind::AwsAlb { signer, .. } => signer.clone(),
                    _ => String::new(),
                },
                mapping: cfg.mapping.clone(),
                revocations: cfg.revocations.clone(),
            })),
            Source::Jwks(jwks) => {
                let mapping = cfg.mapping.clone();
                let issuer = Issuer::new(jwks.clone(), validation);
                let issuer = match &cfg.kind {
                    Kind::CloudflareAccess { service_tokens, .. } => {
                        let tokens = service_tokens.clone();
                        issuer.with_context_mapper(move |c| {
                            cloudflare::to_context(c, &mapping, &tokens)
                        })
                    }
                    _ => issuer.with_context_mapper(move |c| {
                        mapping.identity(c, Scheme::IdentityProxy, &[])
                    }),
                };
                let mut verifier = JwtVerifier::new(issuer);
                if cfg.cache {
                    verifier = verifier.with_token_cache(TokenCache::new());
                }
                if let Some(r) = &cfg.revocations {
                    verifier = verifier.with_revocations(r.clone());
                }
                Keys::Jwks(jwks, verifier)
            }
        };
        IdentityProxy { cfg, keys }
    }

    /// The key source in use.
    fn source(&self) -> Source {
        match &self.keys {
            Keys::Jwks(jwks, _) => Source::Jwks(jwks.clone()),
            Keys::Alb(v) => Source::Alb(v.keys.clone()),
        }
    }

    /// Applies `f` to the settings, keeping the key source.
    fn edit(self, f: impl FnOnce(&mut Config)) -> Self {
        let source = self.source();
        let mut cfg = self.cfg;
        f(&mut cfg);
        Self::assemble(cfg, source)
    }

    /// Applies `f` to the settings and builds a new key source from them.
    fn edit_keys(self, f: impl FnOnce(&mut Config)) -> Result<Self, ConfigError> {
        let mut cfg = self.cfg;
        f(&mut cfg);
        Self::with_new_source(cfg)
    }

    /// Fetch keys from `url` instead of the proxy's own (tests, egress proxies). For
    /// the ALB this is the base URL; the `kid` is appended as a path segment.
    ///
    /// # Errors
    /// `url` is not https (plain http is accepted for loopback hosts).
    pub fn with_keys_url(self, url: &str) -> Result<Self, ConfigError> {
        let url = url.trim_end_matches('/').to_owned();
        self.edit_keys(|c| c.keys_url = url)
    }
    /// Fetch, cache and egress settings for the keys (proxies, private roots).
    ///
    /// # Errors
    /// The HTTP client cannot be built from `options`.
    pub fn with_jwks_options(self, options: JwksOptions) -> Result<Self, ConfigError> {
        self.edit_keys(|c| c.options = options)
    }
    /// For Cloudflare Access: accept service tokens whose client id (`common_name`) is
    /// `client_id`, as service principals (refused by default).
    ///
    /// # Errors
    /// Not Cloudflare Access.
    pub fn with_service_token(self, client_id: impl Into<String>) -> Result<Self, ConfigError> {
        let client_id = client_id.into();
        self.edit_cloudflare("with_service_token", |tokens, _| {
            Arc::make_mut(tokens).push(client_id);
        })
    }
    /// For Cloudflare Access: when the request has no assertion header, read the
    /// assertion from the `CF_Authorization` cookie (off by default; the cross-site
    /// guard applies either way).
    ///
    /// # Errors
    /// Not Cloudflare Access.
    pub fn with_cookie(self) -> Result<Self, ConfigError> {
        self.edit_cloudflare("with_cookie", |_, cookie| *cookie = true)
    }
    fn edit_cloudflare(
        self,
        setter: &str,
        f: impl FnOnce(&mut Arc<Vec<String>>, &mut bool),
    ) -> Result<Self, ConfigError> {
        if !matches!(self.cfg.kind, Kind::CloudflareAccess { .. }) {
            return Err(ConfigError::new(format!(
                "{setter} applies to Cloudflare Access only"
            )));
        }
        Ok(self.edit(|c| {
            if let Kind::CloudflareAccess {
                service_tokens,
                cookie,
                ..
            } = &mut c.kind
            {
                f(service_tokens, cookie);
            }
        }))
    }
    /// For the ALB: also require the IdP's `iss` in the claims (other proxies sign
    /// with their own, always checked).
    ///
    /// # Errors
    /// Not an ALB.
    pub fn with_issuer(self, issuer: impl Into<String>) -> Result<Self, ConfigError> {
        let issuer = issuer.into();
        if !matches!(self.cfg.kind, Kind::AwsAlb { .. }) {
            return Err(ConfigError::new(
                "with_issuer applies to the AWS ALB only: the other proxies' issuers are fixed",
            ));
        }
        Ok(self.edit(|c| {
            if let Kind::AwsAlb { issuer: i, .. } = &mut c.kind {
                *i = Some(issuer);
            }
        }))
    }
    /// Clock skew for `exp`/`nbf`/`iat` (default 30 s).
    pub fn with_leeway(self, leeway: Duration) -> Self {
        self.edit(|c| c.leeway = leeway)
    }
    /// How claims fill the context.
    pub fn with_mapping(self, mapping: ClaimsMapping) -> Self {
        self.edit(|c| c.mapping = mapping)
    }
    /// Which cross-site requests are refused (default [`CsrfGuard::default`]);
    /// [`CsrfGuard::disabled`] for APIs no browser calls.
    pub fn with_csrf_guard(self, csrf: CsrfGuard) -> Self {
        self.edit(|c| c.csrf = csrf)
    }
    /// Refuse tokens revoked in `revocations`.
    pub fn with_revocations(self, revocations: Revocations) -> Self {
        self.edit(|c| c.revocations = Some(revocations))
    }
    /// Turn the verified-token cache off (on by default).
    pub fn without_token_cache(self) -> Self {
        self.edit(|c| c.cache = false)
    }
    /// Count failed verifications per client address and credential in `limiter`
    /// (cache hits are never counted or slowed; ALB assertions, which are not cached,
    /// go through the limiter on every request).
    pub fn with_limiter(self, limiter: AttemptLimiter) -> Self {
        self.edit(|c| c.limiter = Some(limiter))
    }

    /// Gets the proxy's keys as `startup` says ([`RemoteJwks::start`]): fetched now and
    /// any problem an error, or fetched in the background while requests get 503. The
    /// ALB's keys are fetched per `kid` as assertions name them, so there is nothing to
    /// fetch ahead: it returns at once either way.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), portcullis::ConfigError> {
    /// use portcullis::{Startup, iap::IdentityProxy};
    /// let iap = IdentityProxy::google_iap("/projects/1/global/backendServices/2")?;
    /// iap.start(Startup::Wait).await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(&self, startup: crate::Startup) -> Result<(), ConfigError> {
        match &self.keys {
            Keys::Jwks(jwks, _) => jwks.start(startup).await,
            Keys::Alb(_) => Ok(()),
        }
    }

    /// True when the proxy's keys are at hand, fetching them if needed (for a readiness
    /// probe). For the ALB, whose keys are fetched per `kid`, true once the key endpoint
    /// has answered (or before any token arrived).
    pub async fn ready(&self) -> bool {
        match &self.keys {
            Keys::Jwks(jwks, _) => jwks.ready().await,
            Keys::Alb(v) => v.keys.ready(),
        }
    }
    /// How the key set is doing (`None` for the ALB, which has no key set).
    pub fn health(&self) -> Option<JwksHealth> {
        match &self.keys {
            Keys::Jwks(jwks, _) => Some(jwks.health()),
            Keys::Alb(_) => None,
        }
    }
    fn header(&self) -> HeaderName {
        match self.cfg.kind {
            Kind::CloudflareAccess { .. } => CLOUDFLARE_ACCESS_HEADER,
            Kind::GoogleIap { .. } => GOOGLE_IAP_HEADER,
            Kind::Pomerium { .. } => POMERIUM_HEADER,
            Kind::AwsAlb { .. } => AWS_ALB_HEADER,
            Kind::Gateway { .. } => GATEWAY_HEADER,
        }
    }
}

impl Kind {
    /// The one algorithm the proxy signs with.
    fn algorithm(&self) -> Algorithm {
        match self {
            Kind::CloudflareAccess { .. } => Algorithm::RS256,
            _ => Algorithm::ES256,
        }
    }
}
