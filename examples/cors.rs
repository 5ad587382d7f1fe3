//! Credentialed CORS from another origin: tower-http's `CorsLayer` outside, the auth
//! layer inside. `CorsLayer` answers preflights (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) before they reach the auth layer; the real request
//! must authenticate. A CORS layer always goes outside the auth layer: a preflight that
//! gets past it is refused by any policy layer.
//!
//! ```text
//! ALLOWED_ORIGIN=http://localhost:5173 cargo run --example cors
//! ```

use axum::http::{HeaderValue, Method, header};
use axum::routing::get;
use axum::{Json, Router};
use portcullis::User;
use portcullis::basic::BasicAuth;
use portcullis::{AuthContext, AuthLayer};
use tower_http::cors::CorsLayer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let origin = std::env::var("ALLOWED_ORIGIN").unwrap_or_else(|_| "http://localhost:5173".into());
    // Credentialed CORS needs an explicit origin (never `*`).
    let cors = CorsLayer::new()
        .allow_origin(HeaderValue::from_str(&origin)?)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .allow_credentials(true);
    let basic = BasicAuth::new("api").with_user("alice", User::plain("alice-pass"));
    let app = Router::new()
        .route("/api/me", get(|ctx: AuthContext| async move { Json(ctx) }))
        .layer(AuthLayer::required(basic))
        .layer(cors);

    let addr = std::env::var("PORTCULLIS_ADDR").unwrap_or_else(|_| "127.0.0.1:3007".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let b = format!("http://{}", listener.local_addr()?);
    println!("cors on {b}, allowing {origin}");
    println!(
        "curl -si -X OPTIONS -H 'Origin: {origin}' -H 'Access-Control-Request-Method: GET' -H 'Access-Control-Request-Headers: authorization' {b}/api/me"
    );
    println!("curl -si -H 'Origin: {origin}' -u alice:alice-pass {b}/api/me");
    axum::serve(listener, app).await?;
    Ok(())
}
