//! [`MemoryLimits`]: the attempt counters in process memory, bounded.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Backend, Keys, Limits, Settle, Verdict};
use crate::StoreError;
use crate::authenticator::BoxFuture;
use crate::prehashed::PrehashedMap;

/// One counter: failures in the current window, the limit it counts toward, when the
/// window ends, the last attempt.
#[derive(Debug, Clone, Copy)]
struct Counter {
    n: u32,
    max: u32,
    ends_ms: u64,
    last_ms: u64,
}

/// Counters by key fingerprint (already keyed SipHash).
type Table = PrehashedMap<Counter>;

/// Attempt counters in process memory, at most `max_keys` of them (default 100 000).
/// A slot is 33 bytes whatever the user name and client (the table keeps a 64-bit keyed
/// fingerprint of them). The table holds at most twice `max_keys × 8 / 7` slots,
/// rounded up to a power of two (a hash table whose removed slots fill it doubles):
/// 262 144 slots, about 8.3 MiB, by default, however many distinct users and clients
/// a flood invents. When full, ended windows go first, then the counters
/// closest to their end that refuse nothing; counters that refuse are never dropped
/// early: a table full of them refuses new keys (429) until one ends.
///
/// ```
/// use portcullis::limit::{AttemptLimiter, MemoryLimits};
/// let limiter = AttemptLimiter::in_memory(MemoryLimits::default().with_max_keys(10_000));
/// # let _ = limiter;
/// ```
#[derive(Clone)]
pub struct MemoryLimits {
    table: Arc<Mutex<Table>>,
    max_keys: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        MemoryLimits {
            table: Arc::default(),
            max_keys: 100_000,
        }
    }
}

impl fmt::Debug for MemoryLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLimits")
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

impl MemoryLimits {
    /// Keep at most `n` counters.
    pub fn with_max_keys(mut self, n: usize) -> Self {
        self.max_keys = n.max(3);
        self
    }
    /// Counters held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }
    /// True when no counter is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks and counts synchronously (the memory backend never waits).
    fn attempt_now(&self, keys: &Keys, limits: &Limits, now: u64) -> Verdict {
        let mut table = self.lock();
        // Only a nearly full table needs to know how many counters would be new.
        if table.len() + 3 > self.max_keys {
            let needed = keys.ids.iter().filter(|k| !table.contains_key(k)).count();
            if needed > 0
                && table.len() + needed > self.max_keys
                && !self.make_room(&mut table, now, needed)
            {
                let soonest = table.values().map(|c| c.ends_ms).min();
                tracing::warn!(
                    "attempt limiter table full of refusing counters; refusing new ones"
                );
                let wait = soonest.unwrap_or(now + 1000).saturating_sub(now);
                return Verdict::Refused(wait.max(1000));
            }
        }
        let [user_client, client, user] = keys.ids;
        let all = [
            (user_client, limits.per_user_client, false),
            (client, limits.per_client, false),
            (user, limits.per_user, true),
        ];
        // One lookup per counter: check and count together. A refusal undoes the counts
        // already made for this attempt.
        for (i, (key, (max, window), backs_off)) in all.iter().enumerate() {
            let refused = match table.get_mut(key) {
                Some(c) if c.ends_ms > now => {
                    let wait = if c.n < *max {
                        None
                    } else if *backs_off {
                        let ready = c.last_ms + limits.backoff_ms(c.n - max);
                        (now < ready).then(|| ready - now)
                    } else {
                        Some(c.ends_ms - now)
                    };
                    if wait.is_none() {
                        c.n += 1;
                        c.last_ms = now;
                    }
                    wait
                }
                Some(c) => {
                    *c = Counter {
                        n: 1,
                        max: *max,
                        ends_ms: now + window.as_millis() as u64,
                        last_ms: now,
                    };
                    None
                }
                None => {
                    let fresh = Counter {
                        n: 1,
                        max: *max,
                        ends_ms: now + window.as_millis() as u64,
                        last_ms: now,
                    };
                    table.insert(*key, fresh);
                    None
                }
            };
            if let Some(wait) = refused {
                for (undo, _, _) in &all[..i] {
                    if let Some(c) = table.get_mut(undo) {
                        c.n = c.n.saturating_sub(1);
                    }
                }
                return Verdict::Refused(wait);
            }
        }
        Verdict::Allowed
    }

