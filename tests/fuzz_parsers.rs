//! Randomised smoke fuzzing of every parser through the real router (proptest; bounded
//! case counts), plus property tests of claim validation against a small model.
//! `cargo fuzz` needs a nightly toolchain, which this project's machines do not have.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderValue, Request, StatusCode};
use portcullis::User;
use portcullis::basic::BasicAuth;
use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, Validation};
use portcullis::session::{MemoryStore, SessionConfig, SessionManager};
use portcullis::testing::{TestKey, TokenBuilder, now};
use portcullis::{AuthContext, AuthLayer};
use proptest::prelude::*;
use serde_json::{Value, json};

const ISS: &str = "https://issuer.test";
const AUD: &str = "api";

struct Harness {
    rt: tokio::runtime::Runtime,
    app: Router,
    with_context: Arc<AtomicUsize>,
}

thread_local! {
    // One app per test thread, so concurrent tests do not share the context counter.
    static HARNESS: Harness = build_harness();
}

fn with_harness<R>(f: impl FnOnce(&Harness) -> R) -> R {
    HARNESS.with(f)
}

fn build_harness() -> Harness {
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let with_context = Arc::new(AtomicUsize::new(0));
        let counter = with_context.clone();
        let basic = BasicAuth::new("f").with_user("admin", User::plain("pw"));
        let bearer = BearerAuth::new(
            "f",
            JwtVerifier::new(Issuer::new(
                TestKey::Rs256.key_set(),
                Validation::new([Algorithm::RS256])
                    .with_issuer(ISS)
                    .with_audience(AUD),
            )),
        );
        let sessions = SessionManager::new(MemoryStore::new(), SessionConfig::default());
        let app = Router::new()
            .route(
                "/",
                get(move |ctx: Option<AuthContext>| {
                    let counter = counter.clone();
                    async move {
                        if ctx.is_some() {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                        "ran"
                    }
                }),
            )
            .layer(
                AuthLayer::optional(basic)
                    .or(bearer)
                    .or(sessions.authenticator()),
            );
        Harness {
            rt,
            app,
            with_context,
        }
    }
}

/// Sends one request; returns the status. Garbage must never yield a context.
fn run(header: &str, value: &[u8]) -> Option<StatusCode> {
    let v = HeaderValue::from_bytes(value).ok()?;
    with_harness(|h| {
        let before = h.with_context.load(Ordering::SeqCst);
        let req = Request::get("/")
            .header(header, v)
            .body(Body::empty())
            .unwrap();
        let status = h.rt.block_on(common::send(&h.app, req)).status;
        assert_eq!(
            h.with_context.load(Ordering::SeqCst),
            before,
            "garbage produced a context"
        );
        assert!(
            status == StatusCode::OK || status.is_client_error(),
            "unexpected {status}"
        );
        Some(status)
    })
}

fn valid_token() -> String {
    TokenBuilder::new(TestKey::Rs256)
        .with_claim("iss", ISS)
        .with_claim("aud", AUD)
        .sign()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn authorization_header_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        run("authorization", &bytes);
    }

    #[test]
    fn basic_payloads(payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        use base64::Engine;
        let v = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(&payload));
        if payload != b"admin:pw" {
            run("authorization", v.as_bytes());
        }
    }

    #[test]
    fn jwt_shaped_strings(h in "[A-Za-z0-9_-]{0,60}", p in "[A-Za-z0-9_-]{0,120}", s in "[A-Za-z0-9_-]{0,90}", dots in 0usize..6) {
        let mut t = h.clone();
        for i in 0..dots {
            t.push('.');
            t.push_str(if i % 2 == 0 { &p } else { &s });
        }
        run("authorization", format!("Bearer {t}").as_bytes());
    }

    #[test]
    fn mutated_valid_tokens(pos in any::<prop::sample::Index>(), byte in 33u8..127) {
        let mut t = valid_token().into_bytes();
        let i = pos.index(t.len());
        prop_assume!(t[i] != byte);
        t[i] = byte;
        let status = run("authorization", &[b"Bearer ".as_slice(), &t].concat());
        prop_assert_ne!(status, Some(StatusCode::OK));
    }

    #[test]
    fn cookie_headers(value in "[ -~]{0,200}") {
        run("cookie", value.as_bytes());
        run("cookie", format!("__Host-session={value}").as_bytes());
    }
}

