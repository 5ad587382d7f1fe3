//! [`Keycloak`] access tokens.

use super::{Provider, identity, union};
use crate::context::{AuthContextBuilder, PrincipalKind};
use crate::error::AuthError;
use crate::jwt::Claims;
use crate::jwt::ClaimsMapping;

/// Keycloak access tokens.
///
/// - roles: the realm roles (`realm_access.roles`), plus the client roles of
///   [`with_client_roles`](Self::with_client_roles)
///   (`resource_access.<client>.roles`);
/// - scopes: `scope`; e-mail: `email`;
/// - a token whose `typ` claim is not `Bearer` (an ID or refresh token) is refused;
/// - service-account tokens (they carry `client_id`) are service principals.
///
/// Issuer `https://<host>/realms/<realm>`, keys by discovery on that URL.
///
/// ```
/// use portcullis::providers::Keycloak;
/// let keycloak = Keycloak::new().with_client_roles("orders-api");
/// # let _ = keycloak;
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Keycloak {
    client: Option<String>,
}

impl Keycloak {
    /// Realm roles only.
    pub fn new() -> Self {
        Keycloak::default()
    }
    /// Also the roles of this client (its client id), as Keycloak puts them in
    /// `resource_access.<client>.roles`.
    pub fn with_client_roles(mut self, client_id: impl Into<String>) -> Self {
        self.client = Some(client_id.into());
        self
    }
}

impl Provider for Keycloak {
    fn context(&self, claims: &Claims<'_>) -> Result<AuthContextBuilder, AuthError> {
        match claims.string("typ")? {
            None | Some("Bearer") => {}
            Some(_) => return Err(AuthError::invalid("keycloak: not an access token")),
        }
        let mut mapping = ClaimsMapping::subject_and_email();
        mapping.scopes = vec!["scope".into()];
        let mut roles = claims
            .strings_at(&["realm_access", "roles"])?
            .unwrap_or_default();
        if let Some(client) = &self.client {
            let client_roles = claims
                .strings_at(&["resource_access", client, "roles"])?
                .unwrap_or_default();
            roles = union(roles, client_roles);
        }
        let mut b = identity(claims, &mapping)?.with_roles(roles);
        if claims.string("client_id")?.is_some() {
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

    /// Shaped like Keycloak's own access tokens.
    fn token() -> serde_json::Value {
        json!({
            "exp": 1_900_000_000, "iat": 1_800_000_000, "jti": "0b6c2f9e",
            "iss": "https://sso.example.com/realms/acme", "aud": ["orders-api", "account"],
            "sub": "f3a8c1d2-7b7e-4c1e-9b7a-2d3c4e5f6a7b", "typ": "Bearer", "azp": "web",
            "session_state": "8c0b", "acr": "1",
            "realm_access": {"roles": ["offline_access", "uma_authorization", "staff"]},
            "resource_access": {
                "orders-api": {"roles": ["orders.admin"]},
                "account": {"roles": ["manage-account"]}
            },
            "scope": "openid email profile", "email_verified": true,
            "preferred_username": "alice", "email": "alice@example.com"
        })
    }

    #[test]
    fn realm_and_client_roles() {
        let ctx = context(&Keycloak::new().with_client_roles("orders-api"), token()).unwrap();
        assert_eq!(
            ctx.roles(),
            [
                "offline_access",
                "uma_authorization",
                "staff",
                "orders.admin"
            ]
        );
        assert_eq!(ctx.scopes(), ["openid", "email", "profile"]);
        assert_eq!(ctx.email(), Some("alice@example.com"));
        assert!(!ctx.is_service());
        let realm_only = context(&Keycloak::new(), token()).unwrap();
        assert!(!realm_only.has_role("orders.admin"));
    }

    #[test]
    fn client_ids_with_dots_are_one_key() {
        let mut t = token();
        t["resource_access"]["api.v2"] = json!({"roles": ["dotted"]});
        let ctx = context(&Keycloak::new().with_client_roles("api.v2"), t).unwrap();
        assert!(ctx.has_role("dotted"));
    }

    #[test]
    fn id_and_refresh_tokens_are_refused() {
        for typ in ["ID", "Refresh", "Offline"] {
            let mut t = token();
            t["typ"] = json!(typ);
            assert_eq!(
                refused(&Keycloak::new(), t),
                "keycloak: not an access token",
                "{typ}"
            );
        }
        let mut t = token();
        t["realm_access"]["roles"] = json!("staff");
        assert_eq!(
            refused(&Keycloak::new(), t),
            "jwt: list claim has the wrong type"
        );
    }

    #[test]
    fn service_accounts_are_service_principals() {
        let mut t = token();
        t["client_id"] = json!("billing-worker");
        t["preferred_username"] = json!("service-account-billing-worker");
        assert!(context(&Keycloak::new(), t).unwrap().is_service());
    }
}
