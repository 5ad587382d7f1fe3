//! [`OAuthLogin`]: authorization code + PKCE + `state` (+ `nonce`), ending in a session.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::BoxFuture;
use http::header::{ACCEPT, AUTHORIZATION, LOCATION, SET_COOKIE};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use reqwest::{Client, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;

use super::pending::Pending;
use super::profile::Profile;
use super::provider::{Identity, OAuthProvider, join};
use crate::clock::unix_secs;
use crate::error::{AuthError, ConfigError};
use crate::http::cookies::cookie_value;
use crate::jwt::http_client::read_capped;
use crate::jwt::{Issuer, JwtVerifier, Validation};
use crate::resource::ReplayCache;
use crate::responder::is_local_path;
use crate::session::{NewSession, ProviderSession, Sessions};

/// How long a started login may take before its callback is refused.
const PENDING_SECS: u64 = 600;
/// Largest callback query accepted, and largest single parameter.
const MAX_QUERY_BYTES: usize = 8 * 1024;
const MAX_PARAM_BYTES: usize = 4 * 1024;
/// Largest token or user-info response accepted.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Deserialize, Serialize)]
struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenField {}

type Tokens = StandardTokenResponse<IdTokenField, BasicTokenType>;
type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    Tokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Turns a verified profile into a session, or refuses the login.
type Hook = Arc<dyn Fn(Profile) -> BoxFuture<'static, Result<NewSession, AuthError>> + Send + Sync>;

#[derive(Clone)]
pub(super) struct Inner {
    pub(super) provider: OAuthProvider,
    client: OAuthClient,
    pub(super) client_id: String,
    redirect: Url,
    http: Client,
    id_tokens: Option<JwtVerifier>,
    /// Back-channel logout tokens: the provider's keys, `iss`, `aud` = the client id.
    pub(super) logout_tokens: Option<JwtVerifier>,
    /// Where logout token `jti`s are remembered (single use).
    pub(super) logout_replay: ReplayCache,
    key: Vec<u8>,
    cookie: &'static str,
    secure: bool,
    hook: Hook,
    keep_refresh_token: bool,
    after_logout: Option<String>,
}

/// Sign-in with an OAuth 2 / OpenID Connect provider, ending in a portcullis session.
///
/// - authorization code with PKCE (S256), `state`, and for OIDC a `nonce`; the pending
///   login lives in a short-lived (10 min) cookie signed with HMAC-SHA256, `HttpOnly`,
///   `SameSite=Lax`, `Secure` for https redirect URIs;
/// - OIDC: the ID token is verified by this crate's [`JwtVerifier`] with the provider's
///   keys (issuer, audience = your client id, asymmetric algorithms the provider
///   advertises), then `nonce`, `azp` (required when there are several audiences) and
///   `at_hash` (when present); GitHub: the user from its API;
/// - the [`Profile`] goes to your hook ([`with_profile_hook`](Self::with_profile_hook)),
///   which returns the [`NewSession`] (subject, roles, tenant, e-mail), refuses, upserts
///   the user, or makes the first user the owner; by default the session's subject is
///   [`Profile::unique_subject`] (`<issuer>#<sub>`, so two providers' users never
///   merge), with the verified e-mail and no roles; the session's context carries the
///   provider's issuer unless the hook sets another;
/// - `return_to` must be a same-origin path (`/dashboard`); anything else is a 400;
/// - a bad callback (state missing or not ours, no pending cookie, a replayed code, a
///   nonce or ID token that does not verify, a provider error, oversized parameters)
///   is a 400 or 401 and never a session;
/// - tokens are not kept: the hook sees the access token (and the refresh token only
///   with [`with_refresh_token`](Self::with_refresh_token)).
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use axum::{Extension, Router};
/// use portcullis::oauth::{OAuthLogin, OAuthProvider};
/// use portcullis::session::{MemoryStore, NewSession, SessionConfig, SessionManager};
///
/// let provider = OAuthProvider::discover("https://sso.example.com/realms/acme").await?;
/// let login = OAuthLogin::new(provider, "my-app", "client-secret", "https://app.example.com/oidc/callback")?
///     .with_profile_hook(|profile| async move {
///         Ok(NewSession::new(profile.subject).with_roles(["member"]))
///     });
/// let manager = SessionManager::new(MemoryStore::new(), SessionConfig::default());
/// let app: Router = Router::new()
///     .nest("/oidc", login.routes())            // GET /oidc/login?return_to=/, GET /oidc/callback, POST /oidc/logout
///     .layer(Extension(manager));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OAuthLogin {
    pub(super) inner: Arc<Inner>,
}

