//! One server per authentication setup, for `run.sh` to load with wrk.
//!
//! Usage: `portcullis-load <mode> <addr>`. Prints `HEADER <name>: <value>` (the credential
//! to send) or `LOGIN` (POST /login for a session cookie), then `READY`. Every mode serves
//! `GET /` on a single-threaded runtime and answers with the caller's subject.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Router, http::HeaderMap};
use portcullis::AuthContext;
use portcullis::AuthLayer;
use portcullis::basic::{BasicAuth, BasicUser};
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

async fn subject(ctx: AuthContext) -> String {
    ctx.subject().to_owned()
}

thread_local! {
    /// Set once from the mode's `-handler` suffix, before the app is built.
    static PER_HANDLER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `GET /` answering with the subject, behind `layer`: `Router::layer` by default, or
/// `Handler::layer` for modes ending in `-handler` (no boxed route per layer).
fn guarded(layer: AuthLayer) -> Router {
    if PER_HANDLER.get() {
        use axum::handler::Handler;
        Router::new().route("/", get(subject.layer(layer)))
    } else {
        Router::new().route("/", get(subject)).layer(layer)
    }
}

fn bearer(key: TestKey, cached: bool) -> (Router, String) {
    let mut v = JwtVerifier::new(Issuer::new(
        key.key_set(),
        Validation::new([key.algorithm()])
            .with_issuer(ISS)
            .with_audience(AUD),
    ));
    if cached {
        v = v.with_token_cache(TokenCache::new());
    }
    let app = guarded(AuthLayer::required(BearerAuth::new("load", v)));
    (app, format!("Authorization: Bearer {}", token(key)))
}

mod limit;

/// An authenticator that does no work: hands out one prebuilt context. Measures the
/// fixed cost of `AuthLayer`, the context in the extensions and the extractor.
#[derive(Clone)]
struct Floor(AuthContext);

impl portcullis::Authenticator for Floor {
    fn scheme(&self) -> portcullis::Scheme {
        portcullis::Scheme::Custom
    }
    fn challenge(&self) -> Option<portcullis::Challenge> {
        None
    }
    fn detect(&self, _: &axum::http::request::Parts) -> bool {
        true
    }
    async fn authenticate(
        &self,
        _: &axum::http::request::Parts,
    ) -> Result<AuthContext, portcullis::AuthError> {
        Ok(self.0.clone())
    }
}
mod peers;

/// A session server on `store`, with one logged-in session's cookie as the header.
async fn session<S: SessionStore>(store: S) -> (Router, String) {
    let m = SessionManager::new(store, SessionConfig::default());
    let cookie = m
        .login(&HeaderMap::new(), NewSession::new("alice"))
        .await
        .unwrap();
    let pair = cookie.pair().to_owned();
    (
        guarded(AuthLayer::required(m.authenticator())),
        format!("Cookie: {pair}"),
    )
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

async fn serve(app: Router, addr: &str) {
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    println!("READY");
    axum::serve(listener, app).await.expect("serve");
}

/// The app and the credential header (empty when none) for `mode`.
async fn setup(mode: &str) -> (Router, String) {
    if let Some(inner) = mode.strip_suffix("-handler") {
        PER_HANDLER.set(true);
        return Box::pin(setup(inner)).await;
    }
    if let Some(inner) = mode.strip_prefix("none-as-") {
        // The no-auth app receiving the very request `inner` receives (same header bytes):
        // the baseline that isolates the layer from the cost of carrying a credential.
        let (_, header) = Box::pin(setup(inner)).await;
        let (app, _) = Box::pin(setup("none")).await;
        return (app, header);
    }
    match mode {
        "none" => (
            // An owned body, like the authenticated handlers' subject: only auth differs.
            Router::new().route("/", get(|| async { String::from("anonymous") })),
            String::new(),
        ),
        "basic" => {
            let basic =
                BasicAuth::new("load").with_user("alice", BasicUser::plain("alice-password"));
            (
                guarded(AuthLayer::required(basic)),
                "Authorization: Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ=".into(),
            )
        }
        "hs256" => bearer(TestKey::Hs256, false),
        "hs256-cached" => bearer(TestKey::Hs256, true),
        "rs256" => bearer(TestKey::Rs256, false),
        "rs256-cached" => bearer(TestKey::Rs256, true),
        "es256" => bearer(TestKey::Es256, false),
        "es256-cached" => bearer(TestKey::Es256, true),
        "eddsa" => bearer(TestKey::EdDsa, false),
        "eddsa-cached" => bearer(TestKey::EdDsa, true),
        "floor" => (
            guarded(AuthLayer::required(Floor(
                AuthContext::builder("alice", portcullis::Scheme::Custom).build(),
            ))),
            String::new(),
        ),
        "identity-layer" => (
            // The no-auth app behind a layer that does nothing: axum's own price of
            // `Router::layer` (each request clones and boxes the layered route).
            Router::new()
                .route("/", get(|| async { String::from("anonymous") }))
                .layer(tower::layer::util::Identity::new()),
            String::new(),
        ),
        "axum-from-fn" => {
            // The smallest identity middleware axum offers: `from_fn` inserting a value the
            // handler extracts. No checks at all: a floor for any auth middleware.
            #[derive(Clone)]
            struct Identity(Arc<str>);
            let app =
                Router::new()
                    .route(
                        "/",
                        get(
                            |axum::Extension(id): axum::Extension<Identity>| async move {
                                id.0.to_string()
                            },
                        ),
                    )
                    .layer(axum::middleware::from_fn(
                        |mut req: axum::extract::Request, next: axum::middleware::Next| async move {
                            req.extensions_mut().insert(Identity(Arc::from("alice")));
                            next.run(req).await
                        },
                    ));
            (app, String::new())
        }
        "limit-hs256" => limit::limit(TestKey::Hs256),
        "limit-rs256" => limit::limit(TestKey::Rs256),
        "limit-es256" => limit::limit(TestKey::Es256),
        "limit-eddsa" => limit::limit(TestKey::EdDsa),
        "session" => session(MemoryStore::new()).await,
        "session-redis" => {
            let url = env("PORTCULLIS_TEST_REDIS_URL");
            session(
                RedisStore::connect_with(&url, "portcullis-load:", Duration::from_secs(2))
                    .await
                    .unwrap(),
            )
            .await
        }
        "session-postgres" => {
            let url = env("PORTCULLIS_TEST_POSTGRES_URL");
            session(
                PostgresStore::connect_with(
                    &url,
                    "portcullis_load_sessions",
                    Duration::from_secs(2),
                )
                .await
                .unwrap(),
            )
            .await
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
