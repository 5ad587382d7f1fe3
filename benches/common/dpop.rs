//! DPoP fixtures: the ES256 proof key, tokens bound to it, and single-use proofs.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::jwt::Algorithm;
use portcullis::testing::{TestKey, TokenBuilder, now, sign_raw};
use sha2::{Digest, Sha256};

use super::{AUD, ISS};

/// The public URL proofs name (`htu` = this and the request's path).
pub const PUBLIC: &str = "https://bench.example";

/// The ES256 proof key's public JWK, as a proof carries it.
pub fn jwk() -> serde_json::Value {
    let mut j = TestKey::Es256.public_jwk();
    for m in ["kid", "alg", "use"] {
        j.as_object_mut().unwrap().remove(m);
    }
    j
}

/// A token of `sub` bound (`cnf.jkt`) to the proof key.
pub fn bound_token(sub: &str) -> String {
    let j = jwk();
    let canonical = format!(
        r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
        j["crv"].as_str().unwrap(),
        j["x"].as_str().unwrap(),
        j["y"].as_str().unwrap()
    );
    TokenBuilder::new(TestKey::Rs256)
        .with_claim("iss", ISS)
        .with_claim("aud", AUD)
        .with_claim("sub", sub)
        .with_claim("roles", serde_json::json!(["admin", "member"]))
        .with_claim("exp", now() + 3600)
        .with_claim(
            "cnf",
            serde_json::json!({"jkt": URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))}),
        )
        .sign()
}

/// A proof for `GET <path>` with `token`, identified by `jti`.
pub fn proof(jti: &str, path: &str, token: &str) -> http::HeaderValue {
    let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk()}).to_string();
    let claims = serde_json::json!({
        "jti": jti,
        "htm": "GET",
        "htu": format!("{PUBLIC}{path}"),
        "iat": now(),
        "ath": URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())),
    })
    .to_string();
    http::HeaderValue::from_str(&sign_raw(
        TestKey::Es256,
        Algorithm::ES256,
        &header,
        &claims,
    ))
    .unwrap()
}
