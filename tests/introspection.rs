//! Opaque bearer tokens through RFC 7662 introspection, against the test kit's real
//! introspection endpoint on 127.0.0.1.

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use common::{Probe, get, send};
use http::StatusCode;
use portcullis::AuthLayer;
use portcullis::introspection::{ClientAuth, Introspection};
use portcullis::jwt::BearerAuth;
use portcullis::testing::{KeyServer, TEST_CLIENT_ID, TEST_CLIENT_SECRET, jwks, now};
use serde_json::{Value, json};

fn introspection(server: &KeyServer) -> Introspection {
    Introspection::new(
        &server.url("/introspect"),
        ClientAuth::basic(TEST_CLIENT_ID, TEST_CLIENT_SECRET),
    )
    .unwrap()
    .with_issuer("https://as.example")
    .with_audience("orders-api")
}

fn app(i: Introspection) -> Router {
    Probe::default()
        .router("/api/me")
        .layer(AuthLayer::required(BearerAuth::introspection(
            "orders-api",
            i,
        )))
}

async fn call(app: &Router, token: &str) -> (StatusCode, Value) {
    let a = send(
        app,
        get("/api/me")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    (a.status, a.json())
}

fn active(sub: &str) -> Value {
    json!({
        "iss": "https://as.example", "aud": "orders-api", "sub": sub, "client_id": "web",
        "scope": "orders:read", "exp": now() + 600, "iat": now(), "token_type": "Bearer"
    })
}

#[tokio::test]
async fn active_tokens_become_contexts_and_are_cached() {
    let server = KeyServer::start(jwks(&[])).await;
    server.add_introspected_token("opaque-alice", active("alice"));
    let app = app(introspection(&server));
    let (status, ctx) = call(&app, "opaque-alice").await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["subject"], "alice");
    assert_eq!(ctx["scopes"], json!(["orders:read"]));
    assert_eq!(ctx["scheme"], "bearer");
    for _ in 0..5 {
        assert_eq!(call(&app, "opaque-alice").await.0, StatusCode::OK);
    }
    assert_eq!(server.hits("/introspect"), 1, "cached by token hash");
}

