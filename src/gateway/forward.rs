//! [`ForwardAuth`]: the decision endpoint a reverse proxy asks before it forwards a
//! request (nginx `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`, Envoy
//! `ext_authz` over HTTP).

use std::convert::Infallible;
use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use tower_layer::Layer;
use tower_service::Service;

use super::headers::IdentityHeaders;
use super::uri::normalize;
use crate::authenticator::BoxFuture;
use crate::challenge::Challenge;
use crate::context::{AuthContext, Scheme};
use crate::error::{AuthError, ConfigError};
use crate::layer::AuthLayer;
use crate::policy::{PolicyInput, RouteRules, Verdict};

const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The forward-auth endpoint: a proxy sends it each request's method, URI and headers;
/// it answers 200 with the identity headers (the proxy copies them to the origin), 401
/// with the scheme's challenge, 403, 429 or 503, the same answers the layers give
/// in-process, with the same authenticators, revocations and attempt limits.
///
/// - The original request: method from `X-Forwarded-Method` (Traefik, Caddy) or
///   `X-Original-Method` (nginx; the request's own method otherwise), URI from
///   `X-Forwarded-Uri` or `X-Original-URI` (required; both families given and
///   disagreeing is a 400); the host from `X-Forwarded-Host` (it replaces `Host`, so the
///   cross-site guard compares `Origin` with the site's own host, not this endpoint's)
///   and the scheme from `X-Forwarded-Proto` (`http` or `https`), each when sent, once
///   and well-formed (a 400 otherwise); every other header, credentials included, as
///   the proxy passed it.
/// - The URI is judged as an origin routes it (decoded once, dot segments and `//`
///   resolved, `;params` dropped); an encoded `/` or `\`, a `\`, double encoding or a
///   malformed escape is a 400, never judged by its raw spelling.
/// - Routes: [`with_public`](Self::with_public) templates answer 200 with no identity
///   (no credential asked for); every other path is matched against the templates of
///   the [`RouteRules`] (their rule decides; their fallback, or deny, for the rest).
/// - Client-sent identity headers are never echoed: the answer's identity headers come
///   from the verified context only.
///
/// ```
/// use axum::Router;
/// use http::Method;
/// use portcullis::{AuthLayer, User, basic::BasicAuth, gateway::ForwardAuth};
/// use portcullis::policy::{RouteRules, Rule};
///
/// let basic = BasicAuth::new("edge").with_user("alice", User::plain("pw"));
/// let rules = RouteRules::new()
///     .with_any_method("/admin/{*rest}", Rule::role("admin"))
///     .with_fallback(Rule::authenticated());
/// let forward = ForwardAuth::new(AuthLayer::required(basic), rules)
///     .with_public(["/public/{*rest}"])?;
/// let app: Router = Router::new().merge(forward.router("/auth/forward"));
/// # Ok::<(), portcullis::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ForwardAuth {
    inner: Arc<Inner>,
}

struct Inner {
    auth: AuthLayer,
    rules: RouteRules,
    templates: matchit::Router<String>,
    public: matchit::Router<()>,
    headers: IdentityHeaders,
}

impl fmt::Debug for ForwardAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForwardAuth")
            .field("auth", &self.inner.auth)
            .finish_non_exhaustive()
    }
}

/// What a request asked for, as the proxy described it.
struct Original {
    method: Method,
    path: String,
    query: Option<String>,
    /// `X-Forwarded-Host`, checked to be an authority.
    host: Option<http::uri::Authority>,
    /// `X-Forwarded-Proto`.
    scheme: Option<http::uri::Scheme>,
}

