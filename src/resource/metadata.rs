//! [`ProtectedResource`]: RFC 9728 protected resource metadata, served for clients (MCP
//! clients among them) to discover which authorization server issues tokens for it.

use axum::Router;
use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use axum::routing::get_service;
use http::HeaderValue;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use serde_json::{Map, Value, json};

use super::proof::normalized_htu;
use crate::error::ConfigError;
use crate::jose::algorithm::Algorithm;

/// The well-known path of RFC 9728.
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

/// A protected resource's RFC 9728 metadata: its identifier (the URL clients use, which
/// is also the audience its tokens must name), the authorization servers that issue
/// tokens for it, the scopes it knows, how tokens may be sent, and DPoP when it takes
/// proofs.
///
/// Serve it with [`router`](Self::router), and hand it to
/// [`BearerAuth::with_resource`](crate::jwt::BearerAuth::with_resource) so every 401 and
/// 403 carries `resource_metadata="..."` (and tokens for another audience are refused
/// when none is configured), and to
/// [`PolicyLayer::with_resource`](crate::policy::PolicyLayer::with_resource) for its
/// `insufficient_scope` answers.
///
/// ```
/// use axum::Router;
/// use portcullis::resource::ProtectedResource;
///
/// let resource = ProtectedResource::new("https://api.example.com/mcp")?
///     .with_authorization_server("https://login.example.com")?
///     .with_scopes(["tasks:read", "tasks:write"]);
/// assert_eq!(
///     resource.metadata_url(),
///     "https://api.example.com/.well-known/oauth-protected-resource/mcp"
/// );
/// let app: Router = Router::new().merge(resource.router());
/// # Ok::<(), portcullis::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ProtectedResource {
    resource: url::Url,
    authorization_servers: Vec<String>,
    scopes: Vec<String>,
    bearer_methods: Vec<String>,
    signing_algorithms: Vec<Algorithm>,
    dpop_algorithms: Vec<Algorithm>,
    dpop_required: bool,
    name: Option<String>,
    documentation: Option<String>,
}

/// An absolute https URL (http on loopback hosts) without query or fragment.
fn checked_url(text: &str, what: &str) -> Result<url::Url, ConfigError> {
    let bad = || {
        ConfigError::new(format!(
            "{what} must be an absolute https URL without query: {text:?}"
        ))
    };
    if text.contains(['?', '#']) {
        return Err(bad());
    }
    let url = normalized_htu(text).ok_or_else(bad)?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() != "https" && !loopback {
        return Err(bad());
    }
    Ok(url)
}

