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

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::{Instant, timeout, timeout_at};

use super::Revocations;
use super::entry::Entry;
use super::local::{Backend, Local};
use crate::StoreError;
use crate::authenticator::BoxFuture;
use crate::clock::unix_secs;
use crate::redis_conn::{Conn, Link, Subscription, describe as err, eval};

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

/// Where a copy of the list stands: the version and the write that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Mark {
    version: u64,
    write: u64,
}

impl Mark {
    /// True when `self` (read from Redis) says the copy at `seen` holds a history Redis
    /// no longer has: the version went back, or the same version was made by another
    /// write.
    fn diverged_from(self, seen: Mark) -> bool {
        self.version < seen.version || (self.version == seen.version && self.write != seen.write)
    }
}

/// How often a follower proves its copy current (a ping on its subscription and a read
/// of the version).
const POLL: Duration = Duration::from_secs(1);
/// How long one step of that proof (ping with version read, full reload) may take.
const STEP: Duration = Duration::from_millis(750);
/// How long a version the proof saw may wait for its message before a full reload.
const CATCH_UP: Duration = Duration::from_millis(250);

impl RedisRevocations {
    /// The longest a revocation acknowledged by Redis can go unenforced by an instance that
    /// still answers requests from its copy. A proof (check, wait for a message on its way,
    /// reload) takes at most `2 STEP + CATCH_UP` = 1.75 s, and the first proof that starts
    /// after the write starts within `max(POLL, 1.75 s)` of it, so by 3.5 s the entry is
    /// applied or the copy is marked out of sync (503). Tested in
    /// `tests/adversarial_shared_state.rs`.
    pub const SYNC_BOUND: Duration = Duration::from_secs(4);
}

