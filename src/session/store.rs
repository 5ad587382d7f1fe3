//! The [`SessionStore`] trait and the record it keeps.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::authenticator::BoxFuture;

/// What a store keeps per session. The key is the SHA-256 of the cookie's id
/// (hex, 64 chars): a leaked store dump holds no usable cookie.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionRecord {
    /// Hex SHA-256 of the session id.
    pub id_hash: String,
    /// The principal.
    pub subject: String,
    /// Roles for the context.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Tenant for the context.
    #[serde(default)]
    pub tenant: Option<String>,
    /// E-mail for the context.
    #[serde(default)]
    pub email: Option<String>,
    /// Custom data; becomes the context's claims.
    #[serde(default)]
    pub data: Map<String, Value>,
    /// Creation time (Unix seconds).
    pub created_at: u64,
    /// Last time the idle expiry was pushed forward (Unix seconds).
    pub touched_at: u64,
    /// Idle expiry (Unix seconds); sliding, never past `absolute_expires_at`.
    pub idle_expires_at: u64,
    /// Absolute expiry (Unix seconds); never extended.
    pub absolute_expires_at: u64,
}

impl SessionRecord {
    /// When the session ends if untouched: the earlier of the two expiries.
    pub fn expires_at(&self) -> u64 {
        self.idle_expires_at.min(self.absolute_expires_at)
    }
    /// Records activity at `touched_at` and slides the idle expiry to `idle_expires_at`,
    /// never past the absolute expiry.
    pub fn touch(&mut self, touched_at: u64, idle_expires_at: u64) {
        self.touched_at = touched_at;
        self.idle_expires_at = idle_expires_at.min(self.absolute_expires_at);
    }
    /// JSON for stores that keep records as text (Redis, Postgres).
    #[cfg(any(feature = "redis", feature = "postgres"))]
    pub(crate) fn to_json(&self) -> Result<String, StoreError> {
        serde_json::to_string(self).map_err(|_| StoreError::new("encode"))
    }
    #[cfg(any(feature = "redis", feature = "postgres"))]
    /// The inverse of [`to_json`](Self::to_json); bad text is a store error (503), never a session.
    pub(crate) fn from_json(text: &str) -> Result<Self, StoreError> {
        serde_json::from_str(text).map_err(|_| StoreError::new("corrupt session record"))
    }
    /// True when expired at `now`.
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at()
    }
}

/// A store failed (unreachable, timed out, corrupt data). Requests fail closed (503).
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
        write!(f, "session store error: {}", self.message)
    }
}
impl std::error::Error for StoreError {}

/// Where sessions live. Implementations must be safe under concurrent use and must
/// expire records by themselves (TTL or sweeping) no later than `expires_at()`.
///
/// Built-in: [`MemoryStore`](crate::session::MemoryStore),
/// `RedisStore` (feature `redis`), `PostgresStore` (feature `postgres`).
pub trait SessionStore: Send + Sync + 'static {
    /// Inserts a new record (ids are fresh; an existing key is an error or overwritten).
    fn create<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Loads a record by id hash; expired records may be returned (the caller checks).
    fn load<'a>(
        &'a self,
        id_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>>;
    /// Moves the idle expiry forward; a missing record is not an error.
    fn touch<'a>(
        &'a self,
        id_hash: &'a str,
        touched_at: u64,
        idle_expires_at: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Deletes one record; true when it existed.
    fn delete<'a>(&'a self, id_hash: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Deletes every record of `subject`; returns how many.
    fn delete_all_for_subject<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;
}

#[cfg(any(feature = "redis", feature = "postgres"))]
/// Loads a record and applies [`SessionRecord::touch`], for stores whose `touch` is a
/// read-modify-write; `None` when the record is gone.
pub(crate) async fn load_touched(
    store: &impl SessionStore,
    id_hash: &str,
    touched_at: u64,
    idle_expires_at: u64,
) -> Result<Option<SessionRecord>, StoreError> {
    let Some(mut rec) = store.load(id_hash).await? else {
        return Ok(None);
    };
    rec.touch(touched_at, idle_expires_at);
    Ok(Some(rec))
}