    /// Frees room for `needed` counters; false when only refusing counters are left.
    fn make_room(&self, table: &mut Table, now: u64, needed: usize) -> bool {
        table.retain(|_, c| c.ends_ms > now);
        if table.len() + needed <= self.max_keys {
            return true;
        }
        // Counters that refuse nothing (each knows the limit it counts toward), soonest
        // to end first.
        let mut spare: Vec<(u64, u64)> = table
            .iter()
            .filter(|(_, c)| c.n < c.max)
            .map(|(k, c)| (c.ends_ms, *k))
            .collect();
        // A quarter of the table at a time, so a flood pays this rarely.
        let goal = (self.max_keys / 4).max(needed).min(spare.len());
        if goal > 0 && goal < spare.len() {
            spare.select_nth_unstable(goal - 1);
        }
        for (_, k) in spare.into_iter().take(goal) {
            table.remove(&k);
        }
        table.len() + needed <= self.max_keys
    }

    fn settle_now(&self, keys: &Keys, how: Settle) {
        let mut table = self.lock();
        let [user_client, client, user] = keys.ids;
        let mut give_back = |k: u64| {
            if let Some(c) = table.get_mut(&k) {
                c.n = c.n.saturating_sub(1);
            }
        };
        match how {
            Settle::Success => {
                give_back(client);
                // Reset rather than removed: the next login finds its counters in place.
                for k in [user_client, user] {
                    if let Some(c) = table.get_mut(&k) {
                        c.n = 0;
                    }
                }
            }
            Settle::GiveBack => {
                give_back(user_client);
                give_back(client);
                give_back(user);
            }
        }
    }
}

