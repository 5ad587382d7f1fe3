//! [`AuthLayer`] and [`AuthService`]: run authenticators, insert the [`AuthContext`].

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use axum::response::Response;
use futures_util::future::Either;
use http::header::{ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION};
use http::request::Parts;
use http::{Method, Request};
use tower_layer::Layer;
use tower_service::Service;

use crate::authenticator::{Authenticator, BoxFuture, DynAuthenticator};
use crate::context::AuthContext;
use crate::error::AuthError;
use crate::responder::{ErrorResponder, JsonResponder};

/// Default cap on the `Authorization` header, checked before any parsing.
pub const DEFAULT_MAX_CREDENTIAL_BYTES: usize = 8 * 1024;

/// Whether requests without credentials may reach the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// No credentials: 401 with the challenges of every scheme.
    Required,
    /// No credentials: the handler runs without a context. Invalid credentials are still rejected.
    Optional,
}

#[derive(Clone)]
struct Shared {
    authenticators: Vec<Arc<dyn DynAuthenticator>>,
    mode: Mode,
    responder: Arc<dyn ErrorResponder>,
    max_credential_bytes: usize,
}

/// Authenticates requests with one or more schemes and inserts an [`AuthContext`]
/// into the request extensions.
///
/// - The first (and only) scheme whose credential is present decides; two different
///   credentials in one request are rejected with 400, never merged.
/// - Missing credentials: 401 in [`Mode::Required`]; pass without context in
///   [`Mode::Optional`]. Invalid credentials are rejected in both modes.
/// - CORS preflights (`OPTIONS` with `Access-Control-Request-Method`) pass untouched.
/// - An `Authorization` header above the size cap (8 KiB) is rejected before parsing.
///
/// ```
/// use axum::{Router, routing::get};
/// use portcullis::{AuthContext, AuthLayer, basic::{BasicAuth, BasicUser}};
///
/// async fn me(ctx: AuthContext) -> String { ctx.subject().to_owned() }
///
/// let basic = BasicAuth::new("admin").with_user("admin", BasicUser::plain("correct horse"));
/// let app: Router = Router::new()
///     .route("/me", get(me))
///     .layer(AuthLayer::required(basic));
/// ```
#[derive(Clone)]
pub struct AuthLayer {
    shared: Arc<Shared>,
}

impl AuthLayer {
    /// A layer that requires credentials of `authenticator`'s scheme.
    pub fn required<A: Authenticator>(authenticator: A) -> Self {
        Self::with_mode(authenticator, Mode::Required)
    }
    /// A layer that authenticates when credentials are present and lets anonymous requests through.
    pub fn optional<A: Authenticator>(authenticator: A) -> Self {
        Self::with_mode(authenticator, Mode::Optional)
    }
    fn with_mode<A: Authenticator>(authenticator: A, mode: Mode) -> Self {
        AuthLayer {
            shared: Arc::new(Shared {
                authenticators: vec![Arc::new(authenticator)],
                mode,
                responder: Arc::new(JsonResponder),
                max_credential_bytes: DEFAULT_MAX_CREDENTIAL_BYTES,
            }),
        }
    }

    fn edit(self, f: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.shared);
        f(&mut shared);
        AuthLayer {
            shared: Arc::new(shared),
        }
    }

    /// Also accept `authenticator`'s scheme (checked in the order added).
    pub fn or<A: Authenticator>(self, authenticator: A) -> Self {
        self.edit(|s| s.authenticators.push(Arc::new(authenticator)))
    }
    /// Render rejections with `responder` instead of JSON.
    pub fn with_responder<R: ErrorResponder>(self, responder: R) -> Self {
        self.edit(|s| s.responder = Arc::new(responder))
    }
    /// Change the `Authorization` header size cap (default 8 KiB).
    pub fn with_max_credential_bytes(self, bytes: usize) -> Self {
        self.edit(|s| s.max_credential_bytes = bytes)
    }
    /// The mode.
    pub fn mode(&self) -> Mode {
        self.shared.mode
    }
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let schemes: Vec<_> = self
            .shared
            .authenticators
            .iter()
            .map(|a| a.scheme())
            .collect();
        f.debug_struct("AuthLayer")
            .field("schemes", &schemes)
            .field("mode", &self.shared.mode)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service made by [`AuthLayer`].
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService").finish_non_exhaustive()
    }
}

enum Decision {
    Pass,
    Insert(AuthContext),
    Reject(AuthError),
}

