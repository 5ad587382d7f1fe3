//! Parsing of `Authorization: Basic ...` (RFC 7617), strict and panic-free.

use std::fmt;

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::error::AuthError;
use crate::http::authorization::strip_scheme;

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Longest user name accepted.
pub const MAX_USERNAME_BYTES: usize = 256;
/// Longest password accepted.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A user name and password from a Basic header.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BasicCredentials {
    /// The user name (before the first colon).
    pub username: String,
    /// The password (after the first colon; may contain colons).
    pub password: String,
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Parses the `Authorization` header as Basic credentials.
///
/// Errors (all 401 "invalid credentials"): not Basic, bad base64, not UTF-8, no colon,
/// control characters, or overlong parts.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// let mut h = HeaderMap::new();
/// h.insert("authorization", HeaderValue::from_static("basic YWxpY2U6cDp3"));
/// let c = portcullis::basic::parse_basic_header(&h).unwrap();
/// assert_eq!((c.username.as_str(), c.password.as_str()), ("alice", "p:w"));
/// ```
pub fn parse_basic_header(headers: &HeaderMap) -> Result<BasicCredentials, AuthError> {
    let value = headers.get(AUTHORIZATION).ok_or_else(AuthError::missing)?;
    parse_basic_value(value.as_bytes())
}

/// [`parse_basic_header`] on the header's value.
pub(crate) fn parse_basic_value(value: &[u8]) -> Result<BasicCredentials, AuthError> {
    let encoded = strip_scheme(value, "basic").ok_or_else(|| AuthError::invalid("not basic"))?;
    let encoded = encoded.trim_ascii_end();
    if encoded.len() > 4 * (MAX_USERNAME_BYTES + MAX_PASSWORD_BYTES + 1) / 3 + 4 {
        return Err(AuthError::invalid("basic credentials too long"));
    }
    let decoded = BASE64
        .decode(encoded)
        .map_err(|_| AuthError::invalid("basic: bad base64"))?;
    let text = String::from_utf8(decoded).map_err(|_| AuthError::invalid("basic: not utf-8"))?;
    let (user, pass) = text
        .split_once(':')
        .ok_or_else(|| AuthError::invalid("basic: no colon"))?;
    if user.is_empty() || user.len() > MAX_USERNAME_BYTES || pass.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::invalid("basic: bad length"));
    }
    if text.chars().any(char::is_control) {
        return Err(AuthError::invalid("basic: control character"));
    }
    Ok(BasicCredentials {
        username: user.to_owned(),
        password: pass.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn parse(v: &[u8]) -> Result<BasicCredentials, AuthError> {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        parse_basic_header(&h)
    }

    #[test]
    fn accepts_variants() {
        assert_eq!(parse(b"Basic YTpi").unwrap().username, "a");
        assert_eq!(parse(b"BASIC   YTpi").unwrap().password, "b");
        assert_eq!(parse(b"Basic YTo").unwrap().password, "");
        assert_eq!(parse(b"Basic YTpiOmM=").unwrap().password, "b:c");
    }

    #[test]
    fn rejects_garbage() {
        use crate::error::reason_of;
        for (bad, reason) in [
            (&b"Basic"[..], "not basic"),
            (b"Basic ", "not basic"),
            (b"Basicx YTpi", "not basic"),
            (b"Bearer YTpi", "not basic"),
            (b"Basic !!!", "basic: bad base64"),
            (b"Basic YWJj", "basic: no colon"),   // "abc"
            (b"Basic OmI=", "basic: bad length"), // ":b": empty user
            (b"Basic /w==", "basic: not utf-8"),  // 0xff
            (b"Basic YQpiOmM=", "basic: control character"), // "a\nb:c"
        ] {
            let shown = String::from_utf8_lossy(bad);
            assert_eq!(reason_of(parse(bad)), reason, "{shown:?}");
        }
        let long = format!("Basic {}", "A".repeat(5000));
        assert_eq!(
            reason_of(parse(long.as_bytes())),
            "basic credentials too long"
        );
    }
}
