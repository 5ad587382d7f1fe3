//! How verified claims become an [`AuthContext`].

use std::sync::Arc;

use super::claims::Claims;
use crate::context::{AuthContext, AuthContextBuilder, PrincipalKind, Scheme};
use crate::error::AuthError;

/// Which claims fill the context. A name is first looked up as a literal key (so
/// namespaced claims like `https://example.com/roles` work), then as a dotted path
/// (`realm_access.roles`).
///
/// A token whose subject equals its client id (`client_id`, RFC 9068 §2.2) was issued
/// to a client for itself (the client-credentials grant): its context is a
/// [service principal](crate::PrincipalKind::Service).
///
/// Roles must be an array of strings; scopes a space-separated string or an array
/// of strings. A claim of the wrong type rejects the token rather than being skipped.
///
/// ```
/// use portcullis::jwt::ClaimsMapping;
/// let keycloak = ClaimsMapping::default().with_roles_claim("realm_access.roles");
/// let auth0 = ClaimsMapping::default().with_roles_claim("https://example.com/roles").with_tenant_claim("org_id");
/// # let _ = (keycloak, auth0);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClaimsMapping {
    pub(crate) subject: String,
    pub(crate) roles: Option<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) tenant: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) client_id: Option<String>,
}

impl Default for ClaimsMapping {
    /// `sub`, `roles`, `scope` then `scp`, no tenant, `email`, client id `client_id`.
    fn default() -> Self {
        ClaimsMapping {
            subject: "sub".into(),
            roles: Some("roles".into()),
            scopes: vec!["scope".into(), "scp".into()],
            tenant: None,
            email: Some("email".into()),
            client_id: Some("client_id".into()),
        }
    }
}

