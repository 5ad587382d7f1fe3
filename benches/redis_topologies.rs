//! What Sentinel and Cluster cost, measured side by side with a single node. The bench
//! starts its own `redis-server` processes on free loopback ports (a single node, a
//! 3-primary cluster, a primary with two replicas under three sentinels) and stops them
//! when it ends; rounds alternate between the topologies so the VM's drift cancels.
//!
//! - revocation propagation: one list writes, two others (own connections) poll until
//!   they refuse the token; the lag from just before the write;
//! - a revocation's latency, and a login's, with and without `with_replica_acks(1, ..)`
//!   on the Sentinel setup;
//! - round trips per login attempt on the cluster: scripts run, from `INFO commandstats`
//!   summed over the nodes.
//!
//! ```text
//! cargo bench --bench redis_topologies
//! ```

// Clippy's checks of the nested futures below go deeper than the default limit.
#![recursion_limit = "256"]

#[path = "../tests/common/redis_servers.rs"]
mod redis_servers;

use std::time::{Duration, Instant};

use portcullis::AuthContext;
use portcullis::limit::{AttemptLimiter, Limits};
use portcullis::revocation::{RedisRevocations, Revocations};
use portcullis::session::{NewSession, RedisStore, SessionConfig, SessionManager};
use portcullis::testing::now;
use portcullis::{User, Users};

const ISS: &str = "https://issuer.bench";
const ROUNDS: usize = 10;
const PER_ROUND: usize = 100;

fn main() {
    if !redis_servers::available() {
        return;
    }
    let single = redis_servers::Node::start_plain();
    let cluster = redis_servers::Cluster::start(3, 0);
    let sentinels = redis_servers::Sentinels::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        propagation(&single.url(), &cluster.url()).await;
        acks(&sentinels.url()).await;
        limiter_round_trips(&cluster).await;
    });
}

fn quartiles(title: &str, v: &mut [Duration]) {
    v.sort();
    let q = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{title:<48} n={:<5} p25 {:>6.3}  p50 {:>6.3}  p75 {:>6.3}  p99 {:>6.3}  max {:>6.3} ms",
        v.len(),
        ms(q(0.25)),
        ms(q(0.5)),
        ms(q(0.75)),
        ms(q(0.99)),
        ms(v[v.len() - 1])
    );
}

async fn lists(url: &str) -> (Revocations, [Revocations; 2]) {
    let prefix = format!("pcbench-{}-{}:", std::process::id(), rand::random::<u32>());
    let writer = Revocations::redis(url, &prefix).await.unwrap();
    let readers = [
        Revocations::redis(url, &prefix).await.unwrap(),
        Revocations::redis(url, &prefix).await.unwrap(),
    ];
    (writer, readers)
}

/// One revocation through `writer`; the lag until each reader refuses it.
async fn propagate(writer: &Revocations, readers: &[Revocations; 2], jti: &str) -> [Duration; 2] {
    let ctx = AuthContext::builder("someone", portcullis::Scheme::Bearer)
        .with_issuer(ISS)
        .with_token_id(jti)
        .build();
    let started = Instant::now();
    writer.revoke_token(ISS, jti, now() + 60).await.unwrap();
    let mut out = [Duration::ZERO; 2];
    for (r, lag) in readers.iter().zip(&mut out) {
        // Bounded poll: every 100 µs for at most 5 s.
        while !r.is_revoked(&ctx) {
            assert!(started.elapsed() < Duration::from_secs(5), "never arrived");
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        *lag = started.elapsed();
    }
    out
}

async fn propagation(single: &str, cluster: &str) {
    let (sw, sr) = lists(single).await;
    let (cw, cr) = lists(cluster).await;
    let (mut on_single, mut on_cluster) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        for i in 0..PER_ROUND {
            let jti = format!("p-{round}-{i}");
            on_single.extend(propagate(&sw, &sr, &jti).await);
            on_cluster.extend(propagate(&cw, &cr, &jti).await);
        }
    }
    println!("revocation propagation, write to refusal by two other lists (interleaved):");
    quartiles("  single node", &mut on_single);
    quartiles("  3-primary cluster (SPUBLISH/SSUBSCRIBE)", &mut on_cluster);
}

