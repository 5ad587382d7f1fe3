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
pub mod proxy;
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
