//! [`AuthContext`]: who the request is, however it authenticated.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use self::claims_cell::ClaimsCell;

mod builder;
mod claims_cell;
#[cfg(feature = "session")]
mod provider_session;

pub use self::builder::AuthContextBuilder;
#[cfg(feature = "session")]
pub use self::provider_session::ProviderSession;

/// The scheme that produced an [`AuthContext`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Scheme {
    /// HTTP Basic (RFC 7617).
    Basic,
    /// Bearer JWT (RFC 6750).
    Bearer,
    /// Session cookie.
    Session,
    /// Cloudflare Access JWT.
    CloudflareAccess,
    /// A JWT signed by another identity-aware proxy (Google IAP, AWS ALB, Pomerium).
    IdentityProxy,
    /// Anything else: a custom authenticator.
    Custom,
}

impl Scheme {
    /// The name used in JSON and logs (`basic`, `bearer`, `session`, `cloudflare_access`,
    /// `identity_proxy`, `custom`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Basic => "basic",
            Scheme::Bearer => "bearer",
            Scheme::Session => "session",
            Scheme::CloudflareAccess => "cloudflare_access",
            Scheme::IdentityProxy => "identity_proxy",
            Scheme::Custom => "custom",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of principal a context stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PrincipalKind {
    /// A person (the default).
    User,
    /// A machine client, such as a Cloudflare Access service token.
    Service,
}

#[derive(Debug, Clone, PartialEq)]
struct Inner {
    subject: String,
    scheme: Scheme,
    kind: PrincipalKind,
    roles: Vec<String>,
    scopes: Vec<String>,
    email: Option<String>,
    tenant: Option<String>,
    issuer: Option<Arc<str>>,
    expires_at: Option<u64>,
    issued_at: Option<u64>,
    token_id: Option<Box<str>>,
    session_id: Option<String>,
    /// The JWK thumbprint a token is bound to (`cnf.jkt`), read when it was verified.
    #[cfg(feature = "jwt")]
    key_binding: Option<Box<str>>,
    /// For a session made by an OpenID Connect login: the provider's issuer, `sub` and
    /// `sid`, which a back-channel logout names.
    #[cfg(feature = "session")]
    provider_session: Option<Box<ProviderSession>>,
    claims: ClaimsCell,
}

/// The authenticated identity of a request, the same for every scheme.
///
/// Layers insert it into the request extensions; handlers take it as an extractor
/// (`AuthContext` or `Option<AuthContext>`). Cloning is cheap (one `Arc`).
///
/// ```
/// use portcullis::{AuthContext, Scheme};
///
/// let ctx = AuthContext::builder("alice", Scheme::Bearer)
///     .with_roles(["admin"])
///     .with_scopes(["posts:read"])
///     .with_claim("plan", "pro")
///     .build();
/// assert!(ctx.has_role("admin"));
/// assert!(ctx.has_scope("posts:read"));
/// assert_eq!(ctx.claim::<String>("plan").as_deref(), Some("pro"));
/// ```
#[derive(Clone, PartialEq)]
pub struct AuthContext(Arc<Inner>);

impl AuthContext {
    /// Start building a context for `subject` authenticated by `scheme`.
    pub fn builder(subject: impl Into<String>, scheme: Scheme) -> AuthContextBuilder {
        AuthContextBuilder(Arc::new(Inner {
            subject: subject.into(),
            scheme,
            kind: PrincipalKind::User,
            roles: Vec::new(),
            scopes: Vec::new(),
            email: None,
            tenant: None,
            issuer: None,
            expires_at: None,
            issued_at: None,
            token_id: None,
            session_id: None,
            #[cfg(feature = "jwt")]
            key_binding: None,
            #[cfg(feature = "session")]
            provider_session: None,
            claims: ClaimsCell::default(),
        }))
    }

    /// The principal's identifier (`sub`, user name, service client id).
    pub fn subject(&self) -> &str {
        &self.0.subject
    }
    /// The scheme that authenticated the request.
    pub fn scheme(&self) -> Scheme {
        self.0.scheme
    }
    /// Whether this is a user or a service principal.
    pub fn principal_kind(&self) -> PrincipalKind {
        self.0.kind
    }
    /// Roles granted to the principal.
    pub fn roles(&self) -> &[String] {
        &self.0.roles
    }
    /// OAuth scopes granted to the token.
    pub fn scopes(&self) -> &[String] {
        &self.0.scopes
    }
    /// E-mail address, when the scheme provides one.
    pub fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    /// Tenant (organisation, workspace) the principal belongs to.
    pub fn tenant(&self) -> Option<&str> {
        self.0.tenant.as_deref()
    }
    /// Token issuer, for token-based schemes.
    pub fn issuer(&self) -> Option<&str> {
        self.0.issuer.as_deref()
    }
    /// Expiry as seconds since the Unix epoch.
    pub fn expires_at(&self) -> Option<u64> {
        self.0.expires_at
    }
    /// Resolves when the context expires ([`expires_at`](Self::expires_at)); never when it
    /// has no expiry. For long-lived connections (WebSockets, server-sent events) that
    /// must end, or ask to re-authenticate, when the credential they opened with does.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use portcullis::{AuthContext, Scheme};
    /// let past = AuthContext::builder("bob", Scheme::Bearer).with_expires_at(1).build();
    /// past.expired().await; // at once: it expired long ago
    /// # });
    /// ```
    pub async fn expired(&self) {
        match self.expires_at() {
            Some(at) => {
                let left = at as f64 - crate::clock::unix_secs_f64();
                if left > 0.0 {
                    tokio::time::sleep(std::time::Duration::from_secs_f64(left)).await;
                }
            }
            None => std::future::pending().await,
        }
    }
    /// When the credential was issued (a token's `iat`, a session's login), as seconds
    /// since the Unix epoch.
    pub fn issued_at(&self) -> Option<u64> {
        self.0.issued_at
    }
    /// The OpenID Connect login that made a session, if one did.
    #[cfg(feature = "session")]
    pub(crate) fn provider_session(&self) -> Option<&ProviderSession> {
        self.0.provider_session.as_deref()
    }
    /// The token's `jti`, when it has one.
    pub fn token_id(&self) -> Option<&str> {
        self.0.token_id.as_deref()
    }
    /// The JWK thumbprint (`cnf.jkt`) a bearer token is bound to, read when it was
    /// verified.
    #[cfg(feature = "jwt")]
    pub(crate) fn key_binding(&self) -> Option<&str> {
        self.0.key_binding.as_deref()
    }
    /// A non-secret identifier of the session (for session contexts), safe to log.
    pub fn session_id(&self) -> Option<&str> {
        self.0.session_id.as_deref()
    }
    /// All raw claims (JWT payload, or session data). For a verified token the map is
    /// built from the payload on the first call, so handlers that never ask pay nothing.
    pub fn claims(&self) -> &Map<String, Value> {
        self.0.claims.get()
    }