/// The model: what a claim value must look like to be valid.
fn numeric_ok(v: &Value) -> bool {
    v.as_f64().is_some_and(|f| f.is_finite() && f >= 0.0)
}

/// Mostly well-formed values (so both outcomes occur), plus every type confusion.
fn claim_value(good: Value) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        40 => Just(Some(good)),
        1 => Just(None),
        1 => Just(Some(json!(null))),
        1 => Just(Some(json!(true))),
        1 => Just(Some(json!("x"))),
        1 => Just(Some(json!([AUD, 1]))),
        1 => Just(Some(json!(["other", AUD]))),
        1 => Just(Some(json!({}))),
        1 => Just(Some(json!(-5))),
        2 => (-2000i64..2000).prop_map(|d| Some(json!(now() as i64 + d))),
    ]
}

#[test]
fn claim_validation_matches_the_model() {
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config {
        cases: 500,
        failure_persistence: None,
        ..Config::default()
    });
    let accepted = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    let n0 = now();
    let strategy = (
        claim_value(json!(n0 + 600)),
        claim_value(json!(n0 - 600)),
        claim_value(json!(n0 - 60)),
        claim_value(json!(ISS)),
        claim_value(json!(AUD)),
        claim_value(json!("user-1")),
    );
    runner
        .run(&strategy, |(exp, nbf, iat, iss, aud, sub)| {
            let n = now() as f64;
            let leeway = 30.0;
            let mut b = TokenBuilder::new(TestKey::Rs256).without_claim("exp").without_claim("iat").without_claim("sub");
            for (name, v) in [("exp", &exp), ("nbf", &nbf), ("iat", &iat), ("iss", &iss), ("aud", &aud), ("sub", &sub)] {
                if let Some(v) = v {
                    b = b.with_claim(name, v.clone());
                }
            }
            let near_edge = [&exp, &nbf, &iat]
                .iter()
                .any(|v| v.as_ref().and_then(|v| v.as_f64()).is_some_and(|f| (f + leeway - n).abs() < 2.0 || (f - leeway - n).abs() < 2.0));
            if near_edge {
                return Ok(());
            }
            let expect_ok = matches!(&exp, Some(v) if numeric_ok(v) && v.as_f64().unwrap() + leeway > n)
                && match &nbf { None => true, Some(v) => numeric_ok(v) && v.as_f64().unwrap() <= n + leeway }
                && match &iat { None => true, Some(v) => numeric_ok(v) && v.as_f64().unwrap() <= n + leeway }
                && iss.as_ref() == Some(&json!(ISS))
                && match &aud {
                    Some(Value::String(s)) => s == AUD,
                    Some(Value::Array(a)) => !a.is_empty() && a.iter().all(Value::is_string) && a.contains(&json!(AUD)),
                    _ => false,
                }
                && matches!(&sub, Some(Value::String(s)) if !s.is_empty());
            let req = Request::get("/").header("authorization", format!("Bearer {}", b.sign())).body(Body::empty()).unwrap();
            let (status, got_ok) = with_harness(|h| {
                let before = h.with_context.load(Ordering::SeqCst);
                let status = h.rt.block_on(common::send(&h.app, req)).status;
                (status, h.with_context.load(Ordering::SeqCst) > before)
            });
            if got_ok { &accepted } else { &refused }.fetch_add(1, Ordering::SeqCst);
            prop_assert_eq!(got_ok, expect_ok, "status {} exp={:?} nbf={:?} iat={:?} iss={:?} aud={:?} sub={:?}", status, exp, nbf, iat, iss, aud, sub);
            Ok(())
        })
        .unwrap();
    let (a, r) = (
        accepted.load(Ordering::SeqCst),
        refused.load(Ordering::SeqCst),
    );
    assert!(
        a >= 10 && r >= 10,
        "both outcomes must be exercised: accepted {a}, refused {r}"
    );
}
