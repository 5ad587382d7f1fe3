//! [`RedisStore`] (feature `redis`): sessions shared by every instance of your app.

use std::fmt;
use std::time::Duration;

use redis::AsyncCommands;

use super::id::{TAG_LEN, subject_tag};
use super::store::{SessionRecord, SessionStore};
use crate::StoreError;
use crate::authenticator::BoxFuture;
use crate::clock::unix_secs;
use crate::redis::{Conn, eval};

/// Stores a new session and indexes it under its subject (scored by expiry), pruning
/// the subject's index of sessions that have ended.
const CREATE: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
if redis.call('EXPIRETIME', KEYS[2]) < tonumber(ARGV[4]) then
  redis.call('EXPIREAT', KEYS[2], ARGV[4])
end
return 1";

/// Writes a record over the stored one only if that one still has the version the
/// writer read (0 when gone, -1 when changed meanwhile).
const REPLACE: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, r = pcall(cjson.decode, v)
if not ok or type(r) ~= 'table' then return redis.error_reply('corrupt session record') end
if (tonumber(r['version']) or 0) ~= tonumber(ARGV[3]) then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
if redis.call('EXPIRETIME', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('EXPIREAT', KEYS[2], ARGV[2])
end
return 1";

/// Moves a session to a new id (value and expiry unchanged), only if it still exists.
const ROTATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
local at = redis.call('EXPIRETIME', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[3], at, ARGV[2])
if redis.call('EXPIRETIME', KEYS[3]) < at then
  redis.call('EXPIREAT', KEYS[3], at)
end
return 1";

/// Deletes a session and its entry in its subject's index (KEYS[2]) and, on a single
/// node, in the set kept by earlier versions of this store (KEYS[3]); ARGV[1] is the
/// subject the caller read from the record (-1 when that no longer holds).
const DELETE: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, r = pcall(cjson.decode, v)
if not ok or type(r) ~= 'table' or r['subject'] ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
if KEYS[3] then redis.call('SREM', KEYS[3], ARGV[2]) end
return 1";

/// Deletes the sessions KEYS[3..] (ids ARGV, in the same order) and their entries in
/// the subject's index (KEYS[1]) and legacy set (KEYS[2], the index again on a
/// cluster); returns how many sessions existed.
const DELETE_THESE: &str = r"
local n = 0
for i = 3, #KEYS do
  n = n + redis.call('DEL', KEYS[i])
end
if #ARGV > 0 then
  redis.call('ZREM', KEYS[1], unpack(ARGV))
  if KEYS[2] ~= KEYS[1] then redis.call('SREM', KEYS[2], unpack(ARGV)) end
end
return n";

/// Sessions deleted per script run by a logout everywhere: Redis serves other clients
/// between runs.
const DELETE_BATCH: usize = 500;

/// Sessions in Redis: one key per session (`<prefix>s:<id hash>`, JSON, native TTL at
/// the session's expiry) and one sorted set per subject (`<prefix>i:<subject>`, ids
/// scored by expiry) for logout-everywhere. Multi-key changes run as Lua scripts that
/// declare every key they touch, so they are atomic; a write is a compare-and-set on the
/// record's version and a rotation moves the key only if it still exists.
///
/// The subject index holds that subject's live sessions: ids of sessions that have
/// ended are pruned at the subject's next login, and the index expires with its
/// longest-lived session. A logout everywhere deletes 500 sessions per script run.
///
/// Works on a single node, a Sentinel-watched primary and a Cluster (see
/// [`RedisStore::connect`] for the URL forms); needs Redis 7.0 or later. On a cluster
/// the keys carry a hash tag, `<prefix>s:{xx}<id hash>` and `<prefix>i:{xx}<subject>`,
/// where `xx` starts both the hash of every session id of a subject and the hash of the
/// subject: a subject's sessions and index share one slot, and subjects spread over 256
/// slots.
///
/// ```no_run
/// # async fn f() -> Result<(), portcullis::StoreError> {
/// let store = portcullis::session::RedisStore::connect("redis://127.0.0.1:6379").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    /// The connection writes go over when they wait for replicas (a `WAIT` holds up its
    /// connection, so reads never share it).
    writes: Option<(Conn, u32, Duration)>,
    prefix: String,
    cluster: bool,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

use crate::redis::store_error as err;

/// Settings for [`RedisStore`]; see [`RedisStore::builder`].
#[derive(Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    connect_timeout: Duration,
    replica_acks: Option<(u32, Duration)>,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &crate::redis::redacted(&self.url))
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("replica_acks", &self.replica_acks)
            .finish()
    }
}

