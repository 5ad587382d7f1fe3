//! Reading one cookie from `Cookie` headers, strictly (duplicates are an error).

use http::HeaderMap;
use http::header::COOKIE;

/// A cookie appeared more than once, or the `Cookie` headers are not text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AmbiguousCookie;

/// The value of cookie `name`, or `None`. Two cookies of that name (e.g. one planted
/// for a parent domain) are refused rather than guessed between.
///
/// Pairs are split at `;` and at their first `=`; names and values are trimmed of ASCII
/// whitespace, and a value may be wrapped in one pair of double quotes (RFC 6265). A
/// header that is not visible ASCII is skipped, unless `name` occurs in it: then our
/// cookie could be inside, and the answer is [`AmbiguousCookie`].
pub(crate) fn cookie_value<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Result<Option<&'a str>, AmbiguousCookie> {
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        let Ok(text) = header.to_str() else {
            if header
                .as_bytes()
                .windows(name.len())
                .any(|w| w == name.as_bytes())
            {
                return Err(AmbiguousCookie);
            }
            continue;
        };
        for pair in text.split(';') {
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            if k.trim_ascii() == name {
                if found.is_some() {
                    return Err(AmbiguousCookie);
                }
                let v = v.trim_ascii();
                found = Some(
                    v.strip_prefix('"')
                        .and_then(|x| x.strip_suffix('"'))
                        .unwrap_or(v),
                );
            }
        }
    }
    Ok(found)
}

/// Whether some `Cookie` header carries a pair named `name`: a cheap scan for `name`
/// followed by `=` (spaces allowed between) at the start of a pair. It never misses a
/// cookie [`cookie_value`] finds, nor a duplicated one; it may say yes where
/// `cookie_value` then refuses the header, which the caller reports as invalid.
pub(crate) fn has_cookie(headers: &HeaderMap, name: &str) -> bool {
    let name = name.as_bytes();
    headers.get_all(COOKIE).iter().any(|header| {
        let bytes = header.as_bytes();
        let mut from = 0;
        while let Some(i) = find(&bytes[from..], name) {
            let start = from + i;
            let end = start + name.len();
            let before_ok = bytes[..start]
                .iter()
                .rev()
                .find(|b| !b.is_ascii_whitespace())
                .is_none_or(|b| *b == b';');
            let after_ok = bytes[end..]
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| *b == b'=');
            if before_ok && after_ok {
                return true;
            }
            from = start + 1;
        }
        false
    })
}

/// The first position of `needle` in `haystack` (`needle` is never empty here).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(i) = haystack[from..].iter().position(|b| b == first) {
        let at = from + i;
        if haystack[at + 1..].starts_with(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn finds_and_refuses_duplicates() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; sid=xyz; b=2"));
        assert_eq!(cookie_value(&h, "sid"), Ok(Some("xyz")));
        assert_eq!(cookie_value(&h, "si"), Ok(None));
        let mut q = HeaderMap::new();
        q.append(COOKIE, HeaderValue::from_static("sid=\"xyz\" ; b=\"2"));
        assert_eq!(cookie_value(&q, "sid"), Ok(Some("xyz")));
        assert_eq!(cookie_value(&q, "b"), Ok(Some("\"2")));
        h.append(COOKIE, HeaderValue::from_static("sid=other"));
        assert_eq!(cookie_value(&h, "sid"), Err(AmbiguousCookie));
    }

    #[test]
    fn the_cheap_scan_never_misses_what_the_parser_finds() {
        let cases: &[&[u8]] = &[
            b"sid=1",
            b" sid =\tv ;",
            b"a=1; sid=xyz; b=2",
            b"sid=\"xyz\" ; b=\"2",
            b"sid=1;sid=1",
            b"xsid=1",
            b"sid",
            b"a=sid=1",
            b"a=1;sid=",
            b"a=\xff; sid=1",
            b"",
            b";;;",
            b"sidsid=1",
            b"a=b; sid\t= 5",
        ];
        for raw in cases {
            let mut h = HeaderMap::new();
            h.append(COOKIE, http::HeaderValue::from_bytes(raw).unwrap());
            if matches!(cookie_value(&h, "sid"), Ok(Some(_))) || raw.starts_with(b"sid=1;sid") {
                assert!(has_cookie(&h, "sid"), "{:?}", String::from_utf8_lossy(raw));
            }
        }
        let mut h = HeaderMap::new();
        h.append(COOKIE, http::HeaderValue::from_static("xsid=1; a=sid"));
        assert!(!has_cookie(&h, "sid"));
        assert!(!has_cookie(&HeaderMap::new(), "sid"));
    }

    #[test]
    fn edges() {
        let one = |v: &'static str, name: &str| {
            let mut h = HeaderMap::new();
            h.append(COOKIE, HeaderValue::from_static(v));
            cookie_value(&h, name).map(|v| v.map(str::to_owned))
        };
        assert_eq!(one("", "sid"), Ok(None));
        assert_eq!(one(";;;", "sid"), Ok(None));
        assert_eq!(one("sid", "sid"), Ok(None));
        assert_eq!(one("sid=", "sid"), Ok(Some("".into())));
        assert_eq!(one("sid=a=b", "sid"), Ok(Some("a=b".into())));
        assert_eq!(one(" sid =\tv ;", "sid"), Ok(Some("v".into())));
        assert_eq!(one("xsid=1", "sid"), Ok(None));
        assert_eq!(one("sid=1;sid=1", "sid"), Err(AmbiguousCookie));
        assert_eq!(one("=1", ""), Ok(Some("1".into())));
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_bytes(b"a=\xff; sid=1").unwrap());
        assert_eq!(cookie_value(&h, "sid"), Err(AmbiguousCookie));
        assert_eq!(cookie_value(&h, "other"), Ok(None));
    }
}
