//! Extractors: `AuthContext` (401 when the auth layer found no credential) and
//! `Option<AuthContext>`. Either one on a route no [`AuthLayer`](crate::AuthLayer)
//! covers is a wiring mistake: 500, and an ERROR log line that says what to add.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;

use crate::context::AuthContext;
use crate::error::{AuthError, ErrorKind};
use crate::layer::AuthLayerRan;

/// The context the auth layer left, `None` when it ran and found no credential, and a
/// 500 when no auth layer ran at all.
fn context(parts: &Parts) -> Result<Option<AuthContext>, AuthError> {
    if let Some(ctx) = parts.extensions.get::<AuthContext>() {
        return Ok(Some(ctx.clone()));
    }
    if parts.extensions.get::<AuthLayerRan>().is_some() {
        return Ok(None);
    }
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::error!(
            path = parts.uri.path(),
            "a handler extracts AuthContext on a route no AuthLayer covers (every such \
             request is answered 500): add .layer(AuthLayer::required(..)) or \
             AuthLayer::optional(..) to the router *after* this route, so that it wraps it"
        );
    } else {
        tracing::debug!(
            path = parts.uri.path(),
            "AuthContext extracted without an AuthLayer"
        );
    }
    Err(AuthError::new(ErrorKind::Misconfigured))
}

impl<S: Send + Sync> FromRequestParts<S> for AuthContext {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        context(parts)?.ok_or_else(AuthError::missing)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for AuthContext {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        context(parts)
    }
}

/// The context's claims deserialized into your own type: token claims for bearer
/// tokens and identity proxies, the session's data for sessions (what the login put
/// there with [`NewSession::with_data`](crate::session::NewSession::with_data) or
/// [`Sessions::set`](crate::session::Sessions::set)). Deserialized once per request,
/// however many extractors ask.
///
/// - no context: as [`AuthContext`] (401, or 500 on a route no auth layer covers);
/// - claims that do not deserialize into `T` (a missing or mistyped field): **403**
///   `forbidden`. The credential is valid, so it is not a 401 that would make a client
///   drop it; it lacks what this route needs, like a missing role. The serde error goes
///   to the debug log, never to the client.
///
/// For one claim, [`AuthContext::claim`] costs less.
///
/// ```
/// use portcullis::Claims;
///
/// #[derive(Clone, serde::Deserialize)]
/// struct Mine {
///     org_id: String,
///     #[serde(default)]
///     plan: Option<String>,
/// }
///
/// async fn handler(Claims(mine): Claims<Mine>) -> String {
///     format!("{} on {:?}", mine.org_id, mine.plan)
/// }
/// let app: axum::Router = axum::Router::new().route("/org", axum::routing::get(handler));
/// # let _ = app;
/// ```
#[derive(Debug, Clone)]
pub struct Claims<T>(pub T);

/// A request's claims already deserialized as `T`.
struct Deserialized<T>(std::sync::Arc<T>);

impl<T> Clone for Deserialized<T> {
    fn clone(&self) -> Self {
        Deserialized(self.0.clone())
    }
}

impl<S, T> FromRequestParts<S> for Claims<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(Deserialized(done)) = parts.extensions.get::<Deserialized<T>>() {
            return Ok(Claims(T::clone(done)));
        }
        let ctx = context(parts)?.ok_or_else(AuthError::missing)?;
        let value: T = ctx.claims_as().map_err(|e| {
            tracing::debug!(
                error = %e,
                target_type = std::any::type_name::<T>(),
                "claims do not deserialize into the handler's type"
            );
            AuthError::forbidden().with_message("The credential lacks claims this route needs.")
        })?;
        let value = std::sync::Arc::new(value);
        parts.extensions.insert(Deserialized(value.clone()));
        Ok(Claims(T::clone(&value)))
    }
}
