//! A forward-auth service for a reverse proxy in front of another app: nginx
//! `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`, Envoy `ext_authz`.
//!
//! ```text
//! cargo run --example forward_auth
//! ```
//!
//! The proxy asks `GET /auth/forward` (any method) for each request, passing its
//! headers and the original method and URI (`X-Original-Method` / `X-Original-URI`, or
//! `X-Forwarded-Method` / `X-Forwarded-Uri`). Answers: 200 with `X-Auth-Subject`,
//! `X-Auth-Roles`, `X-Auth-Scheme`, `X-Auth-Email` for the proxy to copy to the app;
//! 401 with the challenge; 403; 400 for a URI that does not normalise. Rules:
//! `/public/*` open, `/admin` and below for role `admin`, the rest for anyone signed in.
//! The proxy configurations are in docs/guide.md ("Behind nginx, Traefik, Caddy or
//! Envoy").

use axum::Router;
use portcullis::basic::BasicAuth;
use portcullis::gateway::ForwardAuth;
use portcullis::policy::{RouteRules, Rule};
use portcullis::{AuthLayer, User};

fn app() -> Result<Router, portcullis::ConfigError> {
    let basic = BasicAuth::new("apps")
        .with_user("alice", User::plain("alice-pass").with_roles(["member"]))
        .with_user("root", User::plain("root-pass").with_roles(["admin"]));
    let rules = RouteRules::new()
        .with_any_method("/admin", Rule::role("admin"))
        .with_any_method("/admin/{*rest}", Rule::role("admin"))
        .with_fallback(Rule::authenticated());
    let forward =
        ForwardAuth::new(AuthLayer::required(basic), rules).with_public(["/public/{*rest}"])?;
    Ok(forward.router("/auth/forward"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("PORTCULLIS_ADDR").unwrap_or_else(|_| "127.0.0.1:3007".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let b = format!("http://{}", listener.local_addr()?);
    println!("forward-auth on {b}/auth/forward");
    println!("curl -si -u alice:alice-pass -H 'X-Original-URI: /notes' {b}/auth/forward");
    println!("curl -si -u alice:alice-pass -H 'X-Original-URI: /%61dmin' {b}/auth/forward   # 403");
    axum::serve(listener, app()?).await?;
    Ok(())
}
