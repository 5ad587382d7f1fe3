//! [`Entra`]: Microsoft Entra ID (Azure AD) access tokens.

use super::{Provider, identity};
use crate::context::{AuthContextBuilder, PrincipalKind};
use crate::error::{AuthError, ConfigError};
use crate::jwt::Claims;
use crate::jwt::ClaimsMapping;
use crate::jwt::Validation;

/// Which Entra access-token format an API receives (its app registration's
/// `accessTokenAcceptedVersion`: `null` or 1 means v1, 2 means v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EntraTokenVersion {
    /// `ver` `1.0`, issuer `https://sts.windows.net/{tenant}/`.
    V1,
    /// `ver` `2.0`, issuer `https://login.microsoftonline.com/{tenant}/v2.0` (default).
    #[default]
    V2,
}

/// Microsoft Entra ID access tokens, from an allowlist of tenants.
///
/// - the issuer is the tenant's own (`https://login.microsoftonline.com/{tid}/v2.0` for
///   v2): [`Issuer::with_provider`](crate::jwt::Issuer::with_provider) adds one per
///   allowed tenant, and the token's `iss` must be the one of its own `tid` (a
///   multi-tenant app's keys sign for every tenant; the issuer is what tells them apart);
/// - `ver` must be the configured version: a v1 token is refused where v2 is expected;
/// - subject: `oid` (stable across apps; `sub` is per app); tenant: `tid`;
///   roles: `roles` (app roles); scopes: `scp`; e-mail: `email` (optional claim);
/// - app-only tokens (no `scp`, or `idtyp` `app`) are service principals.
///
/// Keys: [`Entra::jwks_url`]. Audience: your API's application ID URI or client id.
///
/// ```
/// use portcullis::providers::Entra;
/// let entra = Entra::new(["72f988bf-86f1-41af-91ab-2d7cd011db47"]).unwrap();
/// # let _ = entra;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Entra {
    tenants: Vec<String>,
    version: EntraTokenVersion,
}

fn is_tenant_id(t: &str) -> bool {
    t.len() == 36
        && t.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

impl Entra {
    /// Tokens of these tenants (directory ids, GUIDs), v2 format.
    ///
    /// # Errors
    /// No tenant, or one that is not a GUID (`common`, `organizations` and domain names
    /// are not tenants a token can come from).
    pub fn new<I, S>(tenants: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let tenants: Vec<String> = tenants
            .into_iter()
            .map(|t| t.into().to_ascii_lowercase())
            .collect();
        if tenants.is_empty() {
            return Err(ConfigError::new("Entra: name at least one tenant id"));
        }
        if let Some(bad) = tenants.iter().find(|t| !is_tenant_id(t)) {
            return Err(ConfigError::new(format!(
                "Entra: tenant {bad:?} is not a directory (tenant) id GUID"
            )));
        }
        Ok(Entra {
            tenants,
            version: EntraTokenVersion::V2,
        })
    }
    /// Expect this token version instead of v2.
    pub fn with_token_version(mut self, version: EntraTokenVersion) -> Self {
        self.version = version;
        self
    }
    /// The issuer of `tenant`'s tokens in `version`.
    pub fn issuer_url(tenant: &str, version: EntraTokenVersion) -> String {
        match version {
            EntraTokenVersion::V1 => format!("https://sts.windows.net/{tenant}/"),
            EntraTokenVersion::V2 => format!("https://login.microsoftonline.com/{tenant}/v2.0"),
        }
    }
    /// Where Entra publishes the signing keys of `version` (shared by every tenant).
    pub fn jwks_url(version: EntraTokenVersion) -> &'static str {
        match version {
            EntraTokenVersion::V1 => "https://login.microsoftonline.com/common/discovery/keys",
            EntraTokenVersion::V2 => "https://login.microsoftonline.com/common/discovery/v2.0/keys",
        }
    }
}

