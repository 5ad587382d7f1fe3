//! Cookie sessions: an opaque id in a hardened cookie, the record in a [`SessionStore`].
//!
//! ```
//! use axum::{Extension, Router, routing::{get, post}};
//! use portcullis::{AuthContext, AuthLayer};
//! use portcullis::session::{MemoryStore, SessionConfig, SessionManager};
//!
//! let manager = SessionManager::new(MemoryStore::new(), SessionConfig::default());
//! let app: Router = Router::new()
//!     .route("/me", get(|ctx: AuthContext| async move { ctx.subject().to_owned() }))
//!     .layer(AuthLayer::required(manager.authenticator()))
//!     .layer(Extension(manager));
//! ```

mod auth;
mod caching_store;
mod config;
mod cookie;
mod extractor;
mod id;
mod manager;
mod memory;
mod new_session;
#[cfg(feature = "postgres")]
mod postgres_store;
#[cfg(feature = "redis")]
mod redis_store;
mod store;
mod timed;

pub use self::auth::{PresentedSession, SessionAuth};
pub use self::caching_store::CachingStore;
pub use self::config::SessionConfig;
pub use self::cookie::SessionCookie;
pub use self::extractor::{MissingSessionManager, Sessions};
pub use self::manager::SessionManager;
pub use self::memory::MemoryStore;
pub use self::new_session::NewSession;
#[cfg(feature = "postgres")]
pub use self::postgres_store::{PostgresStore, PostgresStoreBuilder};
#[cfg(feature = "redis")]
pub use self::redis_store::{RedisStore, RedisStoreBuilder};
pub use self::store::{SessionRecord, SessionStore};
pub use crate::context::ProviderSession;
