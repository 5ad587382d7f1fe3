//! [`SessionManager`] and the [`Sessions`] extractor: log in, log out, rotate, log out everywhere.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
use http::header::{COOKIE, SET_COOKIE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value};

use super::auth::SessionAuth;
use super::config::SessionConfig;
use super::id::{IdHash, hash_id, new_id};
use super::store::{SessionRecord, SessionStore, StoreError};
use crate::clock::unix_secs;
use crate::error::AuthError;
use crate::http::cookies::cookie_value;

/// Owns a store and a config; hands out the [`SessionAuth`] authenticator and serves
/// the [`Sessions`] extractor (add it to the router with `axum::Extension(manager)`).
///
/// ```
/// use axum::{Extension, Router, routing::post};
/// use portcullis::session::{MemoryStore, SessionConfig, SessionManager};
///
/// let manager = SessionManager::new(MemoryStore::new(), SessionConfig::default());
/// let app: Router = Router::new()
///     .route("/logout", post(|s: portcullis::session::Sessions| async move { s.logout().await }))
///     .layer(Extension(manager));
/// ```
#[derive(Clone)]
pub struct SessionManager {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) config: Arc<SessionConfig>,
}

impl fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What a new session carries into its contexts.
///
/// ```
/// use portcullis::session::NewSession;
/// let s = NewSession::new("alice").with_roles(["admin"]).with_tenant("acme").with_data("theme", "dark");
/// # let _ = s;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct NewSession {
    subject: String,
    roles: Vec<String>,
    tenant: Option<String>,
    email: Option<String>,
    data: Map<String, Value>,
}

impl NewSession {
    /// A session for `subject`.
    pub fn new(subject: impl Into<String>) -> Self {
        NewSession {
            subject: subject.into(),
            roles: Vec::new(),
            tenant: None,
            email: None,
            data: Map::new(),
        }
    }
    /// Roles.
    pub fn with_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }
    /// Tenant.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }
    /// E-mail.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }
    /// One custom value (becomes a claim of the context).
    pub fn with_data(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.data.insert(key.into(), value.into());
        self
    }
}

/// A `Set-Cookie` to send: use it as a response part (`(cookie, Json(..))`) or alone.
#[derive(Debug, Clone)]
#[must_use]
pub struct SessionCookie(HeaderValue);

impl SessionCookie {
    /// The header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
    /// The `name=value` part: what a client sends back in its `Cookie` header.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use portcullis::session::{MemoryStore, NewSession, SessionConfig, SessionManager};
    /// let m = SessionManager::new(MemoryStore::new(), SessionConfig::default());
    /// let cookie = m.login(&http::HeaderMap::new(), NewSession::new("alice")).await.unwrap();
    /// assert!(cookie.pair().starts_with("__Host-session="));
    /// # });
    /// ```
    pub fn pair(&self) -> &str {
        self.0
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .unwrap_or_default()
    }
}

impl IntoResponseParts for SessionCookie {
    type Error = std::convert::Infallible;
    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.headers_mut().append(SET_COOKIE, self.0);
        Ok(res)
    }
}

impl IntoResponse for SessionCookie {
    fn into_response(self) -> Response {
        (self, http::StatusCode::NO_CONTENT).into_response()
    }
}

fn unavailable(e: StoreError) -> AuthError {
    tracing::warn!(error = %e, "session store failed");
    AuthError::unavailable("session store unavailable")
}