impl Provider for Entra {
    fn validation(&self, mut validation: Validation) -> Validation {
        for t in &self.tenants {
            validation = validation.with_issuer(Entra::issuer_url(t, self.version));
        }
        validation
    }
    fn context(&self, claims: &Claims<'_>) -> Result<AuthContextBuilder, AuthError> {
        let want = match self.version {
            EntraTokenVersion::V1 => "1.0",
            EntraTokenVersion::V2 => "2.0",
        };
        if claims.string("ver")? != Some(want) {
            return Err(AuthError::invalid("entra: wrong token version"));
        }
        let tid = claims.string("tid")?.unwrap_or("");
        if !self.tenants.iter().any(|t| t == tid) {
            return Err(AuthError::invalid("entra: tenant not allowed"));
        }
        if claims.string("iss")? != Some(Entra::issuer_url(tid, self.version).as_str()) {
            return Err(AuthError::invalid(
                "entra: issuer is not the token's tenant",
            ));
        }
        let mut mapping = ClaimsMapping::subject_and_email();
        mapping.subject = "oid".into();
        mapping.roles = Some("roles".into());
        mapping.scopes = vec!["scp".into()];
        mapping.tenant = Some("tid".into());
        let mut b = identity(claims, &mapping)?;
        if !claims.contains("scp") || claims.string("idtyp")? == Some("app") {
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

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const OTHER: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

    /// Shaped like Entra's documented v2 access token.
    fn v2(tid: &str) -> serde_json::Value {
        json!({
            "aud": "api://orders", "iss": format!("https://login.microsoftonline.com/{tid}/v2.0"),
            "iat": 1_800_000_000, "nbf": 1_800_000_000, "exp": 1_900_000_000,
            "aio": "AWQAm/8", "azp": "6e74172b-be56-4843-9ff4-e66a39bb12e3", "azpacr": "0",
            "name": "Abe Lincoln", "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
            "preferred_username": "abeli@microsoft.com", "rh": "I", "scp": "Orders.Read Orders.Write",
            "roles": ["Orders.Approver"], "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
            "tid": tid, "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "2.0"
        })
    }

    #[test]
    fn v2_user_token() {
        let entra = Entra::new([TENANT]).unwrap();
        let ctx = context(&entra, v2(TENANT)).unwrap();
        assert_eq!(ctx.subject(), "690222be-ff1a-4d56-abd1-7e4f7d38e474");
        assert_eq!(ctx.tenant(), Some(TENANT));
        assert_eq!(ctx.scopes(), ["Orders.Read", "Orders.Write"]);
        assert_eq!(ctx.roles(), ["Orders.Approver"]);
        assert!(!ctx.is_service());
        let v = entra.validation(Validation::new([]));
        assert_eq!(
            &*v.issuers()[0],
            format!("https://login.microsoftonline.com/{TENANT}/v2.0")
        );
    }

    #[test]
    fn other_tenants_and_mismatched_issuers_are_refused() {
        let entra = Entra::new([TENANT]).unwrap();
        assert_eq!(refused(&entra, v2(OTHER)), "entra: tenant not allowed");
        // Both tenants allowed, but the token claims one tenant and names the other's issuer.
        let both = Entra::new([TENANT, OTHER]).unwrap();
        let mut t = v2(TENANT);
        t["iss"] = json!(format!("https://login.microsoftonline.com/{OTHER}/v2.0"));
        assert_eq!(refused(&both, t), "entra: issuer is not the token's tenant");
        assert!(context(&both, v2(OTHER)).is_ok());
    }

    #[test]
    fn v1_token_where_v2_is_configured_is_refused() {
        let mut v1 = v2(TENANT);
        v1["ver"] = json!("1.0");
        v1["iss"] = json!(format!("https://sts.windows.net/{TENANT}/"));
        v1["appid"] = json!("6e74172b-be56-4843-9ff4-e66a39bb12e3");
        let entra = Entra::new([TENANT]).unwrap();
        assert_eq!(refused(&entra, v1.clone()), "entra: wrong token version");
        let entra_v1 = entra.with_token_version(EntraTokenVersion::V1);
        assert!(context(&entra_v1, v1).is_ok());
        assert_eq!(refused(&entra_v1, v2(TENANT)), "entra: wrong token version");
    }

    #[test]
    fn app_only_tokens_are_services() {
        let mut t = v2(TENANT);
        t.as_object_mut().unwrap().remove("scp");
        t["idtyp"] = json!("app");
        t["sub"] = t["oid"].clone();
        assert!(
            context(&Entra::new([TENANT]).unwrap(), t)
                .unwrap()
                .is_service()
        );
    }

    #[test]
    fn tenant_ids_must_be_guids() {
        assert!(Entra::new(Vec::<String>::new()).is_err());
        for bad in [
            "common",
            "organizations",
            "contoso.onmicrosoft.com",
            "72f988bf86f141af91ab2d7cd011db47",
        ] {
            assert!(Entra::new([bad]).is_err(), "{bad}");
        }
        assert!(Entra::new([TENANT.to_uppercase()]).is_ok());
    }
}
