//! [`Algorithm`]: the JWS signature algorithms a key can be bound to.

use std::fmt;
use std::str::FromStr;

use crate::error::ConfigError;

/// A JWS signature algorithm (RFC 7518 §3, RFC 8037). `none` is not one of them.
///
/// ```
/// use portcullis::jwt::Algorithm;
/// assert_eq!("RS256".parse::<Algorithm>().unwrap(), Algorithm::RS256);
/// assert!("none".parse::<Algorithm>().is_err());
/// assert_eq!(Algorithm::EdDSA.as_str(), "EdDSA");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(clippy::upper_case_acronyms)]
pub enum Algorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

/// The kind of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

impl Algorithm {
    /// The name as written in a JOSE header.
    pub fn as_str(self) -> &'static str {
        use Algorithm::*;
        match self {
            HS256 => "HS256",
            HS384 => "HS384",
            HS512 => "HS512",
            RS256 => "RS256",
            RS384 => "RS384",
            RS512 => "RS512",
            PS256 => "PS256",
            PS384 => "PS384",
            PS512 => "PS512",
            ES256 => "ES256",
            ES384 => "ES384",
            EdDSA => "EdDSA",
        }
    }

    /// Parses a name exactly as written in a JOSE header (case-sensitive); `none` and
    /// unknown names are `None`.
    pub(crate) fn from_jose(name: &str) -> Option<Self> {
        use Algorithm::*;
        Some(match name {
            "HS256" => HS256,
            "HS384" => HS384,
            "HS512" => HS512,
            "RS256" => RS256,
            "RS384" => RS384,
            "RS512" => RS512,
            "PS256" => PS256,
            "PS384" => PS384,
            "PS512" => PS512,
            "ES256" => ES256,
            "ES384" => ES384,
            "EdDSA" => EdDSA,
            _ => return None,
        })
    }

    pub(crate) fn family(self) -> Family {
        use Algorithm::*;
        match self {
            HS256 | HS384 | HS512 => Family::Hmac,
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Family::Rsa,
            ES256 | ES384 => Family::Ec,
            EdDSA => Family::Ed,
        }
    }

    /// The same algorithm in `jsonwebtoken`'s terms (its crypto providers and key types).
    pub(crate) fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as J;
        match self {
            Algorithm::HS256 => J::HS256,
            Algorithm::HS384 => J::HS384,
            Algorithm::HS512 => J::HS512,
            Algorithm::RS256 => J::RS256,
            Algorithm::RS384 => J::RS384,
            Algorithm::RS512 => J::RS512,
            Algorithm::PS256 => J::PS256,
            Algorithm::PS384 => J::PS384,
            Algorithm::PS512 => J::PS512,
            Algorithm::ES256 => J::ES256,
            Algorithm::ES384 => J::ES384,
            Algorithm::EdDSA => J::EdDSA,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::from_jose(s).ok_or_else(|| {
            ConfigError::new(format!(
                "unknown JWS algorithm {s:?} (expected HS256..HS512, RS256..RS512, PS256..PS512, ES256, ES384 or EdDSA)"
            ))
        })
    }
}
