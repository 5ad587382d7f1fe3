//! Failing cases for the holes a security review found: each test reproduces the attack
//! against a real router (and loopback key servers) and asserts it is refused.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use common::{Probe, basic, get, send};
use http::StatusCode;
use portcullis::Users;
use portcullis::basic::BasicAuth;
use portcullis::jwt::{
    Algorithm, BearerAuth, Issuer, JwksOptions, JwtVerifier, RemoteJwks, TokenCache, Validation,
};
use portcullis::limit::{AttemptLimiter, Limits};
use portcullis::testing::{KeyServer, TestKey, TokenBuilder, jwks, now};
use portcullis::{AuthLayer, ErrorKind, User, hash_password};

const AUD: &str = "api";

fn from(addr: [u8; 4], auth: &str) -> http::Request<Body> {
    get("/me")
        .header("authorization", auth)
        .extension(ConnectInfo(SocketAddr::from((addr, 40000))))
        .body(Body::empty())
        .unwrap()
}

async fn bearer(app: &Router, token: &str) -> common::Answer {
    send(
        app,
        get("/me")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

/// A memory limiter allowing `n` failures per user and client per minute.
fn limiter(n: u32) -> AttemptLimiter {
    AttemptLimiter::memory()
        .with_limits(Limits::default().per_user_client(n, Duration::from_secs(60)))
}

fn bearer_app(probe: &Probe, verifier: JwtVerifier) -> Router {
    probe
        .router("/me")
        .layer(AuthLayer::required(BearerAuth::new("api", verifier)))
}

/// Concurrent argon2 checks are bounded; the overflow is a 503 with `Retry-After`, never
/// an unbounded pile of 19 MiB verifications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_hashing_is_bounded_and_overflow_is_503() {
    let phc = hash_password("right").unwrap();
    let users = Users::new()
        .with_user("admin", User::hashed(&phc).unwrap())
        .with_max_concurrent_hashes(1)
        .with_hash_queue_timeout(Duration::from_millis(5));
    let probe = Probe::default();
    let app = probe
        .router("/me")
        .layer(AuthLayer::required(BasicAuth::new("r").with_users(users)));
    let guesses = (0..16).map(|i| {
        let app = app.clone();
        async move { send(&app, from([10, 0, 0, i], &basic("admin", "wrong"))).await }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let busy: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(!busy.is_empty(), "16 parallel argon2 checks with one slot");
    assert!(busy.iter().all(|a| a.headers.contains_key("retry-after")));
    assert!(answers.iter().all(|a| matches!(
        a.status,
        StatusCode::UNAUTHORIZED | StatusCode::SERVICE_UNAVAILABLE
    )));
    // Once the flood is over the real user gets in.
    let a = send(&app, from([10, 0, 0, 1], &basic("admin", "right"))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(probe.runs(), 1);
}

/// Parallel guesses from one client cannot slip past the throttle: attempts count
/// before the password is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_cannot_pass_the_throttle() {
    let phc = hash_password("right").unwrap();
    let auth = BasicAuth::new("r")
        .with_users(
            Users::new()
                .with_user("admin", User::hashed(&phc).unwrap())
                .with_hash_queue_timeout(Duration::from_secs(30)),
        )
        .with_limiter(limiter(3));
    let probe = Probe::default();
    let app = probe.router("/me").layer(AuthLayer::required(auth));
    let guesses = (0..40).map(|i| {
        let app = app.clone();
        let pass = if i == 39 { "right" } else { "wrong" };
        async move { send(&app, from([10, 0, 0, 9], &basic("admin", pass))).await }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let count = |s| answers.iter().filter(|a| a.status == s).count();
    assert_eq!(count(StatusCode::OK), 0, "the password was found");
    assert!(count(StatusCode::UNAUTHORIZED) <= 3);
    assert!(count(StatusCode::TOO_MANY_REQUESTS) >= 37);
    assert_eq!(probe.runs(), 0);
}

/// Without a client address the throttle says so, once, at error level; a caller-supplied
/// key keeps one client's failures from locking out another.
#[tokio::test]
async fn throttle_without_addresses_warns_and_takes_a_client_key() {
    let logs = common::logs::Logs::default();
    let _guard = logs.install(tracing::Level::ERROR);

    let users = || Users::new().with_user("alice", User::plain("right"));
    let plain = BasicAuth::new("r")
        .with_users(users())
        .with_limiter(limiter(2));
    let probe = Probe::default();
    let app = probe.router("/me").layer(AuthLayer::required(plain));
    let no_addr = |pass: &str| {
        get("/me")
            .header("authorization", basic("alice", pass))
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..3 {
        send(&app, no_addr("wrong")).await;
    }
    let log = logs.text();
    assert_eq!(log.matches("no client address").count(), 1, "{log}");
    assert!(log.contains("with_client_key"), "{log}");

    let keyed = BasicAuth::new("r")
        .with_users(users())
        .with_limiter(limiter(2).with_client_key(|req| {
            req.headers
                .get("x-client")?
                .to_str()
                .ok()
                .map(str::to_owned)
        }));
    let app = probe.router("/me").layer(AuthLayer::required(keyed));
    let as_client = |client: &str, pass: &str| {
        get("/me")
            .header("authorization", basic("alice", pass))
            .header("x-client", client)
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..3 {
        send(&app, as_client("attacker", "wrong")).await;
    }
    let a = send(&app, as_client("attacker", "right")).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    let a = send(&app, as_client("alice-laptop", "right")).await;
    assert_eq!(a.status, StatusCode::OK);
}

/// Once any user is hashed, a plain-secret user costs an argon2 run too: the check
/// takes a verification slot, just as an unknown name does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_secret_users_cost_an_argon2_run_in_a_hashed_table() {
    let phc = hash_password("pw").unwrap();
    let users = Arc::new(
        Users::new()
            .with_user("hashed", User::hashed(&phc).unwrap())
            .with_user("plain", User::plain("pw"))
            .with_max_concurrent_hashes(1)
            .with_hash_queue_timeout(Duration::from_millis(1)),
    );
    let busy = {
        let users = users.clone();
        tokio::spawn(async move { users.verify("hashed", "wrong").await.map(|_| ()) })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let err = users.verify("plain", "pw").await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Unavailable,
        "plain check skipped argon2"
    );
    assert_eq!(
        busy.await.unwrap().unwrap_err().kind(),
        ErrorKind::InvalidCredentials
    );
    assert!(users.verify("plain", "pw").await.is_ok());
    // A table of plain secrets alone needs no slot.
    let plain = Users::new()
        .with_user("plain", User::plain("pw"))
        .with_max_concurrent_hashes(1);
    assert!(plain.verify("plain", "pw").await.is_ok());
    assert_eq!(
        plain.verify("nobody", "pw").await.unwrap_err().kind(),
        ErrorKind::InvalidCredentials
    );
}

/// A verifier derived with `with_issuer` never accepts a token that a sibling verifier
/// (trusting another issuer) put in a shared cache.
#[tokio::test]
async fn token_cache_is_not_shared_across_issuer_sets() {
    let issuer = |iss: &str, key: TestKey, alg| {
        Issuer::new(
            key.key_set(),
            Validation::new([alg]).with_issuer(iss).with_audience(AUD),
        )
    };
    let base = JwtVerifier::new(issuer("https://a.test", TestKey::Rs256, Algorithm::RS256))
        .with_token_cache(TokenCache::new());
    let v1 = base
        .clone()
        .with_issuer(issuer("https://b.test", TestKey::Es256, Algorithm::ES256));
    let v2 = base
        .clone()
        .with_issuer(issuer("https://c.test", TestKey::EdDsa, Algorithm::EdDSA));
    let probe = Probe::default();
    let (app1, app2) = (bearer_app(&probe, v1), bearer_app(&probe, v2));
    let c_token = TokenBuilder::new(TestKey::EdDsa)
        .with_claim("iss", "https://c.test")
        .with_claim("aud", AUD)
        .sign();
    assert_eq!(bearer(&app2, &c_token).await.status, StatusCode::OK);
    assert_eq!(bearer(&app2, &c_token).await.status, StatusCode::OK);
    assert_eq!(
        bearer(&app1, &c_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(probe.runs(), 2);
}

/// `max_age` binds cache hits too.
#[tokio::test]
async fn token_cache_honours_max_age() {
    let v = JwtVerifier::new(Issuer::new(
        TestKey::Hs256.key_set(),
        Validation::new([Algorithm::HS256])
            .with_audience(AUD)
            .with_leeway(Duration::ZERO)
            .with_max_age(Duration::from_secs(1)),
    ))
    .with_token_cache(TokenCache::new());
    let probe = Probe::default();
    let app = bearer_app(&probe, v);
    let t = TokenBuilder::new(TestKey::Hs256)
        .with_claim("aud", AUD)
        .with_claim("iat", now())
        .with_claim("exp", now() + 3600)
        .sign();
    assert_eq!(bearer(&app, &t).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(bearer(&app, &t).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(probe.runs(), 1);
}

fn remote(server: &KeyServer, opts: JwksOptions) -> RemoteJwks {
    RemoteJwks::new(&server.url("/jwks.json"), [Algorithm::RS256], opts).unwrap()
}

fn short_lived_keys() -> JwksOptions {
    JwksOptions::default()
        .with_ttl_bounds(Duration::from_millis(100), Duration::from_millis(100))
        .with_max_stale(Duration::from_millis(100))
        .with_failure_backoff(Duration::ZERO)
}

fn rs_token() -> String {
    TokenBuilder::new(TestKey::Rs256)
        .with_claim("aud", AUD)
        .sign()
}

/// A request that waited on a failing fetch applies the same staleness bound as the
/// one that fetched: both get 503 once the last good set is too old.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_on_a_failing_fetch_do_not_get_over_stale_keys() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    server.set_cache_control(Some("max-age=0"));
    let v = JwtVerifier::new(Issuer::new(
        remote(&server, short_lived_keys()),
        Validation::new([Algorithm::RS256]).with_audience(AUD),
    ));
    let probe = Probe::default();
    let app = bearer_app(&probe, v);
    let t = rs_token();
    assert_eq!(bearer(&app, &t).await.status, StatusCode::OK);
    server.set_status(StatusCode::INTERNAL_SERVER_ERROR);
    server.set_delay(Duration::from_millis(300));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (a, b) = tokio::join!(bearer(&app, &t), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        bearer(&app, &t).await
    });
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(b.status, StatusCode::SERVICE_UNAVAILABLE, "the waiter");
    assert_eq!(probe.runs(), 1);
}

/// A cached token is only as good as the key set it was verified under: past the set's
/// staleness bound, the cache serves nothing and the outage shows (503).
#[tokio::test]
async fn cached_tokens_do_not_outlive_the_key_sets_staleness_bound() {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    server.set_cache_control(Some("max-age=0"));
    let v = JwtVerifier::new(Issuer::new(
        remote(&server, short_lived_keys()),
        Validation::new([Algorithm::RS256]).with_audience(AUD),
    ))
    .with_token_cache(TokenCache::new());
    let probe = Probe::default();
    let app = bearer_app(&probe, v);
    let t = rs_token();
    // The second verification is stamped with the fetched set's generation: cached.
    for _ in 0..2 {
        assert_eq!(bearer(&app, &t).await.status, StatusCode::OK);
    }
    server.set_status(StatusCode::INTERNAL_SERVER_ERROR);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        bearer(&app, &t).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // The IdP comes back: served again.
    server.set_status(StatusCode::OK);
    assert_eq!(bearer(&app, &t).await.status, StatusCode::OK);
    assert_eq!(probe.runs(), 3);
}

/// Without an audience configured, a token for another service is refused; the opt-out
/// is explicit.
#[tokio::test]
async fn tokens_for_another_audience_are_refused_by_default() {
    let probe = Probe::default();
    let keys = || TestKey::Hs256.key_set();
    let unset = bearer_app(
        &probe,
        JwtVerifier::new(Issuer::new(keys(), Validation::new([Algorithm::HS256]))),
    );
    let t = TokenBuilder::new(TestKey::Hs256)
        .with_claim("aud", "some-other-service")
        .sign();
    let a = bearer(&unset, &t).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.www_authenticate()[0].contains("invalid_token"));
    let opted_out = bearer_app(
        &probe,
        JwtVerifier::new(Issuer::new(
            keys(),
            Validation::new([Algorithm::HS256]).without_audience_check(),
        )),
    );
    assert_eq!(bearer(&opted_out, &t).await.status, StatusCode::OK);
    assert_eq!(probe.runs(), 1);
}

/// RSA keys under 2048 bits are refused when configured, from PEM as from a JWKS.
#[test]
fn weak_rsa_keys_are_refused_at_configuration() {
    let pem = TestKey::Rs256Weak.public_pem();
    assert!(
        portcullis::jwt::KeySet::new()
            .with_pem(None, Algorithm::RS256, pem.as_bytes())
            .is_err_and(|e| e.message() == "RSA key too small")
    );
    let doc = serde_json::json!({"keys": [TestKey::Rs256Weak.public_jwk()]}).to_string();
    let set = portcullis::jwt::KeySet::from_jwks(doc.as_bytes(), &[Algorithm::RS256], false);
    assert!(set.unwrap().is_empty());
}

/// A token without `jti` revoked by hash stays revoked when its ECDSA signature is
/// swapped for the other valid one (`s` to `n - s`): tokens are identified by what the
/// issuer signed, not by their signature's bytes.
#[tokio::test]
async fn a_second_ecdsa_signature_does_not_revive_a_revoked_token() {
    use portcullis::revocation::Revocations;
    let revocations = Revocations::memory();
    let verifier = JwtVerifier::new(Issuer::new(
        TestKey::Es256.key_set(),
        Validation::new([Algorithm::ES256])
            .with_issuer("https://issuer.test")
            .with_audience(AUD),
    ))
    .with_token_cache(TokenCache::new())
    .with_revocations(revocations.clone());
    let probe = Probe::default();
    let app = bearer_app(&probe, verifier.clone());
    let token = TokenBuilder::new(TestKey::Es256)
        .with_claim("iss", "https://issuer.test")
        .with_claim("aud", AUD)
        .with_claim("sub", "alice")
        .with_claim("iat", now())
        .with_claim("exp", now() + 600)
        .sign();
    let twin = common::other_ecdsa_signature(&token, false);
    assert_ne!(twin, token);
    // Both spellings are valid signatures: the attack needs no key.
    assert_eq!(bearer(&app, &token).await.status, StatusCode::OK);
    assert_eq!(bearer(&app, &twin).await.status, StatusCode::OK);
    let ctx = verifier.verify(&token).await.unwrap();
    assert_eq!(ctx.token_id(), None);
    revocations.revoke_context(&ctx, &token).await.unwrap();
    for (name, t) in [("original", &token), ("n - s twin", &twin)] {
        let a = bearer(&app, t).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{name}");
        assert!(a.www_authenticate()[0].contains("invalid_token"), "{name}");
    }
    // Revoking the twin refuses the original as well.
    let other = TokenBuilder::new(TestKey::Es256)
        .with_claim("iss", "https://issuer.test")
        .with_claim("aud", AUD)
        .with_claim("sub", "bob")
        .with_claim("iat", now())
        .with_claim("exp", now() + 600)
        .sign();
    let other_twin = common::other_ecdsa_signature(&other, false);
    let ctx = verifier.verify(&other_twin).await.unwrap();
    revocations.revoke_context(&ctx, &other_twin).await.unwrap();
    assert_eq!(bearer(&app, &other).await.status, StatusCode::UNAUTHORIZED);
}

/// Behind a trusted proxy that appends only `X-Forwarded-For` (nginx, AWS ALB, HAProxy),
/// a client's own `Forwarded: for=<random>` passes through untouched; it must not give
/// each forged token a fresh client to count against.
#[tokio::test]
async fn a_clients_forwarded_header_does_not_beat_the_proxys_x_forwarded_for() {
    use portcullis::TrustedProxies;
    let limiter = AttemptLimiter::memory()
        .with_credential_limits(Limits::credentials().per_client(30, Duration::from_secs(60)))
        .with_trusted_proxies(TrustedProxies::new(["10.0.0.0/8"]).unwrap());
    let verifier = JwtVerifier::new(Issuer::new(
        TestKey::Rs256.key_set(),
        Validation::new([Algorithm::RS256]).with_audience(AUD),
    ));
    let probe = Probe::default();
    let app = probe.router("/me").layer(AuthLayer::required(
        BearerAuth::new("api", verifier).with_limiter(limiter),
    ));
    let (mut refused, mut limited) = (0, 0);
    for i in 0..300u32 {
        let forged = TokenBuilder::new(TestKey::Rs256Next)
            .with_claim("sub", format!("user-{i}"))
            .with_claim("aud", AUD)
            .with_claim("exp", now() + 600)
            .sign();
        let mut req = get("/me")
            .header("authorization", format!("Bearer {forged}"))
            .header(
                "forwarded",
                format!("for=198.18.{}.{}", i / 250, i % 250 + 1),
            )
            // What the proxy appended: the client it saw.
            .header("x-forwarded-for", "203.0.113.50")
            .body(Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 2], 40000))));
        match send(&app, req).await.status {
            StatusCode::UNAUTHORIZED => refused += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(refused, 30, "the client got more than its 30 tries");
    assert_eq!(limited, 270);
    assert_eq!(probe.runs(), 0);
}

/// Requests dropped in the middle of an introspection call (a timeout layer in front,
/// a client that resets its stream) free their token's in-flight slot: abandoning more
/// calls than there are slots does not make later tokens 503.
#[tokio::test]
async fn cancelled_introspection_calls_free_their_slots() {
    use portcullis::introspection::{ClientAuth, Introspection};
    use portcullis::testing::{TEST_CLIENT_ID, TEST_CLIENT_SECRET};
    use tower::ServiceExt;
    let server = KeyServer::start(jwks(&[])).await;
    let introspection = Introspection::new(
        &server.url("/introspect"),
        ClientAuth::basic(TEST_CLIENT_ID, TEST_CLIENT_SECRET),
    )
    .unwrap()
    .with_audience("orders-api")
    .with_max_in_flight(8);
    let probe = Probe::default();
    let app = probe
        .router("/me")
        .layer(AuthLayer::required(BearerAuth::introspection(
            "orders-api",
            introspection,
        )));
    let timed_out = tower::timeout::Timeout::new(app.clone(), Duration::from_millis(50));
    server.set_delay(Duration::from_millis(400));
    for i in 0..40 {
        let req = get("/me")
            .header("authorization", format!("Bearer abandoned-{i}"))
            .body(Body::empty())
            .unwrap();
        // The timeout layer drops the request's future while the call is in flight.
        let dropped = timed_out.clone().oneshot(req).await;
        assert!(
            dropped.is_err_and(|e| e.is::<tower::timeout::error::Elapsed>()),
            "call {i}"
        );
    }
    // A stream reset is the same thing: the future is dropped after its first poll.
    for i in 0..8 {
        let req = get("/me")
            .header("authorization", format!("Bearer reset-{i}"))
            .body(Body::empty())
            .unwrap();
        let mut call = Box::pin(app.clone().oneshot(req));
        let first = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::future::Future::poll(call.as_mut(), cx))
        })
        .await;
        assert!(first.is_pending());
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(call);
    }
    server.set_delay(Duration::ZERO);
    server.add_introspected_token(
        "opaque-alice",
        serde_json::json!({"active": true, "aud": "orders-api", "sub": "alice", "exp": now() + 600}),
    );
    let a = bearer(&app, "opaque-alice").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let unknown = bearer(&app, "opaque-unknown").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED, "{}", unknown.body);
}

/// `revoke_subject(.., as_of)` with `as_of` = now refuses tokens issued earlier in the
/// same second (times are whole seconds), and admits those issued a second later.
#[tokio::test]
async fn revoking_a_subject_as_of_now_spares_nothing_issued_in_that_second() {
    use portcullis::revocation::Revocations;
    let revocations = Revocations::memory();
    let verifier = JwtVerifier::new(Issuer::new(
        TestKey::Rs256.key_set(),
        Validation::new([Algorithm::RS256])
            .with_issuer("https://issuer.test")
            .with_audience(AUD),
    ))
    .with_token_cache(TokenCache::new())
    .with_revocations(revocations.clone());
    let probe = Probe::default();
    let app = bearer_app(&probe, verifier);
    let token = |iat: u64| {
        TokenBuilder::new(TestKey::Rs256)
            .with_claim("iss", "https://issuer.test")
            .with_claim("aud", AUD)
            .with_claim("sub", "alice")
            .with_claim("iat", iat)
            .with_claim("exp", now() + 600)
            .sign()
    };
    let t = now();
    let (before, same, after) = (token(t - 1), token(t), token(t + 1));
    for tok in [&before, &same, &after] {
        assert_eq!(bearer(&app, tok).await.status, StatusCode::OK);
    }
    revocations
        .revoke_subject(Some("https://issuer.test"), "alice", t)
        .await
        .unwrap();
    assert_eq!(bearer(&app, &before).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        bearer(&app, &same).await.status,
        StatusCode::UNAUTHORIZED,
        "issued in the second of the revocation"
    );
    assert_eq!(bearer(&app, &after).await.status, StatusCode::OK);
}
