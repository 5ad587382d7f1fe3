//! Gateway mode (feature `gateway`): authenticate at the edge, then hand the origin the
//! identity, as headers it can trust ([`IdentityHeaders`]: stripped of every client-sent
//! copy, then written from the verified context) and, optionally, as a short-lived
//! signed assertion ([`AssertionSigner`], verified at the origin by
//! [`IdentityProxy::gateway`](crate::iap::IdentityProxy::gateway)); or answer a reverse
//! proxy's per-request question ([`ForwardAuth`]: nginx `auth_request`, Traefik
//! `forwardAuth`, Caddy `forward_auth`, Envoy `ext_authz`).

mod assertion;
mod forward;
mod headers;
mod headers_layer;
mod uri;

pub use self::assertion::AssertionSigner;
pub use self::forward::ForwardAuth;
pub use self::headers::IdentityHeaders;
pub use self::headers_layer::{IdentityHeadersLayer, IdentityHeadersService};
