//! [`NewSession`]: what a login puts into a session.

use serde_json::{Map, Value};

/// What a new session carries into its contexts.
///
/// ```
/// use portcullis::session::NewSession;
/// let s = NewSession::new("alice").with_roles(["admin"]).with_tenant("acme").with_data("theme", "dark");
/// # let _ = s;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct NewSession {
    pub(crate) subject: String,
    pub(crate) roles: Vec<String>,
    pub(crate) tenant: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) issuer: Option<String>,
    /// Set by an OpenID Connect login.
    pub(crate) provider_session: Option<super::ProviderSession>,
    pub(crate) data: Map<String, Value>,
}

impl NewSession {
    /// A session for `subject`.
    pub fn new(subject: impl Into<String>) -> Self {
        NewSession {
            subject: subject.into(),
            roles: Vec::new(),
            tenant: None,
            email: None,
            issuer: None,
            provider_session: None,
            data: Map::new(),
        }
    }
    /// A session for `name`, carrying the roles, e-mail and tenant of `user` (as
    /// returned by [`Users::verify`](crate::Users::verify)).
    ///
    /// ```
    /// use portcullis::{User, session::NewSession};
    /// let user = User::plain("pw").with_roles(["admin"]).with_tenant("acme");
    /// let s = NewSession::for_user("alice", &user);
    /// # let _ = s;
    /// ```
    pub fn for_user(name: impl Into<String>, user: &crate::User) -> Self {
        NewSession {
            subject: name.into(),
            roles: user.roles().to_vec(),
            tenant: user.tenant().map(str::to_owned),
            email: user.email().map(str::to_owned),
            issuer: None,
            provider_session: None,
            data: Map::new(),
        }
    }
    /// Roles.
    pub fn with_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }
    /// Tenant.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }
    /// E-mail.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }
    /// The issuer that vouched for the subject (an OAuth login sets its provider's
    /// issuer when the hook does not): the context's `issuer`, so that one `subject`
    /// from two providers is two identities.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }
    /// One custom value (becomes a claim of the context).
    pub fn with_data(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.data.insert(key.into(), value.into());
        self
    }
}
