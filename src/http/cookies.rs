//! Reading one cookie from `Cookie` headers, strictly (duplicates are an error), and
//! what a cookie name may be.

use http::HeaderMap;
use http::header::COOKIE;

/// A cookie appeared more than once, or (read as text) its value is not visible ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadCookie;

/// Whether `name` can name a cookie (or a query parameter, or a WebSocket subprotocol
/// prefix): 1 to 64 RFC 9110 token characters, so no spaces, `;`, `=` or quotes.
pub(crate) fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The value of cookie `name` (an [`is_token`]) as text, or `None`: [`cookie_bytes`],
/// with a value that is not visible ASCII refused too.
// Read as text by Cloudflare Access and OAuth login only.
#[cfg_attr(not(any(feature = "iap", feature = "oauth")), allow(dead_code))]
pub(crate) fn cookie_value<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Result<Option<&'a str>, BadCookie> {
    cookie_bytes(headers, name)?
        .map(|v| visible_ascii(v).ok_or(BadCookie))
        .transpose()
}

/// The value of cookie `name` (an [`is_token`]), or `None`. Two cookies of that name
/// (e.g. one planted for a parent domain) are refused rather than guessed between.
///
/// Headers are read as bytes, split at `;` into pairs and each pair at its first `=`;
/// names and values are trimmed of ASCII whitespace, and a value may be wrapped in one
/// pair of double quotes (RFC 6265). Values may hold any bytes a header can (browsers
/// send UTF-8 as is): other cookies' values are skipped unread, and the caller checks
/// the format of this one.
///
/// Only pairs that hold the name's first byte are looked at, each from that byte on.
pub(crate) fn cookie_bytes<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Result<Option<&'a [u8]>, BadCookie> {
    let name = name.as_bytes();
    let Some(&first) = name.first() else {
        return Ok(None);
    };
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        let bytes = header.as_bytes();
        let mut from = 0;
        while let Some(at) = bytes
            .get(from..)
            .and_then(|rest| memchr::memchr(first, rest))
        {
            let (value, pair_end) = pair_at(bytes, from + at, name);
            if value.is_some() {
                if found.is_some() {
                    return Err(BadCookie);
                }
                found = value;
            }
            from = pair_end + 1;
        }
    }
    Ok(found)
}

/// Whether some `Cookie` header carries cookie `name`: [`cookie_bytes`] is not
/// `Ok(None)` (a duplicated cookie is present, and refused later).
#[cfg(any(test, feature = "jwt"))]
pub(crate) fn has_cookie(headers: &HeaderMap, name: &str) -> bool {
    !matches!(cookie_bytes(headers, name), Ok(None))
}

/// The pair holding byte `at`: its trimmed, unquoted value when its name is `name` and
/// starts at `at`, and where the pair ends (its `;`, or the end of the header).
fn pair_at<'a>(bytes: &'a [u8], at: usize, name: &[u8]) -> (Option<&'a [u8]>, usize) {
    let after = &bytes[at..];
    let end = at + memchr::memchr(b';', after).unwrap_or(after.len());
    let pair = &bytes[at..end];
    let starts_pair = bytes[..at]
        .trim_ascii_end()
        .last()
        .is_none_or(|b| *b == b';');
    let value = pair
        .strip_prefix(name)
        .map(<[u8]>::trim_ascii_start)
        .and_then(|rest| rest.strip_prefix(b"="))
        .filter(|_| starts_pair)
        .map(|v| {
            let v = v.trim_ascii();
            v.strip_prefix(b"\"")
                .and_then(|x| x.strip_suffix(b"\""))
                .unwrap_or(v)
        });
    (value, end)
}

