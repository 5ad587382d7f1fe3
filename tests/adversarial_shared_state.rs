//! Failing cases for the holes a review of the shared state found: each test reproduces
//! the attack against real routers, a real Redis (through a TCP proxy this test starts,
//! for the faults) and asserts it is refused.
#![cfg(feature = "redis")]

mod common;

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::proxy::{DOWN, HALF, Proxy, SLOW, UP, host_port};
use common::{get as req, redis_url, send, unique_prefix};
use http::StatusCode;
use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, TokenCache, Validation};
use portcullis::revocation::{RedisRevocations, Revocations};
use portcullis::testing::{TestKey, TokenBuilder, now};
use portcullis::{AuthContext, AuthLayer};

const ISS: &str = "https://issuer.test";

fn bearer_app(revocations: &Revocations) -> Router {
    let verifier = JwtVerifier::new(Issuer::new(
        TestKey::Hs256.key_set(),
        Validation::new([Algorithm::HS256])
            .with_issuer(ISS)
            .with_audience("api"),
    ))
    .with_token_cache(TokenCache::new())
    .with_revocations(revocations.clone());
    Router::new()
        .route(
            "/me",
            get(|ctx: AuthContext| async move { ctx.subject().to_owned() }),
        )
        .layer(AuthLayer::required(BearerAuth::new("api", verifier)))
}

fn token(sub: &str, jti: &str) -> String {
    TokenBuilder::new(TestKey::Hs256)
        .with_claim("iss", ISS)
        .with_claim("aud", "api")
        .with_claim("sub", sub)
        .with_claim("iat", now() - 10)
        .with_claim("jti", jti)
        .sign()
}

