//! Compact JWS parsing: size cap, strict base64url, strict header rules, strict JSON.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::sync::Arc;

use super::header_cache::HeaderCache;
use crate::error::AuthError;
use crate::jose::algorithm::Algorithm;
use crate::jose::strict_json::{Json, Object, parse_object};

/// Longest `kid` accepted.
const MAX_KID_BYTES: usize = 256;

/// The parameters of a JWS header that passed the header rules.
#[derive(Debug, PartialEq)]
pub(crate) struct Header {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

/// A structurally valid, not yet verified, compact JWS.
#[derive(Debug)]
pub(crate) struct UnverifiedToken<'a> {
    /// `base64(header) "." base64(payload)`: the signed message.
    pub message: &'a str,
    pub signature: Vec<u8>,
    pub header: Arc<Header>,
    /// The decoded payload: the claims as JSON, parsed by [`parse_claims`].
    pub payload: Vec<u8>,
}

fn b64(segment: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| AuthError::invalid("jwt: bad base64url"))
}

/// Parses a compact JWS (the claims are parsed separately, by [`parse_claims`]).
/// Rejects: more or fewer than three segments (JWE has five),
/// bad base64url, non-object or duplicate-key JSON, unknown or `none` algorithms,
/// any `crit`, `b64`, `zip` or `enc` header, nested JWTs (`cty: JWT`), non-string
/// `kid`/`typ`.
/// Headers come from `headers` when that exact header segment was parsed before.
pub(crate) fn parse<'a>(
    token: &'a str,
    max_bytes: usize,
    headers: &HeaderCache<Header>,
) -> Result<UnverifiedToken<'a>, AuthError> {
    if token.len() > max_bytes {
        return Err(AuthError::invalid("jwt: token too large"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::invalid("jwt: not a three-part compact JWS"));
    };
    if h.is_empty() || p.is_empty() || s.is_empty() {
        return Err(AuthError::invalid("jwt: empty segment"));
    }
    let header = headers.get_or_parse(h, parse_header)?;
    let payload = b64(p)?;
    let signature = b64(s)?;
    Ok(UnverifiedToken {
        message: &token[..h.len() + 1 + p.len()],
        signature,
        header,
        payload,
    })
}

/// Decodes and checks one base64url header segment.
pub(crate) fn parse_header(segment: &str) -> Result<Header, AuthError> {
    let header_bytes = b64(segment)?;
    let header =
        parse_object(&header_bytes).ok_or_else(|| AuthError::invalid("jwt: bad header"))?;
    let alg = match header.get("alg") {
        Some(Json::String(a)) => {
            Algorithm::from_jose(a).ok_or_else(|| AuthError::invalid("jwt: bad alg"))?
        }
        _ => return Err(AuthError::invalid("jwt: missing alg")),
    };
    for forbidden in ["crit", "b64", "zip", "enc"] {
        if header.contains_key(forbidden) {
            return Err(AuthError::invalid("jwt: unsupported header parameter"));
        }
    }
    if let Some(cty) = header.get("cty") {
        match cty.as_str() {
            Some(c) if !c.eq_ignore_ascii_case("jwt") => {}
            _ => return Err(AuthError::invalid("jwt: nested or bad cty")),
        }
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Json::String(k)) if !k.is_empty() && k.len() <= MAX_KID_BYTES => Some(k.to_string()),
        Some(_) => return Err(AuthError::invalid("jwt: bad kid")),
    };
    let typ = match header.get("typ") {
        None => None,
        Some(Json::String(t)) => Some(t.to_string()),
        Some(_) => return Err(AuthError::invalid("jwt: bad typ")),
    };
    Ok(Header { alg, kid, typ })
}

/// Parses a token's payload as a strict JSON object.
pub(crate) fn parse_claims(payload: &[u8]) -> Result<Object<'_>, AuthError> {
    parse_object(payload).ok_or_else(|| AuthError::invalid("jwt: bad claims"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(token: &str, max_bytes: usize) -> Result<UnverifiedToken<'_>, AuthError> {
        super::parse(token, max_bytes, &HeaderCache::default())
    }

    fn tok(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn header_rules() {
        assert!(parse(&tok(r#"{"alg":"HS256"}"#, "{}"), 8192).is_ok());
        for (h, reason) in [
            (r#"{"alg":"none"}"#, "jwt: bad alg"),
            (r#"{"alg":"None"}"#, "jwt: bad alg"),
            (r#"{"alg":"hs256"}"#, "jwt: bad alg"),
            (r#"{}"#, "jwt: missing alg"),
            (r#"{"alg":1}"#, "jwt: missing alg"),
            (r#"{"alg":"HS256","alg":"HS256"}"#, "jwt: bad header"),
            (
                r#"{"alg":"HS256","crit":["exp"]}"#,
                "jwt: unsupported header parameter",
            ),
            (
                r#"{"alg":"HS256","b64":false}"#,
                "jwt: unsupported header parameter",
            ),
            (
                r#"{"alg":"HS256","enc":"A128GCM"}"#,
                "jwt: unsupported header parameter",
            ),
            (
                r#"{"alg":"HS256","zip":"DEF"}"#,
                "jwt: unsupported header parameter",
            ),
            (r#"{"alg":"HS256","cty":"JWT"}"#, "jwt: nested or bad cty"),
            (r#"{"alg":"HS256","kid":5}"#, "jwt: bad kid"),
            (r#"{"alg":"HS256","kid":""}"#, "jwt: bad kid"),
            (r#"{"alg":"HS256","typ":["JWT"]}"#, "jwt: bad typ"),
        ] {
            assert_eq!(
                crate::error::reason_of(parse(&tok(h, "{}"), 8192)),
                reason,
                "{h}"
            );
        }
    }

    #[test]
    fn structure_rules() {
        let good = tok(r#"{"alg":"HS256"}"#, "{}");
        assert_eq!(
            crate::error::reason_of(parse(&format!("{good}.x.y"), 8192)),
            "jwt: not a three-part compact JWS"
        );
        assert_eq!(
            crate::error::reason_of(parse("a.b", 8192)),
            "jwt: not a three-part compact JWS"
        );
        assert_eq!(
            crate::error::reason_of(parse("..", 8192)),
            "jwt: empty segment"
        );
        assert_eq!(
            crate::error::reason_of(parse(&good, 10)),
            "jwt: token too large"
        );
        assert_eq!(
            crate::error::reason_of(parse(&good.replace("c2ln", "c2ln="), 8192)),
            "jwt: bad base64url"
        );
        assert_eq!(
            crate::error::reason_of(parse_claims(b"[]")),
            "jwt: bad claims"
        );
        assert_eq!(
            crate::error::reason_of(parse_claims(br#"{"a":1,"a":1}"#)),
            "jwt: bad claims"
        );
        assert!(parse_claims(br#"{"a":1}"#).is_ok());
    }
}
