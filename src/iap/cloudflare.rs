//! What is particular to Cloudflare Access among the identity proxies: its team names,
//! and how its claims (users, and service tokens by client id) become a context.

use crate::context::{AuthContextBuilder, PrincipalKind, Scheme};
use crate::error::AuthError;
use crate::jwt::{Claims, ClaimsMapping};

/// Whether `team` is a valid `<team>.cloudflareaccess.com` label.
pub(super) fn valid_team(team: &str) -> bool {
    !team.is_empty()
        && team.len() <= 63
        && !team.starts_with('-')
        && !team.ends_with('-')
        && team
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The context of a verified Access assertion: `type` must be `app`; a user's token
/// (non-empty `sub`) is read with `mapping`; a service token (empty `sub`) becomes a
/// service principal named by its `common_name`, only when that client id is in
/// `service_tokens`.
pub(super) fn to_context(
    claims: &Claims<'_>,
    mapping: &ClaimsMapping,
    service_tokens: &[String],
) -> Result<AuthContextBuilder, AuthError> {
    if claims.string("type").ok().flatten() != Some("app") {
        return Err(AuthError::invalid("cloudflare: token type is not app"));
    }
    let sub = claims.string("sub")?.unwrap_or("");
    if !sub.is_empty() {
        return mapping.identity(claims, Scheme::CloudflareAccess, &[]);
    }
    let cn = claims
        .string("common_name")
        .ok()
        .flatten()
        .ok_or_else(|| AuthError::invalid("cloudflare: no subject"))?;
    if cn.is_empty() || !service_tokens.iter().any(|t| t == cn) {
        return Err(AuthError::invalid("cloudflare: service token not allowed"));
    }
    let mut builder = crate::context::AuthContext::builder(cn, Scheme::CloudflareAccess)
        .with_principal_kind(PrincipalKind::Service);
    if let Some(iss) = claims.string("iss")? {
        builder = builder.with_issuer(iss);
    }
    if let Some(exp) = claims.number("exp")? {
        builder = builder.with_expires_at(exp as u64);
    }
    Ok(builder)
}
