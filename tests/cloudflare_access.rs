//! Cloudflare Access with Cloudflare-shaped certs and tokens served on 127.0.0.1.

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use common::{Probe, get, send};
use http::StatusCode;
use portcullis::iap::IdentityProxy;
use portcullis::jwt::JwksOptions;
use portcullis::testing::{KeyServer, TestKey, TokenBuilder, jwks, now};
use portcullis::{AuthLayer, CsrfGuard};
use serde_json::json;

const TEAM: &str = "acme";
const AUD: &str = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";
const ISS: &str = "https://acme.cloudflareaccess.com";

fn cf(server: &KeyServer) -> IdentityProxy {
    IdentityProxy::cloudflare_access(TEAM, AUD)
        .unwrap()
        .with_keys_url(&server.url("/cdn-cgi/access/certs"))
        .unwrap()
        .with_jwks_options(
            JwksOptions::default()
                .with_unknown_kid_cooldown(Duration::from_millis(200))
                .with_failure_backoff(Duration::from_millis(50)),
        )
        .unwrap()
        .with_service_token("ci-bot.access")
        .unwrap()
}

fn user_token(key: TestKey) -> TokenBuilder {
    TokenBuilder::new(key)
        .with_claim("iss", ISS)
        .with_claim("aud", json!([AUD]))
        .with_claim("sub", "7335d417-61da-459d-899c-0a01c76a2f94")
        .with_claim("email", "alice@acme.test")
        .with_claim("type", "app")
        .with_claim("country", "NL")
        .with_claim("identity_nonce", "6ei69kawdKzMIAPF")
}

fn app(probe: &Probe, cf: IdentityProxy) -> Router {
    probe.router("/cf/me").layer(AuthLayer::required(cf))
}

async fn call(app: &Router, token: &str) -> common::Answer {
    send(
        app,
        get("/cf/me")
            .header("cf-access-jwt-assertion", token)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn identity_token_becomes_context() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let probe = Probe::default();
    let app = app(&probe, cf(&server));
    let a = call(&app, &user_token(TestKey::Rs256).sign()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let j = a.json();
    assert_eq!(j["scheme"], "cloudflare_access");
    assert_eq!(j["email"], "alice@acme.test");
    assert_eq!(j["principal"], "user");
    assert_eq!(j["issuer"], ISS);
}

#[tokio::test]
async fn every_rule_has_a_failing_case() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256, TestKey::Es256])).await;
    let probe = Probe::default();
    let app = app(&probe, cf(&server));
    let cases = vec![
        (
            "wrong team",
            user_token(TestKey::Rs256)
                .with_claim("iss", "https://evil.cloudflareaccess.com")
                .sign(),
        ),
        (
            "wrong aud",
            user_token(TestKey::Rs256)
                .with_claim("aud", json!(["other"]))
                .sign(),
        ),
        (
            "aud substring",
            user_token(TestKey::Rs256)
                .with_claim("aud", json!([&AUD[..20]]))
                .sign(),
        ),
        (
            "aud superstring",
            user_token(TestKey::Rs256)
                .with_claim("aud", json!([format!("{AUD}x")]))
                .sign(),
        ),
        (
            "org token",
            user_token(TestKey::Rs256).with_claim("type", "org").sign(),
        ),
        (
            "no type",
            user_token(TestKey::Rs256).without_claim("type").sign(),
        ),
        (
            "expired",
            user_token(TestKey::Rs256)
                .with_claim("exp", now() - 120)
                .sign(),
        ),
        (
            "not yet",
            user_token(TestKey::Rs256)
                .with_claim("nbf", now() + 120)
                .sign(),
        ),
        ("ES256 not allowed", user_token(TestKey::Es256).sign()),
        (
            "service not allowed",
            user_token(TestKey::Rs256)
                .with_claim("sub", "")
                .without_claim("email")
                .with_claim("common_name", "other.access")
                .sign(),
        ),
        (
            "empty sub no cn",
            user_token(TestKey::Rs256).with_claim("sub", "").sign(),
        ),
    ];
    for (name, t) in cases {
        let a = call(&app, &t).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{name}");
    }
    assert_eq!(probe.runs(), 0);
}

