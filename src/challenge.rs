//! `WWW-Authenticate` challenges (RFC 7235, RFC 7617, RFC 6750).

use std::sync::Arc;

use http::HeaderValue;

/// A `WWW-Authenticate` challenge an authenticator sends with its 401s.
///
/// ```
/// use portcullis::Challenge;
/// let c = Challenge::basic("Admin \"area\"");
/// assert_eq!(c.realm(), Some("Admin \\\"area\\\""));
/// let api = Challenge::bearer("api")
///     .with_resource_metadata("https://api.example.com/.well-known/oauth-protected-resource");
/// # let _ = api;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Challenge {
    /// `Basic realm="...", charset="UTF-8"` (RFC 7617).
    Basic {
        /// The realm, already escaped for a quoted-string.
        realm: Arc<str>,
    },
    /// `Bearer realm="..."` plus an RFC 6750 `error` when credentials were rejected, and
    /// the RFC 9728 `resource_metadata` URL when the resource publishes its metadata.
    Bearer {
        /// The realm, already escaped for a quoted-string.
        realm: Arc<str>,
        /// The protected resource metadata URL, already escaped.
        resource_metadata: Option<Arc<str>>,
    },
    /// `DPoP realm="...", algs="..."` (RFC 9449 section 7.1), with its `error` and the
    /// `resource_metadata` URL like a Bearer challenge.
    Dpop {
        /// The realm, already escaped for a quoted-string.
        realm: Arc<str>,
        /// The proof algorithms accepted, space-separated.
        algs: Arc<str>,
        /// The protected resource metadata URL, already escaped.
        resource_metadata: Option<Arc<str>>,
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
            resource_metadata: None,
        }
    }
    /// A DPoP challenge naming the proof algorithms accepted.
    #[cfg(feature = "jwt")]
    pub fn dpop(realm: &str, algs: &[crate::jose::algorithm::Algorithm]) -> Self {
        let algs: Vec<&str> = algs.iter().map(|a| a.as_str()).collect();
        Challenge::Dpop {
            realm: escape_quoted(realm).into(),
            algs: algs.join(" ").into(),
            resource_metadata: None,
        }
    }
    /// Adds the RFC 9728 `resource_metadata` parameter to a Bearer or DPoP challenge
    /// (others are returned unchanged).
    pub fn with_resource_metadata(self, url: &str) -> Self {
        let url: Option<Arc<str>> = Some(escape_quoted(url).into());
        match self {
            Challenge::Bearer { realm, .. } => Challenge::Bearer {
                realm,
                resource_metadata: url,
            },
            Challenge::Dpop { realm, algs, .. } => Challenge::Dpop {
                realm,
                algs,
                resource_metadata: url,
            },
            other => other,
        }
    }
    /// The escaped realm, if the challenge has one.
    pub fn realm(&self) -> Option<&str> {
        match self {
            Challenge::Basic { realm }
            | Challenge::Bearer { realm, .. }
            | Challenge::Dpop { realm, .. } => Some(realm),
            Challenge::Custom(_) => None,
        }
    }

    /// The header value, with the RFC 6750 / RFC 9449 `error` (and `scope`) the answer
    /// carries; `None` when this challenge has no place in such an answer (a Basic
    /// challenge in an `insufficient_scope` answer).
    pub(crate) fn header_value(&self, error: ChallengeError<'_>) -> Option<HeaderValue> {
        let (scheme, realm, algs, metadata) = match self {
            Challenge::Custom(v) => return Some(v.clone()),
            Challenge::Basic { realm } => {
                return match error.bearer {
                    Some(BearerError::InsufficientScope(_)) => None,
                    _ => HeaderValue::from_str(&format!(
                        "Basic realm=\"{realm}\", charset=\"UTF-8\""
                    ))
                    .ok(),
                };
            }
            Challenge::Bearer {
                realm,
                resource_metadata,
            } => ("Bearer", realm, None, resource_metadata),
            Challenge::Dpop {
                realm,
                algs,
                resource_metadata,
            } => ("DPoP", realm, Some(algs), resource_metadata),
        };
        let mut text = format!("{scheme} realm=\"{realm}\"");
        // A proof failure is the DPoP challenge's to name; the Bearer one stays plain.
        let code = match (error.dpop, algs.is_some()) {
            (Some(DpopError::InvalidProof), true) => Some("invalid_dpop_proof"),
            (Some(DpopError::UseNonce), true) => Some("use_dpop_nonce"),
            (Some(_), false) => None,
            (None, _) => error.bearer.map(BearerError::code),
        };
        if let Some(code) = code {
            text.push_str(&format!(", error=\"{code}\""));
        }
        if let (Some(BearerError::InsufficientScope(Some(s))), None) = (error.bearer, error.dpop) {
            text.push_str(&format!(", scope=\"{}\"", escape_quoted(s)));
        }
        if let Some(algs) = algs {
            text.push_str(&format!(", algs=\"{algs}\""));
        }
        if let Some(url) = metadata {
            text.push_str(&format!(", resource_metadata=\"{url}\""));
        }
        HeaderValue::from_str(&text).ok()
    }
}

