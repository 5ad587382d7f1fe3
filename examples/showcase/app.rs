//! The showcase app itself (routes, schemes, stores), shared by `main.rs` and the
//! end-to-end test. Serves on `PORTCULLIS_ADDR` (default `127.0.0.1:3000`) and prints ready-to-paste curl
//! lines. With no environment it runs fully embedded: a generated admin password, an
//! in-process dev issuer (JWKS and Cloudflare-style certs on a loopback port), and the
//! memory session store.
//!
//! | variable | meaning |
//! |---|---|
//! | `ADMIN_USER`, `ADMIN_PASSWORD` | the admin account (Basic and session login); password generated when unset |
//! | `AUTH_JWKS_URL`, `AUTH_ISSUER`, `AUTH_AUDIENCE` | a real issuer for `/api/me` |
//! | `AUTH_OIDC_ISSUER` | discover the JWKS from this issuer instead of `AUTH_JWKS_URL` |
//! | `AUTH_PRESET`, `AUTH_CLIENT_ID` | the claim layout and token rules of `keycloak`, `auth0`, `entra`, `cognito`, `okta`, `google` or `github-actions` for that issuer; the client id for Keycloak client roles and the Cognito app client |
//! | `CF_ACCESS_TEAM`, `CF_ACCESS_AUD`, `CF_ACCESS_CERTS_URL` | Cloudflare Access for `/cf/me` |
//! | `SESSION_STORE_URL` | `memory` (default), `redis://...`, `redis-sentinel://h:p,h:p/<service>`, `redis-cluster://h:p,h:p` or `postgres://...` |
//! | `REVOCATION_URL` | `memory` (default) or a Redis URL (any of the three forms): the revocation list, shared by instances on that Redis |
//! | `RATE_LIMIT_URL` | `memory` (default) or a Redis URL (any of the three forms): login and Basic attempt limits (5 failures per user and client per minute) |
//! | `SESSION_SECURE_COOKIE` | `1` behind TLS: `__Host-session` with `Secure` |
//! | `OIDC_ISSUER`, `OIDC_CLIENT_ID`, `OIDC_CLIENT_SECRET` | the OpenID Connect provider of `/oidc/login` (the embedded dev issuer when unset) |
//! | `PUBLIC_URL` | the app's public base URL (the OIDC redirect URI is `<PUBLIC_URL>/oidc/callback`); `http://<PORTCULLIS_ADDR>` when unset |
//!
//! Routes: `GET /health`, `GET /ready`, `GET /metrics`, `GET /whoami`, `GET /basic/me`, `GET /api/me`, `GET /cf/me`,
//! `POST /session/login`, `GET /session/me`, `POST /session/logout`,
//! `GET /oidc/login?return_to=/path`, `GET /oidc/callback`, `POST /oidc/logout`, `GET /ws`, `GET /admin`,
//! `GET|PUT|DELETE /posts/{id}`.

use std::collections::HashMap;
use std::env;
use std::sync::{Arc, OnceLock, RwLock};

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use portcullis::basic::BasicAuth;
use portcullis::gateway::ForwardAuth;
use portcullis::jwt::BearerAuth;
use portcullis::limit::{AttemptLimiter, Limits};
use portcullis::policy::{PolicyLayer, RouteRules, Rule};
use portcullis::resource::{Dpop, ProtectedResource, ReplayCache};
use portcullis::revocation::Revocations;
use portcullis::session::{
    MemoryStore, NewSession, SessionConfig, SessionManager, SessionStore, Sessions,
};
use portcullis::testing::{KeyServer, now};
use portcullis::{AuthContext, AuthError, AuthLayer, User, Users, hash_password};
use serde::Deserialize;
use serde_json::{Value, json};

#[path = "presets.rs"]
mod presets;
#[path = "schemes.rs"]
mod schemes;
#[path = "ws.rs"]
mod ws;

use schemes::{DevIssuer, NotConfigured};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone)]
struct Post {
    owner: String,
    shared_with: Vec<String>,
    body: String,
}

