#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The Rust blocks of `docs/guide.md`, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide.md")]
pub struct GuideDoctests;

mod authenticator;
mod challenge;
mod clock;
mod context;
mod error;
mod extract;
mod http;
mod layer;
mod metrics;
#[cfg(any(feature = "basic", feature = "session"))]
mod passwords;
pub mod policy;
#[cfg(any(feature = "basic", feature = "session", feature = "jwt"))]
mod prehashed;
#[cfg(feature = "redis")]
mod redis;
mod responder;
mod store_error;

#[cfg(feature = "basic")]
pub mod basic;
#[cfg(feature = "jwt")]
pub mod egress;
#[cfg(feature = "gateway")]
pub mod gateway;
#[cfg(feature = "iap")]
pub mod iap;
#[cfg(feature = "jwt")]
pub mod introspection;
#[cfg(feature = "jwt")]
mod jose;
#[cfg(feature = "jwt")]
pub mod jwt;
#[cfg(any(feature = "basic", feature = "session", feature = "jwt"))]
pub mod limit;
#[cfg(feature = "oauth")]
pub mod oauth;
#[cfg(feature = "jwt")]
pub mod providers;
#[cfg(feature = "jwt")]
pub mod resource;
#[cfg(any(feature = "jwt", feature = "session"))]
pub mod revocation;
#[cfg(feature = "session")]
pub mod session;
#[cfg(feature = "jwt")]
mod startup;
#[cfg(feature = "test-util")]
pub mod testing;

pub use authenticator::{Authenticator, BoxFuture, Check};
pub use challenge::Challenge;
pub use context::{AuthContext, AuthContextBuilder, PrincipalKind, Scheme};
pub use error::{AuthError, ConfigError, ErrorKind};
pub use extract::Claims;
pub use http::client_address::{ForwardedHeader, TrustedProxies};
pub use http::csrf::CsrfGuard;
pub use layer::{AuthFuture, AuthLayer, AuthService, DEFAULT_MAX_CREDENTIAL_BYTES, Mode};
#[cfg(any(feature = "basic", feature = "session"))]
pub use passwords::{User, Users, hash_password};
pub use responder::{ErrorResponder, JsonResponder, LoginRedirect};
#[cfg(feature = "jwt")]
pub use startup::Startup;
pub use store_error::StoreError;
