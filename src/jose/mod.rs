//! JOSE primitives shared by every part that reads a signed token or a JWK: algorithms,
//! keys and their verification (with the guard that refuses the test kit's published
//! keys outside tests), the strict JSON parser, the claims view and how claims fill a
//! context. The JWT verifier, introspection, DPoP proofs, challenges, identity proxies
//! and the gateway's signed assertions build on them; their public types are
//! re-exported from [`jwt`](crate::jwt).

pub(crate) mod algorithm;
pub(crate) mod claims;
pub(crate) mod crypto;
pub(crate) mod keys;
pub(crate) mod mapping;
#[cfg(all(feature = "aws-lc-rs", not(portcullis_rust_crypto_only)))]
mod prepared;
pub(crate) mod published_keys;
pub(crate) mod strict_json;
