//! `AuthLayer` with an authenticator that waits before answering: the layer's pending path
//! (the boxed future polled with the task's waker) behaves as its first-poll fast path.

mod common;

use std::time::Duration;

use axum::body::Body;
use common::{Probe, get, send};
use http::HeaderValue;
use http::StatusCode;
use http::request::Parts;
use portcullis::{AuthContext, AuthError, AuthLayer, Authenticator, Challenge, Check, Scheme};

/// Accepts `x-user: alice` after parking the task, rejects any other value.
struct SlowUser;

impl Authenticator for SlowUser {
    type Credential = HeaderValue;
    fn scheme(&self) -> Scheme {
        Scheme::Custom
    }
    fn challenge(&self) -> Option<Challenge> {
        None
    }
    fn check(&self, parts: &Parts) -> Check<HeaderValue> {
        match parts.headers.get("x-user") {
            Some(user) => Check::Pending(user.clone()),
            None => Check::Absent,
        }
    }
    async fn authenticate(&self, user: HeaderValue, _: &Parts) -> Result<AuthContext, AuthError> {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(2)).await;
        match user.to_str() {
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
    type Credential = ();
    fn scheme(&self) -> Scheme {
        Scheme::Custom
    }
    fn challenge(&self) -> Option<Challenge> {
        None
    }
    fn check(&self, parts: &Parts) -> Check<()> {
        match parts.headers.get("authorization") {
            Some(v) if v.as_bytes().starts_with(b"BearerX ") => Check::Pending(()),
            _ => Check::Absent,
        }
    }
    async fn authenticate(&self, (): (), _parts: &Parts) -> Result<AuthContext, AuthError> {
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
    type Credential = HeaderValue;
    fn scheme(&self) -> Scheme {
        Scheme::Custom
    }
    fn challenge(&self) -> Option<Challenge> {
        None
    }
    fn check(&self, parts: &Parts) -> Check<HeaderValue> {
        let Some(user) = parts.headers.get("x-user") else {
            return Check::Absent;
        };
        match user.as_bytes() {
            b"alice" => Check::Ready(Ok(AuthContext::builder("alice", Scheme::Custom).build())),
            b"mallory" => Check::Ready(Err(AuthError::invalid("refused at once"))),
            _ => Check::Pending(user.clone()),
        }
    }
    async fn authenticate(&self, user: HeaderValue, _: &Parts) -> Result<AuthContext, AuthError> {
        tokio::task::yield_now().await;
        let user = user.to_str().unwrap_or("?");
        Ok(AuthContext::builder(user, Scheme::Custom).build())
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

/// Never finds a credential: beside another scheme, it makes the layer check every
/// scheme it holds rather than its only one.
struct Nothing;

impl Authenticator for Nothing {
    type Credential = std::convert::Infallible;
    fn scheme(&self) -> Scheme {
        Scheme::Custom
    }
    fn challenge(&self) -> Option<Challenge> {
        None
    }
    fn check(&self, _parts: &Parts) -> Check<Self::Credential> {
        Check::Absent
    }
    async fn authenticate(
        &self,
        never: Self::Credential,
        _parts: &Parts,
    ) -> Result<AuthContext, AuthError> {
        match never {}
    }
}

/// Each request, twice (the second meets warm caches), to a layer holding `scheme` alone
/// and to one holding it beside [`Nothing`]: status, challenge and body agree. Returns the
/// statuses of the first round in [`Mode::Required`](portcullis::Mode::Required).
async fn alone_and_beside_agree<A: Authenticator + Clone>(
    scheme: A,
    requests: &[Vec<(&'static str, String)>],
) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for optional in [false, true] {
        let (alone, beside) = if optional {
            (
                AuthLayer::optional(scheme.clone()),
                AuthLayer::optional(scheme.clone()).or(Nothing),
            )
        } else {
            (
                AuthLayer::required(scheme.clone()),
                AuthLayer::required(scheme.clone()).or(Nothing),
            )
        };
        let alone = Probe::default().router("/me").layer(alone);
        let beside = Probe::default().router("/me").layer(beside);
        for headers in requests {
            for round in 0..2 {
                let request = || {
                    let mut r = get("/me").method("POST");
                    for (name, value) in headers {
                        r = r.header(*name, value);
                    }
                    r.body(Body::empty()).unwrap()
                };
                let (a, b) = (
                    send(&alone, request()).await,
                    send(&beside, request()).await,
                );
                let what = format!("{headers:?}, optional {optional}, round {round}");
                assert_eq!(a.status, b.status, "{what}");
                assert_eq!(a.www_authenticate(), b.www_authenticate(), "{what}");
                assert_eq!(a.body, b.body, "{what}");
                if !optional && round == 0 {
                    statuses.push(a.status);
                }
            }
        }
    }
    statuses
}

#[tokio::test]
async fn a_session_alone_answers_as_it_does_beside_another_scheme() {
    use portcullis::session::{MemoryStore, NewSession, SessionConfig, SessionManager};
    let manager = SessionManager::new(MemoryStore::new(), SessionConfig::default());
    let login = |user: &'static str| {
        let manager = manager.clone();
        async move {
            let cookie = manager
                .login(&http::HeaderMap::new(), NewSession::new(user))
                .await
                .unwrap();
            cookie.pair().to_owned()
        }
    };
    let alice = login("alice").await;
    let ended = login("bob").await;
    manager
        .logout_everywhere("bob")
        .await
        .expect("the memory store answers");
    let cookie = |v: &str| vec![("cookie", v.to_owned())];
    let requests = [
        vec![],
        cookie(&alice),
        cookie(&format!("theme=dark; {alice}; lang=en")),
        cookie(&ended),
        cookie(&format!("{alice}; {alice}")),
        cookie("__Host-session=not-an-id"),
        cookie("__Host-session="),
        cookie("other=1"),
        vec![
            ("cookie", alice.clone()),
            ("sec-fetch-site", "cross-site".to_owned()),
        ],
        vec![("sec-fetch-site", "cross-site".to_owned())],
        // A header of a scheme this layer does not hold is not its business.
        vec![
            ("cookie", alice.clone()),
            ("authorization", "Bearer abc".to_owned()),
        ],
    ];
    let statuses = alone_and_beside_agree(manager.authenticator(), &requests).await;
    use StatusCode as S;
    let (ok, no, cross) = (S::OK, S::UNAUTHORIZED, S::FORBIDDEN);
    assert_eq!(statuses, [no, ok, ok, no, no, no, no, no, cross, no, ok]);
}

#[tokio::test]
async fn a_bearer_scheme_alone_answers_as_it_does_beside_another_scheme() {
    use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, TokenCache, Validation};
    use portcullis::testing::{TestKey, TokenBuilder};
    let verifier = JwtVerifier::new(Issuer::new(
        TestKey::Hs256.key_set(),
        Validation::new([Algorithm::HS256]).with_audience("api"),
    ))
    .with_token_cache(TokenCache::new());
    let good = TokenBuilder::new(TestKey::Hs256)
        .with_claim("aud", "api")
        .sign();
    let wrong_audience = TokenBuilder::new(TestKey::Hs256)
        .with_claim("aud", "other")
        .sign();
    let auth = |v: String| vec![("authorization", v)];
    let requests = [
        vec![],
        auth(format!("Bearer {good}")),
        auth(format!("bearer   {good}  ")),
        auth(format!("Bearer {wrong_audience}")),
        auth("Bearer".to_owned()),
        auth("Bearer ".to_owned()),
        auth("Bearer a b".to_owned()),
        auth("Bearer é".to_owned()),
        auth(format!("BearerX {good}")),
        auth("Basic YTpi".to_owned()),
        vec![("cookie", format!("token={good}"))],
    ];
    let header_only = BearerAuth::new("api", verifier.clone());
    let statuses = alone_and_beside_agree(header_only, &requests).await;
    use StatusCode as S;
    let (ok, no, bad) = (S::OK, S::UNAUTHORIZED, S::BAD_REQUEST);
    assert_eq!(statuses, [no, ok, ok, no, bad, bad, bad, bad, no, no, no]);
    let with_cookie = BearerAuth::new("api", verifier)
        .with_cookie("token")
        .unwrap();
    let mut requests = requests.to_vec();
    requests.push(vec![
        ("cookie", format!("token={good}")),
        ("authorization", format!("Bearer {good}")),
    ]);
    requests.push(vec![("cookie", format!("token={good}; token={good}"))]);
    let statuses = alone_and_beside_agree(with_cookie, &requests).await;
    assert_eq!(
        statuses,
        [no, ok, ok, no, bad, bad, bad, bad, no, no, ok, bad, bad]
    );
}

#[tokio::test]
async fn an_identity_proxy_alone_answers_as_it_does_beside_another_scheme() {
    use portcullis::iap::IdentityProxy;
    use portcullis::testing::{KeyServer, TestKey, TokenBuilder, jwks};
    const AUD: &str = "/projects/1/global/backendServices/2";
    let server = KeyServer::start(jwks(&[TestKey::Es256])).await;
    let proxy = IdentityProxy::google_iap(AUD)
        .unwrap()
        .with_keys_url(&server.url("/jwks.json"))
        .unwrap();
    let token = |aud: &str| {
        TokenBuilder::new(TestKey::Es256)
            .with_claim("aud", aud)
            .with_claim("iss", "https://cloud.google.com/iap")
            .with_claim("email", "alice@example.com")
            .sign()
    };
    let (good, other_backend) = (token(AUD), token("/projects/1/global/backendServices/3"));
    let assertion = |v: &str| ("x-goog-iap-jwt-assertion", v.to_owned());
    let requests = [
        vec![],
        vec![assertion(&good)],
        vec![assertion(&format!(" {good} "))],
        vec![assertion(&other_backend)],
        vec![assertion(&good), assertion(&good)],
        vec![assertion("not a token")],
        vec![
            assertion(&good),
            ("sec-fetch-site", "cross-site".to_owned()),
        ],
        vec![("authorization", format!("Bearer {good}"))],
    ];
    let statuses = alone_and_beside_agree(proxy, &requests).await;
    use StatusCode as S;
    let (ok, no, bad) = (S::OK, S::UNAUTHORIZED, S::BAD_REQUEST);
    assert_eq!(statuses, [no, ok, ok, no, bad, no, S::FORBIDDEN, no]);
}

#[tokio::test]
async fn cloudflare_access_alone_answers_as_it_does_beside_another_scheme() {
    use portcullis::iap::IdentityProxy;
    use portcullis::testing::{KeyServer, TestKey, TokenBuilder, jwks};
    const ISS: &str = "https://acme.cloudflareaccess.com";
    const AUD: &str = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let access = IdentityProxy::cloudflare_access("acme", AUD)
        .unwrap()
        .with_keys_url(&server.url("/cdn-cgi/access/certs"))
        .unwrap();
    let token = |aud: &str| {
        TokenBuilder::new(TestKey::Rs256)
            .with_claim("iss", ISS)
            .with_claim("aud", serde_json::json!([aud]))
            .with_claim("email", "alice@acme.test")
            .with_claim("type", "app")
            .sign()
    };
    let (good, other_app) = (token(AUD), token("another-application"));
    let assertion = |v: &str| ("cf-access-jwt-assertion", v.to_owned());
    let cookie = |v: &str| ("cookie", format!("CF_Authorization={v}"));
    let requests = [
        vec![],
        vec![assertion(&good)],
        vec![assertion(&other_app)],
        vec![assertion(&good), assertion(&good)],
        vec![
            assertion(&good),
            ("sec-fetch-site", "cross-site".to_owned()),
        ],
        vec![cookie(&good)],
        vec![cookie(&good), cookie(&good)],
        vec![assertion(&good), cookie(&other_app)],
    ];
    let statuses = alone_and_beside_agree(access.clone(), &requests).await;
    use StatusCode as S;
    let (ok, no, bad) = (S::OK, S::UNAUTHORIZED, S::BAD_REQUEST);
    assert_eq!(statuses, [no, ok, no, bad, S::FORBIDDEN, no, no, ok]);
    let statuses = alone_and_beside_agree(access.with_cookie().unwrap(), &requests).await;
    assert_eq!(statuses, [no, ok, no, bad, S::FORBIDDEN, ok, no, ok]);
}
