//! Failing cases for the holes a review of session writes and rotation found, on every
//! store (memory, and Redis and PostgreSQL when their URLs are set): each reproduces the
//! race through a real router and asserts it is closed.
#![cfg(all(feature = "redis", feature = "postgres"))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use common::stores::{all_stores, unique};
use common::{Answer, get as req, send};
use http::StatusCode;
use portcullis::revocation::Revocations;
use portcullis::session::{NewSession, SessionConfig, SessionManager, Sessions};
use portcullis::{AuthContext, AuthError, AuthLayer};
use serde_json::json;

/// `/login` (subject from the query), `/me` (guarded, the context), `/rotate` (guarded),
/// `/otp` (POST sets, DELETE removes, GET reads the one-time value) and `/everywhere`.
fn app(manager: SessionManager) -> Router {
    let guarded = Router::new()
        .route(
            "/me",
            get(|ctx: AuthContext| async move { Json(json!(ctx)) }),
        )
        .route(
            "/rotate",
            post(|s: Sessions| async move { s.rotate().await.map(|c| (c, "rotated")) }),
        )
        .layer(AuthLayer::required(manager.authenticator()));
    Router::new()
        .merge(guarded)
        .route(
            "/login/{who}",
            post(
                |s: Sessions, axum::extract::Path(who): axum::extract::Path<String>| async move {
                    Ok::<_, AuthError>((
                        s.login(NewSession::new(who).with_roles(["admin"])).await?,
                        "ok",
                    ))
                },
            ),
        )
        .route(
            "/otp",
            post(|s: Sessions| async move { s.set("otp", true).await })
                .delete(|s: Sessions| async move { s.remove("otp").await })
                .get(
                    |s: Sessions| async move { s.get::<bool>("otp").await.map(|v| Json(json!(v))) },
                ),
        )
        .route(
            "/everywhere/{who}",
            post(
                |s: Sessions, axum::extract::Path(who): axum::extract::Path<String>| async move {
                    s.logout_everywhere(&who).await.map(|n| Json(json!(n)))
                },
            ),
        )
        .layer(Extension(manager))
}

async fn call(app: &Router, method: &str, path: &str, cookie: Option<&str>) -> Answer {
    let mut r = req(path).method(method);
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    send(app, r.body(Body::empty()).unwrap()).await
}

