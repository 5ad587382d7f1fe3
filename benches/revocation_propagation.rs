//! How fast a revocation made through one instance reaches the others, through Redis.
//!
//! Three `RedisRevocations` lists with their own connections (as three instances have)
//! share a prefix; 1 000 token revocations are made through the first, one at a time,
//! and for each the time until the other two refuse that token is recorded. Prints the
//! distribution (milliseconds).
//!
//! ```text
//! PORTCULLIS_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo bench --bench revocation_propagation
//! ```

use std::time::{Duration, Instant};

use portcullis::AuthContext;
use portcullis::revocation::RedisRevocations;
use portcullis::testing::now;

const N: usize = 1_000;
const ISS: &str = "https://issuer.bench";

fn main() {
    let Ok(url) = std::env::var("PORTCULLIS_TEST_REDIS_URL") else {
        eprintln!("skipping: PORTCULLIS_TEST_REDIS_URL is not set");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let prefix = format!("pcbench-{}-{}:", std::process::id(), rand::random::<u32>());
        let writer = RedisRevocations::connect(&url, &prefix).await.unwrap();
        let readers = [
            RedisRevocations::connect(&url, &prefix).await.unwrap(),
            RedisRevocations::connect(&url, &prefix).await.unwrap(),
        ];
        let mut lags = Vec::with_capacity(N * 2);
        let give_up = Duration::from_secs(5);
        for i in 0..N {
            let jti = format!("bench-{i}");
            let ctx = AuthContext::builder("someone", portcullis::Scheme::Bearer)
                .with_issuer(ISS)
                .with_token_id(jti.as_str())
                .build();
            let started = Instant::now();
            writer.revoke_token(ISS, &jti, now() + 60).await.unwrap();
            for r in &readers {
                // Bounded poll: every 100 µs for at most 5 s.
                while !r.is_revoked(&ctx) {
                    assert!(started.elapsed() < give_up, "revocation {i} never arrived");
                    tokio::time::sleep(Duration::from_micros(100)).await;
                }
                lags.push(started.elapsed());
            }
        }
        // The run's own key: gone with the run.
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let _: i64 = redis::cmd("DEL")
            .arg(format!("{prefix}revoked"))
            .query_async(&mut conn)
            .await
            .unwrap();
        lags.sort();
        let q = |p: f64| lags[((lags.len() as f64 * p) as usize).min(lags.len() - 1)];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "revocation propagation, {} observations ({N} revocations x 2 other instances), ms:",
            lags.len()
        );
        println!(
            "p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            ms(q(0.5)),
            ms(q(0.9)),
            ms(q(0.99)),
            ms(lags[lags.len() - 1])
        );
    });
}