async fn acks(sentinel: &str) {
    let prefix = format!("pcbench-acks-{}:", std::process::id());
    let plain = RedisRevocations::builder(sentinel)
        .with_prefix(&prefix)
        .connect()
        .await
        .unwrap();
    let acked = RedisRevocations::builder(sentinel)
        .with_prefix(&prefix)
        .with_replica_acks(1, Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    let store = |acks: bool| async move {
        let mut b = RedisStore::builder(sentinel).with_prefix(&format!("pcbench-s-{acks}"));
        if acks {
            b = b.with_replica_acks(1, Duration::from_secs(1));
        }
        SessionManager::new(b.connect().await.unwrap(), SessionConfig::default())
    };
    let (plain_store, acked_store) = (store(false).await, store(true).await);
    let (mut rp, mut ra, mut lp, mut la) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let headers = http::HeaderMap::new();
    for round in 0..ROUNDS {
        for i in 0..PER_ROUND {
            let t = Instant::now();
            plain
                .revoke_token(ISS, &format!("a-{round}-{i}"), now() + 60)
                .await
                .unwrap();
            rp.push(t.elapsed());
            let t = Instant::now();
            acked
                .revoke_token(ISS, &format!("b-{round}-{i}"), now() + 60)
                .await
                .unwrap();
            ra.push(t.elapsed());
            let t = Instant::now();
            let _cookie = plain_store
                .login(&headers, NewSession::new("u"))
                .await
                .unwrap();
            lp.push(t.elapsed());
            let t = Instant::now();
            let _cookie = acked_store
                .login(&headers, NewSession::new("u"))
                .await
                .unwrap();
            la.push(t.elapsed());
        }
    }
    println!("writes on Sentinel (primary + 2 replicas), interleaved:");
    quartiles("  revoke_token", &mut rp);
    quartiles("  revoke_token, with_replica_acks(1)", &mut ra);
    quartiles("  login (session create)", &mut lp);
    quartiles("  login (session create), with_replica_acks(1)", &mut la);
}

/// Script calls (`EVAL`/`EVALSHA`) summed over the cluster's nodes.
fn scripts_run(cluster: &redis_servers::Cluster) -> u64 {
    cluster
        .nodes
        .iter()
        .filter_map(|n| n.cli(&["INFO", "commandstats"]))
        .flat_map(|info| {
            info.lines()
                .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
                .filter_map(|l| l.split("calls=").nth(1)?.split(',').next()?.parse().ok())
                .collect::<Vec<u64>>()
        })
        .sum()
}

async fn limiter_round_trips(cluster: &redis_servers::Cluster) {
    let url = cluster.url();
    let limiter = AttemptLimiter::redis(&url, &format!("pcbench-l-{}", std::process::id()))
        .await
        .unwrap()
        .with_limits(Limits::default().per_user_client(1_000_000, Duration::from_secs(60)));
    let users = Users::new().with_user("alice", User::plain("right"));
    let parts = || {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts
            .extensions
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [198, 51, 100, 9],
                5000,
            ))));
        parts
    };
    // Warm: scripts loaded on their node.
    let _ = limiter.verify(&users, "alice", "wrong", &parts()).await;
    let before = scripts_run(cluster);
    let n = 200u64;
    for i in 0..n {
        let pw = if i % 2 == 0 { "wrong" } else { "right" };
        let _ = limiter.verify(&users, "alice", pw, &parts()).await;
    }
    let after = scripts_run(cluster);
    println!(
        "limiter on the cluster: {n} login attempts, half of them right, ran {} scripts ({:.2} per attempt: one to count each, one more to reset the counters after a success)",
        after - before,
        (after - before) as f64 / n as f64
    );
}