async fn login(app: &Router, who: &str) -> String {
    let a = call(app, "POST", &format!("/login/{who}"), None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.cookie_pair()
}

fn config() -> SessionConfig {
    SessionConfig::default().with_insecure_dev_cookie()
}

/// A refresh that takes 400 ms must not write back a one-time value removed while it
/// ran: the refresh writes its own fields over the newest record.
#[tokio::test]
async fn a_refresh_does_not_bring_back_a_removed_value() {
    for (name, store) in all_stores().await {
        let cfg = config().with_refresh(Duration::ZERO, |ctx: AuthContext| async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok(Some(ctx.roles().iter().map(|r| r.to_string()).collect()))
        });
        let app = app(SessionManager::from_arc(store, cfg));
        let who = unique("otp-");
        let cookie = login(&app, &who).await;
        assert_eq!(
            call(&app, "POST", "/otp", Some(&cookie)).await.status,
            StatusCode::OK
        );
        // A starts a refresh (every request is due); B removes the value meanwhile.
        let (a_app, a_cookie) = (app.clone(), cookie.clone());
        let a = tokio::spawn(async move { call(&a_app, "GET", "/me", Some(&a_cookie)).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let removed = call(&app, "DELETE", "/otp", Some(&cookie)).await;
        assert_eq!(removed.status, StatusCode::OK, "{name}: {}", removed.body);
        assert_eq!(
            call(&app, "GET", "/otp", Some(&cookie)).await.json(),
            json!(null)
        );
        assert_eq!(a.await.unwrap().status, StatusCode::OK, "{name}");
        assert_eq!(
            call(&app, "GET", "/otp", Some(&cookie)).await.json(),
            json!(null),
            "{name}: the refresh wrote the removed value back"
        );
    }
}

/// Rotating the session every second does not postpone the refresh hook: a hook that
/// ends the session (a disabled account) ends it on time.
#[tokio::test]
async fn rotation_keeps_the_refresh_due() {
    for (name, store) in all_stores().await {
        let disabled = Arc::new(AtomicBool::new(false));
        let flag = disabled.clone();
        let cfg = config().with_refresh(Duration::from_secs(2), move |ctx: AuthContext| {
            let off = flag.load(Ordering::SeqCst);
            async move { Ok((!off).then(|| ctx.roles().iter().map(|r| r.to_string()).collect())) }
        });
        let app = app(SessionManager::from_arc(store, cfg));
        let mut cookie = login(&app, &unique("rot-")).await;
        disabled.store(true, Ordering::SeqCst);
        let start = Instant::now();
        let mut ended_after = None;
        while start.elapsed() < Duration::from_secs(6) {
            let r = call(&app, "POST", "/rotate", Some(&cookie)).await;
            if r.status == StatusCode::UNAUTHORIZED {
                ended_after = Some(start.elapsed());
                break;
            }
            assert_eq!(r.status, StatusCode::OK, "{name}");
            cookie = r.cookie_pair();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let ended =
            ended_after.unwrap_or_else(|| panic!("{name}: rotation kept a disabled session alive"));
        assert!(
            ended <= Duration::from_secs(3),
            "{name}: ended after {ended:?}"
        );
        assert_eq!(
            call(&app, "GET", "/me", Some(&cookie)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

/// A rotated session keeps its creation time, so a subject revocation as of a moment
/// after the login still refuses it.
#[tokio::test]
async fn a_rotated_session_does_not_escape_a_subject_revocation() {
    for (name, store) in all_stores().await {
        let revocations = Revocations::memory();
        let app = app(SessionManager::from_arc(
            store,
            config().with_revocations(revocations.clone()),
        ));
        let who = unique("esc-");
        let cookie = login(&app, &who).await;
        let as_of = portcullis::testing::now();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let rotated = call(&app, "POST", "/rotate", Some(&cookie)).await;
        assert_eq!(rotated.status, StatusCode::OK, "{name}");
        revocations.revoke_subject(None, &who, as_of).await.unwrap();
        assert_eq!(
            call(&app, "GET", "/me", Some(&rotated.cookie_pair()))
                .await
                .status,
            StatusCode::UNAUTHORIZED,
            "{name}: rotation reset the creation time"
        );
    }
}

/// A stolen cookie whose holder keeps calling a route that rotates must not survive a
/// logout everywhere made at a random moment: rotation refuses a session that ended.
#[tokio::test]
async fn rotation_never_outlives_a_logout_everywhere() {
    for (name, store) in all_stores().await {
        let app = app(SessionManager::from_arc(store.clone(), config()));
        let (mut survived, rounds) = (0, 40);
        for round in 0..rounds {
            let who = unique("stolen-");
            let first = login(&app, &who).await;
            let stop = Arc::new(AtomicBool::new(false));
            let rotations = Arc::new(AtomicUsize::new(0));
            let thief = {
                let (app, stop, rotations) = (app.clone(), stop.clone(), rotations.clone());
                tokio::spawn(async move {
                    let mut cookie = first;
                    for _ in 0..200 {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let r = call(&app, "POST", "/rotate", Some(&cookie)).await;
                        if r.status != StatusCode::OK {
                            break;
                        }
                        rotations.fetch_add(1, Ordering::SeqCst);
                        cookie = r.cookie_pair();
                    }
                    cookie
                })
            };
            tokio::time::sleep(Duration::from_millis(rand::random_range(0..20))).await;
            let ended = call(&app, "POST", &format!("/everywhere/{who}"), None).await;
            assert_eq!(ended.status, StatusCode::OK, "{name}: {}", ended.body);
            stop.store(true, Ordering::SeqCst);
            let last = thief.await.unwrap();
            if call(&app, "GET", "/me", Some(&last)).await.status == StatusCode::OK {
                survived += 1;
                eprintln!(
                    "{name}: round {round} survived after {} rotations",
                    rotations.load(Ordering::SeqCst)
                );
            }
        }
        assert_eq!(
            survived, 0,
            "{name}: {survived} of {rounds} stolen sessions survived"
        );
    }
}
