//! Reading what browsers and clients send: the `Authorization` header, cookies, and the
//! cross-site signals (`Sec-Fetch-Site`, `Origin`) of the CSRF guard.

#[cfg(any(feature = "basic", feature = "jwt"))]
pub(crate) mod authorization;
pub(crate) mod client_address;
#[cfg(any(feature = "session", feature = "jwt"))]
pub(crate) mod cookies;
pub(crate) mod csrf;
#[cfg(feature = "session")]
pub(crate) mod signed_cookie;