#[tokio::test]
async fn identity_headers_alone_are_never_trusted() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let probe = Probe::default();
    let app = app(&probe, cf(&server));
    let req = get("/cf/me")
        .header("cf-access-authenticated-user-email", "ceo@acme.test")
        .body(Body::empty())
        .unwrap();
    let a = send(&app, req).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // With a valid token, the header is ignored: the context comes from the JWT.
    let req = get("/cf/me")
        .header("cf-access-jwt-assertion", user_token(TestKey::Rs256).sign())
        .header("cf-access-authenticated-user-email", "ceo@acme.test")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, req).await.json()["email"], "alice@acme.test");
    assert_eq!(probe.runs(), 1);
}

#[tokio::test]
async fn service_token_allowed_when_listed() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let probe = Probe::default();
    let app = app(&probe, cf(&server));
    let t = user_token(TestKey::Rs256)
        .with_claim("sub", "")
        .without_claim("email")
        .with_claim("common_name", "ci-bot.access")
        .sign();
    let a = call(&app, &t).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["subject"], "ci-bot.access");
    assert_eq!(a.json()["principal"], "service");
}

#[tokio::test]
async fn rotated_key_is_picked_up() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let probe = Probe::default();
    let app = app(&probe, cf(&server));
    assert_eq!(
        call(&app, &user_token(TestKey::Rs256).sign()).await.status,
        StatusCode::OK
    );
    server.set_jwks(jwks(&[TestKey::Rs256, TestKey::Rs256Next]));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        call(&app, &user_token(TestKey::Rs256Next).sign())
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn certs_404_or_down_is_503() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    server.set_status(StatusCode::NOT_FOUND);
    let probe = Probe::default();
    let a = call(
        &app(&probe, cf(&server)),
        &user_token(TestKey::Rs256).sign(),
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    let port = server.addr().port();
    drop(server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let dead = IdentityProxy::cloudflare_access(TEAM, AUD)
        .unwrap()
        .with_keys_url(&format!("http://127.0.0.1:{port}/cdn-cgi/access/certs"))
        .unwrap();
    let a = call(&app(&probe, dead), &user_token(TestKey::Rs256).sign()).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(probe.runs(), 0);
}

#[tokio::test]
async fn team_name_validated_and_cookie_needs_opt_in_and_csrf() {
    for bad in ["", "-x", "x-", "Acme", "a.b", "a/b", "a b"] {
        let e = common::refusal(IdentityProxy::cloudflare_access(bad, AUD));
        assert!(e.contains("team name"), "{bad}: {e}");
    }
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let probe = Probe::default();
    let t = user_token(TestKey::Rs256).sign();
    let plain = app(&probe, cf(&server));
    let req = || get("/cf/me").header("cookie", format!("CF_Authorization={t}"));
    assert_eq!(
        send(&plain, req().body(Body::empty()).unwrap())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let with_cookie = app(&probe, cf(&server).with_cookie().unwrap());
    assert_eq!(
        send(&with_cookie, req().body(Body::empty()).unwrap())
            .await
            .status,
        StatusCode::OK
    );
    let cross = req()
        .method("POST")
        .header("sec-fetch-site", "cross-site")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&with_cookie, cross).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(probe.runs(), 1);
}

#[tokio::test]
async fn cross_site_requests_carrying_the_header_are_refused() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let probe = Probe::default();
    let t = user_token(TestKey::Rs256).sign();
    let guarded = app(&probe, cf(&server));
    let cross = |method: &str| {
        get("/cf/me")
            .method(method)
            .header("cf-access-jwt-assertion", &t)
            .header("origin", "https://evil.example")
            .header("sec-fetch-site", "cross-site")
            .body(Body::empty())
            .unwrap()
    };
    let a = send(&guarded, cross("POST")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.json()["error"], "cross_site_request");
    let ws = get("/cf/me")
        .header("cf-access-jwt-assertion", &t)
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("origin", "https://evil.example")
        .header("host", "app.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&guarded, ws).await.status, StatusCode::FORBIDDEN);
    assert_eq!(probe.runs(), 0);
    // A safe cross-site GET passes, and an API that opted out takes the POST.
    assert_eq!(send(&guarded, cross("GET")).await.status, StatusCode::OK);
    let api = app(&probe, cf(&server).with_csrf_guard(CsrfGuard::disabled()));
    assert_eq!(send(&api, cross("POST")).await.status, StatusCode::OK);
    assert_eq!(probe.runs(), 2);
}
