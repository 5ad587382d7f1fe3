//! [`SentinelConn`]: a connection to whichever node the sentinels name as primary.
//!
//! The connection is resolved through the sentinels (which check that the node they
//! name says it is a primary) and kept while it works. A command that fails in a way
//! that says the node is gone or no longer primary (connection lost or refused, timed
//! out, `READONLY`, `MASTERDOWN`, `LOADING`) drops it, so the next command asks the
//! sentinels again: after a failover, commands reach the promoted replica as soon as the
//! sentinels name it. The failed command is not retried (it may have been applied), so
//! in-flight requests see an error, never a wrong answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, Cmd, ConnectionAddr, RedisError, RedisFuture, Value};

use super::target::Auth;
use super::{describe, tcp_settings};

/// See the module docs. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub(crate) struct SentinelConn {
    shared: Arc<Shared>,
    db: i64,
}

struct Shared {
    /// Serialises asking the sentinels, so a failover costs one lookup, not one per
    /// request.
    sentinel: tokio::sync::Mutex<SentinelClient>,
    /// The primary's connection and a number that changes with every new one.
    current: Mutex<Option<(MultiplexedConnection, u64)>>,
    generations: AtomicU64,
    config: AsyncConnectionConfig,
    timeout: Duration,
}

/// True when `e` says the node is unreachable or no longer the primary.
fn node_lost(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(e.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"))
}

impl SentinelConn {
    pub(super) async fn connect(
        sentinels: Vec<(String, u16)>,
        service: &str,
        db: i64,
        auth: &Auth,
        timeout: Duration,
    ) -> Result<SentinelConn, String> {
        let addrs = sentinels
            .into_iter()
            .map(|(host, port)| ConnectionAddr::Tcp(host, port));
        let mut builder = SentinelClientBuilder::new(addrs, service, SentinelServerType::Master)
            .map_err(describe)?
            .set_client_to_redis_db(db)
            .set_client_to_redis_tcp_settings(tcp_settings())
            .set_client_to_sentinel_tcp_settings(tcp_settings());
        if let Some(u) = &auth.username {
            builder = builder.set_client_to_redis_username(u);
        }
        if let Some(p) = &auth.password {
            builder = builder.set_client_to_redis_password(p);
        }
        let client = builder.build().map_err(describe)?;
        let conn = SentinelConn {
            shared: Arc::new(Shared {
                sentinel: tokio::sync::Mutex::new(client),
                current: Mutex::new(None),
                generations: AtomicU64::new(0),
                config: AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout)),
                timeout,
            }),
            db,
        };
        conn.current().await.map_err(describe)?;
        Ok(conn)
    }

    /// A client for the current primary (for a subscription), asked of the sentinels.
    pub(super) async fn primary_client(&self) -> Result<redis::Client, String> {
        let mut sentinel = self.shared.sentinel.lock().await;
        tokio::time::timeout(self.shared.timeout, sentinel.async_get_client())
            .await
            .map_err(|_| "redis: sentinels did not answer in time".to_owned())?
            .map_err(describe)
    }

    /// The primary's connection, asking the sentinels when there is none.
    async fn current(&self) -> Result<(MultiplexedConnection, u64), RedisError> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let mut sentinel = self.shared.sentinel.lock().await;
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let found = tokio::time::timeout(self.shared.timeout.saturating_mul(2), async {
            let client = sentinel.async_get_client().await?;
            client
                .get_multiplexed_async_connection_with_config(&self.shared.config)
                .await
        })
        .await
        .map_err(|_| {
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "sentinels or primary did not answer in time",
            ))
        })??;
        let generation = self.shared.generations.fetch_add(1, Ordering::Relaxed) + 1;
        *self
            .shared
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((found.clone(), generation));
        Ok((found, generation))
    }

    fn cached(&self) -> Option<(MultiplexedConnection, u64)> {
        self.shared
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Drops connection `generation` unless a newer one replaced it already.
    fn forget(&self, generation: u64) {
        let mut slot = self
            .shared
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|(_, g)| *g == generation) {
            *slot = None;
            drop(slot);
            tracing::warn!("redis primary lost; asking the sentinels again");
        }
    }

    async fn run<T>(
        &self,
        f: impl AsyncFnOnce(&mut MultiplexedConnection) -> Result<T, RedisError>,
    ) -> Result<T, RedisError> {
        let (mut conn, generation) = self.current().await?;
        let r = f(&mut conn).await;
        if let Err(e) = &r
            && node_lost(e)
        {
            self.forget(generation);
        }
        r
    }
}

impl ConnectionLike for SentinelConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move { self.run(async |c| c.req_packed_command(cmd).await).await })
    }
    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.run(async |c| c.req_packed_commands(pipeline, offset, count).await)
                .await
        })
    }
    fn get_db(&self) -> i64 {
        self.db
    }
}
