//! [`Okta`] access tokens.

use super::{Provider, identity};
use crate::context::AuthContextBuilder;
use crate::error::AuthError;
use crate::jwt::Claims;
use crate::jwt::ClaimsMapping;

/// Okta access tokens from a custom authorization server.
///
/// - roles: `groups` (when the server's "groups" claim is configured); scopes: `scp`
///   (an array);
/// - an ID token is refused: access tokens name their client in `cid`, ID tokens do not;
/// - client-credentials tokens (`sub` equal to `cid`) are service principals.
///
/// Issuer `https://<org>.okta.com/oauth2/<server id>` (keys by discovery there),
/// audience the server's audience (`api://default` for the default server).
///
/// ```
/// use portcullis::providers::Okta;
/// let okta = Okta::new();
/// # let _ = okta;
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Okta {}

impl Okta {
    /// Okta's claim layout.
    pub fn new() -> Self {
        Okta {}
    }
}

impl Provider for Okta {
    fn context(&self, claims: &Claims<'_>) -> Result<AuthContextBuilder, AuthError> {
        if claims.string("cid")?.is_none() {
            return Err(AuthError::invalid("okta: not an access token"));
        }
        let mut mapping = ClaimsMapping::subject_and_email();
        mapping.roles = Some("groups".into());
        mapping.scopes = vec!["scp".into()];
        mapping.client_id = Some("cid".into());
        identity(claims, &mapping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_support::{context, refused};
    use serde_json::json;

    /// Shaped like Okta's documented access token.
    fn access() -> serde_json::Value {
        json!({
            "ver": 1, "jti": "AT.0mP4JKAZX1iACIT4vbEDF7LpvDVjxypPMf0D7uX39RE",
            "iss": "https://example.okta.com/oauth2/default", "aud": "api://default",
            "iat": 1_800_000_000, "exp": 1_900_000_000, "cid": "0oaoesxtxmPf08QHk0h7",
            "uid": "00uoefsxpmbHFaWq40h7", "scp": ["openid", "orders:read"],
            "auth_time": 1_800_000_000, "sub": "alice@example.com", "groups": ["Everyone", "Ops"]
        })
    }

    #[test]
    fn access_tokens() {
        let ctx = context(&Okta::new(), access()).unwrap();
        assert_eq!(ctx.roles(), ["Everyone", "Ops"]);
        assert_eq!(ctx.scopes(), ["openid", "orders:read"]);
        assert!(!ctx.is_service());
    }

    #[test]
    fn id_tokens_are_refused() {
        let id = json!({
            "sub": "00uoefsxpmbHFaWq40h7", "ver": 1, "iss": "https://example.okta.com/oauth2/default",
            "aud": "0oaoesxtxmPf08QHk0h7", "iat": 1, "exp": 2, "jti": "ID.x", "amr": ["pwd"],
            "idp": "00o", "nonce": "n", "auth_time": 1, "at_hash": "h"
        });
        assert_eq!(refused(&Okta::new(), id), "okta: not an access token");
    }

    #[test]
    fn client_credentials_tokens_are_services() {
        let mut t = access();
        t["sub"] = t["cid"].clone();
        assert!(context(&Okta::new(), t).unwrap().is_service());
    }
}
