//! The one error of shared state (session stores, revocations, limiters, replay caches).

use std::fmt;

/// Shared state failed: a session store, the revocation list's backend, an attempt
/// limiter's counters or a replay cache was unreachable, timed out, or held corrupt
/// data. Requests that need it fail closed (503).
///
/// ```
/// let e = portcullis::StoreError::new("timed out");
/// assert_eq!(e.message(), "timed out");
/// assert_eq!(e.to_string(), "store error: timed out");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreError {
    message: String,
}

impl StoreError {
    /// A store error with a message for logs.
    pub fn new(message: impl Into<String>) -> Self {
        StoreError {
            message: message.into(),
        }
    }
    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store error: {}", self.message)
    }
}
impl std::error::Error for StoreError {}