impl ForwardAuth {
    /// Judges with `auth` (its authenticators, mode, responder) and `rules`.
    pub fn new(auth: AuthLayer, rules: RouteRules) -> Self {
        let mut templates = matchit::Router::new();
        for t in rules.templates() {
            // A template matchit refuses can never match a path: its rule never applies.
            if templates.insert(t, t.to_owned()).is_err() {
                tracing::error!(route = t, "forward-auth: route template not usable");
            }
        }
        ForwardAuth {
            inner: Arc::new(Inner {
                auth,
                rules,
                templates,
                public: matchit::Router::new(),
                headers: IdentityHeaders::new(),
            }),
        }
    }
    fn edit(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            auth: shared.auth.clone(),
            rules: shared.rules.clone(),
            templates: shared.templates.clone(),
            public: shared.public.clone(),
            headers: shared.headers.clone(),
        });
        f(&mut inner);
        ForwardAuth {
            inner: Arc::new(inner),
        }
    }
    /// Paths (axum 0.8 templates: `/public/{*rest}`, `/health`) that need no credential.
    ///
    /// # Errors
    /// A template that is not a valid route.
    pub fn with_public<I, S>(self, templates: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut public = self.inner.public.clone();
        for t in templates {
            public
                .insert(t.as_ref(), ())
                .map_err(|e| ConfigError::new(format!("forward-auth: bad template: {e}")))?;
        }
        Ok(self.edit(|i| i.public = public))
    }
    /// The identity headers of the 200 answers (default [`IdentityHeaders::new`]).
    pub fn with_identity_headers(self, headers: IdentityHeaders) -> Self {
        self.edit(|i| i.headers = headers)
    }
    /// A router serving the endpoint at `path` and every path under it (Envoy's
    /// `ext_authz` appends the original path to its `path_prefix`), any method (nginx
    /// sends the original one). The request judged is always the one the
    /// `X-Forwarded-*` or `X-Original-*` headers describe, never the endpoint's own path.
    pub fn router<S: Clone + Send + Sync + 'static>(&self, path: &str) -> Router<S> {
        let this = self.clone();
        let endpoint = any(move |req: Request| {
            let this = this.clone();
            async move { this.decide(req).await }
        });
        let base = path.trim_end_matches('/');
        let mut router = Router::new().route(path, endpoint.clone());
        if path != format!("{base}/") {
            router = router.route(&format!("{base}/"), endpoint.clone());
        }
        router.route(&format!("{base}/{{*original}}"), endpoint)
    }

    /// The answer for one forward-auth request.
    pub async fn decide(&self, req: Request) -> Response {
        let (mut parts, _) = req.into_parts();
        let original = match original(&parts.method, &parts.headers) {
            Ok(o) => o,
            Err(e) => {
                tracing::debug!(reason = e.reason(), "forward-auth request refused");
                return e.into_response();
            }
        };
        if self.inner.public.at(&original.path).is_ok()
            && original
                .path
                .strip_suffix('/')
                .is_none_or(|p| p.is_empty() || self.inner.templates.at(p).is_err())
        {
            return StatusCode::OK.into_response();
        }
        // `/admin/` routes as `/admin` on most origins: judged so when nothing else matches.
        let matched = self.inner.templates.at(&original.path).ok().or_else(|| {
            let trimmed = original.path.strip_suffix('/').filter(|p| !p.is_empty())?;
            self.inner.templates.at(trimmed).ok()
        });
        let params: Vec<(String, String)> = matched
            .as_ref()
            .map(|m| {
                m.params
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let template = matched.map(|m| m.value.clone());
        // The request the proxy described, with every header it passed but its own
        // forwarding instructions.
        let target = match &original.query {
            Some(q) => format!("{}?{q}", original.path),
            None => original.path,
        };
        let Ok(mut uri) = target.parse::<Uri>() else {
            return AuthError::malformed("forward-auth: URI").into_response();
        };
        for h in FORWARDING {
            parts.headers.remove(h);
        }
        if let Some(host) = &original.host {
            // An authority is a valid header value.
            if let Ok(v) = http::HeaderValue::from_str(host.as_str()) {
                parts.headers.insert(http::header::HOST, v);
            }
        }
        // With a scheme and a host (the forwarded one, now in `Host`), the URI is absolute;
        // without a host a scheme makes no URI, and the path alone is judged.
        let host = parts.headers.get(http::header::HOST);
        let authority = host.and_then(|h| h.to_str().ok()?.parse().ok());
        if let (Some(scheme), Some(authority)) = (original.scheme, authority) {
            let mut absolute = uri.clone().into_parts();
            absolute.scheme = Some(scheme);
            absolute.authority = Some(authority);
            if let Ok(absolute) = Uri::from_parts(absolute) {
                uri = absolute;
            }
        }
        parts.method = original.method;
        // A login redirect's `next` is the described request's path, not this endpoint's.
        parts
            .extensions
            .insert(axum::extract::OriginalUri(uri.clone()));
        parts.uri = uri;
        let judge = Judge(Arc::new(Judged {
            forward: self.inner.clone(),
            template,
            params,
        }));
        let mut service = self.inner.auth.layer(judge);
        match poll_fn(|cx| service.poll_ready(cx)).await {
            Ok(()) => match service
                .call(Request::from_parts(parts, Body::empty()))
                .await
            {
                Ok(r) => r,
                Err(never) => match never {},
            },
            Err(never) => match never {},
        }
    }
}

/// What the auth layer wraps when judging: the route's rule, then 200 with the identity
/// headers of the context the layer handed over.
#[derive(Clone)]
struct Judge(Arc<Judged>);

/// What one request is judged by.
struct Judged {
    forward: Arc<Inner>,
    template: Option<String>,
    params: Vec<(String, String)>,
}

impl Service<Request> for Judge {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request) -> Self::Future {
        let judged = self.0.clone();
        Box::pin(async move { Ok(judged.judge(req).await) })
    }
}

