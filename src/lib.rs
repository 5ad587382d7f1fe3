//! # portcullis
//!
//! Authentication layers and an authorization policy layer for Tower and axum.
//!
//! Every scheme turns a request into the same [`AuthContext`], placed in the request
//! extensions; a separate [`policy`] layer decides what that context may do. Handlers
//! take `AuthContext` (401 when absent) or `Option<AuthContext>`.
//!
//! | feature | what it adds | default |
//! |---|---|---|
//! | `basic` | [`basic::BasicAuth`]: HTTP Basic with plain or argon2 secrets, async verifier, throttling | yes |
//! | `jwt` | `jwt::BearerAuth`: strict JWT validation, JWKS cache, OIDC discovery, verified-token cache | yes |
//! | `cloudflare` | `cloudflare::CloudflareAccess` | yes |
//! | `session` | `session::SessionAuth`, `Sessions`, memory store, CSRF guard | yes |
//! | `redis` | Redis session store | no |
//! | `postgres` | PostgreSQL session store | no |
//! | `aws-lc-rs` | JWT crypto on aws-lc-rs | yes |
//! | `rust-crypto` | JWT crypto on RustCrypto (used when `aws-lc-rs` is off) | no |
//! | `test-util` | `testing`: mint tokens, serve a JWKS on loopback, fake contexts | no |
//!
//! ```
//! use axum::{Router, routing::get};
//! use portcullis::{AuthContext, AuthLayer, basic::{BasicAuth, BasicUser}};
//!
//! async fn me(ctx: AuthContext) -> String {
//!     format!("hello {}", ctx.subject())
//! }
//!
//! let basic = BasicAuth::new("example")
//!     .with_user("admin", BasicUser::plain("correct horse battery staple").with_roles(["admin"]));
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .layer(AuthLayer::required(basic));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod authenticator;
#[cfg(any(feature = "basic", feature = "jwt"))]
mod basic_scheme;
mod challenge;
mod context;
#[cfg(any(feature = "session", feature = "cloudflare"))]
mod cookies;
mod csrf;
mod error;
mod extract;
mod layer;
pub mod policy;
mod responder;
#[cfg(any(feature = "basic", feature = "session"))]
mod users;

#[cfg(feature = "basic")]
pub mod basic;
#[cfg(feature = "cloudflare")]
pub mod cloudflare;
#[cfg(feature = "jwt")]
pub mod jwt;
#[cfg(feature = "session")]
pub mod session;
#[cfg(feature = "test-util")]
pub mod testing;

pub use authenticator::{Authenticator, BoxFuture};
pub use challenge::Challenge;
pub use context::{AuthContext, AuthContextBuilder, PrincipalKind, Scheme};
pub use csrf::CsrfGuard;
pub use error::{AuthError, ErrorKind};
pub use layer::{AuthLayer, AuthService, DEFAULT_MAX_CREDENTIAL_BYTES, Mode};
pub use responder::{ErrorResponder, JsonResponder, LoginRedirect};
#[cfg(any(feature = "basic", feature = "session"))]
pub use users::{PasswordError, User, Users, hash_password};

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
