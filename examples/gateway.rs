//! A verifying gateway: authenticate at the edge, then forward to an upstream with
//! identity headers, after stripping any identity headers the client sent itself.
//!
//! ```text
//! UPSTREAM_URL=http://127.0.0.1:8080 cargo run --example gateway
//! cargo run --example gateway    # no UPSTREAM_URL: an echo upstream on loopback
//! ```
//!
//! The upstream trusts `X-Auth-Subject`, `X-Auth-Roles`, `X-Auth-Email`, `X-Auth-Tenant`
//! and `X-Auth-Scheme` only because the gateway removes client-sent copies first.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use portcullis::User;
use portcullis::basic::BasicAuth;
use portcullis::{AuthContext, AuthLayer};

/// Identity headers set by the gateway (and removed from incoming requests).
const IDENTITY: [&str; 5] = [
    "x-auth-subject",
    "x-auth-roles",
    "x-auth-email",
    "x-auth-tenant",
    "x-auth-scheme",
];
/// Other headers that upstreams often trust and clients must not set.
const SPOOFABLE: [&str; 4] = [
    "x-forwarded-user",
    "x-remote-user",
    "remote-user",
    "cf-access-authenticated-user-email",
];

#[derive(Clone)]
struct Upstream {
    base: String,
    client: reqwest::Client,
}

fn identity_headers(ctx: &AuthContext) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.push((HeaderName::from_static(name), v));
        }
    };
    put("x-auth-subject", ctx.subject());
    put("x-auth-roles", &ctx.roles().join(","));
    put("x-auth-scheme", ctx.scheme().as_str());
    if let Some(e) = ctx.email() {
        put("x-auth-email", e);
    }
    if let Some(t) = ctx.tenant() {
        put("x-auth-tenant", t);
    }
    out
}

async fn forward(State(up): State<Upstream>, ctx: AuthContext, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = to_bytes(body, 10 * 1024 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        let n = name.as_str();
        // Strip spoofed identity, our own credentials, and hop-by-hop headers.
        if IDENTITY.contains(&n)
            || SPOOFABLE.contains(&n)
            || matches!(
                n,
                "authorization" | "cookie" | "host" | "connection" | "content-length"
            )
        {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    for (n, v) in identity_headers(&ctx) {
        headers.insert(n, v);
    }
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let res = up
        .client
        .request(parts.method, format!("{}{path}", up.base))
        .headers(headers)
        .body(body)
        .send()
        .await;
    match res {
        Ok(r) => {
            let status = r.status();
            let body = r.bytes().await.unwrap_or_default();
            (status, Body::from(body)).into_response()
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = match std::env::var("UPSTREAM_URL") {
        Ok(u) => u,
        Err(_) => {
            // Echo upstream: shows exactly which headers it received.
            let echo = Router::new().fallback(|headers: HeaderMap| async move {
                let seen: std::collections::BTreeMap<_, _> = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
                    .collect();
                Json(seen)
            });
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}", l.local_addr()?);
            tokio::spawn(async move { axum::serve(l, echo).await });
            url
        }
    };
    let upstream = Upstream {
        base,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
    };
    let basic = BasicAuth::new("gateway").with_user(
        "alice",
        User::plain("alice-pass")
            .with_roles(["member"])
            .with_email("alice@example.com"),
    );
    let app = Router::new()
        .fallback(any(forward))
        .layer(AuthLayer::required(basic))
        .with_state(upstream);

    let addr = std::env::var("PORTCULLIS_ADDR").unwrap_or_else(|_| "127.0.0.1:3006".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let b = format!("http://{}", listener.local_addr()?);
    println!("gateway on {b}");
    println!(
        "curl -s -u alice:alice-pass -H 'X-Auth-Subject: root' -H 'X-Forwarded-User: root' {b}/anything"
    );
    axum::serve(listener, app).await?;
    Ok(())
}
