//! JOSE primitives shared by every part that reads a signed token or a JWK: algorithms,
//! keys and their verification, the strict JSON parser, the claims view and how claims
//! fill a context. The JWT verifier, introspection, DPoP proofs and identity proxies
//! build on them; their public types are re-exported from [`jwt`](crate::jwt).

pub(crate) mod algorithm;
pub(crate) mod claims;
pub(crate) mod crypto;
pub(crate) mod keys;
pub(crate) mod mapping;
#[cfg(all(feature = "aws-lc-rs", not(portcullis_rust_crypto_only)))]
mod prepared;
pub(crate) mod published_keys;
pub(crate) mod strict_json;
