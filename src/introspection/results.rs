//! Settled introspections, cached by the token's SHA-256, and the one call per token
//! in flight that later callers wait for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::Introspection;
use crate::clock::unix_secs_f64;
use crate::context::AuthContext;
use crate::error::AuthError;

/// What the endpoint said about one token, kept until `until`.
#[derive(Clone)]
pub(super) enum Outcome {
    Active(AuthContext),
    Inactive,
}

pub(super) struct Entry {
    pub(super) outcome: Outcome,
    pub(super) until: Instant,
}

/// A settled introspection, or the error that ends the request (never cached).
pub(super) type Flight = Arc<OnceCell<Result<Outcome, AuthError>>>;

/// One caller's hold on a token's in-flight slot: the slot leaves the map when its last
/// holder lets go, finished or dropped. Holders are cloned and released only under the
/// map's lock, so the count it reads there is exact.
struct Slot<'a> {
    map: &'a Mutex<HashMap<[u8; 32], Flight>>,
    key: [u8; 32],
    flight: Option<Flight>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mine) = self.flight.take() else {
            return;
        };
        // The map's reference and this one: nobody else waits on this flight.
        if map.get(&self.key).is_some_and(|f| Arc::ptr_eq(f, &mine))
            && Arc::strong_count(&mine) == 2
        {
            map.remove(&self.key);
        }
        drop(mine);
    }
}

impl Introspection {
    pub(super) fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    pub(super) fn cached(&self, key: &[u8; 32]) -> Option<Outcome> {
        let cache = self.inner.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(key)
            .filter(|e| e.until > Instant::now())
            .map(|e| e.outcome.clone())
    }

    fn remember(&self, key: [u8; 32], outcome: &Outcome, ctx_exp: Option<f64>) {
        let now = Instant::now();
        let ttl = match outcome {
            Outcome::Inactive => self.inner.s.inactive_ttl,
            Outcome::Active(_) => {
                let left = ctx_exp.map_or(f64::INFINITY, |exp| exp - unix_secs_f64());
                self.inner
                    .s
                    .max_ttl
                    .min(Duration::from_secs_f64(left.clamp(0.0, 1e9)))
            }
        };
        let mut cache = self.inner.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= self.inner.s.capacity && !cache.contains_key(&key) {
            cache.retain(|_, e| e.until > now);
            while cache.len() >= self.inner.s.capacity {
                let Some(victim) = cache.keys().next().copied() else {
                    break;
                };
                cache.remove(&victim);
            }
        }
        cache.insert(
            key,
            Entry {
                outcome: outcome.clone(),
                until: now + ttl,
            },
        );
    }

    /// One call per token at a time: later callers wait for the first one's outcome.
    /// The token's slot is freed when its last caller finishes or is dropped (a timeout
    /// layer, a reset stream), so abandoned calls never hold slots.
    pub(super) async fn introspect_once(
        &self,
        key: [u8; 32],
        token: &str,
    ) -> Result<Outcome, AuthError> {
        let slot = {
            let mut map = self
                .inner
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let flight = match map.get(&key) {
                Some(f) => f.clone(),
                None if map.len() >= self.inner.s.max_in_flight => {
                    return Err(AuthError::unavailable(
                        "introspection: too many tokens being introspected",
                    ));
                }
                None => {
                    let f = Flight::default();
                    map.insert(key, f.clone());
                    f
                }
            };
            Slot {
                map: &self.inner.in_flight,
                key,
                flight: Some(flight),
            }
        };
        let Some(flight) = slot.flight.as_ref() else {
            return Err(AuthError::unavailable("introspection: no slot"));
        };
        let result = flight
            .get_or_init(|| async {
                let r = self.introspect(token).await;
                if let Ok((outcome, exp)) = &r {
                    self.remember(key, outcome, *exp);
                }
                r.map(|(o, _)| o)
            })
            .await
            .clone();
        drop(slot);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Scheme;
    use crate::introspection::ClientAuth;

    #[test]
    fn the_cache_never_exceeds_its_capacity() {
        let i = Introspection::new("http://127.0.0.1:9/introspect", ClientAuth::basic("a", "b"))
            .unwrap()
            .with_capacity(8);
        for n in 0..1000u32 {
            let ctx = AuthContext::builder(n.to_string(), Scheme::Bearer).build();
            i.remember(
                Introspection::key(&n.to_string()),
                &Outcome::Active(ctx),
                None,
            );
            assert!(i.inner.cache.lock().unwrap().len() <= 8);
        }
        // The newest entry is always kept.
        assert!(i.cached(&Introspection::key("999")).is_some());
    }
}
