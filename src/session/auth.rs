//! [`SessionAuth`]: session cookie → [`AuthContext`].

use std::fmt;
use std::sync::Arc;

use http::request::Parts;

use super::config::SessionConfig;
use super::cookie::{malformed, session_cookie, session_id};
use super::id::{IdHash, hash_id, is_well_formed};
use super::store::{SessionRecord, SessionStore, WRITE_TRIES};
use super::timed::{timed, unavailable};
use crate::authenticator::{Authenticator, Check};
use crate::challenge::Challenge;
use crate::clock::unix_secs;
use crate::context::{AuthContext, Scheme};
use crate::error::AuthError;
use crate::http::cookies::BadCookie;
use crate::limit::AttemptLimiter;

/// The session cookie authenticator; get it from
/// [`SessionManager::authenticator`](super::SessionManager::authenticator).
///
/// Order of checks: cross-site guard (403) → one cookie, within the size limit and
/// signed when signing is on (401) → a well-formed id (401; garbage never reaches a
/// store that waits, and a store holding records in process memory is asked first, as a
/// record found under the id's hash proves its form) → store lookup (503 when down or
/// slow) → idle and absolute expiry (401, expired record deleted) → sliding renewal,
/// written at most once per touch interval.
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
    type Credential = PresentedSession;
    fn scheme(&self) -> Scheme {
        Scheme::Session
    }
    fn challenge(&self) -> Option<Challenge> {
        None
    }
    fn check(&self, parts: &Parts) -> Check<PresentedSession> {
        let cookie = session_cookie(&parts.headers, &self.config);
        if cookie == Ok(None) {
            return Check::Absent;
        }
        match self.lend(parts, cookie) {
            Ok(Lent::Admitted(ctx)) => Check::Ready(self.admit(ctx)),
            Ok(Lent::Waiting(waiting)) => Check::Pending(PresentedSession(waiting)),
            Err(e) => Check::Ready(Err(e)),
        }
    }
    async fn authenticate(
        &self,
        presented: PresentedSession,
        parts: &Parts,
    ) -> Result<AuthContext, AuthError> {
        let key = match presented.0 {
            Waiting::Stale(key, rec, now) => {
                return Box::pin(self.finish(key, Some(rec), now)).await;
            }
            Waiting::NotHeld(key) => key,
        };
        // Boxed apart, so the future the layer boxes for a request stays small.
        let check = self.finish(key, None, unix_secs());
        Box::pin(AttemptLimiter::credential_check(
            self.config.limiter.as_ref(),
            parts,
            check,
        ))
        .await
    }
}

/// The session a request presented to [`SessionAuth`], as its
/// [`check`](Authenticator::check) found it, for the store step that waits.
pub struct PresentedSession(Waiting);

impl fmt::Debug for PresentedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedSession").finish_non_exhaustive()
    }
}

/// What waits on the store.
enum Waiting {
    /// A lent record that is expired or due for a touch or a refresh.
    Stale(IdHash, Arc<SessionRecord>, u64),
    /// The store does not hold records in process memory: look it up.
    NotHeld(IdHash),
}

/// What the checks that need no waiting found.
enum Lent {
    /// A live record, lent by the store, that needs no write: its context.
    Admitted(AuthContext),
    /// The rest waits on the store.
    Waiting(Waiting),
}

impl SessionAuth {
    /// The cross-site guard, the session cookie (as read with [`session_cookie`]), and
    /// the record when the store lends it.
    fn lend(
        &self,
        parts: &Parts,
        cookie: Result<Option<&[u8]>, BadCookie>,
    ) -> Result<Lent, AuthError> {
        let cfg = &*self.config;
        if cfg.csrf.is_cross_site(parts) {
            return Err(AuthError::cross_site());
        }
        let id = session_id(cookie, cfg)?.ok_or_else(AuthError::missing)?;
        let key = hash_id(id);
        // A record found under the id's hash proves the id well-formed (only such ids
        // are stored); every other way on checks the form first.
        let Some(lent) = self.store.load_now(key.as_str()) else {
            if !is_well_formed(id) {
                return Err(malformed());
            }
            return Ok(Lent::Waiting(Waiting::NotHeld(key)));
        };
        let rec = match lent {
            Ok(Some(rec)) => rec,
            _ if !is_well_formed(id) => return Err(malformed()),
            Ok(None) => return Err(AuthError::invalid("session: unknown")),
            Err(e) => return Err(unavailable(e)),
        };
        let now = unix_secs();
        if rec.is_expired(now) || self.due_for_touch(&rec, now) || self.due_for_refresh(&rec, now) {
            return Ok(Lent::Waiting(Waiting::Stale(key, rec, now)));
        }
        Ok(Lent::Admitted(rec.context()))
    }
}

