//! The portcullis showcase: every scheme, the policy layer and the session stores in one app.
//!
//! ```text
//! cargo run --example showcase
//! ```
//!
//! Serves on `PORTCULLIS_ADDR` (default `127.0.0.1:3000`) and prints ready-to-paste curl
//! lines. With no environment it runs fully embedded (dev mode, below): a generated admin
//! password, an in-process dev issuer (JWKS and Cloudflare-style certs on a loopback
//! port), and the memory session store.
//!
//! Routes:
//!
//! | route | guard |
//! |---|---|
//! | `GET /health` | none |
//! | `GET /ready` | none: 200 when every IdP key set and the session store are usable, 503 otherwise, with why a key set is not (`problems`: the failure, and whether the provider is unreachable or misconfigured) |
//! | `GET /metrics` | none: Prometheus text, portcullis' own metrics included |
//! | `GET /whoami` | optional, any scheme: `{"authenticated":false}` or the context JSON |
//! | `GET /basic/me` | Basic |
//! | `GET /api/me` | JWT bearer |
//! | `GET /cf/me` | Cloudflare Access |
//! | `POST /session/login` (JSON `username`, `password`), `GET /session/me`, `POST /session/logout` | session cookie; login attempts limited (5 failures per user and client per minute → 429 with `Retry-After`) |
//! | `GET /oidc/login?return_to=/path`, `GET /oidc/callback`, `POST /oidc/logout` | OIDC code + PKCE login ending in a session cookie |
//! | `POST /oidc/backchannel-logout` | OpenID Back-Channel Logout 1.0 (form `logout_token`): ends that user's OIDC sessions on every instance; 400 for an invalid token |
//! | `GET /ws` | WebSocket, any scheme (cookie, or a bearer token as the subprotocol entry `bearer.<token>`); the first message is the context JSON, the socket closes (4001) when it expires |
//! | `GET /.well-known/oauth-protected-resource` | none: RFC 9728 metadata (`resource` = `PUBLIC_URL`); every 401 from `/api/*` carries `resource_metadata` |
//! | `POST /api/tasks` | JWT bearer + scope `tasks:write` (403 `insufficient_scope`, `scope="tasks:write"`) → 201 |
//! | `GET /admin` | any scheme + role `admin` |
//! | `POST /admin/revoke` | any scheme + role `admin`; JSON `{"token": "<jwt>"}` or `{"subject": "...", "issuer": "..."}` (issuer optional: all issuers) → 204 |
//! | any method `/auth/forward` | forward-auth for a proxy (nginx `auth_request`, Traefik, Caddy): the request named by `X-Original-Method`/`X-Original-URI` or `X-Forwarded-Method`/`X-Forwarded-Uri`, any scheme's credentials; `/public/*` open (200, no identity headers), `/admin*` role `admin`, anything else any scheme; 200 with `X-Auth-Subject`, `X-Auth-Roles`, `X-Auth-Scheme`, `X-Auth-Email`; 401 with the challenge; 403; the URI judged decoded with dot segments and `//` resolved, an encoded slash or backslash refused (400) |
//! | `GET, PUT, DELETE /posts/{id}` | read: owner, shared or admin; write: owner or admin |
//!
//! Context JSON fields: `subject`, `scheme` (`basic`, `bearer`, `session`,
//! `cloudflare_access`, `identity_proxy`), `principal`, `roles`, `scopes`, `email`,
//! `tenant`, `issuer`, `expires_at`.
//!
//! Environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `ADMIN_USER`, `ADMIN_PASSWORD` | the Basic admin (password generated when unset) |
//! | `AUTH_JWKS_URL`, `AUTH_ISSUER`, `AUTH_AUDIENCE` | a real JWT issuer (or `AUTH_OIDC_ISSUER` for discovery) |
//! | `AUTH_PRESET`, `AUTH_CLIENT_ID` | that issuer's provider (`keycloak`, `auth0`, `entra`, `cognito`, `okta`, `google`, `github-actions`): its claim layout and token rules; the client id for Keycloak client roles and the Cognito app client |
//! | `CF_ACCESS_TEAM`, `CF_ACCESS_AUD`, `CF_ACCESS_CERTS_URL` | Cloudflare Access (the certs URL override is for tests and egress proxies) |
//! | `SESSION_STORE_URL` | `memory` (default), `redis://...`, `redis-sentinel://h:p,h:p/<service>`, `redis-cluster://h:p,h:p` or `postgres://...` |
//! | `REVOCATION_URL` | `memory` (default) or a Redis URL (any of the three forms): the revocation list, shared by every instance on that Redis |
//! | `RATE_LIMIT_URL` | `memory` (default) or a Redis URL (any of the three forms): login and Basic attempt limits (5 failures per user and client per minute, shared by instances on that Redis) |
//! | `SESSION_SECURE_COOKIE=1` | `Secure` session cookie, behind TLS |
//! | `OIDC_ISSUER`, `OIDC_CLIENT_ID`, `OIDC_CLIENT_SECRET`, `PUBLIC_URL` | the OIDC provider of `/oidc/login` and the app's public URL (`http://<PORTCULLIS_ADDR>` when unset) |
//! | `SHOWCASE_DEV=1` | dev mode even with some issuers configured (see below) |
//! | `AUTH_ISSUER_TEMPLATE`, `AUTH_TENANTS` | several tenants' issuers instead of `AUTH_ISSUER`: the template (one `{tenant}`, e.g. `https://login.example.com/realms/{tenant}`) and the comma-separated allowlist; each tenant's discovery and keys fetched on first use; the context's `tenant` is the issuer's; any other `iss` gets 401 without a fetch |
//! | `AUTH_DPOP` | `allowed` or `required`: DPoP-bound tokens (RFC 9449), `htu` from `PUBLIC_URL`, proofs single-use across instances sharing a Redis `REVOCATION_URL` |
//!
//! Dev mode: with no issuer of any kind configured (no `AUTH_*`, `CF_ACCESS_*` or
//! `OIDC_ISSUER`), or with `SHOWCASE_DEV=1`, every scheme without an issuer uses an
//! in-process dev issuer that signs with the test kit's keys, whose private halves ship
//! in the crate; the showcase says so loudly at start and refuses to start when
//! `PUBLIC_URL` is not a loopback address. Otherwise a scheme left unconfigured admits
//! nobody (its routes answer 401) and no test key is trusted.

