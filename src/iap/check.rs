//! [`IdentityProxy`] as an [`Authenticator`]: where a request carries the assertion,
//! the cross-site guard, the token cache, and the verification that waits.

use std::fmt;

use http::HeaderValue;
use http::header::GetAll;
use http::request::Parts;

use super::{CLOUDFLARE_ACCESS_COOKIE, IdentityProxy, Keys, Kind};
use crate::authenticator::{Authenticator, Check};
use crate::challenge::Challenge;
use crate::context::{AuthContext, Scheme};
use crate::error::AuthError;
use crate::http::cookies::{BadCookie, cookie_value};
use crate::limit::AttemptLimiter;

impl Authenticator for IdentityProxy {
    type Credential = PresentedAssertion;
    fn scheme(&self) -> Scheme {
        match self.cfg.kind {
            Kind::CloudflareAccess { .. } => Scheme::CloudflareAccess,
            _ => Scheme::IdentityProxy,
        }
    }
    fn challenge(&self) -> Option<Challenge> {
        None
    }
    fn check(&self, parts: &Parts) -> Check<PresentedAssertion> {
        let carried = self.carried(parts);
        if carried.is_absent() {
            return Check::Absent;
        }
        let token = match self.assertion(parts, carried) {
            Ok(token) => token,
            Err(e) => return Check::Ready(Err(e)),
        };
        // ALB keys' tokens are not cached: they always wait.
        if let Keys::Jwks(_, verifier) = &self.keys
            && let Some(ctx) = verifier.cached(token.as_bytes())
        {
            return Check::Ready(verifier.admit(ctx, token.as_bytes()));
        }
        Check::Pending(PresentedAssertion(token.to_owned()))
    }
    async fn authenticate(
        &self,
        presented: PresentedAssertion,
        parts: &Parts,
    ) -> Result<AuthContext, AuthError> {
        let token = presented.0.as_str();
        let limiter = self.cfg.limiter.as_ref();
        match &self.keys {
            Keys::Jwks(_, verifier) => {
                let check = verifier.verify_uncached(token);
                Box::pin(AttemptLimiter::credential_check(limiter, parts, check)).await
            }
            Keys::Alb(v) => {
                Box::pin(AttemptLimiter::credential_check(
                    limiter,
                    parts,
                    v.verify(token),
                ))
                .await
            }
        }
    }
}

/// The assertion a request presented to [`IdentityProxy`], as its
/// [`check`](Authenticator::check) read it, for the verification that waits.
pub struct PresentedAssertion(String);

impl fmt::Debug for PresentedAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresentedAssertion([redacted])")
    }
}

/// Where a request carries its assertion, read once.
enum Carried<'a> {
    /// The proxy's header's values (none, when no cookie is read either).
    Header(GetAll<'a, HeaderValue>),
    /// No header: the cookie, as [`cookie_value`] reads it.
    Cookie(Result<Option<&'a str>, BadCookie>),
}

impl Carried<'_> {
    fn is_absent(&self) -> bool {
        match self {
            Carried::Header(values) => values.iter().next().is_none(),
            Carried::Cookie(cookie) => *cookie == Ok(None),
        }
    }
}

impl IdentityProxy {
    /// The header's values, else (Cloudflare Access with the cookie on) the cookie.
    fn carried<'a>(&self, parts: &'a Parts) -> Carried<'a> {
        let values = parts.headers.get_all(self.header());
        let cookie = matches!(self.cfg.kind, Kind::CloudflareAccess { cookie: true, .. });
        if !cookie || values.iter().next().is_some() {
            return Carried::Header(values);
        }
        Carried::Cookie(cookie_value(&parts.headers, CLOUDFLARE_ACCESS_COOKIE))
    }

    /// The cross-site guard, then the one assertion the request carries, as text.
    fn assertion<'a>(&self, parts: &Parts, carried: Carried<'a>) -> Result<&'a str, AuthError> {
        if self.cfg.csrf.is_cross_site(parts) {
            return Err(AuthError::cross_site());
        }
        let token = match carried {
            Carried::Header(values) => {
                let mut values = values.iter();
                match (values.next(), values.next()) {
                    (Some(_), Some(_)) => return Err(AuthError::conflicting()),
                    (Some(v), None) => v
                        .to_str()
                        .map_err(|_| AuthError::invalid("identity proxy: header not ascii"))?,
                    (None, _) => return Err(AuthError::missing()),
                }
            }
            Carried::Cookie(cookie) => cookie
                .map_err(|_| AuthError::invalid("identity proxy: duplicate or unreadable cookie"))?
                .ok_or_else(AuthError::missing)?,
        };
        Ok(token.trim())
    }
}