impl fmt::Debug for OAuthLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthLogin")
            .field("provider", &self.inner.provider.name)
            .field("client_id", &self.inner.client_id)
            .field("redirect", &self.inner.redirect.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct HttpFailure(&'static str);
impl fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
impl std::error::Error for HttpFailure {}

fn default_hook(profile: Profile) -> BoxFuture<'static, Result<NewSession, AuthError>> {
    Box::pin(async move {
        let mut s = NewSession::new(profile.unique_subject());
        if let Some(e) = profile.email {
            s = s.with_email(e);
        }
        Ok(s)
    })
}

impl OAuthLogin {
    /// Login with `provider` as client `client_id` (with `client_secret`; empty for a
    /// public client), the provider redirecting back to `redirect_uri` (the absolute URL
    /// of the callback route, registered with the provider).
    ///
    /// # Errors
    /// `redirect_uri` is not an absolute https URL (http only on loopback hosts), or
    /// the client id is empty.
    pub fn new(
        provider: OAuthProvider,
        client_id: &str,
        client_secret: &str,
        redirect_uri: &str,
    ) -> Result<Self, ConfigError> {
        if client_id.is_empty() {
            return Err(ConfigError::new("OAuth: the client id is empty"));
        }
        let redirect = crate::jwt::remote::check_url(redirect_uri, false).map_err(|_| {
            ConfigError::new(format!(
                "OAuth redirect URI must be an absolute https URL: {redirect_uri}"
            ))
        })?;
        let mut client = oauth2::Client::new(ClientId::new(client_id.to_owned()))
            .set_auth_uri(AuthUrl::from_url(provider.authorization.clone()))
            .set_token_uri(TokenUrl::from_url(provider.token.clone()))
            .set_redirect_uri(RedirectUrl::from_url(redirect.clone()));
        if !client_secret.is_empty() {
            client = client.set_client_secret(ClientSecret::new(client_secret.to_owned()));
        }
        let http = provider
            .options
            .egress
            .client_without_redirects(provider.timeout())?;
        let (id_tokens, logout_tokens) = match &provider.identity {
            Identity::Oidc {
                issuer,
                jwks,
                algorithms,
                ..
            } => {
                let v = Validation::new(algorithms.iter().copied())
                    .with_issuer(issuer.clone())
                    .with_audience(client_id)
                    .with_required_iat(true);
                let logout = v.clone().with_max_age(std::time::Duration::from_secs(
                    super::backchannel::MAX_AGE_SECS,
                ));
                (
                    Some(JwtVerifier::new(Issuer::new(jwks.clone(), v))),
                    Some(JwtVerifier::new(Issuer::new(jwks.clone(), logout))),
                )
            }
            Identity::GitHub { .. } => (None, None),
        };
        let secure = redirect.scheme() == "https";
        let mut key = vec![0u8; 32];
        getrandom::fill(&mut key).map_err(|_| ConfigError::new("no OS randomness"))?;
        Ok(OAuthLogin {
            inner: Arc::new(Inner {
                provider,
                client,
                client_id: client_id.to_owned(),
                redirect,
                http,
                id_tokens,
                logout_tokens,
                logout_replay: ReplayCache::memory(),
                key,
                cookie: if secure {
                    "__Host-oauth-pending"
                } else {
                    "oauth-pending"
                },
                secure,
                hook: Arc::new(default_hook),
                keep_refresh_token: false,
                after_logout: None,
            }),
        })
    }

    /// Applies `f` to the settings (copied when another handle shares them).
    fn edit(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| (*shared).clone());
        f(&mut inner);
        OAuthLogin {
            inner: Arc::new(inner),
        }
    }

    /// Decide what a login becomes: return the [`NewSession`] (an upserted user's roles,
    /// the first user as owner...) or an error (a 403 with
    /// [`AuthError::forbidden`] to refuse).
    pub fn with_profile_hook<F, Fut>(self, hook: F) -> Self
    where
        F: Fn(Profile) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<NewSession, AuthError>> + Send + 'static,
    {
        let hook: Hook = Arc::new(move |p| Box::pin(hook(p)));
        self.edit(|i| i.hook = hook)
    }

    /// Sign pending logins with this key (at least 32 bytes) instead of one made at
    /// start-up: needed when several instances serve the callback.
    ///
    /// # Errors
    /// The key is shorter than 32 bytes.
    pub fn with_state_key(self, key: &[u8]) -> Result<Self, ConfigError> {
        if key.len() < 32 {
            return Err(ConfigError::new("OAuth state key shorter than 32 bytes"));
        }
        let key = key.to_vec();
        Ok(self.edit(|i| i.key = key))
    }

    /// Hand the refresh token to the hook (dropped otherwise).
    pub fn with_refresh_token(self) -> Self {
        self.edit(|i| i.keep_refresh_token = true)
    }

    /// After logout, send the user to the provider's `end_session_endpoint` (when it
    /// advertises one) with this `post_logout_redirect_uri`; without it, or without the
    /// endpoint, logout redirects to `/`.
    pub fn with_post_logout_redirect(self, uri: impl Into<String>) -> Self {
        let uri = uri.into();
        self.edit(|i| i.after_logout = Some(uri))
    }

    /// Remember back-channel logout tokens' `jti` in `cache` (default: this process's
    /// memory), so a replayed logout token is refused on every instance sharing it.
    pub fn with_replay_cache(self, cache: ReplayCache) -> Self {
        self.edit(|i| i.logout_replay = cache)
    }

    /// `GET /login?return_to=/path`, `GET /callback`, `POST /logout` and
    /// `POST /backchannel-logout` (OpenID Back-Channel Logout 1.0), to nest where the
    /// redirect URI points (`.nest("/oidc", login.routes())`). The app needs an
    /// `Extension(SessionManager)`; back-channel logout needs its
    /// [`SessionConfig::with_revocations`](crate::session::SessionConfig::with_revocations).
    pub fn routes<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/login", get(login_route))
            .route("/callback", get(callback_route))
            .route("/logout", post(logout_route))
            .route("/backchannel-logout", post(super::backchannel::route))
            .with_state(self.clone())
    }

    fn pending_cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.inner.secure { "; Secure" } else { "" };
        let v = format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
            self.inner.cookie
        );
        HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The redirect to the provider, with the pending-login cookie. `return_to` (a
    /// same-origin path) is where the callback sends the user; `/` when `None`.
    ///
    /// # Errors
    /// `return_to` is not a same-origin path (400).
    pub fn start(&self, return_to: Option<&str>) -> Result<Response, AuthError> {
        let return_to = match return_to {
            None => "/",
            Some(p) if is_local_path(p) => p,
            Some(_) => {
                return Err(AuthError::malformed("oauth: return_to is not a local path")
                    .with_message("return_to must be a path on this site, such as /account."));
            }
        };
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = CsrfToken::new_random();
        let mut request = self
            .inner
            .client
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge)
            .add_scopes(self.inner.provider.scopes.iter().cloned().map(Scope::new));
        if self.inner.id_tokens.is_some() {
            request = request.add_extra_param("nonce", nonce.secret().clone());
        }
        let (url, state) = request.url();
        let pending = Pending {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            return_to: return_to.to_owned(),
            started: unix_secs(),
        };
        let cookie = self.pending_cookie(
            &pending.seal(&self.inner.key, self.inner.cookie),
            PENDING_SECS,
        );
        Ok(redirect(url.as_str(), [cookie]))
    }

    /// Finishes the login the provider redirected back to (`parts` of the callback
    /// request): checks it, makes the session, and redirects to `return_to`.
    ///
    /// # Errors
    /// 400 for a callback that is not ours (no or bad pending cookie, state mismatch,
    /// missing or oversized parameters), 401 when the provider refused or the tokens do
    /// not verify, 503 when the provider cannot be reached, and the hook's own error.
    pub async fn finish(&self, parts: &Parts, sessions: &Sessions) -> Result<Response, AuthError> {
        let query = CallbackQuery::parse(parts.uri.query().unwrap_or(""))?;
        let sealed = cookie_value(&parts.headers, self.inner.cookie)
            .map_err(|_| bad("oauth: duplicate or unreadable pending cookie"))?
            .ok_or_else(|| bad("oauth: no pending login (cookie missing or expired)"))?;
        let pending = Pending::open(sealed, &self.inner.key, self.inner.cookie)
            .ok_or_else(|| bad("oauth: pending login cookie does not verify"))?;
        if unix_secs().saturating_sub(pending.started) > PENDING_SECS {
            return Err(bad("oauth: pending login expired"));
        }
        let state = query
            .state
            .as_deref()
            .ok_or_else(|| bad("oauth: no state"))?;
        if !bool::from(state.as_bytes().ct_eq(pending.state.as_bytes())) {
            return Err(bad("oauth: state mismatch"));
        }
        // RFC 9207 (mix-up defence), on error responses too: `iss`, when sent, must be
        // this provider's; a provider that advertises sending it must have sent it.
        if let Identity::Oidc {
            issuer,
            iss_in_response,
            ..
        } = &self.inner.provider.identity
        {
            match &query.iss {
                Some(iss) if iss != issuer => {
                    return Err(AuthError::invalid("oauth: callback from another issuer"));
                }
                None if *iss_in_response => {
                    return Err(AuthError::invalid(
                        "oauth: callback without the iss its provider always sends",
                    ));
                }
                _ => {}
            }
        }
        if let Some(err) = &query.error {
            tracing::info!(provider = %self.inner.provider.name, error = %err, "the provider refused the login");
            return Err(
                AuthError::invalid("oauth: the provider answered with an error")
                    .with_message("The sign-in was not completed."),
            );
        }
        let code = query.code.ok_or_else(|| bad("oauth: no code"))?;
        let tokens = self.exchange(code, pending.verifier).await?;
        let profile = match &self.inner.provider.identity {
            Identity::Oidc { issuer, .. } => {
                self.id_token_profile(&tokens, &pending.nonce, issuer)
                    .await?
            }
            Identity::GitHub { api } => self.github_profile(&tokens, api).await?,
        };
        let issuer = profile.issuer.clone();
        // What a back-channel logout names: the provider's `sub` and `sid`.
        let provider_session =
            matches!(self.inner.provider.identity, Identity::Oidc { .. }).then(|| {
                ProviderSession {
                    issuer: profile.issuer.clone(),
                    subject: profile.subject.clone(),
                    sid: profile
                        .claims
                        .get("sid")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                }
            });
        let mut session = (self.inner.hook)(profile).await?;
        if session.issuer.is_none() {
            session.issuer = Some(issuer);
        }
        session.provider_session = provider_session;
        let cookie = sessions.login(session).await?;
        let clear = self.pending_cookie("", 0);
        Ok(redirect(
            &pending.return_to,
            [cookie.header_value().clone(), clear],
        ))
    }

    async fn exchange(&self, code: String, verifier: String) -> Result<Tokens, AuthError> {
        let http = self.inner.http.clone();
        let send = move |req: oauth2::HttpRequest| {
            let http = http.clone();
            async move {
                let (parts, body) = req.into_parts();
                let resp = http
                    .request(parts.method, parts.uri.to_string())
                    .headers(parts.headers)
                    .body(body)
                    .send()
                    .await
                    .map_err(|_| HttpFailure("token endpoint unreachable"))?;
                let status = resp.status();
                let headers = resp.headers().clone();
                let body = read_capped(resp, MAX_RESPONSE_BYTES)
                    .await
                    .map_err(HttpFailure)?;
                let mut out = http::Response::new(body);
                *out.status_mut() = status;
                *out.headers_mut() = headers;
                Ok::<_, HttpFailure>(out)
            }
        };
        self.inner
            .client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&send)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => {
                    tracing::info!(error = %r.error(), "the token endpoint refused the code");
                    AuthError::invalid("oauth: the code was refused (expired or used)")
                }
                RequestTokenError::Request(_) => {
                    AuthError::unavailable("oauth: token endpoint unreachable")
                }
                _ => AuthError::unavailable("oauth: token endpoint answered garbage"),
            })
    }

    async fn id_token_profile(
        &self,
        tokens: &Tokens,
        nonce: &str,
        issuer: &str,
    ) -> Result<Profile, AuthError> {
        let id_token = tokens
            .extra_fields()
            .id_token
            .as_deref()
            .ok_or_else(|| AuthError::invalid("oauth: no id_token"))?;
        let verifier = self
            .inner
            .id_tokens
            .as_ref()
            .ok_or_else(|| AuthError::invalid("oauth: no id_token verifier"))?;
        let ctx = verifier.verify(id_token).await?;
        let claims = ctx.claims().clone();
        let text = |k: &str| claims.get(k).and_then(Value::as_str);
        match text("nonce") {
            Some(n) if bool::from(n.as_bytes().ct_eq(nonce.as_bytes())) => {}
            _ => return Err(AuthError::invalid("oauth: id_token nonce mismatch")),
        }
        let several_audiences = claims
            .get("aud")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > 1);
        match text("azp") {
            Some(azp) if azp != self.inner.client_id => {
                return Err(AuthError::invalid("oauth: id_token azp is another client"));
            }
            None if several_audiences => {
                return Err(AuthError::invalid(
                    "oauth: id_token with several audiences lacks azp",
                ));
            }
            _ => {}
        }
        if let Some(at_hash) = text("at_hash") {
            let alg = header_alg(id_token)
                .ok_or_else(|| AuthError::invalid("oauth: bad id_token header"))?;
            let expected = left_half_hash(&alg, tokens.access_token().secret().as_bytes())
                .ok_or_else(|| AuthError::invalid("oauth: at_hash with an unknown algorithm"))?;
            if !bool::from(at_hash.as_bytes().ct_eq(expected.as_bytes())) {
                return Err(AuthError::invalid(
                    "oauth: at_hash does not match the access token",
                ));
            }
        }
        let email = match claims.get("email_verified") {
            Some(Value::Bool(true)) => text("email").map(str::to_owned),
            _ => None,
        };
        Ok(Profile {
            subject: ctx.subject().to_owned(),
            issuer: issuer.to_owned(),
            email,
            name: text("name").map(str::to_owned),
            access_token: tokens.access_token().secret().clone(),
            refresh_token: self.refresh_token(tokens),
            claims,
        })
    }

    fn refresh_token(&self, tokens: &Tokens) -> Option<String> {
        if self.inner.keep_refresh_token {
            tokens.refresh_token().map(|t| t.secret().clone())
        } else {
            None
        }
    }

    async fn github_get(&self, url: Url, token: &str) -> Result<Value, AuthError> {
        let resp = self
            .inner
            .http
            .get(url)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(ACCEPT, "application/vnd.github+json")
            .header(http::header::USER_AGENT, "portcullis")
            .send()
            .await
            .map_err(|_| AuthError::unavailable("oauth: user API unreachable"))?;
        if !resp.status().is_success() {
            return Err(AuthError::invalid("oauth: the user API refused the token"));
        }
        let body = read_capped(resp, MAX_RESPONSE_BYTES)
            .await
            .map_err(AuthError::unavailable)?;
        serde_json::from_slice(&body)
            .map_err(|_| AuthError::unavailable("oauth: user API answered garbage"))
    }

    async fn github_profile(&self, tokens: &Tokens, api: &Url) -> Result<Profile, AuthError> {
        let token = tokens.access_token().secret();
        let join =
            |path: &str| join(api, path).ok_or(AuthError::unavailable("oauth: bad user API URL"));
        let user = self.github_get(join("/user")?, token).await?;
        let Value::Object(claims) = user else {
            return Err(AuthError::unavailable("oauth: user API answered garbage"));
        };
        let subject = match claims.get("id") {
            Some(Value::Number(n)) if n.is_u64() => n.to_string(),
            _ => {
                return Err(AuthError::invalid(
                    "oauth: GitHub user without a numeric id",
                ));
            }
        };
        // The primary address, when verified (the profile's public e-mail may be anything).
        let emails = self.github_get(join("/user/emails")?, token).await.ok();
        let email = emails
            .as_ref()
            .and_then(Value::as_array)
            .and_then(|list| {
                list.iter().find(|e| {
                    e["primary"] == Value::Bool(true) && e["verified"] == Value::Bool(true)
                })
            })
            .and_then(|e| e["email"].as_str())
            .map(str::to_owned);
        Ok(Profile {
            subject,
            issuer: self.inner.provider.name.clone(),
            email,
            name: claims
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            access_token: token.clone(),
            refresh_token: self.refresh_token(tokens),
            claims,
        })
    }

    /// Ends the local session and redirects: to the provider's `end_session_endpoint`
    /// (RP-initiated logout) when it has one and a post-logout redirect is configured,
    /// else to `/`.
    ///
    /// # Errors
    /// The session store fails, or the request is a cross-site one (403).
    pub async fn logout(&self, sessions: &Sessions) -> Result<Response, AuthError> {
        let cookie = sessions.logout().await?;
        let target = match (&self.inner.provider.end_session, &self.inner.after_logout) {
            (Some(end), Some(after)) => {
                let mut url = end.clone();
                url.query_pairs_mut()
                    .append_pair("client_id", &self.inner.client_id)
                    .append_pair("post_logout_redirect_uri", after);
                url.to_string()
            }
            _ => "/".to_owned(),
        };
        Ok(redirect(&target, [cookie.header_value().clone()]))
    }
}

