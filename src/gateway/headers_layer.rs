//! [`IdentityHeadersLayer`]: [`IdentityHeaders`] applied to every request, after the
//! [`AuthLayer`](crate::AuthLayer) that put the context there.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use super::headers::IdentityHeaders;
use crate::context::AuthContext;
use crate::error::{AuthError, ErrorKind};
use crate::layer::AuthLayerRan;

/// Strips client-sent identity headers and writes the context's; see [`IdentityHeaders`].
#[derive(Debug, Clone)]
pub struct IdentityHeadersLayer {
    headers: Arc<IdentityHeaders>,
}

impl IdentityHeaders {
    /// The layer that strips, then writes, on every request it sees.
    pub fn layer(&self) -> IdentityHeadersLayer {
        IdentityHeadersLayer {
            headers: Arc::new(self.clone()),
        }
    }
}

impl<S> Layer<S> for IdentityHeadersLayer {
    type Service = IdentityHeadersService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        IdentityHeadersService {
            inner,
            headers: self.headers.clone(),
        }
    }
}

/// The service made by [`IdentityHeadersLayer`].
#[derive(Debug, Clone)]
pub struct IdentityHeadersService<S> {
    inner: S,
    headers: Arc<IdentityHeaders>,
}

impl<S, B> Service<Request<B>> for IdentityHeadersService<S>
where
    S: Service<Request<B>, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future =
        futures_util::future::Either<S::Future, std::future::Ready<Result<Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        use futures_util::future::Either;
        let ctx = req.extensions().get::<AuthContext>().cloned();
        let ran = req.extensions().get::<AuthLayerRan>().is_some();
        self.headers.strip(req.headers_mut());
        let written = match &ctx {
            Some(ctx) => self.headers.write(ctx, req.headers_mut()),
            None if ran => Ok(()),
            None => {
                static SAID: AtomicBool = AtomicBool::new(false);
                if !SAID.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        "IdentityHeaders found no AuthLayer in front of it (answering 500): \
                         apply .layer(AuthLayer::..) after .layer(identity_headers.layer())"
                    );
                }
                Err(AuthError::new(ErrorKind::Misconfigured))
            }
        };
        match written {
            Ok(()) => Either::Left(self.inner.call(req)),
            Err(e) => Either::Right(std::future::ready(Ok(e.into_response()))),
        }
    }
}
