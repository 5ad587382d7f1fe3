//! One operation in a loop, for instruction counting under valgrind:
//!
//! ```text
//! benches/instructions.sh          # builds this and prints instructions per operation
//! ```
//!
//! Usage: `ops <operation> <iterations>`; see `OPS` for the names.

mod common;

use common::dpop::PUBLIC as DPOP_PUBLIC;
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
/// differs from `<mode>` by the authentication only. `floor-as-<mode>` is the `floor`
/// app sent `<mode>`'s request: the baseline that differs from `<mode>` by the scheme's
/// own work only (the credential header is built and dropped in both).
///
/// - `bearer-cached-dpop-allowed`: `bearer-cached` with DPoP allowed, sent a plain
///   bearer token (what DPoP support costs requests that do not use it);
/// - `dpop-cached`: a DPoP-bound token (cached after the first request), each request
///   with a fresh ES256 proof, replay checked in memory;
/// - `metadata`: the RFC 9728 document from `ProtectedResource::router`;
///   `metadata-baseline`: a static string served at the same path the same way;
/// - `forward-auth-cached`: `ForwardAuth` judging `GET /api/me` for the cached token of
///   `bearer-cached` (a proxy's `auth_request`).
fn router(mode: &str, token: &str) -> (axum::Router, Vec<(&'static str, String)>) {
    use common::apps::{self, guarded};
    if let Some(as_mode) = mode.strip_prefix("none-as-") {
        return (apps::no_auth(), router(as_mode, token).1);
    }
    if let Some(as_mode) = mode.strip_prefix("floor-as-") {
        return (common::apps::floor(false), router(as_mode, token).1);
    }
    use portcullis::AuthLayer;
    let (mode, per_handler) = match mode.strip_suffix("-handler") {
        Some(m) => (m, true),
        None => (mode, false),
    };
    match mode {
        "none" => (apps::no_auth(), vec![]),
        "metadata" | "metadata-baseline" => {
            // RFC 9728 metadata as a client fetches it; the harness sends every request
            // to `/`, so the path is swapped for the document's (no allocation: a static
            // URI). The baseline serves a static string at the same path, the same way.
            const PATH: &str = "/.well-known/oauth-protected-resource";
            let inner = if mode == "metadata" {
                portcullis::resource::ProtectedResource::new("https://api.example.com")
                    .unwrap()
                    .with_authorization_server("https://login.example.com")
                    .unwrap()
                    .with_scopes(["tasks:read", "tasks:write"])
                    .router::<()>()
            } else {
                axum::Router::new().route(PATH, axum::routing::get(|| async { "{}" }))
            };
            let serve = tower::ServiceBuilder::new()
                .map_request(|mut req: http::Request<axum::body::Body>| {
                    *req.uri_mut() = http::Uri::from_static(PATH);
                    req
                })
                .service(inner);
            (axum::Router::new().route_service("/", serve), vec![])
        }
        "dpop-cached" => {
            // Proofs are signed before the loop, which runs slowly under single-stepping:
            // a long window keeps them fresh.
            let dpop = portcullis::resource::Dpop::required(DPOP_PUBLIC)
                .unwrap()
                .with_max_age(std::time::Duration::from_secs(3600));
            let app = guarded(
                AuthLayer::required(
                    portcullis::jwt::BearerAuth::new("b", cached_rs256()).with_dpop(dpop),
                ),
                per_handler,
            );
            (
                app,
                vec![("authorization", format!("DPoP {}", dpop_token()))],
            )
        }
        "forward-auth-cached" => {
            use portcullis::policy::{RouteRules, Rule};
            let forward = portcullis::gateway::ForwardAuth::new(
                AuthLayer::required(portcullis::jwt::BearerAuth::new("b", cached_rs256())),
                RouteRules::new().with_fallback(Rule::authenticated()),
            );
            (
                forward.router("/"),
                vec![
                    ("authorization", format!("Bearer {token}")),
                    ("x-forwarded-method", "GET".to_owned()),
                    ("x-forwarded-uri", "/api/me".to_owned()),
                ],
            )
        }
        "gateway-cached" => {
            // The in-process counterpart of `forward-auth-cached`: the same scheme, rule
            // and identity headers, as layers in front of a handler.
            use portcullis::policy::{PolicyLayer, RouteRules, Rule};
            let app = axum::Router::new()
                .route("/", axum::routing::get(common::apps::subject))
                .route_layer(PolicyLayer::routes(
                    RouteRules::new().with_fallback(Rule::authenticated()),
                ))
                .layer(portcullis::gateway::IdentityHeaders::new().layer())
                .layer(AuthLayer::required(portcullis::jwt::BearerAuth::new(
                    "b",
                    cached_rs256(),
                )));
            (app, vec![("authorization", format!("Bearer {token}"))])
        }
        "bearer-cached-dpop-allowed" => {
            let dpop = portcullis::resource::Dpop::allowed(DPOP_PUBLIC).unwrap();
            let app = guarded(
                AuthLayer::required(
                    portcullis::jwt::BearerAuth::new("b", cached_rs256()).with_dpop(dpop),
                ),
                per_handler,
            );
            (app, vec![("authorization", format!("Bearer {token}"))])
        }
        "tenants-cached" => {
            // A tenant's token on a verifier that resolves its issuer per token. The
            // tenant's discovery and keys are fetched before the loop, on a runtime of
            // their own (the loop's has no IO): the loop measures the cache hit.
            use portcullis::testing::{KeyServer, jwks};
            let rt = Box::leak(Box::new(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .unwrap(),
            ));
            let server = rt.block_on(KeyServer::start(jwks(&[])));
            server.add_realm("acme", jwks(&[TestKey::Rs256]));
            let tenants = portcullis::jwt::Tenants::new(
                &format!("{}/realms/{{tenant}}", server.base_url()),
                Validation::new([TestKey::Rs256.algorithm()]).with_audience(AUD),
            )
            .unwrap()
            .with_allowed(["acme"]);
            let verifier = JwtVerifier::for_tenants(tenants).with_token_cache(TokenCache::new());
            let token = common::token_from(
                TestKey::Rs256,
                &format!("{}/realms/acme", server.base_url()),
            );
            rt.block_on(verifier.verify(&token)).unwrap();
            Box::leak(Box::new(server));
            let app = guarded(
                AuthLayer::required(portcullis::jwt::BearerAuth::new("b", verifier)),
                per_handler,
            );
            (app, vec![("authorization", format!("Bearer {token}"))])
        }
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
            (app, vec![("authorization", format!("Bearer {token}"))])
        }
        "identity-layer" => (apps::identity_layer(), vec![]),
        "from-fn" => (apps::axum_from_fn(), vec![]),
        "floor" => (apps::floor(per_handler), vec![]),
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
            (app, vec![("cookie", pair)])
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
                vec![(
                    "authorization",
                    "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ=".to_owned(),
                )],
            )
        }
    }
}

