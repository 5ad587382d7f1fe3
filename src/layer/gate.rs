//! The machinery [`AuthService`](super::AuthService) and
//! [`PolicyService`](crate::policy::PolicyService) share: a verdict future polled once
//! in `call`, the inner service called directly when it is ready at once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use axum::response::Response;
use http::header::{ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use http::request::Parts;
use http::{Method, Request};
use tower_service::Service;

use crate::authenticator::BoxFuture;

/// A CORS preflight as browsers send it: `OPTIONS` with both `Origin` and
/// `Access-Control-Request-Method`. A CORS layer outside the auth layer answers it;
/// without one, it reaches the inner service unauthenticated (and the policy layer,
/// which grants it nothing, refuses it).
pub(crate) fn is_cors_preflight(parts: &Parts) -> bool {
    parts.method == Method::OPTIONS
        && parts.headers.contains_key(ORIGIN)
        && parts.headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

/// What a gate (authentication or policy) decided for one request.
pub(crate) enum Outcome {
    /// Call the inner service with these parts.
    Forward(Parts),
    /// Answer with this response.
    Respond(Response),
}

pin_project_lite::pin_project! {
    /// The future of a gate: the inner service's own future when the verdict was ready
    /// at once, the answer itself for a refusal, a boxed future (verdict, then inner
    /// call) when the verdict had to wait.
    #[project = GateProj]
    pub(crate) enum GateFuture<F, E> {
        Inner { #[pin] future: F },
        Ready { response: Option<Response> },
        Boxed { future: BoxFuture<'static, Result<Response, E>> },
    }
}

impl<F, E> Future for GateFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GateProj::Inner { future } => future.poll(cx),
            GateProj::Ready { response } => match response.take() {
                Some(r) => Poll::Ready(Ok(r)),
                None => panic!("GateFuture polled after completion"),
            },
            GateProj::Boxed { future } => future.as_mut().poll(cx),
        }
    }
}

/// Acts on an outcome that is known now: calls the inner service, or answers.
pub(crate) fn settle<S, B>(
    inner: &mut S,
    body: B,
    outcome: Outcome,
) -> GateFuture<S::Future, S::Error>
where
    S: Service<Request<B>, Response = Response>,
    S::Future: Send + 'static,
{
    match outcome {
        Outcome::Forward(parts) => GateFuture::Inner {
            future: inner.call(Request::from_parts(parts, body)),
        },
        Outcome::Respond(response) => GateFuture::Ready {
            response: Some(response),
        },
    }
}

/// Runs a gate's verdict future, turns its output into an [`Outcome`] with `finish`,
/// then calls the inner service.
///
/// Most verdicts need no waiting (token cache hits, memory sessions, Basic with plain
/// secrets, rules without async resolvers): the future is polled once here and the
/// inner service is called directly, without cloning it or boxing a second future. A
/// pending verdict is polled again, with the task's waker, by the boxed future.
pub(crate) fn gate<S, B, T, F>(
    inner: &mut S,
    body: B,
    mut verdict: BoxFuture<'static, T>,
    finish: F,
) -> GateFuture<S::Future, S::Error>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    T: 'static,
    F: FnOnce(T) -> Outcome + Send + 'static,
{
    if let Poll::Ready(output) = verdict
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        return settle(inner, body, finish(output));
    }
    let clone = inner.clone();
    let mut inner = std::mem::replace(inner, clone);
    GateFuture::Boxed {
        future: Box::pin(async move {
            match finish(verdict.await) {
                Outcome::Forward(parts) => inner.call(Request::from_parts(parts, body)).await,
                Outcome::Respond(response) => Ok(response),
            }
        }),
    }
}

/// Declares a public, opaque future type wrapping [`GateFuture`].
macro_rules! opaque_gate_future {
    ($(#[$doc:meta])* $name:ident) => {
        pin_project_lite::pin_project! {
            $(#[$doc])*
            pub struct $name<F, E> {
                #[pin]
                inner: $crate::layer::gate::GateFuture<F, E>,
            }
        }

        impl<F, E> $name<F, E> {
            pub(crate) fn new(inner: $crate::layer::gate::GateFuture<F, E>) -> Self {
                $name { inner }
            }
        }

        impl<F, E> std::future::Future for $name<F, E>
        where
            F: std::future::Future<Output = Result<axum::response::Response, E>>,
        {
            type Output = Result<axum::response::Response, E>;
            fn poll(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Self::Output> {
                self.project().inner.poll(cx)
            }
        }

        impl<F, E> std::fmt::Debug for $name<F, E> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use opaque_gate_future;
