//! [`AuthLayer`] and [`AuthService`]: run authenticators, insert the [`AuthContext`].

pub(crate) mod gate;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::Response;
use http::Request;
use http::header::AUTHORIZATION;
use http::request::Parts;
use tower_layer::Layer;
use tower_service::Service;

use self::gate::{Outcome, gate, is_cors_preflight, opaque_gate_future, settle};
use crate::authenticator::{
    Authenticated, Authenticator, BoxFuture, Check, DynAuthenticator, Held, Start,
};
use crate::context::{AuthContext, Scheme};
use crate::error::AuthError;
use crate::metrics;
use crate::responder::{ErrorResponder, JsonResponder};

/// The default cap on a credential: the `Authorization` header (checked before any
/// parsing), a JWT, a cached token.
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
    subject_in_spans: bool,
    /// Success counters, one per authenticator (feature `metrics`).
    successes: Vec<metrics::CachedCounter>,
}

/// Authenticates requests with one or more schemes and inserts an [`AuthContext`]
/// into the request extensions.
///
/// - The first (and only) scheme whose credential is present decides; two different
///   credentials in one request are rejected with 400, never merged.
/// - Missing credentials: 401 in [`Mode::Required`]; pass without context in
///   [`Mode::Optional`]. Invalid credentials are rejected in both modes.
/// - CORS preflights (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) pass
///   untouched, for a CORS layer placed *outside* this layer to answer. Anything behind
///   a [`PolicyLayer`](crate::policy::PolicyLayer) still refuses them.
/// - An `Authorization` header above the size cap (8 KiB) is rejected before parsing.
///
/// ```
/// use axum::{Router, routing::get};
/// use portcullis::{AuthContext, AuthLayer, User, basic::BasicAuth};
///
/// async fn me(ctx: AuthContext) -> String { ctx.subject().to_owned() }
///
/// let basic = BasicAuth::new("admin").with_user("admin", User::plain("correct horse"));
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
                authenticators: vec![Arc::new(Held(Arc::new(authenticator)))],
                mode,
                responder: Arc::new(JsonResponder),
                max_credential_bytes: DEFAULT_MAX_CREDENTIAL_BYTES,
                subject_in_spans: false,
                successes: vec![metrics::CachedCounter::default()],
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
        self.edit(|s| {
            s.authenticators
                .push(Arc::new(Held(Arc::new(authenticator))));
            s.successes.push(metrics::CachedCounter::default());
        })
    }
    /// Render rejections with `responder` instead of JSON.
    pub fn with_responder<R: ErrorResponder>(self, responder: R) -> Self {
        self.edit(|s| s.responder = Arc::new(responder))
    }
    /// Change the `Authorization` header size cap (default 8 KiB).
    pub fn with_max_credential_bytes(self, bytes: usize) -> Self {
        self.edit(|s| s.max_credential_bytes = bytes)
    }
    /// Record the subject in each authentication's tracing span (`portcullis.auth`,
    /// at DEBUG; off by default: subjects are personal data).
    pub fn with_subject_in_spans(self, on: bool) -> Self {
        self.edit(|s| s.subject_in_spans = on)
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

/// Left in the extensions of a request the auth layer passed without a context, so a
/// policy layer can tell "anonymous" from "no auth layer in front".
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthLayerRan;

/// What the checks that need no waiting found.
enum Found {
    /// A CORS preflight: passed untouched.
    Preflight,
    /// No credential in [`Mode::Optional`]: passed without a context.
    Anonymous,
    /// Refused before verifying anything (no credential in [`Mode::Required`], two
    /// credentials, an oversized header).
    Reject(AuthError),
    /// The authenticator at this index answered without waiting.
    Answered(usize, Result<AuthContext, AuthError>),
    /// The authenticator at this index verifies, in the step it handed back.
    Wait(usize, Start),
}

impl Shared {
    fn with_all_challenges(&self, mut err: AuthError) -> AuthError {
        for a in &self.authenticators {
            for c in a.challenges() {
                err = err.with_challenge(c);
            }
        }
        err
    }

    /// Preflight, header count and size, then every scheme's
    /// [`check`](Authenticator::check): which single scheme carries a credential, and
    /// its answer or the step that finishes it.
    fn find(&self, parts: &Parts) -> Found {
        if is_cors_preflight(parts) {
            return Found::Preflight;
        }
        let mut auth_headers = parts.headers.get_all(AUTHORIZATION).iter();
        if let Some(first) = auth_headers.next() {
            if auth_headers.next().is_some() {
                return Found::Reject(self.with_all_challenges(AuthError::conflicting()));
            }
            if first.len() > self.max_credential_bytes {
                return Found::Reject(
                    self.with_all_challenges(AuthError::malformed(
                        "authorization header too large",
                    )),
                );
            }
        }
        if let [only] = &self.authenticators[..] {
            return match only.check(parts) {
                Check::Absent => self.absent(),
                Check::Ready(result) => Found::Answered(0, result),
                Check::Pending(start) => Found::Wait(0, start),
            };
        }
        let mut found = None;
        for (i, a) in self.authenticators.iter().enumerate() {
            let check = a.check(parts);
            if matches!(check, Check::Absent) {
                continue;
            }
            if found.is_some() {
                return Found::Reject(self.with_all_challenges(AuthError::conflicting()));
            }
            found = Some((i, check));
        }
        match found {
            None => self.absent(),
            Some((i, Check::Ready(result))) => Found::Answered(i, result),
            Some((i, Check::Pending(start))) => Found::Wait(i, start),
            Some((_, Check::Absent)) => self.absent(),
        }
    }

    /// No credential of any scheme.
    fn absent(&self) -> Found {
        match self.mode {
            Mode::Optional => Found::Anonymous,
            Mode::Required => Found::Reject(self.with_all_challenges(AuthError::missing())),
        }
    }

    /// The outcome of the authenticator at `index`: the context inserted, or the error
    /// answered with that scheme's challenge.
    fn finish(
        &self,
        index: usize,
        mut parts: Parts,
        result: Result<AuthContext, AuthError>,
    ) -> Outcome {
        let scheme = self.authenticators[index].scheme();
        match result {
            Ok(ctx) => {
                metrics::auth_success(&self.successes, index, scheme);
                tracing::trace!(scheme = %ctx.scheme(), subject = ctx.subject(), "authenticated");
                parts.extensions.insert(ctx);
                Outcome::Forward(parts)
            }
            Err(err) => {
                let err = self.authenticators[index]
                    .challenges()
                    .into_iter()
                    .fold(err, AuthError::with_challenge);
                self.reject(Some(scheme), parts, err)
            }
        }
    }

    /// The verification span (`portcullis.auth`, DEBUG) for the authenticator at
    /// `index`: scheme and route, and later the outcome; `None` when nobody listens.
    fn span(&self, index: usize, parts: &Parts) -> Option<tracing::Span> {
        use tracing::field::Empty;
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return None;
        }
        let route = parts
            .extensions
            .get::<axum::extract::MatchedPath>()
            .map_or("", |m| m.as_str());
        let span = tracing::debug_span!(
            "portcullis.auth",
            scheme = self.authenticators[index].scheme().as_str(),
            route = route,
            outcome = Empty,
            reason = Empty,
            subject = Empty,
        );
        (!span.is_disabled()).then_some(span)
    }

    /// Records an authentication's outcome on its span.
    fn record(
        span: &tracing::Span,
        subject_in_spans: bool,
        result: &Result<AuthContext, AuthError>,
    ) {
        match result {
            Ok(ctx) => {
                span.record("outcome", "success");
                if subject_in_spans {
                    span.record("subject", ctx.subject());
                }
            }
            Err(e) => {
                span.record("outcome", e.kind().code());
                span.record("reason", e.reason());
            }
        }
    }

    /// `verify` inside its span, which records the outcome; `verify` itself when
    /// nobody listens (no wrapper, no second box).
    fn instrument(
        &self,
        span: Option<tracing::Span>,
        verify: BoxFuture<'static, Authenticated>,
    ) -> BoxFuture<'static, Authenticated> {
        use tracing::Instrument;
        let Some(span) = span else {
            return verify;
        };
        let record = span.clone();
        let subject_in_spans = self.subject_in_spans;
        Box::pin(
            async move {
                let out = verify.await;
                Self::record(&record, subject_in_spans, &out.1);
                out
            }
            .instrument(span),
        )
    }

    fn reject(&self, scheme: Option<Scheme>, parts: Parts, err: AuthError) -> Outcome {
        metrics::auth(scheme, err.kind().code(), err.reason());
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

opaque_gate_future! {
    /// The future of [`AuthService`].
    AuthFuture
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
        // An answer that needs no waiting (a cached token, a memory-store session) goes
        // straight to the inner service: no boxed future.
        let (index, start) = match self.shared.find(&parts) {
            Found::Wait(index, start) => (index, start),
            Found::Answered(index, result) => {
                if let Some(span) = self.shared.span(index, &parts) {
                    Shared::record(&span, self.shared.subject_in_spans, &result);
                }
                let outcome = self.shared.finish(index, parts, result);
                return AuthFuture::new(settle(&mut self.inner, body, outcome));
            }
            Found::Preflight => {
                let mut parts = parts;
                parts.extensions.insert(AuthLayerRan);
                return AuthFuture::new(settle(&mut self.inner, body, Outcome::Forward(parts)));
            }
            Found::Anonymous => {
                metrics::auth(None, "anonymous", "");
                let mut parts = parts;
                parts.extensions.insert(AuthLayerRan);
                return AuthFuture::new(settle(&mut self.inner, body, Outcome::Forward(parts)));
            }
            Found::Reject(err) => {
                let outcome = self.shared.reject(None, parts, err);
                return AuthFuture::new(settle(&mut self.inner, body, outcome));
            }
        };
        // One span per verification, when a subscriber listens at DEBUG: scheme and
        // route, then the outcome; the subject only when asked for.
        let span = self.shared.span(index, &parts);
        let verify = self.shared.instrument(span, start(parts));
        let shared = self.shared.clone();
        AuthFuture::new(gate(
            &mut self.inner,
            body,
            verify,
            move |(parts, result)| shared.finish(index, parts, result),
        ))
    }
}
