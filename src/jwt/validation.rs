//! Strict registered-claim validation (RFC 7519 §4.1, RFC 8725, RFC 9068).

use std::sync::Arc;
use std::time::Duration;

use crate::jose::algorithm::Algorithm;

use crate::jose::strict_json::{Json, Object};

use crate::error::AuthError;
use crate::jose::claims::audience_matches;

/// What a token must satisfy besides its signature.
///
/// Secure defaults: `exp` required, 30 s leeway, `iat` and `nbf` checked when
/// present, `sub` required (a string), no algorithm allowed until you list one, and an
/// audience required: until [`with_audience`](Self::with_audience) names yours, every
/// token is refused (a token minted for another service must not open this one).
/// [`without_audience_check`](Self::without_audience_check) opts out, for issuers that
/// mint tokens for this service alone.
///
/// ```
/// use std::time::Duration;
/// use portcullis::jwt::{Algorithm, Validation};
/// let v = Validation::new([Algorithm::RS256])
///     .with_issuer("https://issuer.example")
///     .with_audience("my-api")
///     .with_leeway(Duration::from_secs(10))
///     .with_required_typ("at+jwt");
/// # let _ = v;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Validation {
    pub(crate) algorithms: Vec<Algorithm>,
    /// Shared with the contexts of verified tokens (no copy of `iss` per token).
    pub(crate) issuers: Vec<Arc<str>>,
    pub(crate) audiences: Vec<String>,
    pub(crate) audience_claim: Arc<str>,
    pub(crate) any_audience: bool,
    pub(crate) leeway: Duration,
    pub(crate) max_age: Option<Duration>,
    pub(crate) require_iat: bool,
    pub(crate) require_sub: bool,
    pub(crate) required_typ: Option<String>,
}

