//! [`OwnerKey`]: which attribute of the context an ownership check compares with a
//! resource's owner; and the checks handlers call with it,
//! [`AuthContext::require_owner`] and [`AuthContext::require_owner_as`].

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::context::AuthContext;
use crate::error::AuthError;

type KeyFn = dyn Fn(&AuthContext) -> Option<String> + Send + Sync;

#[derive(Clone)]
enum Key {
    Subject,
    Email,
    Claim(String),
    Custom(Cow<'static, str>, Arc<KeyFn>),
}

/// The attribute of the context an ownership check compares with the owner a resource
/// records: the subject by default, or the e-mail, a named claim, or your own function.
/// The comparison is exact (case-sensitive); a context without the attribute owns
/// nothing.
///
/// Pick the attribute your resources store. Behind Cloudflare Access or another
/// identity-aware proxy the subject is an opaque id (a UUID), so documents owned by
/// `bob@example.com` need [`OwnerKey::email`]; with an OAuth login the default subject
/// is `<issuer>#<sub>`.
///
/// ```
/// use portcullis::{AuthContext, Scheme, policy::{OwnerKey, Rule}};
/// let by_email = Rule::owner_of_path_as("owner", OwnerKey::email());
/// let by_claim = Rule::owner_of_path_as("user", OwnerKey::claim("preferred_username"));
/// let by_hand = OwnerKey::with("lowercased email", |ctx: &AuthContext| {
///     ctx.email().map(str::to_lowercase)
/// });
/// let ctx = AuthContext::builder("7335d417", Scheme::CloudflareAccess)
///     .with_email("Bob@example.com")
///     .build();
/// assert_eq!(by_hand.of(&ctx).as_deref(), Some("bob@example.com"));
/// assert!(ctx.require_owner_as(&OwnerKey::email(), "Bob@example.com", &[]).is_ok());
/// # let _ = (by_email, by_claim);
/// ```
#[derive(Clone)]
pub struct OwnerKey(Key);

impl OwnerKey {
    /// The subject (`sub`, the user name, the session's subject): the default.
    pub fn subject() -> Self {
        OwnerKey(Key::Subject)
    }
    /// The e-mail address ([`AuthContext::email`]).
    pub fn email() -> Self {
        OwnerKey(Key::Email)
    }
    /// A string claim of the token, or a string value of the session's data.
    pub fn claim(name: impl Into<String>) -> Self {
        OwnerKey(Key::Claim(name.into()))
    }
    /// Your own function of the context (`name` is what logs and rule names show).
    pub fn with<F>(name: impl Into<Cow<'static, str>>, f: F) -> Self
    where
        F: Fn(&AuthContext) -> Option<String> + Send + Sync + 'static,
    {
        OwnerKey(Key::Custom(name.into(), Arc::new(f)))
    }

    /// The context's value of this attribute, `None` when it has none.
    pub fn of<'c>(&self, ctx: &'c AuthContext) -> Option<Cow<'c, str>> {
        match &self.0 {
            Key::Subject => Some(Cow::Borrowed(ctx.subject())),
            Key::Email => ctx.email().map(Cow::Borrowed),
            Key::Claim(name) => ctx
                .claims()
                .get(name)
                .and_then(|v| v.as_str())
                .map(Cow::Borrowed),
            Key::Custom(_, f) => f(ctx).map(Cow::Owned),
        }
    }

    /// True when the context's value of this attribute is exactly `owner`.
    pub fn matches(&self, ctx: &AuthContext, owner: &str) -> bool {
        self.of(ctx).is_some_and(|v| v == owner)
    }

    pub(crate) fn is_subject(&self) -> bool {
        matches!(self.0, Key::Subject)
    }
}

impl Default for OwnerKey {
    fn default() -> Self {
        Self::subject()
    }
}

impl fmt::Display for OwnerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Key::Subject => f.write_str("subject"),
            Key::Email => f.write_str("email"),
            Key::Claim(n) => write!(f, "claim {n}"),
            Key::Custom(n, _) => f.write_str(n),
        }
    }
}

impl fmt::Debug for OwnerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OwnerKey({self})")
    }
}

/// Ownership checks in handlers, by the key they compare.
impl AuthContext {
    /// `Ok` when the **subject** is `owner` or the context holds one of
    /// `override_roles`; a ready 403 otherwise. For handlers that must load the row
    /// before they know its owner. To compare the e-mail, a claim or your own key, use
    /// [`require_owner_as`](Self::require_owner_as).
    ///
    /// ```
    /// # use portcullis::{AuthContext, Scheme};
    /// let ctx = AuthContext::builder("alice", Scheme::Session).build();
    /// assert!(ctx.require_owner("alice", &["admin"]).is_ok());
    /// assert_eq!(ctx.require_owner("bob", &["admin"]).unwrap_err().status(), 403);
    /// ```
    pub fn require_owner(&self, owner: &str, override_roles: &[&str]) -> Result<(), AuthError> {
        self.require_owner_as(&OwnerKey::subject(), owner, override_roles)
    }

    /// `Ok` when the context's `key` attribute is exactly `owner` or the context holds
    /// one of `override_roles`; a ready 403 otherwise.
    ///
    /// ```
    /// # use portcullis::{AuthContext, Scheme, policy::OwnerKey};
    /// let ctx = AuthContext::builder("7335d417", Scheme::CloudflareAccess)
    ///     .with_email("bob@example.com")
    ///     .build();
    /// assert!(ctx.require_owner_as(&OwnerKey::email(), "bob@example.com", &[]).is_ok());
    /// assert!(ctx.require_owner("bob@example.com", &[]).is_err(), "the subject is the UUID");
    /// ```
    pub fn require_owner_as(
        &self,
        key: &OwnerKey,
        owner: &str,
        override_roles: &[&str],
    ) -> Result<(), AuthError> {
        if key.matches(self, owner) || override_roles.iter().any(|r| self.has_role(r)) {
            Ok(())
        } else {
            tracing::debug!(by = %key, "not the owner: denied");
            Err(AuthError::forbidden())
        }
    }
}
