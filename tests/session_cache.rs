//! Sessions in Redis and PostgreSQL served from a local copy: instances with their own
//! store connections and revocation lists, talking only through Redis and the store.
//! A logout, rotation or logout everywhere on one is refused by the others at once; a
//! data change shows within the cache TTL; the copy never outlives a deleted session.

mod common;

use common::stores;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::get;
use axum::{Extension, Router};
use common::{get as req, send};
use http::StatusCode;
use portcullis::revocation::Revocations;
use portcullis::session::{
    CachingStore, NewSession, PostgresStore, RedisStore, SessionConfig, SessionManager,
    SessionStore,
};
use portcullis::{AuthContext, AuthLayer};

const TTL: Duration = Duration::from_secs(2);
/// A generous bound for a loaded CI machine; the measured lag (printed, and in
/// BENCHMARKS.md) is well under a millisecond.
const PROPAGATION_BOUND: Duration = Duration::from_secs(1);

/// One instance: its own store connection and revocation list, a local cache.
struct Instance {
    manager: SessionManager,
    app: Router,
}

async fn instance(store: Arc<dyn SessionStore>, redis: &str, prefix: &str) -> Instance {
    let revocations = Revocations::redis(redis, prefix).await.unwrap();
    let config = SessionConfig::default().with_insecure_dev_cookie();
    let store = CachingStore::from_arc(store, revocations)
        .with_capacity(10_000)
        .with_ttl(TTL)
        .unwrap();
    let manager = SessionManager::new(store, config);
    let app = Router::new()
        .route(
            "/me",
            get(|ctx: AuthContext| async move {
                let mut v = serde_json::json!(ctx);
                v["claims"] = serde_json::Value::Object(ctx.claims().clone());
                axum::Json(v)
            }),
        )
        .layer(AuthLayer::required(manager.authenticator()))
        .layer(Extension(manager.clone()));
    Instance { manager, app }
}

async fn me(i: &Instance, cookie: &str) -> (StatusCode, serde_json::Value) {
    let a = send(
        &i.app,
        req("/me")
            .header("cookie", cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    (a.status, a.json())
}

/// Polls `i` until `cookie` is refused; how long that took.
async fn refused_within(i: &Instance, cookie: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if me(i, cookie).await.0 == StatusCode::UNAUTHORIZED {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "still accepted after {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn login(i: &Instance, subject: &str) -> String {
    let cookie = i
        .manager
        .login(
            &http::HeaderMap::new(),
            NewSession::new(subject).with_roles(["member"]),
        )
        .await
        .unwrap();
    cookie.pair().to_owned()
}

fn cookie_headers(cookie: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("cookie", cookie.parse().unwrap());
    h
}

async fn three_instances(kind: &str) -> Option<[Instance; 3]> {
    let redis = common::redis_url()?;
    let prefix = common::unique_prefix("cachetest");
    let mut out = Vec::new();
    for _ in 0..3 {
        let store: Arc<dyn SessionStore> = match kind {
            "redis" => Arc::new(
                RedisStore::builder(&redis)
                    .with_prefix(&format!("{prefix}sess:"))
                    .connect()
                    .await
                    .unwrap(),
            ),
            _ => {
                let Ok(url) = std::env::var("PORTCULLIS_TEST_POSTGRES_URL") else {
                    eprintln!("skip: PORTCULLIS_TEST_POSTGRES_URL not set");
                    return None;
                };
                Arc::new(
                    PostgresStore::builder(&url)
                        .with_table(stores::PG_TABLE)
                        .connect()
                        .await
                        .unwrap(),
                )
            }
        };
        out.push(instance(store, &redis, &prefix).await);
    }
    out.try_into().ok()
}

async fn logouts_reach_every_instance(kind: &str) {
    let Some([a, b, c]) = three_instances(kind).await else {
        return;
    };
    let subject = stores::unique("user-");
    let cookie = login(&a, &subject).await;
    for i in [&a, &b, &c] {
        let (status, ctx) = me(i, &cookie).await;
        assert_eq!(status, StatusCode::OK, "{ctx}");
        // A second request is served from the copy.
        assert_eq!(me(i, &cookie).await.0, StatusCode::OK);
    }
    // Logout on one: refused by all three at once.
    let _cleared = a.manager.logout(&cookie_headers(&cookie)).await.unwrap();
    for i in [&a, &b, &c] {
        let took = refused_within(i, &cookie, PROPAGATION_BOUND).await;
        eprintln!("{kind}: logout refused after {took:?}");
    }

    // Rotation on b: the old id is refused everywhere, the new one works everywhere.
    let cookie = login(&a, &subject).await;
    assert_eq!(me(&b, &cookie).await.0, StatusCode::OK);
    assert_eq!(me(&c, &cookie).await.0, StatusCode::OK);
    let rotated = b
        .manager
        .rotate(&cookie_headers(&cookie))
        .await
        .unwrap()
        .pair()
        .to_owned();
    for i in [&a, &b, &c] {
        refused_within(i, &cookie, PROPAGATION_BOUND).await;
        assert_eq!(me(i, &rotated).await.0, StatusCode::OK);
    }

    // Logout everywhere on c: every session of the subject, on every instance.
    let second = login(&b, &subject).await;
    for i in [&a, &b] {
        assert_eq!(me(i, &second).await.0, StatusCode::OK);
    }
    c.manager.logout_everywhere(&subject).await.unwrap();
    for i in [&a, &b, &c] {
        refused_within(i, &rotated, PROPAGATION_BOUND).await;
        refused_within(i, &second, PROPAGATION_BOUND).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sessions_logouts_reach_every_instance() {
    logouts_reach_every_instance("redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sessions_logouts_reach_every_instance() {
    logouts_reach_every_instance("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_changes_show_within_the_ttl() {
    let Some([a, b, _c]) = three_instances("redis").await else {
        return;
    };
    let cookie = login(&a, &stores::unique("user-")).await;
    assert_eq!(
        me(&b, &cookie).await.1["claims"]["plan"],
        serde_json::Value::Null
    );
    a.manager
        .update_data(&cookie_headers(&cookie), |d| {
            d.insert("plan".into(), "pro".into());
        })
        .await
        .unwrap();
    // At once on the instance that wrote it; on the others once their copy ages out.
    assert_eq!(me(&a, &cookie).await.1["claims"]["plan"], "pro");
    let start = Instant::now();
    while me(&b, &cookie).await.1["claims"]["plan"] != "pro" {
        assert!(
            start.elapsed() < TTL + Duration::from_secs(1),
            "stale past the TTL"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The copy is what answers: a record deleted behind the instances' backs (no
/// announcement) is still served until the copy ages out, then refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_serves_until_it_ages_out() {
    let Some(redis) = common::redis_url() else {
        return;
    };
    let prefix = common::unique_prefix("cachetest");
    let raw = Arc::new(
        RedisStore::builder(&redis)
            .with_prefix(&format!("{prefix}sess:"))
            .connect()
            .await
            .unwrap(),
    );
    let a = instance(raw.clone(), &redis, &prefix).await;
    let cookie = login(&a, &stores::unique("user-")).await;
    assert_eq!(me(&a, &cookie).await.0, StatusCode::OK);
    let deleted = raw
        .delete_all_for_subject(me(&a, &cookie).await.1["subject"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(
        me(&a, &cookie).await.0,
        StatusCode::OK,
        "served from the copy"
    );
    let took = refused_within(&a, &cookie, TTL + Duration::from_secs(1)).await;
    eprintln!("copy aged out after {took:?}");
}
