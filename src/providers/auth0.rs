//! [`Auth0`] access tokens.

use super::{Provider, identity, union};
use crate::context::{AuthContextBuilder, PrincipalKind};
use crate::error::AuthError;
use crate::jwt::Claims;
use crate::jwt::ClaimsMapping;

/// Auth0 access tokens for an API.
///
/// - scopes: `scope` plus `permissions` (what Auth0's RBAC adds when "Add Permissions in
///   the Access Token" is on);
/// - roles: the namespaced claim your Auth0 Action sets, named with
///   [`with_roles_claim`](Self::with_roles_claim) (none by default);
/// - tenant: `org_id` (Auth0 Organizations); e-mail: `email` when your Action adds it;
/// - machine-to-machine tokens (`gty` `client-credentials`) are service principals.
///
/// Issuer `https://<tenant>.auth0.com/` (mind the trailing slash), audience your API
/// identifier, keys at `https://<tenant>.auth0.com/.well-known/jwks.json`. An ID token
/// is refused by the audience check: its `aud` is the application's client id.
///
/// ```
/// use portcullis::providers::Auth0;
/// let auth0 = Auth0::new().with_roles_claim("https://example.com/roles");
/// # let _ = auth0;
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Auth0 {
    roles: Option<String>,
}

impl Auth0 {
    /// Scopes and permissions, no roles.
    pub fn new() -> Self {
        Auth0::default()
    }
    /// The namespaced claim holding roles (an array of strings), e.g.
    /// `https://example.com/roles`.
    pub fn with_roles_claim(mut self, claim: impl Into<String>) -> Self {
        self.roles = Some(claim.into());
        self
    }
}

impl Provider for Auth0 {
    fn context(&self, claims: &Claims<'_>) -> Result<AuthContextBuilder, AuthError> {
        let mut mapping = ClaimsMapping::subject_and_email();
        mapping.tenant = Some("org_id".into());
        let scopes = claims.space_separated("scope")?.unwrap_or_default();
        let permissions = claims.strings("permissions")?.unwrap_or_default();
        let roles = match &self.roles {
            Some(name) => claims.strings(name)?.unwrap_or_default(),
            None => Vec::new(),
        };
        let mut b = identity(claims, &mapping)?
            .with_roles(roles)
            .with_scopes(union(scopes, permissions));
        if claims.string("gty")? == Some("client-credentials") {
            b = b.with_principal_kind(PrincipalKind::Service);
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_support::{context, refused};
    use serde_json::json;

    #[test]
    fn user_token_with_rbac_and_namespaced_roles() {
        let t = json!({
            "iss": "https://acme.eu.auth0.com/", "sub": "auth0|64f1c2",
            "aud": ["https://api.acme.test", "https://acme.eu.auth0.com/userinfo"],
            "iat": 1_800_000_000, "exp": 1_900_000_000, "azp": "Xk2cD3", "org_id": "org_9aZ",
            "scope": "openid profile read:orders", "permissions": ["read:orders", "write:orders"],
            "https://example.com/roles": ["manager"]
        });
        let ctx = context(
            &Auth0::new().with_roles_claim("https://example.com/roles"),
            t,
        )
        .unwrap();
        assert_eq!(
            ctx.scopes(),
            ["openid", "profile", "read:orders", "write:orders"]
        );
        assert_eq!(ctx.roles(), ["manager"]);
        assert_eq!(ctx.tenant(), Some("org_9aZ"));
        assert!(!ctx.is_service());
    }

    #[test]
    fn machine_to_machine_tokens_are_services() {
        let t = json!({
            "iss": "https://acme.eu.auth0.com/", "sub": "Xk2cD3@clients",
            "aud": "https://api.acme.test", "iat": 1, "exp": 2, "azp": "Xk2cD3",
            "gty": "client-credentials", "permissions": ["read:orders"]
        });
        let ctx = context(&Auth0::new(), t).unwrap();
        assert!(ctx.is_service());
        assert_eq!(ctx.scopes(), ["read:orders"]);
    }

    #[test]
    fn wrong_claim_types_are_refused() {
        let t = json!({"sub": "auth0|1", "permissions": "read:orders"});
        assert_eq!(
            refused(&Auth0::new(), t),
            "jwt: list claim has the wrong type"
        );
        let t = json!({"sub": "auth0|1", "https://example.com/roles": "admin"});
        assert_eq!(
            refused(
                &Auth0::new().with_roles_claim("https://example.com/roles"),
                t
            ),
            "jwt: list claim has the wrong type"
        );
    }
}
