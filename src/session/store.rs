//! The [`SessionStore`] trait and the record it keeps.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::authenticator::BoxFuture;
use crate::context::{AuthContext, ProviderSession, Scheme};
use crate::store_error::StoreError;

/// How many times a write that lost a race with another is applied again to the newer
/// record before the request gives up (503).
pub(crate) const WRITE_TRIES: usize = 4;

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
    /// Issuer for the context (the provider of an OAuth login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The OpenID Connect login that made the session (what a back-channel logout
    /// names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderSession>,
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
    /// Last time the roles were refreshed through
    /// [`SessionConfig::with_refresh`](super::SessionConfig::with_refresh) (Unix seconds).
    #[serde(default)]
    pub refreshed_at: u64,
    /// The record's version: every [`replace`](SessionStore::replace) writes only over
    /// the version it read and stores the next one, so two writers never undo each
    /// other (the loser reloads and applies its change again).
    #[serde(default)]
    pub version: u64,
    /// The context built from this record, kept while the record is unchanged.
    #[serde(skip)]
    context: ContextSlot,
}

/// A record's memoized context: empty again whenever the record is cloned or touched,
/// and invisible to equality and `Debug`.
#[derive(Default)]
struct ContextSlot(OnceLock<AuthContext>);

impl Clone for ContextSlot {
    fn clone(&self) -> Self {
        ContextSlot::default()
    }
}
impl PartialEq for ContextSlot {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl fmt::Debug for ContextSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("..")
    }
}

impl SessionRecord {
    /// A record for `subject` created at `now` (Unix seconds), idle until
    /// `idle_expires_at`, ending no later than `absolute_expires_at`.
    pub(crate) fn new(
        id_hash: String,
        subject: String,
        now: u64,
        idle_expires_at: u64,
        absolute_expires_at: u64,
    ) -> Self {
        SessionRecord {
            id_hash,
            subject,
            roles: Vec::new(),
            tenant: None,
            email: None,
            issuer: None,
            provider: None,
            data: Map::new(),
            created_at: now,
            touched_at: now,
            idle_expires_at: idle_expires_at.min(absolute_expires_at),
            absolute_expires_at,
            refreshed_at: now,
            version: 0,
            context: ContextSlot::default(),
        }
    }

    /// The context of the session, built once per record version: a second request
    /// with the same unchanged record gets the same `Arc`, without allocating.
    pub(crate) fn context(&self) -> AuthContext {
        self.context.0.get_or_init(|| self.build_context()).clone()
    }

    /// The context with the record's current expiry; its session id is the first 16
    /// characters of the id hash (safe to log, useless as a cookie).
    pub(crate) fn build_context(&self) -> AuthContext {
        let mut b = AuthContext::builder(self.subject.as_str(), Scheme::Session)
            .with_roles(self.roles.iter().map(String::as_str))
            .with_session_id(self.id_hash.get(..16).unwrap_or_default())
            .with_expires_at(self.expires_at())
            .with_issued_at(self.created_at)
            .with_claims(self.data.clone());
        if let Some(t) = &self.tenant {
            b = b.with_tenant(t.as_str());
        }
        if let Some(e) = &self.email {
            b = b.with_email(e.as_str());
        }
        if let Some(i) = &self.issuer {
            b = b.with_issuer(i.as_str());
        }
        if let Some(p) = &self.provider {
            b = b.with_provider_session(p.clone());
        }
        b.build()
    }

    /// When the session ends if untouched: the earlier of the two expiries.
    pub fn expires_at(&self) -> u64 {
        self.idle_expires_at.min(self.absolute_expires_at)
    }
    /// Records activity at `touched_at` and slides the idle expiry to `idle_expires_at`,
    /// never past the absolute expiry.
    pub fn touch(&mut self, touched_at: u64, idle_expires_at: u64) {
        self.touched_at = touched_at;
        self.idle_expires_at = idle_expires_at.min(self.absolute_expires_at);
        self.context = ContextSlot::default();
    }
    /// Forgets the memoized context (after changing a field in place).
    pub(crate) fn changed(&mut self) {
        self.context = ContextSlot::default();
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

/// Where sessions live. Implementations must be safe under concurrent use and must
/// expire records by themselves (TTL or sweeping) no later than `expires_at()`.
///
/// Every write that changes a live record is a compare-and-set on
/// [`SessionRecord::version`] ([`replace`](Self::replace)), and a rotation moves a record
/// to a new id in one step ([`rotate`](Self::rotate)): a session deleted meanwhile
/// (logout, logout everywhere) stays deleted, and a write never brings back what
/// another removed.
///
/// Built-in: [`MemoryStore`](crate::session::MemoryStore),
/// `RedisStore` (feature `redis`), `PostgresStore` (feature `postgres`).
pub trait SessionStore: Send + Sync + 'static {
    /// Inserts a new record (ids are fresh; an existing key is an error or overwritten).
    fn create<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Loads a record by id hash (its `id_hash` is the one asked for); expired records
    /// may be returned (the caller checks).
    fn load<'a>(
        &'a self,
        id_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>>;
    /// Lends a record without waiting and without copying it, for stores that hold their
    /// records in process memory: `Some` with the answer, or `None` (the default) to
    /// have the caller use [`load`](Self::load). A lent record must not change under
    /// its holder: a store changes a record by replacing its `Arc`.
    ///
    /// As with `load`, the record lent is the one stored under exactly `id_hash`. The
    /// session layer asks before it checks the presented id's form: a record found
    /// proves the id, since records are stored only under hashes of ids this crate made.
    fn load_now(&self, id_hash: &str) -> Option<Result<Option<Arc<SessionRecord>>, StoreError>> {
        let _ = id_hash;
        None
    }
    /// Writes `record` (its expiry included) over the record stored under
    /// `record.id_hash`, only if that one still has `record.version`, and stores it with
    /// `record.version + 1`. False when the record is gone (it stays gone) or was
    /// changed meanwhile (reload, apply the change again).
    fn replace<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Moves the record stored under `record.id_hash` (as stored, whatever its version;
    /// `record` is the copy the caller loaded, for its id and subject) to `new_id_hash`,
    /// unchanged (its creation time, refresh time and expiries with it), in one step:
    /// true when moved, false when there was no record to move (it ended meanwhile and
    /// must stay ended).
    fn rotate<'a>(
        &'a self,
        record: &'a SessionRecord,
        new_id_hash: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Deletes one record; true when it existed.
    fn delete<'a>(&'a self, id_hash: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Deletes every record of `subject`; returns how many.
    fn delete_all_for_subject<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;
}