#[derive(Clone)]
struct AppState {
    users: Arc<Users>,
    limiter: AttemptLimiter,
    bearer: Option<BearerAuth>,
    revocations: Revocations,
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

/// Everything the showcase reads from the environment.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub admin_user: Option<String>,
    pub admin_password: Option<String>,
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub oidc_issuer: Option<String>,
    /// `AUTH_PRESET`: an identity provider's rules for the `AUTH_*` issuer.
    pub preset: Option<String>,
    /// `AUTH_CLIENT_ID`: Keycloak client roles, the Cognito app client.
    pub client_id: Option<String>,
    pub cf_team: Option<String>,
    pub cf_aud: Option<String>,
    pub cf_certs_url: Option<String>,
    pub session_store_url: Option<String>,
    pub rate_limit_url: Option<String>,
    pub revocation_url: Option<String>,
    /// Prefix of the keys in Redis (revocations, attempt limits); default `portcullis:`.
    pub key_prefix: Option<String>,
    pub secure_cookie: bool,
    /// `OIDC_ISSUER`: the provider of `/oidc/login` (the dev issuer when unset).
    pub oidc_login_issuer: Option<String>,
    pub oidc_client_id: Option<String>,
    pub oidc_client_secret: Option<String>,
    /// `PUBLIC_URL`: where browsers reach the app.
    pub public_url: Option<String>,
    /// `SHOWCASE_DEV=1`: the dev issuer for every scheme left unconfigured.
    pub dev: bool,
    /// `AUTH_DPOP`: `allowed` or `required` (off when unset).
    pub dpop: Option<String>,
    /// `AUTH_ISSUER_TEMPLATE`: one `{tenant}` placeholder, with `AUTH_TENANTS`.
    pub issuer_template: Option<String>,
    /// `AUTH_TENANTS`: the comma-separated tenant allowlist.
    pub tenants: Option<String>,
}

impl Config {
    fn key_prefix(&self) -> String {
        self.key_prefix
            .clone()
            .unwrap_or_else(|| "portcullis:".into())
    }
    /// Reads the variables listed in the module docs.
    pub fn from_env() -> Self {
        Config {
            admin_user: var("ADMIN_USER"),
            admin_password: var("ADMIN_PASSWORD"),
            jwks_url: var("AUTH_JWKS_URL"),
            issuer: var("AUTH_ISSUER"),
            audience: var("AUTH_AUDIENCE"),
            oidc_issuer: var("AUTH_OIDC_ISSUER"),
            preset: var("AUTH_PRESET"),
            client_id: var("AUTH_CLIENT_ID"),
            cf_team: var("CF_ACCESS_TEAM"),
            cf_aud: var("CF_ACCESS_AUD"),
            cf_certs_url: var("CF_ACCESS_CERTS_URL"),
            session_store_url: var("SESSION_STORE_URL"),
            rate_limit_url: var("RATE_LIMIT_URL"),
            revocation_url: var("REVOCATION_URL"),
            key_prefix: None,
            secure_cookie: var("SESSION_SECURE_COOKIE").as_deref() == Some("1"),
            oidc_login_issuer: var("OIDC_ISSUER"),
            oidc_client_id: var("OIDC_CLIENT_ID"),
            oidc_client_secret: var("OIDC_CLIENT_SECRET"),
            public_url: var("PUBLIC_URL"),
            dev: var("SHOWCASE_DEV").as_deref() == Some("1"),
            dpop: var("AUTH_DPOP"),
            issuer_template: var("AUTH_ISSUER_TEMPLATE"),
            tenants: var("AUTH_TENANTS"),
        }
    }

    /// Whether the dev issuer and the test kit's published keys are used: only with
    /// `SHOWCASE_DEV=1`, or when no issuer of any kind is configured (no `AUTH_*`,
    /// `CF_ACCESS_*` or `OIDC_ISSUER`).
    pub fn dev_mode(&self) -> bool {
        let configured = [
            &self.issuer_template,
            &self.tenants,
            &self.jwks_url,
            &self.issuer,
            &self.audience,
            &self.oidc_issuer,
            &self.preset,
            &self.client_id,
            &self.cf_team,
            &self.cf_aud,
            &self.cf_certs_url,
            &self.oidc_login_issuer,
        ]
        .iter()
        .any(|v| v.is_some());
        self.dev || !configured
    }
}

