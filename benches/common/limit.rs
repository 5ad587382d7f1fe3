//! The "limit": the least work any JWT verifier must do. Shared by the criterion and
//! instruction-count benchmarks and, through `#[path]`, by the load harness.
//!
//! Per token: base64url-decode the signature, verify it with a key pre-parsed for
//! aws-lc-rs (`hmac::Key` or `ParsedPublicKey`), base64url-decode and parse header and
//! claims into `serde_json::Value`. No claim checks, no context.

use std::hint::black_box;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portcullis::testing::{HMAC_SECRET, TestKey};
use serde_json::Value;

/// A verification key prepared once, as a verifier at its best would keep it.
#[allow(clippy::large_enum_variant)] // built once per benchmark
pub enum LimitKey {
    Hmac(hmac::Key),
    Public(ParsedPublicKey),
}

impl LimitKey {
    /// The public (or HMAC) key of `key`.
    pub fn new(key: TestKey) -> Self {
        let jwk = key.public_jwk();
        let b = |f: &str| URL_SAFE_NO_PAD.decode(jwk[f].as_str().unwrap()).unwrap();
        let public = |alg, der: Vec<u8>| LimitKey::Public(ParsedPublicKey::new(alg, der).unwrap());
        match key {
            TestKey::Hs256 => LimitKey::Hmac(hmac::Key::new(hmac::HMAC_SHA256, HMAC_SECRET)),
            TestKey::Es256 => public(
                &sig::ECDSA_P256_SHA256_FIXED,
                [vec![4u8], b("x"), b("y")].concat(),
            ),
            TestKey::EdDsa => public(&sig::ED25519, b("x")),
            _ => {
                let body: String = key
                    .public_pem()
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect();
                public(
                    &sig::RSA_PKCS1_2048_8192_SHA256,
                    STANDARD.decode(body).unwrap(),
                )
            }
        }
    }

    /// The claims of `token` when its signature verifies; `None` for any failure.
    pub fn verify(&self, token: &str) -> Option<Value> {
        let (msg, s) = token.rsplit_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(s).ok()?;
        let ok = match self {
            LimitKey::Hmac(k) => hmac::verify(k, msg.as_bytes(), &signature).is_ok(),
            LimitKey::Public(p) => p.verify_sig(msg.as_bytes(), &signature).is_ok(),
        };
        if !ok {
            return None;
        }
        let (h, p) = msg.split_once('.')?;
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        black_box(header);
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
    }
}
