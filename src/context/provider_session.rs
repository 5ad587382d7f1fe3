//! [`ProviderSession`]: the identity provider's session a context came from, so a
//! provider's logout can end it.

use serde::{Deserialize, Serialize};

/// The provider's view of a session made by an OpenID Connect login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProviderSession {
    /// The provider's issuer.
    pub issuer: String,
    /// The provider's `sub` for the user.
    pub subject: String,
    /// The provider's session id (`sid`), when its ID token carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}