impl Validation {
    /// Accept only `algorithms` (the token header never chooses).
    pub fn new(algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        Validation {
            algorithms: algorithms.into_iter().collect(),
            issuers: Vec::new(),
            audiences: Vec::new(),
            audience_claim: Arc::from("aud"),
            any_audience: false,
            leeway: Duration::from_secs(30),
            max_age: None,
            require_iat: false,
            require_sub: true,
            required_typ: None,
        }
    }
    /// Require `iss` to equal this issuer (call again to accept several).
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into().into());
        self
    }
    /// Require `aud` to contain this audience (call again to accept several).
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }
    /// Read the audience from this claim instead of `aud` (AWS Cognito access tokens
    /// name their app client in `client_id` and carry no `aud`). Same rules: a string
    /// or a non-empty array of strings that must name an audience of
    /// [`with_audience`](Self::with_audience).
    pub fn with_audience_claim(mut self, claim: &str) -> Self {
        self.audience_claim = Arc::from(claim);
        self
    }
    /// Accept tokens whatever their `aud` (its type is still checked). Only for issuers
    /// whose every token is meant for this service.
    pub fn without_audience_check(mut self) -> Self {
        self.any_audience = true;
        self
    }
    /// True when tokens must name an audience of [`with_audience`](Self::with_audience),
    /// false after [`without_audience_check`](Self::without_audience_check).
    #[cfg(test)]
    fn checks_audience(&self) -> bool {
        !self.any_audience
    }
    /// Clock skew allowed for `exp`, `nbf` and `iat` (default 30 s).
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }
    /// Reject tokens issued (`iat`) longer ago than `max_age`; makes `iat` required.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self.require_iat = true;
        self
    }
    /// Require an `iat` claim.
    pub fn with_required_iat(mut self, required: bool) -> Self {
        self.require_iat = required;
        self
    }
    /// Require a `sub` claim (default true).
    pub fn with_required_sub(mut self, required: bool) -> Self {
        self.require_sub = required;
        self
    }
    /// Require the header `typ` (e.g. `at+jwt` for RFC 9068 access tokens; compared
    /// case-insensitively, an `application/` prefix is ignored).
    pub fn with_required_typ(mut self, typ: impl Into<String>) -> Self {
        self.required_typ = Some(typ.into());
        self
    }
    /// The accepted algorithms.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }
    /// The accepted issuers.
    pub fn issuers(&self) -> &[Arc<str>] {
        &self.issuers
    }

    pub(crate) fn check_typ(&self, typ: Option<&str>) -> Result<(), AuthError> {
        let Some(want) = &self.required_typ else {
            return Ok(());
        };
        let norm = |s: &str| {
            let s = s.trim();
            match s.get(..12) {
                Some(p) if p.eq_ignore_ascii_case("application/") => s[12..].to_ascii_lowercase(),
                _ => s.to_ascii_lowercase(),
            }
        };
        match typ {
            Some(t) if norm(t) == norm(want) => Ok(()),
            _ => Err(AuthError::invalid("jwt: wrong typ")),
        }
    }

    /// Validates the registered claims against `now` (seconds since the epoch).
    /// Returns the checked validity window (`exp`, `nbf`) for the token cache.
    pub(crate) fn check_claims(
        &self,
        claims: &Object<'_>,
        now: f64,
    ) -> Result<ValidityWindow, AuthError> {
        let leeway = self.leeway.as_secs_f64();
        let exp =
            numeric_date(claims, "exp")?.ok_or_else(|| AuthError::invalid("jwt: missing exp"))?;
        if exp + leeway <= now {
            return Err(AuthError::invalid("jwt: expired"));
        }
        let nbf = numeric_date(claims, "nbf")?;
        if nbf.is_some_and(|nbf| nbf > now + leeway) {
            return Err(AuthError::invalid("jwt: not yet valid"));
        }
        let mut valid_until = exp;
        match numeric_date(claims, "iat")? {
            Some(iat) => {
                if iat > now + leeway {
                    return Err(AuthError::invalid("jwt: issued in the future"));
                }
                if let Some(max) = self.max_age
                    && now - iat > max.as_secs_f64() + leeway
                {
                    return Err(AuthError::invalid("jwt: too old"));
                }
                if let Some(max) = self.max_age {
                    valid_until = valid_until.min(iat + max.as_secs_f64());
                }
            }
            None if self.require_iat => return Err(AuthError::invalid("jwt: missing iat")),
            None => {}
        }
        match claims.get("sub") {
            Some(Json::String(_)) => {}
            None if !self.require_sub => {}
            None => return Err(AuthError::invalid("jwt: missing sub")),
            Some(_) => return Err(AuthError::invalid("jwt: sub is not a string")),
        }
        match claims.get("iss") {
            Some(Json::String(iss)) => {
                if !self.issuers.is_empty() && !self.issuers.iter().any(|i| **i == **iss) {
                    return Err(AuthError::invalid("jwt: wrong issuer"));
                }
            }
            None if self.issuers.is_empty() => {}
            None => return Err(AuthError::invalid("jwt: missing iss")),
            Some(_) => return Err(AuthError::invalid("jwt: iss is not a string")),
        }
        let names_ours = audience_matches(claims, &self.audience_claim, &self.audiences)?;
        if !self.any_audience {
            if self.audiences.is_empty() {
                static SAID: std::sync::atomic::AtomicBool =
                    std::sync::atomic::AtomicBool::new(false);
                if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::error!(
                        issuers = ?self.issuers,
                        "JWT issuer has no audience: every token is refused; call \
                         Validation::with_audience(\"<your API's audience>\"), or \
                         BearerAuth::with_resource for an RFC 9728 resource (or \
                         without_audience_check() if every token of this issuer is for you)"
                    );
                }
                return Err(AuthError::invalid(
                    "jwt: no audience configured (Validation::with_audience)",
                ));
            }
            match names_ours {
                Some(true) => {}
                Some(false) => return Err(AuthError::invalid("jwt: wrong audience")),
                None => return Err(AuthError::invalid("jwt: missing aud")),
            }
        }
        Ok(ValidityWindow {
            exp: valid_until,
            nbf,
        })
    }
}