/// True for `http(s)://localhost...` and loopback addresses.
fn loopback_url(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A Redis URL in any of the forms the crate takes: one node, Sentinel or Cluster.
fn is_redis(url: &str) -> bool {
    [
        "redis://",
        "rediss://",
        "redis-sentinel://",
        "redis-cluster://",
    ]
    .iter()
    .any(|p| url.starts_with(p))
}

/// The scheme alone: an error message never shows a URL's password.
fn scheme(url: &str) -> &str {
    url.split("://").next().unwrap_or_default()
}

async fn session_store(c: &Config) -> Result<(Arc<dyn SessionStore>, String), Error> {
    let url = c
        .session_store_url
        .clone()
        .unwrap_or_else(|| "memory".into());
    let store: Arc<dyn SessionStore> = if url == "memory" {
        Arc::new(MemoryStore::new())
    } else if is_redis(&url) {
        Arc::new(portcullis::session::RedisStore::connect(&url).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(portcullis::session::PostgresStore::connect(&url).await?)
    } else {
        return Err(format!(
            "SESSION_STORE_URL must be memory, redis://..., redis-sentinel://..., redis-cluster://... or postgres://..., got {}://...",
            scheme(&url)
        )
        .into());
    };
    let kind = url.split("://").next().unwrap_or("memory").to_owned();
    Ok((store, kind))
}

/// The revocation list: this process's, or with `REVOCATION_URL=redis://...` one shared
/// by every instance on that Redis.
async fn revocation_list(c: &Config) -> Result<Revocations, Error> {
    let url = c.revocation_url.clone().unwrap_or_else(|| "memory".into());
    if url == "memory" {
        Ok(Revocations::memory())
    } else if is_redis(&url) {
        Ok(Revocations::redis(&url, &c.key_prefix()).await?)
    } else {
        Err(format!(
            "REVOCATION_URL must be memory, redis://..., redis-sentinel://... or redis-cluster://..., got {}://...",
            scheme(&url)
        )
        .into())
    }
}

/// `POST /admin/revoke`: `{"token": "<jwt>"}` (a token this service accepts) or
/// `{"subject": "...", "issuer": "..."}` (issuer optional: all issuers and sessions).
async fn revoke(
    State(app): State<AppState>,
    body: axum::body::Bytes,
) -> Result<StatusCode, AuthError> {
    let bad = |why| {
        AuthError::malformed(why)
            .with_message("Send {\"token\": ...} or {\"subject\": ..., \"issuer\": ...}.")
    };
    let v: Value = serde_json::from_slice(&body).map_err(|_| bad("revoke: not JSON"))?;
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 8192)
    };
    match (text("token"), text("subject")) {
        (Some(token), None) => {
            let verified = match app.bearer.as_ref().and_then(BearerAuth::verifier) {
                Some(v) => v.verify(token).await,
                None => Err(AuthError::invalid("revoke: no JWT verifier")),
            };
            let ctx = verified.map_err(|_| bad("revoke: not a token this service accepts"))?;
            app.revocations.revoke_context(&ctx, token).await?;
        }
        (None, Some(subject)) => {
            // Everything issued up to this second.
            app.revocations
                .revoke_subject(text("issuer"), subject, now())
                .await?;
        }
        _ => return Err(bad("revoke: neither token nor subject")),
    }
    Ok(StatusCode::NO_CONTENT)
}

/// 5 failures per user and client per minute, counted in process or, with
/// `RATE_LIMIT_URL=redis://...`, shared by every instance on that Redis.
async fn attempt_limiter(c: &Config) -> Result<AttemptLimiter, Error> {
    let url = c.rate_limit_url.clone().unwrap_or_else(|| "memory".into());
    let limiter = if url == "memory" {
        AttemptLimiter::memory()
    } else if is_redis(&url) {
        AttemptLimiter::redis(&url, &format!("{}limit", c.key_prefix())).await?
    } else {
        return Err(format!(
            "RATE_LIMIT_URL must be memory, redis://..., redis-sentinel://... or redis-cluster://..., got {}://...",
            scheme(&url)
        )
        .into());
    };
    Ok(limiter
        .with_limits(Limits::default().per_user_client(5, std::time::Duration::from_secs(60))))
}

/// `/auth/forward`: the forward-auth endpoint for a proxy in front of another app:
/// `/public/*` open, `/admin*` role `admin`, anything else any scheme.
fn forward_auth(auth: AuthLayer) -> Result<ForwardAuth, Error> {
    let admin_paths = Rule::predicate("admin paths need role admin", |input| {
        !input.parts.uri.path().starts_with("/admin") || input.ctx.has_role("admin")
    });
    Ok(
        ForwardAuth::new(auth, RouteRules::new().with_fallback(admin_paths))
            .with_public(["/public/{*rest}"])?,
    )
}