impl ProtectedResource {
    /// The resource identified by `resource`: the URL clients address it by
    /// (`https://api.example.com`, or `https://api.example.com/mcp`).
    ///
    /// # Errors
    /// Not an absolute https URL (http only on loopback hosts), or it has a query.
    pub fn new(resource: &str) -> Result<Self, ConfigError> {
        Ok(ProtectedResource {
            resource: checked_url(resource, "the resource identifier")?,
            authorization_servers: Vec::new(),
            scopes: Vec::new(),
            bearer_methods: vec!["header".into()],
            signing_algorithms: Vec::new(),
            dpop_algorithms: Vec::new(),
            dpop_required: false,
            name: None,
            documentation: None,
        })
    }
    /// An authorization server (its issuer identifier) that issues tokens for this
    /// resource; call again for several.
    ///
    /// # Errors
    /// Not an absolute https URL (http only on loopback hosts).
    pub fn with_authorization_server(mut self, issuer: &str) -> Result<Self, ConfigError> {
        checked_url(issuer, "an authorization server")?;
        self.authorization_servers.push(issuer.to_owned());
        Ok(self)
    }
    /// The scopes this resource knows (`scopes_supported`).
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
    /// How tokens may be sent (`bearer_methods_supported`; default `["header"]`).
    pub fn with_bearer_methods<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.bearer_methods = methods.into_iter().map(Into::into).collect();
        self
    }
    /// The algorithms this resource signs its responses with
    /// (`resource_signing_alg_values_supported`), when it signs any.
    pub fn with_signing_algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.signing_algorithms = algs.into_iter().collect();
        self
    }
    /// DPoP as `dpop` accepts it: `dpop_signing_alg_values_supported` and
    /// `dpop_bound_access_tokens_required`.
    pub fn with_dpop(mut self, dpop: &super::Dpop) -> Self {
        self.dpop_algorithms = dpop.algorithms().to_vec();
        self.dpop_required = dpop.is_required();
        self
    }
    /// A human-readable name (`resource_name`).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Where developers read how to use it (`resource_documentation`).
    ///
    /// # Errors
    /// Not an absolute https URL (http only on loopback hosts).
    pub fn with_documentation(mut self, url: &str) -> Result<Self, ConfigError> {
        checked_url(url, "the documentation URL")?;
        self.documentation = Some(url.to_owned());
        Ok(self)
    }

    /// The resource identifier, as configured.
    pub fn identifier(&self) -> &str {
        let s = self.resource.as_str();
        // `url` adds a `/` to a bare origin; the identifier is what was configured.
        if self.resource.path() == "/" {
            s.trim_end_matches('/')
        } else {
            s
        }
    }
    /// The path the metadata is served at: the well-known path, with the resource's
    /// own path inserted after it (RFC 9728 section 3.1).
    pub(crate) fn metadata_path(&self) -> String {
        let path = self.resource.path().trim_end_matches('/');
        format!("{WELL_KNOWN_PATH}{path}")
    }
    /// The metadata URL, for `WWW-Authenticate: ... resource_metadata="..."`.
    pub fn metadata_url(&self) -> String {
        let mut url = self.resource.clone();
        url.set_path(&self.metadata_path());
        url.to_string()
    }
    /// A 403 `insufficient_scope` naming `scope` and this resource's metadata, for a
    /// handler that decides per request what it needs (a JSON-RPC method, say): the
    /// client asks its authorization server for a token with that scope (step-up).
    ///
    /// ```
    /// # use portcullis::resource::ProtectedResource;
    /// let resource = ProtectedResource::new("https://api.example.com/mcp")?;
    /// let err = resource.insufficient_scope("api", "tasks:write");
    /// assert_eq!(err.status(), 403);
    /// let header = err.www_authenticate()[0].to_str().unwrap().to_owned();
    /// assert!(header.contains(r#"scope="tasks:write""#) && header.contains("resource_metadata="));
    /// # Ok::<(), portcullis::ConfigError>(())
    /// ```
    pub fn insufficient_scope(&self, realm: &str, scope: &str) -> crate::AuthError {
        crate::AuthError::insufficient_scope(scope).with_challenge(
            crate::Challenge::bearer(realm).with_resource_metadata(&self.metadata_url()),
        )
    }
    /// The metadata document.
    pub fn document(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("resource".into(), self.identifier().into());
        let mut list = |name: &str, items: Vec<String>| {
            if !items.is_empty() {
                doc.insert(name.into(), json!(items));
            }
        };
        list("authorization_servers", self.authorization_servers.clone());
        list("scopes_supported", self.scopes.clone());
        list("bearer_methods_supported", self.bearer_methods.clone());
        let names = |algs: &[Algorithm]| algs.iter().map(|a| a.as_str().to_owned()).collect();
        list(
            "resource_signing_alg_values_supported",
            names(&self.signing_algorithms),
        );
        list(
            "dpop_signing_alg_values_supported",
            names(&self.dpop_algorithms),
        );
        if self.dpop_required {
            doc.insert("dpop_bound_access_tokens_required".into(), true.into());
        }
        if let Some(n) = &self.name {
            doc.insert("resource_name".into(), n.clone().into());
        }
        if let Some(d) = &self.documentation {
            doc.insert("resource_documentation".into(), d.clone().into());
        }
        Value::Object(doc)
    }
    /// A router serving the document at the path of [`metadata_url`](Self::metadata_url)
    /// (the well-known path with the resource's own path inserted after it, RFC 9728
    /// section 3.1) and at the bare well-known path too, for clients that do not insert
    /// the resource's path, as `application/json`; merge it into your app outside any
    /// auth layer.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let serve = get_service(Document(Bytes::from(self.document().to_string())));
        let mut router = Router::new().route(&self.metadata_path(), serve.clone());
        if self.metadata_path() != WELL_KNOWN_PATH {
            router = router.route(WELL_KNOWN_PATH, serve);
        }
        router
    }
}

/// The document, serialized once: each request gets a clone of the bytes, answered
/// at once (no handler future to box).
#[derive(Clone)]
struct Document(Bytes);

impl<B> tower_service::Service<http::Request<B>> for Document {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Response, std::convert::Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<B>) -> Self::Future {
        std::future::ready(Ok(metadata_response(self.0.clone())))
    }
}

fn metadata_response(body: Bytes) -> Response {
    let mut res = body.into_response();
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_document() {
        let root = ProtectedResource::new("https://API.example.com:443").unwrap();
        assert_eq!(root.identifier(), "https://api.example.com");
        assert_eq!(root.metadata_path(), WELL_KNOWN_PATH);
        assert_eq!(
            root.metadata_url(),
            "https://api.example.com/.well-known/oauth-protected-resource"
        );
        let mcp = ProtectedResource::new("https://api.example.com/mcp/")
            .unwrap()
            .with_authorization_server("https://login.example.com")
            .unwrap()
            .with_scopes(["a", "b"]);
        assert_eq!(
            mcp.metadata_path(),
            "/.well-known/oauth-protected-resource/mcp"
        );
        let doc = mcp.document();
        assert_eq!(doc["resource"], "https://api.example.com/mcp/");
        assert_eq!(
            doc["authorization_servers"],
            json!(["https://login.example.com"])
        );
        assert_eq!(doc["scopes_supported"], json!(["a", "b"]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        assert!(doc.get("dpop_signing_alg_values_supported").is_none());
        for bad in [
            "http://api.example.com",
            "https://api.example.com/?x=1",
            "https://api.example.com/#f",
            "api.example.com",
            "ftp://api.example.com",
        ] {
            assert!(ProtectedResource::new(bad).is_err(), "{bad}");
        }
        assert!(ProtectedResource::new("http://127.0.0.1:3000").is_ok());
    }
}
