//! [`Introspection`]: opaque bearer tokens checked at the issuer's RFC 7662 endpoint.

mod answer;
mod client_auth;
mod results;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Client, Url};

use crate::Startup;
use crate::context::AuthContext;
use crate::egress::Egress;
use crate::error::{AuthError, ConfigError};
use crate::jose::mapping::ClaimsMapping;
use crate::jose::strict_json::{Json, parse_object};

pub use client_auth::ClientAuth;
use results::{Entry, Flight, Outcome};

/// The size cap on an introspection answer unless [`Introspection::with_egress`] sets one.
const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;

#[derive(Clone)]
struct Settings {
    endpoint: Url,
    auth: ClientAuth,
    egress: Egress,
    client: Client,
    audiences: Vec<String>,
    any_audience: bool,
    issuer: Option<String>,
    mapping: ClaimsMapping,
    max_ttl: Duration,
    inactive_ttl: Duration,
    capacity: usize,
    max_in_flight: usize,
}

struct Inner {
    s: Settings,
    cache: Mutex<HashMap<[u8; 32], Entry>>,
    in_flight: Mutex<HashMap<[u8; 32], Flight>>,
}

/// Opaque bearer tokens verified at the issuer's token introspection endpoint
/// (RFC 7662), giving the same [`AuthContext`] as a JWT. Use it with
/// [`BearerAuth::introspection`](crate::jwt::BearerAuth::introspection).
///
/// - the resource server authenticates with [`ClientAuth`]; the token goes in a POST
///   form, never in a URL or a log;
/// - `active` must be `true`; `exp`, `nbf`, `iss` (when configured) and `aud` are
///   checked as for a JWT: an audience is required until
///   [`without_audience_check`](Self::without_audience_check); tokens whose
///   `token_type` names a refresh token are refused;
/// - results are cached by the token's SHA-256: an active token until the sooner of its
///   `exp` and [`with_max_ttl`](Self::with_max_ttl) (60 s by default; a token revoked at
///   the issuer stays usable here that long), an inactive one for
///   [`with_inactive_ttl`](Self::with_inactive_ttl) (10 s); at most
///   [`with_capacity`](Self::with_capacity) entries (10 000);
/// - concurrent requests with the same token share one call; at most
///   [`with_max_in_flight`](Self::with_max_in_flight) (256) different tokens are being
///   introspected at once, more are refused with 503;
/// - the endpoint down, slow (5 s timeout), answering other than 200 or with anything
///   but a JSON object: 503, nothing cached, no context (fail closed).
///
/// ```
/// use portcullis::AuthLayer;
/// use portcullis::introspection::{ClientAuth, Introspection};
/// use portcullis::jwt::BearerAuth;
/// let introspection = Introspection::new(
///     "https://idp.example.com/oauth2/introspect",
///     ClientAuth::basic("orders-api", "s3cret"),
/// )?
/// .with_issuer("https://idp.example.com")
/// .with_audience("orders-api");
/// let layer = AuthLayer::required(BearerAuth::introspection("orders-api", introspection));
/// # Ok::<(), portcullis::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Introspection {
    inner: Arc<Inner>,
}

impl fmt::Debug for Introspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspection")
            .field("endpoint", &self.inner.s.endpoint.as_str())
            .field("auth", &self.inner.s.auth)
            .finish_non_exhaustive()
    }
}

impl Introspection {
    /// Introspect at `endpoint` (https; plain http only on loopback), authenticating
    /// with `auth`.
    ///
    /// # Errors
    /// `endpoint` is not an https URL (or http on a loopback host).
    pub fn new(endpoint: &str, auth: ClientAuth) -> Result<Self, ConfigError> {
        let url = crate::egress::check_url(endpoint, false)?;
        let egress = Egress::default().with_max_response_bytes(DEFAULT_MAX_RESPONSE_BYTES);
        Ok(Introspection::from_settings(Settings {
            endpoint: url,
            auth,
            client: egress.client_without_redirects()?,
            egress,
            audiences: Vec::new(),
            any_audience: false,
            issuer: None,
            mapping: ClaimsMapping::default(),
            max_ttl: Duration::from_secs(60),
            inactive_ttl: Duration::from_secs(10),
            capacity: 10_000,
            max_in_flight: 256,
        }))
    }

