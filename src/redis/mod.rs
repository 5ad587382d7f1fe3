//! One way to reach Redis for the crate's Redis parts (sessions, attempt limits,
//! revocations, the DPoP replay cache): a URL naming one node, a Sentinel-watched primary
//! or a Cluster ([`target`]) becomes a [`Link`]: a connection that reconnects by itself
//! (following the primary across a failover, and the slots across a cluster), with
//! timeouts, on sockets that notice a silent peer (TCP keep-alive and a TCP user
//! timeout), and the means to subscribe to a channel on the same topology.

mod conn;
mod sentinel;
mod subscription;
mod target;

use std::time::Duration;

use redis::io::tcp::{TcpSettings, socket2::TcpKeepalive};

pub(crate) use conn::{Conn, Link, eval};
pub(crate) use subscription::Subscription;

/// The error kind only: redis error text can echo arguments (user names, ids).
pub(crate) fn describe(e: redis::RedisError) -> String {
    match e.code() {
        // A server error's code is its kind and echoes nothing.
        Some(code) => format!("redis: {code}"),
        None => format!("redis: {:?}", e.kind()),
    }
}

/// A Redis failure as the error of shared state, for every Redis part alike.
pub(crate) fn store_error(e: redis::RedisError) -> crate::StoreError {
    crate::StoreError::new(describe(e))
}

/// Socket settings for every connection: a peer that stops answering is noticed by the
/// kernel within about 15 s even when nothing is being sent (keep-alive after 5 s idle,
/// then every 2 s, 5 probes), and within 10 s when data waits unacknowledged.
fn tcp_settings() -> TcpSettings {
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(5))
        .with_interval(Duration::from_secs(2))
        .with_retries(5);
    let settings = TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(keepalive);
    #[cfg(target_os = "linux")]
    let settings = settings.set_user_timeout(Duration::from_secs(10));
    settings
}

/// Connects to what `url` names; connecting and single round trips are bounded by
/// `timeout`.
pub(crate) async fn connect(url: &str, timeout: Duration) -> Result<Link, String> {
    let target = target::Target::parse(url)?;
    Link::connect(target, timeout).await
}

/// Checks a replica acknowledgement setting against the connection's response timeout:
/// at least one replica, and a wait of at least 1 ms (`WAIT n 0` would wait forever)
/// that ends before the connection gives up on the answer.
pub(crate) fn check_replica_acks(
    replicas: u32,
    within: Duration,
    response_timeout: Duration,
) -> Result<(), String> {
    if replicas == 0 {
        return Err("with_replica_acks: wait for at least one replica".into());
    }
    if within < Duration::from_millis(1) || within >= response_timeout {
        return Err(format!(
            "with_replica_acks: the wait must be from 1 ms to less than the response timeout ({response_timeout:?}), not {within:?}"
        ));
    }
    Ok(())
}

/// `url` with any user name and password replaced by `***`, for `Debug` and logs.
pub(crate) fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, hosts)) => format!("{scheme}://***@{hosts}"),
            None => url.to_owned(),
        },
        None => "<not a URL>".to_owned(),
    }
}

/// `prefix` with a `:` at the end unless it is empty or already has one.
pub(crate) fn key_prefix(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with(':') {
        prefix.to_owned()
    } else {
        format!("{prefix}:")
    }
}
