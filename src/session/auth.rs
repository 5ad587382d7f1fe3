//! [`SessionAuth`]: session cookie → [`AuthContext`].

use std::fmt;
use std::sync::Arc;

use http::request::Parts;

use super::config::SessionConfig;
use super::cookie::session_key;
use super::store::SessionStore;
use super::timed::{timed, unavailable};
use crate::authenticator::Authenticator;
use crate::challenge::Challenge;
use crate::clock::unix_secs;
use crate::context::{AuthContext, Scheme};
use crate::error::AuthError;
use crate::http::cookies::cookie_value;

/// The session cookie authenticator; get it from
/// [`SessionManager::authenticator`](super::SessionManager::authenticator).
///
/// Order of checks: cross-site guard (403) → one well-formed cookie (401, no store
/// lookup for garbage, duplicates or oversize) → store lookup (503 when down or slow)
/// → idle and absolute expiry (401, expired record deleted) → sliding renewal, written
/// at most once per touch interval.
#[derive(Clone)]
pub struct SessionAuth {
    store: Arc<dyn SessionStore>,
    config: Arc<SessionConfig>,
}

impl fmt::Debug for SessionAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionAuth")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SessionAuth {
    pub(crate) fn new(store: Arc<dyn SessionStore>, config: Arc<SessionConfig>) -> Self {
        SessionAuth { store, config }
    }
}

impl Authenticator for SessionAuth {
    fn scheme(&self) -> Scheme {
        Scheme::Session
    }
    fn challenge(&self) -> Option<Challenge> {
        None
    }
    fn detect(&self, parts: &Parts) -> bool {
        !matches!(
            cookie_value(&parts.headers, &self.config.cookie_name),
            Ok(None)
        )
    }
    async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        let cfg = &*self.config;
        let wait = cfg.store_timeout;
        if cfg.csrf.is_cross_site(parts) {
            return Err(AuthError::cross_site());
        }
        let key = session_key(&parts.headers, cfg)?.ok_or_else(AuthError::missing)?;
        let key = key.as_str();
        // An in-process store lends its record at once; others are asked (and waited on).
        let rec = match self.store.load_now(key) {
            Some(lent) => lent.map_err(unavailable)?,
            None => timed(wait, self.store.load(key)).await?.map(Arc::new),
        };
        let mut rec = rec.ok_or_else(|| AuthError::invalid("session: unknown"))?;
        let now = unix_secs();
        if rec.is_expired(now) {
            let _ = timed(wait, self.store.delete(key)).await;
            return Err(AuthError::invalid("session: expired"));
        }
        if now.saturating_sub(rec.touched_at) >= cfg.touch_interval.as_secs() {
            let idle = now + cfg.idle_timeout.as_secs();
            timed(wait, self.store.touch(key, now, idle)).await?;
            Arc::make_mut(&mut rec).touch(now, idle);
        }
        Ok(rec.context())
    }
}