/// Connects a [`Revocations`] list shared through Redis: a single node, a
/// Sentinel-watched primary or a cluster (the URL forms of
/// [`RedisStore::connect`](crate::session::RedisStore::connect)). See the module docs for
/// how copies stay current; while one cannot be proved current (Redis unreachable, a
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
/// let revocations = RedisRevocations::connect("redis://127.0.0.1:6379", "app:").await?;
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
            .field("url", &crate::redis_conn::redacted(&self.url))
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
    /// Connects, subscribes and loads the list (waiting at most 5 s for that), then keeps
    /// this process's copy current in a background task; keys and channel are
    /// `<prefix>revoked`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Revocations, StoreError> {
        Self::builder(url).with_prefix(prefix).connect().await
    }

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
            crate::redis_conn::check_replica_acks(n, within, CONNECTION_TIMEOUT)
                .map_err(StoreError::new)?;
        }
        let link = crate::redis_conn::connect(&self.url, CONNECTION_TIMEOUT)
            .await
            .map_err(StoreError::new)?;
        let acks = match self.replica_acks {
            None => None,
            Some((n, within)) => {
                let own = crate::redis_conn::connect(&self.url, CONNECTION_TIMEOUT)
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

/// Every live entry of the hash and its version, read at one moment (dropping expired
/// entries from Redis as it goes), within [`STEP`].
async fn load_all(shared: &Shared) -> Result<(Mark, Vec<Entry>), String> {
    let mut conn = shared.conn.clone();
    let all: Vec<(String, String)> = timeout(
        STEP,
        redis::cmd("HGETALL")
            .arg(&shared.key)
            .query_async(&mut conn),
    )
    .await
    .map_err(|_| "reload timed out".to_owned())?
    .map_err(err)?;
    let now = unix_secs();
    let mut mark = Mark::default();
    let mut entries = Vec::with_capacity(all.len());
    let mut dead = Vec::new();
    for (field, value) in all {
        let Ok(value) = value.parse::<u64>() else {
            tracing::warn!("revocation list holds a value that does not parse; ignored");
            continue;
        };
        if field == VERSION_FIELD {
            mark.version = value;
            continue;
        }
        if field == WRITE_FIELD {
            mark.write = value;
            continue;
        }
        match Entry::decode(&field, value) {
            Some(e) if e.useless_after() > now => entries.push(e),
            Some(_) => dead.push(field),
            None => tracing::warn!("revocation list holds a field that does not parse; ignored"),
        }
    }
    if !dead.is_empty() {
        let _: Result<Result<i64, _>, _> = timeout(
            STEP,
            redis::cmd("HDEL")
                .arg(&shared.key)
                .arg(dead)
                .query_async(&mut conn),
        )
        .await;
    }
    Ok((mark, entries))
}

/// The list's mark, within [`STEP`].
async fn read_mark(shared: &Shared) -> Result<Mark, String> {
    let mut conn = shared.conn.clone();
    let (version, write): (Option<u64>, Option<u64>) = timeout(
        STEP,
        redis::cmd("HMGET")
            .arg(&shared.key)
            .arg(VERSION_FIELD)
            .arg(WRITE_FIELD)
            .query_async(&mut conn),
    )
    .await
    .map_err(|_| "version read timed out".to_owned())?
    .map_err(err)?;
    Ok(Mark {
        version: version.unwrap_or(0),
        write: write.unwrap_or(0),
    })
}

/// Subscribes, reloads, applies messages; on any loss marks the copy stale, waits and
/// starts over. Ends when the last [`Revocations`] of this list is dropped.
async fn keep_current(link: Link, shared: Arc<Shared>, local: Weak<Local>) {
    let mut pause = Duration::from_millis(100);
    loop {
        if local.strong_count() == 0 {
            return;
        }
        match follow(&link, &shared, &local).await {
            Ok(()) => return,
            Err(e) => {
                if let Some(l) = local.upgrade() {
                    l.lost();
                }
                tracing::warn!(error = %e, "revocation list out of sync; reconnecting");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// One message: the mark it made and its entry; `None` when it does not parse.
fn parse_message(payload: &str) -> Option<(Mark, Entry)> {
    let mut parts = payload.split('\u{1e}');
    let version = parts.next()?.parse().ok()?;
    let write = parts.next()?.parse().ok()?;
    let field = parts.next()?;
    let value = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((Mark { version, write }, Entry::decode(field, value)?))
}

/// One subscription's life: `Ok` when the list was dropped, `Err` when the copy can no
/// longer be proved current.
async fn follow(link: &Link, shared: &Shared, local: &Weak<Local>) -> Result<(), String> {
    let mut subscription = Subscription::open(link, &shared.key, STEP).await?;
    // The mark the copy holds every entry up to.
    let reload = async || -> Result<Option<Mark>, String> {
        let (mark, entries) = load_all(shared).await?;
        Ok(local.upgrade().map(|l| {
            l.replace(entries);
            mark
        }))
    };
    let Some(mut seen) = reload().await? else {
        return Ok(());
    };
    let mut next_proof = Instant::now() + POLL;
    // A version the last proof saw that no message has brought yet, and until when
    // its message may still be on its way.
    let mut catch_up: Option<(u64, Instant)> = None;
    loop {
        let deadline = catch_up.map_or(next_proof, |(_, until)| until.min(next_proof));
        let next = timeout_at(deadline, subscription.next()).await;
        let Some(local_list) = local.upgrade() else {
            return Ok(());
        };
        match next {
            Ok(None) => return Err("subscription closed or may have missed messages".into()),
            Ok(Some(msg)) => {
                let parsed = std::str::from_utf8(&msg).ok().and_then(parse_message);
                drop(local_list);
                let behind = match parsed {
                    Some((mark, entry)) => {
                        if let Some(l) = local.upgrade() {
                            l.apply(entry);
                        }
                        if mark.version == seen.version + 1 {
                            seen = mark;
                            false
                        } else if mark.version <= seen.version {
                            // An echo of what a reload brought already, unless it names
                            // another write for a version seen: then histories differ.
                            mark.version == seen.version && mark.write != seen.write
                        } else {
                            tracing::warn!("a revocation message was lost; reloading the list");
                            true
                        }
                    }
                    None => {
                        tracing::warn!("revocation message does not parse; reloading the list");
                        true
                    }
                };
                if behind {
                    match reload().await? {
                        Some(m) => seen = m,
                        None => return Ok(()),
                    }
                }
                if catch_up.is_some_and(|(v, _)| seen.version >= v) {
                    catch_up = None;
                }
            }
            Err(_) if catch_up.is_some() && Instant::now() < next_proof => {
                // The message for the version seen never came: a reload has it.
                drop(local_list);
                tracing::warn!("a revocation message did not arrive; reloading the list");
                match reload().await? {
                    Some(m) => seen = m,
                    None => return Ok(()),
                }
                catch_up = None;
            }
            Err(_) => {
                drop(local_list);
                let started = Instant::now();
                let (pong, mark) = tokio::join!(subscription.ping(), read_mark(shared));
                pong?;
                let mark = mark?;
                if mark.diverged_from(seen) {
                    tracing::warn!(
                        "revocation list went back or was rewritten (Redis lost data?); reloading"
                    );
                    match reload().await? {
                        Some(m) => seen = m,
                        None => return Ok(()),
                    }
                    catch_up = None;
                } else if mark.version > seen.version {
                    match catch_up {
                        // Still missing since the last proof: reload now.
                        Some(_) => {
                            match reload().await? {
                                Some(m) => seen = m,
                                None => return Ok(()),
                            }
                            catch_up = None;
                        }
                        None => catch_up = Some((mark.version, Instant::now() + CATCH_UP)),
                    }
                }
                next_proof = started + POLL;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_history_is_told_from_a_current_one() {
        let seen = Mark {
            version: 10,
            write: 5,
        };
        assert!(!seen.diverged_from(seen));
        assert!(
            !Mark {
                version: 11,
                write: 9
            }
            .diverged_from(seen)
        );
        assert!(
            Mark {
                version: 9,
                write: 9
            }
            .diverged_from(seen)
        );
        assert!(
            Mark {
                version: 10,
                write: 6
            }
            .diverged_from(seen)
        );
    }

    #[test]
    fn messages_carry_their_version_and_nothing_else() {
        let e = Entry::Session {
            id: "0123456789abcdef".into(),
            expires: 9,
        };
        let (f, v) = e.encode();
        assert_eq!(
            parse_message(&format!("7\u{1e}123\u{1e}{f}\u{1e}{v}")),
            Some((
                Mark {
                    version: 7,
                    write: 123
                },
                e
            ))
        );
        for bad in [
            String::new(),
            format!("{f}\u{1e}{v}"),
            format!("7\u{1e}{f}\u{1e}{v}"),
            format!("x\u{1e}1\u{1e}{f}\u{1e}{v}"),
            format!("7\u{1e}1\u{1e}{f}\u{1e}{v}\u{1e}1"),
            format!("7\u{1e}1\u{1e}{f}\u{1e}nope"),
        ] {
            assert_eq!(parse_message(&bad), None, "{bad:?}");
        }
    }
}