#[tokio::test]
async fn inactive_unknown_and_wrong_tokens_are_refused() {
    let server = KeyServer::start(jwks(&[])).await;
    let mut other_aud = active("bob");
    other_aud["aud"] = json!("billing-api");
    server.add_introspected_token("for-billing", other_aud);
    let mut other_iss = active("bob");
    other_iss["iss"] = json!("https://evil.example");
    server.add_introspected_token("other-issuer", other_iss);
    let mut expired = active("bob");
    expired["exp"] = json!(now() - 5);
    server.add_introspected_token("expired", expired);
    let mut refresh = active("bob");
    refresh["token_type"] = json!("refresh_token");
    server.add_introspected_token("a-refresh-token", refresh);
    let mut no_aud = active("bob");
    no_aud.as_object_mut().unwrap().remove("aud");
    server.add_introspected_token("no-aud", no_aud);
    let app = app(introspection(&server));
    for token in [
        "unknown",
        "for-billing",
        "other-issuer",
        "expired",
        "a-refresh-token",
        "no-aud",
    ] {
        let (status, body) = call(&app, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}: {body}");
        assert_eq!(body["error"], "invalid_credentials");
    }
    // An inactive answer is remembered briefly: a retry storm costs one call.
    let before = server.hits("/introspect");
    for _ in 0..5 {
        assert_eq!(call(&app, "unknown").await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(server.hits("/introspect"), before);
    // Not a b68token: refused before any call.
    assert_eq!(call(&app, "bad,token").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(server.hits("/introspect"), before);
}

#[tokio::test]
async fn client_credentials_tokens_without_sub_are_services() {
    let server = KeyServer::start(jwks(&[])).await;
    let mut svc = active("x");
    svc.as_object_mut().unwrap().remove("sub");
    svc["client_id"] = json!("billing-worker");
    server.add_introspected_token("svc", svc);
    let (status, ctx) = call(&app(introspection(&server)), "svc").await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["subject"], "billing-worker");
    assert_eq!(ctx["principal"], "service");
}

#[tokio::test]
async fn the_endpoint_down_slow_or_refusing_fails_closed() {
    let server = KeyServer::start(jwks(&[])).await;
    server.add_introspected_token("opaque-alice", active("alice"));
    // Wrong client secret: the endpoint answers 401, we answer 503 (not the user's fault).
    let wrong_client = Introspection::new(
        &server.url("/introspect"),
        ClientAuth::basic(TEST_CLIENT_ID, "nope"),
    )
    .unwrap()
    .with_audience("orders-api");
    assert_eq!(
        call(&app(wrong_client), "opaque-alice").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    let i = introspection(&server)
        .with_egress(portcullis::egress::Egress::default().with_timeout(Duration::from_millis(300)))
        .unwrap();
    let app = app(i);
    server.set_status(StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        call(&app, "opaque-alice").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    server.set_status(StatusCode::OK);
    server.set_body(Some("<html>maintenance</html>".into()));
    assert_eq!(
        call(&app, "opaque-alice").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    server.set_body(Some(r#"{"active":"yes","sub":"alice"}"#.into()));
    assert_eq!(
        call(&app, "opaque-alice").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    server.set_body(None);
    server.set_delay(Duration::from_secs(2));
    let started = std::time::Instant::now();
    assert_eq!(
        call(&app, "opaque-alice").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
    // Failures are not cached: once the endpoint is back, the token works.
    server.set_delay(Duration::ZERO);
    assert_eq!(call(&app, "opaque-alice").await.0, StatusCode::OK);

    let gone = Introspection::new("http://127.0.0.1:9/introspect", ClientAuth::basic("a", "b"))
        .unwrap()
        .with_audience("orders-api");
    assert_eq!(
        call(&self::app(gone), "opaque-alice").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn concurrent_requests_share_one_call_and_in_flight_is_bounded() {
    let server = KeyServer::start(jwks(&[])).await;
    server.add_introspected_token("opaque-alice", active("alice"));
    server.set_delay(Duration::from_millis(200));
    let app = app(introspection(&server).with_max_in_flight(2));
    let same = (0..20).map(|_| {
        let app = app.clone();
        tokio::spawn(async move { call(&app, "opaque-alice").await.0 })
    });
    for h in same.collect::<Vec<_>>() {
        assert_eq!(h.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(server.hits("/introspect"), 1);
    // Five different unknown tokens at once, at most two in flight: the rest get 503.
    let different = (0..5).map(|i| {
        let app = app.clone();
        tokio::spawn(async move { call(&app, &format!("unknown-{i}")).await.0 })
    });
    let mut statuses = Vec::new();
    for h in different.collect::<Vec<_>>() {
        statuses.push(h.await.unwrap());
    }
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::SERVICE_UNAVAILABLE)
    );
    assert!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
            .count()
            >= 3,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn an_introspection_without_audience_refuses_everything() {
    let server = KeyServer::start(jwks(&[])).await;
    server.add_introspected_token("opaque-alice", active("alice"));
    let i = Introspection::new(
        &server.url("/introspect"),
        ClientAuth::basic(TEST_CLIENT_ID, TEST_CLIENT_SECRET),
    )
    .unwrap();
    assert_eq!(
        call(&app(i.clone()), "opaque-alice").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app(i.without_audience_check()), "opaque-alice")
            .await
            .0,
        StatusCode::OK
    );
    let e = common::refusal(Introspection::new(
        "http://idp.example/introspect",
        ClientAuth::basic("a", "b"),
    ));
    assert!(e.contains("https"), "{e}");
}

/// The introspection request carries the client's credentials and the token: a
/// redirect, even to the same origin, is not followed (503), and the target never sees it.
#[tokio::test]
async fn redirects_are_not_followed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let reached = Arc::new(AtomicUsize::new(0));
    let seen = reached.clone();
    let endpoint = Router::new()
        .route(
            "/introspect",
            axum::routing::post(|| async {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(http::header::LOCATION, "/elsewhere")],
                )
            }),
        )
        .route(
            "/elsewhere",
            axum::routing::post(move || {
                seen.fetch_add(1, Ordering::SeqCst);
                async { axum::Json(active("mallory")) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, endpoint).await.unwrap() });
    let i = Introspection::new(
        &format!("http://{addr}/introspect"),
        ClientAuth::basic(TEST_CLIENT_ID, TEST_CLIENT_SECRET),
    )
    .unwrap()
    .with_issuer("https://as.example")
    .with_audience("orders-api");
    let (status, _) = call(&app(i), "opaque-token").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reached.load(Ordering::SeqCst), 0);
}
