//! The test kit's keys are public: a verifier refuses signatures by them unless the
//! process uses the test kit. Alone in its binary, and it reads the key files directly
//! (never through `portcullis::testing`) until it means to turn the test kit on.

mod common;

use axum::body::Body;
use common::{Probe, get, send};
use http::StatusCode;
use portcullis::AuthLayer;
use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, KeySet, Validation};
use serde_json::{Value, json};

const PUBLIC: &str = include_str!("../src/testing/keys/public_jwks.json");
const RSA_PRIVATE: &str = include_str!("../src/testing/keys/rsa1.pem");
const RSA_PUBLIC: &str = include_str!("../src/testing/keys/rsa1.pub.pem");
const HMAC: &[u8] = b"portcullis-test-secret-32-bytes!";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token signed with aws-lc-rs directly: RS256 with the published private key, or
/// HS256 with the published secret.
fn token(rsa: bool) -> String {
    use aws_lc_rs::{hmac, rand::SystemRandom, signature};
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let header = if rsa {
        json!({"alg": "RS256", "typ": "JWT", "kid": "rsa1"})
    } else {
        json!({"alg": "HS256", "typ": "JWT"})
    };
    let claims =
        json!({"sub": "mallory", "aud": "api", "iss": "https://issuer.test", "exp": now() + 600});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = if rsa {
        let body: String = RSA_PRIVATE
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = STANDARD.decode(body).unwrap();
        let pair = signature::RsaKeyPair::from_pkcs8(&der).unwrap();
        let mut sig = vec![0; pair.public_modulus_len()];
        pair.sign(
            &signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        sig
    } else {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, HMAC), input.as_bytes())
            .as_ref()
            .to_vec()
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

async fn status(keys: KeySet, alg: Algorithm, token: &str) -> StatusCode {
    let verifier = JwtVerifier::new(Issuer::new(
        keys,
        Validation::new([alg])
            .with_issuer("https://issuer.test")
            .with_audience("api"),
    ));
    let app = Probe::default()
        .router("/me")
        .layer(AuthLayer::required(BearerAuth::new("api", verifier)));
    send(
        &app,
        get("/me")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .status
}

#[tokio::test]
async fn published_test_keys_verify_only_where_the_test_kit_is_in_use() {
    let mut rsa1: Value = serde_json::from_str::<Value>(PUBLIC).unwrap()["rsa1"].clone();
    rsa1["kid"] = json!("rsa1");
    let from_jwks = || {
        KeySet::from_jwks(
            json!({"keys": [rsa1.clone()]}).to_string().as_bytes(),
            &[Algorithm::RS256],
            false,
        )
        .unwrap()
    };
    let from_pem = || {
        KeySet::new()
            .with_pem(Some("rsa1"), Algorithm::RS256, RSA_PUBLIC.as_bytes())
            .unwrap()
    };
    let from_secret = || {
        KeySet::new()
            .with_hmac_secret(HMAC, Algorithm::HS256)
            .unwrap()
    };
    let (rs, hs) = (token(true), token(false));

    // Configured by mistake (a JWKS or PEM copied from an example, the test secret):
    // a forged token signed with the published private half is refused.
    assert_eq!(
        status(from_jwks(), Algorithm::RS256, &rs).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(from_pem(), Algorithm::RS256, &rs).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(from_secret(), Algorithm::HS256, &hs).await,
        StatusCode::UNAUTHORIZED
    );

    // A process that uses the test kit (as tests do) trusts them.
    let _ = portcullis::testing::jwks(&[]);
    assert_eq!(
        status(from_jwks(), Algorithm::RS256, &rs).await,
        StatusCode::OK
    );
    assert_eq!(
        status(from_pem(), Algorithm::RS256, &rs).await,
        StatusCode::OK
    );
    assert_eq!(
        status(from_secret(), Algorithm::HS256, &hs).await,
        StatusCode::OK
    );
}
