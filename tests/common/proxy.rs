//! A loopback TCP proxy for fault tests: the shared servers are never stopped or slowed,
//! only the connections through this proxy.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub const UP: u8 = 0;
pub const DOWN: u8 = 1;
pub const SLOW: u8 = 2;
/// The server's answers stop: the client's side of each connection is closed for reading
/// (it sees end of stream) while what it sends still reaches the server.
pub const HALF: u8 = 3;

/// A loopback TCP proxy: UP forwards, DOWN drops every connection, SLOW stalls traffic
/// (a silent link: sockets stay open, nothing arrives), HALF closes the answers' direction.
pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(UP));
        let (cut, _) = watch::channel(0u64);
        let (m, c) = (mode.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if m.load(Ordering::SeqCst) == DOWN {
                    drop(client);
                    continue;
                }
                let (m, mut cut_rx) = (m.clone(), c.subscribe());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let up = tokio::spawn(pump(m.clone(), cr, sw, false));
                    let down = tokio::spawn(pump(m, sr, cw, true));
                    let _ = cut_rx.changed().await;
                    up.abort();
                    down.abort();
                });
            }
        });
        Proxy { addr, mode, cut }
    }
    pub fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        if mode == DOWN {
            self.cut.send_modify(|v| *v += 1);
        }
    }
}

/// Copies one direction, stalling while the proxy is SLOW; the answers' direction
/// (`answers`) shuts down when the proxy is HALF.
async fn pump(
    m: Arc<AtomicU8>,
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    answers: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut half = tokio::time::interval(Duration::from_millis(50));
    loop {
        let n = tokio::select! {
            read = r.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = half.tick(), if answers => {
                if m.load(Ordering::SeqCst) == HALF {
                    let _ = w.shutdown().await;
                    return;
                }
                continue;
            }
        };
        while m.load(Ordering::SeqCst) == SLOW {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if w.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The `host:port` of a server URL (`redis://127.0.0.1:6379`, `postgres://u@h/db`).
pub fn host_port(url: &str, default: u16) -> SocketAddr {
    let rest = url.split("://").nth(1).unwrap();
    let hostport = rest.rsplit('@').next().unwrap().split('/').next().unwrap();
    let hp = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:{default}")
    };
    hp.replace("localhost", "127.0.0.1").parse().unwrap()
}
