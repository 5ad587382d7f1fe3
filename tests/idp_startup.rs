//! Start-up while the identity provider is down, as `Startup` chooses: `Wait` starts,
//! answers 503 (never 401) and is not ready until the provider answers, then is ready
//! without a restart; `FailFast` fails, saying whether the provider was unreachable or
//! answered with something that does not match the configuration. The provider is a
//! real loopback server behind a TCP proxy this test cuts and restores.
#![cfg(all(feature = "jwt", feature = "iap"))]

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use common::proxy::{DOWN, Proxy, UP, host_port};
use common::{Probe, send};
use http::{Request, StatusCode};
use portcullis::iap::IdentityProxy;
use portcullis::introspection::{ClientAuth, Introspection};
use portcullis::jwt::{
    Algorithm, BearerAuth, Issuer, JwksOptions, JwtVerifier, RemoteJwks, Validation,
};
use portcullis::testing::{
    KeyServer, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TestKey, TokenBuilder, jwks,
};
use portcullis::{AuthLayer, Startup};
use serde_json::json;

/// A key server reachable only through a proxy (cut at first), whose discovery document
/// names the proxy's address as the issuer.
async fn issuer_behind_proxy() -> (KeyServer, Proxy, String) {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let proxy = Proxy::start(host_port(&server.base_url(), 80)).await;
    proxy.set(DOWN);
    let issuer = format!("http://{}", proxy.addr);
    server.set_discovery_issuer(Some(&issuer));
    (server, proxy, issuer)
}

