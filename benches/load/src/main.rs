//! One server per authentication setup, for `run.sh` to load with wrk.
//!
//! Usage: `portcullis-load <mode> <addr>`. Prints `HEADER <name>: <value>` (the credential
//! to send) or `LOGIN` (POST /login for a session cookie), then `READY`. Every mode serves
//! `GET /` on a single-threaded runtime and answers with the caller's subject.

use axum::{Router, http::HeaderMap};
use portcullis::AuthLayer;
use portcullis::User;
use portcullis::basic::BasicAuth;
use portcullis::jwt::{BearerAuth, Issuer, JwtVerifier, TokenCache, Validation};
use portcullis::session::{
    MemoryStore, NewSession, PostgresStore, RedisStore, SessionConfig, SessionManager, SessionStore,
};
use portcullis::testing::{TestKey, TokenBuilder, now};

const ISS: &str = "https://issuer.load";
const AUD: &str = "load";

fn token(key: TestKey) -> String {
    TokenBuilder::new(key)
        .with_claim("iss", ISS)
        .with_claim("aud", AUD)
        .with_claim("roles", serde_json::json!(["member"]))
        .with_claim("exp", now() + 24 * 3600)
        .sign()
}

#[path = "../../common/apps.rs"]
mod apps;

use apps::guarded;

fn verifier(key: TestKey, cached: bool) -> JwtVerifier {
    let v = JwtVerifier::new(Issuer::new(
        key.key_set(),
        Validation::new([key.algorithm()])
            .with_issuer(ISS)
            .with_audience(AUD),
    ));
    if cached {
        v.with_token_cache(TokenCache::new())
    } else {
        v
    }
}

fn bearer(key: TestKey, cached: bool, per_handler: bool) -> (Router, String) {
    let v = verifier(key, cached);
    let app = guarded(AuthLayer::required(BearerAuth::new("load", v)), per_handler);
    (app, format!("Authorization: Bearer {}", token(key)))
}

mod limit;

mod peers;

/// A session server on `store`, with one logged-in session's cookie as the header.
async fn session<S: SessionStore>(store: S, per_handler: bool) -> (Router, String) {
    session_with(store, SessionConfig::default(), per_handler).await
}

/// A remote store with the local cache, its revocation list shared through Redis at `url`.
async fn session_cached<S: SessionStore>(
    store: S,
    url: &str,
    per_handler: bool,
) -> (Router, String) {
    let revocations = portcullis::revocation::Revocations::redis(url, "portcullis-load:")
        .await
        .unwrap();
    let store = portcullis::session::CachingStore::new(store, revocations.clone())
        .with_capacity(100_000)
        .with_ttl(std::time::Duration::from_secs(5))
        .unwrap();
    let config = SessionConfig::default().with_revocations(revocations);
    session_with(store, config, per_handler).await
}

async fn session_with<S: SessionStore>(
    store: S,
    config: SessionConfig,
    per_handler: bool,
) -> (Router, String) {
    let m = SessionManager::new(store, config);
    let cookie = m
        .login(&HeaderMap::new(), NewSession::new("alice"))
        .await
        .unwrap();
    let pair = cookie.pair().to_owned();
    (
        guarded(AuthLayer::required(m.authenticator()), per_handler),
        format!("Cookie: {pair}"),
    )
}

async fn redis_store() -> RedisStore {
    redis_store_at(&env("PORTCULLIS_TEST_REDIS_URL")).await
}

/// The store on a cluster (`PORTCULLIS_BENCH_CLUSTER_URL`, `redis-cluster://...`).
fn cluster_url() -> String {
    env("PORTCULLIS_BENCH_CLUSTER_URL")
}

async fn redis_store_at(url: &str) -> RedisStore {
    RedisStore::builder(url)
        .with_prefix("portcullis-load")
        .connect()
        .await
        .unwrap()
}

async fn postgres_store() -> PostgresStore {
    PostgresStore::builder(&env("PORTCULLIS_TEST_POSTGRES_URL"))
        .with_table("portcullis_load_sessions")
        .connect()
        .await
        .unwrap()
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// Serves `app`; with `LOAD_CONNECT_INFO=1`, every request carries the peer address
/// (`ConnectInfo`), as the attempt limiter's default client key needs.
async fn serve(app: Router, addr: &str) {
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    println!("READY");
    if std::env::var_os("LOAD_CONNECT_INFO").is_some() {
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, app).await.expect("serve");
    } else {
        axum::serve(listener, app).await.expect("serve");
    }
}

