//! Revocation through real routers: tokens (cache hits included), subjects and sessions;
//! shared through Redis by instances with their own connections; a cut connection
//! fails closed and resyncs; a message that does not parse triggers a reload.

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use common::{get as req, send};
use http::StatusCode;
use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, TokenCache, Validation};
use portcullis::revocation::Revocations;
use portcullis::session::{MemoryStore, NewSession, SessionConfig, SessionManager, Sessions};
use portcullis::testing::{TestKey, TokenBuilder, now};
use portcullis::{AuthContext, AuthError, AuthLayer};

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

fn token(sub: &str, iat: u64, jti: Option<&str>) -> String {
    let mut t = TokenBuilder::new(TestKey::Hs256)
        .with_claim("iss", ISS)
        .with_claim("aud", "api")
        .with_claim("sub", sub)
        .with_claim("iat", iat);
    if let Some(j) = jti {
        t = t.with_claim("jti", j);
    }
    t.sign()
}

async fn call(app: &Router, token: &str) -> common::Answer {
    send(
        app,
        req("/me")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn revoked_tokens_are_refused_even_from_the_cache() {
    let r = Revocations::memory();
    let app = bearer_app(&r);
    let with_jti = token("alice", now() - 10, Some("t-1"));
    let without = token("bob", now() - 10, None);
    for t in [&with_jti, &without] {
        assert_eq!(call(&app, t).await.status, StatusCode::OK);
        assert_eq!(call(&app, t).await.status, StatusCode::OK, "cached");
    }
    r.revoke_token(ISS, "t-1", now() + 600).await.unwrap();
    let a = call(&app, &with_jti).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.www_authenticate()[0].contains("invalid_token"));
    // A token without jti is revoked by its hash.
    let ctx = AuthContext::builder("bob", portcullis::Scheme::Bearer)
        .with_issuer(ISS)
        .build();
    r.revoke_context(&ctx, &without).await.unwrap();
    assert_eq!(call(&app, &without).await.status, StatusCode::UNAUTHORIZED);
    // Sign out everywhere: older tokens of the subject refused, newer ones accepted.
    let old = token("carol", now() - 60, Some("c-old"));
    assert_eq!(call(&app, &old).await.status, StatusCode::OK);
    r.revoke_subject(Some(ISS), "carol", now() - 30)
        .await
        .unwrap();
    assert_eq!(call(&app, &old).await.status, StatusCode::UNAUTHORIZED);
    let fresh = token("carol", now(), Some("c-new"));
    assert_eq!(call(&app, &fresh).await.status, StatusCode::OK);
    // Another issuer's subject of the same name is not affected.
    r.revoke_subject(Some("https://other.test"), "dave", now())
        .await
        .unwrap();
    assert_eq!(
        call(&app, &token("dave", now() - 60, None)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn revoked_sessions_and_subjects_are_refused() {
    let r = Revocations::memory();
    let manager = SessionManager::new(
        MemoryStore::new(),
        SessionConfig::default().with_revocations(r.clone()),
    );
    let app = Router::new()
        .route(
            "/me",
            get(|ctx: AuthContext| async move { ctx.session_id().unwrap_or_default().to_owned() }),
        )
        .layer(AuthLayer::required(manager.authenticator()))
        .route(
            "/login",
            post(|s: Sessions| async move {
                Ok::<_, AuthError>((s.login(NewSession::new("alice")).await?, "ok"))
            }),
        )
        .layer(axum::Extension(manager));
    let login = || async {
        let a = send(
            &app,
            req("/login").method("POST").body(Body::empty()).unwrap(),
        )
        .await;
        a.cookie_pair()
    };
    let me = |cookie: String| {
        let app = app.clone();
        async move {
            send(
                &app,
                req("/me")
                    .header("cookie", cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
        }
    };
    let (one, two) = (login().await, login().await);
    let id = me(one.clone()).await.body;
    r.revoke_session(&id, now() + 3600).await.unwrap();
    assert_eq!(me(one).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me(two.clone()).await.status, StatusCode::OK);
    r.revoke_subject(None, "alice", now() + 1).await.unwrap();
    assert_eq!(me(two).await.status, StatusCode::UNAUTHORIZED);
}

#[cfg(feature = "redis")]
mod shared {
    use super::*;
    use common::proxy::{DOWN, Proxy, UP, host_port};

    use common::{redis_url as url, unique_prefix};

    fn prefix() -> String {
        unique_prefix("pcrev")
    }

    /// Polls `f` every 20 ms for at most 3 s until it returns true.
    async fn eventually(mut f: impl AsyncFnMut() -> bool) -> bool {
        for _ in 0..150 {
            if f().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_revocation_on_one_instance_is_refused_by_the_others() {
        let Some(url) = url() else { return };
        let prefix = prefix();
        let (a, b) = (
            Revocations::redis(&url, &prefix).await.unwrap(),
            Revocations::redis(&url, &prefix).await.unwrap(),
        );
        let (app_a, app_b) = (bearer_app(&a), bearer_app(&b));
        let t = token("alice", now() - 10, Some("shared-1"));
        assert_eq!(call(&app_b, &t).await.status, StatusCode::OK);
        assert_eq!(call(&app_b, &t).await.status, StatusCode::OK, "cached on b");
        a.revoke_token(ISS, "shared-1", now() + 2).await.unwrap();
        assert_eq!(call(&app_a, &t).await.status, StatusCode::UNAUTHORIZED);
        assert!(
            eventually(async || call(&app_b, &t).await.status == StatusCode::UNAUTHORIZED).await,
            "b never saw the revocation"
        );
        // A third instance starting later loads it; after the token's exp it is gone.
        let c = Revocations::redis(&url, &prefix).await.unwrap();
        assert_eq!(c.len(), 1);
        tokio::time::sleep(Duration::from_millis(3100)).await;
        let d = Revocations::redis(&url, &prefix).await.unwrap();
        assert_eq!(d.len(), 0, "expired entries are not loaded");
    }

    #[tokio::test]
    async fn a_cut_connection_fails_closed_then_resyncs() {
        let Some(url) = url() else { return };
        let prefix = prefix();
        let proxy = Proxy::start(host_port(&url, 6379)).await;
        let through = format!("redis://{}", proxy.addr);
        let writer = Revocations::redis(&url, &prefix).await.unwrap();
        let strict = Revocations::redis(&through, &prefix).await.unwrap();
        let lenient = Revocations::redis(&through, &prefix)
            .await
            .unwrap()
            .with_fail_open_for(Duration::from_secs(60));
        let (app, lenient_app) = (bearer_app(&strict), bearer_app(&lenient));
        let t = token("erin", now() - 10, Some("cut-1"));
        assert_eq!(call(&app, &t).await.status, StatusCode::OK);
        proxy.set(DOWN);
        assert!(
            eventually(async || call(&app, &t).await.status == StatusCode::SERVICE_UNAVAILABLE)
                .await,
            "did not fail closed"
        );
        assert_eq!(
            call(&lenient_app, &t).await.status,
            StatusCode::OK,
            "within the bound"
        );
        // Revoked while this instance cannot hear it: after the resync, refused.
        writer
            .revoke_token(ISS, "cut-1", now() + 600)
            .await
            .unwrap();
        proxy.set(UP);
        assert!(
            eventually(async || call(&app, &t).await.status == StatusCode::UNAUTHORIZED).await,
            "no resync after the cut"
        );
        assert!(
            eventually(async || call(&lenient_app, &t).await.status == StatusCode::UNAUTHORIZED)
                .await
        );
    }

    #[tokio::test]
    async fn a_message_that_does_not_parse_triggers_a_reload() {
        let Some(url) = url() else { return };
        let prefix = prefix();
        let list = Revocations::redis(&url, &prefix).await.unwrap();
        let app = bearer_app(&list);
        list.revoke_token(ISS, "kept", now() + 600).await.unwrap();
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        for garbage in ["", "nonsense", "t\u{1f}a\u{1e}not-a-number", "\u{1e}\u{1e}"] {
            let _: i64 = redis::cmd("PUBLISH")
                .arg(format!("{prefix}revoked"))
                .arg(garbage)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        // Still there (reloaded), and later revocations still arrive.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            call(&app, &token("f", now(), Some("kept"))).await.status,
            StatusCode::UNAUTHORIZED
        );
        let other = Revocations::redis(&url, &prefix).await.unwrap();
        other.revoke_token(ISS, "later", now() + 600).await.unwrap();
        assert!(
            eventually(
                async || call(&app, &token("g", now(), Some("later"))).await.status
                    == StatusCode::UNAUTHORIZED
            )
            .await
        );
    }
}
