//! [`Google`] ID tokens.

use super::{Provider, allowed, identity};
use crate::context::AuthContextBuilder;
use crate::error::AuthError;
use crate::jwt::Claims;
use crate::jwt::ClaimsMapping;
use crate::jwt::Validation;

/// Google ID tokens (Sign in with Google, Google-signed service-to-service tokens).
///
/// - issuer `https://accounts.google.com` or `accounts.google.com` (Google sends both;
///   [`Issuer::with_provider`](crate::jwt::Issuer::with_provider) adds both when the
///   validation names none); audience your OAuth client id;
/// - e-mail: `email` only when `email_verified` is `true`;
/// - tenant: `hd`, the Google Workspace domain; with
///   [`with_hosted_domain`](Self::with_hosted_domain), tokens of other domains (and of
///   consumer accounts, which have no `hd`) are refused. The e-mail's domain is not
///   the same thing: check `hd`.
///
/// Keys at [`Google::JWKS_URL`].
///
/// ```
/// use portcullis::providers::Google;
/// let google = Google::new().with_hosted_domain("example.com");
/// # let _ = google;
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Google {
    domains: Vec<String>,
}

impl Google {
    /// Where Google publishes its signing keys.
    pub const JWKS_URL: &'static str = "https://www.googleapis.com/oauth2/v3/certs";

    /// Any Google account.
    pub fn new() -> Self {
        Google::default()
    }
    /// Only accounts of this Workspace domain (call again to allow more).
    pub fn with_hosted_domain(mut self, domain: impl Into<String>) -> Self {
        self.domains.push(domain.into());
        self
    }
}

impl Provider for Google {
    fn validation(&self, validation: Validation) -> Validation {
        if validation.issuers().is_empty() {
            validation
                .with_issuer("https://accounts.google.com")
                .with_issuer("accounts.google.com")
        } else {
            validation
        }
    }
    fn context(&self, claims: &Claims<'_>) -> Result<AuthContextBuilder, AuthError> {
        let hd = claims.string("hd")?;
        allowed(&self.domains, hd, "google: hosted domain not allowed")?;
        let mut mapping = ClaimsMapping::subject_and_email();
        mapping.tenant = Some("hd".into());
        if claims.boolean("email_verified")? != Some(true) {
            mapping.email = None;
        }
        identity(claims, &mapping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_support::{context, refused};
    use serde_json::json;

    fn id_token(hd: Option<&str>, verified: bool) -> serde_json::Value {
        let mut t = json!({
            "iss": "https://accounts.google.com", "azp": "1234987819200.apps.googleusercontent.com",
            "aud": "1234987819200.apps.googleusercontent.com", "sub": "10769150350006150715113082367",
            "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q", "email": "jsmith@example.com",
            "email_verified": verified, "iat": 1_800_000_000, "exp": 1_900_000_000, "nonce": "0394852-3190485-2490358"
        });
        if let Some(hd) = hd {
            t["hd"] = json!(hd);
        }
        t
    }

    #[test]
    fn workspace_accounts() {
        let google = Google::new().with_hosted_domain("example.com");
        let ctx = context(&google, id_token(Some("example.com"), true)).unwrap();
        assert_eq!(ctx.tenant(), Some("example.com"));
        assert_eq!(ctx.email(), Some("jsmith@example.com"));
        assert_eq!(
            refused(&google, id_token(Some("evil.example"), true)),
            "google: hosted domain not allowed"
        );
        assert_eq!(
            refused(&google, id_token(None, true)),
            "google: hosted domain not allowed"
        );
        assert!(context(&Google::new(), id_token(None, true)).is_ok());
    }

    #[test]
    fn unverified_email_is_dropped() {
        let ctx = context(&Google::new(), id_token(None, false)).unwrap();
        assert_eq!(ctx.email(), None);
        let mut t = id_token(None, true);
        t["email_verified"] = json!("true");
        assert_eq!(refused(&Google::new(), t), "jwt: claim is not a boolean");
    }

    #[test]
    fn both_issuer_spellings() {
        let v = Google::new().validation(Validation::new([]));
        assert_eq!(v.issuers().len(), 2);
    }
}
