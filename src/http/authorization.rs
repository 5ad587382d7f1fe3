//! The `Authorization: <scheme> <credentials>` header (RFC 9110 §11.6.2).

#[cfg(feature = "jwt")]
use http::HeaderMap;
#[cfg(feature = "jwt")]
use http::header::AUTHORIZATION;

#[cfg(feature = "jwt")]
use crate::error::AuthError;

/// Whether the (single) `Authorization` header names `scheme`: see [`names_scheme`].
#[cfg(feature = "jwt")]
pub(crate) fn has_scheme(headers: &HeaderMap, scheme: &str) -> bool {
    headers
        .get(AUTHORIZATION)
        .is_some_and(|v| names_scheme(v.as_bytes(), scheme))
}

/// Whether an `Authorization` value names `scheme`: the token before the first space
/// equals it, case-insensitively. `Bearer` is detected, `BearerX` is not, so a custom
/// scheme chained after a built-in one still sees its own header.
pub(crate) fn names_scheme(value: &[u8], scheme: &str) -> bool {
    let n = scheme.len();
    value.len() >= n
        && value[..n].eq_ignore_ascii_case(scheme.as_bytes())
        && (value.len() == n || value[n] == b' ')
}

/// Splits `<scheme> <rest>` and returns `rest` when the scheme matches (case-insensitive).
pub(crate) fn strip_scheme<'a>(value: &'a [u8], scheme: &str) -> Option<&'a [u8]> {
    let n = scheme.len();
    if value.len() <= n || !value[..n].eq_ignore_ascii_case(scheme.as_bytes()) {
        return None;
    }
    if value[n] != b' ' {
        return None;
    }
    let rest = &value[n..];
    let start = rest.iter().position(|b| *b != b' ')?;
    Some(&rest[start..])
}

/// The credential bytes from `Authorization: Bearer <token>`, not yet checked against
/// the RFC 6750 `b68token` syntax (see [`b68token`]).
#[cfg(feature = "jwt")]
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&[u8], AuthError> {
    let value = headers.get(AUTHORIZATION).ok_or_else(AuthError::missing)?;
    bearer_value(value.as_bytes())
}

/// The token of an `Authorization` value: [`bearer_token`] of a header already read.
#[cfg(feature = "jwt")]
pub(crate) fn bearer_value(value: &[u8]) -> Result<&[u8], AuthError> {
    let token = strip_scheme(value, "bearer")
        .ok_or_else(|| AuthError::malformed("bearer: bad authorization header"))?
        .trim_ascii_end();
    Ok(token)
}

/// The token as text when it is an RFC 6750 `b68token`, an error otherwise. Runs before
/// any parsing; a token cache hit skips it, as the cached token passed it (or the
/// stricter JWS parse) before.
#[cfg(feature = "jwt")]
pub(crate) fn b68token(token: &[u8]) -> Result<&str, AuthError> {
    let body_end = token.iter().rposition(|b| *b != b'=').map_or(0, |i| i + 1);
    let valid = body_end > 0
        && token[..body_end]
            .iter()
            .fold(true, |ok, b| ok & B68TOKEN[usize::from(*b)]);
    if !valid {
        return Err(AuthError::malformed("bearer: token has invalid characters"));
    }
    // All ASCII by now, so this cannot fail.
    std::str::from_utf8(token).map_err(|_| AuthError::malformed("bearer: not ascii"))
}

/// Bytes allowed in an RFC 6750 `b68token` (before its trailing `=` padding).
#[cfg(feature = "jwt")]
static B68TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::AUTHORIZATION;
    use http::{HeaderMap, HeaderValue};

    fn headers(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn detection_is_exact() {
        let cases = [
            ("Bearer abc", true),
            ("bearer abc", true),
            ("BEARER", true),
            ("Bearer", true),
            ("BearerX abc", false),
            ("Bearer_ abc", false),
            ("Bear abc", false),
            ("Basic abc", false),
            ("", false),
        ];
        for (v, want) in cases {
            assert_eq!(has_scheme(&headers(v), "bearer"), want, "{v:?}");
        }
        assert!(!has_scheme(&HeaderMap::new(), "bearer"));
        assert!(has_scheme(&headers("Basic YQ=="), "basic"));
        assert!(!has_scheme(&headers("Basically YQ=="), "basic"));
    }

    #[test]
    fn stripping() {
        assert_eq!(strip_scheme(b"Bearer  tok", "bearer"), Some(&b"tok"[..]));
        assert_eq!(strip_scheme(b"Bearer ", "bearer"), None);
        assert_eq!(strip_scheme(b"Bearer", "bearer"), None);
        assert_eq!(strip_scheme(b"BearerX tok", "bearer"), None);
    }
}
