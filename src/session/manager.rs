//! [`SessionManager`]: log in, log out, rotate, log out everywhere.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value};

use super::auth::SessionAuth;
use super::config::SessionConfig;
use super::cookie::{SessionCookie, session_key};
use super::id::{IdHash, new_id_for};
use super::new_session::NewSession;
use super::store::{SessionRecord, SessionStore, WRITE_TRIES};
use super::timed::{timed, unavailable};
use crate::StoreError;
use crate::clock::unix_secs;
use crate::error::AuthError;

/// Owns a store and a config; hands out the [`SessionAuth`] authenticator and serves
/// the [`Sessions`](super::Sessions) extractor (add it to the router with `axum::Extension(manager)`).
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
        SessionAuth::new(self.store.clone(), self.config.clone())
    }
    /// True when the store answers a lookup within the store timeout (for a readiness
    /// probe).
    pub async fn ready(&self) -> bool {
        let probe = "0".repeat(64);
        self.timed("ready", self.store.load(&probe)).await.is_ok()
    }
    /// The config.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub(crate) async fn timed<T>(
        &self,
        op: &'static str,
        f: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, AuthError> {
        timed(op, self.config.store_timeout, f).await
    }

    /// The session the request carries, if its cookie is well-formed.
    fn current_id_hash(&self, headers: &HeaderMap) -> Option<IdHash> {
        session_key(headers, &self.config).ok().flatten()
    }

    async fn start(
        &self,
        new: NewSession,
        absolute_expires_at: Option<u64>,
    ) -> Result<SessionCookie, AuthError> {
        let now = unix_secs();
        let (id, hash) = new_id_for(&new.subject).map_err(unavailable)?;
        let absolute = absolute_expires_at.unwrap_or(now + self.config.absolute_timeout.as_secs());
        let mut record = SessionRecord::new(
            hash.as_str().to_owned(),
            new.subject,
            now,
            now + self.config.idle_timeout.as_secs(),
            absolute,
        );
        record.roles = new.roles;
        record.tenant = new.tenant;
        record.email = new.email;
        record.issuer = new.issuer;
        record.provider = new.provider_session;
        record.data = new.data;
        self.timed("create", self.store.create(&record)).await?;
        self.cookie_for(&id, absolute, now)
    }

    /// The `Set-Cookie` carrying `id` until `absolute`.
    fn cookie_for(&self, id: &str, absolute: u64, now: u64) -> Result<SessionCookie, AuthError> {
        let cookie = self
            .config
            .set_cookie(id, Duration::from_secs(absolute.saturating_sub(now)));
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
            self.timed("delete", self.store.delete(old.as_str()))
                .await?;
        }
        self.start(new, None).await
    }

    /// Logs out: deletes the session server-side and clears the cookie (same attributes).
    pub async fn logout(&self, request_headers: &HeaderMap) -> Result<SessionCookie, AuthError> {
        if let Some(old) = self.current_id_hash(request_headers) {
            self.timed("delete", self.store.delete(old.as_str()))
                .await?;
        }
        HeaderValue::from_str(&self.config.removal_cookie())
            .map(SessionCookie)
            .map_err(|_| AuthError::unavailable("cookie encoding"))
    }

    /// Gives the current session a new id; the old id stops working. Only the id
    /// changes: data, roles, creation time (which subject revocations compare), last
    /// refresh (so the refresh hook stays due on time) and both expiries move with it,
    /// in one store step. 401 when the session ended meanwhile (a logout, a logout
    /// everywhere): a rotation never brings back a deleted session.
    pub async fn rotate(&self, request_headers: &HeaderMap) -> Result<SessionCookie, AuthError> {
        let rec = self.current_record(request_headers).await?;
        let (id, new_hash) = new_id_for(&rec.subject).map_err(unavailable)?;
        if !self
            .timed("rotate", self.store.rotate(&rec, new_hash.as_str()))
            .await?
        {
            return Err(AuthError::invalid("session: ended meanwhile"));
        }
        self.cookie_for(&id, rec.absolute_expires_at, unix_secs())
    }

    /// Changes the data of the session the request carries (through `change`) and
    /// writes it back, only if the session still exists: 401 when there is none or it
    /// ended meanwhile. A write that raced another one is applied again to the newer
    /// record (so `change` may run more than once), never over it. The data shows in
    /// the context's claims from the next request on.
    pub async fn update_data(
        &self,
        request_headers: &HeaderMap,
        mut change: impl FnMut(&mut Map<String, Value>),
    ) -> Result<(), AuthError> {
        for _ in 0..WRITE_TRIES {
            let mut rec = self.current_record(request_headers).await?;
            change(&mut rec.data);
            rec.changed();
            if self.timed("replace", self.store.replace(&rec)).await? {
                return Ok(());
            }
        }
        Err(AuthError::unavailable(
            "session: too many concurrent writes",
        ))
    }

    /// The live record of the session the request carries (401 when none).
    pub(crate) async fn current_record(
        &self,
        request_headers: &HeaderMap,
    ) -> Result<SessionRecord, AuthError> {
        let key = session_key(request_headers, &self.config)?.ok_or_else(AuthError::missing)?;
        self.timed("load", self.store.load(key.as_str()))
            .await?
            .filter(|r| !r.is_expired(unix_secs()))
            .ok_or_else(|| AuthError::invalid("session: unknown or expired"))
    }

    /// Deletes every session of `subject` (all devices); returns how many.
    pub async fn logout_everywhere(&self, subject: &str) -> Result<u64, AuthError> {
        let n = self
            .timed("delete_all", self.store.delete_all_for_subject(subject))
            .await?;
        Ok(n)
    }
}