impl Judged {
    async fn judge(&self, req: Request) -> Response {
        let (parts, _) = req.into_parts();
        let Some(ctx) = parts.extensions.get::<AuthContext>().cloned() else {
            // An optional layer let an anonymous request through: a route needs a credential.
            return AuthError::missing().into_response();
        };
        let rules = &self.forward.rules;
        let rule = self
            .template
            .as_deref()
            .and_then(|t| rules.rule_for(&parts.method, t))
            .or(rules.fallback());
        let Some(rule) = rule else {
            tracing::debug!(
                path = parts.uri.path(),
                "forward-auth: no rule for the path: denied"
            );
            return AuthError::forbidden().into_response();
        };
        let input = PolicyInput {
            ctx: &ctx,
            parts: &parts,
            params: &self.params,
        };
        let refusal = match rule.evaluate(&input).await {
            Ok(Verdict::Allow) => None,
            Ok(Verdict::Deny) => Some(AuthError::forbidden()),
            Ok(Verdict::MissingScope(scope)) => {
                let err = AuthError::insufficient_scope(scope);
                Some(if ctx.scheme() == Scheme::Bearer {
                    err.with_challenge(Challenge::bearer("api"))
                } else {
                    err
                })
            }
            Err(e) => Some(e),
        };
        if let Some(e) = refusal {
            return e.into_response();
        }
        let mut res = StatusCode::OK.into_response();
        match self.forward.headers.write(&ctx, res.headers_mut()) {
            Ok(()) => res,
            Err(e) => e.into_response(),
        }
    }
}

/// The proxy's own forwarding instructions, not part of the described request.
const FORWARDING: [HeaderName; 7] = [
    X_FORWARDED_METHOD,
    X_FORWARDED_URI,
    X_ORIGINAL_METHOD,
    X_ORIGINAL_URI,
    X_FORWARDED_HOST,
    X_FORWARDED_PROTO,
    http::header::CONTENT_LENGTH,
];

/// Exactly one value of `name`, as text; `Ok(None)` when absent.
fn one<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, AuthError> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => v
            .to_str()
            .map(Some)
            .map_err(|_| AuthError::malformed("forward-auth: a forwarding header is not text")),
        (Some(_), Some(_)) => Err(AuthError::malformed(
            "forward-auth: a forwarding header sent twice",
        )),
    }
}

/// The method and URI the proxy says the client sent.
fn original(own: &Method, headers: &HeaderMap) -> Result<Original, AuthError> {
    let pick = |a: &HeaderName, b: &HeaderName| -> Result<Option<String>, AuthError> {
        match (one(headers, a)?, one(headers, b)?) {
            (Some(x), Some(y)) if x != y => Err(AuthError::malformed(
                "forward-auth: X-Forwarded-* and X-Original-* disagree",
            )),
            (Some(x), _) | (None, Some(x)) => Ok(Some(x.to_owned())),
            (None, None) => Ok(None),
        }
    };
    let method = match pick(&X_FORWARDED_METHOD, &X_ORIGINAL_METHOD)? {
        Some(m) => Method::from_bytes(m.as_bytes())
            .map_err(|_| AuthError::malformed("forward-auth: not a method"))?,
        None => own.clone(),
    };
    let uri = pick(&X_FORWARDED_URI, &X_ORIGINAL_URI)?.ok_or_else(|| {
        AuthError::malformed("forward-auth: no X-Forwarded-Uri or X-Original-URI")
    })?;
    let (path, query) = normalize(&uri).map_err(|e| AuthError::malformed(e.0))?;
    let host = one(headers, &X_FORWARDED_HOST)?
        .map(|h| {
            h.parse::<http::uri::Authority>()
                .ok()
                .filter(|a| a.as_str() == h && !h.contains('@'))
                .ok_or_else(|| AuthError::malformed("forward-auth: X-Forwarded-Host is not a host"))
        })
        .transpose()?;
    let scheme = match one(headers, &X_FORWARDED_PROTO)? {
        None => None,
        Some(p) if p.eq_ignore_ascii_case("https") => Some(http::uri::Scheme::HTTPS),
        Some(p) if p.eq_ignore_ascii_case("http") => Some(http::uri::Scheme::HTTP),
        Some(_) => {
            return Err(AuthError::malformed(
                "forward-auth: X-Forwarded-Proto is not http or https",
            ));
        }
    };
    Ok(Original {
        method,
        path,
        query,
        host,
        scheme,
    })
}
