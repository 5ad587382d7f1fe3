//! Sign in with an OAuth 2 / OpenID Connect provider (Google, Microsoft, GitHub, any OIDC
//! provider by discovery), ending in a portcullis session: authorization code + PKCE +
//! `state` + `nonce`, the ID token verified by this crate's own
//! [`JwtVerifier`](crate::jwt::JwtVerifier). See [`OAuthLogin`].

mod login;
mod pending;
mod profile;
mod provider;

pub use self::login::OAuthLogin;
pub use self::profile::Profile;
pub use self::provider::OAuthProvider;
