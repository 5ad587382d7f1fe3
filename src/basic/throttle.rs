//! Failed-attempt throttling for Basic auth, per user name and client.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use http::request::Parts;

use crate::error::AuthError;

/// Who is guessing, as far as the throttle can tell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Client {
    Ip(IpAddr),
    Custom(Box<str>),
    /// No address and no key function: every client shares one budget per user name.
    Unknown,
}

type Key = (String, Client);
type ClientKeyFn = dyn Fn(&Parts) -> Option<String> + Send + Sync;

#[derive(Debug)]
struct Entry {
    /// Failures in this window plus attempts still being verified.
    attempts: u32,
    window_start: Instant,
}

/// Locks a (user name, client) pair out for the rest of `window` after `max_failures`
/// failed attempts; answers 429 with `Retry-After` meanwhile.
///
/// - An attempt is counted *before* its password is checked, so parallel guesses cannot
///   slip past the limit; a success clears the pair, an unavailable backend gives the
///   attempt back.
/// - The table holds at most `max_entries` pairs (default 100 000, about 100 bytes
///   each). When it is full, pairs whose window ended go first, then the oldest pairs
///   that are not locked; a lock is never lifted before its window ends. When every
///   pair is locked, attempts from new pairs are refused too (429) until one ends.
/// - The client is the connection's IP address (axum's `ConnectInfo<SocketAddr>`) or
///   whatever [`with_client_key`](Self::with_client_key) returns. Without either, the
///   pair is (user name, unknown client): anyone can then lock a user out, so the
///   throttle logs an error the first time it happens.
///
/// ```
/// use std::time::Duration;
/// use portcullis::basic::Throttle;
/// let t = Throttle::new(5, Duration::from_secs(60))
///     .with_client_key(|req| req.headers.get("x-client-id")?.to_str().ok().map(str::to_owned));
/// # let _ = t;
/// ```
#[derive(Clone)]
pub struct Throttle {
    max_failures: u32,
    window: Duration,
    max_entries: usize,
    table: Arc<Mutex<HashMap<Key, Entry>>>,
    client_key: Option<Arc<ClientKeyFn>>,
    warned_unknown: Arc<AtomicBool>,
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("max_failures", &self.max_failures)
            .field("window", &self.window)
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

/// One attempt counted against a pair; dropped without a verdict, it is given back.
pub(crate) struct Attempt<'a> {
    throttle: &'a Throttle,
    key: Option<Key>,
    window_start: Instant,
}

impl Attempt<'_> {
    /// The password was right: the pair starts from zero.
    pub(crate) fn succeeded(mut self) {
        if let Some(key) = self.key.take() {
            self.throttle.lock().remove(&key);
        }
    }
    /// The password was wrong: the attempt stays counted.
    pub(crate) fn failed(mut self) {
        self.key = None;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut table = self.throttle.lock();
        if let Some(e) = table.get_mut(&key)
            && e.window_start == self.window_start
        {
            e.attempts = e.attempts.saturating_sub(1);
        }
    }
}

