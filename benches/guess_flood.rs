//! Resident memory of the showcase under a flood of Basic guesses: every guess names a
//! random user, so every one runs an argon2 verification (the table holds hashed users),
//! two at a time on two cores. The guesses come from 256 loopback source addresses, so
//! the attempt limiter (100 failures per client per 10 minutes) never answers first.
//!
//! ```text
//! cargo build --release --example showcase
//! cargo bench --bench guess_flood                     # 20 000 guesses
//! GUESSES=2000 SHOWCASE=path/to/showcase cargo bench --bench guess_flood
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() {
    let guesses: u32 = std::env::var("GUESSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let bin =
        std::env::var("SHOWCASE").unwrap_or_else(|_| "target/release/examples/showcase".into());
    let port = 39_000 + (std::process::id() % 1000) as u16;
    let server = Server(
        Command::new(&bin)
            .env("PORTCULLIS_ADDR", format!("127.0.0.1:{port}"))
            .env("ADMIN_PASSWORD", "flood-admin-password")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{bin}: {e} (cargo build --release --example showcase)")),
    );
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let probe = reqwest::Client::new();
    for _ in 0..200 {
        if probe.get(format!("{base}/health")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One real login, so the process has verified once before the first reading.
    let _ = probe
        .get(format!("{base}/basic/me"))
        .basic_auth("admin", Some("flood-admin-password"))
        .send()
        .await;
    let before = rss_kib(pid);
    println!("showcase {bin}: RSS before the flood {} MiB", before / 1024);
    let done = Arc::new(AtomicU32::new(0));
    let (ok, limited) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..16u8 {
        let (done, ok, limited, base) = (done.clone(), ok.clone(), limited.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let clients: Vec<reqwest::Client> = (0..16u8)
                .map(|i| {
                    let source = IpAddr::V4(Ipv4Addr::new(127, 1, worker, i + 1));
                    reqwest::Client::builder()
                        .local_address(source)
                        .timeout(Duration::from_secs(60))
                        .build()
                        .unwrap()
                })
                .collect();
            let mut n = 0usize;
            while done.fetch_add(1, Ordering::SeqCst) < guesses {
                let user = format!("guess-{}", rand::random::<u64>());
                let res = clients[n % clients.len()]
                    .get(format!("{base}/basic/me"))
                    .basic_auth(user, Some("wrong"))
                    .send()
                    .await;
                n += 1;
                match res.map(|r| r.status().as_u16()) {
                    Ok(401) => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(_) | Err(_) => limited.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let mut last = Instant::now();
    while tasks.iter().any(|t| !t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if last.elapsed() > Duration::from_secs(30) {
            last = Instant::now();
            println!(
                "  {:>6} guesses, RSS {} MiB",
                done.load(Ordering::SeqCst).min(guesses),
                rss_kib(pid) / 1024
            );
        }
    }
    let after = rss_kib(pid);
    println!(
        "after {guesses} guesses in {:.0} s ({} answered 401, {} otherwise): RSS {} MiB ({:+} MiB)",
        start.elapsed().as_secs_f64(),
        ok.load(Ordering::Relaxed),
        limited.load(Ordering::Relaxed),
        after / 1024,
        (after as i64 - before as i64) / 1024
    );
}