/// The app and the credential header (empty when none) for `mode`. A mode ending in
/// `-handler` applies the layer with `Handler::layer` instead of `Router::layer`.
async fn setup(mode: &str) -> (Router, String) {
    let (mode, per_handler) = match mode.strip_suffix("-handler") {
        Some(inner) => (inner, true),
        None => (mode, false),
    };
    if let Some(inner) = mode.strip_prefix("none-as-") {
        // The no-auth app receiving the very request `inner` receives (same header bytes):
        // the baseline that isolates the layer from the cost of carrying a credential.
        let (_, header) = Box::pin(setup(inner)).await;
        let (app, _) = Box::pin(setup("none")).await;
        return (app, header);
    }
    match mode {
        "none" => (apps::no_auth(), String::new()),
        "basic" | "basic-limited" => {
            let mut basic =
                BasicAuth::new("load").with_user("alice", User::plain("alice-password"));
            if mode == "basic-limited" {
                // Keyed by the peer address (run with LOAD_CONNECT_INFO=1): every client
                // is 127.0.0.1 here, one key per counter, as for one real client.
                basic = basic.with_limiter(portcullis::limit::AttemptLimiter::memory());
            }
            (
                guarded(AuthLayer::required(basic), per_handler),
                "Authorization: Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ=".into(),
            )
        }
        "hs256" => bearer(TestKey::Hs256, false, per_handler),
        "hs256-cached" => bearer(TestKey::Hs256, true, per_handler),
        "hs256-cached-revocations" => {
            // 1 000 tokens and 100 subjects listed, none of them this request's.
            let r = portcullis::revocation::Revocations::memory();
            for i in 0..1_000 {
                r.revoke_token(ISS, &format!("other-{i}"), now() + 3600)
                    .await
                    .unwrap();
            }
            for i in 0..100 {
                r.revoke_subject(None, &format!("user-{i}"), now())
                    .await
                    .unwrap();
            }
            let (key, v) = (
                TestKey::Hs256,
                verifier(TestKey::Hs256, true).with_revocations(r),
            );
            let app = guarded(AuthLayer::required(BearerAuth::new("load", v)), per_handler);
            (app, format!("Authorization: Bearer {}", token(key)))
        }
        "rs256" => bearer(TestKey::Rs256, false, per_handler),
        "rs256-cached" => bearer(TestKey::Rs256, true, per_handler),
        "es256" => bearer(TestKey::Es256, false, per_handler),
        "es256-cached" => bearer(TestKey::Es256, true, per_handler),
        "eddsa" => bearer(TestKey::EdDsa, false, per_handler),
        "eddsa-cached" => bearer(TestKey::EdDsa, true, per_handler),
        "floor" => (apps::floor(per_handler), String::new()),
        "identity-layer" => (apps::identity_layer(), String::new()),
        "axum-from-fn" => (apps::axum_from_fn(), String::new()),
        "limit-hs256" => limit::limit(TestKey::Hs256),
        "limit-rs256" => limit::limit(TestKey::Rs256),
        "limit-es256" => limit::limit(TestKey::Es256),
        "limit-eddsa" => limit::limit(TestKey::EdDsa),
        "session" => session(MemoryStore::new(), per_handler).await,
        "session-limited" => {
            let limiter = portcullis::limit::AttemptLimiter::memory();
            let config = SessionConfig::default().with_limiter(limiter);
            session_with(MemoryStore::new(), config, per_handler).await
        }
        "forward-auth" => {
            // The origin (`GET /`, no auth) and the forward-auth endpoint a proxy asks
            // (`/auth/forward`, the cached RS256 bearer of `rs256-cached`), one server.
            use portcullis::gateway::ForwardAuth;
            use portcullis::policy::{RouteRules, Rule};
            let forward = ForwardAuth::new(
                AuthLayer::required(BearerAuth::new("load", verifier(TestKey::Rs256, true))),
                RouteRules::new().with_fallback(Rule::authenticated()),
            );
            let app = apps::no_auth().merge(forward.router("/auth/forward"));
            (app, format!("Authorization: Bearer {}", token(TestKey::Rs256)))
        }
        "session-redis" => session(redis_store().await, per_handler).await,
        "session-redis-cached" => {
            let url = env("PORTCULLIS_TEST_REDIS_URL");
            session_cached(redis_store().await, &url, per_handler).await
        }
        "session-cluster" => session(redis_store_at(&cluster_url()).await, per_handler).await,
        "session-cluster-cached" => {
            let url = cluster_url();
            session_cached(redis_store_at(&url).await, &url, per_handler).await
        }
        "session-postgres" => session(postgres_store().await, per_handler).await,
        "session-postgres-cached" => {
            let url = env("PORTCULLIS_TEST_REDIS_URL");
            session_cached(postgres_store().await, &url, per_handler).await
        }
        "tower-http-bearer" => peers::tower_http_bearer(),
        "axum-jwt-auth-rs256" => peers::axum_jwt_auth(token(TestKey::Rs256)),
        "axum-login" => {
            println!("LOGIN");
            (peers::axum_login(), String::new())
        }
        other => panic!("unknown mode {other}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, addr) = (args[1].clone(), args[2].clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A mode ending in `-prom` serves its base mode with the Prometheus recorder installed
    // (built with `--features metrics`).
    let mode = match mode.strip_suffix("-prom") {
        #[cfg(feature = "metrics")]
        Some(base) => {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .expect("no other recorder");
            base.to_owned()
        }
        #[cfg(not(feature = "metrics"))]
        Some(_) => panic!("-prom modes need LOAD_FEATURES=metrics"),
        None => mode,
    };
    rt.block_on(async move {
        if mode == "jwt-authorizer-rs256" {
            let t = token(TestKey::Rs256);
            println!("HEADER Authorization: Bearer {t}");
            peers::jwt_authorizer(&addr).await;
            return;
        }
        let (app, header) = setup(&mode).await;
        if !header.is_empty() {
            println!("HEADER {header}");
        }
        serve(app, &addr).await;
    });
}