impl SessionManager {
    /// A manager over `store` with `config`.
    pub fn new(store: impl SessionStore, config: SessionConfig) -> Self {
        Self::from_arc(Arc::new(store), config)
    }
    /// A manager over a shared store.
    pub fn from_arc(store: Arc<dyn SessionStore>, config: SessionConfig) -> Self {
        SessionManager {
            store,
            config: Arc::new(config),
        }
    }
    /// The authenticator for [`AuthLayer`](crate::AuthLayer).
    pub fn authenticator(&self) -> SessionAuth {
        SessionAuth::new(self.clone())
    }
    /// The config.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub(crate) async fn timed<T>(
        &self,
        f: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, AuthError> {
        let mut f = pin!(f);
        // A store that answers at once (the memory store) never arms a timer. The first
        // poll gets this task's waker, so a pending store is woken as usual.
        let first = poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx))).await;
        let result = match first {
            Poll::Ready(r) => Ok(r),
            Poll::Pending => tokio::time::timeout(self.config.store_timeout, f).await,
        };
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable(StoreError::new("timed out"))),
        }
    }

    fn current_id_hash(&self, headers: &HeaderMap) -> Option<IdHash> {
        let raw = cookie_value(headers, &self.config.cookie_name).ok()??;
        self.config.id_from_cookie(raw).map(hash_id)
    }

    async fn start(
        &self,
        new: NewSession,
        absolute_expires_at: Option<u64>,
    ) -> Result<SessionCookie, AuthError> {
        let now = unix_secs();
        let id = new_id().map_err(unavailable)?;
        let absolute = absolute_expires_at.unwrap_or(now + self.config.absolute_timeout.as_secs());
        let record = SessionRecord {
            id_hash: hash_id(&id).as_str().to_owned(),
            subject: new.subject,
            roles: new.roles,
            tenant: new.tenant,
            email: new.email,
            data: new.data,
            created_at: now,
            touched_at: now,
            idle_expires_at: (now + self.config.idle_timeout.as_secs()).min(absolute),
            absolute_expires_at: absolute,
        };
        self.timed(self.store.create(&record)).await?;
        let cookie = self
            .config
            .set_cookie(&id, Duration::from_secs(absolute.saturating_sub(now)));
        HeaderValue::from_str(&cookie)
            .map(SessionCookie)
            .map_err(|_| AuthError::unavailable("cookie encoding"))
    }

    /// Logs in: ends the session the request already carries (fixation), starts a new one.
    pub async fn login(
        &self,
        request_headers: &HeaderMap,
        new: NewSession,
    ) -> Result<SessionCookie, AuthError> {
        if let Some(old) = self.current_id_hash(request_headers) {
            self.timed(self.store.delete(old.as_str())).await?;
        }
        self.start(new, None).await
    }

    /// Logs out: deletes the session server-side and clears the cookie (same attributes).
    pub async fn logout(&self, request_headers: &HeaderMap) -> Result<SessionCookie, AuthError> {
        if let Some(old) = self.current_id_hash(request_headers) {
            self.timed(self.store.delete(old.as_str())).await?;
        }
        HeaderValue::from_str(&self.config.removal_cookie())
            .map(SessionCookie)
            .map_err(|_| AuthError::unavailable("cookie encoding"))
    }

    /// Gives the current session a new id (same data, same absolute expiry); the old id stops working.
    pub async fn rotate(&self, request_headers: &HeaderMap) -> Result<SessionCookie, AuthError> {
        let old = self
            .current_id_hash(request_headers)
            .ok_or_else(|| AuthError::invalid("session: no session to rotate"))?;
        let rec = self
            .timed(self.store.load(old.as_str()))
            .await?
            .filter(|r| !r.is_expired(unix_secs()))
            .ok_or_else(|| AuthError::invalid("session: unknown or expired"))?;
        self.timed(self.store.delete(old.as_str())).await?;
        let mut new = NewSession::new(rec.subject).with_roles(rec.roles);
        new.tenant = rec.tenant;
        new.email = rec.email;
        new.data = rec.data;
        self.start(new, Some(rec.absolute_expires_at)).await
    }

    /// Deletes every session of `subject` (all devices); returns how many.
    pub async fn logout_everywhere(&self, subject: &str) -> Result<u64, AuthError> {
        self.timed(self.store.delete_all_for_subject(subject)).await
    }
}

/// Extractor for handlers that change sessions. Refuses (403) when the request is a
/// cross-site unsafe request (login and logout CSRF), and 500s with a log line when no
/// `Extension(SessionManager)` is installed.
///
/// ```
/// use axum::Json;
/// use portcullis::session::{NewSession, Sessions};
/// use portcullis::AuthError;
///
/// async fn login(sessions: Sessions) -> Result<impl axum::response::IntoResponse, AuthError> {
///     // ... check the password first ...
///     let cookie = sessions.login(NewSession::new("alice").with_roles(["admin"])).await?;
///     Ok((cookie, Json(serde_json::json!({"ok": true}))))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Sessions {
    manager: SessionManager,
    cookies: HeaderMap,
    cross_site: bool,
}

impl Sessions {
    fn guard(&self) -> Result<(), AuthError> {
        if self.cross_site {
            Err(AuthError::cross_site())
        } else {
            Ok(())
        }
    }
    /// See [`SessionManager::login`].
    pub async fn login(&self, new: NewSession) -> Result<SessionCookie, AuthError> {
        self.guard()?;
        self.manager.login(&self.cookies, new).await
    }
    /// See [`SessionManager::logout`].
    pub async fn logout(&self) -> Result<SessionCookie, AuthError> {
        self.guard()?;
        self.manager.logout(&self.cookies).await
    }
    /// See [`SessionManager::rotate`].
    pub async fn rotate(&self) -> Result<SessionCookie, AuthError> {
        self.guard()?;
        self.manager.rotate(&self.cookies).await
    }
    /// See [`SessionManager::logout_everywhere`].
    pub async fn logout_everywhere(&self, subject: &str) -> Result<u64, AuthError> {
        self.guard()?;
        self.manager.logout_everywhere(subject).await
    }
    /// The manager.
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }
}

/// Rejection when [`Sessions`] is used without `Extension(SessionManager)`.
#[derive(Debug)]
#[non_exhaustive]
pub struct MissingSessionManager;

impl IntoResponse for MissingSessionManager {
    fn into_response(self) -> Response {
        tracing::error!("Sessions extractor used without Extension(SessionManager) on the router");
        http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Sessions {
    type Rejection = MissingSessionManager;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let manager = parts
            .extensions
            .get::<SessionManager>()
            .cloned()
            .ok_or(MissingSessionManager)?;
        let mut cookies = HeaderMap::new();
        for v in parts.headers.get_all(COOKIE) {
            cookies.append(COOKIE, v.clone());
        }
        let cross_site = manager.config.csrf.is_cross_site(parts);
        Ok(Sessions {
            manager,
            cookies,
            cross_site,
        })
    }
}
