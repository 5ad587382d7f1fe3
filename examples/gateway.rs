//! A verifying gateway: authenticate at the edge, then forward to an origin with the
//! identity as headers and as a signed assertion the origin verifies.
//!
//! ```text
//! cargo run --example gateway                                   # gateway + a built-in origin
//! UPSTREAM_URL=http://127.0.0.1:8080 cargo run --example gateway  # your origin
//! ```
//!
//! The gateway's `IdentityHeaders` strip every identity header a client sends (any case,
//! every copy, underscores, `Connection` tricks) and write the verified ones; the signed
//! `x-auth-assertion` lets the origin trust the gateway's signature rather than plain
//! headers: the built-in origin answers only requests that carry a valid assertion
//! (`IdentityProxy::gateway`, keys from the gateway's `/.well-known/gateway-jwks.json`).
//! Set `GATEWAY_KEY_PEM` and `GATEWAY_PUBLIC_PEM` (P-256) to keep keys across restarts;
//! otherwise a fresh pair is made at start.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use portcullis::basic::BasicAuth;
use portcullis::gateway::{AssertionSigner, IdentityHeaders};
use portcullis::iap::IdentityProxy;
use portcullis::{AuthContext, AuthLayer, User};
use serde_json::json;

/// The gateway's name (`iss`) and the origin's (`aud`) in the assertion.
const GATEWAY: &str = "https://gateway.example.test";
const ORIGIN: &str = "https://origin.example.test";
const JWKS_PATH: &str = "/.well-known/gateway-jwks.json";

#[derive(Clone)]
struct Upstream {
    base: String,
    client: reqwest::Client,
}

/// Forwards the request as it is after the layers: identity headers written, client
/// copies gone. The gateway's own credential (`Authorization`, `Cookie`) stays here.
async fn forward(State(up): State<Upstream>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = to_bytes(body, 10 * 1024 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let mut headers = parts.headers;
    for h in ["authorization", "cookie", "host", "content-length"] {
        headers.remove(h);
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    match up
        .client
        .request(parts.method, format!("{}{path}", up.base))
        .headers(headers)
        .body(body)
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status();
            (status, Body::from(r.bytes().await.unwrap_or_default())).into_response()
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// The gateway: Basic at the edge, identity headers and assertion, its JWKS.
fn gateway(signer: AssertionSigner, upstream: Upstream) -> Router {
    let jwks = signer.router(JWKS_PATH);
    let basic = BasicAuth::new("gateway").with_user(
        "alice",
        User::plain("alice-pass")
            .with_roles(["member"])
            .with_email("alice@example.com"),
    );
    Router::new()
        .fallback(any(forward))
        .layer(IdentityHeaders::new().with_assertion(signer).layer())
        .layer(AuthLayer::required(basic))
        .with_state(upstream)
        .merge(jwks)
}

/// The built-in origin: trusts the gateway's signed assertion, nothing else.
fn origin(gateway_jwks: &str) -> Result<Router, portcullis::ConfigError> {
    let from_gateway = IdentityProxy::gateway(GATEWAY, ORIGIN, gateway_jwks)?;
    Ok(Router::new()
        .fallback(|ctx: AuthContext, headers: HeaderMap| async move {
            Json(json!({
                "verified": ctx,
                "x-auth-subject": headers.get("x-auth-subject").and_then(|v| v.to_str().ok()),
            }))
        })
        .layer(AuthLayer::required(from_gateway)))
}

/// The key pair from the environment, or a fresh one.
fn keys() -> (String, String) {
    match (
        std::env::var("GATEWAY_KEY_PEM"),
        std::env::var("GATEWAY_PUBLIC_PEM"),
    ) {
        (Ok(private), Ok(public)) => (private, public),
        _ => {
            let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .unwrap_or_else(|e| panic!("key generation: {e}"));
            (k.serialize_pem(), k.public_key_pem())
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("PORTCULLIS_ADDR").unwrap_or_else(|_| "127.0.0.1:3006".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let here = format!("http://{}", listener.local_addr()?);
    let base = match std::env::var("UPSTREAM_URL") {
        Ok(u) => u,
        Err(_) => {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}", l.local_addr()?);
            let app = origin(&format!("{here}{JWKS_PATH}"))?;
            tokio::spawn(async move { axum::serve(l, app).await });
            url
        }
    };
    let (private, public) = keys();
    let signer = AssertionSigner::es256(GATEWAY, ORIGIN, "gw-1", &private, &public)?;
    let upstream = Upstream {
        base,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
    };
    println!("gateway on {here}, origin keys at {here}{JWKS_PATH}");
    println!(
        "curl -s -u alice:alice-pass -H 'X-Auth-Subject: root' -H 'X_Auth_Roles: admin' {here}/anything"
    );
    axum::serve(listener, gateway(signer, upstream)).await?;
    Ok(())
}
