//! [`RedisRevocations`] (feature `redis`): one revocation list for every instance.
//!
//! Writes go to a Redis hash (`<prefix>revoked`) and are published on a channel of the
//! same name in one script. Each instance subscribes, then loads the whole hash, and
//! applies what the channel brings after that: pub/sub because every instance needs
//! every entry at once and the hash already keeps the history a late subscriber reloads
//! (a stream would keep it twice). Subscribing before loading means nothing published
//! in between is missed; applying an entry twice changes nothing.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::Script;
use redis::aio::ConnectionManager;

use super::{Backend, Entry, Local, Revocations};
use crate::authenticator::BoxFuture;
use crate::clock::unix_secs;
use crate::session::StoreError;

/// Stores one entry and tells every subscriber, atomically.
const PUBLISH: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', KEYS[1], ARGV[1] .. '\30' .. ARGV[2])
return 1";

/// Connects a [`Revocations`] list shared through Redis. See the module docs for how
/// copies stay current; while one cannot be (Redis unreachable, subscription lost),
/// checks fail closed (503) until it has reloaded the whole list, unless
/// [`Revocations::with_max_staleness`] allows a bounded wait. A message that does not
/// parse is logged and answered by a full reload, never trusted.
///
/// ```no_run
/// # async fn f() -> Result<(), portcullis::session::StoreError> {
/// use portcullis::revocation::RedisRevocations;
/// let revocations = RedisRevocations::connect("redis://127.0.0.1:6379", "app:").await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RedisRevocations;

struct Shared {
    conn: ConnectionManager,
    key: String,
}

use crate::redis_conn::describe as err;

impl RedisRevocations {
    /// Connects, subscribes and loads the list (waiting at most 5 s for that), then keeps
    /// this process's copy current in a background task; keys and channel are
    /// `<prefix>revoked`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Revocations, StoreError> {
        let (client, conn) = crate::redis_conn::connect(url, Duration::from_secs(2))
            .await
            .map_err(StoreError::new)?;
        let shared = Arc::new(Shared {
            conn,
            key: format!("{prefix}revoked"),
        });
        let local = Revocations::new_local();
        tokio::spawn(keep_current(client, shared.clone(), Arc::downgrade(&local)));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !local.synced.load(std::sync::atomic::Ordering::Acquire) {
            if tokio::time::Instant::now() >= deadline {
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
            let mut conn = self.conn.clone();
            let _: i64 = Script::new(PUBLISH)
                .key(&self.key)
                .arg(field)
                .arg(value)
                .invoke_async(&mut conn)
                .await
                .map_err(err)?;
            Ok(())
        })
    }
}

/// Loads every live entry of the hash (dropping expired ones from Redis as it goes).
async fn load_all(shared: &Shared) -> Result<Vec<super::Entry>, String> {
    let mut conn = shared.conn.clone();
    let all: Vec<(String, u64)> = redis::cmd("HGETALL")
        .arg(&shared.key)
        .query_async(&mut conn)
        .await
        .map_err(err)?;
    let now = unix_secs();
    let mut entries = Vec::with_capacity(all.len());
    let mut dead = Vec::new();
    for (field, value) in all {
        match Entry::decode(&field, value) {
            Some(e) if e.useless_after() > now => entries.push(e),
            Some(_) => dead.push(field),
            None => tracing::warn!("revocation list holds a field that does not parse; ignored"),
        }
    }
    if !dead.is_empty() {
        let _: Result<i64, _> = redis::cmd("HDEL")
            .arg(&shared.key)
            .arg(dead)
            .query_async(&mut conn)
            .await;
    }
    Ok(entries)
}

/// Subscribes, reloads, applies messages; on any loss marks the copy stale, waits and
/// starts over. Ends when the last [`Revocations`] of this list is dropped.
async fn keep_current(client: redis::Client, shared: Arc<Shared>, local: Weak<Local>) {
    let mut pause = Duration::from_millis(100);
    loop {
        if local.strong_count() == 0 {
            return;
        }
        match follow(&client, &shared, &local).await {
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

/// One subscription's life: `Ok` when the list was dropped, `Err` when Redis was lost.
async fn follow(
    client: &redis::Client,
    shared: &Shared,
    local: &Weak<Local>,
) -> Result<(), String> {
    let mut pubsub = tokio::time::timeout(Duration::from_secs(2), client.get_async_pubsub())
        .await
        .map_err(|_| "subscribe timed out".to_owned())?
        .map_err(err)?;
    pubsub.subscribe(&shared.key).await.map_err(err)?;
    let reload = |entries: Vec<Entry>| match local.upgrade() {
        Some(l) => {
            l.replace(entries);
            true
        }
        None => false,
    };
    if !reload(load_all(shared).await?) {
        return Ok(());
    }
    let mut messages = pubsub.into_on_message();
    // Wakes up now and then to notice a dropped list.
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
        let Some(local_list) = local.upgrade() else {
            return Ok(());
        };
        let msg = match next {
            Err(_) => continue,
            Ok(None) => return Err("subscription closed".into()),
            Ok(Some(msg)) => msg,
        };
        let parsed = msg.get_payload::<String>().ok().and_then(|p| {
            let (field, value) = p.split_once('\u{1e}')?;
            Entry::decode(field, value.parse().ok()?)
        });
        match parsed {
            Some(entry) => local_list.apply(entry),
            None => {
                tracing::warn!("revocation message does not parse; reloading the whole list");
                drop(local_list);
                if !reload(load_all(shared).await?) {
                    return Ok(());
                }
            }
        }
    }
}
