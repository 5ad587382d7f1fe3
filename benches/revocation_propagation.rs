//! How fast a revocation made through one instance reaches the others, through Redis.
//!
//! In one process: three Redis revocation lists (`Revocations::redis`) with their own connections (as three
//! instances have) share a prefix; 1 000 token revocations are made through the first,
//! one at a time, and for each the time until the other two refuse that token is
//! recorded.
//!
//! In three processes: this program starts three copies of itself, each a server
//! instance (its own Redis connection and revocation list, a bearer router with a token
//! cache, every token cached before it is revoked); 1 000 revocations are made through
//! the first, one at a time, and each instance drives a request with that token through
//! its router until it answers 401. The lag is the wall-clock time from just before the
//! revocation call to the 401, across processes (one host clock).
//!
//! Prints both distributions (milliseconds).
//!
//! ```text
//! PORTCULLIS_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo bench --bench revocation_propagation
//! ```
//!
//! `PORTCULLIS_BENCH_REDIS_URL` runs it on another topology instead
//! (`redis-cluster://...`, `redis-sentinel://...`).

#[path = "common/lags.rs"]
mod lags;

use std::time::{Duration, Instant};

use portcullis::AuthContext;
use portcullis::revocation::Revocations;
use portcullis::testing::now;

const N: usize = 1_000;
const ISS: &str = "https://issuer.bench";

fn main() {
    let Ok(url) = std::env::var("PORTCULLIS_BENCH_REDIS_URL")
        .or_else(|_| std::env::var("PORTCULLIS_TEST_REDIS_URL"))
    else {
        eprintln!("skipping: PORTCULLIS_TEST_REDIS_URL is not set");
        return;
    };
    if let Ok(prefix) = std::env::var("PORTCULLIS_PROPAGATION_CHILD") {
        return processes::child(&url, &prefix);
    }
    in_process(&url);
    processes::parent(&url);
}

async fn drop_list(url: &str, prefix: &str) {
    if let Some(hosts) = url.strip_prefix("redis-cluster://") {
        let seeds: Vec<String> = hosts.split(',').map(|h| format!("redis://{h}")).collect();
        let client = redis::cluster::ClusterClient::new(seeds).unwrap();
        let mut conn = client.get_async_connection().await.unwrap();
        let _: i64 = redis::cmd("DEL")
            .arg(format!("{prefix}revoked"))
            .query_async(&mut conn)
            .await
            .unwrap();
        return;
    }
    if url.starts_with("redis-sentinel://") {
        // Benches on Sentinel run against servers started for them and thrown away.
        return;
    }
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg(format!("{prefix}revoked"))
        .query_async(&mut conn)
        .await
        .unwrap();
}

fn in_process(url: &str) {
    let url = url.to_owned();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let prefix = format!("pcbench-{}-{}:", std::process::id(), rand::random::<u32>());
        let writer = Revocations::redis(&url, &prefix).await.unwrap();
        let readers = [
            Revocations::redis(&url, &prefix).await.unwrap(),
            Revocations::redis(&url, &prefix).await.unwrap(),
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
        drop_list(&url, &prefix).await;
        lags::print(
            &format!("one process: {N} revocations x 2 other lists"),
            &mut lags,
        );
    });
}

mod processes {
    //! The three-process run: the parent orchestrates over the children's stdin/stdout.

