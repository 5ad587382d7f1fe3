//! [`Conn`]: one connection type for the three topologies, and [`Link`]: a connection
//! with what it takes to open a subscription beside it.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::{Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisFuture, Value};

use super::sentinel::SentinelConn;
use super::target::{Auth, Target};
use super::{describe, tcp_settings};

/// A connection to a single node, the current primary of a Sentinel service, or a
/// cluster; cheap to clone, reconnects by itself.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Sentinel(SentinelConn),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }
    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }
    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Sentinel(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// Runs `write` and then `WAIT replicas within` as one pipeline on one connection to
    /// the primary that owns `key`, so the acknowledgement covers that very write (a
    /// `WAIT` on another connection would cover nothing and answer at once). An error
    /// when fewer replicas confirm; the write's answer otherwise.
    pub(crate) async fn write_acknowledged<T: redis::FromRedisValue>(
        &self,
        write: Cmd,
        key: &str,
        replicas: u32,
        within: Duration,
    ) -> Result<T, String> {
        let mut pipe = redis::pipe();
        pipe.add_command(write);
        pipe.cmd("WAIT")
            .arg(replicas)
            .arg(within.as_millis().max(1) as u64);
        let values: Vec<Value> = match self.clone() {
            Conn::Cluster(mut c) => {
                let owner = SingleNodeRoutingInfo::SpecificNode(Route::with_slot(
                    Slot::for_key(key),
                    SlotAddr::Master,
                ));
                c.route_pipeline(pipe, 0, 2, owner).await
            }
            mut c => pipe.query_async(&mut c).await,
        }
        .map_err(describe)?;
        let [answer, acked]: [Value; 2] = values
            .try_into()
            .map_err(|_| "redis: a write and WAIT answered with the wrong count".to_owned())?;
        let acked: i64 = redis::from_redis_value(acked)
            .map_err(|_| "redis: WAIT answered something else than a count".to_owned())?;
        if acked < i64::from(replicas) {
            return Err(format!(
                "redis: {acked} of {replicas} replicas confirmed the write within {within:?}"
            ));
        }
        redis::from_redis_value(answer)
            .map_err(|_| "redis: the write answered something unexpected".to_owned())
    }
}

/// `EVAL source` with `keys` declared: a script as one command (so it can be pipelined
/// with `WAIT`); arguments follow with `.arg`. Redis compiles each source once.
pub(crate) fn eval(source: &str, keys: &[&str]) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(source).arg(keys.len()).arg(keys);
    cmd
}

/// Routing to the primary that owns `key`'s slot.
pub(super) fn slot_of(key: &str) -> RoutingInfo {
    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_slot(
        Slot::for_key(key),
        SlotAddr::Master,
    )))
}

/// A connection and the means to subscribe on the same topology.
#[derive(Clone)]
pub(crate) struct Link {
    pub(crate) conn: Conn,
    pub(super) subscriber: Subscriber,
}

/// How a [`Link`] opens subscriptions.
#[derive(Clone)]
pub(super) enum Subscriber {
    Single(redis::Client),
    Sentinel(SentinelConn),
    Cluster {
        seeds: Vec<(String, u16)>,
        auth: Auth,
        timeout: Duration,
    },
}

impl Link {
    pub(super) async fn connect(target: Target, timeout: Duration) -> Result<Link, String> {
        match target {
            Target::Single(url) => {
                let info = url
                    .into_connection_info()
                    .map_err(describe)?
                    .set_tcp_settings(tcp_settings());
                let client = redis::Client::open(info).map_err(describe)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                let conn = ConnectionManager::new_with_config(client.clone(), config)
                    .await
                    .map_err(describe)?;
                Ok(Link {
                    conn: Conn::Single(conn),
                    subscriber: Subscriber::Single(client),
                })
            }
            Target::Sentinel {
                sentinels,
                service,
                db,
                auth,
            } => {
                let conn = SentinelConn::connect(sentinels, &service, db, &auth, timeout).await?;
                Ok(Link {
                    conn: Conn::Sentinel(conn.clone()),
                    subscriber: Subscriber::Sentinel(conn),
                })
            }
            Target::Cluster { seeds, auth } => {
                let client = cluster_builder(&seeds, &auth, timeout)?
                    .build()
                    .map_err(describe)?;
                let conn = tokio::time::timeout(timeout, client.get_async_connection())
                    .await
                    .map_err(|_| "redis: cluster did not answer in time".to_owned())?
                    .map_err(describe)?;
                Ok(Link {
                    conn: Conn::Cluster(conn),
                    subscriber: Subscriber::Cluster {
                        seeds,
                        auth,
                        timeout,
                    },
                })
            }
        }
    }

    /// True on a cluster: publish and subscribe are sharded (`SPUBLISH`, `SSUBSCRIBE`),
    /// and keys a script touches together must share a hash tag.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }
}

/// A cluster client's settings, from its seeds.
pub(super) fn cluster_builder(
    seeds: &[(String, u16)],
    auth: &Auth,
    timeout: Duration,
) -> Result<ClusterClientBuilder, String> {
    let nodes: Vec<ConnectionInfo> = seeds
        .iter()
        .map(|(host, port)| {
            ConnectionAddr::Tcp(host.clone(), *port)
                .into_connection_info()
                .map_err(describe)
        })
        .collect::<Result<_, _>>()?;
    let mut builder = ClusterClientBuilder::new(nodes)
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .retries(2)
        .max_retry_wait(500)
        .tcp_settings(tcp_settings());
    if let Some(u) = &auth.username {
        builder = builder.username(u);
    }
    if let Some(p) = &auth.password {
        builder = builder.password(p);
    }
    Ok(builder)
}
