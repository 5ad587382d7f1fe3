//! The resource server's side of OAuth 2 (feature `jwt`): RFC 9728 protected resource
//! metadata for clients to discover the authorization server (MCP clients do this from
//! the first 401), and DPoP-bound access tokens (RFC 9449).
//!
//! ```
//! use axum::{Router, routing::get};
//! use portcullis::AuthLayer;
//! use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, KeySet, Validation};
//! use portcullis::resource::{Dpop, ProtectedResource};
//!
//! let resource = ProtectedResource::new("https://api.example.com")?
//!     .with_authorization_server("https://login.example.com")?
//!     .with_scopes(["tasks:write"]);
//! let dpop = Dpop::allowed("https://api.example.com")?;
//! # let keys = KeySet::new().with_hmac_secret(&[7u8; 32], Algorithm::HS256)?;
//! let verifier = JwtVerifier::new(Issuer::new(keys, Validation::new([Algorithm::HS256])));
//! let bearer = BearerAuth::new("api", verifier)
//!     .with_resource(&resource.clone().with_dpop(&dpop))
//!     .with_dpop(dpop);
//! let app: Router = Router::new()
//!     .route("/api/tasks", get(|| async { "tasks" }))
//!     .layer(AuthLayer::required(bearer))
//!     .merge(resource.router());
//! # Ok::<(), portcullis::ConfigError>(())
//! ```

mod dpop;
mod metadata;
mod nonce;
mod proof;
mod proof_headers;
mod replay;
mod thumbprint;

pub use self::dpop::Dpop;
pub(crate) use self::dpop::{Bound, once};
pub use self::metadata::{ProtectedResource, WELL_KNOWN_PATH};
pub use self::replay::ReplayCache;
#[cfg(feature = "oauth")]
pub(crate) use self::replay::{Owner, Use, proof_key};
