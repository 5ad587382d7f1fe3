//! [`RedisStore`] (feature `redis`): sessions shared by every instance of your app.

use std::fmt;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use super::store::{SessionRecord, SessionStore, StoreError, touch_by_replace};
use crate::authenticator::BoxFuture;

const CREATE: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('EXPIRETIME', KEYS[2]) < tonumber(ARGV[4]) then
  redis.call('EXPIREAT', KEYS[2], ARGV[4])
end
return 1";

const DELETE: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, r = pcall(cjson.decode, v)
redis.call('DEL', KEYS[1])
if ok and type(r) == 'table' and type(r['subject']) == 'string' then
  redis.call('SREM', ARGV[1] .. r['subject'], ARGV[2])
end
return 1";

const DELETE_ALL: &str = r"
local ids = redis.call('SMEMBERS', KEYS[1])
local n = 0
for _, id in ipairs(ids) do
  n = n + redis.call('DEL', ARGV[1] .. id)
end
redis.call('DEL', KEYS[1])
return n";

/// Sessions in Redis: one key per session (`<prefix>s:<id hash>`, JSON, native TTL at
/// the session's expiry) and one set per subject (`<prefix>u:<subject>`) for
/// logout-everywhere. Multi-key changes run as Lua scripts, so they are atomic.
/// Needs Redis 7.0 or later, on a single node (or a primary with replicas or Sentinel):
/// the logout scripts reach keys they find in the data (a session's subject set, a
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
    /// `app` gives keys `app:s:<hash>` and `app:u:<subject>`.
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
    fn subject_key(&self, subject: &str) -> String {
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
                .key(self.subject_key(&record.subject))
                .arg(json)
                .arg(record.expires_at())
                .arg(&record.id_hash)
                .arg(record.absolute_expires_at)
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
                Some(s) => SessionRecord::from_json(&s).map(Some),
            }
        })
    }

    fn touch<'a>(
        &'a self,
        id_hash: &'a str,
        touched_at: u64,
        idle_expires_at: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(touch_by_replace(self, id_hash, touched_at, idle_expires_at))
    }

    fn replace<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let json = record.to_json()?;
            let mut conn = self.conn.clone();
            // XX: never resurrect a session deleted meanwhile.
            let set: Option<String> = redis::cmd("SET")
                .arg(self.session_key(&record.id_hash))
                .arg(json)
                .arg("XX")
                .arg("EXAT")
                .arg(record.expires_at())
                .query_async(&mut conn)
                .await
                .map_err(err)?;
            Ok(set.is_some())
        })
    }

    fn delete<'a>(&'a self, id_hash: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let n: i64 = Script::new(DELETE)
                .key(self.session_key(id_hash))
                .arg(format!("{}u:", self.prefix))
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
            let n: i64 = Script::new(DELETE_ALL)
                .key(self.subject_key(subject))
                .arg(format!("{}s:", self.prefix))
                .invoke_async(&mut conn)
                .await
                .map_err(err)?;
            Ok(n.max(0) as u64)
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
