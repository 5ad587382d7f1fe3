//! OpenID Connect Back-Channel Logout 1.0: the provider tells every relying party that
//! a user's session ended, and every instance stops honouring it.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use serde_json::{Value, json};

use super::OAuthLogin;
use crate::clock::unix_secs;
use crate::error::AuthError;
use crate::resource::once;
use crate::revocation::ProviderKey;
use crate::session::SessionManager;

/// How old a logout token may be (`iat`), in seconds.
pub(super) const MAX_AGE_SECS: u64 = 300;
/// Largest request body read.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// The event a logout token must carry.
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A 400 the spec's way: `{"error": "invalid_request", "error_description": ...}`.
fn refused(description: &'static str) -> Response {
    tracing::debug!(reason = description, "back-channel logout refused");
    answer(
        StatusCode::BAD_REQUEST,
        Some(json!({"error": "invalid_request", "error_description": description})),
    )
}

fn answer(status: StatusCode, body: Option<Value>) -> Response {
    let mut res = match body {
        Some(b) => (status, b.to_string()).into_response(),
        None => status.into_response(),
    };
    let h = res.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status != StatusCode::OK {
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    res
}

/// `POST /backchannel-logout` (form `logout_token`).
pub(super) async fn route(State(login): State<OAuthLogin>, req: Request) -> Response {
    let manager = req.extensions().get::<SessionManager>().cloned();
    let Ok(body) = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await else {
        return refused("request too large");
    };
    let Some(manager) = manager else {
        tracing::error!("back-channel logout needs Extension(SessionManager) on the router");
        return answer(StatusCode::INTERNAL_SERVER_ERROR, None);
    };
    login.backchannel_logout(&manager, &body).await
}

impl OAuthLogin {
    /// Handles a back-channel logout request body (`logout_token=<JWT>`): verifies the
    /// token as OpenID Back-Channel Logout 1.0 says (the provider's keys, `iss`, `aud`
    /// = the client id, `iat` within 5 minutes, `exp`, the back-channel logout event, no
    /// `nonce`, a `sid` and/or `sub`, a `jti` used once), then ends the sessions it
    /// names on every instance: the one made with that `sid`, or every session of that
    /// `sub` from this provider made up to now (through the session manager's
    /// revocation list). 200 with `Cache-Control: no-store`; 400 with an error body for
    /// a token that does not verify; 503 when the list cannot be written.
    pub async fn backchannel_logout(&self, manager: &SessionManager, body: &[u8]) -> Response {
        let mut tokens = url::form_urlencoded::parse(body)
            .filter(|(k, _)| k == "logout_token")
            .map(|(_, v)| v.into_owned());
        let (Some(token), None) = (tokens.next(), tokens.next()) else {
            return refused("exactly one logout_token is required");
        };
        let Some(verifier) = &self.inner.logout_tokens else {
            return refused("this provider has no ID tokens to log out");
        };
        let ctx = match verifier.verify(&token).await {
            Ok(ctx) => ctx,
            Err(e) if e.kind() == crate::ErrorKind::Unavailable => {
                return answer(StatusCode::SERVICE_UNAVAILABLE, None);
            }
            Err(e) => {
                tracing::debug!(reason = e.reason(), "logout token does not verify");
                return refused("the logout token does not verify");
            }
        };
        let claims = ctx.claims();
        let text = |k: &str| claims.get(k).and_then(Value::as_str);
        match claims.get("events").and_then(Value::as_object) {
            Some(events) if events.get(EVENT).is_some_and(Value::is_object) => {}
            _ => return refused("no back-channel logout event"),
        }
        if claims.contains_key("nonce") {
            return refused("a logout token carries no nonce");
        }
        let Some(jti) = text("jti").filter(|j| !j.is_empty()) else {
            return refused("no jti");
        };
        let sid = text("sid").filter(|s| !s.is_empty());
        let sub = text("sub").filter(|s| !s.is_empty());
        if sid.is_none() && sub.is_none() {
            return refused("neither sid nor sub");
        }
        let Some(issuer) = ctx.issuer() else {
            return refused("no iss");
        };
        let Some(revocations) = manager.config().revocations.clone() else {
            tracing::error!(
                "back-channel logout needs SessionConfig::with_revocations: no session can be ended"
            );
            return answer(StatusCode::INTERNAL_SERVER_ERROR, None);
        };
        let key = crate::resource::proof_key(issuer, jti);
        let expires = unix_secs() + MAX_AGE_SECS + 60;
        // Only the provider signs logout tokens: no share to enforce, each its own owner.
        let owner = crate::resource::Owner {
            issuer,
            subject: jti,
        };
        let first = match self.inner.logout_replay.first_use(key, owner, expires) {
            crate::resource::Use::Now(first) => first,
            crate::resource::Use::Later(first) => first.await,
        };
        if let Err(e) = once(first) {
            if e.kind() == crate::ErrorKind::Unavailable {
                return answer(StatusCode::SERVICE_UNAVAILABLE, None);
            }
            return refused("the logout token was used already");
        }
        let now = unix_secs();
        let mut ended: Vec<Result<(), AuthError>> = Vec::new();
        if let Some(sid) = sid {
            ended.push(
                revocations
                    .provider_logout(issuer, ProviderKey::Sid(sid.to_owned()), now)
                    .await,
            );
        }
        if let Some(sub) = sub
            && sid.is_none()
        {
            ended.push(
                revocations
                    .provider_logout(issuer, ProviderKey::Sub(sub.to_owned()), now)
                    .await,
            );
        }
        if ended.iter().any(Result::is_err) {
            return answer(StatusCode::SERVICE_UNAVAILABLE, None);
        }
        tracing::info!(
            issuer,
            by_sid = sid.is_some(),
            "back-channel logout ended sessions"
        );
        answer(StatusCode::OK, None)
    }
}
