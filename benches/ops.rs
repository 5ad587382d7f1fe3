//! One operation in a loop, for instruction counting under valgrind:
//!
//! ```text
//! benches/instructions.sh          # builds this and prints instructions per operation
//! ```
//!
//! Usage: `ops <operation> <iterations>`; see `OPS` for the names.

mod common;

use common::limit::LimitKey;
use common::{AUD, ISS, now_or_never, token};

use std::hint::black_box;

use portcullis::jwt::{Issuer, JwtVerifier, TokenCache, Validation};
use portcullis::testing::TestKey;

fn key(name: &str) -> TestKey {
    match name {
        "HS256" => TestKey::Hs256,
        "RS256" => TestKey::Rs256,
        "ES256" => TestKey::Es256,
        _ => TestKey::EdDsa,
    }
}

/// An axum app as the load harness builds it, with the credential to send. A mode
/// ending in `-handler` applies the layer with `Handler::layer`.
///
/// `none-as-<mode>` is the no-auth app sent `<mode>`'s request: the baseline that
/// differs from `<mode>` by the authentication only.
fn router(mode: &str, token: &str) -> (axum::Router, Option<(&'static str, String)>) {
    use common::apps::{self, guarded};
    if let Some(as_mode) = mode.strip_prefix("none-as-") {
        return (apps::no_auth(), router(as_mode, token).1);
    }
    use portcullis::AuthLayer;
    let (mode, per_handler) = match mode.strip_suffix("-handler") {
        Some(m) => (m, true),
        None => (mode, false),
    };
    match mode {
        "none" => (apps::no_auth(), None),
        "bearer-cached" | "bearer-cached-revocations" => {
            let mut v = JwtVerifier::new(Issuer::new(
                TestKey::Rs256.key_set(),
                Validation::new([TestKey::Rs256.algorithm()])
                    .with_issuer(ISS)
                    .with_audience(AUD),
            ))
            .with_token_cache(TokenCache::new());
            if mode == "bearer-cached-revocations" {
                // A list of 1 000 revoked tokens and 100 revoked subjects, none of them
                // this request's: the check's cost on a live token.
                let r = portcullis::revocation::Revocations::memory();
                for i in 0..1_000 {
                    now_or_never(r.revoke_token(ISS, &format!("jti-{i}"), u64::MAX)).unwrap();
                }
                for i in 0..100 {
                    now_or_never(r.revoke_subject(Some(ISS), &format!("other-{i}"), u64::MAX))
                        .unwrap();
                }
                v = v.with_revocations(r);
            }
            let app = guarded(
                AuthLayer::required(portcullis::jwt::BearerAuth::new("b", v)),
                per_handler,
            );
            (app, Some(("authorization", format!("Bearer {token}"))))
        }
        "identity-layer" => (apps::identity_layer(), None),
        "from-fn" => (apps::axum_from_fn(), None),
        "floor" => (apps::floor(per_handler), None),
        "session" | "session-limited" => {
            use portcullis::session::{MemoryStore, NewSession, SessionConfig, SessionManager};
            let mut config = SessionConfig::default();
            if mode == "session-limited" {
                config = config.with_limiter(portcullis::limit::AttemptLimiter::memory());
            }
            let m = SessionManager::new(MemoryStore::new(), config);
            let cookie =
                now_or_never(m.login(&http::HeaderMap::new(), NewSession::new("alice"))).unwrap();
            let pair = cookie.pair().to_owned();
            let app = guarded(AuthLayer::required(m.authenticator()), per_handler);
            (app, Some(("cookie", pair)))
        }
        _ => {
            let mut basic = portcullis::basic::BasicAuth::new("b")
                .with_user("alice", portcullis::User::plain("alice-password"));
            if mode == "basic-limited" {
                basic = basic.with_limiter(portcullis::limit::AttemptLimiter::memory());
            }
            let app = guarded(AuthLayer::required(basic), per_handler);
            (
                app,
                Some((
                    "authorization",
                    "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ=".to_owned(),
                )),
            )
        }
    }
}

/// Runs `op` `n` times. `instructions.sh` counts instructions inside this function only
/// (callgrind `--toggle-collect`), so set-up, key loading and aws-lc's entropy gathering
/// (whose instruction count varies from run to run) stay out of the figures.
#[inline(never)]
fn measured(n: usize, op: &mut dyn FnMut()) {
    for _ in 0..n {
        op();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (op, n): (&str, usize) = (&args[1], args[2].parse().unwrap());
    let (what, alg) = op.split_once('/').unwrap_or((op, "RS256"));
    let k = key(if what == "router" { "RS256" } else { alg });
    let t = token(k);
    // Session authentication uses tokio timeouts, which need a runtime context.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
    // PORTCULLIS_BENCH_PROMETHEUS=1: count with the Prometheus recorder installed (what
    // feature `metrics` costs in production; without it the facade records nothing).
    if std::env::var_os("PORTCULLIS_BENCH_PROMETHEUS").is_some() {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("no other recorder");
    }
    match what {
        "portcullis" | "cache_hit" => {
            let mut v = JwtVerifier::new(Issuer::new(
                k.key_set(),
                Validation::new([k.algorithm()])
                    .with_issuer(ISS)
                    .with_audience(AUD),
            ));
            if what == "cache_hit" {
                v = v.with_token_cache(TokenCache::new());
                now_or_never(v.verify(&t)).unwrap();
            }
            measured(n, &mut || {
                black_box(now_or_never(v.verify(black_box(&t))).unwrap());
            });
        }
        "jsonwebtoken" => {
            let key = common::jsonwebtoken_key(k);
            let val = common::jsonwebtoken_validation(k);
            measured(n, &mut || {
                black_box(
                    jsonwebtoken::decode::<serde_json::Value>(black_box(&t), &key, &val).unwrap(),
                );
            });
        }
        "limit" => {
            let key = LimitKey::new(k);
            measured(n, &mut || {
                black_box(key.verify(black_box(&t)).unwrap());
            });
        }
        "router" => {
            use tower::ServiceExt;
            let (app, header) = router(alg, &t);
            // Parsed once: the loop measures the server's work, not the client's.
            let header = header.map(|(name, value)| {
                (
                    http::HeaderName::from_static(name),
                    http::HeaderValue::from_str(&value).unwrap(),
                )
            });
            // Basic requests come with the peer address, as the limiter's default client
            // key needs (both `basic` and `basic-limited`, so they differ by the limiter only).
            let peer = alg
                .trim_start_matches("none-as-")
                .starts_with("basic")
                .then(|| {
                    axum::extract::ConnectInfo(std::net::SocketAddr::from((
                        [198, 51, 100, 7],
                        50_000,
                    )))
                });
            measured(n, &mut || {
                let mut req = http::Request::get("/")
                    .body(axum::body::Body::empty())
                    .unwrap();
                if let Some(peer) = peer {
                    req.extensions_mut().insert(peer);
                }
                if let Some((name, value)) = &header {
                    req.headers_mut().insert(name.clone(), value.clone());
                }
                let res = now_or_never(app.clone().oneshot(req)).unwrap();
                assert_eq!(res.status(), 200);
                black_box(res);
            });
        }
        other => panic!("unknown operation {other}"),
    }
}
