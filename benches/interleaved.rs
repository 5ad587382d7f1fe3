//! JWT verification ratios in CPU time, interleaved: our verify, `jsonwebtoken::decode`
//! and the limit take turns in slices of about 10 ms (the order rotating every round),
//! and each round gives one ratio. The median and quartiles of those ratios are printed.
//! A and B are measured milliseconds apart, so the drift of a shared VM cancels out,
//! which criterion's one-after-the-other groups cannot promise.
//!
//! ```text
//! cargo bench --bench interleaved            # ROUNDS=60 by default
//! ```

mod common;

use std::hint::black_box;

use common::limit::LimitKey;
use common::{jsonwebtoken_key, jsonwebtoken_validation, now_or_never, token};

/// CPU time of this thread, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU nanoseconds per call of `op`, over `n` calls.
fn per_call(n: u64, op: &mut dyn FnMut()) -> f64 {
    let start = thread_cpu_ns();
    for _ in 0..n {
        op();
    }
    (thread_cpu_ns() - start) as f64 / n as f64
}

/// How many calls of `op` take about `target_ns` of CPU.
fn calibrate(op: &mut dyn FnMut(), target_ns: f64) -> u64 {
    let mut n = 1;
    loop {
        let ns = per_call(n, op) * n as f64;
        if ns > target_ns / 4.0 {
            return ((n as f64 * target_ns / ns).ceil() as u64).max(1);
        }
        n *= 2;
    }
}

fn quartiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |f: f64| {
        let k = f * (v.len() - 1) as f64;
        let (i, frac) = (k.floor() as usize, k - k.floor());
        if i + 1 < v.len() {
            v[i] + frac * (v[i + 1] - v[i])
        } else {
            v[i]
        }
    };
    (at(0.25), at(0.5), at(0.75))
}

fn main() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(60);
    println!(
        "{:<7} {:>11} {:>11} {:>11} | {:<24} | {:<24}",
        "alg", "ours ns", "jwt ns", "limit ns", "ours/jwt med [q1-q3]", "ours/limit med [q1-q3]"
    );
    for (name, key) in common::ALGORITHMS {
        let t = token(key);
        let verifier = common::verifier(key);
        let decoding = jsonwebtoken_key(key);
        let validation = jsonwebtoken_validation(key);
        let limit = LimitKey::new(key);

        let mut ours = || {
            black_box(now_or_never(verifier.verify(black_box(&t))).unwrap());
        };
        let mut theirs = || {
            black_box(
                jsonwebtoken::decode::<serde_json::Value>(black_box(&t), &decoding, &validation)
                    .unwrap(),
            );
        };
        let mut least = || {
            black_box(limit.verify(black_box(&t)).unwrap());
        };
        let ops: [&mut dyn FnMut(); 3] = [&mut ours, &mut theirs, &mut least];
        let counts: Vec<u64> = ops.into_iter().map(|op| calibrate(op, 1e7)).collect();
        let ops: [&mut dyn FnMut(); 3] = [&mut ours, &mut theirs, &mut least];
        let (mut to_jwt, mut to_limit, mut ns) =
            (Vec::new(), Vec::new(), [Vec::new(), Vec::new(), Vec::new()]);
        for round in 0..rounds {
            let mut took = [0.0; 3];
            for k in 0..3 {
                let i = (round + k) % 3;
                took[i] = per_call(counts[i], &mut *ops[i]);
            }
            to_jwt.push(took[0] / took[1]);
            to_limit.push(took[0] / took[2]);
            for i in 0..3 {
                ns[i].push(took[i]);
            }
        }
        let med = |v: &Vec<f64>| quartiles(v.clone()).1;
        let (a, b, c) = quartiles(to_jwt);
        let (d, e, f) = quartiles(to_limit);
        println!(
            "{name:<7} {:>11.0} {:>11.0} {:>11.0} | {b:.3} [{a:.3}-{c:.3}]      | {e:.3} [{d:.3}-{f:.3}]",
            med(&ns[0]),
            med(&ns[1]),
            med(&ns[2]),
        );
    }
}
