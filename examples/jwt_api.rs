//! A JSON API behind JWT bearer tokens: JWKS or OIDC discovery, roles and scopes.
//!
//! ```text
//! AUTH_OIDC_ISSUER=https://login.example.com AUTH_AUDIENCE=my-api cargo run --example jwt_api
//! AUTH_JWKS_URL=https://.../jwks.json AUTH_ISSUER=https://... AUTH_AUDIENCE=my-api cargo run --example jwt_api
//! cargo run --example jwt_api     # no variables: a dev issuer on loopback, tokens printed
//! ```
//!
//! Routes: `GET /posts` needs scope `posts:read`; `POST /posts` needs `posts:write`;
//! `GET /admin` needs role `admin` (read from `realm_access.roles`, Keycloak style, or `roles`).

use axum::http::Method;
use axum::routing::get;
use axum::{Json, Router};
use portcullis::jwt::{
    Algorithm, BearerAuth, ClaimsMapping, Issuer, JwksOptions, JwtVerifier, RemoteJwks, TokenCache,
    Validation,
};
use portcullis::policy::{PolicyLayer, RouteRules, Rule};
use portcullis::testing::{KeyServer, TestKey, TokenBuilder, jwks, now};
use portcullis::{AuthContext, AuthLayer};
use serde_json::json;

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let audience = var("AUTH_AUDIENCE").unwrap_or_else(|| "jwt-api".into());
    let algs = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
    let mut dev = None;
    let (keys, issuer) = match (var("AUTH_OIDC_ISSUER"), var("AUTH_JWKS_URL")) {
        (Some(iss), _) => (
            RemoteJwks::discover(&iss, algs, JwksOptions::default())?,
            iss,
        ),
        (None, Some(url)) => (
            RemoteJwks::new(&url, algs, JwksOptions::default())?,
            var("AUTH_ISSUER").ok_or("set AUTH_ISSUER")?,
        ),
        (None, None) => {
            let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
            let iss = server.base_url();
            let keys = RemoteJwks::new(&server.url("/jwks.json"), algs, JwksOptions::default())?;
            dev = Some(server);
            (keys, iss)
        }
    };
    let mapping = ClaimsMapping::default()
        .with_roles_claim(var("AUTH_ROLES_CLAIM").unwrap_or_else(|| "realm_access.roles".into()));
    let verifier = JwtVerifier::new(
        Issuer::new(
            keys,
            Validation::new(algs)
                .with_issuer(issuer.clone())
                .with_audience(audience.clone()),
        )
        .with_mapping(mapping),
    )
    .with_token_cache(TokenCache::new());

    let rules = RouteRules::new()
        .with_rule(Method::GET, "/posts", Rule::scope("posts:read"))
        .with_rule(Method::POST, "/posts", Rule::scope("posts:write"))
        .with_rule(Method::GET, "/admin", Rule::role("admin"))
        .with_rule(Method::GET, "/me", Rule::authenticated());
    let app = Router::new()
        .route("/me", get(|ctx: AuthContext| async move { Json(ctx) }))
        .route(
            "/posts",
            get(|| async { Json(json!([{"id": 1}])) })
                .post(|ctx: AuthContext| async move { Json(json!({"created_by": ctx.subject()})) }),
        )
        .route("/admin", get(|| async { "admin" }))
        .route_layer(PolicyLayer::routes(rules).with_bearer_realm("jwt-api"))
        .layer(AuthLayer::required(BearerAuth::new("jwt-api", verifier)));

    let addr = var("PORTCULLIS_ADDR").unwrap_or_else(|| "127.0.0.1:3002".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("jwt_api on {base} (issuer {issuer}, audience {audience})");
    if dev.is_some() {
        let mint = |scope: &str, roles: &[&str]| {
            TokenBuilder::new(TestKey::Rs256)
                .with_claim("iss", issuer.clone())
                .with_claim("aud", audience.clone())
                .with_claim("scope", scope)
                .with_claim("realm_access", json!({"roles": roles}))
                .with_claim("exp", now() + 3600)
                .sign()
        };
        println!(
            "curl -s -H 'Authorization: Bearer {}' {base}/posts            # reader",
            mint("posts:read", &[])
        );
        println!(
            "curl -s -X POST -H 'Authorization: Bearer {}' {base}/posts    # 403 insufficient_scope",
            mint("posts:read", &[])
        );
        println!(
            "curl -s -H 'Authorization: Bearer {}' {base}/admin            # admin",
            mint("posts:read posts:write", &["admin"])
        );
    }
    axum::serve(listener, app).await?;
    Ok(())
}