fn bad(reason: &'static str) -> AuthError {
    AuthError::malformed(reason)
        .with_message("This sign-in link is not valid any more; please start again.")
}

/// A 303 to `location` setting `cookies`.
fn redirect<const N: usize>(location: &str, cookies: [HeaderValue; N]) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(LOCATION, v);
    }
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    for c in cookies {
        res.headers_mut().append(SET_COOKIE, c);
    }
    res
}

/// The `alg` of a compact JWS header.
fn header_alg(token: &str) -> Option<String> {
    let header = URL_SAFE_NO_PAD.decode(token.split('.').next()?).ok()?;
    let v: Map<String, Value> = serde_json::from_slice(&header).ok()?;
    v.get("alg")?.as_str().map(str::to_owned)
}

/// OIDC `at_hash`: base64url of the left half of the hash `alg` names.
fn left_half_hash(alg: &str, data: &[u8]) -> Option<String> {
    let digest: Vec<u8> = match alg {
        "RS256" | "PS256" | "ES256" => Sha256::digest(data).to_vec(),
        "RS384" | "PS384" | "ES384" => Sha384::digest(data).to_vec(),
        "RS512" | "PS512" | "EdDSA" => Sha512::digest(data).to_vec(),
        _ => return None,
    };
    Some(URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2]))
}

