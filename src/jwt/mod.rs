//! JWT bearer authentication: strict validation, JWKS cache, OIDC discovery and a
//! verified-token cache.
//!
//! What is checked, beyond the signature:
//! - algorithm from your allowlist only, never from the token; each key bound to one
//!   algorithm; `none` unrepresentable;
//! - `exp` required; `nbf`, `iat` checked (30 s leeway); optional max age and `typ`;
//! - `iss`/`aud` exact matches with the right JSON types (`aud` string or array of strings);
//! - `crit`, `b64`, `zip`, `enc` (JWE), nested JWTs and duplicate JSON keys rejected;
//!   `jku`, `x5u`, `jwk`, `x5c` never used to find keys; tokens over 8 KiB rejected.
//!
//! ```no_run
//! use portcullis::{AuthLayer, jwt::{Algorithm, BearerAuth, Issuer, JwksOptions, JwtVerifier, RemoteJwks, TokenCache, Validation}};
//!
//! let jwks = RemoteJwks::discover("https://login.example.com", [Algorithm::RS256], JwksOptions::default())?;
//! let issuer = Issuer::new(jwks, Validation::new([Algorithm::RS256])
//!     .with_issuer("https://login.example.com")
//!     .with_audience("my-api"));
//! let layer = AuthLayer::required(BearerAuth::new("my-api", JwtVerifier::new(issuer).with_token_cache(TokenCache::new())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bearer;
mod cache;
mod header_cache;
mod issuer;
pub(crate) mod remote;
mod tenants;
mod token;
mod token_source;
pub(crate) mod validation;
mod verifier;

pub use self::bearer::{BearerAuth, PresentedToken};
pub use self::cache::TokenCache;
pub use self::issuer::{Issuer, KeySource};
pub use self::remote::{JwksHealth, JwksOptions, RemoteJwks};
pub use self::tenants::Tenants;
pub use self::validation::Validation;
pub use self::verifier::JwtVerifier;
pub use crate::jose::algorithm::Algorithm;
pub use crate::jose::claims::Claims;
#[cfg(any(feature = "test-util", feature = "gateway"))]
pub(crate) use crate::jose::crypto::PROVIDER;
pub use crate::jose::crypto::VerifyingKey;
pub use crate::jose::keys::{KeySet, MIN_HMAC_SECRET_BYTES, MIN_RSA_BITS};
pub use crate::jose::mapping::ClaimsMapping;