/// `POST /api/tasks`: scope `tasks:write` (checked by the policy layer) → 201.
async fn create_task(ctx: AuthContext) -> (StatusCode, Json<Value>) {
    (
        StatusCode::CREATED,
        Json(json!({"created": true, "owner": ctx.subject()})),
    )
}

/// Single-use tokens (DPoP proofs, back-channel logout tokens) across the instances
/// sharing a Redis `REVOCATION_URL`, or in this process.
async fn replay_cache(c: &Config) -> Result<ReplayCache, Error> {
    Ok(match c.revocation_url.as_deref() {
        Some(url) if is_redis(url) => ReplayCache::redis(url, &c.key_prefix()).await?,
        _ => ReplayCache::memory(),
    })
}

/// `AUTH_DPOP=allowed|required`: DPoP-bound tokens, the proof's `htu` built from
/// `PUBLIC_URL`, proofs single-use across the instances sharing `REVOCATION_URL`.
async fn dpop(c: &Config, public_url: &str) -> Result<Option<Dpop>, Error> {
    let dpop = match c.dpop.as_deref() {
        None => return Ok(None),
        Some("allowed") => Dpop::allowed(public_url)?,
        Some("required") => Dpop::required(public_url)?,
        Some(other) => {
            return Err(format!("AUTH_DPOP must be allowed or required, got {other}").into());
        }
    };
    Ok(Some(dpop.with_replay_cache(replay_cache(c).await?)))
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
    parts: Parts,
    Json(body): Json<LoginBody>,
) -> Result<impl IntoResponse, AuthError> {
    let user = app
        .limiter
        .verify(&app.users, &body.username, &body.password, &parts)
        .await?;
    let cookie = sessions
        .login(NewSession::for_user(body.username.clone(), user))
        .await?;
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

/// The process's Prometheus recorder, installed by the first showcase built (a process
/// has one global recorder; later builds, as in tests, share it).
fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics stays empty");
        }
        handle
    })
}

/// A built showcase: the router plus what `main` prints.
pub struct Showcase {
    pub router: Router,
    pub admin_user: String,
    pub admin_password: String,
    pub password_generated: bool,
    pub demo_password: String,
    pub dev_token: Option<String>,
    pub dev_cf_token: Option<String>,
    pub store_kind: String,
    pub cookie_name: String,
    /// Keeps the dev issuer's key server running.
    pub dev_issuer: Option<KeyServer>,
    /// The dev issuer and the test kit's published keys are in use.
    pub dev_mode: bool,
}

