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
