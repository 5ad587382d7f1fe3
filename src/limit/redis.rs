//! [`RedisLimits`] (feature `redis`): attempt counters shared by every instance.

use std::fmt;
use std::time::Duration;

use redis::Script;

use crate::redis::Conn;

use super::{Backend, Keys, Limits, Settle, Verdict};
use crate::StoreError;
use crate::authenticator::BoxFuture;

/// Checks the three limits and counts the attempt, in one atomic step. Each counter is
/// a hash (`n`: failures, `last`: last attempt, ms) that expires with its window.
/// Returns {1, 0} when counted, {0, retry_ms} when refused (and not counted).
const ATTEMPT: &str = r"
local now = tonumber(ARGV[1])
local function count(k) return tonumber(redis.call('HGET', k, 'n')) or 0 end
if count(KEYS[1]) >= tonumber(ARGV[2]) then return {0, redis.call('PTTL', KEYS[1])} end
if count(KEYS[2]) >= tonumber(ARGV[4]) then return {0, redis.call('PTTL', KEYS[2])} end
local n = count(KEYS[3])
local max = tonumber(ARGV[6])
if n >= max then
  local last = tonumber(redis.call('HGET', KEYS[3], 'last')) or 0
  local wait = math.min(1000 * 2 ^ math.min(n - max, 30), tonumber(ARGV[8]))
  if now < last + wait then return {0, last + wait - now} end
end
local windows = {ARGV[3], ARGV[5], ARGV[7]}
for i = 1, 3 do
  redis.call('HINCRBY', KEYS[i], 'n', 1)
  redis.call('HSET', KEYS[i], 'last', now)
  if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], windows[i]) end
end
return {1, 0}";

/// Records an outcome: ARGV[1] = 1 for a success (the user's counters deleted, the
/// client's given one back), 0 to give the attempt back on all three.
const SETTLE: &str = r"
local function give_back(k)
  if redis.call('HGET', k, 'n') then redis.call('HINCRBY', k, 'n', -1) end
end
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[1], KEYS[3])
  give_back(KEYS[2])
else
  give_back(KEYS[1]); give_back(KEYS[2]); give_back(KEYS[3])
end
return 1";

/// Attempt counters in Redis, under a prefix: the backend of
/// [`AttemptLimiter::redis`](super::AttemptLimiter::redis).
#[derive(Clone)]
pub(crate) struct RedisLimits {
    conn: Conn,
    prefix: String,
}

impl fmt::Debug for RedisLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimits")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

use crate::redis::store_error as err;

impl RedisLimits {
    /// Connects (2 s connection and response timeouts, automatic reconnects); keys get
    /// `prefix` (a `:` is added unless it ends with one).
    pub(crate) async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let link = crate::redis::connect(url, Duration::from_secs(2))
            .await
            .map_err(StoreError::new)?;
        let prefix = crate::redis::key_prefix(prefix);
        let prefix = if link.is_cluster() {
            cluster_prefix(prefix).map_err(StoreError::new)?
        } else {
            prefix
        };
        Ok(RedisLimits {
            conn: link.conn,
            prefix,
        })
    }

    fn script<'a>(&self, script: &'a Script, keys: &Keys) -> redis::ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        for name in &keys.names {
            inv.key([self.prefix.as_str(), name].concat());
        }
        inv
    }
}

/// On a cluster the three counters of an attempt must share a slot: `prefix` as the hash
/// tag (`{limit}` for an empty one), or the tag it already holds.
fn cluster_prefix(prefix: String) -> Result<String, &'static str> {
    if let Some(open) = prefix.find('{') {
        return match prefix[open + 1..].find('}') {
            Some(len) if len > 0 => Ok(prefix),
            _ => Err("a RedisLimits prefix with { must hold a non-empty {tag}"),
        };
    }
    if prefix.contains('}') {
        return Err("a RedisLimits prefix with } must hold a non-empty {tag}");
    }
    Ok(if prefix.is_empty() {
        "{limit}".to_owned()
    } else {
        format!("{{{prefix}}}")
    })
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Backend for RedisLimits {
    fn named(&self) -> bool {
        true
    }
    fn attempt<'a>(
        &'a self,
        keys: &'a Keys,
        limits: &'a Limits,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Verdict, StoreError>> {
        Box::pin(async move {
            let script = Script::new(ATTEMPT);
            let mut inv = self.script(&script, keys);
            inv.arg(now_ms)
                .arg(limits.per_user_client.0)
                .arg(ms(limits.per_user_client.1))
                .arg(limits.per_client.0)
                .arg(ms(limits.per_client.1))
                .arg(limits.per_user.0)
                .arg(ms(limits.per_user.1))
                .arg(ms(limits.max_backoff));
            let mut conn = self.conn.clone();
            let (ok, retry): (i64, i64) = inv.invoke_async(&mut conn).await.map_err(err)?;
            Ok(if ok == 1 {
                Verdict::Allowed
            } else {
                Verdict::Refused(retry.max(1) as u64)
            })
        })
    }

    fn settle<'a>(&'a self, keys: &'a Keys, how: Settle) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let script = Script::new(SETTLE);
            let mut inv = self.script(&script, keys);
            inv.arg(u8::from(how == Settle::Success));
            let mut conn = self.conn.clone();
            let _: i64 = inv.invoke_async(&mut conn).await.map_err(err)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::cluster_prefix;

    #[test]
    fn cluster_prefixes_always_name_one_slot() {
        let p = |s: &str| cluster_prefix(s.to_owned());
        assert_eq!(p("app:limit:").unwrap(), "{app:limit:}");
        assert_eq!(p("").unwrap(), "{limit}");
        assert_eq!(p("x{tag}y:").unwrap(), "x{tag}y:");
        assert!(p("x{}y").is_err());
        assert!(p("x{y").is_err());
        assert!(p("x}y").is_err());
    }
}
