//! The crate's one clock: seconds since the Unix epoch, as tokens and sessions count them.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, with the fraction (for `exp`/`nbf`/`iat` comparisons).
#[cfg_attr(not(feature = "jwt"), allow(dead_code))]
pub(crate) fn unix_secs_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Whole seconds since the epoch (session timestamps).
#[cfg_attr(not(any(feature = "session", feature = "test-util")), allow(dead_code))]
pub(crate) fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the epoch (attempt-limit windows).
#[cfg_attr(not(any(feature = "basic", feature = "session")), allow(dead_code))]
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