    use std::io::{BufRead, BufReader, Write};
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, TokenCache, Validation};
    use portcullis::revocation::Revocations;
    use portcullis::testing::{TestKey, TokenBuilder, now};
    use portcullis::{AuthContext, AuthLayer};
    use tower::ServiceExt;

    use super::{ISS, N};

    fn nanos() -> u128 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    }

    fn token(i: usize) -> String {
        TokenBuilder::new(TestKey::Hs256)
            .with_claim("iss", ISS)
            .with_claim("aud", "api")
            .with_claim("sub", "someone")
            .with_claim("jti", format!("bench-{i}"))
            .with_claim("exp", now() + 600)
            .sign()
    }

    async fn status(app: &Router, token: &str) -> u16 {
        let req = http::Request::get("/")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(req).await.unwrap().status().as_u16()
    }

    /// One instance: serves its router in process; revokes on `r <i>` (the writer),
    /// and reports `d <i> <nanos>` once its router refuses token `i`.
    pub fn child(url: &str, prefix: &str) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let revocations = Revocations::redis(url, prefix).await.unwrap();
            let verifier = JwtVerifier::new(Issuer::new(
                TestKey::Hs256.key_set(),
                Validation::new([Algorithm::HS256])
                    .with_issuer(ISS)
                    .with_audience("api"),
            ))
            .with_token_cache(TokenCache::new())
            .with_revocations(revocations.clone());
            let app = Router::new()
                .route("/", get(|_: AuthContext| async { "ok" }))
                .layer(AuthLayer::required(BearerAuth::new("api", verifier)));
            let tokens: Vec<String> = (0..N).map(token).collect();
            for t in &tokens {
                assert_eq!(status(&app, t).await, 200, "every token is cached first");
            }
            println!("ready");
            let mut lines = BufReader::new(std::io::stdin()).lines();
            let poller = {
                let (app, tokens) = (app.clone(), tokens.clone());
                tokio::spawn(async move {
                    for (i, t) in tokens.iter().enumerate() {
                        let started = std::time::Instant::now();
                        while status(&app, t).await != 401 {
                            assert!(
                                started.elapsed() < Duration::from_secs(30),
                                "token {i} never refused"
                            );
                            tokio::time::sleep(Duration::from_micros(50)).await;
                        }
                        println!("d {i} {}", nanos());
                    }
                })
            };
            while let Some(Ok(line)) = tokio::task::block_in_place(|| lines.next()) {
                let Some(i) = line
                    .strip_prefix("r ")
                    .and_then(|i| i.parse::<usize>().ok())
                else {
                    break;
                };
                let t0 = nanos();
                revocations
                    .revoke_token(ISS, &format!("bench-{i}"), now() + 600)
                    .await
                    .unwrap();
                println!("w {i} {t0}");
            }
            poller.await.unwrap();
        });
    }

    struct Kid {
        child: Child,
    }
    impl Drop for Kid {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    pub fn parent(url: &str) {
        let prefix = format!("pcbench-{}-{}:", std::process::id(), rand::random::<u32>());
        let (tx, rx) = mpsc::channel::<(usize, String)>();
        let mut kids = Vec::new();
        for k in 0..3 {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .env("PORTCULLIS_PROPAGATION_CHILD", &prefix)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let out = child.stdout.take().unwrap();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send((k, line)).is_err() {
                        return;
                    }
                }
            });
            kids.push(Kid { child });
        }
        let recv = || {
            rx.recv_timeout(Duration::from_secs(60))
                .expect("a child went silent")
        };
        let mut ready = 0;
        while ready < 3 {
            if recv().1 == "ready" {
                ready += 1;
            }
        }
        let mut writer = kids[0].child.stdin.take().unwrap();
        let mut lags = Vec::with_capacity(N * 3);
        for i in 0..N {
            writeln!(writer, "r {i}").unwrap();
            let (mut t0, mut seen) = (None, Vec::new());
            while t0.is_none() || seen.len() < 3 {
                let (_, line) = recv();
                let parts: Vec<&str> = line.split(' ').collect();
                match parts.as_slice() {
                    ["w", j, t] if j.parse() == Ok(i) => t0 = t.parse::<u128>().ok(),
                    ["d", j, t] if j.parse() == Ok(i) => seen.push(t.parse::<u128>().unwrap()),
                    _ => panic!("unexpected line from a child: {line}"),
                }
            }
            let t0 = t0.unwrap();
            lags.extend(
                seen.iter()
                    .map(|t| Duration::from_nanos(t.saturating_sub(t0) as u64)),
            );
        }
        drop(writer);
        drop(kids);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(super::drop_list(url, &prefix));
        super::lags::print(
            &format!("three processes: {N} revocations x 3 instances"),
            &mut lags,
        );
    }
}