mod app;

#[tokio::main]
async fn main() -> Result<(), app::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,portcullis=debug".into()),
        )
        .init();
    let addr = std::env::var("PORTCULLIS_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let mut config = app::Config::from_env();
    config.public_url.get_or_insert_with(|| base.clone());
    let showcase = app::build(config).await?;
    println!(
        "portcullis showcase on {base}  (session store: {})",
        showcase.store_kind
    );
    if showcase.password_generated {
        println!(
            "generated password for {}: {}   (set ADMIN_PASSWORD to choose one)",
            showcase.admin_user, showcase.admin_password
        );
    }
    println!(
        "demo users alice and bob (tenant acme), password: {}",
        showcase.demo_password
    );
    println!();
    for line in showcase.curl_lines(&base) {
        println!("{line}");
    }
    println!("(session cookie: {})", showcase.cookie_name);
    if showcase.dev_mode {
        eprintln!();
        eprintln!(
            "!!! DEV MODE: schemes without a configured issuer trust the embedded dev issuer,"
        );
        eprintln!(
            "!!! whose private keys ship in the portcullis crate: anyone can sign as anyone."
        );
        eprintln!(
            "!!! Used only when no AUTH_*, CF_ACCESS_* or OIDC_ISSUER is set, or with SHOWCASE_DEV=1;"
        );
        eprintln!("!!! never with a PUBLIC_URL that is not loopback.");
        if let Some(dev) = &showcase.dev_issuer {
            eprintln!("!!! dev issuer: {}", dev.base_url());
        }
        eprintln!();
    }
    // Connection info gives the attempt limiter each client's address.
    let app = showcase
        .router
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).await?;
    Ok(())
}
