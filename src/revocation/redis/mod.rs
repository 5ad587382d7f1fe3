//! [`RedisRevocations`] (feature `redis`): one revocation list for every instance.
//!
//! Writes go to one Redis hash (`<prefix>revoked`): the entry and a version (field `#v`,
//! incremented by every write) change together in one script, which also publishes the
//! entry with its version on a channel of the same name. Each instance subscribes,
//! loads the whole hash, then applies what the channel brings. It never depends on a
//! message arriving: every second it pings its subscription and reads the version, and
//! reloads the whole list when the version moved past the last message it applied (a
//! message was lost) or went back (Redis lost data). An instance that cannot do that
//! check within its one-second timeouts marks its copy out of sync, and checks fail
//! closed (503) until a full reload succeeds. So a revocation acknowledged by Redis at
//! `T` is enforced by every instance by `T + 4 s`, or that instance answers 503 by then
//! ([`RedisRevocations::SYNC_BOUND`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Revocations;
use super::entry::Entry;
use super::local::Backend;
use crate::StoreError;
use crate::authenticator::BoxFuture;
use crate::redis::{Conn, describe as err, eval};

/// Stores one entry, moves the version and tells every subscriber, atomically; ARGV[3]
/// is `PUBLISH`, or `SPUBLISH` on a cluster (the channel is the key's name, so the same
/// slot).
///
/// Beside the version, `#w` names the write that made it (the server's clock in
/// microseconds): after a failover that lost writes, a new write can bring the version
/// back to a number a follower saw, but not with the same `#w`, so the follower notices
/// that the list it holds is not the one in Redis.
const PUBLISH: &str = r"
local v = redis.call('HINCRBY', KEYS[1], '#v', 1)
local t = redis.call('TIME')
local w = t[1] .. string.format('%06d', tonumber(t[2]))
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], '#w', w)
redis.call(ARGV[3], KEYS[1], v .. '\30' .. w .. '\30' .. ARGV[1] .. '\30' .. ARGV[2])
return v";

/// The hash field holding the list's version.
const VERSION_FIELD: &str = "#v";
/// The hash field naming the write that made the version.
const WRITE_FIELD: &str = "#w";

mod follow;

use self::follow::keep_current;

/// Connects a [`Revocations`] list shared through Redis: a single node, a
/// Sentinel-watched primary or a cluster (the URL forms of
/// [`RedisStore::connect`](crate::session::RedisStore::connect)); [`Revocations::redis`]
/// is the short form.
///
/// Writes go to one Redis hash (`<prefix>revoked`): the entry and a version (field `#v`,
/// incremented by every write) change together in one script, which also publishes the
/// entry with its version on a channel of the same name. Each instance subscribes,
/// loads the whole hash, then applies what the channel brings. It never depends on a
/// message arriving: every second it pings its subscription and reads the version, and
/// reloads the whole list when the version moved past the last message it applied (a
/// message was lost) or went back (Redis lost data). So a revocation acknowledged by
/// Redis at `T` is enforced by every instance by `T + 4 s`, or that instance answers
/// 503 by then ([`RedisRevocations::SYNC_BOUND`]).
///
/// While a copy cannot be proved current (Redis unreachable, a
/// silent link, subscription lost, a failover under way), checks fail closed (503) and
/// `ready()` is false until it has reloaded the whole list, unless
/// [`Revocations::with_fail_open_for`] allows a bounded wait. A message that does not
/// parse is logged and answered by a full reload, never trusted. On a cluster the list,
/// its version and its channel are one key's name (one slot), published with
/// `SPUBLISH` and followed with `SSUBSCRIBE`.
///
/// ```no_run
/// # async fn f() -> Result<(), portcullis::StoreError> {
/// use portcullis::revocation::RedisRevocations;
/// let revocations = RedisRevocations::builder("redis://127.0.0.1:6379")
///     .with_prefix("app:")
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RedisRevocations;

/// Settings for a [`RedisRevocations`] list; see [`RedisRevocations::builder`].
#[derive(Clone)]
#[must_use]
pub struct RedisRevocationsBuilder {
    url: String,
    prefix: String,
    replica_acks: Option<(u32, Duration)>,
}