/// `bytes` as text when every byte is visible ASCII, space or tab.
#[cfg_attr(not(any(feature = "iap", feature = "oauth")), allow(dead_code))]
fn visible_ascii(bytes: &[u8]) -> Option<&str> {
    // A fold without early exit, which the compiler turns into a vector loop.
    let ok = bytes.iter().fold(true, |ok, b| {
        ok & ((b' '..=b'~').contains(b) | (*b == b'\t'))
    });
    ok.then(|| std::str::from_utf8(bytes).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    /// The same rules written the obvious way: split, split, trim, compare; with `text`,
    /// a value must be visible ASCII.
    fn reference<'a>(
        headers: &'a HeaderMap,
        name: &str,
        text: bool,
    ) -> Result<Option<&'a [u8]>, BadCookie> {
        let mut found = None;
        for header in headers.get_all(COOKIE) {
            for pair in header.as_bytes().split(|b| *b == b';') {
                let Some(eq) = pair.iter().position(|b| *b == b'=') else {
                    continue;
                };
                if pair[..eq].trim_ascii() != name.as_bytes() {
                    continue;
                }
                if found.is_some() {
                    return Err(BadCookie);
                }
                let v = pair[eq + 1..].trim_ascii();
                let v = v
                    .strip_prefix(b"\"")
                    .and_then(|x| x.strip_suffix(b"\""))
                    .unwrap_or(v);
                found = Some(v);
            }
        }
        let visible = |v: &[u8]| v.iter().all(|b| *b == b'\t' || (b' '..=b'~').contains(b));
        match found {
            Some(v) if text && !visible(v) => Err(BadCookie),
            other => Ok(other),
        }
    }

    #[test]
    fn finds_and_refuses_duplicates() {
        let mut h = headers(&[b"a=1; sid=xyz; b=2"]);
        assert_eq!(cookie_value(&h, "sid"), Ok(Some("xyz")));
        assert_eq!(cookie_value(&h, "si"), Ok(None));
        let q = headers(&[b"sid=\"xyz\" ; b=\"2"]);
        assert_eq!(cookie_value(&q, "sid"), Ok(Some("xyz")));
        assert_eq!(cookie_value(&q, "b"), Ok(Some("\"2")));
        h.append(COOKIE, HeaderValue::from_static("sid=other"));
        assert_eq!(cookie_value(&h, "sid"), Err(BadCookie));
        assert!(has_cookie(&h, "sid"));
    }

    #[test]
    fn other_cookies_may_hold_any_bytes_ours_may_not() {
        let h = headers(&[b"a=\xff\xc3\xa9; sid=1; b=caf\xc3\xa9"]);
        assert_eq!(cookie_value(&h, "sid"), Ok(Some("1")));
        assert_eq!(cookie_value(&h, "other"), Ok(None));
        assert_eq!(cookie_value(&h, "a"), Err(BadCookie));
        assert_eq!(cookie_bytes(&h, "a"), Ok(Some(&b"\xff\xc3\xa9"[..])));
        assert!(has_cookie(&h, "a"));
        assert_eq!(
            cookie_value(&headers(&[b"sid=\"\xff\""]), "sid"),
            Err(BadCookie)
        );
    }

    #[test]
    fn edges() {
        let one = |v: &'static str, name: &str| {
            let h = headers(&[v.as_bytes()]);
            cookie_value(&h, name).map(|v| v.map(str::to_owned))
        };
        assert_eq!(one("", "sid"), Ok(None));
        assert_eq!(one(";;;", "sid"), Ok(None));
        assert_eq!(one("sid", "sid"), Ok(None));
        assert_eq!(one("sid=", "sid"), Ok(Some("".into())));
        assert_eq!(one("sid=a=b", "sid"), Ok(Some("a=b".into())));
        assert_eq!(one(" sid =\tv ;", "sid"), Ok(Some("v".into())));
        assert_eq!(one("xsid=1", "sid"), Ok(None));
        assert_eq!(one("a=sid=1", "sid"), Ok(None));
        assert_eq!(one("sidsid=1; s=2", "sid"), Ok(None));
        assert_eq!(one("x sid=1", "sid"), Ok(None));
        assert_eq!(one("sid=1;sid=1", "sid"), Err(BadCookie));
        assert_eq!(one("a=\"x;sid=1\"", "sid"), Ok(Some("1\"".into())));
        assert_eq!(one("=1", ""), Ok(None));
        assert!(!has_cookie(&HeaderMap::new(), "sid"));
    }

    #[test]
    fn agrees_with_the_obvious_parser() {
        // Every header of up to 7 bytes over an alphabet that exercises each rule, plus
        // pseudo-random longer ones, two headers at a time.
        const ALPHABET: &[u8] = b"s=; \t\"\xffid";
        let mut cases: Vec<Vec<u8>> = vec![Vec::new()];
        for len in 1..=6 {
            let mut digits = vec![0usize; len];
            loop {
                cases.push(digits.iter().map(|d| ALPHABET[*d]).collect());
                let Some(i) = digits.iter().position(|d| *d + 1 < ALPHABET.len()) else {
                    break;
                };
                digits[i] += 1;
                digits[..i].fill(0);
            }
        }
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            let len = (seed % 40) as usize;
            cases.push(
                (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        ALPHABET[(seed % ALPHABET.len() as u64) as usize]
                    })
                    .collect(),
            );
        }
        let mut checked = 0;
        for (i, raw) in cases.iter().enumerate() {
            let Ok(one) = HeaderValue::from_bytes(raw) else {
                continue;
            };
            let second = &cases[(i * 7919) % cases.len()];
            let mut h = HeaderMap::new();
            h.append(COOKIE, one);
            if let Ok(two) = HeaderValue::from_bytes(second) {
                h.append(COOKIE, two);
            }
            for name in ["s", "sid", "id"] {
                let bytes = cookie_bytes(&h, name);
                assert_eq!(bytes, reference(&h, name, false), "{name} in {h:?}");
                let text = cookie_value(&h, name).map(|v| v.map(str::as_bytes));
                assert_eq!(text, reference(&h, name, true), "{name} in {h:?}");
                assert_eq!(has_cookie(&h, name), bytes != Ok(None));
            }
            checked += 1;
        }
        assert!(checked > 100_000, "{checked}");
    }

    #[test]
    fn names_are_tokens() {
        for ok in ["sid", "__Host-session", "CF_Authorization", "a.b~c"] {
            assert!(is_token(ok), "{ok}");
        }
        for bad in ["", "a b", "a;b", "a=b", "\"a\"", "é", &"a".repeat(65)] {
            assert!(!is_token(bad), "{bad}");
        }
    }
}