async fn call(app: &Router, token: &str) -> StatusCode {
    send(
        app,
        req("/me")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .status
}

/// Calls every 100 ms from `since` until `until` has passed; returns (requests tried,
/// requests admitted after the bound).
async fn admitted_after_bound(
    app: &Router,
    token: &str,
    since: Instant,
    until: Duration,
) -> (u32, u32) {
    let (mut tried, mut admitted) = (0, 0);
    while since.elapsed() < until {
        let status = call(app, token).await;
        tried += 1;
        if status == StatusCode::OK && since.elapsed() > RedisRevocations::SYNC_BOUND {
            admitted += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (tried, admitted)
}

/// Polls until `app` answers `want` for `token`, at most `limit`; a 200 meanwhile fails
/// the test when `no_200` is set.
async fn settles_to(
    app: &Router,
    token: &str,
    want: StatusCode,
    limit: Duration,
    no_200: bool,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        let s = call(app, token).await;
        if s == want {
            return true;
        }
        assert!(
            !(no_200 && s == StatusCode::OK),
            "a revoked token was admitted while settling"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A link that stops carrying packets while its sockets stay open (a NAT or load
/// balancer that forgot the flow): a revocation made meanwhile is refused or answered
/// 503 within the bound, `ready()` turns false, and once the link works again the
/// revocation is enforced (the copy caught up: nothing was lost).
#[tokio::test]
async fn a_silent_link_fails_closed_within_the_bound_and_loses_nothing() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("pcsilent");
    let proxy = Proxy::start(host_port(&url, 6379)).await;
    let writer = Revocations::redis(&url, &prefix).await.unwrap();
    let cut_off = Revocations::redis(&format!("redis://{}", proxy.addr), &prefix)
        .await
        .unwrap();
    let app = bearer_app(&cut_off);
    let t = token("alice", "silent-1");
    assert_eq!(call(&app, &t).await, StatusCode::OK);

    proxy.set(SLOW);
    writer
        .revoke_token(ISS, "silent-1", now() + 600)
        .await
        .unwrap();
    let since = Instant::now();
    let bound = RedisRevocations::SYNC_BOUND;
    let (tried, admitted) =
        admitted_after_bound(&app, &t, since, bound + Duration::from_secs(2)).await;
    assert_eq!(
        admitted, 0,
        "{admitted} of {tried} requests admitted past the bound"
    );
    eprintln!("silent link: {tried} requests, 0 admitted past the bound");
    assert!(!cut_off.ready(), "ready() while the link is silent");

    // The old flow is gone for good; new connections work.
    proxy.set(DOWN);
    proxy.set(UP);
    assert!(
        settles_to(
            &app,
            &t,
            StatusCode::UNAUTHORIZED,
            Duration::from_secs(8),
            true
        )
        .await,
        "the revocation made during the partition was lost"
    );
    assert!(cut_off.ready());
    assert_eq!(cut_off.len(), writer.len());
}

/// The server's answers stop while requests still go out (a half-closed link): the
/// follower notices at once, fails closed, and catches up after.
#[tokio::test]
async fn a_half_closed_link_fails_closed_and_catches_up() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("pchalf");
    let proxy = Proxy::start(host_port(&url, 6379)).await;
    let writer = Revocations::redis(&url, &prefix).await.unwrap();
    let follower = Revocations::redis(&format!("redis://{}", proxy.addr), &prefix)
        .await
        .unwrap();
    let app = bearer_app(&follower);
    let t = token("bob", "half-1");
    assert_eq!(call(&app, &t).await, StatusCode::OK);
    proxy.set(HALF);
    writer
        .revoke_token(ISS, "half-1", now() + 600)
        .await
        .unwrap();
    let (tried, admitted) = admitted_after_bound(
        &app,
        &t,
        Instant::now(),
        RedisRevocations::SYNC_BOUND + Duration::from_secs(1),
    )
    .await;
    assert_eq!(
        admitted, 0,
        "{admitted} of {tried} requests admitted past the bound"
    );
    eprintln!("half-closed link: {tried} requests, 0 admitted past the bound");
    assert!(!follower.ready());
    proxy.set(DOWN);
    proxy.set(UP);
    assert!(
        settles_to(
            &app,
            &t,
            StatusCode::UNAUTHORIZED,
            Duration::from_secs(8),
            true
        )
        .await
    );
}

/// A revocation whose message never arrives (written to the list without a publish, as
/// when a subscription silently misses it) is still enforced within the bound: followers
/// compare the list's version, they do not wait for messages.
#[tokio::test]
async fn a_lost_message_is_caught_up_by_the_version() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("pclost");
    let follower = Revocations::redis(&url, &prefix).await.unwrap();
    let app = bearer_app(&follower);
    let t = token("carol", "lost-1");
    assert_eq!(call(&app, &t).await, StatusCode::OK);
    // What the publishing script stores, without its message.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{prefix}revoked");
    let _: () = redis::pipe()
        .atomic()
        .cmd("HINCRBY")
        .arg(&key)
        .arg("#v")
        .arg(1)
        .ignore()
        .cmd("HSET")
        .arg(&key)
        .arg(format!("t\u{1f}{ISS}\u{1f}lost-1"))
        .arg(now() + 600)
        .ignore()
        .query_async(&mut conn)
        .await
        .unwrap();
    let since = Instant::now();
    assert!(
        settles_to(
            &app,
            &t,
            StatusCode::UNAUTHORIZED,
            RedisRevocations::SYNC_BOUND,
            false
        )
        .await,
        "not enforced within the bound"
    );
    let took = since.elapsed();
    assert!(took <= RedisRevocations::SYNC_BOUND + Duration::from_millis(500));
    eprintln!("lost message: enforced {took:?} after the write, without its message");
    assert!(
        follower.ready(),
        "a lost message is no reason to stop serving"
    );
}

/// The Redis store's per-subject index keeps only live sessions: 300 logins that idle
/// out leave nothing behind at the next login, and a logout everywhere of more sessions
/// than one script run takes ends every one of them.
/// A failover that lost the last write, then a new write that brings the version back
/// to the number a follower saw: the follower notices the list was rewritten (the write
/// id differs) and reloads, though no message reached it and the version did not move.
#[tokio::test]
async fn a_rewritten_version_is_caught_even_when_the_number_matches() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("pcrewrite");
    let writer = Revocations::redis(&url, &prefix).await.unwrap();
    let follower = Revocations::redis(&url, &prefix).await.unwrap();
    let app = bearer_app(&follower);
    writer
        .revoke_token(ISS, "lost-in-failover", now() + 600)
        .await
        .unwrap();
    let lost = token("dora", "lost-in-failover");
    assert!(
        settles_to(
            &app,
            &lost,
            StatusCode::UNAUTHORIZED,
            RedisRevocations::SYNC_BOUND,
            false
        )
        .await
    );
    let t = token("dora", "after-failover");
    assert_eq!(call(&app, &t).await, StatusCode::OK);
    // The promoted replica never had that write; the next one takes its version number.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{prefix}revoked");
    let _: () = redis::pipe()
        .atomic()
        .cmd("HDEL")
        .arg(&key)
        .arg(format!("t\u{1f}{ISS}\u{1f}lost-in-failover"))
        .ignore()
        .cmd("HSET")
        .arg(&key)
        .arg("#v")
        .arg(1)
        .arg("#w")
        .arg(1)
        .arg(format!("t\u{1f}{ISS}\u{1f}after-failover"))
        .arg(now() + 600)
        .ignore()
        .query_async(&mut conn)
        .await
        .unwrap();
    let since = Instant::now();
    assert!(
        settles_to(
            &app,
            &t,
            StatusCode::UNAUTHORIZED,
            RedisRevocations::SYNC_BOUND,
            false
        )
        .await,
        "the rewritten list was never reloaded"
    );
    let took = since.elapsed();
    assert!(took <= RedisRevocations::SYNC_BOUND + Duration::from_millis(500));
    eprintln!("lost message: enforced {took:?} after the write, without its message");
}

#[tokio::test]
async fn the_redis_subject_index_holds_only_live_sessions() {
    use portcullis::session::{NewSession, RedisStore, SessionConfig, SessionManager};
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("pcidx");
    let store = RedisStore::builder(&url)
        .with_prefix(&prefix)
        .connect()
        .await
        .unwrap();
    let manager = SessionManager::new(
        store,
        SessionConfig::default().with_idle_timeout(Duration::from_secs(2)),
    );
    let headers = http::HeaderMap::new();
    // Fewer logins than the idle timeout lasts, however slow the machine.
    let started = std::time::Instant::now();
    for _ in 0..100 {
        let _ = manager
            .login(&headers, NewSession::new("alice"))
            .await
            .unwrap();
    }
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let index = format!("{prefix}i:alice");
    let count = async |conn: &mut redis::aio::MultiplexedConnection| -> i64 {
        redis::cmd("ZCARD")
            .arg(&index)
            .query_async(conn)
            .await
            .unwrap()
    };
    if started.elapsed() < Duration::from_secs(2) {
        assert_eq!(count(&mut conn).await, 100);
    }
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let _ = manager
        .login(&headers, NewSession::new("alice"))
        .await
        .unwrap();
    assert_eq!(
        count(&mut conn).await,
        1,
        "ended sessions left in the index"
    );

    // More live sessions than one script run deletes: all end.
    let long = SessionManager::new(
        RedisStore::builder(&url)
            .with_prefix(&prefix)
            .connect()
            .await
            .unwrap(),
        SessionConfig::default(),
    );
    for _ in 0..1_200 {
        let _ = long.login(&headers, NewSession::new("bob")).await.unwrap();
    }
    assert_eq!(long.logout_everywhere("bob").await.unwrap(), 1_200);
    let left: i64 = redis::cmd("EXISTS")
        .arg(format!("{prefix}i:bob"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// PostgreSQL: a subject's rows of ended sessions go at its next login.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_keeps_only_live_sessions_per_subject() {
    use portcullis::session::{NewSession, PostgresStore, SessionConfig, SessionManager};
    let Ok(url) = std::env::var("PORTCULLIS_TEST_POSTGRES_URL") else {
        eprintln!("skip: PORTCULLIS_TEST_POSTGRES_URL not set");
        return;
    };
    let table = "portcullis_test_sessions";
    let store = PostgresStore::builder(&url)
        .with_table(table)
        .connect()
        .await
        .unwrap();
    let manager = SessionManager::new(
        store,
        SessionConfig::default().with_idle_timeout(Duration::from_secs(1)),
    );
    let subject = unique_prefix("pgidx");
    let headers = http::HeaderMap::new();
    for _ in 0..50 {
        let _ = manager
            .login(&headers, NewSession::new(subject.as_str()))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let _ = manager
        .login(&headers, NewSession::new(subject.as_str()))
        .await
        .unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let (rows,): (i64,) =
        sqlx::query_as(&format!("SELECT count(*) FROM {table} WHERE subject = $1"))
            .bind(&subject)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(rows, 1);
}
