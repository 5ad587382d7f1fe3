//! Helpers shared by the benchmark binaries.
#![allow(dead_code)]

pub mod apps;
pub mod dpop;
pub mod limit;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use portcullis::testing::{TestKey, TokenBuilder, now};

pub const ISS: &str = "https://issuer.bench";
pub const AUD: &str = "bench";

/// Polls a future that never waits (static keys, memory store) to completion.
pub fn now_or_never<F: Future>(f: F) -> F::Output {
    match pin!(f)
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("benchmarked future waited"),
    }
}

/// The benchmark token: `iss`, `aud`, two roles, two scopes, valid for a day.
pub fn token(key: TestKey) -> String {
    token_from(key, ISS)
}

/// [`token`] with issuer `iss`.
pub fn token_from(key: TestKey, iss: &str) -> String {
    TokenBuilder::new(key)
        .with_claim("iss", iss)
        .with_claim("aud", AUD)
        .with_claim("roles", serde_json::json!(["admin", "member"]))
        .with_claim("scope", "posts:read posts:write")
        .with_claim("exp", now() + 3600 * 24)
        .sign()
}

/// `jsonwebtoken`'s key for `key`, loaded from the same PEM or secret as ours.
pub fn jsonwebtoken_key(key: TestKey) -> jsonwebtoken::DecodingKey {
    use jsonwebtoken::DecodingKey;
    let pem = key.public_pem().as_bytes();
    match key {
        TestKey::Hs256 => DecodingKey::from_secret(portcullis::testing::HMAC_SECRET),
        TestKey::Es256 => DecodingKey::from_ec_pem(pem).unwrap(),
        TestKey::EdDsa => DecodingKey::from_ed_pem(pem).unwrap(),
        _ => DecodingKey::from_rsa_pem(pem).unwrap(),
    }
}

/// `jsonwebtoken`'s validation of the benchmark token: `iss` and `aud` as ours checks them.
pub fn jsonwebtoken_validation(key: TestKey) -> jsonwebtoken::Validation {
    let alg = key.algorithm().as_str().parse().unwrap();
    let mut v = jsonwebtoken::Validation::new(alg);
    v.set_issuer(&[ISS]);
    v.set_audience(&[AUD]);
    v
}

/// The benchmarked algorithms, with the test key of each.
pub const ALGORITHMS: [(&str, TestKey); 4] = [
    ("HS256", TestKey::Hs256),
    ("RS256", TestKey::Rs256),
    ("ES256", TestKey::Es256),
    ("EdDSA", TestKey::EdDsa),
];

/// Our verifier for the benchmark token of `key` (`iss` and `aud` checked), without the
/// token cache.
pub fn verifier(key: TestKey) -> portcullis::jwt::JwtVerifier {
    use portcullis::jwt::{Issuer, JwtVerifier, Validation};
    JwtVerifier::new(Issuer::new(
        key.key_set(),
        Validation::new([key.algorithm()])
            .with_issuer(ISS)
            .with_audience(AUD),
    ))
}