pub(crate) fn is_cors_preflight(parts: &Parts) -> bool {
    parts.method == Method::OPTIONS && parts.headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

impl Shared {
    fn with_all_challenges(&self, mut err: AuthError) -> AuthError {
        for a in &self.authenticators {
            if let Some(c) = a.challenge() {
                err = err.with_challenge(c);
            }
        }
        err
    }

    async fn decide(&self, parts: &Parts) -> Decision {
        if is_cors_preflight(parts) {
            return Decision::Pass;
        }
        let mut auth_headers = parts.headers.get_all(AUTHORIZATION).iter();
        if let Some(first) = auth_headers.next() {
            if auth_headers.next().is_some() {
                return Decision::Reject(self.with_all_challenges(AuthError::conflicting()));
            }
            if first.len() > self.max_credential_bytes {
                return Decision::Reject(
                    self.with_all_challenges(AuthError::malformed(
                        "authorization header too large",
                    )),
                );
            }
        }
        let mut found: Option<&dyn DynAuthenticator> = None;
        for a in &self.authenticators {
            if a.detect(parts) {
                if found.is_some() {
                    return Decision::Reject(self.with_all_challenges(AuthError::conflicting()));
                }
                found = Some(a.as_ref());
            }
        }
        let Some(authenticator) = found else {
            return match self.mode {
                Mode::Optional => Decision::Pass,
                Mode::Required => Decision::Reject(self.with_all_challenges(AuthError::missing())),
            };
        };
        match authenticator.authenticate(parts).await {
            Ok(ctx) => {
                tracing::trace!(scheme = %ctx.scheme(), subject = ctx.subject(), "authenticated");
                Decision::Insert(ctx)
            }
            Err(err) => {
                let err = match authenticator.challenge() {
                    Some(c) => err.with_challenge(c),
                    None => err,
                };
                Decision::Reject(err)
            }
        }
    }
}

impl Shared {
    /// Acts on a decision: the parts to pass on (with the context inserted), or the
    /// error response.
    fn apply(&self, mut parts: Parts, decision: Decision) -> Outcome {
        match decision {
            Decision::Pass => Outcome::Forward(parts),
            Decision::Insert(ctx) => {
                parts.extensions.insert(ctx);
                Outcome::Forward(parts)
            }
            Decision::Reject(err) => {
                tracing::debug!(
                    kind = err.kind().code(),
                    reason = err.reason(),
                    method = %parts.method,
                    path = parts.uri.path(),
                    "request rejected"
                );
                Outcome::Respond(self.responder.respond(&err, &parts))
            }
        }
    }
}

/// What a gate (authentication or policy) decided for one request.
pub(crate) enum Outcome {
    /// Call the inner service with these parts.
    Forward(Parts),
    /// Answer with this response.
    Respond(Response),
}

/// The future of [`AuthService`]: the inner service's own future when authentication
/// finished without waiting, a boxed one otherwise.
pub type AuthFuture<F, E> = Either<F, BoxFuture<'static, Result<Response, E>>>;

/// Runs a gate's `decide` future, then the inner service (the `call` of both
/// [`AuthService`] and `PolicyService`).
///
/// Most decisions need no waiting (token cache hits, memory sessions, Basic with plain
/// secrets, rules without async resolvers): `decide` is polled once here and the inner
/// service is called directly, without cloning it or boxing a second future. A pending
/// decision is polled again, with the task's waker, by the boxed future.
pub(crate) fn gate<S, B>(
    inner: &mut S,
    body: B,
    mut decide: BoxFuture<'static, Outcome>,
) -> AuthFuture<S::Future, S::Error>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    if let Poll::Ready(outcome) = decide
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        return match outcome {
            Outcome::Forward(parts) => Either::Left(inner.call(Request::from_parts(parts, body))),
            Outcome::Respond(response) => Either::Right(Box::pin(async move { Ok(response) })),
        };
    }
    let clone = inner.clone();
    let mut inner = std::mem::replace(inner, clone);
    Either::Right(Box::pin(async move {
        match decide.await {
            Outcome::Forward(parts) => inner.call(Request::from_parts(parts, body)).await,
            Outcome::Respond(response) => Ok(response),
        }
    }))
}

impl<S, B> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = AuthFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (parts, body) = req.into_parts();
        let shared = self.shared.clone();
        gate(
            &mut self.inner,
            body,
            Box::pin(async move {
                let decision = shared.decide(&parts).await;
                shared.apply(parts, decision)
            }),
        )
    }
}
