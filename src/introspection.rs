//! [`Introspection`]: opaque bearer tokens checked at the issuer's RFC 7662 endpoint.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, Url};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::Startup;
use crate::clock::unix_secs_f64;
use crate::context::{AuthContext, PrincipalKind, Scheme};
use crate::egress::Egress;
use crate::error::{AuthError, ConfigError};
use crate::jwt::Claims;
use crate::jwt::ClaimsMapping;
use crate::jwt::strict_json::{Json, parse_object};
use crate::jwt::validation::audience_matches;

/// How this resource server authenticates to the introspection endpoint.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret, each form-urlencoded first
    /// (`client_secret_basic`, RFC 6749 §2.3.1).
    Basic {
        /// The client id.
        id: String,
        /// The client secret.
        secret: String,
    },
    /// The client id and secret in the form body (`client_secret_post`).
    Post {
        /// The client id.
        id: String,
        /// The client secret.
        secret: String,
    },
    /// A bearer token of the resource server's own (some providers protect the endpoint
    /// this way).
    Bearer(String),
}

impl ClientAuth {
    /// `client_secret_basic` with `id` and `secret`.
    pub fn basic(id: impl Into<String>, secret: impl Into<String>) -> Self {
        ClientAuth::Basic {
            id: id.into(),
            secret: secret.into(),
        }
    }
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAuth::Basic { id, .. } => write!(f, "Basic({id}, <redacted>)"),
            ClientAuth::Post { id, .. } => write!(f, "Post({id}, <redacted>)"),
            ClientAuth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// What the endpoint said about one token, kept until `until`.
#[derive(Clone)]
enum Outcome {
    Active(AuthContext),
    Inactive,
}

struct Entry {
    outcome: Outcome,
    until: Instant,
}

/// A settled introspection, or the error that ends the request (never cached).
type Flight = Arc<OnceCell<Result<Outcome, AuthError>>>;

/// One caller's hold on a token's in-flight slot: the slot leaves the map when its last
/// holder lets go, finished or dropped. Holders are cloned and released only under the
/// map's lock, so the count it reads there is exact.
struct Slot<'a> {
    map: &'a Mutex<HashMap<[u8; 32], Flight>>,
    key: [u8; 32],
    flight: Option<Flight>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mine) = self.flight.take() else {
            return;
        };
        // The map's reference and this one: nobody else waits on this flight.
        if map.get(&self.key).is_some_and(|f| Arc::ptr_eq(f, &mine))
            && Arc::strong_count(&mine) == 2
        {
            map.remove(&self.key);
        }
        drop(mine);
    }
}

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

    fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Outcome> {
        let cache = self.inner.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(key)
            .filter(|e| e.until > Instant::now())
            .map(|e| e.outcome.clone())
    }

    fn remember(&self, key: [u8; 32], outcome: &Outcome, ctx_exp: Option<f64>) {
        let now = Instant::now();
        let ttl = match outcome {
            Outcome::Inactive => self.inner.s.inactive_ttl,
            Outcome::Active(_) => {
                let left = ctx_exp.map_or(f64::INFINITY, |exp| exp - unix_secs_f64());
                self.inner
                    .s
                    .max_ttl
                    .min(Duration::from_secs_f64(left.clamp(0.0, 1e9)))
            }
        };
        let mut cache = self.inner.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= self.inner.s.capacity && !cache.contains_key(&key) {
            cache.retain(|_, e| e.until > now);
            while cache.len() >= self.inner.s.capacity {
                let Some(victim) = cache.keys().next().copied() else {
                    break;
                };
                cache.remove(&victim);
            }
        }
        cache.insert(
            key,
            Entry {
                outcome: outcome.clone(),
                until: now + ttl,
            },
        );
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

    /// One call per token at a time: later callers wait for the first one's outcome.
    /// The token's slot is freed when its last caller finishes or is dropped (a timeout
    /// layer, a reset stream), so abandoned calls never hold slots.
    async fn introspect_once(&self, key: [u8; 32], token: &str) -> Result<Outcome, AuthError> {
        let slot = {
            let mut map = self
                .inner
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let flight = match map.get(&key) {
                Some(f) => f.clone(),
                None if map.len() >= self.inner.s.max_in_flight => {
                    return Err(AuthError::unavailable(
                        "introspection: too many tokens being introspected",
                    ));
                }
                None => {
                    let f = Flight::default();
                    map.insert(key, f.clone());
                    f
                }
            };
            Slot {
                map: &self.inner.in_flight,
                key,
                flight: Some(flight),
            }
        };
        let Some(flight) = slot.flight.as_ref() else {
            return Err(AuthError::unavailable("introspection: no slot"));
        };
        let result = flight
            .get_or_init(|| async {
                let r = self.introspect(token).await;
                if let Ok((outcome, exp)) = &r {
                    self.remember(key, outcome, *exp);
                }
                r.map(|(o, _)| o)
            })
            .await
            .clone();
        drop(slot);
        result
    }

    /// The request asking the endpoint about `token`, with the client's credentials.
    fn request(&self, token: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .inner
            .s
            .client
            .post(self.inner.s.endpoint.clone())
            .timeout(self.inner.s.egress.timeout)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("token", token)
                .append_pair("token_type_hint", "access_token");
            match &self.inner.s.auth {
                ClientAuth::Basic { id, secret } => {
                    let enc = |s: &str| {
                        url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                    };
                    let pair = format!("{}:{}", enc(id), enc(secret));
                    req = req.header(AUTHORIZATION, format!("Basic {}", STANDARD.encode(pair)));
                }
                ClientAuth::Post { id, secret } => {
                    form.append_pair("client_id", id)
                        .append_pair("client_secret", secret);
                }
                ClientAuth::Bearer(t) => req = req.header(AUTHORIZATION, format!("Bearer {t}")),
            }
            form.finish()
        };
        req.body(body)
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

    /// Asks the endpoint; the outcome and the token's `exp`.
    async fn introspect(&self, token: &str) -> Result<(Outcome, Option<f64>), AuthError> {
        let resp = self.request(token).send().await.map_err(|_| {
            tracing::warn!(endpoint = %self.inner.s.endpoint, "token introspection failed or timed out");
            AuthError::unavailable("introspection: endpoint unreachable")
        })?;
        if resp.status() != reqwest::StatusCode::OK {
            tracing::warn!(endpoint = %self.inner.s.endpoint, status = %resp.status(), "token introspection refused");
            return Err(AuthError::unavailable(
                "introspection: endpoint did not answer 200",
            ));
        }
        let body = self
            .inner
            .s
            .egress
            .read(resp)
            .await
            .map_err(AuthError::unavailable)?;
        let object = parse_object(&body).ok_or_else(|| {
            AuthError::unavailable("introspection: response is not a JSON object")
        })?;
        match object.get("active") {
            Some(Json::Bool(true)) => {}
            Some(Json::Bool(false)) => return Ok((Outcome::Inactive, None)),
            _ => {
                return Err(AuthError::unavailable(
                    "introspection: response lacks active",
                ));
            }
        }
        let claims = Claims::new(&object);
        let exp = self.check(&claims)?;
        let mut builder = match self.inner.s.mapping.identity(&claims, Scheme::Bearer, &[]) {
            Ok(b) => b,
            Err(_) if !claims.contains(&self.inner.s.mapping.subject) => {
                if claims.string("client_id")?.is_none_or(|c| c.is_empty()) {
                    return Err(AuthError::invalid("introspection: no subject or client_id"));
                }
                let mut mapping = self.inner.s.mapping.clone();
                mapping.subject = "client_id".into();
                mapping
                    .identity(&claims, Scheme::Bearer, &[])?
                    .with_principal_kind(PrincipalKind::Service)
            }
            Err(e) => return Err(e),
        };
        if let Some(jti) = claims.string("jti")? {
            builder = builder.with_token_id(jti);
        }
        if let Some(iat) = claims.number("iat")? {
            builder = builder.with_issued_at(iat as u64);
        }
        builder = builder.with_key_binding(claims.key_binding()?);
        Ok((Outcome::Active(builder.with_raw_claims(body).build()), exp))
    }

    /// The RFC 7662 members this crate checks; returns `exp`.
    fn check(&self, claims: &Claims<'_>) -> Result<Option<f64>, AuthError> {
        let now = unix_secs_f64();
        let exp = claims.number("exp")?;
        if exp.is_some_and(|e| e <= now) {
            return Err(AuthError::invalid("introspection: expired"));
        }
        if claims.number("nbf")?.is_some_and(|n| n > now + 30.0) {
            return Err(AuthError::invalid("introspection: not yet valid"));
        }
        if let Some(want) = &self.inner.s.issuer
            && claims.string("iss")? != Some(want.as_str())
        {
            return Err(AuthError::invalid("introspection: wrong issuer"));
        }
        if claims
            .string("token_type")?
            .is_some_and(|t| t.to_ascii_lowercase().contains("refresh"))
        {
            return Err(AuthError::invalid("introspection: a refresh token"));
        }
        let ours = audience_matches(claims.object(), "aud", &self.inner.s.audiences)?;
        if !self.inner.s.any_audience {
            if self.inner.s.audiences.is_empty() {
                return Err(AuthError::invalid(
                    "introspection: no audience configured (Introspection::with_audience)",
                ));
            }
            if ours != Some(true) {
                return Err(AuthError::invalid(
                    "introspection: wrong or missing audience",
                ));
            }
        }
        Ok(exp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_never_exceeds_its_capacity() {
        let i = Introspection::new("http://127.0.0.1:9/introspect", ClientAuth::basic("a", "b"))
            .unwrap()
            .with_capacity(8);
        for n in 0..1000u32 {
            let ctx = AuthContext::builder(n.to_string(), Scheme::Bearer).build();
            i.remember(
                Introspection::key(&n.to_string()),
                &Outcome::Active(ctx),
                None,
            );
            assert!(i.inner.cache.lock().unwrap().len() <= 8);
        }
        // The newest entry is always kept.
        assert!(i.cached(&Introspection::key("999")).is_some());
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let auth = ClientAuth::basic("orders-api", "hunter2");
        assert!(!format!("{auth:?}").contains("hunter2"));
        let i = Introspection::new("https://idp.example/introspect", auth).unwrap();
        assert!(!format!("{i:?}").contains("hunter2"));
    }
}
