//! A flood of Basic guesses against hashed users costs bounded resident memory: argon2
//! runs on a fixed set of workers that reuse their memory. Alone in its test binary, so
//! the process's resident memory is this test's.

mod common;

use std::time::Duration;

use axum::body::Body;
use common::{Probe, basic, get, send};
use http::StatusCode;
use portcullis::basic::BasicAuth;
use portcullis::{AuthLayer, User, Users, hash_password};

/// This process's resident memory, in bytes (Linux).
fn rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guess_flood_stays_within_workers_times_memory_cost() {
    const WORKERS: u64 = 2;
    const MEMORY_COST: u64 = 19 * 1024 * 1024; // argon2's default m = 19 MiB
    const SLACK: u64 = 24 * 1024 * 1024;
    let Some(_) = rss() else {
        eprintln!("skip: no /proc/self/status");
        return;
    };
    let phc = hash_password("right").unwrap();
    let users = Users::new()
        .with_user("admin", User::hashed(&phc).unwrap())
        .with_max_concurrent_hashes(WORKERS as usize)
        .with_hash_queue_timeout(Duration::from_secs(120));
    let probe = Probe::default();
    let app = probe
        .router("/me")
        .layer(AuthLayer::required(BasicAuth::new("r").with_users(users)));
    // Warm up: the router, the runtime and one verification per worker.
    for _ in 0..4 {
        send(
            &app,
            get("/me")
                .header("authorization", basic("admin", "x"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    }
    let before = rss().unwrap();
    let guesses = 400u32;
    let mut tasks = Vec::new();
    for chunk in 0..16u32 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut refused = 0u32;
            for i in 0..guesses / 16 {
                let user = format!("user-{chunk}-{i}-{}", rand::random::<u32>());
                let a = send(
                    &app,
                    get("/me")
                        .header("authorization", basic(&user, "guess"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await;
                refused += u32::from(a.status == StatusCode::UNAUTHORIZED);
            }
            refused
        }));
    }
    let mut refused = 0;
    for t in tasks {
        refused += t.await.unwrap();
    }
    assert_eq!(refused, guesses, "every guess was verified and refused");
    let after = rss().unwrap();
    let grew = after.saturating_sub(before);
    eprintln!(
        "RSS before {} MiB, after {guesses} guesses {} MiB (+{} MiB)",
        before >> 20,
        after >> 20,
        grew >> 20
    );
    assert!(
        grew <= WORKERS * MEMORY_COST + SLACK,
        "resident memory grew by {} MiB over a flood of {guesses} guesses",
        grew >> 20
    );
    assert_eq!(probe.runs(), 0);
}