    /// True when the principal holds `role` (exact, case-sensitive match).
    pub fn has_role(&self, role: &str) -> bool {
        self.0.roles.iter().any(|r| r == role)
    }
    /// True when the token grants `scope` (exact, case-sensitive match).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes.iter().any(|s| s == scope)
    }
    /// True when the principal is a service (machine) client.
    pub fn is_service(&self) -> bool {
        self.0.kind == PrincipalKind::Service
    }

    /// One claim, deserialized into `T`; `None` when absent or of another type.
    ///
    /// ```
    /// # use portcullis::{AuthContext, Scheme};
    /// let ctx = AuthContext::builder("bob", Scheme::Bearer).with_claim("age", 42).build();
    /// assert_eq!(ctx.claim::<u32>("age"), Some(42));
    /// assert_eq!(ctx.claim::<String>("age"), None);
    /// ```
    pub fn claim<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        self.claims().get(name).and_then(|v| T::deserialize(v).ok())
    }

    /// All claims deserialized into your own struct.
    ///
    /// ```
    /// # use portcullis::{AuthContext, Scheme};
    /// #[derive(serde::Deserialize)]
    /// struct Mine { plan: String }
    /// let ctx = AuthContext::builder("bob", Scheme::Bearer).with_claim("plan", "pro").build();
    /// let mine: Mine = ctx.claims_as().unwrap();
    /// assert_eq!(mine.plan, "pro");
    /// ```
    pub fn claims_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(Value::Object(self.claims().clone()))
    }

    /// A copy of this context with more roles (for example roles looked up in a database).
    pub fn with_extra_roles<I, S>(&self, roles: I) -> AuthContext
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut inner = (*self.0).clone();
        for r in roles {
            let r = r.into();
            if !inner.roles.contains(&r) {
                inner.roles.push(r);
            }
        }
        AuthContext(Arc::new(inner))
    }
}

impl fmt::Debug for AuthContext {
    // Claims may carry personal data: keep them out of Debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthContext")
            .field("subject", &self.0.subject)
            .field("scheme", &self.0.scheme)
            .field("kind", &self.0.kind)
            .field("roles", &self.0.roles)
            .field("scopes", &self.0.scopes)
            .field("tenant", &self.0.tenant)
            .field("issuer", &self.0.issuer)
            .field("expires_at", &self.0.expires_at)
            .finish_non_exhaustive()
    }
}

impl Serialize for AuthContext {
    /// Serializes the public view: `subject`, `scheme`, `principal`, `roles`, `scopes`,
    /// `email`, `tenant`, `issuer`, `expires_at` (never raw claims or session ids).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            subject: &'a str,
            scheme: Scheme,
            principal: PrincipalKind,
            roles: &'a [String],
            scopes: &'a [String],
            email: Option<&'a str>,
            tenant: Option<&'a str>,
            issuer: Option<&'a str>,
            expires_at: Option<u64>,
        }
        View {
            subject: &self.0.subject,
            scheme: self.0.scheme,
            principal: self.0.kind,
            roles: &self.0.roles,
            scopes: &self.0.scopes,
            email: self.0.email.as_deref(),
            tenant: self.0.tenant.as_deref(),
            issuer: self.0.issuer.as_deref(),
            expires_at: self.0.expires_at,
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_public_fields_only() {
        let ctx = AuthContext::builder("u1", Scheme::CloudflareAccess)
            .with_email("a@b.c")
            .with_session_id("secret-ish")
            .with_claim("pii", "x")
            .build();
        let v = serde_json::to_value(&ctx).unwrap();
        assert_eq!(v["subject"], "u1");
        assert_eq!(v["scheme"], "cloudflare_access");
        assert_eq!(v["email"], "a@b.c");
        assert!(v.get("pii").is_none());
        assert!(v.get("session_id").is_none());
        assert!(!format!("{ctx:?}").contains("pii"));
    }

    #[test]
    fn extra_roles_do_not_duplicate() {
        let ctx = AuthContext::builder("u", Scheme::Basic)
            .with_roles(["a"])
            .build();
        let more = ctx.with_extra_roles(["a", "b"]);
        assert_eq!(more.roles(), ["a", "b"]);
        assert_eq!(ctx.roles(), ["a"]);
    }
}
