//! [`OAuthLogin`]: authorization code + PKCE + `state` (+ `nonce`), ending in a session.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use http::header::{LOCATION, SET_COOKIE};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use oauth2::{AuthUrl, ClientId, ClientSecret, RedirectUrl, TokenUrl};
use reqwest::{Client, Url};
use serde_json::Value;
use subtle::ConstantTimeEq;

mod backchannel;
mod callback;
mod routes;
mod start;
mod tokens;

use self::callback::CallbackQuery;
use self::tokens::OAuthClient;
use super::pending::Pending;
use super::profile::Profile;
use super::provider::{Identity, OAuthProvider};
use crate::clock::unix_secs;
use crate::error::{AuthError, ConfigError};
use crate::http::cookies::cookie_value;
use crate::jwt::{Issuer, JwtVerifier, Validation};
use crate::resource::ReplayCache;
use crate::session::{NewSession, ProviderSession, Sessions};

/// How long a started login may take before its callback is refused.
const PENDING_SECS: u64 = 600;
/// Largest callback query accepted, and largest single parameter.
const MAX_QUERY_BYTES: usize = 8 * 1024;
const MAX_PARAM_BYTES: usize = 4 * 1024;

/// Turns a verified profile into a session, or refuses the login.
type Hook = Arc<dyn Fn(Profile) -> BoxFuture<'static, Result<NewSession, AuthError>> + Send + Sync>;

#[derive(Clone)]
pub(super) struct Inner {
    pub(super) provider: OAuthProvider,
    client: OAuthClient,
    pub(super) client_id: String,
    redirect: Url,
    http: Client,
    /// The provider's egress size cap and timeout, for the token and user API calls
    /// (set on each request, so they bound a client you built too).
    max_response_bytes: usize,
    timeout: std::time::Duration,
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
        let redirect = crate::egress::check_url(redirect_uri, false).map_err(|_| {
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
        let http = provider.options.egress.client_without_redirects()?;
        let max_response_bytes = provider.options.egress.max_response_bytes;
        let timeout = provider.options.egress.timeout;
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
                    self::backchannel::MAX_AGE_SECS,
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
                max_response_bytes,
                timeout,
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
