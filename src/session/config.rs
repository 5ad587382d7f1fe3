//! [`SessionConfig`]: cookie attributes, lifetimes and guards, with secure defaults.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cookie::{Cookie, SameSite};

use crate::authenticator::BoxFuture;
use crate::context::AuthContext;
use crate::error::AuthError;
use crate::http::csrf::CsrfGuard;
use crate::http::signed_cookie;

/// What signed session cookies are signed for (part of every tag).
const SIGNING_PURPOSE: &str = "portcullis-session";

/// Cookie and lifetime settings. Defaults: cookie `__Host-session`; `Secure`,
/// `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`; 30 min idle timeout with sliding
/// renewal written at most once a minute; 12 h absolute lifetime that sliding never
/// extends; 2 s store timeout; cookies over 512 bytes refused; CSRF guard on.
///
/// ```
/// use std::time::Duration;
/// use portcullis::session::SessionConfig;
/// let config = SessionConfig::default()
///     .with_idle_timeout(Duration::from_secs(15 * 60))
///     .with_absolute_timeout(Duration::from_secs(8 * 3600));
/// let dev = SessionConfig::default().with_insecure_dev_cookie(); // plain http on localhost
/// # let _ = (config, dev);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    pub(crate) cookie_name: String,
    pub(crate) secure: bool,
    pub(crate) same_site: SameSite,
    pub(crate) idle_timeout: Duration,
    pub(crate) absolute_timeout: Duration,
    pub(crate) touch_interval: Duration,
    pub(crate) store_timeout: Duration,
    pub(crate) max_cookie_bytes: usize,
    pub(crate) signing_key: Option<std::sync::Arc<[u8]>>,
    pub(crate) csrf: CsrfGuard,
    pub(crate) refresh: Option<Refresh>,
    pub(crate) revocations: Option<crate::revocation::Revocations>,
    pub(crate) limiter: Option<crate::limit::AttemptLimiter>,
}

/// What [`SessionConfig::with_refresh`] calls: the session's current context in, the
/// roles it should have now out (`None` ends the session).
type RefreshHook =
    dyn Fn(AuthContext) -> BoxFuture<'static, Result<Option<Vec<String>>, AuthError>> + Send + Sync;

#[derive(Clone)]
pub(crate) struct Refresh {
    pub(crate) every: Duration,
    pub(crate) hook: Arc<RefreshHook>,
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("cookie_name", &self.cookie_name)
            .field("secure", &self.secure)
            .field("idle_timeout", &self.idle_timeout)
            .field("absolute_timeout", &self.absolute_timeout)
            .field("signed", &self.signing_key.is_some())
            .field("refresh_every", &self.refresh.as_ref().map(|r| r.every))
            .finish_non_exhaustive()
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            cookie_name: "__Host-session".into(),
            secure: true,
            same_site: SameSite::Lax,
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            touch_interval: Duration::from_secs(60),
            store_timeout: Duration::from_secs(2),
            max_cookie_bytes: 512,
            signing_key: None,
            csrf: CsrfGuard::default(),
            refresh: None,
            revocations: None,
            limiter: None,
        }
    }
}

