//! Shared harness: one app with Basic, bearer and session auth (optional mode), and a
//! check that arbitrary input never yields a context or a panic.

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderValue, Request, StatusCode};
use portcullis::basic::BasicAuth;
use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, Validation};
use portcullis::session::{MemoryStore, SessionConfig, SessionManager};
use portcullis::testing::TestKey;
use portcullis::{AuthContext, AuthLayer, User};
use tower::ServiceExt;

struct Harness {
    rt: tokio::runtime::Runtime,
    app: Router,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let basic = BasicAuth::new("f").with_user("admin", User::plain("pw"));
        let bearer = BearerAuth::new(
            "f",
            JwtVerifier::new(Issuer::new(TestKey::Rs256.key_set(), Validation::new([Algorithm::RS256]).with_audience("api"))),
        );
        let sessions = SessionManager::new(MemoryStore::new(), SessionConfig::default());
        let app = Router::new()
            .route(
                "/",
                get(|ctx: Option<AuthContext>| async move {
                    // Garbage must never authenticate.
                    assert!(ctx.is_none(), "fuzz input produced a context");
                    "ok"
                }),
            )
            .layer(AuthLayer::optional(basic).or(bearer).or(sessions.authenticator()));
        Harness { rt, app }
    })
}

pub fn send(header: &str, value: &[u8]) {
    let Ok(v) = HeaderValue::from_bytes(value) else { return };
    let h = harness();
    let req = Request::get("/").header(header, v).body(Body::empty()).unwrap();
    let res = h.rt.block_on(h.app.clone().oneshot(req)).unwrap();
    assert!(res.status() == StatusCode::OK || res.status().is_client_error());
}