/// The callback's parameters: each at most once, each bounded.
#[derive(Debug, Default)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

impl CallbackQuery {
    fn parse(query: &str) -> Result<Self, AuthError> {
        if query.len() > MAX_QUERY_BYTES {
            return Err(bad("oauth: callback query too large"));
        }
        let mut q = CallbackQuery::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if v.len() > MAX_PARAM_BYTES {
                return Err(bad("oauth: callback parameter too large"));
            }
            let slot = match &*k {
                "code" => &mut q.code,
                "state" => &mut q.state,
                "error" => &mut q.error,
                "iss" => &mut q.iss,
                _ => continue,
            };
            if slot.replace(v.into_owned()).is_some() {
                return Err(bad("oauth: repeated callback parameter"));
            }
        }
        Ok(q)
    }
}

async fn login_route(State(login): State<OAuthLogin>, parts: Parts) -> Result<Response, AuthError> {
    let query = parts.uri.query().unwrap_or("");
    if query.len() > MAX_QUERY_BYTES {
        return Err(bad("oauth: login query too large"));
    }
    let mut return_to = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k == "return_to" && return_to.replace(v).is_some() {
            return Err(bad("oauth: repeated return_to"));
        }
    }
    login.start(return_to.as_deref())
}

async fn callback_route(
    State(login): State<OAuthLogin>,
    sessions: Sessions,
    parts: Parts,
) -> Result<Response, AuthError> {
    login.finish(&parts, &sessions).await
}

async fn logout_route(
    State(login): State<OAuthLogin>,
    sessions: Sessions,
) -> Result<Response, AuthError> {
    login.logout(&sessions).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_follows_the_spec_example() {
        // OpenID Connect Core, appendix A.3: access token and at_hash of an RS256 ID token.
        assert_eq!(
            left_half_hash("RS256", b"jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y").as_deref(),
            Some("77QmUPtjPfzWtF2AnpK9RQ")
        );
        assert_eq!(left_half_hash("HS256", b"x"), None);
    }

    #[test]
    fn callback_query_rules() {
        assert!(CallbackQuery::parse("code=a&state=b").is_ok());
        assert!(CallbackQuery::parse("code=a&code=b&state=c").is_err());
        assert!(CallbackQuery::parse(&format!("code={}", "a".repeat(5000))).is_err());
        assert!(CallbackQuery::parse(&"a=b&".repeat(3000)).is_err());
        let q = CallbackQuery::parse("error=access_denied&state=s&other=1").unwrap();
        assert_eq!(q.error.as_deref(), Some("access_denied"));
    }
}
