//! The axum apps the router-level instruction counts (`benches/ops.rs`) and, through
//! `#[path]`, the load harness serve: one definition, so both measure the same thing.
//! Every app answers `GET /`.

use std::sync::Arc;

use axum::Router;
use axum::handler::Handler;
use axum::routing::get;
use portcullis::{AuthContext, AuthLayer};

/// The authenticated handlers' answer: the subject, as an owned string.
pub async fn subject(ctx: AuthContext) -> String {
    ctx.subject().to_owned()
}

/// No authentication; the body is an owned string, like `subject`'s.
pub fn no_auth() -> Router {
    Router::new().route("/", get(|| async { String::from("anonymous") }))
}

/// `subject` behind `layer`: with `Router::layer`, or with `Handler::layer` when
/// `per_handler` (axum then boxes no extra route per request).
pub fn guarded(layer: AuthLayer, per_handler: bool) -> Router {
    if per_handler {
        Router::new().route("/", get(subject.layer(layer)))
    } else {
        Router::new().route("/", get(subject)).layer(layer)
    }
}

/// The no-auth app behind a layer that does nothing: axum's own price of
/// `Router::layer` (each request clones and boxes the layered route).
pub fn identity_layer() -> Router {
    no_auth().layer(tower::layer::util::Identity::new())
}

/// The smallest identity middleware axum offers: `from_fn` inserting a value the
/// handler extracts. No checks at all: a floor for any auth middleware.
pub fn axum_from_fn() -> Router {
    #[derive(Clone)]
    struct Identity(Arc<str>);
    Router::new()
        .route(
            "/",
            get(|axum::Extension(id): axum::Extension<Identity>| async move { id.0.to_string() }),
        )
        .layer(axum::middleware::from_fn(
            |mut req: axum::extract::Request, next: axum::middleware::Next| async move {
                req.extensions_mut().insert(Identity(Arc::from("alice")));
                next.run(req).await
            },
        ))
}

/// An authenticator that does no work: hands out one prebuilt context. Measures the
/// fixed cost of `AuthLayer`, the context in the extensions and the extractor.
#[derive(Clone)]
pub struct Floor(pub AuthContext);

impl portcullis::Authenticator for Floor {
    type Credential = std::convert::Infallible;
    fn scheme(&self) -> portcullis::Scheme {
        portcullis::Scheme::Custom
    }
    fn challenge(&self) -> Option<portcullis::Challenge> {
        None
    }
    fn check(&self, _: &axum::http::request::Parts) -> portcullis::Check<Self::Credential> {
        portcullis::Check::Ready(Ok(self.0.clone()))
    }
    async fn authenticate(
        &self,
        never: Self::Credential,
        _: &axum::http::request::Parts,
    ) -> Result<AuthContext, portcullis::AuthError> {
        match never {}
    }
}

/// `AuthLayer` with the [`Floor`] authenticator in front of `subject`.
pub fn floor(per_handler: bool) -> Router {
    let ctx = AuthContext::builder("alice", portcullis::Scheme::Custom).build();
    guarded(AuthLayer::required(Floor(ctx)), per_handler)
}