impl RedisStoreBuilder {
    /// Key prefix (default `portcullis`); a `:` is added unless it ends with one, so
    /// `app` gives keys `app:s:<hash>` and `app:i:<subject>`. On a cluster it may not
    /// hold `{` or `}` (the store places the hash tags).
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = crate::redis::key_prefix(prefix);
        self
    }
    /// How long connecting (at start and on every reconnect) and one round trip may take
    /// at the connection level (default 5 s). The deadline a request waits on the store
    /// is [`SessionConfig::with_store_timeout`](super::SessionConfig::with_store_timeout).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
    /// Makes every write (login, data change, rotation, logout, logout everywhere) wait
    /// until `replicas` replicas of the primary hold it (Redis `WAIT`), at most `within`;
    /// the write fails (503) when fewer confirm. A session or logout acknowledged this
    /// way survives the primary's loss and a Sentinel or Cluster failover. Off by
    /// default: Redis replicates asynchronously, so a failover can lose the last writes
    /// (a logout then has to be repeated; a login asks again). Writes use their own
    /// connection, so a slow replica never holds up a session lookup.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), portcullis::StoreError> {
    /// use std::time::Duration;
    /// use portcullis::session::RedisStore;
    /// let store = RedisStore::builder("redis-sentinel://10.0.0.1:26379,10.0.0.2:26379/sessions")
    ///     .with_replica_acks(1, Duration::from_millis(500))
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn with_replica_acks(mut self, replicas: u32, within: Duration) -> Self {
        self.replica_acks = Some((replicas, within));
        self
    }
    /// Connects (automatic reconnects, following a failover); fails when Redis does not
    /// answer, or the URL, the prefix or the replica acknowledgement (a wait from 1 ms to
    /// less than the connect timeout) is not valid.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        if let Some((n, within)) = self.replica_acks {
            crate::redis::check_replica_acks(n, within, self.connect_timeout)
                .map_err(StoreError::new)?;
        }
        let link = crate::redis::connect(&self.url, self.connect_timeout)
            .await
            .map_err(StoreError::new)?;
        let cluster = link.is_cluster();
        if cluster && self.prefix.contains(['{', '}']) {
            return Err(StoreError::new(
                "a RedisStore prefix on a cluster may not hold { or }: the store places the hash tags",
            ));
        }
        let writes = match self.replica_acks {
            None => None,
            Some((n, within)) => {
                let link = crate::redis::connect(&self.url, self.connect_timeout)
                    .await
                    .map_err(StoreError::new)?;
                Some((link.conn, n, within))
            }
        };
        Ok(RedisStore {
            conn: link.conn,
            writes,
            prefix: self.prefix,
            cluster,
        })
    }
}

impl RedisStore {
    /// Connects to `url` with the defaults (prefix `portcullis:`). `url` names a single
    /// node (`redis://host:port/db`, `rediss://`), the primary the sentinels name for a
    /// service (`redis-sentinel://host:port,host:port/<service>[/db]`), or a cluster
    /// (`redis-cluster://host:port,host:port`); a user name and password go before the
    /// hosts (`redis-cluster://user:password@host:port`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// A store to configure before connecting.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), portcullis::StoreError> {
    /// use portcullis::session::RedisStore;
    /// let store = RedisStore::builder("redis://127.0.0.1:6379").with_prefix("app").connect().await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(url: &str) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.to_owned(),
            prefix: "portcullis:".to_owned(),
            connect_timeout: Duration::from_secs(5),
            replica_acks: None,
        }
    }

    fn session_key(&self, id_hash: &str) -> String {
        if self.cluster {
            let tag = id_hash.get(..TAG_LEN).unwrap_or(id_hash);
            format!("{}s:{{{tag}}}{id_hash}", self.prefix)
        } else {
            format!("{}s:{id_hash}", self.prefix)
        }
    }
    fn index_key(&self, subject: &str) -> String {
        if self.cluster {
            let tag = subject_tag(subject);
            let tag = std::str::from_utf8(&tag).unwrap_or_default();
            format!("{}i:{{{tag}}}{subject}", self.prefix)
        } else {
            format!("{}i:{subject}", self.prefix)
        }
    }
    /// The plain set of ids earlier versions of this store kept per subject (single
    /// node only: those versions did not run on a cluster).
    fn legacy_index_key(&self, subject: &str) -> Option<String> {
        (!self.cluster).then(|| format!("{}u:{subject}", self.prefix))
    }

    /// On a cluster, a session whose id was not made for its subject's slot cannot be
    /// written with its index (sessions made by [`SessionManager`](super::SessionManager)
    /// always are).
    fn check_slot(&self, record: &SessionRecord) -> Result<(), StoreError> {
        if self.cluster
            && record.id_hash.as_bytes().get(..TAG_LEN) != Some(&subject_tag(&record.subject)[..])
        {
            return Err(StoreError::new(
                "session id does not carry its subject's slot tag (ids must come from SessionManager)",
            ));
        }
        Ok(())
    }

    /// Runs a write: as it is, or, when the store waits for replicas, pipelined with
    /// `WAIT` on the write connection to the primary owning `key`.
    async fn write<T: redis::FromRedisValue>(
        &self,
        cmd: redis::Cmd,
        key: &str,
    ) -> Result<T, StoreError> {
        match &self.writes {
            Some((conn, n, within)) => conn
                .write_acknowledged(cmd, key, *n, *within)
                .await
                .map_err(StoreError::new),
            None => cmd.query_async(&mut self.conn.clone()).await.map_err(err),
        }
    }
}