/// What went wrong, as the challenges name it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ChallengeError<'a> {
    pub bearer: Option<BearerError<'a>>,
    pub dpop: Option<DpopError>,
}

/// The RFC 6750 section 3.1 error codes of a Bearer challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BearerError<'a> {
    InvalidRequest,
    InvalidToken,
    InsufficientScope(Option<&'a str>),
}

impl BearerError<'_> {
    fn code(self) -> &'static str {
        match self {
            BearerError::InvalidRequest => "invalid_request",
            BearerError::InvalidToken => "invalid_token",
            BearerError::InsufficientScope(_) => "insufficient_scope",
        }
    }
}

/// The RFC 9449 error codes of a DPoP challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DpopError {
    /// `invalid_dpop_proof`.
    InvalidProof,
    /// `use_dpop_nonce` (with a `DPoP-Nonce` header).
    UseNonce,
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
        let v = |e: Option<BearerError<'_>>| {
            c.header_value(ChallengeError {
                bearer: e,
                dpop: None,
            })
            .unwrap()
        };
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
                .header_value(ChallengeError {
                    bearer: Some(BearerError::InsufficientScope(None)),
                    dpop: None
                })
                .is_none()
        );
    }

    #[cfg(feature = "jwt")]
    #[test]
    fn dpop_codes_and_resource_metadata() {
        use crate::jose::algorithm::Algorithm;
        let meta = "https://api.example.com/.well-known/oauth-protected-resource";
        let dpop = Challenge::dpop("api", &[Algorithm::ES256, Algorithm::EdDSA])
            .with_resource_metadata(meta);
        let bearer = Challenge::bearer("api").with_resource_metadata(meta);
        let proof = ChallengeError {
            bearer: Some(BearerError::InvalidToken),
            dpop: Some(DpopError::InvalidProof),
        };
        assert_eq!(
            dpop.header_value(proof).unwrap(),
            format!(
                "DPoP realm=\"api\", error=\"invalid_dpop_proof\", algs=\"ES256 EdDSA\", resource_metadata=\"{meta}\""
            )
        );
        assert_eq!(
            bearer.header_value(proof).unwrap(),
            format!("Bearer realm=\"api\", resource_metadata=\"{meta}\"")
        );
        let nonce = ChallengeError {
            bearer: Some(BearerError::InvalidToken),
            dpop: Some(DpopError::UseNonce),
        };
        assert!(
            dpop.header_value(nonce)
                .unwrap()
                .to_str()
                .unwrap()
                .contains("error=\"use_dpop_nonce\"")
        );
        let scope = ChallengeError {
            bearer: Some(BearerError::InsufficientScope(Some("tasks:write"))),
            dpop: None,
        };
        assert_eq!(
            bearer.header_value(scope).unwrap(),
            format!(
                "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"tasks:write\", resource_metadata=\"{meta}\""
            )
        );
    }
}
