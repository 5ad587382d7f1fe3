//! Attempt limits through a real router: the login helper, client addresses through
//! (un)trusted proxies, one budget shared through Redis by several limiters with their
//! own connections, and Redis cut through a TCP proxy (fail closed, or fall back).

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::post;
use axum::{Extension, Json, Router};
use common::send;
use http::request::Parts;
use http::{Request, StatusCode};
use portcullis::limit::{AttemptLimiter, Limits};
use portcullis::{AuthError, TrustedProxies, User, Users};
use serde_json::{Value, json};

fn users() -> Users {
    Users::new().with_user("alice", User::plain("right"))
}

/// `POST /login` with JSON `username`, `password`, checked through `limiter`.
fn login_app(limiter: AttemptLimiter) -> Router {
    Router::new()
        .route(
            "/login",
            post(
                |Extension(limiter): Extension<AttemptLimiter>,
                 parts: Parts,
                 Json(b): Json<Value>| async move {
                    let users = users();
                    let (name, pw) = (
                        b["username"].as_str().unwrap_or(""),
                        b["password"].as_str().unwrap_or(""),
                    );
                    limiter.verify(&users, name, pw, &parts).await?;
                    Ok::<_, AuthError>("welcome")
                },
            ),
        )
        .layer(Extension(limiter))
}

fn login(user: &str, password: &str, peer: impl Into<IpAddr>, xff: Option<&str>) -> Request<Body> {
    let mut b = Request::post("/login").header("content-type", "application/json");
    if let Some(x) = xff {
        b = b.header("x-forwarded-for", x);
    }
    b.extension(ConnectInfo(SocketAddr::new(peer.into(), 5000)))
        .body(Body::from(
            json!({"username": user, "password": password}).to_string(),
        ))
        .unwrap()
}

fn five_per_minute() -> Limits {
    Limits::default().per_user_client(5, Duration::from_secs(60))
}

