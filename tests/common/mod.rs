//! Helpers shared by the integration tests: drive a router, inspect the answer.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::any;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use portcullis::AuthContext;
use serde_json::Value;
use tower::ServiceExt;

/// An answer: status, headers, body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    /// The `name=value` pair of the first `Set-Cookie`: what a client sends back.
    pub fn cookie_pair(&self) -> String {
        let set = self.headers["set-cookie"].to_str().unwrap();
        set.split(';').next().unwrap().to_owned()
    }
    pub fn www_authenticate(&self) -> Vec<String> {
        self.headers
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
}

pub async fn answer(res: Response) -> Answer {
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Answer {
    answer(app.clone().oneshot(req).await.unwrap()).await
}

pub fn get(path: &str) -> http::request::Builder {
    Request::builder().uri(path)
}

/// A handler that counts its runs and echoes the context (or `{"authenticated":false}`).
#[derive(Clone, Default)]
pub struct Probe(pub Arc<AtomicUsize>);

impl Probe {
    pub fn runs(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
    pub fn router(&self, path: &str) -> Router {
        let counter = self.0.clone();
        Router::new().route(
            path,
            any(move |ctx: Option<AuthContext>| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    match ctx {
                        Some(c) => axum::Json(serde_json::to_value(&c).unwrap()),
                        None => axum::Json(serde_json::json!({"authenticated": false})),
                    }
                }
            }),
        )
    }
}

pub fn basic(user: &str, pass: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

pub mod logs;
#[cfg(all(feature = "oauth", feature = "test-util"))]
pub mod oidc_apps;
pub mod proxy;
pub mod redis_servers;
#[cfg(all(feature = "redis", feature = "postgres"))]
pub mod stores;

/// `PORTCULLIS_TEST_REDIS_URL`, or `None` after printing a skip notice.
pub fn redis_url() -> Option<String> {
    let url = std::env::var("PORTCULLIS_TEST_REDIS_URL").ok();
    if url.is_none() {
        eprintln!("skip: PORTCULLIS_TEST_REDIS_URL not set");
    }
    url
}

/// A key prefix no other test run uses (`tag-<pid>-<random>:`).
pub fn unique_prefix(tag: &str) -> String {
    format!("{tag}-{}-{}:", std::process::id(), rand::random::<u32>())
}

/// The same JWS with its ECDSA signature `(r, s)` replaced by `(r, n - s)`, which is just
/// as valid (P-256 or P-384, raw `r || s` as JWS uses; the signature's base64 padded when
/// `padded`): a second token nobody signed twice.
pub fn other_ecdsa_signature(token: &str, padded: bool) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
    const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
    const P384_N: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";
    let (message, sig) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig.trim_end_matches('=')).unwrap();
    let n_hex = match sig.len() {
        64 => P256_N,
        96 => P384_N,
        other => panic!("not an ECDSA P-256/P-384 signature ({other} bytes)"),
    };
    let n: Vec<u8> = (0..n_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&n_hex[i..i + 2], 16).unwrap())
        .collect();
    let half = sig.len() / 2;
    let s = &mut sig[half..];
    // s := n - s, big-endian.
    let mut borrow = 0i16;
    for i in (0..s.len()).rev() {
        let d = i16::from(n[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        s[i] = d.rem_euclid(256) as u8;
    }
    assert_eq!(borrow, 0);
    let enc = if padded {
        URL_SAFE.encode(&sig)
    } else {
        URL_SAFE_NO_PAD.encode(&sig)
    };
    format!("{message}.{enc}")
}

/// The message of a refusal (a configuration error, a failed call); fails the test
/// when the call was accepted. Tests assert on it, so a refusal for the wrong reason
/// does not pass.
pub fn refusal<T, E: std::fmt::Display>(result: Result<T, E>) -> String {
    match result {
        Ok(_) => panic!("accepted, expected a refusal"),
        Err(e) => e.to_string(),
    }
}
