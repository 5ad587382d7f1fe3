//! Where [`BearerAuth`](super::BearerAuth) finds its token besides `Authorization`: a
//! `Sec-WebSocket-Protocol` entry, a query parameter on WebSocket upgrades, a cookie.

use std::borrow::Cow;

use http::HeaderName;
use http::request::Parts;
use percent_encoding::percent_decode_str;

use crate::error::AuthError;
use crate::http::authorization::{bearer_token, has_scheme};
use crate::http::cookies::{cookie_bytes, has_cookie};
use crate::http::csrf::CsrfGuard;

const SEC_WEBSOCKET_PROTOCOL: HeaderName = HeaderName::from_static("sec-websocket-protocol");

/// The sources a [`BearerAuth`](super::BearerAuth) reads, the `Authorization` header
/// always among them.
#[derive(Debug, Clone, Default)]
pub(crate) struct TokenSources {
    pub protocol_prefix: Option<String>,
    pub query: Option<String>,
    pub cookie: Option<String>,
    pub csrf: CsrfGuard,
}

/// Where a token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Header,
    Protocol,
    Query,
    Cookie,
}

impl TokenSources {
    /// True when only the `Authorization` header is read (the fast path).
    pub(crate) fn header_only(&self) -> bool {
        self.protocol_prefix.is_none() && self.query.is_none() && self.cookie.is_none()
    }

    fn present(&self, parts: &Parts) -> impl Iterator<Item = Source> {
        let header = has_scheme(&parts.headers, "bearer");
        let protocol = self.protocol_prefix.as_deref().is_some_and(|p| {
            CsrfGuard::is_websocket(parts) && protocol_entries(parts, p).next().is_some()
        });
        let query = self.query.as_deref().is_some_and(|q| {
            CsrfGuard::is_websocket(parts) && query_values(parts, q).next().is_some()
        });
        let cookie = self
            .cookie
            .as_deref()
            .is_some_and(|c| has_cookie(&parts.headers, c));
        [
            (header, Source::Header),
            (protocol, Source::Protocol),
            (query, Source::Query),
            (cookie, Source::Cookie),
        ]
        .into_iter()
        .filter_map(|(on, s)| on.then_some(s))
    }

    /// Whether a source other than `Authorization` carries a token.
    pub(crate) fn detect_besides_header(&self, parts: &Parts) -> bool {
        self.present(parts).any(|s| s != Source::Header)
    }

    /// The token bytes from the one source that carries one, `None` when none does;
    /// two sources (or two tokens in one source) are a 400.
    pub(crate) fn read<'a>(&self, parts: &'a Parts) -> Option<Result<Cow<'a, [u8]>, AuthError>> {
        let mut present = self.present(parts);
        let source = present.next()?;
        if present.next().is_some() {
            return Some(Err(AuthError::conflicting()));
        }
        Some(self.token_from(source, parts))
    }

    fn token_from<'a>(&self, source: Source, parts: &'a Parts) -> Result<Cow<'a, [u8]>, AuthError> {
        match source {
            Source::Header => bearer_token(&parts.headers).map(Cow::Borrowed),
            Source::Protocol => {
                let prefix = self.protocol_prefix.as_deref().unwrap_or_default();
                let t = single(protocol_entries(parts, prefix))?;
                Ok(Cow::Borrowed(t.as_bytes()))
            }
            Source::Query => {
                let name = self.query.as_deref().unwrap_or_default();
                Ok(cow_bytes(single(query_values(parts, name))?))
            }
            Source::Cookie => {
                if self.csrf.is_cross_site(parts) {
                    return Err(AuthError::cross_site());
                }
                let name = self.cookie.as_deref().unwrap_or_default();
                match cookie_bytes(&parts.headers, name) {
                    Ok(Some(v)) => Ok(Cow::Borrowed(v)),
                    Ok(None) => Err(AuthError::missing()),
                    Err(_) => Err(AuthError::malformed("bearer: duplicate token cookie")),
                }
            }
        }
    }
}

/// The one item of `it`: none is missing, two are a conflict.
fn single<T>(mut it: impl Iterator<Item = T>) -> Result<T, AuthError> {
    match (it.next(), it.next()) {
        (Some(t), None) => Ok(t),
        (Some(_), Some(_)) => Err(AuthError::conflicting()),
        (None, _) => Err(AuthError::missing()),
    }
}

fn cow_bytes(s: Cow<'_, str>) -> Cow<'_, [u8]> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(b.as_bytes()),
        Cow::Owned(o) => Cow::Owned(o.into_bytes()),
    }
}

/// The `Sec-WebSocket-Protocol` entries starting with `prefix`, without it.
fn protocol_entries<'a, 'p>(
    parts: &'a Parts,
    prefix: &'p str,
) -> impl Iterator<Item = &'a str> + use<'a, 'p> {
    parts
        .headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(move |e| e.trim().strip_prefix(prefix))
}

/// The values of query parameter `name`, percent-decoded (a value that does not decode
/// to UTF-8 is kept as sent, and then fails the token syntax check).
fn query_values<'a, 'n>(
    parts: &'a Parts,
    name: &'n str,
) -> impl Iterator<Item = Cow<'a, str>> + use<'a, 'n> {
    parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(move |pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| {
                percent_decode_str(v)
                    .decode_utf8()
                    .unwrap_or(Cow::Borrowed(v))
            })
        })
}
