//! One way to open a Redis connection for the crate's Redis parts (sessions, attempt
//! limits, revocations): a connection manager with timeouts and automatic reconnects,
//! on sockets that notice a silent peer (TCP keep-alive and a TCP user timeout).

use std::time::Duration;

use redis::IntoConnectionInfo;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::{TcpSettings, socket2::TcpKeepalive};

/// The error kind only: redis error text can echo arguments (user names, ids).
pub(crate) fn describe(e: redis::RedisError) -> String {
    format!("redis: {:?}", e.kind())
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

/// The client for `url` and a managed connection whose connecting and single round
/// trips are bounded by `timeout`.
pub(crate) async fn connect(
    url: &str,
    timeout: Duration,
) -> Result<(redis::Client, ConnectionManager), String> {
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
    Ok((client, conn))
}

/// `prefix` with a `:` at the end unless it is empty or already has one.
pub(crate) fn key_prefix(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with(':') {
        prefix.to_owned()
    } else {
        format!("{prefix}:")
    }
}
