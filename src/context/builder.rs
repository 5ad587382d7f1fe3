//! [`AuthContextBuilder`]: a context put together field by field, in the `Arc` it will
//! live in.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::claims_cell::ClaimsCell;
use super::{AuthContext, Inner, PrincipalKind};

/// Builder for [`AuthContext`]; see [`AuthContext::builder`].
///
/// It holds the `Arc` the context will live in, so each setter moves a pointer and
/// [`build`](Self::build) allocates nothing: cheap enough for every request.
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthContextBuilder(pub(super) Arc<Inner>);

impl AuthContextBuilder {
    /// The context under construction (unshared until `build`, so no copy is made).
    fn inner(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.0)
    }
    /// Set the roles.
    pub fn with_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner().roles = roles.into_iter().map(Into::into).collect();
        self
    }
    /// Set the scopes.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner().scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
    /// Mark the principal as a user or a service.
    pub fn with_principal_kind(mut self, kind: PrincipalKind) -> Self {
        self.inner().kind = kind;
        self
    }
    /// Set the e-mail address.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.inner().email = Some(email.into());
        self
    }
    /// Set the tenant.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.inner().tenant = Some(tenant.into());
        self
    }
    /// Set the issuer.
    pub fn with_issuer(mut self, issuer: impl Into<Arc<str>>) -> Self {
        self.inner().issuer = Some(issuer.into());
        self
    }
    /// Set the expiry (seconds since the Unix epoch).
    pub fn with_expires_at(mut self, secs: u64) -> Self {
        self.inner().expires_at = Some(secs);
        self
    }
    /// Set when the credential was issued (seconds since the Unix epoch).
    pub fn with_issued_at(mut self, secs: u64) -> Self {
        self.inner().issued_at = Some(secs);
        self
    }
    /// Set the token id (`jti`).
    pub fn with_token_id(mut self, id: impl Into<Box<str>>) -> Self {
        self.inner().token_id = Some(id.into());
        self
    }
    /// The OpenID Connect login that made a session.
    #[cfg(feature = "session")]
    pub(crate) fn with_provider_session(mut self, p: super::ProviderSession) -> Self {
        self.inner().provider_session = Some(Box::new(p));
        self
    }
    /// Set the (non-secret) session identifier.
    pub fn with_session_id(mut self, id: impl Into<String>) -> Self {
        self.inner().session_id = Some(id.into());
        self
    }
    /// Add one raw claim.
    pub fn with_claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.inner()
            .claims
            .get_mut()
            .insert(name.into(), value.into());
        self
    }
    /// Replace all raw claims.
    pub fn with_claims(mut self, claims: Map<String, Value>) -> Self {
        self.inner().claims = ClaimsCell::Map(claims);
        self
    }
    /// The JWK thumbprint (`cnf.jkt`) the token is bound to (RFC 9449 section 6).
    #[cfg(feature = "jwt")]
    pub(crate) fn with_key_binding(mut self, jkt: Option<&str>) -> Self {
        self.inner().key_binding = jkt.map(Box::from);
        self
    }
    /// Replace all raw claims with a JSON object that passed the strict parser.
    #[cfg(feature = "jwt")]
    pub(crate) fn with_raw_claims(mut self, json: Vec<u8>) -> Self {
        self.inner().claims = ClaimsCell::from_raw(json);
        self
    }
    /// Finish.
    pub fn build(self) -> AuthContext {
        AuthContext(self.0)
    }
}
