//! HTTP Basic through the real router: every rule with its failing case.

mod common;

use std::time::Duration;

use axum::body::Body;
use common::{Probe, basic, get, send};
use http::StatusCode;
use portcullis::User;
use portcullis::basic::BasicAuth;
use portcullis::limit::{AttemptLimiter, Limits};
use portcullis::{AuthContext, AuthError, AuthLayer, LoginRedirect, Scheme, hash_password};

fn auth() -> BasicAuth {
    BasicAuth::new("admin \"zone\"")
        .with_user(
            "admin",
            User::plain("s3cret:with:colons").with_roles(["admin"]),
        )
        .with_user(
            "hashed",
            User::hashed(&hash_password("pw").unwrap()).unwrap(),
        )
}

#[tokio::test]
async fn accepts_plain_and_hashed_users() {
    let probe = Probe::default();
    let app = probe.router("/me").layer(AuthLayer::required(auth()));
    let a = send(
        &app,
        get("/me")
            .header("authorization", basic("admin", "s3cret:with:colons"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["subject"], "admin");
    assert_eq!(a.json()["scheme"], "basic");
    assert_eq!(a.json()["roles"][0], "admin");
    let a = send(
        &app,
        get("/me")
            .header("authorization", basic("hashed", "pw"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    // Lower-case scheme and extra spaces are fine (RFC 7235: scheme is case-insensitive).
    let lower = basic("admin", "s3cret:with:colons").replacen("Basic ", "basic   ", 1);
    let a = send(
        &app,
        get("/me")
            .header("authorization", lower)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(probe.runs(), 3);
}

#[tokio::test]
async fn missing_gets_challenge_with_escaped_realm_and_charset() {
    let probe = Probe::default();
    let app = probe.router("/me").layer(AuthLayer::required(auth()));
    let a = send(&app, get("/me").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.www_authenticate(),
        ["Basic realm=\"admin \\\"zone\\\"\", charset=\"UTF-8\""]
    );
    assert_eq!(a.json()["error"], "unauthorized");
    assert_eq!(a.headers["cache-control"], "no-store");
    assert_eq!(probe.runs(), 0);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let probe = Probe::default();
    let app = probe.router("/me").layer(AuthLayer::required(auth()));
    let wrong = send(
        &app,
        get("/me")
            .header("authorization", basic("admin", "nope"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let unknown = send(
        &app,
        get("/me")
            .header("authorization", basic("eve", "s3cret:with:colons"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let hashed_wrong = send(
        &app,
        get("/me")
            .header("authorization", basic("hashed", "PW"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    for a in [&wrong, &unknown, &hashed_wrong] {
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.body, wrong.body);
        assert_eq!(a.www_authenticate(), wrong.www_authenticate());
    }
    assert!(!wrong.body.contains("admin"));
    assert_eq!(probe.runs(), 0);
}

#[tokio::test]
async fn malformed_headers_are_401_without_panic() {
    let probe = Probe::default();
    let app = probe.router("/me").layer(AuthLayer::required(auth()));
    let cases: Vec<Vec<u8>> = vec![
        b"Basic".to_vec(),
        b"Basic ".to_vec(),
        b"Basic !!!!".to_vec(),
        b"Basic YWRtaW4=".to_vec(), // "admin": no colon
        b"Basic /w==".to_vec(),     // 0xff: not UTF-8
        b"Basic \xff\xfe".to_vec(), // raw non-UTF-8 bytes in the header
        b"Basic OnB3".to_vec(),     // ":pw": empty user
    ];
    for c in cases {
        let req = get("/me")
            .header("authorization", http::HeaderValue::from_bytes(&c).unwrap())
            .body(Body::empty())
            .unwrap();
        let a = send(&app, req).await;
        assert!(
            a.status == StatusCode::UNAUTHORIZED,
            "{:?} -> {}",
            String::from_utf8_lossy(&c),
            a.status
        );
        assert!(a.www_authenticate()[0].starts_with("Basic realm="));
    }
    assert_eq!(probe.runs(), 0);
}

#[tokio::test]
async fn oversized_header_rejected_before_parsing() {
    let probe = Probe::default();
    let app = probe.router("/me").layer(AuthLayer::required(auth()));
    let huge = format!("Basic {}", "A".repeat(9000));
    let a = send(
        &app,
        get("/me")
            .header("authorization", huge)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"], "invalid_request");
    // Under the layer cap but over the Basic field caps: still refused.
    let long = basic("admin", &"x".repeat(2000));
    let a = send(
        &app,
        get("/me")
            .header("authorization", long)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(probe.runs(), 0);
}

#[tokio::test]
async fn optional_mode_missing_passes_invalid_rejected() {
    let probe = Probe::default();
    let app = probe.router("/whoami").layer(AuthLayer::optional(auth()));
    let a = send(&app, get("/whoami").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["authenticated"], false);
    let a = send(
        &app,
        get("/whoami")
            .header("authorization", basic("admin", "bad"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = send(
        &app,
        get("/whoami")
            .header("authorization", "Basic %%%")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(probe.runs(), 1);
}

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let probe = Probe::default();
    let app = probe.router("/me").layer(AuthLayer::required(auth()));
    let req = get("/me")
        .header("authorization", basic("admin", "s3cret:with:colons"))
        .header("authorization", basic("hashed", "pw"))
        .body(Body::empty())
        .unwrap();
    let a = send(&app, req).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"], "conflicting_credentials");
    assert_eq!(probe.runs(), 0);
}

#[tokio::test]
async fn cors_preflight_passes_untouched() {
    let probe = Probe::default();
    let app = probe.router("/me").layer(AuthLayer::required(auth()));
    let req = get("/me")
        .method("OPTIONS")
        .header("origin", "https://other.example")
        .header("access-control-request-method", "POST")
        .body(Body::empty())
        .unwrap();
    let a = send(&app, req).await;
    assert_eq!(a.status, StatusCode::OK);
    // A plain OPTIONS is not a preflight and needs credentials.
    let a = send(
        &app,
        get("/me").method("OPTIONS").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // Access-Control-Request-Method without Origin is no preflight either.
    let a = send(
        &app,
        get("/me")
            .method("OPTIONS")
            .header("access-control-request-method", "POST")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(probe.runs(), 1);
}

#[tokio::test]
async fn a_preflight_gets_no_exemption_from_the_policy_layer() {
    use portcullis::policy::{PolicyLayer, Rule};
    let probe = Probe::default();
    let app = probe
        .router("/admin/purge")
        .route_layer(PolicyLayer::new(Rule::role("admin")))
        .layer(AuthLayer::required(auth()));
    let req = get("/admin/purge")
        .method("OPTIONS")
        .header("origin", "https://other.example")
        .header("access-control-request-method", "DELETE")
        .body(Body::empty())
        .unwrap();
    let a = send(&app, req).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(probe.runs(), 0);
}

#[tokio::test]
async fn async_verifier_and_store_outage() {
    let auth = BasicAuth::new("db").with_verifier(|user: String, pass: String| async move {
        match (user.as_str(), pass.as_str()) {
            ("svc", "pw") => Ok(Some(
                AuthContext::builder(user, Scheme::Basic)
                    .with_roles(["svc"])
                    .build(),
            )),
            ("down", _) => Err(AuthError::unavailable("database down")),
            _ => Ok(None),
        }
    });
    let probe = Probe::default();
    let app = probe.router("/me").layer(AuthLayer::required(auth));
    let ok = send(
        &app,
        get("/me")
            .header("authorization", basic("svc", "pw"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    let bad = send(
        &app,
        get("/me")
            .header("authorization", basic("svc", "no"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let down = send(
        &app,
        get("/me")
            .header("authorization", basic("down", "x"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!down.body.contains("database"));
    assert_eq!(probe.runs(), 1);
}

#[tokio::test]
async fn throttle_returns_429_with_retry_after_then_recovers_on_window() {
    let auth = auth().with_limiter(
        AttemptLimiter::memory()
            .with_limits(Limits::default().per_user_client(3, Duration::from_secs(60))),
    );
    let probe = Probe::default();
    let app = probe.router("/me").layer(AuthLayer::required(auth));
    for _ in 0..3 {
        let a = send(
            &app,
            get("/me")
                .header("authorization", basic("admin", "bad"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    // Locked: even the right password is refused without being checked.
    let a = send(
        &app,
        get("/me")
            .header("authorization", basic("admin", "s3cret:with:colons"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // Other users are not affected.
    let a = send(
        &app,
        get("/me")
            .header("authorization", basic("hashed", "pw"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn custom_responder_redirects_browsers() {
    let probe = Probe::default();
    let app = probe
        .router("/page")
        .layer(AuthLayer::required(auth()).with_responder(LoginRedirect::new("/login")));
    let a = send(
        &app,
        get("/page?x=1")
            .header("accept", "text/html")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers["location"], "/login?next=%2Fpage%3Fx%3D1");
    let a = send(
        &app,
        get("/page")
            .header("accept", "application/json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_redirect_never_points_off_site_and_keeps_the_nest_prefix() {
    let probe = Probe::default();
    let app = axum::Router::new().fallback_service(
        probe
            .router("/{*rest}")
            .layer(AuthLayer::required(auth()).with_responder(LoginRedirect::new("/login"))),
    );
    let html = |path: &str| {
        get(path)
            .header("accept", "text/html")
            .body(Body::empty())
            .unwrap()
    };
    let a = send(&app, html("//evil.example/x")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers["location"], "/login?next=%2F");
    let nested = axum::Router::new().nest(
        "/app",
        probe
            .router("/me")
            .layer(AuthLayer::required(auth()).with_responder(LoginRedirect::new("/login"))),
    );
    let a = send(&nested, html("/app/me?tab=1")).await;
    assert_eq!(a.headers["location"], "/login?next=%2Fapp%2Fme%3Ftab%3D1");
    assert_eq!(probe.runs(), 0);
}

/// A wiring mistake, not a client error (see `tests/first_hour.rs`).
#[tokio::test]
async fn extractor_without_layer_is_a_500() {
    let app = axum::Router::new().route(
        "/x",
        axum::routing::get(|ctx: AuthContext| async move { ctx.subject().to_owned() }),
    );
    let a = send(&app, get("/x").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
}
