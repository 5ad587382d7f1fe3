//! What the endpoint answers about one token: its RFC 7662 members checked, and the
//! context it makes.

use super::Introspection;
use super::results::Outcome;
use crate::clock::unix_secs_f64;
use crate::context::{PrincipalKind, Scheme};
use crate::error::AuthError;
use crate::jose::claims::Claims;
use crate::jose::claims::audience_matches;
use crate::jose::strict_json::{Json, parse_object};

impl Introspection {
    /// Asks the endpoint; the outcome and the token's `exp`.
    pub(super) async fn introspect(
        &self,
        token: &str,
    ) -> Result<(Outcome, Option<f64>), AuthError> {
        let resp = self.request(token).send().await.map_err(|_| {
            tracing::warn!(endpoint = %self.inner.s.endpoint, "token introspection failed or timed out");
            AuthError::unavailable("introspection: endpoint unreachable")
        })?;
        if resp.status() != reqwest::StatusCode::OK {
            tracing::warn!(endpoint = %self.inner.s.endpoint, status = %resp.status(), "token introspection refused");
            return Err(AuthError::unavailable(
                "introspection: endpoint did not answer 200",
            ));
        }
        let body = self
            .inner
            .s
            .egress
            .read(resp)
            .await
            .map_err(AuthError::unavailable)?;
        let object = parse_object(&body).ok_or_else(|| {
            AuthError::unavailable("introspection: response is not a JSON object")
        })?;
        match object.get("active") {
            Some(Json::Bool(true)) => {}
            Some(Json::Bool(false)) => return Ok((Outcome::Inactive, None)),
            _ => {
                return Err(AuthError::unavailable(
                    "introspection: response lacks active",
                ));
            }
        }
        let claims = Claims::new(&object);
        let exp = self.check(&claims)?;
        let mut builder = match self.inner.s.mapping.identity(&claims, Scheme::Bearer, &[]) {
            Ok(b) => b,
            Err(_) if !claims.contains(&self.inner.s.mapping.subject) => {
                if claims.string("client_id")?.is_none_or(|c| c.is_empty()) {
                    return Err(AuthError::invalid("introspection: no subject or client_id"));
                }
                let mut mapping = self.inner.s.mapping.clone();
                mapping.subject = "client_id".into();
                mapping
                    .identity(&claims, Scheme::Bearer, &[])?
                    .with_principal_kind(PrincipalKind::Service)
            }
            Err(e) => return Err(e),
        };
        if let Some(jti) = claims.string("jti")? {
            builder = builder.with_token_id(jti);
        }
        if let Some(iat) = claims.number("iat")? {
            builder = builder.with_issued_at(iat as u64);
        }
        builder = builder.with_key_binding(claims.key_binding());
        Ok((Outcome::Active(builder.with_raw_claims(body).build()), exp))
    }

    /// The RFC 7662 members this crate checks; returns `exp`.
    fn check(&self, claims: &Claims<'_>) -> Result<Option<f64>, AuthError> {
        let now = unix_secs_f64();
        let exp = claims.number("exp")?;
        if exp.is_some_and(|e| e <= now) {
            return Err(AuthError::invalid("introspection: expired"));
        }
        if claims.number("nbf")?.is_some_and(|n| n > now + 30.0) {
            return Err(AuthError::invalid("introspection: not yet valid"));
        }
        if let Some(want) = &self.inner.s.issuer
            && claims.string("iss")? != Some(want.as_str())
        {
            return Err(AuthError::invalid("introspection: wrong issuer"));
        }
        if claims
            .string("token_type")?
            .is_some_and(|t| t.to_ascii_lowercase().contains("refresh"))
        {
            return Err(AuthError::invalid("introspection: a refresh token"));
        }
        let ours = audience_matches(claims.object(), "aud", &self.inner.s.audiences)?;
        if !self.inner.s.any_audience {
            if self.inner.s.audiences.is_empty() {
                return Err(AuthError::invalid(
                    "introspection: no audience configured (Introspection::with_audience)",
                ));
            }
            if ours != Some(true) {
                return Err(AuthError::invalid(
                    "introspection: wrong or missing audience",
                ));
            }
        }
        Ok(exp)
    }
}
