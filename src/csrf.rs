//! Cross-site request guard for credentials browsers attach on their own (cookies).

use http::header::{CONNECTION, HOST, ORIGIN, UPGRADE};
use http::request::Parts;
use http::{HeaderName, Method};

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// Which cross-site requests a cookie-authenticated route refuses (403).
///
/// Unsafe methods (anything but GET, HEAD, OPTIONS) and WebSocket upgrades are refused
/// when `Sec-Fetch-Site` says `cross-site` or `same-site`, or, without it, when `Origin`
/// names another origin (or `null`). Origins in the trusted list pass. Requests with
/// neither header (non-browser clients) pass.
///
/// ```
/// use portcullis::CsrfGuard;
/// let guard = CsrfGuard::default().with_trusted_origin("https://app.example.com");
/// # let _ = guard;
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CsrfGuard {
    trusted: Vec<String>,
    disabled: bool,
}

impl CsrfGuard {
    /// Let requests from `origin` (e.g. `https://app.example.com`) through.
    pub fn with_trusted_origin(mut self, origin: impl Into<String>) -> Self {
        self.trusted
            .push(origin.into().trim_end_matches('/').to_owned());
        self
    }
    /// Turn the guard off (only for APIs that never serve browsers).
    pub fn disabled() -> Self {
        CsrfGuard {
            trusted: Vec::new(),
            disabled: true,
        }
    }

    fn is_websocket(parts: &Parts) -> bool {
        let has = |name: HeaderName, token: &str| {
            parts.headers.get_all(name).iter().any(|v| {
                v.to_str()
                    .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            })
        };
        has(UPGRADE, "websocket")
            || (has(CONNECTION, "upgrade") && parts.headers.contains_key(UPGRADE))
    }

    /// True when the request must be refused.
    pub fn is_cross_site(&self, parts: &Parts) -> bool {
        if self.disabled {
            return false;
        }
        let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !unsafe_method && !Self::is_websocket(parts) {
            return false;
        }
        let origin = parts.headers.get(ORIGIN).and_then(|v| v.to_str().ok());
        if let Some(o) = origin
            && self.trusted.iter().any(|t| t == o)
        {
            return false;
        }
        if let Some(site) = parts.headers.get(SEC_FETCH_SITE) {
            return !matches!(site.as_bytes(), b"same-origin" | b"none");
        }
        match origin {
            None => false,
            Some(o) => {
                let host = parts.headers.get(HOST).and_then(|v| v.to_str().ok());
                let origin_host = o.split_once("://").map(|(_, h)| h);
                match (origin_host, host) {
                    (Some(oh), Some(h)) => !oh.eq_ignore_ascii_case(h),
                    _ => true,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn parts(method: Method, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder().method(method).uri("/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn rules() {
        let g = CsrfGuard::default().with_trusted_origin("https://ok.example");
        assert!(!g.is_cross_site(&parts(Method::GET, &[("sec-fetch-site", "cross-site")])));
        assert!(g.is_cross_site(&parts(Method::POST, &[("sec-fetch-site", "cross-site")])));
        assert!(g.is_cross_site(&parts(Method::POST, &[("sec-fetch-site", "same-site")])));
        assert!(!g.is_cross_site(&parts(Method::POST, &[("sec-fetch-site", "same-origin")])));
        assert!(g.is_cross_site(&parts(
            Method::GET,
            &[
                ("upgrade", "websocket"),
                ("origin", "https://evil.example"),
                ("host", "app.example")
            ]
        )));
        assert!(g.is_cross_site(&parts(Method::DELETE, &[("origin", "null"), ("host", "a")])));
        assert!(!g.is_cross_site(&parts(
            Method::POST,
            &[("origin", "http://a:3000"), ("host", "a:3000")]
        )));
        assert!(!g.is_cross_site(&parts(
            Method::POST,
            &[
                ("origin", "https://ok.example"),
                ("sec-fetch-site", "cross-site")
            ]
        )));
        assert!(!g.is_cross_site(&parts(Method::POST, &[])));
    }
}
