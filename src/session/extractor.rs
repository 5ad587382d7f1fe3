//! The [`Sessions`] extractor: the session manager, guarded for handlers that change sessions.

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use http::header::COOKIE;
use http::request::Parts;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::cookie::SessionCookie;
use super::manager::SessionManager;
use super::new_session::NewSession;
use crate::error::AuthError;

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
    /// One value of the current session's data, as `T` (read from the store; handlers that
    /// only read can use `AuthContext::claim` instead, which costs nothing).
    /// `Ok(None)` when absent or of another type; 401 without a live session.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, AuthError> {
        let rec = self.manager.current_record(&self.cookies).await?;
        Ok(rec.data.get(key).and_then(|v| T::deserialize(v).ok()))
    }
    /// Sets one value of the current session's data; refused (403) for cross-site requests,
    /// 401 without a live session, and never recreates a session ended meanwhile.
    ///
    /// ```
    /// use portcullis::{AuthError, session::Sessions};
    /// async fn set_theme(sessions: Sessions) -> Result<(), AuthError> {
    ///     sessions.set("theme", "dark").await
    /// }
    /// ```
    pub async fn set(&self, key: &str, value: impl Serialize) -> Result<(), AuthError> {
        self.guard()?;
        let value = serde_json::to_value(value)
            .map_err(|_| AuthError::malformed("session: value is not JSON"))?;
        self.manager
            .update_data(&self.cookies, |data| {
                data.insert(key.to_owned(), value.clone());
            })
            .await
    }
    /// Removes one value of the current session's data (as [`set`](Self::set)).
    pub async fn remove(&self, key: &str) -> Result<(), AuthError> {
        self.guard()?;
        self.manager
            .update_data(&self.cookies, |data| {
                data.remove(key);
            })
            .await
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
