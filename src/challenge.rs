//! `WWW-Authenticate` challenges (RFC 7235, RFC 7617, RFC 6750).

use std::sync::Arc;

use http::HeaderValue;

/// A `WWW-Authenticate` challenge an authenticator sends with its 401s.
///
/// ```
/// use portcullis::Challenge;
/// let c = Challenge::basic("Admin \"area\"");
/// assert_eq!(c.realm(), Some("Admin \\\"area\\\""));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Challenge {
    /// `Basic realm="...", charset="UTF-8"` (RFC 7617).
    Basic {
        /// The realm, already escaped for a quoted-string.
        realm: Arc<str>,
    },
    /// `Bearer realm="..."` plus an RFC 6750 `error` when credentials were rejected.
    Bearer {
        /// The realm, already escaped for a quoted-string.
        realm: Arc<str>,
    },
    /// A fixed header value sent for every 401 (custom schemes).
    Custom(HeaderValue),
}

impl Challenge {
    /// A Basic challenge; the realm is escaped (quotes, backslashes) and stripped of control characters.
    pub fn basic(realm: &str) -> Self {
        Challenge::Basic {
            realm: escape_quoted(realm).into(),
        }
    }
    /// A Bearer challenge; the realm is escaped like [`Challenge::basic`].
    pub fn bearer(realm: &str) -> Self {
        Challenge::Bearer {
            realm: escape_quoted(realm).into(),
        }
    }
    /// The escaped realm, if the challenge has one.
    pub fn realm(&self) -> Option<&str> {
        match self {
            Challenge::Basic { realm } | Challenge::Bearer { realm } => Some(realm),
            Challenge::Custom(_) => None,
        }
    }

    /// The header value, with the RFC 6750 `error` (and `scope`) a Bearer challenge
    /// carries; `None` when this challenge has no place in such an answer (a Basic
    /// challenge in an `insufficient_scope` answer).
    pub(crate) fn header_value(
        &self,
        bearer_error: Option<BearerError<'_>>,
    ) -> Option<HeaderValue> {
        let text = match self {
            Challenge::Custom(v) => return Some(v.clone()),
            Challenge::Basic { realm } => match bearer_error {
                Some(BearerError::InsufficientScope(_)) => return None,
                _ => format!("Basic realm=\"{realm}\", charset=\"UTF-8\""),
            },
            Challenge::Bearer { realm } => match bearer_error {
                None => format!("Bearer realm=\"{realm}\""),
                Some(BearerError::InvalidRequest) => {
                    format!("Bearer realm=\"{realm}\", error=\"invalid_request\"")
                }
                Some(BearerError::InvalidToken) => {
                    format!("Bearer realm=\"{realm}\", error=\"invalid_token\"")
                }
                Some(BearerError::InsufficientScope(Some(s))) => format!(
                    "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{}\"",
                    escape_quoted(s)
                ),
                Some(BearerError::InsufficientScope(None)) => {
                    format!("Bearer realm=\"{realm}\", error=\"insufficient_scope\"")
                }
            },
        };
        HeaderValue::from_str(&text).ok()
    }
}

/// The RFC 6750 §3.1 error codes of a Bearer challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BearerError<'a> {
    InvalidRequest,
    InvalidToken,
    InsufficientScope(Option<&'a str>),
}

/// Escapes a string for use inside an HTTP quoted-string; drops control characters.
pub(crate) fn escape_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c if !c.is_ascii() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_strips() {
        assert_eq!(escape_quoted("a\"b\\c\r\nd"), "a\\\"b\\\\cd");
        assert_eq!(escape_quoted("zoé"), "zo?");
    }

    #[test]
    fn bearer_codes() {
        let c = Challenge::bearer("api");
        let v = |e| c.header_value(e).unwrap();
        assert_eq!(v(None), "Bearer realm=\"api\"");
        assert_eq!(
            v(Some(BearerError::InvalidToken)),
            "Bearer realm=\"api\", error=\"invalid_token\""
        );
        assert_eq!(
            v(Some(BearerError::InvalidRequest)),
            "Bearer realm=\"api\", error=\"invalid_request\""
        );
        assert_eq!(
            v(Some(BearerError::InsufficientScope(Some("x y")))),
            "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"x y\""
        );
        assert!(
            Challenge::basic("r")
                .header_value(Some(BearerError::InsufficientScope(None)))
                .is_none()
        );
    }
}
