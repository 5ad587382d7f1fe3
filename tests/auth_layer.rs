//! `AuthLayer` with an authenticator that waits before answering: the layer's pending path
//! (the boxed future polled with the task's waker) behaves as its first-poll fast path.

mod common;

use std::time::Duration;

use axum::body::Body;
use common::{Probe, get, send};
use http::StatusCode;
use http::request::Parts;
use portcullis::{AuthContext, AuthError, AuthLayer, Authenticator, Challenge, Scheme};

/// Accepts `x-user: alice` after parking the task, rejects any other value.
struct SlowUser;

impl Authenticator for SlowUser {
    fn scheme(&self) -> Scheme {
        Scheme::Custom
    }
    fn challenge(&self) -> Option<Challenge> {
        None
    }
    fn detect(&self, parts: &Parts) -> bool {
        parts.headers.contains_key("x-user")
    }
    async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(2)).await;
        match parts.headers["x-user"].to_str() {
            Ok("alice") => Ok(AuthContext::builder("alice", Scheme::Custom).build()),
            _ => Err(AuthError::invalid("unknown user")),
        }
    }
}

async fn status(app: &axum::Router, user: Option<&str>) -> StatusCode {
    let mut r = get("/me");
    if let Some(u) = user {
        r = r.header("x-user", u);
    }
    send(app, r.body(Body::empty()).unwrap()).await.status
}

#[tokio::test]
async fn a_waiting_authenticator_is_enforced_like_a_ready_one() {
    let probe = Probe::default();
    let app = probe.router("/me").layer(AuthLayer::required(SlowUser));
    assert_eq!(status(&app, Some("alice")).await, StatusCode::OK);
    assert_eq!(
        status(&app, Some("mallory")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status(&app, None).await, StatusCode::UNAUTHORIZED);
    // Many at once through clones of one service: each gets its own decision.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let app = app.clone();
            let user = if i % 2 == 0 { "alice" } else { "eve" };
            tokio::spawn(async move { status(&app, Some(user)).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    for (i, s) in answers.iter().enumerate() {
        let want = if i % 2 == 0 {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(*s, want, "request {i}");
    }
    assert_eq!(probe.runs(), 26);
}

/// Accepts `Authorization: BearerX <anything>`: a custom scheme whose name starts like a
/// built-in one.
struct BearerX;

impl Authenticator for BearerX {
    fn scheme(&self) -> Scheme {
        Scheme::Custom
    }
    fn challenge(&self) -> Option<Challenge> {
        None
    }
    fn detect(&self, parts: &Parts) -> bool {
        parts
            .headers
            .get("authorization")
            .is_some_and(|v| v.as_bytes().starts_with(b"BearerX "))
    }
    async fn authenticate(&self, _parts: &Parts) -> Result<AuthContext, AuthError> {
        Ok(AuthContext::builder("x-client", Scheme::Custom).build())
    }
}

#[tokio::test]
async fn scheme_detection_is_exact_so_a_chained_custom_scheme_sees_its_header() {
    use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, Validation};
    let verifier = JwtVerifier::new(Issuer::new(
        portcullis::testing::TestKey::Hs256.key_set(),
        Validation::new([Algorithm::HS256]).with_audience("api"),
    ));
    let basic = portcullis::basic::BasicAuth::new("r");
    let probe = Probe::default();
    let app = probe.router("/me").layer(
        AuthLayer::required(BearerAuth::new("api", verifier))
            .or(basic)
            .or(BearerX),
    );
    for header in ["BearerX abc", "BasicX abc"] {
        let req = get("/me")
            .header("authorization", header)
            .body(Body::empty())
            .unwrap();
        let a = send(&app, req).await;
        let want = if header.starts_with("BearerX") {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(a.status, want, "{header}");
    }
    assert_eq!(probe.runs(), 1);
}

/// Answers `x-user: alice` at once (as alice) and refuses `x-user: mallory` at once;
/// leaves any other user to `authenticate`, which admits them under their own name.
struct QuickThenSlow;

impl Authenticator for QuickThenSlow {
    fn scheme(&self) -> Scheme {
        Scheme::Custom
    }
    fn challenge(&self) -> Option<Challenge> {
        None
    }
    fn detect(&self, parts: &Parts) -> bool {
        parts.headers.contains_key("x-user")
    }
    async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        tokio::task::yield_now().await;
        let user = parts.headers["x-user"].to_str().unwrap_or("?");
        Ok(AuthContext::builder(user, Scheme::Custom).build())
    }
    fn authenticate_now(&self, parts: &Parts) -> Option<Result<AuthContext, AuthError>> {
        match parts.headers["x-user"].to_str() {
            Ok("alice") => Some(Ok(AuthContext::builder("alice", Scheme::Custom).build())),
            Ok("mallory") => Some(Err(AuthError::invalid("refused at once"))),
            _ => None,
        }
    }
}

#[tokio::test]
async fn an_answer_given_at_once_is_final_and_none_falls_through_to_authenticate() {
    let app = axum::Router::new()
        .route(
            "/me",
            axum::routing::get(|ctx: AuthContext| async move { ctx.subject().to_owned() }),
        )
        .layer(AuthLayer::required(QuickThenSlow));
    let who = |user: &'static str| {
        let app = app.clone();
        async move {
            send(
                &app,
                get("/me")
                    .header("x-user", user)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
        }
    };
    let alice = who("alice").await;
    assert_eq!(alice.status, StatusCode::OK);
    assert_eq!(alice.body, "alice");
    // Refused at once: `authenticate`, which would admit anyone, is never asked.
    assert_eq!(who("mallory").await.status, StatusCode::UNAUTHORIZED);
    let bob = who("bob").await;
    assert_eq!(bob.status, StatusCode::OK);
    assert_eq!(bob.body, "bob");
}