    fn from_settings(s: Settings) -> Self {
        Introspection {
            inner: Arc::new(Inner {
                s,
                cache: Mutex::new(HashMap::new()),
                in_flight: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Applies `f` to the settings; the result starts with an empty cache.
    fn edit(self, f: impl FnOnce(&mut Settings)) -> Self {
        let mut s = self.inner.s.clone();
        f(&mut s);
        Introspection::from_settings(s)
    }

    /// Require `aud` to name this audience (call again to accept several).
    pub fn with_audience(self, audience: impl Into<String>) -> Self {
        let a = audience.into();
        self.edit(|i| i.audiences.push(a))
    }
    /// Requires `audience` unless an audience is configured (or the check is off).
    pub(crate) fn with_default_audience(self, audience: &str) -> Self {
        if !self.inner.s.audiences.is_empty() || self.inner.s.any_audience {
            return self;
        }
        self.with_audience(audience)
    }
    /// Accept tokens whatever their `aud`: only when every token of this issuer is for
    /// this service.
    pub fn without_audience_check(self) -> Self {
        self.edit(|i| i.any_audience = true)
    }
    /// Require `iss` to equal `issuer`.
    pub fn with_issuer(self, issuer: impl Into<String>) -> Self {
        let iss = issuer.into();
        self.edit(|i| i.issuer = Some(iss))
    }
    /// How the response fills the context (default [`ClaimsMapping::default`]). A
    /// response without a subject but with a `client_id` is that client, as a service
    /// principal.
    pub fn with_mapping(self, mapping: ClaimsMapping) -> Self {
        self.edit(|i| i.mapping = mapping)
    }
    /// Longest time an active token is served from the cache (default 60 s).
    pub fn with_max_ttl(self, ttl: Duration) -> Self {
        self.edit(|i| i.max_ttl = ttl)
    }
    /// How long an inactive token is remembered (default 10 s).
    pub fn with_inactive_ttl(self, ttl: Duration) -> Self {
        self.edit(|i| i.inactive_ttl = ttl)
    }
    /// Most cached results (default 10 000; expired ones go first, then any).
    pub fn with_capacity(self, n: usize) -> Self {
        self.edit(|i| i.capacity = n.max(1))
    }
    /// Most different tokens introspected at once (default 256); beyond it, 503.
    pub fn with_max_in_flight(self, n: usize) -> Self {
        self.edit(|i| i.max_in_flight = n.max(1))
    }
    /// How requests to the endpoint leave the process: timeout (default 5 s), size cap
    /// (default here 64 KiB, as introspection answers are small; the given `egress`'s
    /// own cap applies), proxies, private roots, or a client you built (mTLS).
    ///
    /// # Errors
    /// The HTTP client cannot be built from `egress`.
    pub fn with_egress(self, egress: Egress) -> Result<Self, ConfigError> {
        let client = egress.client_without_redirects()?;
        Ok(self.edit(|i| {
            i.client = client;
            i.egress = egress;
        }))
    }

    /// Logs at error level, once at start-up, a configuration that refuses every token.
    pub(crate) fn warn_when_misconfigured(&self) {
        if !self.inner.s.any_audience && self.inner.s.audiences.is_empty() {
            tracing::error!(
                endpoint = %self.inner.s.endpoint,
                "introspection has no audience: every token will be refused; call \
                 Introspection::with_audience(\"<your API's audience>\") (or \
                 without_audience_check())"
            );
        }
    }

    /// The context of `token`, from the cache or the endpoint.
    pub async fn verify(&self, token: &str) -> Result<AuthContext, AuthError> {
        let key = Self::key(token);
        let outcome = match self.cached(&key) {
            Some(o) => o,
            None => self.introspect_once(key, token).await?,
        };
        match outcome {
            Outcome::Active(ctx) => Ok(ctx),
            Outcome::Inactive => Err(AuthError::invalid("introspection: token not active")),
        }
    }

    /// Checks the endpoint as `startup` says. [`Startup::FailFast`] asks it about a token
    /// that cannot exist and fails unless it answers as RFC 7662 says (`200` with
    /// `"active": false`; `true` means a stub that accepts anything): the error tells an unreachable endpoint (refused, timed out, a 5xx)
    /// from a wrong configuration (a 401 or 403 for the client's credentials, a 404, a
    /// body that is not an introspection answer). [`Startup::Wait`] returns at once:
    /// tokens are introspected as they come, and get 503 while the endpoint is down.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), portcullis::ConfigError> {
    /// use portcullis::Startup;
    /// use portcullis::introspection::{ClientAuth, Introspection};
    /// let introspection = Introspection::new("https://idp.example/introspect", ClientAuth::basic("api", "secret"))?
    ///     .with_audience("api");
    /// introspection.start(Startup::FailFast).await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(&self, startup: Startup) -> Result<(), ConfigError> {
        if startup == Startup::Wait {
            return Ok(());
        }
        let endpoint = &self.inner.s.endpoint;
        let unreachable = |why: &str| {
            ConfigError::new(format!(
                "introspection endpoint {endpoint} is unreachable ({why}); start with Startup::Wait to start anyway"
            ))
        };
        let resp = self
            .request("portcullis-startup-probe")
            .send()
            .await
            .map_err(|_| unreachable("request failed or timed out"))?;
        let status = resp.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(unreachable(status.as_str()));
        }
        if status != reqwest::StatusCode::OK {
            return Err(ConfigError::new(format!(
                "introspection endpoint {endpoint} answered {status}: check the URL and the client's credentials"
            )));
        }
        let body = self
            .inner
            .s
            .egress
            .read(resp)
            .await
            .map_err(|_| unreachable("the answer was cut short or too large"))?;
        match parse_object(&body).as_ref().and_then(|o| o.get("active")) {
            Some(Json::Bool(false)) => Ok(()),
            Some(Json::Bool(true)) => Err(ConfigError::new(format!(
                "introspection endpoint {endpoint} calls a token that cannot exist active: it is a stub or accepts anything"
            ))),
            _ => Err(ConfigError::new(format!(
                "introspection endpoint {endpoint} did not answer with an RFC 7662 response (no `active`): check the URL"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let auth = ClientAuth::basic("orders-api", "hunter2");
        assert!(!format!("{auth:?}").contains("hunter2"));
        let i = Introspection::new("https://idp.example/introspect", auth).unwrap();
        assert!(!format!("{i:?}").contains("hunter2"));
    }
}