#[tokio::test]
async fn the_login_helper_limits_and_never_tells_who_exists() {
    let app = login_app(AttemptLimiter::memory().with_limits(five_per_minute()));
    for user in ["alice", "nobody"] {
        for _ in 0..5 {
            let a = send(&app, login(user, "wrong", [198, 51, 100, 1], None)).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        }
        let a = send(&app, login(user, "wrong", [198, 51, 100, 1], None)).await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{user}");
        assert!(a.headers.contains_key("retry-after"));
        assert_eq!(a.json()["error"], "too_many_attempts");
    }
    // The right password from the locked client waits too; another client gets in, and
    // its success resets the user's counters.
    let a = send(&app, login("alice", "right", [198, 51, 100, 1], None)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    let a = send(&app, login("alice", "right", [198, 51, 100, 2], None)).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn ipv6_clients_count_per_64_and_mapped_ipv4_is_ipv4() {
    let app = login_app(AttemptLimiter::memory().with_limits(five_per_minute()));
    // Five hosts of one /64 share its budget.
    for host in 1..=5u16 {
        let peer = [0x2001, 0xdb8, 1, 2, host, 0, 0, 1];
        let a = send(&app, login("alice", "wrong", peer, None)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    let other_host = [0x2001, 0xdb8, 1, 2, 0xffff, 9, 9, 9];
    let a = send(&app, login("alice", "wrong", other_host, None)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    // The next /64 is another client.
    let next_net = [0x2001, 0xdb8, 1, 3, 0, 0, 0, 1];
    let a = send(&app, login("alice", "wrong", next_net, None)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // An IPv4 client and its IPv4-mapped IPv6 form are one client.
    for _ in 0..5 {
        let a = send(&app, login("alice", "wrong", [198, 51, 100, 7], None)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
    let a = send(&app, login("alice", "wrong", mapped, None)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_trusted_proxies() {
    // Without trusted proxies, a spoofed X-Forwarded-For changes nothing: the peer counts.
    let app = login_app(AttemptLimiter::memory().with_limits(five_per_minute()));
    for i in 0..5 {
        let spoof = format!("203.0.113.{i}");
        send(
            &app,
            login("alice", "wrong", [198, 51, 100, 7], Some(&spoof)),
        )
        .await;
    }
    let a = send(
        &app,
        login("alice", "wrong", [198, 51, 100, 7], Some("203.0.113.99")),
    )
    .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);

    // Behind a trusted proxy, the client it recorded counts (right to left).
    let proxies = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
    let app = login_app(
        AttemptLimiter::memory()
            .with_limits(five_per_minute())
            .with_trusted_proxies(proxies),
    );
    for _ in 0..5 {
        send(
            &app,
            login(
                "alice",
                "wrong",
                [10, 0, 0, 1],
                Some("6.6.6.6, 198.51.100.8"),
            ),
        )
        .await;
    }
    let locked = send(
        &app,
        login(
            "alice",
            "wrong",
            [10, 0, 0, 1],
            Some("1.1.1.1, 198.51.100.8"),
        ),
    )
    .await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    let other = send(
        &app,
        login("alice", "wrong", [10, 0, 0, 1], Some("198.51.100.9")),
    )
    .await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
}

#[cfg(feature = "redis")]
mod redis_backed {
    use super::*;
    use common::proxy::{DOWN, Proxy, UP, host_port};

    use common::{redis_url as url, unique_prefix};

    fn prefix() -> String {
        unique_prefix("pclimit")
    }

    #[tokio::test]
    async fn three_instances_share_one_budget() {
        let Some(url) = url() else { return };
        let prefix = prefix();
        let mut apps = Vec::new();
        for _ in 0..3 {
            let limiter = AttemptLimiter::redis(&url, &prefix).await.unwrap();
            apps.push(login_app(limiter.with_limits(five_per_minute())));
        }
        // Five failures spread over the three instances use up the one budget.
        for i in 0..5 {
            let a = send(
                &apps[i % 3],
                login("alice", "wrong", [198, 51, 100, 20], None),
            )
            .await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "attempt {i}");
        }
        for app in &apps {
            let a = send(app, login("alice", "right", [198, 51, 100, 20], None)).await;
            assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
        }
        // A success elsewhere resets the user's counters for every instance.
        let a = send(&apps[1], login("alice", "right", [198, 51, 100, 21], None)).await;
        assert_eq!(a.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn redis_down_fails_closed_or_falls_back() {
        let Some(url) = url() else { return };
        let proxy = Proxy::start(host_port(&url, 6379)).await;
        let through = format!("redis://{}", proxy.addr);
        let prefix = prefix();
        let closed = login_app(
            AttemptLimiter::redis(&through, &prefix)
                .await
                .unwrap()
                .with_limits(five_per_minute()),
        );
        let fallback = login_app(
            AttemptLimiter::redis(&through, &prefix)
                .await
                .unwrap()
                .with_limits(five_per_minute())
                .with_memory_fallback(),
        );
        assert_eq!(
            send(&closed, login("alice", "right", [198, 51, 100, 30], None))
                .await
                .status,
            StatusCode::OK
        );
        proxy.set(DOWN);
        let a = send(&closed, login("alice", "right", [198, 51, 100, 30], None)).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "fail closed");
        // With the fallback, this instance counts on its own: 5 failures, then 429.
        for _ in 0..5 {
            let a = send(&fallback, login("alice", "wrong", [198, 51, 100, 31], None)).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        }
        let a = send(&fallback, login("alice", "wrong", [198, 51, 100, 31], None)).await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
        // Restored: the Redis-backed limiter serves again (bounded wait for the reconnect).
        proxy.set(UP);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let a = send(&closed, login("alice", "right", [198, 51, 100, 32], None)).await;
            if a.status == StatusCode::OK {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no recovery: {}",
                a.status
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
