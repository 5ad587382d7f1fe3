//! The claim layouts and token rules of well-known identity providers.
//!
//! Each provider puts roles, scopes and tenants in claims of its own and has its own
//! traps; a [`Provider`] knows them. Apply one to an [`Issuer`] with
//! [`Issuer::with_provider`](crate::jwt::Issuer::with_provider): it adjusts the
//! [`Validation`] the way that provider's tokens need (issuers, the audience claim)
//! and maps verified claims into the context, refusing the provider's lookalike
//! tokens (an ID token where an access token is expected, another tenant's token...).
//!
//! | provider | type | roles | scopes | tenant | refuses |
//! |---|---|---|---|---|---|
//! | Keycloak | [`Keycloak`] | `realm_access.roles` (+ `resource_access.<client>.roles`) | `scope` | – | ID and refresh tokens (`typ`) |
//! | Auth0 | [`Auth0`] | your namespaced claim | `scope` + `permissions` | `org_id` | – |
//! | Microsoft Entra ID | [`Entra`] | `roles` | `scp` | `tid` | other tenants, the other token version |
//! | AWS Cognito | [`Cognito`] | `cognito:groups` | `scope` | – | the other `token_use`, other app clients |
//! | Okta | [`Okta`] | `groups` | `scp` | – | ID tokens (no `cid`) |
//! | Google | [`Google`] | – | – | `hd` | other Workspace domains; unverified e-mail is dropped |
//! | GitHub Actions | [`GithubActions`] | – | – | `repository_owner` | other owners, repositories, refs, workflows |
//!
//! ```
//! use portcullis::{jwt::{Algorithm, Issuer, KeySet, Validation}, providers::Keycloak};
//! # let keys = KeySet::new().with_hmac_secret(&[7u8; 32], Algorithm::HS256).unwrap();
//! let issuer = Issuer::new(keys, Validation::new([Algorithm::RS256])
//!         .with_issuer("https://sso.example.com/realms/acme")
//!         .with_audience("orders-api"))
//!     .with_provider(Keycloak::new().with_client_roles("orders-api"));
//! # let _ = issuer;
//! ```

mod auth0;
mod cognito;
mod entra;
mod github_actions;
mod google;
mod keycloak;
mod okta;

use std::fmt;
use std::sync::Arc;

pub use self::auth0::Auth0;
pub use self::cognito::Cognito;
pub use self::entra::{Entra, EntraTokenVersion};
pub use self::github_actions::GithubActions;
pub use self::google::Google;
pub use self::keycloak::Keycloak;
pub use self::okta::Okta;

use crate::context::{AuthContextBuilder, Scheme};
use crate::error::AuthError;
use crate::jwt::{Claims, ClaimsMapping, Issuer, Validation};

/// An identity provider's token rules and claim layout, applied with
/// [`Issuer::with_provider`](crate::jwt::Issuer::with_provider). Implement it for a
/// provider of your own.
///
/// ```
/// use portcullis::{AuthContext, AuthError, Scheme, AuthContextBuilder};
/// use portcullis::{jwt::{Claims, Validation}, providers::Provider};
///
/// #[derive(Debug)]
/// struct InHouse;
/// impl Provider for InHouse {
///     fn validation(&self, v: Validation) -> Validation {
///         v.with_required_typ("at+jwt")
///     }
///     fn context(&self, claims: &Claims<'_>) -> Result<AuthContextBuilder, AuthError> {
///         let sub = claims.string("sub")?.ok_or(AuthError::invalid("no sub"))?;
///         Ok(AuthContext::builder(sub, Scheme::Bearer)
///             .with_roles(claims.strings("entitlements")?.unwrap_or_default()))
///     }
/// }
/// ```
pub trait Provider: fmt::Debug + Send + Sync + 'static {
    /// The validation this provider's tokens need, from the one configured (the default
    /// keeps it as it is).
    fn validation(&self, validation: Validation) -> Validation {
        validation
    }
    /// The context of a token that passed every check, or an error that refuses it.
    fn context(&self, claims: &Claims<'_>) -> Result<AuthContextBuilder, AuthError>;
}

impl Issuer {
    /// Apply an identity provider's token rules and claim layout (see
    /// [`providers`](crate::providers)): the provider adjusts the validation and builds
    /// the context, replacing any mapping set before.
    ///
    /// ```
    /// use portcullis::{jwt::{Algorithm, Issuer, KeySet, Validation}, providers::Cognito};
    /// # let keys = KeySet::new().with_hmac_secret(&[7u8; 32], Algorithm::HS256).unwrap();
    /// let issuer = Issuer::new(keys, Validation::new([Algorithm::RS256])
    ///         .with_issuer(Cognito::issuer_url("eu-west-1", "eu-west-1_AbCdEf123"))
    ///         .with_audience("3n4b5urk1ft4fl3mg5e62d9ado"))
    ///     .with_provider(Cognito::access_tokens());
    /// # let _ = issuer;
    /// ```
    pub fn with_provider(self, provider: impl Provider) -> Self {
        let provider = Arc::new(provider);
        let rules = provider.clone();
        self.map_validation(|v| rules.validation(v))
            .with_context_mapper(move |claims| provider.context(claims))
    }
}

/// The context builder of `mapping`, for a bearer token.
fn identity(claims: &Claims<'_>, mapping: &ClaimsMapping) -> Result<AuthContextBuilder, AuthError> {
    mapping.identity(claims, Scheme::Bearer, &[])
}

/// `a` then the elements of `b` that `a` lacks.
fn union(mut a: Vec<String>, b: Vec<String>) -> Vec<String> {
    for x in b {
        if !a.contains(&x) {
            a.push(x);
        }
    }
    a
}

/// An error unless `value` is one of `allowed` (an empty list allows everything).
fn allowed(allowed: &[String], value: Option<&str>, reason: &'static str) -> Result<(), AuthError> {
    if allowed.is_empty() || value.is_some_and(|v| allowed.iter().any(|a| a == v)) {
        Ok(())
    } else {
        Err(AuthError::invalid(reason))
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::context::AuthContext;
    use crate::jose::strict_json::parse_object;

    /// The context `provider` gives `claims`, or its error.
    pub fn context(
        provider: &dyn Provider,
        claims: serde_json::Value,
    ) -> Result<AuthContext, AuthError> {
        let bytes = serde_json::to_vec(&claims).unwrap();
        let object = parse_object(&bytes).unwrap();
        let b = provider.context(&Claims::new(&object))?;
        Ok(b.build())
    }

    /// Why `provider` refuses `claims` (the error's logged reason); panics when it
    /// accepts them.
    #[track_caller]
    pub fn refused(provider: &dyn Provider, claims: serde_json::Value) -> &'static str {
        match context(provider, claims) {
            Ok(ctx) => panic!("accepted as {}", ctx.subject()),
            Err(e) => e.reason(),
        }
    }
}