/// A token's checked validity window (seconds since the epoch): `exp` is the sooner of
/// the token's `exp` and `iat` + max age.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ValidityWindow {
    pub exp: f64,
    pub nbf: Option<f64>,
}

/// A NumericDate claim: a finite, non-negative JSON number; other types are errors.
pub(crate) fn numeric_date(claims: &Object<'_>, name: &str) -> Result<Option<f64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Json::Number(f)) if f.is_finite() && *f >= 0.0 => Ok(Some(*f)),
        Some(Json::Number(_)) => Err(AuthError::invalid("jwt: bad numeric date")),
        Some(_) => Err(AuthError::invalid("jwt: date claim is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::strict_json::parse_object;
    use serde_json::{Map, Value, json};

    fn v() -> Validation {
        Validation::new([Algorithm::HS256])
            .with_issuer("iss")
            .with_audience("aud")
    }
    fn c(j: serde_json::Value) -> Map<String, Value> {
        j.as_object().unwrap().clone()
    }
    /// Checks `claims` as the verifier does: serialized, then strictly parsed.
    fn check(v: &Validation, claims: &Map<String, Value>) -> Result<ValidityWindow, AuthError> {
        let bytes = serde_json::to_vec(claims).unwrap();
        v.check_claims(&parse_object(&bytes).unwrap(), NOW)
    }
    const NOW: f64 = 1_000_000.0;

    #[test]
    fn accepts_good() {
        let ok = json!({"sub":"s","iss":"iss","aud":"aud","exp":NOW+60.0,"iat":NOW,"nbf":NOW});
        let window = check(&v(), &c(ok)).unwrap();
        assert_eq!((window.exp, window.nbf), (NOW + 60.0, Some(NOW)));
        let arr = json!({"sub":"s","iss":"iss","aud":["x","aud"],"exp":NOW+60.0});
        assert!(check(&v(), &c(arr)).is_ok());
        let skew =
            json!({"sub":"s","iss":"iss","aud":"aud","exp":NOW-10.0,"nbf":NOW+10.0,"iat":NOW+10.0});
        assert!(check(&v(), &c(skew)).is_ok());
    }

    #[test]
    fn rejects_each_rule() {
        let base = json!({"sub":"s","iss":"iss","aud":"aud","exp":NOW+60.0});
        let cases: Vec<(&str, Value, &str)> = vec![
            ("exp", Value::Null, "jwt: missing exp"),
            ("exp", json!(NOW - 31.0), "jwt: expired"),
            (
                "exp",
                json!("9999999999"),
                "jwt: date claim is not a number",
            ),
            ("exp", json!(-1), "jwt: bad numeric date"),
            ("nbf", json!(NOW + 31.0), "jwt: not yet valid"),
            ("nbf", json!(true), "jwt: date claim is not a number"),
            ("iat", json!(NOW + 31.0), "jwt: issued in the future"),
            ("iss", json!("other"), "jwt: wrong issuer"),
            ("iss", json!(1), "jwt: iss is not a string"),
            ("iss", json!(["iss"]), "jwt: iss is not a string"),
            ("iss", Value::Null, "jwt: missing iss"),
            ("aud", json!("other"), "jwt: wrong audience"),
            ("aud", json!("au"), "jwt: wrong audience"),
            ("aud", json!(["aud", 1]), "jwt: aud has a non-string"),
            ("aud", json!([]), "jwt: aud has the wrong type"),
            ("aud", json!({"aud": true}), "jwt: aud has the wrong type"),
            ("aud", json!(5), "jwt: aud has the wrong type"),
            ("aud", Value::Null, "jwt: missing aud"),
            ("sub", json!(5), "jwt: sub is not a string"),
            ("sub", json!({"id":"s"}), "jwt: sub is not a string"),
            ("sub", Value::Null, "jwt: missing sub"),
        ];
        for (k, val, reason) in cases {
            let mut m = c(base.clone());
            if val.is_null() {
                m.remove(k);
            } else {
                m.insert(k.into(), val.clone());
            }
            assert_eq!(
                crate::error::reason_of(check(&v(), &m)),
                reason,
                "{k}={val}"
            );
        }
    }

    #[test]
    fn aud_types_are_checked_without_a_wanted_audience() {
        let any = Validation::new([Algorithm::HS256])
            .with_issuer("iss")
            .without_audience_check();
        let with = |aud: Value| c(json!({"sub":"s","iss":"iss","aud":aud,"exp":NOW+60.0}));
        for good in [json!("x"), json!(["x", "y"])] {
            assert!(check(&any, &with(good.clone())).is_ok(), "{good}");
        }
        for (bad, reason) in [
            (json!(["x", 1]), "jwt: aud has a non-string"),
            (json!([]), "jwt: aud has the wrong type"),
            (json!(5), "jwt: aud has the wrong type"),
            (json!({"x": 1}), "jwt: aud has the wrong type"),
            (json!([["x"]]), "jwt: aud has a non-string"),
        ] {
            assert_eq!(
                crate::error::reason_of(check(&any, &with(bad.clone()))),
                reason,
                "{bad}"
            );
            assert_eq!(
                crate::error::reason_of(check(&v(), &with(bad.clone()))),
                reason,
                "{bad}"
            );
        }
        // A match anywhere in the array is enough; a later non-string still rejects.
        assert!(check(&v(), &with(json!(["aud", "x"]))).is_ok());
        assert_eq!(
            crate::error::reason_of(check(&v(), &with(json!(["aud", null])))),
            "jwt: aud has a non-string"
        );
    }

    #[test]
    fn an_audience_is_required_unless_opted_out() {
        let token = c(json!({"sub":"s","iss":"iss","aud":"some-other-service","exp":NOW+60.0}));
        let unset = Validation::new([Algorithm::HS256]).with_issuer("iss");
        assert!(unset.checks_audience());
        assert_eq!(
            crate::error::reason_of(check(&unset, &token)),
            "jwt: no audience configured (Validation::with_audience)"
        );
        let mut no_aud = token.clone();
        no_aud.remove("aud");
        assert_eq!(
            crate::error::reason_of(check(&unset, &no_aud)),
            "jwt: no audience configured (Validation::with_audience)"
        );
        let opted_out = unset.without_audience_check();
        assert!(check(&opted_out, &token).is_ok());
        assert!(check(&opted_out, &no_aud).is_ok());
    }

    #[test]
    fn max_age_bounds_the_validity_window() {
        let v = v().with_max_age(Duration::from_secs(60));
        let t = json!({"sub":"s","iss":"iss","aud":"aud","exp":NOW+3600.0,"iat":NOW-10.0});
        assert_eq!(check(&v, &c(t)).unwrap().exp, NOW + 50.0);
        let t = json!({"sub":"s","iss":"iss","aud":"aud","exp":NOW+20.0,"iat":NOW-10.0});
        assert_eq!(check(&v, &c(t)).unwrap().exp, NOW + 20.0);
    }

    #[test]
    fn max_age_and_typ() {
        let v = v()
            .with_max_age(Duration::from_secs(60))
            .with_required_typ("at+jwt");
        let old = json!({"sub":"s","iss":"iss","aud":"aud","exp":NOW+60.0,"iat":NOW-100.0});
        assert_eq!(crate::error::reason_of(check(&v, &c(old))), "jwt: too old");
        let no_iat = json!({"sub":"s","iss":"iss","aud":"aud","exp":NOW+60.0});
        assert_eq!(
            crate::error::reason_of(check(&v, &c(no_iat))),
            "jwt: missing iat"
        );
        assert!(v.check_typ(Some("at+jwt")).is_ok());
        assert!(v.check_typ(Some("application/AT+JWT")).is_ok());
        assert_eq!(
            crate::error::reason_of(v.check_typ(Some("JWT"))),
            "jwt: wrong typ"
        );
        assert_eq!(crate::error::reason_of(v.check_typ(None)), "jwt: wrong typ");
    }
}
