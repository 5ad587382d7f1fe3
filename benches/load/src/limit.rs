//! The "limit" modes: the least work any JWT verifier must do per request, done by a
//! bare axum middleware in the same server loop as the other modes.
//!
//! Per request: base64url-decode the signature, verify it with a pre-parsed aws-lc-rs key
//! (`hmac::Key` or `ParsedPublicKey`), base64url-decode and parse header and claims into
//! `serde_json::Value`. No claim checks, no context. Our uncached layers are compared
//! against this, so "no-auth CPU + limit crypto CPU" is measured, not added up from a
//! micro benchmark that runs with hot caches.

use std::sync::Arc;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portcullis::testing::{HMAC_SECRET, TestKey};
use serde_json::Value;

enum Key {
    Hmac(hmac::Key),
    Public(ParsedPublicKey),
}

fn prepared(k: TestKey) -> Key {
    let jwk = k.public_jwk();
    let b = |f: &str| URL_SAFE_NO_PAD.decode(jwk[f].as_str().unwrap()).unwrap();
    let public = |alg, der: Vec<u8>| Key::Public(ParsedPublicKey::new(alg, der).unwrap());
    match k {
        TestKey::Hs256 => Key::Hmac(hmac::Key::new(hmac::HMAC_SHA256, HMAC_SECRET)),
        TestKey::Es256 => public(
            &sig::ECDSA_P256_SHA256_FIXED,
            [vec![4u8], b("x"), b("y")].concat(),
        ),
        TestKey::EdDsa => public(&sig::ED25519, b("x")),
        _ => {
            let body: String = k
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

fn verify(key: &Key, token: &str) -> Option<Value> {
    let (msg, s) = token.rsplit_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(s).ok()?;
    let ok = match key {
        Key::Hmac(k) => hmac::verify(k, msg.as_bytes(), &signature).is_ok(),
        Key::Public(p) => p.verify_sig(msg.as_bytes(), &signature).is_ok(),
    };
    if !ok {
        return None;
    }
    let (h, p) = msg.split_once('.')?;
    let _header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
}

async fn middleware(State(key): State<Arc<Key>>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token.and_then(|t| verify(&key, t)) {
        Some(claims) => {
            req.extensions_mut().insert(Arc::new(claims));
            next.run(req).await
        }
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn subject(Extension(claims): Extension<Arc<Value>>) -> String {
    claims["sub"].as_str().unwrap_or_default().to_owned()
}

/// A server doing the limit's work for tokens signed by `key`.
pub fn limit(key: TestKey) -> (Router, String) {
    let app = Router::new()
        .route("/", get(subject))
        .layer(from_fn_with_state(Arc::new(prepared(key)), middleware));
    (app, format!("Authorization: Bearer {}", super::token(key)))
}
