//! [`RedisStore`] (feature `redis`): sessions shared by every instance of your app.

use std::fmt;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use super::store::{SessionRecord, SessionStore, StoreError};
use crate::authenticator::BoxFuture;
use crate::clock::unix_secs;

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

const DELETE: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, r = pcall(cjson.decode, v)
redis.call('DEL', KEYS[1])
if ok and type(r) == 'table' and type(r['subject']) == 'string' then
  redis.call('ZREM', ARGV[1] .. 'i:' .. r['subject'], ARGV[2])
  redis.call('SREM', ARGV[1] .. 'u:' .. r['subject'], ARGV[2])
end
return 1";

/// Deletes up to ARGV[2] of a subject's sessions (index, and the set kept by earlier
/// versions of this store); returns {deleted, ids taken}.
const DELETE_SOME: &str = r"
local batch = tonumber(ARGV[2])
local ids = redis.call('ZRANGE', KEYS[1], 0, batch - 1)
local n = 0
for _, id in ipairs(ids) do
  n = n + redis.call('DEL', ARGV[1] .. id)
end
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
local old = redis.call('SPOP', KEYS[2], batch)
for _, id in ipairs(old) do
  n = n + redis.call('DEL', ARGV[1] .. id)
end
return {n, #ids + #old}";

/// Sessions deleted per script run by a logout everywhere: Redis serves other clients
/// between runs.
const DELETE_BATCH: usize = 500;

/// Sessions in Redis: one key per session (`<prefix>s:<id hash>`, JSON, native TTL at
/// the session's expiry) and one sorted set per subject (`<prefix>i:<subject>`, ids
/// scored by expiry) for logout-everywhere. Multi-key changes run as Lua scripts, so
/// they are atomic; a write is a compare-and-set on the record's version and a rotation
/// moves the key only if it still exists.
///
/// The subject index holds that subject's live sessions: ids of sessions that have
/// ended are pruned at the subject's next login, and the index expires with its
/// longest-lived session. A logout everywhere deletes 500 sessions per script run.
///
/// Needs Redis 7.0 or later, on a single node (or a primary with replicas or Sentinel):
/// the logout scripts reach keys they find in the data (a session's subject index, a
/// subject's sessions), which Redis Cluster refuses, so Cluster is not supported.
///
/// ```no_run
/// # async fn f() -> Result<(), portcullis::session::StoreError> {
/// let store = portcullis::session::RedisStore::connect("redis://127.0.0.1:6379").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn err(e: redis::RedisError) -> StoreError {
    StoreError::new(crate::redis_conn::describe(e))
}

/// Settings for [`RedisStore`]; see [`RedisStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    connect_timeout: Duration,
}

impl RedisStoreBuilder {
    /// Key prefix (default `portcullis`); a `:` is added unless it ends with one, so
    /// `app` gives keys `app:s:<hash>` and `app:i:<subject>`.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = crate::redis_conn::key_prefix(prefix);
        self
    }
    /// How long connecting (at start and on every reconnect) and one round trip may take
    /// at the connection level (default 5 s). The deadline a request waits on the store
    /// is [`SessionConfig::with_store_timeout`](super::SessionConfig::with_store_timeout).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
    /// Connects (automatic reconnects); fails when Redis does not answer.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let (_, conn) = crate::redis_conn::connect(&self.url, self.connect_timeout)
            .await
            .map_err(StoreError::new)?;
        Ok(RedisStore {
            conn,
            prefix: self.prefix,
        })
    }
}

impl RedisStore {
    /// Connects to `url` with the defaults (prefix `portcullis:`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// A store to configure before connecting.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), portcullis::session::StoreError> {
    /// use portcullis::session::RedisStore;
    /// let store = RedisStore::builder("redis://127.0.0.1:6379").with_prefix("app").connect().await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(url: &str) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.to_owned(),
            prefix: "portcullis:".to_owned(),
            connect_timeout: Duration::from_secs(5),
        }
    }

    fn session_key(&self, id_hash: &str) -> String {
        format!("{}s:{id_hash}", self.prefix)
    }
    fn index_key(&self, subject: &str) -> String {
        format!("{}i:{subject}", self.prefix)
    }
    /// The plain set of ids earlier versions of this store kept per subject.
    fn legacy_index_key(&self, subject: &str) -> String {
        format!("{}u:{subject}", self.prefix)
    }
}

impl SessionStore for RedisStore {
    fn create<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let json = record.to_json()?;
            let mut conn = self.conn.clone();
            let _: i64 = Script::new(CREATE)
                .key(self.session_key(&record.id_hash))
                .key(self.index_key(&record.subject))
                .arg(json)
                .arg(record.expires_at())
                .arg(&record.id_hash)
                .arg(record.absolute_expires_at)
                .arg(unix_secs())
                .invoke_async(&mut conn)
                .await
                .map_err(err)?;
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
            let mut next = record.clone();
            next.version += 1;
            let json = next.to_json()?;
            let mut conn = self.conn.clone();
            let n: i64 = Script::new(REPLACE)
                .key(self.session_key(&record.id_hash))
                .key(self.index_key(&record.subject))
                .arg(json)
                .arg(record.expires_at())
                .arg(record.version)
                .arg(&record.id_hash)
                .invoke_async(&mut conn)
                .await
                .map_err(err)?;
            Ok(n > 0)
        })
    }

    fn rotate<'a>(
        &'a self,
        record: &'a SessionRecord,
        new_id_hash: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let n: i64 = Script::new(ROTATE)
                .key(self.session_key(&record.id_hash))
                .key(self.session_key(new_id_hash))
                .key(self.index_key(&record.subject))
                .arg(&record.id_hash)
                .arg(new_id_hash)
                .invoke_async(&mut conn)
                .await
                .map_err(err)?;
            Ok(n > 0)
        })
    }

    fn delete<'a>(&'a self, id_hash: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let n: i64 = Script::new(DELETE)
                .key(self.session_key(id_hash))
                .arg(&self.prefix)
                .arg(id_hash)
                .invoke_async(&mut conn)
                .await
                .map_err(err)?;
            Ok(n > 0)
        })
    }

    fn delete_all_for_subject<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let script = Script::new(DELETE_SOME);
            let mut deleted = 0u64;
            // Until the index is empty; sessions created or rotated meanwhile are
            // taken by a later run. Bounded: a subject cannot gain sessions faster
            // than 500 per run for 10 000 runs.
            for _ in 0..10_000 {
                let (n, taken): (i64, i64) = script
                    .key(self.index_key(subject))
                    .key(self.legacy_index_key(subject))
                    .arg(format!("{}s:", self.prefix))
                    .arg(DELETE_BATCH)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(err)?;
                deleted += n.max(0) as u64;
                if taken == 0 {
                    return Ok(deleted);
                }
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
