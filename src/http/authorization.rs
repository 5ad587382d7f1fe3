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

/// What an `Authorization` value holds for `scheme`: `None` when it does not name it
/// (the token before the first space differs, case-insensitively), `Some(None)` when it
/// names it with no credential after, `Some(Some(rest))` with `rest` past the spaces that
/// follow the scheme. `Bearer` is named by `Bearer x` and by `Bearer` alone, not by
/// `BearerX`, so a custom scheme chained after a built-in one still sees its own header.
///
/// `scheme` is written in lowercase ASCII letters (`bearer`, `dpop`, `basic`): for a
/// lowercase letter, `byte | 0x20` equals it exactly when `byte` is that letter in either
/// case, so one branch-free pass compares the name.
pub(crate) fn scheme_credential<'a>(value: &'a [u8], scheme: &str) -> Option<Option<&'a [u8]>> {
    debug_assert!(scheme.bytes().all(|b| b.is_ascii_lowercase()));
    let (head, rest) = value.split_at_checked(scheme.len())?;
    let differs = head
        .iter()
        .zip(scheme.as_bytes())
        .fold(0, |d, (byte, want)| d | ((byte | 0x20) ^ want));
    if differs != 0 {
        return None;
    }
    match rest.split_first() {
        None => Some(None),
        Some((b' ', after)) => Some(after.iter().position(|b| *b != b' ').map(|i| &after[i..])),
        Some(_) => None,
    }
}

/// Whether an `Authorization` value names `scheme` (see [`scheme_credential`]).
pub(crate) fn names_scheme(value: &[u8], scheme: &str) -> bool {
    scheme_credential(value, scheme).is_some()
}

/// The credential after `<scheme> ` when the value names `scheme` and has one.
pub(crate) fn strip_scheme<'a>(value: &'a [u8], scheme: &str) -> Option<&'a [u8]> {
    scheme_credential(value, scheme).flatten()
}

/// The credential bytes from `Authorization: Bearer <token>`, not yet checked against
/// the RFC 6750 `b68token` syntax (see [`b68token`]).
#[cfg(feature = "jwt")]
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&[u8], AuthError> {
    let value = headers.get(AUTHORIZATION).ok_or_else(AuthError::missing)?;
    token_in(strip_scheme(value.as_bytes(), "bearer"), BAD_BEARER)
}

/// The refusal of an `Authorization: Bearer` header with no token.
#[cfg(feature = "jwt")]
pub(crate) const BAD_BEARER: &str = "bearer: bad authorization header";

/// A token credential (`Bearer` or `DPoP`) without its trailing whitespace, or a
/// malformed-header error (`why`) when the header named the scheme and nothing else.
#[cfg(feature = "jwt")]
pub(crate) fn token_in<'a>(
    credential: Option<&'a [u8]>,
    why: &'static str,
) -> Result<&'a [u8], AuthError> {
    credential
        .map(<[u8]>::trim_ascii_end)
        .ok_or_else(|| AuthError::malformed(why))
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
        assert_eq!(strip_scheme(b"Bearer\ttok", "bearer"), None);
        assert_eq!(scheme_credential(b"Bearer", "bearer"), Some(None));
        assert_eq!(scheme_credential(b"bearer   ", "bearer"), Some(None));
        assert_eq!(
            scheme_credential(b"BEARER t ", "bearer"),
            Some(Some(&b"t "[..]))
        );
        assert_eq!(scheme_credential(b"Bear", "bearer"), None);
        assert_eq!(scheme_credential(b"bearer", "bearer"), Some(None));
        assert_eq!(
            scheme_credential(b"BeArEr t", "bearer"),
            Some(Some(&b"t"[..]))
        );
        // Every byte in one position of the name: only the letter, in either case, names
        // the scheme (bytes one bit, 0x20, away from it do not).
        for byte in 0..=255u8 {
            let mut v = *b"basic x";
            v[2] = byte;
            let named = scheme_credential(&v, "basic").is_some();
            assert_eq!(named, byte.eq_ignore_ascii_case(&b's'), "{byte:#x}");
        }
    }

    /// The plain reading: the scheme word (up to the first space, or the whole value)
    /// equals `scheme` ignoring ASCII case; the credential is what follows the spaces
    /// after it, when anything does.
    fn reference<'a>(value: &'a [u8], scheme: &str) -> Option<Option<&'a [u8]>> {
        let word_end = value.iter().position(|b| *b == b' ').unwrap_or(value.len());
        if !value[..word_end].eq_ignore_ascii_case(scheme.as_bytes()) {
            return None;
        }
        let rest = &value[word_end..];
        Some(rest.iter().position(|b| *b != b' ').map(|i| &rest[i..]))
    }

    #[test]
    fn agrees_with_the_plain_reading_on_every_combination() {
        let words: [&[u8]; 12] = [
            b"",
            b"b",
            b"bearer",
            b"Bearer",
            b"BEARER",
            b"bEaReR",
            b"bearerx",
            b"bearer_",
            b"Bearer\t",
            b"dpop",
            b"DPoP",
            b"basic",
        ];
        let gaps: [&[u8]; 5] = [b"", b" ", b"  ", b"\t", b" \t"];
        let tails: [&[u8]; 5] = [b"", b"t", b"tok en", b" t ", b"\xff="];
        let mut checked = 0;
        for word in words {
            for gap in gaps {
                for tail in tails {
                    let value = [word, gap, tail].concat();
                    for scheme in ["bearer", "dpop", "basic"] {
                        let want = reference(&value, scheme);
                        assert_eq!(
                            scheme_credential(&value, scheme),
                            want,
                            "{value:?} {scheme}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 12 * 5 * 5 * 3);
    }
}