/// The RS256 verifier of `bearer-cached`, with its token cache.
fn cached_rs256() -> JwtVerifier {
    JwtVerifier::new(Issuer::new(
        TestKey::Rs256.key_set(),
        Validation::new([TestKey::Rs256.algorithm()])
            .with_issuer(ISS)
            .with_audience(AUD),
    ))
    .with_token_cache(TokenCache::new())
}

/// The benchmark token bound (`cnf.jkt`) to the ES256 proof key; made once.
fn dpop_token() -> String {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN
        .get_or_init(|| common::dpop::bound_token("user-1"))
        .clone()
}

/// `n` single-use proofs for `GET /` with `token`.
fn dpop_proofs(n: usize, token: &str) -> Vec<http::HeaderValue> {
    (0..n)
        .map(|i| common::dpop::proof(&format!("bench-proof-{i}"), "/", token))
        .collect()
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
            let (app, headers) = router(alg, &t);
            // Parsed once: the loop measures the server's work, not the client's.
            let headers: Vec<_> = headers
                .into_iter()
                .map(|(name, value)| {
                    (
                        http::HeaderName::from_static(name),
                        http::HeaderValue::from_str(&value).unwrap(),
                    )
                })
                .collect();
            // DPoP: one fresh proof per request, signed before the loop.
            let mut proofs = if alg.ends_with("dpop-cached") {
                dpop_proofs(n, &dpop_token())
            } else {
                Vec::new()
            }
            .into_iter();
            // Basic requests come with the peer address, as the limiter's default client
            // key needs (both `basic` and `basic-limited`, so they differ by the limiter only).
            let peer = alg
                .trim_start_matches("none-as-")
                .trim_start_matches("floor-as-")
                .starts_with("basic")
                .then(|| {
                    axum::extract::ConnectInfo(std::net::SocketAddr::from((
                        [198, 51, 100, 7],
                        50_000,
                    )))
                });
            // Every request carries `Host`, as every HTTP/1.1 request does (and as hyper
            // hands them to the router), so no row pays for the header map's first
            // allocation while `floor` and `none` do not.
            let host = http::HeaderValue::from_static("api.example.com");
            measured(n, &mut || {
                let mut req = http::Request::get("/")
                    .body(axum::body::Body::empty())
                    .unwrap();
                req.headers_mut().insert(http::header::HOST, host.clone());
                if let Some(peer) = peer {
                    req.extensions_mut().insert(peer);
                }
                for (name, value) in &headers {
                    req.headers_mut().insert(name.clone(), value.clone());
                }
                if let Some(proof) = proofs.next() {
                    req.headers_mut().insert("dpop", proof);
                }
                let res = now_or_never(app.clone().oneshot(req)).unwrap();
                assert_eq!(res.status(), 200);
                black_box(res);
            });
        }
        other => panic!("unknown operation {other}"),
    }
}
