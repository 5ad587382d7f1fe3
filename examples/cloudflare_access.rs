//! An internal tool behind Cloudflare Access: users by e-mail, CI by service token.
//!
//! ```text
//! CF_ACCESS_TEAM=myteam CF_ACCESS_AUD=<application aud tag> cargo run --example cloudflare_access
//! cargo run --example cloudflare_access   # no variables: a local certs server and a printed token
//! ```
//!
//! `GET /` shows who you are; `POST /deploy` accepts only the allowlisted service token
//! (`CF_ACCESS_SERVICE_TOKEN`, default `ci-bot.access`).

use axum::routing::{get, post};
use axum::{Json, Router};
use portcullis::iap::IdentityProxy;
use portcullis::policy::{PolicyLayer, Rule};
use portcullis::testing::{KeyServer, TestKey, TokenBuilder, jwks, now};
use portcullis::{AuthContext, AuthLayer};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let service = var("CF_ACCESS_SERVICE_TOKEN").unwrap_or_else(|| "ci-bot.access".into());
    let (team, aud) = (
        var("CF_ACCESS_TEAM").unwrap_or_else(|| "dev-team".into()),
        var("CF_ACCESS_AUD").unwrap_or_else(|| "dev-aud".into()),
    );
    let mut cf =
        IdentityProxy::cloudflare_access(&team, &aud)?.with_service_token(service.clone())?;
    let mut dev = None;
    if let Some(url) = var("CF_ACCESS_CERTS_URL") {
        cf = cf.with_keys_url(&url)?;
    } else if var("CF_ACCESS_TEAM").is_none() {
        let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
        cf = cf.with_keys_url(&server.url("/cdn-cgi/access/certs"))?;
        dev = Some(server);
    }
    let app = Router::new()
        .route("/", get(|ctx: AuthContext| async move { Json(ctx) }))
        .merge(
            Router::new()
                .route(
                    "/deploy",
                    post(|ctx: AuthContext| async move {
                        Json(json!({"deploying_for": ctx.subject()}))
                    }),
                )
                .route_layer(PolicyLayer::new(Rule::service())),
        )
        .layer(AuthLayer::required(cf));

    let addr = var("PORTCULLIS_ADDR").unwrap_or_else(|| "127.0.0.1:3003".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("cloudflare_access on {base} (team {team})");
    if dev.is_some() {
        let token = |b: TokenBuilder| {
            b.with_claim("iss", format!("https://{team}.cloudflareaccess.com"))
                .with_claim("aud", json!([aud.clone()]))
                .with_claim("type", "app")
                .with_claim("exp", now() + 3600)
                .sign()
        };
        let user = token(TokenBuilder::new(TestKey::Rs256).with_claim("email", "dev@example.com"));
        let ci = token(
            TokenBuilder::new(TestKey::Rs256)
                .with_claim("sub", "")
                .with_claim("common_name", service.clone()),
        );
        println!("curl -s -H 'Cf-Access-Jwt-Assertion: {user}' {base}/");
        println!(
            "curl -s -X POST -H 'Cf-Access-Jwt-Assertion: {user}' {base}/deploy   # 403: users cannot deploy"
        );
        println!("curl -s -X POST -H 'Cf-Access-Jwt-Assertion: {ci}' {base}/deploy");
    }
    axum::serve(listener, app).await?;
    Ok(())
}
