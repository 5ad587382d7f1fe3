//! redis-rs against fred on the round trips portcullis sends on a request: a session
//! record read (`GET`) and an attempt-limit script (`EVALSHA`), one at a time on one
//! connection, as a request does. Rounds alternate the clients (A, B, A, B, ...) so the
//! machine's drift hits both; each round reports per-operation latency, and the summary
//! the per-round ratio fred / redis-rs with quartiles.
//!
//!   cd benches/redis-clients && cargo run --release -- redis://127.0.0.1:6379 [ROUNDS] [OPS]
//!
//! Keys live under a prefix unique to the run and are deleted at the end.

use std::time::{Duration, Instant};

use fred::prelude::*;

const LIMIT: &str = "local n = redis.call('INCR', KEYS[1]) \
                     if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n";

async fn redis_rs(url: &str, prefix: &str, ops: usize) -> Vec<Duration> {
    let client = redis::Client::open(url).expect("url");
    let mut con = redis::aio::ConnectionManager::new(client)
        .await
        .expect("redis-rs connects");
    let script = redis::Script::new(LIMIT);
    let session = format!("{prefix}session");
    let _: () = redis::cmd("SET")
        .arg(&session)
        .arg("x".repeat(300))
        .query_async(&mut con)
        .await
        .expect("set");
    let mut times = Vec::with_capacity(ops);
    for i in 0..ops {
        let start = Instant::now();
        if i % 2 == 0 {
            let v: Option<String> = redis::cmd("GET")
                .arg(&session)
                .query_async(&mut con)
                .await
                .expect("get");
            assert!(v.is_some());
        } else {
            let n: i64 = script
                .key(format!("{prefix}limit"))
                .arg(60_000)
                .invoke_async(&mut con)
                .await
                .expect("script");
            assert!(n > 0);
        }
        times.push(start.elapsed());
    }
    times
}

async fn fred(url: &str, prefix: &str, ops: usize) -> Vec<Duration> {
    let config = Config::from_url(url).expect("url");
    let client = Builder::from_config(config).build().expect("fred builds");
    client.init().await.expect("fred connects");
    let session = format!("{prefix}session");
    let _: () = client
        .set(&session, "x".repeat(300), None, None, false)
        .await
        .expect("set");
    let sha: String = client.script_load(LIMIT).await.expect("load");
    let mut times = Vec::with_capacity(ops);
    for i in 0..ops {
        let start = Instant::now();
        if i % 2 == 0 {
            let v: Option<String> = client.get(&session).await.expect("get");
            assert!(v.is_some());
        } else {
            let n: i64 = client
                .evalsha(&sha, vec![format!("{prefix}limit")], vec![60_000])
                .await
                .expect("script");
            assert!(n > 0);
        }
        times.push(start.elapsed());
    }
    let _: () = client.quit().await.expect("quit");
    times
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn micros(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let us: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    (quantile(&us, 0.5), quantile(&us, 0.99))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).map_or("redis://127.0.0.1:6379", String::as_str);
    let rounds: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    let ops: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(4_000);
    let prefix = format!("pc-clients-{}-", std::process::id());
    let (mut p50_ratio, mut p99_ratio) = (Vec::new(), Vec::new());
    println!("round  redis-rs p50/p99 (µs)  fred p50/p99 (µs)");
    for round in 0..rounds {
        // Alternate which client goes first, so neither always runs on a warmer machine.
        let (a, b) = if round % 2 == 0 {
            let a = redis_rs(url, &prefix, ops).await;
            (a, fred(url, &prefix, ops).await)
        } else {
            let b = fred(url, &prefix, ops).await;
            (redis_rs(url, &prefix, ops).await, b)
        };
        let (a50, a99) = micros(a);
        let (b50, b99) = micros(b);
        println!("{round:>5}  {a50:>8.1} / {a99:>7.1}       {b50:>8.1} / {b99:>7.1}");
        p50_ratio.push(b50 / a50);
        p99_ratio.push(b99 / a99);
    }
    for (name, mut r) in [("p50", p50_ratio), ("p99", p99_ratio)] {
        r.sort_by(f64::total_cmp);
        println!(
            "fred / redis-rs {name}: {:.2} [{:.2}–{:.2}] (median [quartiles] of {rounds} rounds)",
            quantile(&r, 0.5),
            quantile(&r, 0.25),
            quantile(&r, 0.75)
        );
    }
    let client = redis::Client::open(url).expect("url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}session"))
        .arg(format!("{prefix}limit"))
        .query_async(&mut con)
        .await
        .expect("clean up");
}
