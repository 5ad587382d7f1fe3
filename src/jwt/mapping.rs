//! How verified claims become an [`AuthContext`].

use serde_json::{Map, Value};

use super::validation::numeric_date;
use crate::context::{AuthContext, Scheme};
use crate::error::AuthError;

/// Which claims fill the context. A name is first looked up as a literal key (so
/// namespaced claims like `https://example.com/roles` work), then as a dotted path
/// (`realm_access.roles`).
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
}

impl Default for ClaimsMapping {
    /// `sub`, `roles`, `scope` then `scp`, no tenant, `email`.
    fn default() -> Self {
        ClaimsMapping {
            subject: "sub".into(),
            roles: Some("roles".into()),
            scopes: vec!["scope".into(), "scp".into()],
            tenant: None,
            email: Some("email".into()),
        }
    }
}

impl ClaimsMapping {
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

    /// Builds the context for verified `claims`.
    pub(crate) fn to_context(
        &self,
        claims: Map<String, Value>,
        scheme: Scheme,
    ) -> Result<AuthContext, AuthError> {
        let subject = match lookup(&claims, &self.subject) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(AuthError::invalid("jwt: missing or bad subject claim")),
        };
        let mut b = AuthContext::builder(subject, scheme);
        if let Some(name) = &self.roles
            && let Some(v) = lookup(&claims, name)
        {
            b = b.with_roles(string_list(v, false)?);
        }
        if let Some(v) = self.scopes.iter().find_map(|n| lookup(&claims, n)) {
            b = b.with_scopes(string_list(v, true)?);
        }
        if let Some(name) = &self.tenant {
            match lookup(&claims, name) {
                Some(Value::String(s)) => b = b.with_tenant(s.clone()),
                None => {}
                Some(_) => return Err(AuthError::invalid("jwt: tenant is not a string")),
            }
        }
        if let Some(name) = &self.email {
            match lookup(&claims, name) {
                Some(Value::String(s)) => b = b.with_email(s.clone()),
                None => {}
                Some(_) => return Err(AuthError::invalid("jwt: email is not a string")),
            }
        }
        if let Some(Value::String(iss)) = claims.get("iss") {
            b = b.with_issuer(iss.clone());
        }
        if let Some(exp) = numeric_date(&claims, "exp")? {
            b = b.with_expires_at(exp as u64);
        }
        Ok(b.with_claims(claims).build())
    }
}

/// Literal key first, then a dotted path through nested objects.
pub(crate) fn lookup<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    if !name.contains('.') {
        return None;
    }
    let mut parts = name.split('.');
    let mut cur = claims.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

fn string_list(v: &Value, allow_space_separated: bool) -> Result<Vec<String>, AuthError> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| AuthError::invalid("jwt: list claim has a non-string"))
            })
            .collect(),
        Value::String(s) if allow_space_separated => Ok(s
            .split(' ')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()),
        _ => Err(AuthError::invalid("jwt: list claim has the wrong type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn maps_nested_and_namespaced() {
        let m = ClaimsMapping::default()
            .with_roles_claim("realm_access.roles")
            .with_tenant_claim("https://x.io/org");
        let ctx = m
            .to_context(
                map(json!({"sub":"u","realm_access":{"roles":["a","b"]},"scope":"r w","https://x.io/org":"t1","exp":5})),
                Scheme::Bearer,
            )
            .unwrap();
        assert_eq!(ctx.roles(), ["a", "b"]);
        assert_eq!(ctx.scopes(), ["r", "w"]);
        assert_eq!(ctx.tenant(), Some("t1"));
        assert_eq!(ctx.expires_at(), Some(5));
    }

    #[test]
    fn wrong_types_reject() {
        let m = ClaimsMapping::default().with_tenant_claim("tid");
        for bad in [
            json!({"sub":"u","roles":"admin"}),
            json!({"sub":"u","roles":["admin",1]}),
            json!({"sub":"u","scp":[true]}),
            json!({"sub":"u","tid":5}),
            json!({"sub":"u","email":["a"]}),
            json!({"sub":""}),
            json!({"sub":1}),
        ] {
            assert!(
                m.to_context(map(bad.clone()), Scheme::Bearer).is_err(),
                "{bad}"
            );
        }
        let scp = m
            .to_context(map(json!({"sub":"u","scp":["a","b"]})), Scheme::Bearer)
            .unwrap();
        assert_eq!(scp.scopes(), ["a", "b"]);
    }
}
