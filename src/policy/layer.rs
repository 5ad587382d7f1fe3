//! [`PolicyLayer`]: enforce a [`Rule`] or [`RouteRules`] after authentication.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams};
use axum::response::Response;
use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use super::routes::RouteRules;
use super::rule::{PolicyInput, Rule, Verdict};
use crate::challenge::Challenge;
use crate::context::{AuthContext, Scheme};
use crate::error::{AuthError, ErrorKind};
use crate::layer::AuthLayerRan;
use crate::layer::gate::{Outcome, gate, opaque_gate_future};
use crate::metrics;
use crate::responder::{ErrorResponder, JsonResponder};

#[derive(Clone)]
enum Source {
    One(Rule),
    Routes(Arc<RouteRules>),
}

#[derive(Clone)]
struct Shared {
    source: Source,
    responder: Arc<dyn ErrorResponder>,
    bearer_realm: Arc<str>,
    /// RFC 9728 metadata URL for the `insufficient_scope` challenge.
    resource_metadata: Option<Arc<str>>,
    warned_no_auth_layer: Arc<AtomicBool>,
}

/// Authorization after authentication: no context → 401, context but denied → 403
/// (`insufficient_scope` with a Bearer challenge for bearer tokens), resolver error →
/// its status (fail closed). Each decision is traced at debug level (subject, rule,
/// outcome), without secrets. CORS preflights get no exemption: answer them with a CORS
/// layer outside the auth layer.
///
/// ```
/// use axum::{Router, routing::get};
/// use portcullis::policy::{PolicyLayer, Rule};
/// let app: Router = Router::new()
///     .route("/admin", get(|| async { "hi" }))
///     .route_layer(PolicyLayer::new(Rule::role("admin")));
/// ```
#[derive(Clone)]
pub struct PolicyLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for PolicyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyLayer").finish_non_exhaustive()
    }
}

impl PolicyLayer {
    fn from_source(source: Source) -> Self {
        PolicyLayer {
            shared: Arc::new(Shared {
                source,
                responder: Arc::new(JsonResponder),
                bearer_realm: "api".into(),
                resource_metadata: None,
                warned_no_auth_layer: Arc::default(),
            }),
        }
    }
    /// Enforce one rule on every route below.
    pub fn new(rule: Rule) -> Self {
        Self::from_source(Source::One(rule))
    }
    /// Enforce per-route rules (use with `Router::route_layer`).
    pub fn routes(rules: RouteRules) -> Self {
        Self::from_source(Source::Routes(Arc::new(rules)))
    }
    /// Render rejections with `responder`.
    pub fn with_responder<R: ErrorResponder>(self, responder: R) -> Self {
        let mut s = Arc::unwrap_or_clone(self.shared);
        s.responder = Arc::new(responder);
        PolicyLayer {
            shared: Arc::new(s),
        }
    }
    /// Realm used in `insufficient_scope` challenges (default `api`).
    pub fn with_bearer_realm(self, realm: &str) -> Self {
        let mut s = Arc::unwrap_or_clone(self.shared);
        s.bearer_realm = realm.into();
        PolicyLayer {
            shared: Arc::new(s),
        }
    }
    /// The RFC 9728 protected resource this policy guards: its `insufficient_scope`
    /// answers carry `resource_metadata="..."` beside the missing `scope`, so a client
    /// can ask its authorization server for more (step-up).
    #[cfg(feature = "jwt")]
    pub fn with_resource(self, resource: &crate::resource::ProtectedResource) -> Self {
        let mut s = Arc::unwrap_or_clone(self.shared);
        s.resource_metadata = Some(resource.metadata_url().into());
        PolicyLayer {
            shared: Arc::new(s),
        }
    }
}

impl<S> Layer<S> for PolicyLayer {
    type Service = PolicyService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        PolicyService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

opaque_gate_future! {
    /// The future of [`PolicyService`].
    PolicyFuture
}

/// The service made by [`PolicyLayer`].
#[derive(Clone)]
pub struct PolicyService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> fmt::Debug for PolicyService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyService").finish_non_exhaustive()
    }
}

impl Shared {
    async fn decide(&self, parts: &mut http::request::Parts) -> Result<(), AuthError> {
        let Some(ctx) = parts.extensions.get::<AuthContext>().cloned() else {
            if parts.extensions.get::<AuthLayerRan>().is_some() {
                return Err(AuthError::missing());
            }
            if !self.warned_no_auth_layer.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    "PolicyLayer found no AuthLayer in front of it (every request is answered \
                     500): add .layer(AuthLayer::required(..)) or AuthLayer::optional(..) \
                     *after* .route_layer(PolicyLayer::..), so that it wraps the policy layer"
                );
            }
            return Err(AuthError::new(ErrorKind::Misconfigured));
        };
        let params: Vec<(String, String)> =
            match RawPathParams::from_request_parts(parts, &()).await {
                Ok(p) => p
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                Err(_) => Vec::new(),
            };
        let rule = match &self.source {
            Source::One(r) => r,
            Source::Routes(rules) => {
                let matched = parts
                    .extensions
                    .get::<MatchedPath>()
                    .map(|m| m.as_str().to_owned());
                let Some(route) = matched else {
                    tracing::error!(
                        "RouteRules needs Router::route_layer: no matched route; denying"
                    );
                    return Err(AuthError::forbidden());
                };
                match rules.rule_for(&parts.method, &route) {
                    Some(r) => r,
                    None => {
                        rules.report_missing(&parts.method, &route);
                        return Err(AuthError::forbidden());
                    }
                }
            }
        };
        let input = PolicyInput {
            ctx: &ctx,
            parts,
            params: &params,
        };
        let verdict = rule.evaluate(&input).await;
        tracing::debug!(subject = ctx.subject(), rule = %rule, outcome = ?verdict.as_ref().map_err(|e| e.kind()), "policy decision");
        match verdict? {
            Verdict::Allow => Ok(()),
            Verdict::Deny => Err(AuthError::forbidden()),
            Verdict::MissingScope(scope) => {
                let err = AuthError::insufficient_scope(scope);
                Err(if ctx.scheme() == Scheme::Bearer {
                    let mut challenge = Challenge::bearer(&self.bearer_realm);
                    if let Some(url) = &self.resource_metadata {
                        challenge = challenge.with_resource_metadata(url);
                    }
                    err.with_challenge(challenge)
                } else {
                    err
                })
            }
        }
    }
}

impl<S, B> Service<Request<B>> for PolicyService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = PolicyFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        let shared = self.shared.clone();
        let decide = Box::pin(async move {
            let decision = shared.decide(&mut parts).await;
            let route = parts
                .extensions
                .get::<MatchedPath>()
                .map_or("", |m| m.as_str());
            match decision {
                Ok(()) => {
                    metrics::policy(route, "allow");
                    Outcome::Forward(parts)
                }
                Err(err) => {
                    metrics::policy(route, err.kind().code());
                    Outcome::Respond(shared.responder.respond(&err, &parts))
                }
            }
        });
        PolicyFuture::new(gate(&mut self.inner, body, decide, |outcome| outcome))
    }
}
