//! Session cookies through the real router: every rule with its failing case.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use common::{get as req, send};
use http::StatusCode;
use portcullis::session::{
    MemoryStore, NewSession, SessionConfig, SessionManager, SessionRecord, SessionStore, Sessions,
};
use portcullis::{
    AuthContext, AuthError, AuthLayer, BoxFuture, CsrfGuard, LoginRedirect, StoreError,
};
use serde_json::json;

/// Memory store that counts calls and can fail or stall on demand.
#[derive(Default, Clone)]
struct Instrumented {
    inner: MemoryStore,
    loads: Arc<AtomicUsize>,
    touches: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    slow: Arc<AtomicBool>,
}

impl Instrumented {
    async fn gate(&self) -> Result<(), StoreError> {
        if self.slow.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::new("down"))
        } else {
            Ok(())
        }
    }
}

impl SessionStore for Instrumented {
    fn create<'a>(&'a self, r: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.gate().await?;
            self.inner.create(r).await
        })
    }
    fn load<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        Box::pin(async move {
            self.loads.fetch_add(1, Ordering::SeqCst);
            self.gate().await?;
            self.inner.load(id).await
        })
    }
    fn replace<'a>(&'a self, r: &'a SessionRecord) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            self.touches.fetch_add(1, Ordering::SeqCst);
            self.gate().await?;
            self.inner.replace(r).await
        })
    }
    fn rotate<'a>(
        &'a self,
        r: &'a SessionRecord,
        new_id: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            self.gate().await?;
            self.inner.rotate(r, new_id).await
        })
    }
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            self.gate().await?;
            self.inner.delete(id).await
        })
    }
    fn delete_all_for_subject<'a>(&'a self, s: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            self.gate().await?;
            self.inner.delete_all_for_subject(s).await
        })
    }
}

fn app_for(manager: SessionManager) -> Router {
    let protected = Router::new()
        .route(
            "/session/me",
            get(|ctx: AuthContext| async move { Json(serde_json::to_value(&ctx).unwrap()) }),
        )
        .route(
            "/session/rotate",
            post(|s: Sessions| async move { s.rotate().await }),
        )
        .route(
            "/session/everywhere",
            post(|s: Sessions, ctx: AuthContext| async move {
                s.logout_everywhere(ctx.subject())
                    .await
                    .map(|n| Json(json!({"ended": n})))
            }),
        )
        .route(
            "/session/write",
            post(|ctx: AuthContext| async move { ctx.subject().to_owned() }),
        )
        .layer(AuthLayer::required(manager.authenticator()));
    Router::new()
        .route(
            "/session/login",
            post(
                |s: Sessions, Json(body): Json<serde_json::Value>| async move {
                    let user = body["username"].as_str().unwrap_or_default().to_owned();
                    let cookie = s
                        .login(
                            NewSession::new(user)
                                .with_roles(["member"])
                                .with_tenant("acme")
                                .with_data("theme", "dark"),
                        )
                        .await?;
                    Ok::<_, AuthError>((cookie, Json(json!({"ok": true}))))
                },
            ),
        )
        .route(
            "/session/logout",
            post(|s: Sessions| async move { s.logout().await }),
        )
        .merge(protected)
        .layer(Extension(manager))
}

fn manager(store: impl SessionStore, config: SessionConfig) -> SessionManager {
    SessionManager::new(store, config)
}

async fn login(app: &Router, user: &str, cookie: Option<&str>) -> (StatusCode, String, String) {
    let mut b = req("/session/login")
        .method("POST")
        .header("content-type", "application/json");
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    let a = send(
        app,
        b.body(Body::from(json!({"username": user}).to_string()))
            .unwrap(),
    )
    .await;
    let set = a
        .headers
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let pair = set.split(';').next().unwrap_or_default().to_owned();
    (a.status, pair, set)
}

