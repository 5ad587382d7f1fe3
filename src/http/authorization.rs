//! The `Authorization: <scheme> <credentials>` header (RFC 9110 §11.6.2).

use http::HeaderMap;
use http::header::AUTHORIZATION;

/// Whether the (single) `Authorization` header names `scheme`: see [`names_scheme`].
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

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
