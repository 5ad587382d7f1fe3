//! One shared password on `/admin`, everything else public (the seed's "admin page").
//!
//! ```text
//! ADMIN_PASSWORD=hunter2hunter2 cargo run --example basic_admin
//! curl -s http://127.0.0.1:3001/               # public
//! curl -s -u admin:hunter2hunter2 http://127.0.0.1:3001/admin
//! ```
//!
//! Without `ADMIN_PASSWORD` a random one is generated and printed. Failed attempts are
//! throttled per user and client IP (5 per minute, then 429 with `Retry-After`).

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use portcullis::User;
use portcullis::basic::BasicAuth;
use portcullis::limit::{AttemptLimiter, Limits};
use portcullis::{AuthContext, AuthLayer, hash_password};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let password = std::env::var("ADMIN_PASSWORD").unwrap_or_else(|_| {
        let p = format!("{:016x}", rand::random::<u64>());
        println!("generated admin password: {p}");
        p
    });
    // Store only the argon2id hash; the plain password is dropped here.
    let admin = User::hashed(&hash_password(&password)?)?.with_roles(["admin"]);
    let basic = BasicAuth::new("admin area")
        .with_user("admin", admin)
        .with_limiter(
            AttemptLimiter::memory()
                .with_limits(Limits::default().per_user_client(5, Duration::from_secs(60))),
        );

    let app = Router::new()
        .route("/", get(|| async { "public page" }))
        .merge(
            Router::new()
                .route("/admin", get(|ctx: AuthContext| async move { Json(ctx) }))
                .layer(AuthLayer::required(basic)),
        );

    let addr = std::env::var("PORTCULLIS_ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("basic_admin on http://{}", listener.local_addr()?);
    println!(
        "curl -s -u 'admin:{password}' http://{}/admin",
        listener.local_addr()?
    );
    // ConnectInfo gives the throttle the client IP.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