impl Backend for MemoryLimits {
    fn try_attempt(&self, keys: &Keys, limits: &Limits, now_ms: u64) -> Option<Verdict> {
        Some(self.attempt_now(keys, limits, now_ms))
    }
    fn try_settle(&self, keys: &Keys, how: Settle) -> bool {
        self.settle_now(keys, how);
        true
    }
    fn attempt<'a>(
        &'a self,
        keys: &'a Keys,
        limits: &'a Limits,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Verdict, StoreError>> {
        let v = self.attempt_now(keys, limits, now_ms);
        Box::pin(std::future::ready(Ok(v)))
    }
    fn settle<'a>(&'a self, keys: &'a Keys, how: Settle) -> BoxFuture<'a, Result<(), StoreError>> {
        self.settle_now(keys, how);
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn named(user_client: &str, client: &str, user: &str) -> Keys {
        let id = crate::limit::keys::user_fingerprint;
        Keys {
            ids: [id(user_client), id(client), id(user)],
            names: Default::default(),
        }
    }

    fn keys(user: &str, client: &str) -> Keys {
        named(
            &format!("uc:{}:{user}:{client}", user.len()),
            &format!("c:{client}"),
            &format!("u:{user}"),
        )
    }

    #[test]
    fn per_user_and_client_then_reset_on_success() {
        let m = MemoryLimits::default();
        let l = Limits::default().per_user_client(3, Duration::from_secs(60));
        let k = keys("alice", "1.2.3.4");
        for _ in 0..3 {
            assert_eq!(m.attempt_now(&k, &l, 1_000), Verdict::Allowed);
        }
        assert_eq!(m.attempt_now(&k, &l, 2_000), Verdict::Refused(59_000));
        // Another client is not affected; the window's end lifts the refusal.
        assert_eq!(
            m.attempt_now(&keys("alice", "5.6.7.8"), &l, 2_000),
            Verdict::Allowed
        );
        assert_eq!(m.attempt_now(&k, &l, 61_000), Verdict::Allowed);
        m.settle_now(&k, Settle::Success);
        for _ in 0..3 {
            assert_eq!(m.attempt_now(&k, &l, 62_000), Verdict::Allowed);
        }
    }

    #[test]
    fn one_client_trying_many_users_is_stopped() {
        let m = MemoryLimits::default();
        let l = Limits::default().per_client(10, Duration::from_secs(60));
        for i in 0..10 {
            assert_eq!(
                m.attempt_now(&keys(&format!("user{i}"), "6.6.6.6"), &l, 0),
                Verdict::Allowed
            );
        }
        assert!(matches!(
            m.attempt_now(&keys("user99", "6.6.6.6"), &l, 0),
            Verdict::Refused(_)
        ));
    }

    #[test]
    fn a_sprayed_user_is_slowed_never_locked() {
        let m = MemoryLimits::default();
        let l = Limits::default().per_user(5, Duration::from_secs(900));
        for i in 0..5 {
            assert_eq!(
                m.attempt_now(&keys("bob", &format!("10.0.0.{i}")), &l, 0),
                Verdict::Allowed
            );
        }
        // Over the limit: 1 s, then 2 s, 4 s... apart, at most 30 s.
        assert_eq!(
            m.attempt_now(&keys("bob", "10.0.1.1"), &l, 500),
            Verdict::Refused(500)
        );
        assert_eq!(
            m.attempt_now(&keys("bob", "10.0.1.1"), &l, 1_000),
            Verdict::Allowed
        );
        assert_eq!(
            m.attempt_now(&keys("bob", "10.0.1.2"), &l, 2_000),
            Verdict::Refused(1_000)
        );
        let mut t = 3_000;
        for _ in 0..20 {
            match m.attempt_now(&keys("bob", "10.0.1.3"), &l, t) {
                Verdict::Allowed => {}
                Verdict::Refused(ms) => {
                    assert!(ms <= 30_000, "backed off {ms} ms");
                    t += ms;
                    continue;
                }
            }
            t += 1;
        }
    }

    #[test]
    fn a_spray_of_distinct_keys_stays_bounded_and_keeps_refusals() {
        let m = MemoryLimits::default().with_max_keys(3_000);
        let l = Limits::default().per_user_client(2, Duration::from_secs(60));
        let victim = keys("victim", "9.9.9.9");
        for _ in 0..2 {
            assert_eq!(m.attempt_now(&victim, &l, 0), Verdict::Allowed);
        }
        for i in 0..1_000_000u32 {
            let k = keys(&format!("u{i}"), &format!("c{}", i % 5_000));
            let _ = m.attempt_now(&k, &l, 1);
            if i % 100_000 == 0 {
                assert!(m.len() <= 3_000);
                assert!(matches!(m.attempt_now(&victim, &l, 2), Verdict::Refused(_)));
            }
        }
        assert!(m.len() <= 3_000);
        assert!(matches!(m.attempt_now(&victim, &l, 2), Verdict::Refused(_)));
    }

    #[test]
    fn the_default_table_stays_within_its_stated_bytes() {
        // 1 000 000 distinct users from 1 000 000 clients against the default bound.
        let m = MemoryLimits::default();
        let l = Limits::default();
        for i in 0..1_000_000u32 {
            let _ = m.attempt_now(&keys(&format!("u{i}"), &format!("c{i}")), &l, 1);
        }
        assert!(m.len() <= 100_000);
        // hashbrown: buckets are a power of two holding at most 7/8 items each.
        let slots = (m.lock().capacity() * 8 / 7).next_power_of_two();
        assert!(slots <= 262_144, "{slots} slots");
        // A slot: the fingerprint, the counter and hashbrown's control byte.
        let slot_bytes = size_of::<(u64, Counter)>() + 1;
        assert_eq!(slot_bytes, 33);
        assert!(
            slots * slot_bytes <= 8_650_752,
            "{} bytes",
            slots * slot_bytes
        );
    }

    #[test]
    fn a_full_table_keeps_refusals_under_any_limits() {
        // A credential counter refuses at 3 (its own limits), though the password limits
        // of the spray allow 100 per client: it must survive the spray all the same.
        let m = MemoryLimits::default().with_max_keys(300);
        let credential = Limits::default().per_user_client(3, Duration::from_secs(60));
        let password = Limits::default();
        let blocked = named("cred:9.9.9.9", "c:9.9.9.9", "credu:9.9.9.9");
        for _ in 0..3 {
            assert_eq!(m.attempt_now(&blocked, &credential, 0), Verdict::Allowed);
        }
        for i in 0..10_000u32 {
            let _ = m.attempt_now(&keys(&format!("u{i}"), &format!("c{i}")), &password, 1);
            assert!(m.len() <= 300);
        }
        assert!(matches!(
            m.attempt_now(&blocked, &credential, 2),
            Verdict::Refused(_)
        ));
    }
}
