//! The start of a login: the redirect to the provider with its pending-login cookie.

use axum::response::Response;
use http::HeaderValue;
use oauth2::{CsrfToken, PkceCodeChallenge, Scope};

use super::{OAuthLogin, PENDING_SECS, redirect};
use crate::clock::unix_secs;
use crate::error::AuthError;
use crate::oauth::pending::Pending;
use crate::responder::is_local_path;

impl OAuthLogin {
    /// The pending-login cookie holding `value` for `max_age` seconds (0 clears it).
    pub(super) fn pending_cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.inner.secure { "; Secure" } else { "" };
        let v = format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
            self.inner.cookie
        );
        HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The redirect to the provider, with the pending-login cookie. `return_to` (a
    /// same-origin path) is where the callback sends the user; `/` when `None`.
    ///
    /// # Errors
    /// `return_to` is not a same-origin path (400).
    pub fn start(&self, return_to: Option<&str>) -> Result<Response, AuthError> {
        let return_to = match return_to {
            None => "/",
            Some(p) if is_local_path(p) => p,
            Some(_) => {
                return Err(AuthError::malformed("oauth: return_to is not a local path")
                    .with_message("return_to must be a path on this site, such as /account."));
            }
        };
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = CsrfToken::new_random();
        let mut request = self
            .inner
            .client
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge)
            .add_scopes(self.inner.provider.scopes.iter().cloned().map(Scope::new));
        if self.inner.id_tokens.is_some() {
            request = request.add_extra_param("nonce", nonce.secret().clone());
        }
        let (url, state) = request.url();
        let pending = Pending {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            return_to: return_to.to_owned(),
            started: unix_secs(),
        };
        let cookie = self.pending_cookie(
            &pending.seal(&self.inner.key, self.inner.cookie),
            PENDING_SECS,
        );
        Ok(redirect(url.as_str(), [cookie]))
    }
}
