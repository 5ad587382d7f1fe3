//! Resident memory of the DPoP replay cache in memory (default capacity, 100 000 proofs)
//! flooded with fresh proofs through the router: one principal first (held to a tenth
//! of the cache, then 429), then twenty others until the cache is full (then 503).
//! Prints the answers and the process's RSS before and after.
//!
//! ```text
//! cargo bench --bench replay_flood
//! ```

mod common;

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::{AUD, ISS};
use http::{Request, StatusCode};
use portcullis::AuthLayer;
use portcullis::jwt::{BearerAuth, Issuer, JwtVerifier, TokenCache, Validation};
use portcullis::resource::Dpop;
use portcullis::testing::TestKey;
use tower::ServiceExt;

/// The process's resident set, in KiB, from `/proc/self/status`.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sends `n` requests as `sub`, each with a fresh proof; counts the answers.
async fn flood(app: &Router, sub: &str, n: usize, counts: &mut [usize; 3]) {
    let token = common::dpop::bound_token(sub);
    for i in 0..n {
        let req = Request::get("/")
            .header("authorization", format!("DPoP {token}"))
            .header(
                "dpop",
                common::dpop::proof(&format!("{sub}-{i}"), "/", &token),
            )
            .body(Body::empty())
            .unwrap();
        let status = app.clone().oneshot(req).await.unwrap().status();
        let slot = match status {
            StatusCode::OK => 0,
            StatusCode::TOO_MANY_REQUESTS => 1,
            StatusCode::SERVICE_UNAVAILABLE => 2,
            other => panic!("unexpected {other}"),
        };
        counts[slot] += 1;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let verifier = JwtVerifier::new(Issuer::new(
        TestKey::Rs256.key_set(),
        Validation::new([TestKey::Rs256.algorithm()])
            .with_issuer(ISS)
            .with_audience(AUD),
    ))
    .with_token_cache(TokenCache::new());
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(AuthLayer::required(
            BearerAuth::new("bench", verifier)
                .with_dpop(Dpop::allowed(common::dpop::PUBLIC).unwrap()),
        ));
    rt.block_on(async {
        // Warm up (keys, token cache, allocator arenas), then measure from here.
        let mut warm = [0; 3];
        flood(&app, "warm-up", 10, &mut warm).await;
        let before = rss_kib();
        let started = Instant::now();
        let mut one = [0; 3];
        flood(&app, "mallory", 15_000, &mut one).await;
        let mut rest = [0; 3];
        for p in 0..20 {
            flood(&app, &format!("user-{p}"), 5_000, &mut rest).await;
        }
        let after = rss_kib();
        println!(
            "one principal, 15 000 proofs: {} accepted, {} refused 429, {} refused 503",
            one[0], one[1], one[2]
        );
        println!(
            "twenty others, 100 000 proofs: {} accepted, {} refused 429, {} refused 503",
            rest[0], rest[1], rest[2]
        );
        println!(
            "RSS before {:.1} MiB, after {:.1} MiB: +{:.1} MiB ({:.0} s)",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            (after as f64 - before as f64) / 1024.0,
            started.elapsed().as_secs_f64()
        );
    });
}
