//! One way to open a Redis connection for the crate's Redis parts (sessions, attempt
//! limits, revocations): a connection manager with timeouts and automatic reconnects.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// The error kind only: redis error text can echo arguments (user names, ids).
pub(crate) fn describe(e: redis::RedisError) -> String {
    format!("redis: {:?}", e.kind())
}

/// The client for `url` and a managed connection whose connecting and single round
/// trips are bounded by `timeout`.
pub(crate) async fn connect(
    url: &str,
    timeout: Duration,
) -> Result<(redis::Client, ConnectionManager), String> {
    let client = redis::Client::open(url).map_err(describe)?;
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
