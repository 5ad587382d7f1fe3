//! Failed credentials that name no user, limited per client: forged bearer tokens,
//! Cloudflare assertions and unknown session cookies. A client past its budget gets 429
//! before its next credential is checked in full; valid cached credentials never touch
//! the limiter; other clients are not affected.

mod common;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use common::{Probe, get, send};
use http::StatusCode;
use portcullis::iap::IdentityProxy;
use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, TokenCache, Validation};
use portcullis::limit::{AttemptLimiter, Limits};
use portcullis::session::{MemoryStore, NewSession, SessionConfig, SessionManager};
use portcullis::testing::{KeyServer, TEST_AUDIENCE, TestKey, TokenBuilder, jwks, now};
use portcullis::{AuthLayer, Authenticator};

fn limiter() -> AttemptLimiter {
    AttemptLimiter::memory().with_credential_limits(
        Limits::credentials().per_user_client(3, std::time::Duration::from_secs(60)),
    )
}

fn app<A: Authenticator>(auth: A) -> Router {
    Probe::default()
        .router("/me")
        .layer(AuthLayer::required(auth))
}

async fn call(app: &Router, peer: [u8; 4], header: (&str, String)) -> (StatusCode, Option<String>) {
    let mut req = get("/me")
        .header(header.0, header.1)
        .body(Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((peer, 40000))));
    let a = send(app, req).await;
    let retry = a
        .headers
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (a.status, retry)
}

fn token(sub: &str) -> String {
    TokenBuilder::new(TestKey::Rs256)
        .with_claim("sub", sub)
        .with_claim("aud", TEST_AUDIENCE)
        .with_claim("exp", now() + 600)
        .sign()
}

#[tokio::test]
async fn forged_bearer_tokens_are_limited_per_client() {
    let v = JwtVerifier::new(Issuer::new(
        TestKey::Rs256.key_set(),
        Validation::new([Algorithm::RS256]).with_audience(TEST_AUDIENCE),
    ))
    .with_token_cache(TokenCache::new());
    let app = app(BearerAuth::new("api", v).with_limiter(limiter()));
    let (a, b) = ([198, 51, 100, 1], [198, 51, 100, 2]);
    let bearer = |t: &str| ("authorization", format!("Bearer {t}"));
    let cached = token("alice");
    assert_eq!(call(&app, a, bearer(&cached)).await.0, StatusCode::OK);
    let forged = TokenBuilder::new(TestKey::Rs256Next)
        .with_claim("sub", "admin")
        .with_claim("aud", TEST_AUDIENCE)
        .with_claim("exp", now() + 600)
        .sign();
    for _ in 0..3 {
        assert_eq!(
            call(&app, a, bearer(&forged)).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, retry) = call(&app, a, bearer(&forged)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some_and(|r| r.parse::<u64>().unwrap() >= 1));
    // A valid token not yet verified: refused before its check, as any other.
    assert_eq!(
        call(&app, a, bearer(&token("bob"))).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The token verified before the flood is a cache hit: the limiter is not asked.
    assert_eq!(call(&app, a, bearer(&cached)).await.0, StatusCode::OK);
    // Another client keeps its own budget.
    assert_eq!(
        call(&app, b, bearer(&token("carol"))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, b, bearer(&forged)).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A spoofed X-Forwarded-For (no trusted proxy) changes nothing.
    let mut req = get("/me")
        .header("authorization", format!("Bearer {forged}"))
        .header("x-forwarded-for", "203.0.113.77")
        .body(Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((a, 40000))));
    assert_eq!(send(&app, req).await.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_success_gives_the_client_its_attempt_back() {
    let v = JwtVerifier::new(Issuer::new(
        TestKey::Rs256.key_set(),
        Validation::new([Algorithm::RS256]).with_audience(TEST_AUDIENCE),
    ));
    let app = app(BearerAuth::new("api", v).with_limiter(limiter()));
    let peer = [198, 51, 100, 3];
    // Valid uncached tokens, many times: never limited.
    for i in 0..20 {
        let t = token(&format!("user-{i}"));
        assert_eq!(
            call(&app, peer, ("authorization", format!("Bearer {t}")))
                .await
                .0,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn forged_cloudflare_assertions_are_limited_per_client() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let cf = IdentityProxy::cloudflare_access("team", "aud-tag")
        .unwrap()
        .with_keys_url(&server.url("/cdn-cgi/access/certs"))
        .unwrap()
        .with_limiter(limiter());
    let app = app(cf);
    let peer = [198, 51, 100, 4];
    let forged = TokenBuilder::new(TestKey::Rs256Next)
        .with_claim("iss", "https://team.cloudflareaccess.com")
        .with_claim("aud", serde_json::json!(["aud-tag"]))
        .with_claim("sub", "x")
        .with_claim("type", "app")
        .with_claim("exp", now() + 600)
        .sign();
    let h = || ("cf-access-jwt-assertion", forged.clone());
    for _ in 0..3 {
        assert_eq!(call(&app, peer, h()).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(call(&app, peer, h()).await.0, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn unknown_session_cookies_looked_up_in_a_store_are_limited() {
    let Some(url) = common::redis_url() else {
        return;
    };
    let store = portcullis::session::RedisStore::builder(&url)
        .with_prefix(&common::unique_prefix("credlimit"))
        .connect()
        .await
        .unwrap();
    let manager = SessionManager::new(
        store,
        SessionConfig::default()
            .with_insecure_dev_cookie()
            .with_limiter(limiter()),
    );
    let good = manager
        .login(&http::HeaderMap::new(), NewSession::new("dave"))
        .await
        .unwrap()
        .pair()
        .to_owned();
    let app = app(manager.authenticator());
    let peer = [198, 51, 100, 5];
    // Well-formed ids nobody was given: each costs a store lookup.
    let guess = || {
        use base64::Engine;
        let id: [u8; 32] = rand::random();
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id);
        ("cookie", format!("session={id}"))
    };
    for _ in 0..3 {
        assert_eq!(call(&app, peer, guess()).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        call(&app, peer, guess()).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let other = [198, 51, 100, 6];
    assert_eq!(call(&app, other, ("cookie", good)).await.0, StatusCode::OK);
    // A session served from memory never asks the limiter.
    let memory = SessionManager::new(
        MemoryStore::new(),
        SessionConfig::default()
            .with_insecure_dev_cookie()
            .with_limiter(limiter()),
    );
    let mine = memory
        .login(&http::HeaderMap::new(), NewSession::new("erin"))
        .await
        .unwrap()
        .pair()
        .to_owned();
    let app = self::app(memory.authenticator());
    for _ in 0..10 {
        assert_eq!(
            call(&app, peer, ("cookie", mine.clone())).await.0,
            StatusCode::OK
        );
    }
}