impl SessionStore for RedisStore {
    fn create<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.check_slot(record)?;
            let json = record.to_json()?;
            let key = self.session_key(&record.id_hash);
            let mut cmd = eval(CREATE, &[&key, &self.index_key(&record.subject)]);
            cmd.arg(json)
                .arg(record.expires_at())
                .arg(&record.id_hash)
                .arg(record.absolute_expires_at)
                .arg(unix_secs());
            let _: i64 = self.write(cmd, &key).await?;
            Ok(())
        })
    }

    fn load<'a>(
        &'a self,
        id_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let v: Option<String> = conn.get(self.session_key(id_hash)).await.map_err(err)?;
            match v {
                None => Ok(None),
                Some(s) => {
                    let mut rec = SessionRecord::from_json(&s)?;
                    // The key is the truth: a rotated record keeps its old text.
                    rec.id_hash = id_hash.to_owned();
                    Ok(Some(rec))
                }
            }
        })
    }

    fn replace<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            self.check_slot(record)?;
            let mut next = record.clone();
            next.version += 1;
            let json = next.to_json()?;
            let key = self.session_key(&record.id_hash);
            let mut cmd = eval(REPLACE, &[&key, &self.index_key(&record.subject)]);
            cmd.arg(json)
                .arg(record.expires_at())
                .arg(record.version)
                .arg(&record.id_hash);
            let n: i64 = self.write(cmd, &key).await?;
            Ok(n > 0)
        })
    }

    fn rotate<'a>(
        &'a self,
        record: &'a SessionRecord,
        new_id_hash: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            self.check_slot(record)?;
            let old = self.session_key(&record.id_hash);
            let new = self.session_key(new_id_hash);
            let mut cmd = eval(ROTATE, &[&old, &new, &self.index_key(&record.subject)]);
            cmd.arg(&record.id_hash).arg(new_id_hash);
            let n: i64 = self.write(cmd, &new).await?;
            Ok(n > 0)
        })
    }

    fn delete<'a>(&'a self, id_hash: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let key = self.session_key(id_hash);
            let mut conn = self.conn.clone();
            // The subject names the index; the script checks it still holds.
            for _ in 0..4 {
                let v: Option<String> = conn.get(&key).await.map_err(err)?;
                let Some(text) = v else { return Ok(false) };
                let Ok(record) = SessionRecord::from_json(&text) else {
                    // Not a record this store wrote: no index to clean.
                    let mut del = redis::cmd("DEL");
                    del.arg(&key);
                    let n: i64 = self.write(del, &key).await?;
                    return Ok(n > 0);
                };
                let index = self.index_key(&record.subject);
                let legacy = self.legacy_index_key(&record.subject);
                let mut keys = vec![key.as_str(), index.as_str()];
                keys.extend(legacy.as_deref());
                let mut cmd = eval(DELETE, &keys);
                cmd.arg(&record.subject).arg(id_hash);
                let n: i64 = self.write(cmd, &key).await?;
                if n >= 0 {
                    return Ok(n > 0);
                }
            }
            Err(StoreError::new(
                "session changed subject while being deleted",
            ))
        })
    }

    fn delete_all_for_subject<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let index = self.index_key(subject);
            let legacy = self.legacy_index_key(subject);
            let mut deleted = 0u64;
            // Until the index is empty; sessions created or rotated meanwhile are
            // taken by a later run. Bounded: a subject cannot gain sessions faster
            // than 500 per run for 10 000 runs.
            for _ in 0..10_000 {
                let mut ids: Vec<String> = redis::cmd("ZRANGE")
                    .arg(&index)
                    .arg(0)
                    .arg(DELETE_BATCH - 1)
                    .query_async(&mut conn)
                    .await
                    .map_err(err)?;
                if let Some(legacy) = &legacy {
                    let old: Vec<String> = redis::cmd("SRANDMEMBER")
                        .arg(legacy)
                        .arg(DELETE_BATCH)
                        .query_async(&mut conn)
                        .await
                        .map_err(err)?;
                    ids.extend(old);
                    ids.sort_unstable();
                    ids.dedup();
                }
                if ids.is_empty() {
                    return Ok(deleted);
                }
                let sessions: Vec<String> = ids.iter().map(|id| self.session_key(id)).collect();
                let mut keys = vec![index.as_str(), legacy.as_deref().unwrap_or(&index)];
                keys.extend(sessions.iter().map(String::as_str));
                let mut cmd = eval(DELETE_THESE, &keys);
                cmd.arg(&ids);
                let n: i64 = self.write(cmd, &index).await?;
                deleted += n.max(0) as u64;
            }
            Err(StoreError::new("logout everywhere did not finish"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_gets_its_separator() {
        let p = |s: &str| RedisStore::builder("redis://x").with_prefix(s).prefix;
        assert_eq!(p("app"), "app:");
        assert_eq!(p("app:"), "app:");
        assert_eq!(p(""), "");
        assert_eq!(RedisStore::builder("redis://x").prefix, "portcullis:");
    }
}