async fn me(app: &Router, cookie: &str) -> common::Answer {
    send(
        app,
        req("/session/me")
            .header("cookie", cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn login_sets_hardened_cookie_and_context() {
    let app = app_for(manager(MemoryStore::new(), SessionConfig::default()));
    let (status, pair, set) = login(&app, "alice", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(pair.starts_with("__Host-session="), "{set}");
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(set.contains(attr), "{attr} missing in {set}");
    }
    assert!(!set.contains("Domain"));
    let a = me(&app, &pair).await;
    assert_eq!(a.status, StatusCode::OK);
    let j = a.json();
    assert_eq!(j["subject"], "alice");
    assert_eq!(j["scheme"], "session");
    assert_eq!(j["roles"], json!(["member"]));
    assert_eq!(j["tenant"], "acme");
}

#[tokio::test]
async fn ids_are_stored_hashed() {
    let store = MemoryStore::new();
    let app = app_for(manager(store.clone(), SessionConfig::default()));
    let (_, pair, _) = login(&app, "alice", None).await;
    let id = pair.split_once('=').unwrap().1;
    assert_eq!(id.len(), 43);
    assert!(
        store.load(id).await.unwrap().is_none(),
        "the raw id must not be a store key"
    );
}

#[tokio::test]
async fn the_context_session_id_is_a_hash_prefix_never_the_cookie() {
    use sha2::{Digest, Sha256};
    let m = manager(MemoryStore::new(), SessionConfig::default());
    let app = app_for(m.clone()).merge(
        Router::new()
            .route(
                "/session/id",
                get(|ctx: AuthContext| async move { ctx.session_id().unwrap_or("-").to_owned() }),
            )
            .layer(AuthLayer::required(m.authenticator())),
    );
    let (_, pair, _) = login(&app, "alice", None).await;
    let id = pair.split_once('=').unwrap().1;
    let hash: String = Sha256::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for _ in 0..2 {
        let a = send(
            &app,
            req("/session/id")
                .header("cookie", &pair)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.body, hash[..16], "the first 16 hex digits of SHA-256(id)");
        assert!(!id.contains(&a.body));
    }
}

#[tokio::test]
async fn login_rotates_logout_clears_and_replay_fails() {
    let app = app_for(manager(MemoryStore::new(), SessionConfig::default()));
    let (_, first, _) = login(&app, "alice", None).await;
    // Logging in again with the old cookie (fixation): the old id dies.
    let (_, second, _) = login(&app, "alice", Some(&first)).await;
    assert_ne!(first, second);
    assert_eq!(me(&app, &first).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &second).await.status, StatusCode::OK);
    // Rotate: new id, same data; old id dead.
    let a = send(
        &app,
        req("/session/rotate")
            .method("POST")
            .header("cookie", &second)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let rotated = a.cookie_pair();
    assert_eq!(me(&app, &second).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &rotated).await.json()["tenant"], "acme");
    // Logout clears with the same attributes and kills the id server-side.
    let a = send(
        &app,
        req("/session/logout")
            .method("POST")
            .header("cookie", &rotated)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let clear = a.headers["set-cookie"].to_str().unwrap().to_owned();
    for attr in [
        "__Host-session=;",
        "Max-Age=0",
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
    ] {
        assert!(clear.contains(attr), "{attr} missing in {clear}");
    }
    assert_eq!(me(&app, &rotated).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_everywhere_ends_all_devices() {
    let app = app_for(manager(MemoryStore::new(), SessionConfig::default()));
    let (_, laptop, _) = login(&app, "alice", None).await;
    let (_, phone, _) = login(&app, "alice", None).await;
    let (_, bob, _) = login(&app, "bob", None).await;
    let a = send(
        &app,
        req("/session/everywhere")
            .method("POST")
            .header("cookie", &laptop)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.json()["ended"], 2);
    assert_eq!(me(&app, &phone).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &laptop).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &bob).await.status, StatusCode::OK);
}

#[tokio::test]
async fn sliding_renewal_is_rate_limited_and_absolute_is_final() {
    let store = Instrumented::default();
    let cfg = SessionConfig::default().with_touch_interval(Duration::from_secs(60));
    let app = app_for(manager(store.clone(), cfg));
    let (_, pair, _) = login(&app, "alice", None).await;
    for _ in 0..5 {
        assert_eq!(me(&app, &pair).await.status, StatusCode::OK);
    }
    assert_eq!(
        store.touches.load(Ordering::SeqCst),
        0,
        "touched more than once per interval"
    );

    let store = Instrumented::default();
    let cfg = SessionConfig::default()
        .with_touch_interval(Duration::ZERO)
        .with_idle_timeout(Duration::from_secs(60))
        .with_absolute_timeout(Duration::from_secs(2));
    let app = app_for(manager(store.clone(), cfg));
    let (_, pair, _) = login(&app, "alice", None).await;
    assert_eq!(me(&app, &pair).await.status, StatusCode::OK);
    assert!(store.touches.load(Ordering::SeqCst) >= 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Touched a moment ago, idle timeout 60 s: still dead, because the absolute lifetime ended.
    assert_eq!(me(&app, &pair).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn idle_timeout_expires_and_deletes() {
    let store = MemoryStore::new();
    let cfg = SessionConfig::default().with_idle_timeout(Duration::from_secs(1));
    let app = app_for(manager(store.clone(), cfg));
    let (_, pair, _) = login(&app, "alice", None).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(me(&app, &pair).await.status, StatusCode::UNAUTHORIZED);
    assert!(store.is_empty(), "expired session must be deleted");
}

#[tokio::test]
async fn garbage_cookies_never_reach_the_store() {
    let store = Instrumented::default();
    let app = app_for(manager(store.clone(), SessionConfig::default()));
    let (_, pair, _) = login(&app, "alice", None).await;
    let id = pair.split_once('=').unwrap().1.to_owned();
    let cases = vec![
        "__Host-session=".to_owned(),
        "__Host-session=short".to_owned(),
        format!("__Host-session={}", "A".repeat(5000)),
        format!("__Host-session={}!", &id[1..]),
        format!("__Host-session={id}; __Host-session={id}"),
        "__Host-session=../../../etc/passwd".to_owned(),
    ];
    for c in cases {
        let a = me(&app, &c).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{c}");
    }
    let dup = send(
        &app,
        req("/session/me")
            .header("cookie", format!("__Host-session={id}"))
            .header("cookie", format!("__Host-session={id}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(dup.status, StatusCode::UNAUTHORIZED);
    assert_eq!(store.loads.load(Ordering::SeqCst), 0);
    // A well-formed but unknown id does reach the store and is refused.
    let unknown = format!("__Host-session={}", "B".repeat(42) + "A");
    assert_eq!(me(&app, &unknown).await.status, StatusCode::UNAUTHORIZED);
}

/// Behind a local copy (`CachingStore`), garbage still never reaches the store that
/// waits: the copy is asked first, then the form is checked before the remote load.
#[tokio::test]
async fn garbage_never_reaches_the_store_behind_a_local_copy() {
    use portcullis::revocation::Revocations;
    use portcullis::session::CachingStore;
    let store = Instrumented::default();
    let cached = CachingStore::new(store.clone(), Revocations::memory());
    let app = app_for(manager(cached, SessionConfig::default()));
    let (_, pair, _) = login(&app, "alice", None).await;
    let id = pair.split_once('=').unwrap().1.to_owned();
    assert_eq!(me(&app, &pair).await.status, StatusCode::OK);
    let loads = store.loads.load(Ordering::SeqCst);
    for garbage in [
        "__Host-session=short".to_owned(),
        format!("__Host-session={}!", &id[1..]),
        format!("__Host-session={id}A"),
        format!("__Host-session={}", "A".repeat(5000)),
    ] {
        assert_eq!(
            me(&app, &garbage).await.status,
            StatusCode::UNAUTHORIZED,
            "{garbage}"
        );
    }
    assert_eq!(
        store.loads.load(Ordering::SeqCst),
        loads,
        "garbage reached the store"
    );
    // A well-formed id the copy does not hold is looked up.
    let unknown = format!("__Host-session={}", "B".repeat(42) + "A");
    assert_eq!(me(&app, &unknown).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(store.loads.load(Ordering::SeqCst), loads + 1);
}

/// A store that lends records from process memory is asked before the id's form is
/// checked: a real id is admitted, and garbage is still refused as malformed, not as
/// unknown.
#[tokio::test]
async fn a_lending_store_still_names_garbage_malformed() {
    use portcullis::{Authenticator, Check};
    let m = manager(MemoryStore::new(), SessionConfig::default());
    let cookie = m
        .login(&http::HeaderMap::new(), NewSession::new("alice"))
        .await
        .unwrap();
    let pair = cookie.pair().to_owned();
    let id = pair.split_once('=').unwrap().1.to_owned();
    let auth = m.authenticator();
    let check = |cookie: &str| {
        let parts = http::Request::builder()
            .uri("/")
            .header("cookie", cookie)
            .body(())
            .unwrap()
            .into_parts()
            .0;
        match auth.check(&parts) {
            Check::Ready(Ok(ctx)) => Ok(ctx.subject().to_owned()),
            Check::Ready(Err(e)) => Err(e.reason()),
            other => panic!("{cookie}: not answered at once: {other:?}"),
        }
    };
    assert_eq!(check(&pair), Ok("alice".to_owned()));
    for garbage in [
        "__Host-session=".to_owned(),
        "__Host-session=short".to_owned(),
        format!("__Host-session={}!", &id[1..]),
        format!("__Host-session={id}A"),
        format!("__Host-session={}", "A".repeat(5000)),
    ] {
        assert_eq!(
            check(&garbage),
            Err("session: malformed cookie"),
            "{garbage}"
        );
    }
    let unknown = format!("__Host-session={}", "B".repeat(42) + "A");
    assert_eq!(check(&unknown), Err("session: unknown"));
}

#[tokio::test]
async fn other_cookies_in_any_encoding_do_not_hide_the_session() {
    let store = Instrumented::default();
    let app = app_for(manager(store.clone(), SessionConfig::default()));
    let (_, pair, _) = login(&app, "alice", None).await;
    let id = pair.split_once('=').unwrap().1.to_owned();
    // Browsers send other sites' UTF-8 (or Latin-1) cookie values as raw bytes.
    for neighbours in [
        &b"theme=caf\xc3\xa9"[..],
        b"x=\xff\xfe",
        b"a=\"\xe2\x9c\x93\"",
    ] {
        let mut header = neighbours.to_vec();
        header.extend_from_slice(format!("; {pair}").as_bytes());
        let a = send(
            &app,
            req("/session/me")
                .header("cookie", http::HeaderValue::from_bytes(&header).unwrap())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{neighbours:?}");
    }
    // Our own cookie's value must be text: a byte outside it is refused unread.
    let loads = store.loads.load(Ordering::SeqCst);
    let mut bad = format!("__Host-session={}", &id[1..]).into_bytes();
    bad.push(0xff);
    let a = send(
        &app,
        req("/session/me")
            .header("cookie", http::HeaderValue::from_bytes(&bad).unwrap())
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(store.loads.load(Ordering::SeqCst), loads);
}

#[test]
fn a_cookie_name_a_browser_cannot_send_back_is_refused() {
    for bad in ["", "my session", "sid;x", "sid=x", "\"sid\"", "séance"] {
        assert!(
            common::refusal(SessionConfig::default().with_cookie_name(bad))
                .contains("not a cookie name"),
            "{bad:?}"
        );
    }
    assert!(
        SessionConfig::default()
            .with_cookie_name("__Host-app")
            .is_ok()
    );
}

#[tokio::test]
async fn cross_site_requests_are_refused() {
    let cfg = SessionConfig::default()
        .with_csrf_guard(CsrfGuard::default().with_trusted_origin("https://app.example"));
    let app = app_for(manager(MemoryStore::new(), cfg));
    let (_, pair, _) = login(&app, "alice", None).await;
    let post = |headers: &[(&str, &str)]| {
        let mut b = req("/session/write").method("POST").header("cookie", &pair);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    };
    assert_eq!(
        send(&app, post(&[("sec-fetch-site", "cross-site")]))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(
            &app,
            post(&[("origin", "https://evil.example"), ("host", "app.internal")])
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&app, post(&[("sec-fetch-site", "same-origin")]))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(
            &app,
            post(&[
                ("origin", "https://app.example"),
                ("sec-fetch-site", "cross-site")
            ])
        )
        .await
        .status,
        StatusCode::OK
    );
    // Cross-site WebSocket hijacking: an upgrade GET from another site.
    let ws = req("/session/me")
        .header("cookie", &pair)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("origin", "https://evil.example")
        .header("host", "app.internal")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, ws).await.status, StatusCode::FORBIDDEN);
    // Login CSRF: a cross-site login form post is refused too.
    let a = send(
        &app,
        req("/session/login")
            .method("POST")
            .header("content-type", "application/json")
            .header("sec-fetch-site", "cross-site")
            .body(Body::from("{\"username\":\"mallory\"}"))
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn store_down_or_slow_is_503() {
    let store = Instrumented::default();
    let cfg = SessionConfig::default().with_store_timeout(Duration::from_millis(200));
    let app = app_for(manager(store.clone(), cfg));
    let (_, pair, _) = login(&app, "alice", None).await;
    store.down.store(true, Ordering::SeqCst);
    assert_eq!(
        me(&app, &pair).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        login(&app, "bob", None).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    store.down.store(false, Ordering::SeqCst);
    store.slow.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    assert_eq!(
        me(&app, &pair).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    store.slow.store(false, Ordering::SeqCst);
    assert_eq!(me(&app, &pair).await.status, StatusCode::OK);
}

#[tokio::test]
async fn signed_cookies_reject_tampering() {
    let cfg = SessionConfig::default()
        .with_signing_key(&[9u8; 64])
        .unwrap();
    let app = app_for(manager(MemoryStore::new(), cfg));
    let (_, pair, _) = login(&app, "alice", None).await;
    assert_eq!(me(&app, &pair).await.status, StatusCode::OK);
    let (name, value) = pair.split_once('=').unwrap();
    let mut bytes = value.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{name}={}", String::from_utf8(bytes).unwrap());
    assert_eq!(me(&app, &tampered).await.status, StatusCode::UNAUTHORIZED);
    // The bare id without the MAC is refused as well.
    let bare = format!("{name}={}", &value[..43]);
    assert_eq!(me(&app, &bare).await.status, StatusCode::UNAUTHORIZED);
    assert!(
        common::refusal(SessionConfig::default().with_signing_key(&[1u8; 16]))
            .contains("at least 32 bytes")
    );
}

#[tokio::test]
async fn dev_cookie_and_login_redirect() {
    let cfg = SessionConfig::default().with_insecure_dev_cookie();
    let m = manager(MemoryStore::new(), cfg);
    let (_, _, set) = login(&app_for(m.clone()), "alice", None).await;
    assert!(set.starts_with("session="));
    assert!(!set.contains("Secure"));
    let page = Router::new()
        .route("/dashboard", get(|| async { "dash" }))
        .layer(AuthLayer::required(m.authenticator()).with_responder(LoginRedirect::new("/login")));
    let a = send(
        &page,
        req("/dashboard")
            .header("accept", "text/html")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers["location"], "/login?next=%2Fdashboard");
}

#[tokio::test]
async fn sessions_without_manager_is_a_500() {
    let app = Router::new().route("/x", post(|s: Sessions| async move { s.logout().await }));
    assert_eq!(
        send(&app, req("/x").method("POST").body(Body::empty()).unwrap())
            .await
            .status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[cfg(all(feature = "redis", feature = "postgres"))]
#[tokio::test]
async fn concurrent_logins_and_logouts_lose_and_leak_nothing() {
    for (name, store) in common::stores::all_stores().await {
        let m = SessionManager::from_arc(store, SessionConfig::default());
        let app = app_for(m);
        let mut tasks = Vec::new();
        for i in 0..40 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                let user = format!("user-{i}");
                let (_, pair, _) = login(&app, &user, None).await;
                let who = me(&app, &pair).await.json()["subject"]
                    .as_str()
                    .map(str::to_owned);
                assert_eq!(who.as_deref(), Some(user.as_str()), "wrong context");
                if i % 2 == 0 {
                    let a = send(
                        &app,
                        req("/session/logout")
                            .method("POST")
                            .header("cookie", &pair)
                            .body(Body::empty())
                            .unwrap(),
                    )
                    .await;
                    assert_eq!(a.status, StatusCode::NO_CONTENT);
                }
                (i, pair)
            }));
        }
        for t in tasks {
            let (i, pair) = t.await.unwrap();
            let want = if i % 2 == 0 {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::OK
            };
            assert_eq!(me(&app, &pair).await.status, want, "{name}: session {i}");
        }
    }
}

#[tokio::test]
async fn signed_value_is_bound_to_the_cookie_name() {
    let key = [7u8; 64];
    let store = MemoryStore::new();
    let a = manager(
        store.clone(),
        SessionConfig::default()
            .with_cookie_name("__Host-a")
            .unwrap()
            .with_signing_key(&key)
            .unwrap(),
    );
    let b = manager(
        store,
        SessionConfig::default()
            .with_cookie_name("__Host-b")
            .unwrap()
            .with_signing_key(&key)
            .unwrap(),
    );
    let (app_a, app_b) = (app_for(a), app_for(b));
    let (_, pair, _) = login(&app_a, "alice", None).await;
    assert_eq!(me(&app_a, &pair).await.status, StatusCode::OK);
    // The same signed value (same key, same store) under another cookie name: refused.
    let moved = pair.replacen("__Host-a=", "__Host-b=", 1);
    assert_eq!(me(&app_b, &moved).await.status, StatusCode::UNAUTHORIZED);
}

/// The memory store lends its records and each record memoizes its context: the
/// memo must follow every change (a touch slides the expiry; logout and rotation end
/// the old id at once).
#[tokio::test]
async fn a_lent_record_memoizes_its_context_but_never_past_a_change() {
    let cfg = SessionConfig::default()
        .with_touch_interval(Duration::from_secs(1))
        .with_idle_timeout(Duration::from_secs(600));
    let app = app_for(manager(MemoryStore::new(), cfg));
    let expiry = |a: common::Answer| {
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        a.json()["expires_at"].as_u64().unwrap()
    };
    let (_, pair, _) = login(&app, "alice", None).await;
    let first = expiry(me(&app, &pair).await);
    assert_eq!(expiry(me(&app, &pair).await), first);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let slid = expiry(me(&app, &pair).await);
    assert!(
        slid > first,
        "a touch must rebuild the context ({first} -> {slid})"
    );
    assert_eq!(expiry(me(&app, &pair).await), slid);

    let rotated = send(
        &app,
        req("/session/rotate")
            .method("POST")
            .header("cookie", &pair)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let new_pair = rotated.cookie_pair();
    assert_eq!(me(&app, &pair).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &new_pair).await.status, StatusCode::OK);
    let out = send(
        &app,
        req("/session/logout")
            .method("POST")
            .header("cookie", &new_pair)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(out.status.is_success());
    assert_eq!(me(&app, &new_pair).await.status, StatusCode::UNAUTHORIZED);
}

/// Per-session data: set, read back in the next request's claims and through
/// `Sessions::get`, removed; never written for a session that has ended.
#[tokio::test]
async fn session_data_can_change_but_never_revives_a_session() {
    let m = manager(MemoryStore::new(), SessionConfig::default());
    let app = app_for(m.clone()).merge(
        Router::new()
            .route(
                "/prefs",
                post(|s: Sessions, Json(b): Json<serde_json::Value>| async move {
                    match b["theme"].as_str() {
                        Some(t) => s.set("theme", t).await,
                        None => s.remove("theme").await,
                    }
                })
                .get(|s: Sessions| async move {
                    s.get::<String>("theme")
                        .await
                        .map(|t| Json(json!({ "theme": t })))
                }),
            )
            .layer(Extension(m)),
    );
    let (_, pair, _) = login(&app, "alice", None).await;
    let call = |method: &str, body: serde_json::Value| {
        req("/prefs")
            .method(method)
            .header("cookie", &pair)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    assert!(
        send(&app, call("POST", json!({"theme": "light"})))
            .await
            .status
            .is_success()
    );
    assert_eq!(
        send(&app, call("GET", json!({}))).await.json()["theme"],
        "light"
    );
    assert_eq!(me(&app, &pair).await.status, StatusCode::OK);
    assert!(
        send(&app, call("POST", json!({})))
            .await
            .status
            .is_success()
    );
    assert_eq!(
        send(&app, call("GET", json!({}))).await.json()["theme"],
        serde_json::Value::Null
    );
    // After logout, a write is a 401 and the session stays gone.
    let out = send(
        &app,
        req("/session/logout")
            .method("POST")
            .header("cookie", &pair)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(out.status.is_success());
    assert_eq!(
        send(&app, call("POST", json!({"theme": "dark"})))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me(&app, &pair).await.status, StatusCode::UNAUTHORIZED);
    // A cross-site write is refused.
    let (_, pair2, _) = login(&app, "alice", None).await;
    let cross = req("/prefs")
        .method("POST")
        .header("cookie", &pair2)
        .header("sec-fetch-site", "cross-site")
        .header("content-type", "application/json")
        .body(Body::from(json!({"theme": "evil"}).to_string()))
        .unwrap();
    assert_eq!(send(&app, cross).await.status, StatusCode::FORBIDDEN);
}

/// The refresh hook: new roles reach a live session, a refused user is logged out, an
/// error fails closed; with the interval the hook runs once per session per interval.
#[tokio::test]
async fn the_refresh_hook_changes_roles_and_ends_sessions() {
    let calls = Arc::new(AtomicUsize::new(0));
    let verdict = Arc::new(std::sync::Mutex::new(Ok(Some(vec!["editor".to_owned()]))));
    let cfg = {
        let (calls, verdict) = (calls.clone(), verdict.clone());
        SessionConfig::default().with_refresh(Duration::ZERO, move |_ctx: AuthContext| {
            calls.fetch_add(1, Ordering::SeqCst);
            let v: Result<Option<Vec<String>>, AuthError> = verdict.lock().unwrap().clone();
            async move { v }
        })
    };
    let app = app_for(manager(MemoryStore::new(), cfg));
    let (_, pair, _) = login(&app, "alice", None).await;
    let a = me(&app, &pair).await;
    assert_eq!(a.json()["roles"], json!(["editor"]), "{}", a.body);
    *verdict.lock().unwrap() = Err(AuthError::unavailable("directory down"));
    assert_eq!(
        me(&app, &pair).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    *verdict.lock().unwrap() = Ok(None);
    assert_eq!(me(&app, &pair).await.status, StatusCode::UNAUTHORIZED);
    *verdict.lock().unwrap() = Ok(Some(vec!["member".to_owned()]));
    assert_eq!(
        me(&app, &pair).await.status,
        StatusCode::UNAUTHORIZED,
        "ended for good"
    );

    // With a 60 s interval, many requests cost one hook call (at login the session
    // counts as fresh).
    calls.store(0, Ordering::SeqCst);
    let cfg = {
        let calls = calls.clone();
        SessionConfig::default().with_refresh(Duration::from_secs(60), move |_ctx: AuthContext| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, AuthError>(Some(vec!["x".to_owned()])) }
        })
    };
    let app = app_for(manager(MemoryStore::new(), cfg));
    let (_, pair, _) = login(&app, "bob", None).await;
    for _ in 0..5 {
        assert_eq!(me(&app, &pair).await.status, StatusCode::OK);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}
