//! [`Profile`]: who the provider says signed in, handed to the login hook.

use std::fmt;

use serde_json::{Map, Value};

/// The signed-in user as the provider describes them, for the hook that turns a login
/// into a [`NewSession`](crate::session::NewSession) (or refuses it).
#[derive(Clone)]
#[non_exhaustive]
pub struct Profile {
    /// The provider's stable id for the user (`sub`; GitHub's numeric `id`): unique at
    /// this provider only. Two providers can both have a user `1001`; key your users on
    /// [`unique_subject`](Self::unique_subject), or on (`issuer`, `subject`).
    pub subject: String,
    /// The issuer (OIDC), or for GitHub its web address (`https://github.com`, or the
    /// Enterprise server's).
    pub issuer: String,
    /// The e-mail address, only when the provider says it is verified.
    pub email: Option<String>,
    /// The display name, when given.
    pub name: Option<String>,
    /// Every claim of the verified ID token, or the user-info document.
    pub claims: Map<String, Value>,
    /// The access token, for calls to the provider's APIs. Not stored anywhere unless
    /// your hook stores it.
    pub access_token: String,
    /// The refresh token, only with
    /// [`OAuthLogin::with_refresh_token`](super::OAuthLogin::with_refresh_token).
    pub refresh_token: Option<String>,
}

impl Profile {
    /// `<issuer>#<subject>`: the user's id qualified by the provider, unique across
    /// providers (an issuer has no `#`). The default login hook makes it the session's
    /// subject, so that one `sub` at two providers is never one user. To link accounts
    /// on purpose, map (`issuer`, `subject`) to your own user id in a
    /// [hook](super::OAuthLogin::with_profile_hook).
    ///
    /// ```
    /// # fn f(profile: portcullis::oauth::Profile) {
    /// let key = profile.unique_subject(); // "https://accounts.google.com#1001"
    /// # let _ = key; }
    /// ```
    pub fn unique_subject(&self) -> String {
        format!("{}#{}", self.issuer, self.subject)
    }
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}