impl SessionConfig {
    /// Cookie name (default `__Host-session`). A `__Host-` name forces `Secure`,
    /// `Path=/` and no `Domain`.
    ///
    /// ```
    /// use portcullis::session::SessionConfig;
    /// let config = SessionConfig::default().with_cookie_name("__Host-app")?;
    /// assert_eq!(config.cookie_name(), "__Host-app");
    /// assert!(SessionConfig::default().with_cookie_name("my session").is_err());
    /// # Ok::<(), portcullis::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// `name` is empty, longer than 64 bytes or not an RFC 9110 token (spaces, `;`,
    /// `=`, quotes): a browser would not send it back as one cookie.
    pub fn with_cookie_name(mut self, name: &str) -> Result<Self, crate::ConfigError> {
        if !crate::http::cookies::is_token(name) {
            return Err(crate::ConfigError::new(format!(
                "not a cookie name: {name:?}"
            )));
        }
        self.cookie_name = name.to_owned();
        Ok(self)
    }
    /// For plain `http://localhost` during development: drops `Secure` and the `__Host-` prefix.
    pub fn with_insecure_dev_cookie(mut self) -> Self {
        self.secure = false;
        if let Some(rest) = self.cookie_name.strip_prefix("__Host-") {
            self.cookie_name = rest.to_owned();
        }
        self
    }
    /// `SameSite=Strict` instead of `Lax`.
    pub fn with_same_site_strict(mut self) -> Self {
        self.same_site = SameSite::Strict;
        self
    }
    /// Idle timeout (sliding).
    pub fn with_idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }
    /// Absolute lifetime (never extended).
    pub fn with_absolute_timeout(mut self, d: Duration) -> Self {
        self.absolute_timeout = d;
        self
    }
    /// Write the sliding renewal to the store at most this often.
    pub fn with_touch_interval(mut self, d: Duration) -> Self {
        self.touch_interval = d;
        self
    }
    /// Per-operation store timeout (then 503).
    pub fn with_store_timeout(mut self, d: Duration) -> Self {
        self.store_timeout = d;
        self
    }
    /// Re-check every live session at most once per `every`: `hook` gets the session's
    /// context and answers the roles it should hold now (`Ok(Some(roles))`), that it
    /// must end (`Ok(None)`: deleted, 401), or an error (that status, the session kept).
    /// A role change or a disabled account then reaches sessions within `every`, at the
    /// cost of one hook call per session per interval.
    ///
    /// ```
    /// use std::time::Duration;
    /// use portcullis::{AuthContext, AuthError, session::SessionConfig};
    /// let config = SessionConfig::default().with_refresh(Duration::from_secs(60), |ctx: AuthContext| async move {
    ///     // Look the user up again (a database in a real app).
    ///     Ok::<_, AuthError>((ctx.subject() != "disabled").then(|| vec!["member".to_owned()]))
    /// });
    /// # let _ = config;
    /// ```
    pub fn with_refresh<F, Fut>(mut self, every: Duration, hook: F) -> Self
    where
        F: Fn(AuthContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<Vec<String>>, AuthError>> + Send + 'static,
    {
        self.refresh = Some(Refresh {
            every,
            hook: Arc::new(move |ctx| Box::pin(hook(ctx))),
        });
        self
    }
    /// Refuse sessions revoked in `revocations` (one session, or every session of a
    /// subject created before a time), checked on every request.
    pub fn with_revocations(mut self, revocations: crate::revocation::Revocations) -> Self {
        self.revocations = Some(revocations);
        self
    }
    /// Limit unknown and expired session cookies per client with `limiter` (its
    /// [credential limits](crate::limit::AttemptLimiter::with_credential_limits)): a
    /// client past them gets 429 before its next cookie costs a store lookup. Only
    /// cookies looked up in the store count; a session served from memory (the memory
    /// store, a [`CachingStore`](super::CachingStore)) never touches the limiter.
    pub fn with_limiter(mut self, limiter: crate::limit::AttemptLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }
    /// Sign cookie values with HMAC-SHA256 over the cookie name and the id, with a key of
    /// at least 32 bytes: a value minted for one cookie name is refused under another.
    pub fn with_signing_key(mut self, key: &[u8]) -> Result<Self, crate::ConfigError> {
        if key.len() < 32 {
            return Err(crate::ConfigError::new(
                "signing key needs at least 32 bytes",
            ));
        }
        self.signing_key = Some(key.into());
        Ok(self)
    }

    /// Replace the cross-site request guard (e.g. to trust another origin).
    pub fn with_csrf_guard(mut self, guard: CsrfGuard) -> Self {
        self.csrf = guard;
        self
    }
    /// The cookie name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    fn base_cookie(&self, value: String) -> Cookie<'static> {
        let host_prefixed = self.cookie_name.starts_with("__Host-");
        Cookie::build((self.cookie_name.clone(), value))
            .http_only(true)
            .secure(self.secure || host_prefixed)
            .same_site(self.same_site)
            .path("/")
            .build()
    }

    /// The `Set-Cookie` value for a new session id living `max_age`.
    pub(crate) fn set_cookie(&self, id: &str, max_age: Duration) -> String {
        let value = match &self.signing_key {
            Some(key) => signed_cookie::sign(key, SIGNING_PURPOSE, &self.cookie_name, id),
            None => id.to_owned(),
        };
        let mut c = self.base_cookie(value);
        c.set_max_age(cookie::time::Duration::seconds(max_age.as_secs() as i64));
        c.to_string()
    }

    /// The `Set-Cookie` value that clears the cookie (same attributes, `Max-Age=0`).
    pub(crate) fn removal_cookie(&self) -> String {
        let mut c = self.base_cookie(String::new());
        c.set_max_age(cookie::time::Duration::ZERO);
        c.set_expires(cookie::time::OffsetDateTime::UNIX_EPOCH);
        c.to_string()
    }

    /// The session id a cookie value carries: within the size limit and, when signing is
    /// on, under a valid signature. Its form is the caller's to check
    /// ([`is_well_formed`](super::id::is_well_formed)).
    pub(crate) fn id_from_cookie<'a>(&self, raw: &'a [u8]) -> Option<&'a [u8]> {
        if raw.len() > self.max_cookie_bytes {
            return None;
        }
        match &self.signing_key {
            Some(key) => signed_cookie::verify(key, SIGNING_PURPOSE, &self.cookie_name, raw),
            None => Some(raw),
        }
    }
}
