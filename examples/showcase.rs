//! The portcullis showcase: every scheme, the policy layer and the session stores in one app.
//!
//! ```text
//! cargo run --example showcase
//! ```
//!
//! Serves on `PORTCULLIS_ADDR` (default `127.0.0.1:3000`) and prints ready-to-paste curl
//! lines. With no environment it runs fully embedded: a generated admin password, an
//! in-process dev issuer (JWKS and Cloudflare-style certs on a loopback port), and the
//! memory session store.
//!
//! | variable | meaning |
//! |---|---|
//! | `ADMIN_USER`, `ADMIN_PASSWORD` | the admin account (Basic and session login); password generated when unset |
//! | `AUTH_JWKS_URL`, `AUTH_ISSUER`, `AUTH_AUDIENCE` | a real issuer for `/api/me` |
//! | `AUTH_OIDC_ISSUER` | discover the JWKS from this issuer instead of `AUTH_JWKS_URL` |
//! | `CF_ACCESS_TEAM`, `CF_ACCESS_AUD`, `CF_ACCESS_CERTS_URL` | Cloudflare Access for `/cf/me` |
//! | `SESSION_STORE_URL` | `memory` (default), `redis://...` or `postgres://...` |
//! | `SESSION_SECURE_COOKIE` | `1` behind TLS: `__Host-session` with `Secure` |
//!
//! Routes: `GET /health`, `GET /whoami`, `GET /basic/me`, `GET /api/me`, `GET /cf/me`,
//! `POST /session/login`, `GET /session/me`, `POST /session/logout`, `GET /admin`,
//! `GET|PUT|DELETE /posts/{id}`.

use std::collections::HashMap;
use std::env;
use std::sync::{Arc, RwLock};

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use portcullis::basic::BasicAuth;
use portcullis::cloudflare::CloudflareAccess;
use portcullis::jwt::{
    Algorithm, BearerAuth, ClaimsMapping, Issuer, JwksOptions, JwtVerifier, RemoteJwks, TokenCache,
    Validation,
};
use portcullis::policy::{PolicyLayer, RouteRules, Rule};
use portcullis::session::{
    MemoryStore, NewSession, SessionConfig, SessionManager, SessionStore, Sessions,
};
use portcullis::testing::{KeyServer, TestKey, TokenBuilder, jwks, now};
use portcullis::{AuthContext, AuthError, AuthLayer, User, Users, hash_password};
use serde::Deserialize;
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone)]
struct Post {
    owner: String,
    shared_with: Vec<String>,
    body: String,
}

#[derive(Clone)]
struct AppState {
    users: Arc<Users>,
    posts: Arc<RwLock<HashMap<String, Post>>>,
}

fn random_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.is_empty())
}

/// The dev issuer: a loopback key server with the test kit's RS256 key (public test
/// material: only ever used when no real issuer is configured).
struct DevIssuer {
    server: KeyServer,
}