impl std::fmt::Debug for RedisRevocationsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRevocationsBuilder")
            .field("url", &crate::redis::redacted(&self.url))
            .field("prefix", &self.prefix)
            .field("replica_acks", &self.replica_acks)
            .finish()
    }
}

/// Connecting and one round trip on the list's connections.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

struct Shared {
    conn: Conn,
    key: String,
    publish: &'static str,
    /// The connection writes go over when they wait for replicas, how many, how long.
    acks: Option<(Conn, u32, Duration)>,
}

impl RedisRevocations {
    /// A list to configure before connecting.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), portcullis::StoreError> {
    /// use std::time::Duration;
    /// use portcullis::revocation::RedisRevocations;
    /// let revocations = RedisRevocations::builder("redis-sentinel://10.0.0.1:26379,10.0.0.2:26379/auth")
    ///     .with_prefix("app:")
    ///     .with_replica_acks(1, Duration::from_millis(500))
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(url: &str) -> RedisRevocationsBuilder {
        RedisRevocationsBuilder {
            url: url.to_owned(),
            prefix: String::new(),
            replica_acks: None,
        }
    }
}

impl RedisRevocationsBuilder {
    /// Key and channel prefix (default none): the list is `<prefix>revoked`, taken as
    /// given.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.prefix);
        self
    }
    /// Makes every revocation wait until `replicas` replicas of the primary hold it
    /// (Redis `WAIT`), at most `within` (from 1 ms to less than 2 s, the connection's
    /// response timeout; checked by `connect`); the revocation fails (an error, 503 from
    /// the crate's handlers) when fewer confirm. A revocation acknowledged this way survives
    /// the primary's loss and a failover. Off by default: Redis replicates
    /// asynchronously, so a failover can lose the last revocations made before it.
    pub fn with_replica_acks(mut self, replicas: u32, within: Duration) -> Self {
        self.replica_acks = Some((replicas, within));
        self
    }
    /// Connects, subscribes and loads the list (waiting at most 5 s for that), then keeps
    /// this process's copy current in a background task.
    pub async fn connect(self) -> Result<Revocations, StoreError> {
        if let Some((n, within)) = self.replica_acks {
            crate::redis::check_replica_acks(n, within, CONNECTION_TIMEOUT)
                .map_err(StoreError::new)?;
        }
        let link = crate::redis::connect(&self.url, CONNECTION_TIMEOUT)
            .await
            .map_err(StoreError::new)?;
        let acks = match self.replica_acks {
            None => None,
            Some((n, within)) => {
                let own = crate::redis::connect(&self.url, CONNECTION_TIMEOUT)
                    .await
                    .map_err(StoreError::new)?;
                Some((own.conn, n, within))
            }
        };
        let shared = Arc::new(Shared {
            conn: link.conn.clone(),
            key: format!("{}revoked", self.prefix),
            publish: if link.is_cluster() {
                "SPUBLISH"
            } else {
                "PUBLISH"
            },
            acks,
        });
        let local = Revocations::new_local();
        tokio::spawn(keep_current(link, shared.clone(), Arc::downgrade(&local)));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !local.synced.load(std::sync::atomic::Ordering::Acquire) {
            if Instant::now() >= deadline {
                return Err(StoreError::new(
                    "revocation list could not be loaded from Redis",
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Revocations::shared(local, shared))
    }
}

impl Backend for Shared {
    fn publish<'a>(&'a self, entry: &'a Entry) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let (field, value) = entry.encode();
            let mut write = eval(PUBLISH, &[&self.key]);
            write.arg(field).arg(value).arg(self.publish);
            let _: i64 = match &self.acks {
                Some((conn, n, within)) => {
                    conn.write_acknowledged(write, &self.key, *n, *within)
                        .await?
                }
                None => write
                    .query_async(&mut self.conn.clone())
                    .await
                    .map_err(err)?,
            };
            Ok(())
        })
    }
}
