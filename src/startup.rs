//! [`Startup`]: what a part that fetches from an identity provider does when the provider
//! does not answer at start-up.

use std::time::Duration;

/// What to do at start-up when an identity provider (OIDC discovery, a JWKS, an identity
/// proxy's keys, an introspection endpoint) does not answer: one choice, the same for
/// every part that takes it ([`RemoteJwks::start`](crate::jwt::RemoteJwks::start),
/// [`BearerAuth::oidc`](crate::jwt::BearerAuth::oidc), and the identity proxies' and
/// introspection's `start`).
///
/// Either way a configuration error is told apart from an outage. The provider
/// answered, but not with what was configured (a discovery document whose `issuer`
/// differs, a set without a usable key, a 404): that is a configuration error. It could
/// not be reached (refused, timed out, a 5xx): that is an outage.
///
/// ```no_run
/// # async fn f() -> Result<(), portcullis::ConfigError> {
/// use portcullis::{AuthLayer, Startup, jwt::BearerAuth};
/// // Start even while the provider is down; 503 and not ready until it answers.
/// let bearer = BearerAuth::oidc("https://login.example.com", "my-api", Startup::Wait).await?;
/// let layer = AuthLayer::required(bearer);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Startup {
    /// Start at once and fetch in the background. Until the provider answers, requests
    /// that need what it serves get 503 (never a 401 that makes clients drop good
    /// tokens) and readiness is false; the first success makes it ready, no restart
    /// needed. An outage is retried after [`RETRY_MIN`](Self::RETRY_MIN), doubling up to
    /// [`RETRY_MAX`](Self::RETRY_MAX), each wait shortened at random by up to a quarter;
    /// a configuration error is logged at ERROR, reported by `health()` with its reason,
    /// and retried every [`RETRY_MISCONFIGURED`](Self::RETRY_MISCONFIGURED), never in a
    /// tight loop.
    #[default]
    Wait,
    /// Fetch before returning; any failure is an error whose message says whether the
    /// provider was unreachable or answered with something that does not match the
    /// configuration. For deployments that would rather not start than start blind.
    FailFast,
}

impl Startup {
    /// The first wait after an outage.
    pub const RETRY_MIN: Duration = Duration::from_millis(100);
    /// The longest wait between tries while the provider cannot be reached: a provider
    /// that comes back is used within this long (plus the fetch).
    pub const RETRY_MAX: Duration = Duration::from_secs(1);
    /// The wait between tries while the provider answers with something that does not
    /// match the configuration.
    pub const RETRY_MISCONFIGURED: Duration = Duration::from_secs(30);
}
