//! Metrics and spans (feature `metrics`): each outcome moves its counter, and no token,
//! cookie, password or secret reaches a span, an event or a metric.
#![cfg(feature = "metrics")]

mod common;

use std::sync::Mutex;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use common::{basic, get as req, send};
use http::StatusCode;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use portcullis::basic::BasicAuth;
use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, TokenCache, Validation};
use portcullis::policy::{PolicyLayer, Rule};
use portcullis::session::{MemoryStore, NewSession, SessionConfig, SessionManager, Sessions};
use portcullis::testing::{TestKey, TokenBuilder};
use portcullis::{AuthContext, AuthError, AuthLayer, User};

const PASSWORD: &str = "hunter2-very-secret";
const AUD: &str = "api";

fn app() -> (Router, SessionManager) {
    let basic =
        BasicAuth::new("r").with_user("alice", User::plain(PASSWORD).with_roles(["member"]));
    let bearer = BearerAuth::new(
        "api",
        JwtVerifier::new(Issuer::new(
            TestKey::Hs256.key_set(),
            Validation::new([Algorithm::HS256]).with_audience(AUD),
        ))
        .with_token_cache(TokenCache::new()),
    );
    let sessions = SessionManager::new(MemoryStore::new(), SessionConfig::default());
    let me = || get(|ctx: AuthContext| async move { ctx.subject().to_owned() });
    let app = Router::new()
        .route("/me", me())
        .route(
            "/admin",
            me().route_layer(PolicyLayer::new(Rule::role("admin"))),
        )
        .layer(
            AuthLayer::required(basic)
                .or(bearer)
                .or(sessions.authenticator()),
        )
        .route(
            "/login",
            post(|s: Sessions| async move {
                Ok::<_, AuthError>((s.login(NewSession::new("alice")).await?, "ok"))
            }),
        )
        .layer(axum::Extension(sessions.clone()));
    (app, sessions)
}

fn token() -> String {
    TokenBuilder::new(TestKey::Hs256)
        .with_claim("aud", AUD)
        .with_claim("sub", "alice")
        .sign()
}

/// Tracing caches each call site's interest process-wide: a test without a subscriber
/// running beside one with a capturing subscriber can make it miss events. The tests of
/// this file take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `f` on a current-thread runtime with `recorder` as this thread's recorder.
fn with_recorder<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F) -> Snapshotter {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || rt.block_on(f()));
    snapshotter
}

/// One recorded metric: name, labels, value as text.
type Recorded = (String, Vec<(String, String)>, String);

/// Every metric recorded.
fn metrics_of(s: &Snapshotter) -> Vec<Recorded> {
    s.snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let k = key.key();
            let labels = k
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            let value = match value {
                DebugValue::Counter(n) => n.to_string(),
                DebugValue::Gauge(g) => g.to_string(),
                DebugValue::Histogram(h) => format!("{} samples", h.len()),
            };
            (k.name().to_owned(), labels, value)
        })
        .collect()
}

fn counter(all: &[Recorded], name: &str, want: &[(&str, &str)]) -> u64 {
    all.iter()
        .filter(|(n, labels, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| v.parse::<u64>().unwrap_or(0))
        .sum()
}

#[test]
fn each_outcome_moves_its_counter() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let snap = with_recorder(|| async {
        let (app, _) = app();
        let call = |r: http::request::Builder| {
            let app = app.clone();
            async move { send(&app, r.body(Body::empty()).unwrap()).await.status }
        };
        assert_eq!(call(req("/me")).await, StatusCode::UNAUTHORIZED);
        let auth = |v: String| req("/me").header("authorization", v);
        assert_eq!(call(auth(basic("alice", PASSWORD))).await, StatusCode::OK);
        assert_eq!(
            call(auth(basic("alice", "nope"))).await,
            StatusCode::UNAUTHORIZED
        );
        for _ in 0..3 {
            assert_eq!(
                call(auth(format!("Bearer {}", token()))).await,
                StatusCode::OK
            );
        }
        let admin = req("/admin").header("authorization", basic("alice", PASSWORD));
        assert_eq!(call(admin).await, StatusCode::FORBIDDEN);
        let login = send(
            &app,
            req("/login").method("POST").body(Body::empty()).unwrap(),
        )
        .await;
        let cookie = login.cookie_pair();
        assert_eq!(
            call(req("/me").header("cookie", cookie)).await,
            StatusCode::OK
        );
    });
    let all = metrics_of(&snap);
    let auth = |want: &[(&str, &str)]| counter(&all, "portcullis_auth_total", want);
    assert_eq!(
        auth(&[("scheme", "none"), ("outcome", "unauthorized")]),
        1,
        "{all:?}"
    );
    assert_eq!(auth(&[("scheme", "basic"), ("outcome", "success")]), 2);
    assert_eq!(
        auth(&[
            ("scheme", "basic"),
            ("outcome", "invalid_credentials"),
            ("reason", "wrong user name or password")
        ]),
        1
    );
    assert_eq!(auth(&[("scheme", "bearer"), ("outcome", "success")]), 3);
    assert_eq!(auth(&[("scheme", "session"), ("outcome", "success")]), 1);
    assert_eq!(
        counter(
            &all,
            "portcullis_policy_decisions_total",
            &[("route", "/admin"), ("outcome", "forbidden")]
        ),
        1
    );
    assert_eq!(
        counter(&all, "portcullis_token_cache_total", &[("result", "hit")]),
        2
    );
    assert_eq!(
        counter(&all, "portcullis_token_cache_total", &[("result", "miss")]),
        1
    );
    assert!(
        all.iter()
            .any(|(n, l, _)| n == "portcullis_jwt_verify_seconds"
                && l.contains(&("alg".into(), "HS256".into())))
    );
    assert!(
        all.iter()
            .any(|(n, l, _)| n == "portcullis_session_store_seconds"
                && l.contains(&("op".into(), "create".into())))
    );
}

