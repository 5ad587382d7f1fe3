//! [`SessionCookie`], and reading the session id back out of a request's cookies.

use axum::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue};

use super::config::SessionConfig;
use super::id::{IdHash, hash_id, is_well_formed};
use crate::error::AuthError;
use crate::http::cookies::{BadCookie, cookie_bytes};

/// The store key of the session a request's cookies name: the one cookie of the
/// configured name, its signature checked, its id well-formed, hashed. `Ok(None)` when
/// there is no such cookie; an error (401) for a duplicated, oversized, forged or
/// malformed one, found without touching the store.
pub(crate) fn session_key(
    headers: &HeaderMap,
    config: &SessionConfig,
) -> Result<Option<IdHash>, AuthError> {
    let Some(id) = session_id(session_cookie(headers, config), config)? else {
        return Ok(None);
    };
    if !is_well_formed(id) {
        return Err(malformed());
    }
    Ok(Some(hash_id(id)))
}

/// The raw value of the session cookie, as [`cookie_bytes`] reads it.
pub(crate) fn session_cookie<'a>(
    headers: &'a HeaderMap,
    config: &SessionConfig,
) -> Result<Option<&'a [u8]>, BadCookie> {
    cookie_bytes(headers, &config.cookie_name)
}

/// The session id in a cookie read with [`session_cookie`]: one cookie, within the size
/// limit, its signature checked. Its form is not checked: the caller checks it with
/// [`is_well_formed`] before a store sees its hash, or finds a record under that hash
/// (which only a well-formed id can have).
pub(crate) fn session_id<'a>(
    cookie: Result<Option<&'a [u8]>, BadCookie>,
    config: &SessionConfig,
) -> Result<Option<&'a [u8]>, AuthError> {
    let Some(raw) = cookie.map_err(|_| AuthError::invalid("session: duplicate cookie"))? else {
        return Ok(None);
    };
    config.id_from_cookie(raw).map(Some).ok_or_else(malformed)
}

/// The refusal of a session cookie that is oversized, forged or not an id.
pub(crate) fn malformed() -> AuthError {
    AuthError::invalid("session: malformed cookie")
}

/// A `Set-Cookie` to send: use it as a response part (`(cookie, Json(..))`) or alone.
#[derive(Debug, Clone)]
#[must_use]
pub struct SessionCookie(pub(crate) HeaderValue);

impl SessionCookie {
    /// The session cookie a response sets: its first `Set-Cookie` header, for tests and
    /// clients that replay it with [`pair`](Self::pair).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use axum::response::IntoResponse;
    /// use portcullis::session::{MemoryStore, NewSession, SessionConfig, SessionCookie, SessionManager};
    /// let m = SessionManager::new(MemoryStore::new(), SessionConfig::default());
    /// let response = m.login(&http::HeaderMap::new(), NewSession::new("alice")).await.unwrap().into_response();
    /// let cookie = SessionCookie::from_response(&response).unwrap();
    /// assert!(cookie.pair().starts_with("__Host-session="));
    /// # });
    /// ```
    pub fn from_response<B>(response: &http::Response<B>) -> Option<Self> {
        response
            .headers()
            .get(SET_COOKIE)
            .cloned()
            .map(SessionCookie)
    }
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
