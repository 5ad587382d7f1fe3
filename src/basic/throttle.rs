//! Failed-attempt throttling for Basic auth, per user name and client IP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::AuthError;

type Key = (String, Option<IpAddr>);

#[derive(Debug)]
struct Entry {
    failures: u32,
    window_start: Instant,
}

/// Locks a (user name, client IP) pair out for the rest of `window` after
/// `max_failures` failed attempts; answers 429 with `Retry-After` meanwhile.
/// The table is bounded (`max_entries`, default 100 000).
///
/// The client IP comes from axum's `ConnectInfo<SocketAddr>`; behind a proxy, put a
/// layer in front that sets it from a trusted header.
///
/// ```
/// use std::time::Duration;
/// use portcullis::basic::Throttle;
/// let t = Throttle::new(5, Duration::from_secs(60));
/// # let _ = t;
/// ```
#[derive(Debug, Clone)]
pub struct Throttle {
    max_failures: u32,
    window: Duration,
    max_entries: usize,
    table: Arc<Mutex<HashMap<Key, Entry>>>,
}

impl Throttle {
    /// Allow `max_failures` failures per `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Throttle {
            max_failures: max_failures.max(1),
            window,
            max_entries: 100_000,
            table: Arc::default(),
        }
    }
    /// Bound the number of tracked pairs.
    pub fn with_max_entries(mut self, n: usize) -> Self {
        self.max_entries = n.max(1);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn check(&self, key: &Key) -> Result<(), AuthError> {
        let now = Instant::now();
        let table = self.lock();
        if let Some(e) = table.get(key) {
            let elapsed = now.duration_since(e.window_start);
            if e.failures >= self.max_failures && elapsed < self.window {
                let left = (self.window - elapsed).as_secs_f64().ceil() as u64;
                return Err(AuthError::too_many_attempts(left));
            }
        }
        Ok(())
    }

    pub(crate) fn failed(&self, key: Key) {
        let now = Instant::now();
        let mut table = self.lock();
        if table.len() >= self.max_entries && !table.contains_key(&key) {
            table.retain(|_, e| now.duration_since(e.window_start) < self.window);
            if table.len() >= self.max_entries {
                // Still full: drop an arbitrary tenth rather than grow without bound.
                let drop: Vec<Key> = table
                    .keys()
                    .take(self.max_entries / 10 + 1)
                    .cloned()
                    .collect();
                for k in drop {
                    table.remove(&k);
                }
            }
        }
        let e = table.entry(key).or_insert(Entry {
            failures: 0,
            window_start: now,
        });
        if now.duration_since(e.window_start) >= self.window {
            e.failures = 0;
            e.window_start = now;
        }
        e.failures += 1;
    }

    pub(crate) fn succeeded(&self, key: &Key) {
        self.lock().remove(key);
    }
}
