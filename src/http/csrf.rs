//! Cross-site request guard for credentials browsers attach on their own (cookies).

use http::header::{CONNECTION, HOST, ORIGIN, UPGRADE};
use http::request::Parts;
use http::{HeaderName, Method};

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// Which cross-site requests a cookie-authenticated route refuses (403).
///
/// Unsafe methods (anything but GET, HEAD, OPTIONS) and WebSocket upgrades are refused
/// when `Sec-Fetch-Site` says `cross-site` or `same-site`, or, without it, when `Origin`
/// names another origin (or `null`): another scheme, host or port than the request's own
/// (`https` assumed unless the request URI says otherwise; `http` also for loopback
/// hosts). Origins in the trusted list pass. Requests with neither header (non-browser
/// clients) pass.
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

    /// True for a WebSocket upgrade request (`Upgrade: websocket`, or `Connection:
    /// upgrade` with an `Upgrade` header).
    pub(crate) fn is_websocket(parts: &Parts) -> bool {
        if !parts.headers.contains_key(UPGRADE) {
            return false;
        }
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
            Some(o) => !is_same_origin(o, parts),
        }
    }
}

/// Whether `origin` is the request's own origin: same scheme, host and port (default
/// ports filled in). The host comes from `Host`; the scheme from the request URI when it
/// has one, else `https` (the site sits behind TLS), with `http` also accepted for
/// loopback hosts. A plain-http site elsewhere lists its origin with
/// [`CsrfGuard::with_trusted_origin`].
fn is_same_origin(origin: &str, parts: &Parts) -> bool {
    let Some(host) = parts.headers.get(HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((o_scheme, o_host, o_port)) = parse_origin(origin) else {
        return false;
    };
    let Some((h_host, h_port)) = split_host_port(host) else {
        return false;
    };
    if !o_host.eq_ignore_ascii_case(h_host) {
        return false;
    }
    let scheme_ok = match parts.uri.scheme_str() {
        Some(s) => s.eq_ignore_ascii_case(o_scheme),
        None => o_scheme == "https" || (o_scheme == "http" && is_loopback(h_host)),
    };
    scheme_ok && h_port.unwrap_or(default_port(o_scheme)) == o_port
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "http" { 80 } else { 443 }
}

/// `scheme://host[:port]` with scheme `http` or `https` (lower case, as browsers send it)
/// and nothing after the authority; the port defaults by scheme.
fn parse_origin(origin: &str) -> Option<(&str, &str, u16)> {
    let (scheme, rest) = origin.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let (host, port) = split_host_port(rest)?;
    Some((scheme, host, port.unwrap_or(default_port(scheme))))
}

/// `host[:port]` or `[v6]:port`; `None` for anything with a path, user info or a bad port.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if s.is_empty() || s.contains(['/', '@', '?', '#', ' ', '\\']) {
        return None;
    }
    let (host, port) = match s.rfind(':') {
        Some(i) if !s[i..].contains(']') => (&s[..i], Some(&s[i + 1..])),
        _ => (s, None),
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|_| !p.starts_with('+'))?),
        None => None,
    };
    (!host.is_empty()).then_some((host, port))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
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
            &[
                ("origin", "http://localhost:3000"),
                ("host", "localhost:3000")
            ]
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

#[cfg(test)]
mod origin_tests {
    use super::*;
    use http::Request;

    fn post(origin: &str, host: &str) -> Parts {
        Request::post("/x")
            .header("origin", origin)
            .header("host", host)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn the_origin_fallback_compares_scheme_host_and_port() {
        let g = CsrfGuard::default();
        let same = [
            ("https://app.example", "app.example"),
            ("https://app.example", "APP.example:443"),
            ("https://app.example:8443", "app.example:8443"),
            ("http://127.0.0.1:3000", "127.0.0.1:3000"),
            ("https://[::1]:3000", "[::1]:3000"),
            ("http://localhost", "localhost:80"),
        ];
        for (o, h) in same {
            assert!(!g.is_cross_site(&post(o, h)), "{o} vs {h}");
        }
        let cross = [
            ("http://app.example", "app.example"), // plain http on an https site
            ("http://app.example:443", "app.example"), // scheme differs, port equal
            ("https://app.example:8443", "app.example"), // port differs
            ("https://app.example", "app.example:8443"),
            ("https://evil.example", "app.example"),
            ("https://app.example.evil", "app.example"),
            ("ftp://app.example", "app.example"),
            ("https://user@app.example", "app.example"),
            ("https://app.example/", "app.example"),
            ("https://app.example:+443", "app.example"),
            ("https://app.example:99999", "app.example"),
            ("null", "app.example"),
            ("https://", ""),
        ];
        for (o, h) in cross {
            assert!(g.is_cross_site(&post(o, h)), "{o} vs {h}");
        }
        let plain_site = CsrfGuard::default().with_trusted_origin("http://intranet:8080");
        assert!(!plain_site.is_cross_site(&post("http://intranet:8080", "intranet:8080")));
    }
}
