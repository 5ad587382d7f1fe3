//! [`Cognito`]: AWS Cognito user-pool tokens.

use super::{Provider, identity};
use crate::context::{AuthContextBuilder, PrincipalKind};
use crate::error::AuthError;
use crate::jwt::Claims;
use crate::jwt::ClaimsMapping;
use crate::jwt::Validation;

/// AWS Cognito user-pool tokens: access tokens by default, ID tokens with
/// [`Cognito::id_tokens`].
///
/// - `token_use` must be `access` (or `id`): an ID token is refused where an access
///   token is expected, and the other way round;
/// - access tokens carry no `aud`: the app client is in `client_id`, which
///   [`Issuer::with_provider`](crate::jwt::Issuer::with_provider) makes the audience
///   claim, so `Validation::with_audience("<app client id>")` names the clients you
///   accept (ID tokens name it in `aud`);
/// - roles: `cognito:groups`; scopes: `scope`; e-mail: `email` (ID tokens);
/// - client-credentials tokens (`sub` equal to `client_id`) are service principals.
///
/// Issuer [`Cognito::issuer_url`], keys at `<issuer>/.well-known/jwks.json`.
///
/// ```
/// use portcullis::{jwt::{Algorithm, Validation}, providers::Cognito};
/// let iss = Cognito::issuer_url("eu-west-1", "eu-west-1_AbCdEf123");
/// let validation = Validation::new([Algorithm::RS256]).with_issuer(&iss).with_audience("3n4b5urk1ft4fl3mg5e62d9ado");
/// let cognito = Cognito::access_tokens();
/// # let _ = (validation, cognito);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Cognito {
    id_tokens: bool,
}

impl Cognito {
    /// Access tokens (`token_use` `access`, app client in `client_id`).
    pub fn access_tokens() -> Self {
        Cognito { id_tokens: false }
    }
    /// ID tokens (`token_use` `id`, app client in `aud`).
    pub fn id_tokens() -> Self {
        Cognito { id_tokens: true }
    }
    /// The issuer of a user pool's tokens.
    pub fn issuer_url(region: &str, user_pool_id: &str) -> String {
        format!("https://cognito-idp.{region}.amazonaws.com/{user_pool_id}")
    }
}

impl Provider for Cognito {
    fn validation(&self, validation: Validation) -> Validation {
        if self.id_tokens {
            validation
        } else {
            validation.with_audience_claim("client_id")
        }
    }
    fn context(&self, claims: &Claims<'_>) -> Result<AuthContextBuilder, AuthError> {
        let want = if self.id_tokens { "id" } else { "access" };
        if claims.string("token_use")? != Some(want) {
            return Err(AuthError::invalid("cognito: wrong token_use"));
        }
        let mut mapping = ClaimsMapping::subject_and_email();
        mapping.roles = Some("cognito:groups".into());
        mapping.scopes = vec!["scope".into()];
        mapping.client_id = Some("client_id".into());
        let mut b = identity(claims, &mapping)?;
        if !self.id_tokens && !claims.contains("username") {
            // User access tokens always name the user; client-credentials ones do not.
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

    const ISS: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example";

    /// Shaped like Cognito's documented access token.
    fn access() -> serde_json::Value {
        json!({
            "sub": "aaaaaaaa-bbbb-cccc-dddd-example", "cognito:groups": ["admin"],
            "iss": ISS, "version": 2, "client_id": "1example23456789",
            "origin_jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "event_id": "64f513be",
            "token_use": "access", "scope": "aws.cognito.signin.user.admin phone openid profile email",
            "auth_time": 1_800_000_000, "exp": 1_900_000_000, "iat": 1_800_000_000,
            "jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "username": "my-test-user"
        })
    }

    /// Shaped like Cognito's documented ID token.
    fn id() -> serde_json::Value {
        json!({
            "sub": "aaaaaaaa-bbbb-cccc-dddd-example", "cognito:groups": ["admin"],
            "email_verified": true, "iss": ISS, "cognito:username": "my-test-user",
            "origin_jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "aud": "1example23456789",
            "event_id": "64f513be", "token_use": "id", "auth_time": 1_800_000_000,
            "exp": 1_900_000_000, "iat": 1_800_000_000, "jti": "aaaaaaaa", "email": "my-test-user@example.com"
        })
    }

    #[test]
    fn access_tokens() {
        let ctx = context(&Cognito::access_tokens(), access()).unwrap();
        assert_eq!(ctx.roles(), ["admin"]);
        assert!(ctx.has_scope("openid"));
        assert!(!ctx.is_service());
        assert_eq!(
            refused(&Cognito::access_tokens(), id()),
            "cognito: wrong token_use"
        );
    }

    #[test]
    fn id_tokens() {
        let ctx = context(&Cognito::id_tokens(), id()).unwrap();
        assert_eq!(ctx.email(), Some("my-test-user@example.com"));
        assert_eq!(
            refused(&Cognito::id_tokens(), access()),
            "cognito: wrong token_use"
        );
    }

    #[test]
    fn client_credentials_tokens_are_services() {
        let t = json!({
            "sub": "1example23456789", "token_use": "access", "scope": "orders/read",
            "auth_time": 1, "iss": ISS, "exp": 2, "iat": 1, "version": 2,
            "jti": "j", "client_id": "1example23456789"
        });
        assert!(context(&Cognito::access_tokens(), t).unwrap().is_service());
    }
}
