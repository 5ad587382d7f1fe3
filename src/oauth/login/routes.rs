//! The routes [`OAuthLogin::routes`] mounts: login, callback, logout and back-channel
//! logout.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use http::request::Parts;

use super::{MAX_QUERY_BYTES, OAuthLogin, bad};
use crate::error::AuthError;
use crate::session::Sessions;

impl OAuthLogin {
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