impl ClaimsMapping {
    /// `sub` and `email`, nothing else (no roles, scopes, tenant or client-id rule):
    /// where identity providers' presets and Cloudflare Access start.
    pub(crate) fn subject_and_email() -> Self {
        ClaimsMapping {
            subject: "sub".into(),
            roles: None,
            scopes: Vec::new(),
            tenant: None,
            email: Some("email".into()),
            client_id: None,
        }
    }
    /// The claim holding the subject (default `sub`).
    pub fn with_subject_claim(mut self, name: impl Into<String>) -> Self {
        self.subject = name.into();
        self
    }
    /// The claim holding roles (default `roles`).
    pub fn with_roles_claim(mut self, name: impl Into<String>) -> Self {
        self.roles = Some(name.into());
        self
    }
    /// The claims holding scopes, first present wins (default `scope`, `scp`).
    pub fn with_scopes_claims<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = names.into_iter().map(Into::into).collect();
        self
    }
    /// The claim holding the tenant (none by default).
    pub fn with_tenant_claim(mut self, name: impl Into<String>) -> Self {
        self.tenant = Some(name.into());
        self
    }
    /// The claim holding the e-mail (default `email`).
    pub fn with_email_claim(mut self, name: impl Into<String>) -> Self {
        self.email = Some(name.into());
        self
    }

    /// The claim naming the client the token was issued to (default `client_id`); a
    /// subject equal to it makes the context a service principal.
    pub fn with_client_id_claim(mut self, name: impl Into<String>) -> Self {
        self.client_id = Some(name.into());
        self
    }

    /// The context's fields from verified `claims`. The issuer is shared with
    /// `known_issuers` when it is one of them (no copy per token); the caller attaches
    /// the raw claims.
    pub(crate) fn identity(
        &self,
        claims: &Claims<'_>,
        scheme: Scheme,
        known_issuers: &[Arc<str>],
    ) -> Result<AuthContextBuilder, AuthError> {
        let subject = match claims.string(&self.subject) {
            Ok(Some(s)) if !s.is_empty() => s,
            _ => return Err(AuthError::invalid("jwt: missing or bad subject claim")),
        };
        let roles = match self.roles.as_deref() {
            Some(name) => claims.strings(name)?.unwrap_or_default(),
            None => Vec::new(),
        };
        let scopes = match self.scopes.iter().find(|n| claims.contains(n)) {
            Some(name) => claims.space_separated(name)?.unwrap_or_default(),
            None => Vec::new(),
        };
        let text = |name: &Option<String>| match name.as_deref() {
            Some(n) => claims.string(n),
            None => Ok(None),
        };
        let tenant = text(&self.tenant)?;
        let email = text(&self.email)?;
        let service = text(&self.client_id)? == Some(subject);
        let issuer = claims.string("iss")?.map(|iss| {
            known_issuers
                .iter()
                .find(|k| ***k == *iss)
                .cloned()
                .unwrap_or_else(|| Arc::from(iss))
        });
        // `exp` was checked by the validation (a finite, non-negative number).
        let expires_at = claims.number("exp")?.map(|exp| exp as u64);
        let mut b = AuthContext::builder(subject, scheme)
            .with_roles(roles)
            .with_scopes(scopes);
        if service {
            b = b.with_principal_kind(PrincipalKind::Service);
        }
        if let Some(t) = tenant {
            b = b.with_tenant(t);
        }
        if let Some(e) = email {
            b = b.with_email(e);
        }
        if let Some(i) = issuer {
            b = b.with_issuer(i);
        }
        if let Some(exp) = expires_at {
            b = b.with_expires_at(exp);
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::strict_json::parse_object;
    use serde_json::{Value, json};

    fn ctx(m: &ClaimsMapping, claims: Value) -> Result<AuthContext, AuthError> {
        let bytes = serde_json::to_vec(&claims).unwrap();
        let b = m.identity(
            &Claims::new(&parse_object(&bytes).unwrap()),
            Scheme::Bearer,
            &[],
        )?;
        Ok(b.with_raw_claims(bytes).build())
    }

    #[test]
    fn maps_nested_and_namespaced() {
        let m = ClaimsMapping::default()
            .with_roles_claim("realm_access.roles")
            .with_tenant_claim("https://x.io/org");
        let ctx = ctx(
            &m,
            json!({"sub":"u","realm_access":{"roles":["a","b"]},"scope":"r w","https://x.io/org":"t1","exp":5}),
        )
        .unwrap();
        assert_eq!(ctx.roles(), ["a", "b"]);
        assert_eq!(ctx.scopes(), ["r", "w"]);
        assert_eq!(ctx.tenant(), Some("t1"));
        assert_eq!(ctx.expires_at(), Some(5));
        assert_eq!(ctx.claims()["realm_access"]["roles"], json!(["a", "b"]));
        assert_eq!(
            ctx.claim::<String>("https://x.io/org").as_deref(),
            Some("t1")
        );
    }

    #[test]
    fn a_configured_issuer_is_shared_not_copied() {
        let known: Vec<Arc<str>> = vec!["https://a.test".into()];
        let build = |iss: &str| {
            let bytes = serde_json::to_vec(&json!({"sub":"u","iss":iss})).unwrap();
            ClaimsMapping::default()
                .identity(
                    &Claims::new(&parse_object(&bytes).unwrap()),
                    Scheme::Bearer,
                    &known,
                )
                .unwrap()
                .with_raw_claims(bytes)
                .build()
        };
        let ours = build("https://a.test");
        assert_eq!(ours.issuer(), Some("https://a.test"));
        assert_eq!(ours.issuer().unwrap().as_ptr(), known[0].as_ptr());
        let other = build("https://b.test");
        assert_eq!(other.issuer(), Some("https://b.test"));
    }

    #[test]
    fn client_credentials_tokens_are_service_principals() {
        let m = ClaimsMapping::default();
        let svc = ctx(
            &m,
            json!({"sub":"billing","client_id":"billing","scope":"read"}),
        )
        .unwrap();
        assert!(svc.is_service());
        let user = ctx(&m, json!({"sub":"alice","client_id":"web-app"})).unwrap();
        assert!(!user.is_service());
        assert_eq!(
            crate::error::reason_of(ctx(&m, json!({"sub":"u","client_id":5}))),
            "jwt: claim is not a string"
        );
    }

    #[test]
    fn wrong_types_reject() {
        let m = ClaimsMapping::default().with_tenant_claim("tid");
        for (bad, reason) in [
            (
                json!({"sub":"u","roles":"admin"}),
                "jwt: list claim has the wrong type",
            ),
            (
                json!({"sub":"u","roles":["admin",1]}),
                "jwt: list claim has a non-string",
            ),
            (
                json!({"sub":"u","scp":[true]}),
                "jwt: list claim has a non-string",
            ),
            (json!({"sub":"u","tid":5}), "jwt: claim is not a string"),
            (
                json!({"sub":"u","email":["a"]}),
                "jwt: claim is not a string",
            ),
            (json!({"sub":""}), "jwt: missing or bad subject claim"),
            (json!({"sub":1}), "jwt: missing or bad subject claim"),
        ] {
            assert_eq!(
                crate::error::reason_of(ctx(&m, bad.clone())),
                reason,
                "{bad}"
            );
        }
        let scp = ctx(&m, json!({"sub":"u","scp":["a","b"]})).unwrap();
        assert_eq!(scp.scopes(), ["a", "b"]);
    }
}