async fn bearer_auth(dev: &Option<DevIssuer>) -> Result<(BearerAuth, Option<String>), Error> {
    let mapping = ClaimsMapping::default().with_tenant_claim("tenant");
    let audience = var("AUTH_AUDIENCE").unwrap_or_else(|| "showcase".into());
    let (source, issuer, token) = match (var("AUTH_OIDC_ISSUER"), var("AUTH_JWKS_URL"), dev) {
        (Some(iss), _, _) => (
            RemoteJwks::discover(
                &iss,
                [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
                JwksOptions::default(),
            )?,
            iss,
            None,
        ),
        (None, Some(url), _) => {
            let iss = var("AUTH_ISSUER").ok_or("AUTH_ISSUER is required with AUTH_JWKS_URL")?;
            (
                RemoteJwks::new(
                    &url,
                    [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
                    JwksOptions::default(),
                )?,
                iss,
                None,
            )
        }
        (None, None, Some(dev)) => {
            let iss = dev.server.base_url();
            let token = TokenBuilder::new(TestKey::Rs256)
                .with_claim("iss", iss.clone())
                .with_claim("aud", audience.clone())
                .with_claim("sub", "alice")
                .with_claim("roles", json!(["member"]))
                .with_claim("scope", "posts:read")
                .with_claim("tenant", "acme")
                .with_claim("exp", now() + 3600)
                .sign();
            (
                RemoteJwks::new(
                    &dev.server.url("/jwks.json"),
                    [Algorithm::RS256],
                    JwksOptions::default(),
                )?,
                iss,
                Some(token),
            )
        }
        (None, None, None) => return Err("no issuer".into()),
    };
    let validation = Validation::new([Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA])
        .with_issuer(issuer)
        .with_audience(audience);
    let verifier = JwtVerifier::new(Issuer::new(source, validation).with_mapping(mapping))
        .with_token_cache(TokenCache::new());
    Ok((BearerAuth::new("showcase", verifier), token))
}

fn cloudflare(dev: &Option<DevIssuer>) -> Result<(CloudflareAccess, Option<String>), Error> {
    match (var("CF_ACCESS_TEAM"), var("CF_ACCESS_AUD"), dev) {
        (Some(team), Some(aud), _) => {
            let mut cf = CloudflareAccess::new(&team, &aud)?;
            if let Some(url) = var("CF_ACCESS_CERTS_URL") {
                cf = cf.with_certs_url(&url)?;
            }
            Ok((cf, None))
        }
        (_, _, Some(dev)) => {
            let team = "showcase-dev";
            let aud = "showcase-dev-aud";
            let cf = CloudflareAccess::new(team, aud)?.with_certs_url(
                &var("CF_ACCESS_CERTS_URL")
                    .unwrap_or_else(|| dev.server.url("/cdn-cgi/access/certs")),
            )?;
            let token = TokenBuilder::new(TestKey::Rs256)
                .with_claim("iss", format!("https://{team}.cloudflareaccess.com"))
                .with_claim("aud", json!([aud]))
                .with_claim("sub", "7335d417-61da-459d-899c-0a01c76a2f94")
                .with_claim("email", "bob@example.com")
                .with_claim("type", "app")
                .with_claim("exp", now() + 3600)
                .sign();
            Ok((cf, Some(token)))
        }
        _ => Err("CF_ACCESS_TEAM and CF_ACCESS_AUD go together".into()),
    }
}

async fn session_store() -> Result<(Arc<dyn SessionStore>, String), Error> {
    let url = var("SESSION_STORE_URL").unwrap_or_else(|| "memory".into());
    let store: Arc<dyn SessionStore> = if url == "memory" {
        Arc::new(MemoryStore::new())
    } else if url.starts_with("redis://") || url.starts_with("rediss://") {
        Arc::new(portcullis::session::RedisStore::connect(&url).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(portcullis::session::PostgresStore::connect(&url).await?)
    } else {
        return Err(format!(
            "SESSION_STORE_URL must be memory, redis://... or postgres://..., got {url}"
        )
        .into());
    };
    let kind = url.split("://").next().unwrap_or("memory").to_owned();
    Ok((store, kind))
}

async fn whoami(ctx: Option<AuthContext>) -> Json<Value> {
    match ctx {
        Some(c) => Json(json!(c)),
        None => Json(json!({"authenticated": false})),
    }
}

async fn me(ctx: AuthContext) -> Json<AuthContext> {
    Json(ctx)
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(
    State(app): State<AppState>,
    sessions: Sessions,
    Json(body): Json<LoginBody>,
) -> Result<impl IntoResponse, AuthError> {
    let Some(user) = app.users.verify(&body.username, &body.password).await else {
        return Err(AuthError::invalid("wrong user name or password"));
    };
    let mut new = NewSession::new(body.username.clone()).with_roles(user.roles().iter().cloned());
    if let Some(t) = user.tenant() {
        new = new.with_tenant(t);
    }
    let cookie = sessions.login(new).await?;
    Ok((cookie, Json(json!({"ok": true, "subject": body.username}))))
}

async fn logout(sessions: Sessions) -> Result<impl IntoResponse, AuthError> {
    Ok((sessions.logout().await?, Json(json!({"ok": true}))))
}

async fn read_post(
    State(app): State<AppState>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>, axum::response::Response> {
    let post = app
        .posts
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&id)
        .cloned();
    let Some(post) = post else {
        return Err(StatusCode::NOT_FOUND.into_response());
    };
    // Read: owner, someone it is shared with, or an admin (needs the loaded row).
    if !post.shared_with.iter().any(|s| s == ctx.subject()) {
        ctx.require_owner(&post.owner, &["admin"])
            .map_err(IntoResponse::into_response)?;
    }
    Ok(Json(
        json!({"id": id, "owner": post.owner, "shared_with": post.shared_with, "body": post.body}),
    ))
}

async fn write_post(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: String,
) -> Json<Value> {
    let mut posts = app.posts.write().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = posts.get_mut(&id) {
        p.body = body;
    }
    Json(json!({"id": id, "updated": true}))
}

async fn delete_post(State(app): State<AppState>, Path(id): Path<String>) -> StatusCode {
    app.posts
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
    StatusCode::NO_CONTENT
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,portcullis=debug".into()),
        )
        .init();
    let addr = var("PORTCULLIS_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into());

    // Users: the admin from the environment (or generated), and two demo users.
    let admin_user = var("ADMIN_USER").unwrap_or_else(|| "admin".into());
    let (admin_password, generated) = match var("ADMIN_PASSWORD") {
        Some(p) => (p, false),
        None => (random_password(), true),
    };
    let demo_password = random_password();
    let users = Users::new()
        .with_user(
            admin_user.clone(),
            User::hashed(&hash_password(&admin_password)?)?.with_roles(["admin"]),
        )
        .with_user(
            "alice",
            User::hashed(&hash_password(&demo_password)?)?
                .with_roles(["member"])
                .with_tenant("acme"),
        )
        .with_user(
            "bob",
            User::hashed(&hash_password(&demo_password)?)?
                .with_roles(["member"])
                .with_tenant("acme"),
        );

    let needs_dev = var("AUTH_JWKS_URL").is_none() && var("AUTH_OIDC_ISSUER").is_none()
        || var("CF_ACCESS_TEAM").is_none();
    let dev = if needs_dev {
        Some(DevIssuer {
            server: KeyServer::start(jwks(&[TestKey::Rs256])).await,
        })
    } else {
        None
    };
    let (bearer, dev_token) = bearer_auth(&dev).await?;
    let (cf, dev_cf_token) = cloudflare(&dev)?;
    let basic = BasicAuth::new("portcullis showcase").with_users(users.clone());

    let (store, store_kind) = session_store().await?;
    let mut session_config = SessionConfig::default();
    if var("SESSION_SECURE_COOKIE").as_deref() != Some("1") {
        session_config = session_config.with_insecure_dev_cookie();
    }
    let sessions = SessionManager::from_arc(store, session_config);
    let cookie_name = sessions.config().cookie_name().to_owned();

    let posts = HashMap::from([
        (
            "1".to_owned(),
            Post {
                owner: "alice".into(),
                shared_with: vec!["bob".into()],
                body: "alice's post, shared with bob".into(),
            },
        ),
        (
            "2".to_owned(),
            Post {
                owner: "bob".into(),
                shared_with: vec![],
                body: "bob's private post".into(),
            },
        ),
    ]);
    let state = AppState {
        users: Arc::new(users),
        posts: Arc::new(RwLock::new(posts)),
    };

    let any_scheme = || {
        AuthLayer::required(basic.clone())
            .or(bearer.clone())
            .or(cf.clone())
            .or(sessions.authenticator())
    };
    let owners = state.posts.clone();
    let post_rules = RouteRules::new()
        .with_rule(Method::GET, "/posts/{id}", Rule::authenticated())
        .with_any_method(
            "/posts/{id}",
            Rule::owner_via("id", move |id: String| {
                let owner = owners
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&id)
                    .map(|p| p.owner.clone());
                async move { Ok::<_, AuthError>(owner) }
            })
            .or(Rule::role("admin")),
        );

    let app = Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .merge(
            Router::new().route("/whoami", get(whoami)).layer(
                AuthLayer::optional(basic.clone())
                    .or(bearer.clone())
                    .or(cf.clone())
                    .or(sessions.authenticator()),
            ),
        )
        .merge(
            Router::new()
                .route("/basic/me", get(me))
                .layer(AuthLayer::required(basic.clone())),
        )
        .merge(
            Router::new()
                .route("/api/me", get(me))
                .layer(AuthLayer::required(bearer.clone())),
        )
        .merge(
            Router::new()
                .route("/cf/me", get(me))
                .layer(AuthLayer::required(cf.clone())),
        )
        .merge(
            Router::new()
                .route("/session/me", get(me))
                .layer(AuthLayer::required(sessions.authenticator())),
        )
        .route("/session/login", post(login))
        .route("/session/logout", post(logout))
        .merge(
            Router::new()
                .route("/admin", get(me))
                .route_layer(PolicyLayer::new(Rule::role("admin")))
                .layer(any_scheme()),
        )
        .merge(
            Router::new()
                .route(
                    "/posts/{id}",
                    get(read_post).put(write_post).delete(delete_post),
                )
                .route_layer(PolicyLayer::routes(post_rules))
                .layer(any_scheme()),
        )
        .layer(Extension(sessions))
        .with_state(state);

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("portcullis showcase on {base}  (session store: {store_kind})");
    if generated {
        println!(
            "generated password for {admin_user}: {admin_password}   (set ADMIN_PASSWORD to choose one)"
        );
    }
    println!("demo users alice and bob (tenant acme), password: {demo_password}");
    println!();
    println!("curl -s {base}/health");
    println!("curl -s {base}/whoami");
    println!("curl -s -u '{admin_user}:{admin_password}' {base}/basic/me");
    println!("curl -s -u '{admin_user}:{admin_password}' {base}/admin");
    match dev_token {
        Some(t) => println!(
            "curl -s -H 'Authorization: Bearer {t}' {base}/api/me   # dev issuer token for alice"
        ),
        None => println!("curl -s -H \"Authorization: Bearer $TOKEN\" {base}/api/me"),
    }
    match dev_cf_token {
        Some(t) => println!(
            "curl -s -H 'Cf-Access-Jwt-Assertion: {t}' {base}/cf/me   # dev Cloudflare token for bob"
        ),
        None => println!("curl -s -H \"Cf-Access-Jwt-Assertion: $CF_TOKEN\" {base}/cf/me"),
    }
    println!(
        "curl -s -c /tmp/portcullis.jar -H 'content-type: application/json' -d '{{\"username\":\"alice\",\"password\":\"{demo_password}\"}}' {base}/session/login"
    );
    println!("curl -s -b /tmp/portcullis.jar {base}/session/me");
    println!("curl -s -b /tmp/portcullis.jar {base}/posts/1");
    println!("curl -s -b /tmp/portcullis.jar -X DELETE {base}/posts/2   # 403: bob's post");
    println!("curl -s -b /tmp/portcullis.jar -X POST {base}/session/logout");
    println!("(session cookie: {cookie_name})");
    if dev.is_some() {
        println!(
            "note: the dev issuer signs with a public test key; set AUTH_* and CF_ACCESS_* for real issuers."
        );
    }
    axum::serve(listener, app).await?;
    Ok(())
}