#[test]
fn no_secret_reaches_a_span_an_event_or_a_metric() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let capture = common::logs::Logs::default();
    let _guard = capture.install(tracing::Level::TRACE);
    let good = token();
    let forged = TokenBuilder::new(TestKey::Rs256)
        .with_claim("aud", AUD)
        .sign();
    let expired = TokenBuilder::new(TestKey::Hs256)
        .with_claim("aud", AUD)
        .with_claim("exp", 1)
        .sign();
    let mut cookie = String::new();
    let snap = with_recorder(|| async {
        let (app, _) = app();
        let login = send(
            &app,
            req("/login").method("POST").body(Body::empty()).unwrap(),
        )
        .await;
        cookie = login.cookie_pair();
        let forged_cookie = "__Host-session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let requests = [
            ("authorization", format!("Bearer {good}")),
            ("authorization", format!("Bearer {forged}")),
            ("authorization", format!("Bearer {expired}")),
            ("authorization", basic("alice", PASSWORD)),
            ("authorization", basic("mallory", PASSWORD)),
            ("authorization", format!("Basic {}", "A".repeat(10_000))),
            ("cookie", cookie.clone()),
            ("cookie", forged_cookie.to_owned()),
            ("cookie", format!("{cookie}; {cookie}")),
        ];
        for (name, value) in requests {
            for path in ["/me", "/admin"] {
                let r = req(path)
                    .header(name, value.as_str())
                    .body(Body::empty())
                    .unwrap();
                send(&app, r).await;
            }
        }
    });
    let logged = capture.text();
    assert!(
        logged.contains("portcullis.auth"),
        "spans were recorded: {logged}"
    );
    let metrics = format!("{:?}", metrics_of(&snap));
    let session_id = cookie.split_once('=').unwrap().1.to_owned();
    let basic_secret = basic("alice", PASSWORD);
    let secrets = [
        PASSWORD,
        good.as_str(),
        forged.as_str(),
        expired.as_str(),
        // Every token's signature alone, too.
        good.rsplit('.').next().unwrap(),
        session_id.as_str(),
        basic_secret.trim_start_matches("Basic "),
        portcullis::testing::HMAC_SECRET
            .as_slice()
            .escape_ascii()
            .to_string()
            .leak(),
    ];
    for secret in secrets {
        assert!(
            !logged.contains(secret),
            "a secret reached the logs: {secret}"
        );
        assert!(
            !metrics.contains(secret),
            "a secret reached the metrics: {secret}"
        );
    }
}

#[test]
fn jwks_fetches_and_health_are_reported() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    use portcullis::jwt::{JwksOptions, RemoteJwks};
    use portcullis::testing::{KeyServer, jwks};
    let snap = with_recorder(|| async {
        let server = KeyServer::start(jwks(&[TestKey::Rs256, TestKey::Es256])).await;
        let remote = RemoteJwks::new(
            &server.url("/jwks.json"),
            [Algorithm::RS256, Algorithm::ES256],
            JwksOptions::default(),
        )
        .unwrap();
        assert!(!remote.health().usable);
        assert!(remote.ready().await);
        let health = remote.health();
        assert!(health.usable && !health.stale && health.last_success.is_some());
        assert_eq!(health.keys, 2);
        server.set_status(StatusCode::INTERNAL_SERVER_ERROR);
        let down = RemoteJwks::new(
            &server.url("/jwks.json"),
            [Algorithm::RS256],
            JwksOptions::default(),
        )
        .unwrap();
        assert!(!down.ready().await);
    });
    let all = metrics_of(&snap);
    assert_eq!(
        counter(&all, "portcullis_jwks_fetches_total", &[("result", "ok")]),
        1,
        "{all:?}"
    );
    assert_eq!(
        counter(
            &all,
            "portcullis_jwks_fetches_total",
            &[("result", "error")]
        ),
        1
    );
    assert!(
        all.iter()
            .any(|(n, _, v)| n == "portcullis_jwks_keys" && v == "2"),
        "{all:?}"
    );
}
