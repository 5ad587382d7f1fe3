//! The "limit" modes: the least work any JWT verifier must do per request, done by a
//! bare axum middleware in the same server loop as the other modes.
//!
//! Per request: base64url-decode the signature, verify it with a pre-parsed aws-lc-rs key
//! (`hmac::Key` or `ParsedPublicKey`), base64url-decode and parse header and claims into
//! `serde_json::Value`. No claim checks, no context. Our uncached layers are compared
//! against this, so "no-auth CPU + limit crypto CPU" is measured, not added up from a
//! micro benchmark that runs with hot caches.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use portcullis::testing::TestKey;
use serde_json::Value;

#[path = "../../common/limit.rs"]
mod shared;
use shared::LimitKey;

async fn middleware(State(key): State<Arc<LimitKey>>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token.and_then(|t| key.verify(t)) {
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
        .layer(from_fn_with_state(Arc::new(LimitKey::new(key)), middleware));
    (app, format!("Authorization: Bearer {}", super::token(key)))
}