impl Throttle {
    /// Allow `max_failures` failures per `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Throttle {
            max_failures: max_failures.max(1),
            window,
            max_entries: 100_000,
            table: Arc::default(),
            client_key: None,
            warned_unknown: Arc::default(),
        }
    }
    /// Bound the number of tracked pairs.
    pub fn with_max_entries(mut self, n: usize) -> Self {
        self.max_entries = n.max(1);
        self
    }
    /// Identify the client with your own function (an API key id, a trusted header set
    /// by your proxy) instead of the connection's address. `None` falls back to the
    /// address.
    pub fn with_client_key<F>(mut self, f: F) -> Self
    where
        F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    {
        self.client_key = Some(Arc::new(f));
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn client(&self, parts: &Parts) -> Client {
        if let Some(key) = self.client_key.as_ref().and_then(|f| f(parts)) {
            return Client::Custom(key.into());
        }
        if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            return Client::Ip(addr.ip());
        }
        if !self.warned_unknown.swap(true, Ordering::Relaxed) {
            tracing::error!(
                "Basic throttle: the request has no client address, so failures count per \
                 user name alone and anyone can lock a user out; serve the router with \
                 `into_make_service_with_connect_info::<SocketAddr>()` or set \
                 `Throttle::with_client_key`"
            );
        }
        Client::Unknown
    }

    /// Counts one attempt for `key`, or refuses it (429) when the pair is locked.
    pub(crate) fn reserve(&self, key: Key) -> Result<Attempt<'_>, AuthError> {
        let now = Instant::now();
        let mut table = self.lock();
        if table.len() >= self.max_entries && !table.contains_key(&key) {
            self.make_room(&mut table, now)?;
        }
        let e = table.entry(key.clone()).or_insert(Entry {
            attempts: 0,
            window_start: now,
        });
        let elapsed = now.duration_since(e.window_start);
        if elapsed >= self.window {
            e.attempts = 0;
            e.window_start = now;
        } else if e.attempts >= self.max_failures {
            return Err(AuthError::too_many_attempts(self.seconds_left(elapsed)));
        }
        e.attempts += 1;
        Ok(Attempt {
            throttle: self,
            key: Some(key),
            window_start: e.window_start,
        })
    }

    fn seconds_left(&self, elapsed: Duration) -> u64 {
        self.window.saturating_sub(elapsed).as_secs_f64().ceil() as u64
    }

    /// Frees a tenth of the table: ended windows first, then the oldest unlocked pairs.
    fn make_room(&self, table: &mut HashMap<Key, Entry>, now: Instant) -> Result<(), AuthError> {
        table.retain(|_, e| now.duration_since(e.window_start) < self.window);
        if table.len() < self.max_entries {
            return Ok(());
        }
        let mut unlocked: Vec<(Instant, Key)> = table
            .iter()
            .filter(|(_, e)| e.attempts < self.max_failures)
            .map(|(k, e)| (e.window_start, k.clone()))
            .collect();
        unlocked.sort_unstable_by_key(|(start, _)| *start);
        for (_, k) in unlocked.into_iter().take(self.max_entries / 10 + 1) {
            table.remove(&k);
        }
        if table.len() < self.max_entries {
            return Ok(());
        }
        // Every pair is locked: refuse newcomers until the oldest lock ends.
        let oldest = table.values().map(|e| e.window_start).min().unwrap_or(now);
        tracing::warn!("Basic throttle table full of locked pairs; refusing new pairs");
        Err(AuthError::too_many_attempts(
            self.seconds_left(now.duration_since(oldest)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(user: &str, n: u8) -> Key {
        (user.to_owned(), Client::Ip(IpAddr::from([10, 0, 0, n])))
    }

    #[test]
    fn attempts_in_flight_count_and_are_given_back() {
        let t = Throttle::new(2, Duration::from_secs(60));
        let a = t.reserve(key("u", 1)).unwrap();
        let b = t.reserve(key("u", 1)).unwrap();
        assert!(
            t.reserve(key("u", 1)).is_err(),
            "third guess while two are in flight"
        );
        drop(a); // unavailable backend: given back
        let c = t.reserve(key("u", 1)).unwrap();
        b.failed();
        c.failed();
        assert!(t.reserve(key("u", 1)).is_err());
        assert!(
            t.reserve(key("u", 2)).is_ok(),
            "another client keeps its budget"
        );
    }

    #[test]
    fn success_clears_the_pair() {
        let t = Throttle::new(2, Duration::from_secs(60));
        t.reserve(key("u", 1)).unwrap().failed();
        t.reserve(key("u", 1)).unwrap().succeeded();
        t.reserve(key("u", 1)).unwrap().failed();
        assert!(t.reserve(key("u", 1)).is_ok());
    }

    #[test]
    fn a_full_table_never_lifts_a_lock() {
        let t = Throttle::new(2, Duration::from_secs(60)).with_max_entries(100);
        for _ in 0..2 {
            t.reserve(key("victim", 1)).unwrap().failed();
        }
        for i in 0..5_000u32 {
            let k = (format!("spray{i}"), Client::Ip(IpAddr::from([10, 1, 0, 1])));
            if let Ok(a) = t.reserve(k) {
                a.failed();
            }
            assert!(
                t.reserve(key("victim", 1)).is_err(),
                "lock lifted after {i}"
            );
        }
        assert!(t.lock().len() <= 100);
    }

    #[test]
    fn a_table_full_of_locks_refuses_newcomers() {
        let t = Throttle::new(1, Duration::from_secs(60)).with_max_entries(10);
        for i in 0..10u8 {
            t.reserve(key("u", i)).unwrap().failed();
        }
        let err = t.reserve(key("u", 200)).err().unwrap();
        assert_eq!(err.kind(), crate::ErrorKind::TooManyAttempts);
        assert!(err.retry_after().unwrap() >= 59);
    }

    #[test]
    fn oldest_unlocked_pairs_go_first() {
        let t = Throttle::new(5, Duration::from_secs(60)).with_max_entries(10);
        for i in 0..10u8 {
            t.reserve(key("u", i)).unwrap().failed();
            std::thread::sleep(Duration::from_millis(2));
        }
        t.reserve(key("u", 100)).unwrap().failed();
        let table = t.lock();
        assert!(!table.contains_key(&key("u", 0)), "oldest evicted");
        assert!(table.contains_key(&key("u", 9)), "newest kept");
    }
}