/// Builds the app from `c`.
pub async fn build(c: Config) -> Result<Showcase, Error> {
    // Users: the admin from the environment (or generated), and two demo users.
    let admin_user = c.admin_user.clone().unwrap_or_else(|| "admin".into());
    let (admin_password, password_generated) = match c.admin_password.clone() {
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

    let dev_mode = c.dev_mode();
    if dev_mode && c.public_url.as_deref().is_some_and(|u| !loopback_url(u)) {
        return Err(
            "refusing to start: dev mode trusts the test kit's published keys, and \
                    PUBLIC_URL is not a loopback address (configure real issuers, or unset \
                    SHOWCASE_DEV)"
                .into(),
        );
    }
    let dev = if dev_mode {
        tracing::warn!(
            "DEV MODE: unconfigured schemes use the embedded dev issuer, whose keys are public"
        );
        Some(DevIssuer::start().await)
    } else {
        None
    };
    prometheus();
    let revocations = revocation_list(&c).await?;
    let limiter = attempt_limiter(&c).await?;
    // Failed tokens and unknown session cookies count per client too.
    let public_url = c
        .public_url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:3000".into());
    let dpop = dpop(&c, &public_url).await?;
    let (bearer, dev_token, token_issuers, bearer_keys) =
        match schemes::bearer_auth(&c, &dev, &revocations).await? {
            Some((b, t, iss, keys)) => {
                let b = b.with_limiter(limiter.clone());
                let b = match &dpop {
                    Some(d) => b.with_dpop(d.clone()),
                    None => b,
                };
                (Some(b), t, iss, keys)
            }
            None => (None, None, Vec::new(), None),
        };
    // RFC 9728: this service is the resource at PUBLIC_URL.
    let mut resource = ProtectedResource::new(&public_url)?.with_scopes(["tasks:write"]);
    for iss in &token_issuers {
        resource = resource.with_authorization_server(iss)?;
    }
    if let Some(d) = &dpop {
        resource = resource.with_dpop(d);
    }
    let (cf, dev_cf_token) = match schemes::cloudflare(&c, &dev)? {
        Some((cf, t)) => (
            Some(
                cf.with_revocations(revocations.clone())
                    .with_limiter(limiter.clone()),
            ),
            t,
        ),
        None => (None, None),
    };
    if let Some(cf) = &cf {
        cf.start(portcullis::Startup::Wait).await?;
    }
    let oidc = schemes::oidc_login(&c, &dev, replay_cache(&c).await?).await?;
    let basic = BasicAuth::new("portcullis showcase")
        .with_users(users.clone())
        .with_limiter(limiter.clone());

    let (store, store_kind) = session_store(&c).await?;
    let mut session_config = SessionConfig::default()
        .with_revocations(revocations.clone())
        .with_limiter(limiter.clone());
    if !c.secure_cookie {
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
        limiter: limiter.clone(),
        bearer: bearer.clone(),
        revocations: revocations.clone(),
        posts: Arc::new(RwLock::new(posts)),
    };

    // Every configured scheme; an unconfigured one is left out.
    let any_scheme = |mode_optional: bool| {
        let mut layer = if mode_optional {
            AuthLayer::optional(basic.clone())
        } else {
            AuthLayer::required(basic.clone())
        };
        if let Some(b) = &bearer {
            layer = layer.or(b.clone());
        }
        if let Some(cf) = &cf {
            layer = layer.or(cf.clone());
        }
        layer.or(sessions.authenticator())
    };
    // Every answer from /api/* points to the metadata.
    let bearer_only = match &bearer {
        Some(b) => AuthLayer::required(b.clone().with_resource(&resource)),
        None => AuthLayer::required(NotConfigured::bearer()),
    };
    let cf_only = match &cf {
        Some(cf) => AuthLayer::required(cf.clone()),
        None => AuthLayer::required(NotConfigured::cloudflare()),
    };
    let mut ws_layer = AuthLayer::required(sessions.authenticator());
    if let Some(b) = &bearer {
        ws_layer = ws_layer.or(b.clone().with_websocket_protocol("bearer.")?);
    }
    ws_layer = ws_layer.or(basic.clone());
    if let Some(cf) = &cf {
        ws_layer = ws_layer.or(cf.clone());
    }
    let oidc_routes = match &oidc {
        Some(login) => login.routes(),
        // Left unconfigured: its routes admit nobody.
        None => Router::new().fallback(|| async {
            AuthError::invalid("oidc: not configured")
                .with_message("OIDC login is not configured on this server.")
        }),
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

    let router = Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/metrics", get(|| async { prometheus().render() }))
        .route(
            "/ready",
            get({
                let (bearer, cf, sessions) = (bearer.clone(), cf.clone(), sessions.clone());
                let revocations = revocations.clone();
                let bearer_keys = bearer_keys.clone();
                move || async move {
                    // An unconfigured scheme needs nothing to be ready.
                    let jwt_keys = match &bearer {
                        Some(b) => b.ready().await,
                        None => true,
                    };
                    let cloudflare_certs = match &cf {
                        Some(cf) => cf.ready().await,
                        None => true,
                    };
                    let checks = json!({
                        "jwt_keys": jwt_keys,
                        "cloudflare_certs": cloudflare_certs,
                        "session_store": sessions.ready().await,
                        "revocations": revocations.ready(),
                    });
                    let ready = checks
                        .as_object()
                        .into_iter()
                        .flatten()
                        .all(|(_, v)| v == true);
                    let status = if ready {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    // Why a key set is not usable, while its last fetch failed: an
                    // outage, or a configuration the provider's answer does not match.
                    let mut problems = serde_json::Map::new();
                    let healths = [
                        ("jwt_keys", bearer_keys.as_ref().map(|k| k.health())),
                        ("cloudflare_certs", cf.as_ref().and_then(|cf| cf.health())),
                    ];
                    for (check, health) in healths {
                        if let Some(h) = health.filter(|h| !h.usable)
                            && let Some(problem) = h.problem
                        {
                            let kind = if h.misconfigured {
                                "misconfigured"
                            } else {
                                "unreachable"
                            };
                            problems
                                .insert(check.into(), json!({"problem": problem, "kind": kind}));
                        }
                    }
                    let body = json!({"ready": ready, "checks": checks, "problems": problems});
                    (status, Json(body))
                }
            }),
        )
        .merge(
            Router::new()
                .route("/whoami", get(whoami))
                .layer(any_scheme(true)),
        )
        .merge(
            Router::new()
                .route("/basic/me", get(me))
                .layer(AuthLayer::required(basic.clone())),
        )
        .merge(
            Router::new()
                .route("/api/me", get(me))
                .route(
                    "/api/tasks",
                    post(create_task).route_layer(
                        PolicyLayer::new(Rule::scope("tasks:write"))
                            .with_bearer_realm("showcase")
                            .with_resource(&resource),
                    ),
                )
                .layer(bearer_only),
        )
        .merge(resource.router())
        .merge(forward_auth(any_scheme(false))?.router("/auth/forward"))
        .merge(Router::new().route("/cf/me", get(me)).layer(cf_only))
        .merge(
            Router::new()
                .route("/session/me", get(me))
                .layer(AuthLayer::required(sessions.authenticator())),
        )
        .route("/session/login", post(login))
        .route("/session/logout", post(logout))
        .nest("/oidc", oidc_routes)
        .merge(Router::new().route("/ws", get(ws::upgrade)).layer(ws_layer))
        .merge(
            Router::new()
                .route("/admin", get(me))
                .route("/admin/revoke", post(revoke))
                .route_layer(PolicyLayer::new(Rule::role("admin")))
                .layer(any_scheme(false)),
        )
        .merge(
            Router::new()
                .route(
                    "/posts/{id}",
                    get(read_post).put(write_post).delete(delete_post),
                )
                .route_layer(PolicyLayer::routes(post_rules))
                .layer(any_scheme(false)),
        )
        .layer(Extension(sessions))
        .with_state(state);

    Ok(Showcase {
        router,
        admin_user,
        admin_password,
        password_generated,
        demo_password,
        dev_token,
        dev_cf_token,
        store_kind,
        cookie_name,
        dev_issuer: dev.map(|d| d.server),
        dev_mode,
    })
}

impl Showcase {
    /// The ready-to-paste lines `main` prints for a server at `base`.
    pub fn curl_lines(&self, base: &str) -> Vec<String> {
        let (u, p, d) = (&self.admin_user, &self.admin_password, &self.demo_password);
        let mut out = vec![
            format!("curl -s {base}/health"),
            format!("curl -s {base}/ready"),
            format!("curl -s {base}/metrics"),
            format!("curl -s {base}/whoami"),
            format!("curl -s -u '{u}:{p}' {base}/basic/me"),
            format!("curl -s -u '{u}:{p}' {base}/admin"),
        ];
        out.push(match &self.dev_token {
            Some(t) => format!("curl -s -H 'Authorization: Bearer {t}' {base}/api/me   # dev issuer token for alice"),
            None => format!("curl -s -H \"Authorization: Bearer $TOKEN\" {base}/api/me"),
        });
        out.push(match &self.dev_cf_token {
            Some(t) => format!("curl -s -H 'Cf-Access-Jwt-Assertion: {t}' {base}/cf/me   # dev Cloudflare token for bob"),
            None => format!("curl -s -H \"Cf-Access-Jwt-Assertion: $CF_TOKEN\" {base}/cf/me"),
        });
        out.extend([
            format!("curl -s -c /tmp/portcullis.jar -H 'content-type: application/json' -d '{{\"username\":\"alice\",\"password\":\"{d}\"}}' {base}/session/login"),
            format!("curl -s -b /tmp/portcullis.jar {base}/session/me"),
            format!("curl -s -b /tmp/portcullis.jar {base}/posts/1"),
            format!("curl -s -b /tmp/portcullis.jar -X DELETE {base}/posts/2   # 403: bob's post"),
            format!("curl -s -b /tmp/portcullis.jar -X POST {base}/session/logout"),
            format!("open {base}/oidc/login?return_to=/session/me   # OIDC login in a browser"),
            format!("websocat -H \"Sec-WebSocket-Protocol: chat, bearer.$TOKEN\" ws://{}/ws", base.trim_start_matches("http://")),
        ]);
        out
    }
}