impl SessionAuth {
    /// `ctx`, unless its session or subject is revoked.
    fn admit(&self, ctx: AuthContext) -> Result<AuthContext, AuthError> {
        match &self.config.revocations {
            Some(r) => r.check_session(&ctx).map(|()| ctx),
            None => Ok(ctx),
        }
    }
}

/// The idle expiry a touch at `now` sets.
fn idle_until(cfg: &SessionConfig, now: u64) -> u64 {
    now + cfg.idle_timeout.as_secs()
}

impl SessionAuth {
    fn due_for_touch(&self, rec: &SessionRecord, now: u64) -> bool {
        now.saturating_sub(rec.touched_at) >= self.config.touch_interval.as_secs()
    }
    fn due_for_refresh(&self, rec: &SessionRecord, now: u64) -> bool {
        self.config
            .refresh
            .as_ref()
            .is_some_and(|r| now.saturating_sub(rec.refreshed_at) >= r.every.as_secs())
    }

    /// The path that waits on the store: loading (unless lent), deleting an expired
    /// record, sliding the idle expiry, refreshing the roles. Every write is a
    /// compare-and-set on the record's version: it writes only the fields this path
    /// owns (roles, refresh time, expiries) over the newest record, never an old copy
    /// over a change made meanwhile.
    async fn finish(
        &self,
        key: IdHash,
        lent: Option<Arc<SessionRecord>>,
        now: u64,
    ) -> Result<AuthContext, AuthError> {
        let cfg = &*self.config;
        let wait = cfg.store_timeout;
        let key = key.as_str();
        let rec = match lent {
            Some(rec) => Some(rec),
            None => timed("load", wait, self.store.load(key))
                .await?
                .map(Arc::new),
        };
        let mut rec = rec.ok_or_else(|| AuthError::invalid("session: unknown"))?;
        if rec.is_expired(now) {
            let _ = timed("delete", wait, self.store.delete(key)).await;
            return Err(AuthError::invalid("session: expired"));
        }
        let Some(refresh) = cfg
            .refresh
            .as_ref()
            .filter(|_| self.due_for_refresh(&rec, now))
        else {
            if self.due_for_touch(&rec, now) {
                Arc::make_mut(&mut rec).touch(now, idle_until(cfg, now));
                // Lost to a concurrent write, the touch is skipped: the next request
                // slides the expiry.
                timed("touch", wait, self.store.replace(&rec)).await?;
            }
            return self.admit(rec.context());
        };
        let Some(roles) = (refresh.hook)(rec.build_context()).await? else {
            let _ = timed("delete", wait, self.store.delete(key)).await;
            return Err(AuthError::invalid("session: ended by the refresh hook"));
        };
        for _ in 0..WRITE_TRIES {
            let r = Arc::make_mut(&mut rec);
            r.roles.clone_from(&roles);
            r.refreshed_at = now;
            r.touch(now, idle_until(cfg, now));
            if timed("replace", wait, self.store.replace(&rec)).await? {
                return self.admit(rec.context());
            }
            // Changed (or ended) while the hook ran: apply the refresh to what is there now.
            rec = match timed("load", wait, self.store.load(key)).await? {
                Some(r) if !r.is_expired(now) => Arc::new(r),
                _ => return Err(AuthError::invalid("session: ended meanwhile")),
            };
        }
        Err(AuthError::unavailable(
            "session: too many concurrent writes",
        ))
    }
}
