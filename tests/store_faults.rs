//! Store faults: Redis and PostgreSQL behind a TCP proxy we control (the machine's shared
//! servers are never touched). Cut or slowed, requests fail closed with 503 within the
//! store timeout; restored, they recover.
#![cfg(all(feature = "redis", feature = "postgres"))]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::{get, post};
use axum::{Extension, Router};
use common::send;
use http::{Request, StatusCode};
use portcullis::session::{
    NewSession, PostgresStore, RedisStore, SessionConfig, SessionManager, SessionStore, Sessions,
};
use portcullis::{AuthContext, AuthError, AuthLayer};

use common::proxy::{DOWN, Proxy, SLOW, UP, host_port};

fn app(store: Arc<dyn SessionStore>) -> Router {
    let m = SessionManager::from_arc(
        store,
        SessionConfig::default().with_store_timeout(Duration::from_millis(500)),
    );
    Router::new()
        .route(
            "/me",
            get(|ctx: AuthContext| async move { ctx.subject().to_owned() })
                .layer(AuthLayer::required(m.authenticator())),
        )
        .route(
            "/login",
            post(|s: Sessions| async move {
                Ok::<_, AuthError>((s.login(NewSession::new("alice")).await?, "ok"))
            }),
        )
        .layer(Extension(m))
}

async fn me(app: &Router, cookie: &str) -> (StatusCode, Duration) {
    let start = Instant::now();
    let s = send(
        app,
        Request::get("/me")
            .header("cookie", cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .status;
    (s, start.elapsed())
}

async fn exercise(name: &str, proxy: &Proxy, store: Arc<dyn SessionStore>) {
    let app = app(store);
    let a = send(&app, Request::post("/login").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::OK, "{name}: login");
    let cookie = a.cookie_pair();
    assert_eq!(me(&app, &cookie).await.0, StatusCode::OK, "{name}: up");

    proxy.set(DOWN);
    for _ in 0..3 {
        let (s, took) = me(&app, &cookie).await;
        assert_eq!(
            s,
            StatusCode::SERVICE_UNAVAILABLE,
            "{name}: down must fail closed"
        );
        assert!(took < Duration::from_secs(3), "{name}: stuck for {took:?}");
    }
    proxy.set(SLOW);
    let (s, took) = me(&app, &cookie).await;
    assert_eq!(
        s,
        StatusCode::SERVICE_UNAVAILABLE,
        "{name}: slow must time out"
    );
    assert!(took < Duration::from_secs(3), "{name}: stuck for {took:?}");

    proxy.set(UP);
    // Recovery: within a bounded number of tries (clients reconnect lazily).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (s, _) = me(&app, &cookie).await;
        if s == StatusCode::OK {
            break;
        }
        assert_eq!(
            s,
            StatusCode::SERVICE_UNAVAILABLE,
            "{name}: only 503 while recovering"
        );
        assert!(Instant::now() < deadline, "{name}: did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn redis_outage_fails_closed_and_recovers() {
    let Ok(url) = std::env::var("PORTCULLIS_TEST_REDIS_URL") else {
        eprintln!("skip: PORTCULLIS_TEST_REDIS_URL not set");
        return;
    };
    let proxy = Proxy::start(host_port(&url, 6379)).await;
    let store = RedisStore::builder(&format!("redis://{}", proxy.addr))
        .with_prefix(&common::stores::unique("pcfault:"))
        .with_connect_timeout(Duration::from_millis(400))
        .connect()
        .await
        .unwrap();
    exercise("redis", &proxy, Arc::new(store)).await;
}

#[tokio::test]
async fn postgres_outage_fails_closed_and_recovers() {
    let Ok(url) = std::env::var("PORTCULLIS_TEST_POSTGRES_URL") else {
        eprintln!("skip: PORTCULLIS_TEST_POSTGRES_URL not set");
        return;
    };
    let proxy = Proxy::start(host_port(&url, 5432)).await;
    let proxied = url.replacen(
        &url.split("://")
            .nth(1)
            .unwrap()
            .rsplit('@')
            .next()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_owned(),
        &proxy.addr.to_string(),
        1,
    );
    let store = PostgresStore::builder(&proxied)
        .with_table(common::stores::PG_TABLE)
        .with_connect_timeout(Duration::from_millis(400))
        .connect()
        .await
        .unwrap();
    exercise("postgres", &proxy, Arc::new(store)).await;
}