async fn call(app: &axum::Router, header: (&str, String)) -> StatusCode {
    send(
        app,
        Request::get("/me")
            .header(header.0, header.1)
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .status
}

/// Polls (every 50 ms, at most 10 s) until `app` admits; returns how long it took.
async fn admitted_within(app: &axum::Router, header: (&str, String)) -> Duration {
    let start = Instant::now();
    loop {
        let s = call(app, header.clone()).await;
        if s == StatusCode::OK {
            return start.elapsed();
        }
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "only 503 while waiting");
        assert!(start.elapsed() < Duration::from_secs(10), "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn waiting_bearer_starts_while_the_issuer_is_down_and_is_ready_once_it_answers() {
    let (server, proxy, issuer) = issuer_behind_proxy().await;
    let started = Instant::now();
    let bearer = BearerAuth::oidc(&issuer, "api", Startup::Wait)
        .await
        .expect("starts while the issuer is down");
    assert!(started.elapsed() < Duration::from_secs(1), "did not wait");
    assert!(!bearer.ready().await);
    let probe = Probe::default();
    let app = probe
        .router("/me")
        .layer(AuthLayer::required(bearer.clone()));
    let token = TokenBuilder::new(TestKey::Rs256)
        .with_claim("iss", issuer.clone())
        .with_claim("aud", "api")
        .with_claim("sub", "alice")
        .with_claim("exp", portcullis::testing::now() + 600)
        .sign();
    let auth = ("authorization", format!("Bearer {token}"));
    for _ in 0..3 {
        // 503, never a 401 that would make the client drop a good token.
        assert_eq!(
            call(&app, auth.clone()).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.set(UP);
    let took = admitted_within(&app, auth.clone()).await;
    eprintln!("bearer ready {took:?} after the issuer came back");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(bearer.ready().await);
    assert_eq!(probe.runs(), 1);
    drop(server);
}

#[tokio::test]
async fn fail_fast_tells_an_outage_from_a_wrong_configuration() {
    let (server, proxy, issuer) = issuer_behind_proxy().await;
    let err = BearerAuth::oidc(&issuer, "api", Startup::FailFast)
        .await
        .unwrap_err();
    assert!(err.message().contains("unreachable"), "{err}");
    proxy.set(UP);
    server.set_discovery_issuer(Some("https://elsewhere.example"));
    let err = BearerAuth::oidc(&issuer, "api", Startup::FailFast)
        .await
        .unwrap_err();
    assert!(
        err.message().contains("do not match the configuration"),
        "{err}"
    );
    server.set_discovery_issuer(Some(&issuer));
    server.set_status(StatusCode::NOT_FOUND);
    let err = BearerAuth::oidc(&issuer, "api", Startup::FailFast)
        .await
        .unwrap_err();
    assert!(
        err.message().contains("do not match the configuration"),
        "a 404 is a wrong URL: {err}"
    );
    server.set_status(StatusCode::BAD_GATEWAY);
    let err = BearerAuth::oidc(&issuer, "api", Startup::FailFast)
        .await
        .unwrap_err();
    assert!(
        err.message().contains("unreachable"),
        "a 5xx is an outage: {err}"
    );
    server.set_status(StatusCode::OK);
    assert!(
        BearerAuth::oidc(&issuer, "api", Startup::FailFast)
            .await
            .is_ok()
    );
    // A malformed URL fails whatever the choice.
    let err = BearerAuth::oidc("not a url", "api", Startup::Wait)
        .await
        .unwrap_err();
    assert!(err.message().contains("not a URL"), "{err}");
}

/// A provider that answers, but not as configured, is reported (health names the
/// reason, requests get 503) and retried slowly, not in a tight loop; once fixed, the
/// next request-driven fetch makes it ready.
#[tokio::test]
async fn waiting_reports_a_wrong_configuration_without_hammering_the_provider() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    server.set_discovery_issuer(Some("https://elsewhere.example"));
    let jwks =
        RemoteJwks::discover(&server.issuer(), [Algorithm::RS256], JwksOptions::default()).unwrap();
    jwks.start(Startup::Wait).await.unwrap();
    let start = Instant::now();
    while jwks.health().problem.is_none() {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let health = jwks.health();
    assert!(health.misconfigured, "{health:?}");
    assert!(!health.usable);
    assert!(
        health
            .problem
            .is_some_and(|p| p.contains("discovery issuer")),
        "{health:?}"
    );
    let verifier = JwtVerifier::new(Issuer::new(
        jwks.clone(),
        Validation::new([Algorithm::RS256])
            .with_issuer(server.issuer())
            .with_audience("api"),
    ));
    let app = Probe::default()
        .router("/me")
        .layer(AuthLayer::required(BearerAuth::new("api", verifier)));
    let token = server
        .token_builder_for("alice")
        .with_claim("aud", "api")
        .sign();
    let auth = ("authorization", format!("Bearer {token}"));
    // Two seconds of steady traffic: a handful of discovery fetches, not one per request.
    let before = server.hits("/.well-known/openid-configuration");
    let mut requests = 0;
    while start.elapsed() < Duration::from_secs(2) {
        assert_eq!(
            call(&app, auth.clone()).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        requests += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fetched = server.hits("/.well-known/openid-configuration") - before;
    assert!(fetched <= 2, "{fetched} fetches for {requests} requests");
    server.set_discovery_issuer(None);
    let took = admitted_within(&app, auth).await;
    eprintln!("ready {took:?} after the configuration was fixed");
    let health = jwks.health();
    assert!(health.usable && health.problem.is_none() && !health.misconfigured);
}

#[tokio::test]
async fn waiting_identity_proxy_starts_while_its_keys_are_down() {
    const AUD: &str = "aud-tag";
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let proxy = Proxy::start(host_port(&server.base_url(), 80)).await;
    proxy.set(DOWN);
    let certs = format!("http://{}/cdn-cgi/access/certs", proxy.addr);
    let cf = IdentityProxy::cloudflare_access("acme", AUD)
        .unwrap()
        .with_keys_url(&certs)
        .unwrap();
    assert!(
        cf.start(Startup::FailFast)
            .await
            .unwrap_err()
            .message()
            .contains("unreachable")
    );
    cf.start(Startup::Wait).await.unwrap();
    assert!(!cf.ready().await);
    let app = Probe::default()
        .router("/me")
        .layer(AuthLayer::required(cf.clone()));
    let assertion = TokenBuilder::new(TestKey::Rs256)
        .with_claim("iss", "https://acme.cloudflareaccess.com")
        .with_claim("aud", json!([AUD]))
        .with_claim("sub", "7335d417-61da-459d-899c-0a01c76a2f94")
        .with_claim("email", "alice@acme.test")
        .with_claim("type", "app")
        .sign();
    let header = ("cf-access-jwt-assertion", assertion);
    assert_eq!(
        call(&app, header.clone()).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.set(UP);
    let took = admitted_within(&app, header).await;
    eprintln!("identity proxy ready {took:?} after its keys came back");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(cf.ready().await);
    assert!(cf.health().expect("a key set").problem.is_none());
}

#[tokio::test]
async fn introspection_start_tells_an_outage_from_wrong_credentials() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let proxy = Proxy::start(host_port(&server.base_url(), 80)).await;
    let endpoint = format!("http://{}/introspect", proxy.addr);
    let good = Introspection::new(
        &endpoint,
        ClientAuth::basic(TEST_CLIENT_ID, TEST_CLIENT_SECRET),
    )
    .unwrap()
    .with_audience("api");
    good.start(Startup::FailFast).await.unwrap();
    let wrong = Introspection::new(&endpoint, ClientAuth::basic(TEST_CLIENT_ID, "nope"))
        .unwrap()
        .with_audience("api");
    let err = wrong.start(Startup::FailFast).await.unwrap_err();
    assert!(err.message().contains("credentials"), "{err}");
    proxy.set(DOWN);
    let err = good.start(Startup::FailFast).await.unwrap_err();
    assert!(err.message().contains("unreachable"), "{err}");
    // Waiting starts at once; a token asked about meanwhile gets 503, then 200.
    good.start(Startup::Wait).await.unwrap();
    server.add_introspected_token("opaque-1", json!({"sub": "alice", "aud": "api"}));
    let app = Probe::default()
        .router("/me")
        .layer(AuthLayer::required(BearerAuth::introspection("api", good)));
    let auth = ("authorization", "Bearer opaque-1".to_owned());
    assert_eq!(
        call(&app, auth.clone()).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    proxy.set(UP);
    admitted_within(&app, auth).await;
}
